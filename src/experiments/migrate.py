"""Turn the grid files of the earlier benchmark scripts into run records, without re-running anything.

    python src/experiment.py migrate SPEC SOURCE.json [SOURCE.json ...] [--records docs/records]

The sources are the files named in the spec's ``migrated_from`` (kept in git history; the records
name the file they came from). Each source run is matched to a point of the spec by scenario,
method and seed; a source run that matches no point (another configuration) is listed, never
guessed into the table. Migrated records have no final-policy re-evaluation (``absolute`` is null):
the checkpoints of those runs are not in the repository.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, Iterable, List, Tuple

from experiments.records import Record
from experiments.spec import Point, Spec

CURVE_KEYS = ("test_battle_won_mean", "test_return_mean", "test_ep_length_mean", "spike_rate_mean", "elapsed_s")
PROXY_AGENT = {"td3": "ann", "td3_snn": "lif", "td3_proxy": "pt-lif"}


def _curve(T: List[Any], values: List[Any]) -> Dict[str, List[float]]:
    pairs = [(t, v) for t, v in zip(T, values) if v is not None]
    return {"T": [int(t) for t, _ in pairs], "value": [float(v) for _, v in pairs]}


def _grid_runs(data: Dict[str, Any]) -> Iterable[Tuple[str, str, str, int, Dict[str, Any], Dict[str, Any]]]:
    """(scenario, agent, variant tag, seed, run entry, curve entry) of a marl_learning grid file."""
    for group, g in data["groups"].items():
        parts = group.split("/")
        scenario, agent, tag = parts[0], parts[1], (parts[2] if len(parts) > 2 else "")
        curves = {int(c["seed"]): c for c in g.get("curves", [])}
        for run in g["runs"]:
            yield scenario, agent, tag, int(run["seed"]), run, curves.get(int(run["seed"]), {})


def _method_for_grid(spec: Spec, agent: str, tag: str) -> str:
    """The spec method a grid group maps to: table3 tap/notap, threshold thr1.0/thr0.1, else the agent."""
    variants = [m.split("/", 1)[1] for m in spec.methods if "/" in m]
    if not variants:
        return agent if not tag else f"{agent}/{tag}"
    if tag:
        return f"{agent}/{tag}"
    default = [v for v in dict.fromkeys(variants) if v in ("tap", "thr1.0")]
    return f"{agent}/{default[0]}" if default else agent


def from_grid(spec: Spec, data: Dict[str, Any], source: str) -> Tuple[List[Record], List[str]]:
    records, unmatched = [], []
    points = {(p.scenario, p.method, p.seed): p for p in spec.points}
    for scenario, agent, tag, seed, run, curve in _grid_runs(data):
        method = _method_for_grid(spec, agent, tag)
        point = points.get((scenario, method, seed))
        if point is None:
            continue  # this file's other groups (e.g. rnn in table2's 3m file for table3)
        if run.get("t_max") not in (None, point.t_max):
            unmatched.append(f"{source}: {scenario}/{agent} seed {seed}: t_max {run.get('t_max')} != spec {point.t_max}")
            continue
        T = curve.get("T") or []
        curves = {k: _curve(curve.get(f"{k}_T") or T, curve[k]) for k in CURVE_KEYS if curve.get(k)}
        records.append(_record(point, curves, t_env=max(T) if T else 0, status=str(run.get("status", "COMPLETED")),
                               wall_s=run.get("wall_time_s"), segments=len(run.get("segments") or [1]),
                               source=source))
    return records, unmatched


def from_po_table1(spec: Spec, data: Dict[str, Any], source: str) -> Tuple[List[Record], List[str]]:
    records, unmatched = [], []
    points = {(p.scenario, p.method, p.seed): p for p in spec.points}
    for run in data["runs"]:
        key = (run["env"], run["core"], int(run["seed"]))
        same_networks = (run.get("po_shortcut") is True and run.get("po_head_init") == "authors"
                         and not run.get("variant") and not run.get("mlp_obs_only"))
        if key not in points or not same_networks or run.get("error"):
            unmatched.append(f"{source}: {run['env']} {run['core']} seed {run['seed']} "
                             f"(po_shortcut={run.get('po_shortcut')}, variant={run.get('variant')}, "
                             f"mlp_obs_only={run.get('mlp_obs_only')}): not this spec's configuration")
            continue
        point = points[key]
        if int(run["t_max"]) != point.t_max:
            unmatched.append(f"{source}: {key}: t_max {run['t_max']} != spec {point.t_max}")
            continue
        curves = {"test_return_mean": _curve(run["test_T"], run["test_return_mean"])}
        records.append(_record(point, curves, t_env=point.t_max, status="COMPLETED", wall_s=run.get("wall_time_s"),
                               segments=2 if run.get("resumed_from") else 1, source=source))
    return records, unmatched


def from_proxy_target(spec: Spec, data: Dict[str, Any], source: str) -> Tuple[List[Record], List[str]]:
    records, unmatched = [], []
    points = {(p.scenario, p.method, p.seed): p for p in spec.points}
    for run in data["runs"]:
        key = (run["env"], PROXY_AGENT.get(run["config"], run["config"]), int(run["seed"]))
        point = points.get(key)
        if point is None or int(run["t_max"]) != point.t_max or not run.get("complete"):
            unmatched.append(f"{source}: {run['config']} {run['env']} seed {run['seed']} t_max {run['t_max']} "
                             f"(complete={run.get('complete')}): not this spec's configuration")
            continue
        curve = run["test_curve"]
        curves = {"test_return_mean": _curve([t for t, _ in curve], [v for _, v in curve])}
        records.append(_record(point, curves, t_env=int(run.get("t_reached") or point.t_max), status="COMPLETED",
                               wall_s=run.get("wall_s"), segments=2 if run.get("resumed_from_t") else 1, source=source))
    return records, unmatched


def _record(point: Point, curves: Dict[str, Dict[str, List[float]]], t_env: float, status: str,
            wall_s: Any, segments: int, source: str) -> Record:
    return Record(experiment=point.experiment, point=point.id, scenario=point.scenario, method=point.method,
                  agent=point.agent, variant=point.variant, seed=point.seed, command=point.command(),
                  t_max=point.t_max, t_env=t_env, status=status, metric=_metric_of(point, curves), curves=curves,
                  absolute=None, wall_s=None if wall_s is None else round(float(wall_s), 1), segments=segments,
                  source=f"migrated from {source}",
                  notes="no final-policy re-evaluation: the run's checkpoints are not in the repository")


def _metric_of(point: Point, curves: Dict[str, Any]) -> str:
    return "test_battle_won_mean" if "test_battle_won_mean" in curves else "test_return_mean"


def energy_rows(data: Dict[str, Any], source: str) -> Dict[Tuple[str, str, int], List[Dict[str, Any]]]:
    """Energy rows of an ``energy_table.py`` file of trained checkpoints (``detail[map][agent]``), keyed by
    (scenario, agent, seed); the seed is read from the checkpoint's folder name (``<map>_<agent>_s<seed>``).
    The memory-aware energy is recomputed from the stored counts where they allow it."""
    import re

    out: Dict[Tuple[str, str, int], List[Dict[str, Any]]] = {}
    for scenario, agents in data.get("detail", {}).items():
        for agent, entry in agents.items():
            match = re.search(r"_s(\d+)/models/", str(entry.get("source", "")))
            if not match or not entry.get("checkpoint_loaded"):
                continue
            ops, row = entry.get("agent", {}), entry.get("row", {})
            out[(scenario, agent, int(match.group(1)))] = [{
                "env": scenario, "agent": agent, "seed": int(match.group(1)), "network": "agent",
                "convention": ops.get("convention", "ours"), "decisions": ops.get("decisions"),
                "mlp_k": row.get("mlp_k"), "rnn_k": row.get("rnn_k"), "snn_k": row.get("snn_k"),
                "mixer_k": row.get("mixer_k"), "energy_kpj": row.get("energy_kpj"),
                "energy_mem_kpj": _memory_kpj(ops), "firing_rate": ops.get("firing_rate"),
                "mac_ops": ops.get("mac_ops"), "ac_ops": ops.get("ac_ops"), "weight_reads": ops.get("weight_reads"),
                "source": f"migrated from {source}"}]
    return out


def _memory_kpj(ops: Dict[str, Any]) -> Any:
    """The default memory-aware energy (KpJ per decision) from stored counts, or None when they lack
    the weight reads (records made before memory was counted)."""
    if ops.get("weight_reads") is None:
        return None
    from energy.counting import OpsSummary
    from energy.memory import memory_aware_pj, memory_model

    return memory_aware_pj(OpsSummary.from_dict(ops), memory_model()) / 1e3


def migrate(spec: Spec, sources: List[str], commit: str = "") -> Tuple[List[Record], List[str]]:
    """Records of ``spec`` from the source files (format detected from their keys), and what did not match."""
    records: Dict[str, Record] = {}
    notes: List[str] = []
    energy: Dict[Tuple[str, str, int], List[Dict[str, Any]]] = {}
    for path in sources:
        with open(path) as fh:
            data = json.load(fh)
        name = (os.path.relpath(path) if not os.path.isabs(path) else path) + (f" at commit {commit}" if commit else "")
        if "detail" in data and "structural" in data:   # energy rows of trained checkpoints
            energy.update(energy_rows(data, name))
            continue
        if "groups" in data:
            got, unmatched = from_grid(spec, data, name)
        elif "runs" in data and data["runs"] and "core" in data["runs"][0]:
            got, unmatched = from_po_table1(spec, data, name)
        elif "runs" in data and data["runs"] and "test_curve" in data["runs"][0]:
            got, unmatched = from_proxy_target(spec, data, name)
        else:
            raise ValueError(f"{path}: not a grid file this command knows (expected 'groups' or 'runs')")
        notes += unmatched
        for rec in got:
            if rec.point in records:
                raise ValueError(f"{path}: point {rec.point} appears twice in the sources")
            if rec.metric != spec.protocol.metric:
                raise ValueError(f"{path}: {rec.point} has no curve of the spec's metric {spec.protocol.metric}")
            records[rec.point] = rec
    by_key = {(r.scenario, r.method, r.seed): r for r in records.values()}
    for key, rows in energy.items():
        if key in by_key:
            by_key[key].energy = rows
        else:
            notes.append(f"energy rows of {key} match no record of this spec")
    return list(records.values()), notes
