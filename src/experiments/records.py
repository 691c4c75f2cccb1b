"""Run records: one JSON file per finished point, the only input of reports.

``<records>/<experiment>/<point id>.json``:

    {"format": "spikemarl.record/1", "experiment": "table2", "point": "3m__rnn__s1",
     "scenario": "3m", "method": "rnn", "agent": "rnn", "variant": "default", "seed": 1,
     "command": ["--config=qmix", ...], "t_max": 2000000, "t_env": 2000046, "status": "COMPLETED",
     "metric": "test_battle_won_mean",
     "curves": {"test_battle_won_mean": {"T": [...], "value": [...]}, ...},
     "absolute": {"episodes": 320, "value": 0.91, "checkpoint": "models/<token>"} or null,
     "energy": [{"network": "agent", "energy_kpj": ..., "energy_mem_kpj": ..., "firing_rate": ...}] or null,
     "wall_s": 2822.5, "segments": 2, "source": "launcher" or "migrated from <file>", "notes": "..."}

A record is written once, atomically, when its point has finished; reading validates it and gives
a reason for every record it cannot use.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from experiments.sacred_runs import Skipped

FORMAT = "spikemarl.record/1"
REQUIRED = {"format": str, "experiment": str, "point": str, "scenario": str, "method": str, "seed": int,
            "t_max": int, "t_env": (int, float), "status": str, "metric": str, "curves": dict}


@dataclass
class Record:
    """A finished point: identity, test curves and the final-policy re-evaluation."""

    experiment: str
    point: str
    scenario: str
    method: str
    seed: int
    t_max: int
    t_env: float
    status: str
    metric: str
    curves: Dict[str, Dict[str, List[float]]]
    agent: str = ""
    variant: str = "default"
    command: List[str] = field(default_factory=list)
    absolute: Optional[Dict[str, Any]] = None
    energy: Optional[List[Dict[str, Any]]] = None
    wall_s: Optional[float] = None
    segments: int = 1
    source: str = "launcher"
    notes: str = ""

    def curve(self, key: Optional[str] = None) -> Tuple[List[float], List[float]]:
        """``(steps, values)`` of a logged test metric (the protocol's metric by default)."""
        c = self.curves.get(key or self.metric) or {}
        return list(c.get("T", [])), list(c.get("value", []))

    def to_json(self) -> Dict[str, Any]:
        out = {"format": FORMAT}
        out.update({k: getattr(self, k) for k in (
            "experiment", "point", "scenario", "method", "agent", "variant", "seed", "command", "t_max", "t_env",
            "status", "metric", "curves", "absolute", "energy", "wall_s", "segments", "source", "notes")})
        return out


def record_path(records_dir: str, experiment: str, point: str) -> str:
    return os.path.join(records_dir, experiment, f"{point}.json")


def write_record(records_dir: str, record: Record) -> str:
    """Write atomically (temp file + rename): a crash never leaves a half-written record."""
    path = record_path(records_dir, record.experiment, record.point)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(record.to_json(), fh, indent=1, sort_keys=True)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def parse_record(data: Any, path: str) -> Record:
    """A Record from JSON data; ValueError naming the problem when it is not one."""
    if not isinstance(data, dict):
        raise ValueError(f"holds a {type(data).__name__}, not a record object")
    if data.get("format") != FORMAT:
        raise ValueError(f"format is {data.get('format')!r}, expected {FORMAT!r}")
    for key, typ in REQUIRED.items():
        if key not in data:
            raise ValueError(f"missing key '{key}'")
        if not isinstance(data[key], typ) or isinstance(data[key], bool):
            raise ValueError(f"key '{key}' has a {type(data[key]).__name__} ({data[key]!r:.40})")
    curve = data["curves"].get(data["metric"])
    if not isinstance(curve, dict) or not isinstance(curve.get("T"), list) or not isinstance(curve.get("value"), list):
        raise ValueError(f"no curve of its metric {data['metric']!r}")
    if len(curve["T"]) != len(curve["value"]):
        raise ValueError(f"curve of {data['metric']!r} has {len(curve['T'])} steps but {len(curve['value'])} values")
    if not curve["value"]:
        raise ValueError(f"curve of {data['metric']!r} is empty")
    fields = {k: data[k] for k in Record.__dataclass_fields__ if k in data}
    return Record(**fields)


def load_records(records_dir: str, experiment: str) -> Tuple[List[Record], List[Skipped]]:
    """Every record of an experiment, and every file that is not a usable record with the reason."""
    folder = os.path.join(records_dir, experiment)
    records: List[Record] = []
    skipped: List[Skipped] = []
    if not os.path.isdir(folder):
        return records, skipped
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if name.startswith(".tmp-") or not name.endswith(".json"):
            continue
        try:
            with open(path) as fh:
                data = json.load(fh)
            rec = parse_record(data, path)
        except json.JSONDecodeError as exc:
            skipped.append(Skipped(path, f"not valid JSON ({exc.msg} at line {exc.lineno})"))
            continue
        except (OSError, UnicodeDecodeError, ValueError, TypeError) as exc:
            skipped.append(Skipped(path, str(exc)))
            continue
        if rec.experiment != experiment or f"{rec.point}.json" != name:
            skipped.append(Skipped(path, f"names experiment {rec.experiment!r} / point {rec.point!r}, "
                                         f"not this file's {experiment!r} / {name[:-5]!r}"))
            continue
        records.append(rec)
    return records, skipped


def final_metric(record: Record, last_k: int) -> float:
    """Final metric 1: the mean of the last ``last_k`` tests of the protocol's metric."""
    _, values = record.curve()
    tail = values[-last_k:]
    return float(sum(tail) / len(tail))


def select(records: Sequence[Record], where: Sequence[Tuple[str, str]]) -> Tuple[List[Record], List[str]]:
    """Records whose fields equal every ``(field, value)``; a field no record has is an error."""
    known = set(Record.__dataclass_fields__)
    for key, _ in where:
        if key not in known:
            raise ValueError(f"--where {key}=...: records have no field {key!r}; fields: "
                             f"{', '.join(sorted(known - {'curves', 'command', 'absolute'}))}")
    out = [r for r in records if all(str(getattr(r, k)) == v for k, v in where)]
    notes = []
    if where and not out and records:
        notes.append(f"the filter {' '.join(f'{k}={v}' for k, v in where)} matches none of {len(records)} records")
    return out, notes
