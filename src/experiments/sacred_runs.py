"""Read sacred run folders (``run.json``, ``config.json``, ``metrics.json`` / ``info.json``).

Nothing is dropped silently: every folder that looks like a run but cannot be read comes back as
a ``Skipped`` with its path and the reason, for the caller to list.
"""
from __future__ import annotations

import datetime
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

Curve = Tuple[List[float], List[float]]   # (steps, values), sorted by step


@dataclass
class SacredRun:
    """One sacred run folder: status, config, start time and metric curves ``{key: (steps, values)}``."""

    path: str
    status: str
    config: Dict[str, Any]
    start_time: str
    curves: Dict[str, Curve] = field(default_factory=dict)
    info: Dict[str, Any] = field(default_factory=dict)

    @property
    def logged_anything(self) -> bool:
        return any(len(s) for s, _ in self.curves.values())


@dataclass(frozen=True)
class Skipped:
    """A run folder or record that could not be used, and why."""

    path: str
    reason: str


def _scalar(v: Any) -> Optional[float]:
    """A float from a logged value: a number, or a jsonpickled numpy/torch scalar ``{"value": x}``."""
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, dict) and "value" in v:
        return _scalar(v["value"])
    if isinstance(v, (list, tuple)) and len(v) == 1:
        return _scalar(v[0])
    return None


def series(steps: Sequence[Any], values: Sequence[Any]) -> Curve:
    """Finite (step, value) pairs sorted by step; a step logged twice keeps its last value."""
    pairs: Dict[float, float] = {}
    for s, v in zip(steps, values):
        s, v = _scalar(s), _scalar(v)
        if s is not None and v is not None and math.isfinite(v):
            pairs[s] = v
    keys = sorted(pairs)
    return [int(k) if float(k).is_integer() else k for k in keys], [pairs[k] for k in keys]


def _read_json(path: str) -> Tuple[Any, Optional[str]]:
    """``(data, None)`` or ``(None, reason)``."""
    try:
        with open(path) as fh:
            return json.load(fh), None
    except FileNotFoundError:
        return None, f"{os.path.basename(path)} is missing"
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"{os.path.basename(path)} cannot be read ({exc})"
    except json.JSONDecodeError as exc:
        return None, f"{os.path.basename(path)} is not valid JSON ({exc.msg} at line {exc.lineno})"


def _curves(metrics: Any, info: Any) -> Dict[str, Curve]:
    curves: Dict[str, Curve] = {}
    if isinstance(metrics, dict):
        for key, rec in metrics.items():
            if isinstance(rec, dict) and isinstance(rec.get("values"), list):
                steps = rec.get("steps") if isinstance(rec.get("steps"), list) else list(range(len(rec["values"])))
                curves[key] = series(steps, rec["values"])
    if not curves and isinstance(info, dict):
        for key, values in info.items():
            steps = info.get(f"{key}_T")
            if not key.endswith("_T") and isinstance(values, list) and isinstance(steps, list) \
                    and len(steps) == len(values):
                curves[key] = series(steps, values)
    return curves


def read_run(run_dir: str) -> Union[SacredRun, Skipped]:
    """One sacred run folder, or a Skipped naming what is wrong with it."""
    run, why = _read_json(os.path.join(run_dir, "run.json"))
    if why:
        return Skipped(run_dir, why)
    if not isinstance(run, dict):
        return Skipped(run_dir, f"run.json holds a {type(run).__name__}, not an object")
    config, why = _read_json(os.path.join(run_dir, "config.json"))
    if why:
        return Skipped(run_dir, why)
    if not isinstance(config, dict):
        return Skipped(run_dir, f"config.json holds a {type(config).__name__}, not an object")
    info, why_info = _read_json(os.path.join(run_dir, "info.json"))
    if info is not None and not isinstance(info, dict):
        return Skipped(run_dir, f"info.json holds a {type(info).__name__}, not an object")
    metrics, why_metrics = _read_json(os.path.join(run_dir, "metrics.json"))
    if metrics is not None and not isinstance(metrics, dict):
        return Skipped(run_dir, f"metrics.json holds a {type(metrics).__name__}, not an object")
    if why_metrics and "missing" not in why_metrics:
        return Skipped(run_dir, why_metrics)
    if why_info and "missing" not in why_info:
        return Skipped(run_dir, why_info)
    return SacredRun(path=run_dir, status=str(run.get("status", "UNKNOWN")), config=config,
                     start_time=str(run.get("start_time", "")), curves=_curves(metrics, info), info=info or {})


def find_runs(root: str) -> Tuple[List[SacredRun], List[Skipped]]:
    """Every sacred run folder under ``root`` (one holding ``run.json``), read; unreadable ones skipped."""
    runs: List[SacredRun] = []
    skipped: List[Skipped] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != "_sources")
        if "run.json" in filenames:
            got = read_run(dirpath)
            (skipped if isinstance(got, Skipped) else runs).append(got)
    return runs, skipped


def _start(run: SacredRun) -> datetime.datetime:
    try:
        return datetime.datetime.fromisoformat(run.start_time.replace("Z", ""))
    except ValueError:
        return datetime.datetime.min


def join_segments(runs: Sequence[SacredRun]) -> Dict[str, Curve]:
    """One curve per metric from the training segments of one point (a run and the runs that resumed
    it), in start order: each later segment replaces the earlier ones from its first logged step on."""
    joined: Dict[str, Curve] = {}
    for run in sorted(runs, key=lambda r: (_start(r), r.path)):
        for key, (steps, values) in run.curves.items():
            if not steps:
                continue
            old_s, old_v = joined.get(key, ([], []))
            keep = [i for i, s in enumerate(old_s) if s < steps[0]]
            joined[key] = ([old_s[i] for i in keep] + list(steps), [old_v[i] for i in keep] + list(values))
    return joined


def newest(runs: Sequence[SacredRun]) -> Optional[SacredRun]:
    return max(runs, key=lambda r: (_start(r), r.path)) if runs else None
