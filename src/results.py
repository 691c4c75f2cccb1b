"""Summarise sacred runs into experiments: tables, learning-curve PNGs and one HTML page.

    python src/results.py results/sacred [more roots ...] [--out results/summary]
        [--where agent=grsn --where env_args.map_name=3m] [--since 2026-12-01] [--all] [--no-plots]

Walks every sacred run folder (one holding ``run.json`` and ``config.json``) under the roots.

* **Experiment identity.** Runs are grouped by their whole config minus the seed and the
  bookkeeping keys that do not change what is trained (``BOOKKEEPING``: paths, logging intervals,
  checkpoint saving, threads, ...). So QMIX and VDN, other ``t_max`` budgets or any other
  override are separate rows, never extra seeds of one row. Each row is labelled
  ``<alg> <variant>`` (variant: the agent, or on MuJoCo the spiking actor's neuron or ``ann``),
  plus ``key=value`` for every key that differs between rows sharing that label.
* **Evaluate-only runs** (``evaluate=True``) are not aggregated; they are listed apart.
* **Resumed runs** (``checkpoint_path`` set, ``evaluate=False``) are joined to the run that saved
  that model folder (its sacred ``info.json["model_dir"]``, or the ``token`` line of its
  ``cout.txt``) into one curve: the earlier run's points before the resumed run's first logged
  step, then the resumed run's points. The joined run counts once, with its last segment's status.
* **Failed starts** (status FAILED with nothing logged) are ignored.
* Only COMPLETED runs are aggregated unless ``--all``; ``--where key=value`` (dotted config
  keys, repeatable, all must hold) and ``--since DATE`` (sacred ``start_time``) filter runs.

Numbers: the final value of each run's curve; cells are mean ± std over runs (population std,
ddof=0) with the number of runs n. Curves: each run is interpolated on the union of all runs'
steps, but only within its own first..last logged step (never extrapolated); every point
averages the runs covering it, the band is mean ± std clipped to the metric's range, and where
fewer runs cover a point the line is dashed and labelled with n.

Writes into ``--out``: ``summary.md``, ``summary.json`` (rows with every run's final values and
identity), ``<scenario>__<metric>.png`` (one per metric per scenario) and ``report.html``
(tables and plots on one page).
"""
from __future__ import annotations

import argparse
import datetime
import html
import json
import math
import os
import re
import sys
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from main import run_variant  # noqa: E402  (the run-name rule; one place for it)

WIN_METRIC = "test_battle_won_mean"
RETURN_METRIC = "test_return_mean"

# config keys that do not change what is trained or measured: left out of the identity (a top-level
# key drops its whole subtree; a dotted key just that entry)
BOOKKEEPING = frozenset({
    "seed", "name", "checkpoint_path", "load_step", "evaluate", "energy", "local_results_path",
    "use_tensorboard", "mongo_url", "mongo_db", "mongo_optional", "torch_threads", "save_model",
    "save_model_interval", "save_buffer", "log_interval", "runner_log_interval",
    "learner_log_interval", "unique_token", "env_config_name", "env_args.jax_cache_dir",
})

Curve = Tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class MetricSpec:
    """How one plotted quantity is read and drawn: ``keys`` are tried in order."""

    name: str
    title: str
    unit: str
    keys: Tuple[str, ...]
    scale: float = 1.0
    low: float = -math.inf
    high: float = math.inf


PLOT_METRICS: Tuple[MetricSpec, ...] = (
    MetricSpec("win_rate", "Test win rate", "%", (WIN_METRIC,), 100.0, 0.0, 100.0),
    MetricSpec("return", "Test return", "return per episode", (RETURN_METRIC,)),
    MetricSpec("loss", "Training loss", "loss (TD / critic)", ("loss", "critic_loss"), 1.0, 0.0),
    MetricSpec("spike_rate", "Spike rate", "spikes per neuron per step",
               ("spike_rate_mean", "test_firing_rate"), 1.0, 0.0, 1.0),
    MetricSpec("wall_time", "Wall time", "s", ("elapsed_s",), 1.0, 0.0),
)


@dataclass
class RunRecord:
    """One sacred run folder: its status, config and metric curves ``{key: (steps, values)}``."""

    path: str
    status: str
    config: Dict[str, Any]
    curves: Dict[str, Curve] = field(default_factory=dict)
    start_time: Optional[datetime.datetime] = None
    model_token: Optional[str] = None  # the model folder this run saved into (basename)

    @property
    def seed(self) -> Any:
        return self.config.get("seed")

    @property
    def scenario(self) -> str:
        env_args = self.config.get("env_args") or {}
        return str(env_args.get("map_name") or env_args.get("key") or "default")

    @property
    def evaluate_only(self) -> bool:
        return bool(self.config.get("evaluate"))

    @property
    def resumes(self) -> Optional[str]:
        """The model token this run continues from (training runs with checkpoint_path)."""
        path = self.config.get("checkpoint_path")
        if not path or self.evaluate_only:
            return None
        path = os.path.normpath(str(path))
        base = os.path.basename(path)
        return os.path.basename(os.path.dirname(path)) if base.isdigit() else base

    @property
    def failed_start(self) -> bool:
        return self.status == "FAILED" and not any(len(s) for s, _ in self.curves.values())

    def final(self, key: str) -> Optional[float]:
        """Last recorded value of ``key`` (None when never logged)."""
        curve = self.curves.get(key)
        return float(curve[1][-1]) if curve is not None and len(curve[1]) else None


@dataclass
class Experiment:
    """One seed's whole training: a run and the runs that resumed it, joined into one curve."""

    segments: List[RunRecord]
    curves: Dict[str, Curve]

    @property
    def first(self) -> RunRecord:
        return self.segments[0]

    @property
    def status(self) -> str:
        return self.segments[-1].status

    @property
    def config(self) -> Dict[str, Any]:
        """The first segment's config with the budget of the last one (a resume may extend it)."""
        cfg = dict(self.first.config)
        if "t_max" in self.segments[-1].config:
            cfg["t_max"] = self.segments[-1].config["t_max"]
        return cfg

    def final(self, key: str) -> Optional[float]:
        curve = self.curves.get(key)
        return float(curve[1][-1]) if curve is not None and len(curve[1]) else None

    def last_step(self) -> Optional[float]:
        ends = [float(s[-1]) for s, _ in self.curves.values() if len(s)]
        return max(ends) if ends else None


# --------------------------------------------------------------------------- reading

def _scalar(v: Any) -> Optional[float]:
    """A float from a logged value: plain number, or a jsonpickled numpy/torch scalar dict."""
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, dict):
        return _scalar(v["value"]) if "value" in v else None
    if isinstance(v, (list, tuple)) and len(v) == 1:
        return _scalar(v[0])
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _series(steps: Sequence[Any], values: Sequence[Any]) -> Curve:
    """Finite (step, value) pairs sorted by step; a step logged twice keeps its last value."""
    pairs: Dict[float, float] = {}
    for s, v in zip(steps, values):
        s, v = _scalar(s), _scalar(v)
        if s is not None and v is not None and math.isfinite(v):
            pairs[s] = v
    if not pairs:
        return np.zeros(0), np.zeros(0)
    keys = sorted(pairs)
    return np.asarray(keys, dtype=float), np.asarray([pairs[k] for k in keys], dtype=float)


def _load_json(path: str) -> Any:
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, json.JSONDecodeError):
        return None


def read_curves(run_dir: str) -> Dict[str, Curve]:
    """``{metric: (steps, values)}`` from metrics.json if present, else info.json."""
    curves: Dict[str, Curve] = {}
    metrics = _load_json(os.path.join(run_dir, "metrics.json"))
    if isinstance(metrics, dict):
        for key, rec in metrics.items():
            if isinstance(rec, dict) and "values" in rec:
                steps = rec.get("steps") or list(range(len(rec["values"])))
                curves[key] = _series(steps, rec["values"])
        if curves:
            return curves
    info = _load_json(os.path.join(run_dir, "info.json"))
    return curves_from_info(info) if isinstance(info, dict) else curves


def curves_from_info(info: Dict[str, Any], keys: Optional[Sequence[str]] = None,
                     default_steps: Optional[Sequence[Any]] = None) -> Dict[str, Curve]:
    """``{metric: (steps, values)}`` from a sacred info dict (``<key>``: values, ``<key>_T``: their
    steps), only ``keys`` when given. A key without steps of its length takes ``default_steps``
    when that has its length, else 0, 1, 2, ..."""
    curves: Dict[str, Curve] = {}
    for key, values in info.items():
        if key.endswith("_T") or not isinstance(values, list) or (keys is not None and key not in keys):
            continue
        steps = info.get(key + "_T")
        if not isinstance(steps, list) or len(steps) != len(values):
            fallback = default_steps is not None and len(default_steps) == len(values)
            steps = list(default_steps) if fallback else list(range(len(values)))
        curves[key] = _series(steps, values)
    return curves


def _model_token(run_dir: str) -> Optional[str]:
    """Basename of the model folder a run saved into: info.json ``model_dir``, else cout.txt."""
    info = _load_json(os.path.join(run_dir, "info.json"))
    if isinstance(info, dict) and isinstance(info.get("model_dir"), str) and info["model_dir"]:
        return os.path.basename(os.path.normpath(info["model_dir"]))
    try:
        with open(os.path.join(run_dir, "cout.txt"), errors="replace") as fh:
            match = re.search(r"\btoken (\S+)", fh.read(20000))
    except OSError:
        return None
    return match.group(1) if match else None


def _parse_time(text: Any) -> Optional[datetime.datetime]:
    if not isinstance(text, str):
        return None
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", ""))
    except ValueError:
        return None


def find_run_dirs(root: str) -> List[str]:
    """Every folder under ``root`` (itself included) holding a sacred run.json + config.json."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != "_sources"]
        if "run.json" in filenames and "config.json" in filenames:
            found.append(dirpath)
    return sorted(found)


def load_run(run_dir: str) -> Optional[RunRecord]:
    """Read one sacred run folder (None if its json files are unreadable)."""
    run = _load_json(os.path.join(run_dir, "run.json"))
    config = _load_json(os.path.join(run_dir, "config.json"))
    if not isinstance(run, dict) or not isinstance(config, dict):
        return None
    return RunRecord(path=run_dir, status=str(run.get("status", "UNKNOWN")), config=config,
                     curves=read_curves(run_dir), start_time=_parse_time(run.get("start_time")),
                     model_token=_model_token(run_dir))


def load_runs(roots: Iterable[str]) -> List[RunRecord]:
    """Every readable run under ``roots`` (each folder once)."""
    runs, seen = [], set()
    for root in roots:
        if not os.path.exists(root):
            raise FileNotFoundError(f"results root '{root}' does not exist (expected e.g. results/sacred)")
        for d in find_run_dirs(root):
            real = os.path.realpath(d)
            if real not in seen:
                seen.add(real)
                rec = load_run(d)
                if rec is not None:
                    runs.append(rec)
    return runs


# --------------------------------------------------------------------------- identity and joining

def flatten(config: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
    """``{"env_args": {"map_name": "3m"}}`` -> ``{"env_args.map_name": "3m"}``."""
    flat: Dict[str, Any] = {}
    for key, value in config.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, path + "."))
        else:
            flat[path] = value
    return flat


def identity(config: Dict[str, Any]) -> Dict[str, str]:
    """The keys that define an experiment: the flat config minus ``BOOKKEEPING`` keys, as JSON text."""
    return {k: json.dumps(v, sort_keys=True) for k, v in sorted(flatten(config).items())
            if k not in BOOKKEEPING and k.split(".")[0] not in BOOKKEEPING}


def method_label(config: Dict[str, Any]) -> str:
    """``"<alg> <variant>"``, e.g. ``qmix grsn``, ``td3_proxy lif``, ``td3 ann``."""
    alg = config.get("config_name") or str(config.get("name", "?")).split("_")[0]
    return f"{alg} {run_variant(config)}"


def _join_curves(earlier: Dict[str, Curve], later: Dict[str, Curve]) -> Dict[str, Curve]:
    """The earlier curves before the later run's first logged step, then the later curves.

    Wall-clock series restarting from zero in the later run (``elapsed_s``) are shifted by the
    earlier run's value at the cut so the joined series keeps counting."""
    firsts = [float(s[0]) for s, _ in later.values() if len(s)]
    if not firsts:
        return dict(earlier)
    cut = min(firsts)
    joined: Dict[str, Curve] = {}
    for key in set(earlier) | set(later):
        es, ev = earlier.get(key, (np.zeros(0), np.zeros(0)))
        ls, lv = later.get(key, (np.zeros(0), np.zeros(0)))
        keep = es < cut
        es, ev = es[keep], ev[keep]
        if key == "elapsed_s" and len(ev) and len(lv) and lv[0] < ev[-1]:
            lv = lv + ev[-1]
        joined[key] = (np.concatenate([es, ls]), np.concatenate([ev, lv]))
    return joined


def join_resumed(runs: Sequence[RunRecord]) -> List[Experiment]:
    """Chain each training run with the runs that resumed from its model folder.

    When several runs resumed from the same folder, the newest one continues the chain: a retry
    supersedes an attempt that died (e.g. killed while loading) or was given up, and the
    superseded attempt stands alone. A run resuming from a model folder that no loaded run saved
    stands alone too (its curve starts where it resumed). Evaluate-only runs are not passed here."""
    by_token = {r.model_token: r for r in runs if r.model_token}
    child_of: Dict[int, RunRecord] = {}
    roots = []
    for r in sorted(runs, key=lambda r: (r.start_time or datetime.datetime.min, r.path)):
        parent = by_token.get(r.resumes) if r.resumes else None
        if parent is not None and parent is not r:
            superseded = child_of.get(id(parent))
            if superseded is not None:
                roots.append(superseded)
            child_of[id(parent)] = r
        else:
            roots.append(r)
    experiments = []
    for root in roots:
        chain, curves = [root], dict(root.curves)
        while id(chain[-1]) in child_of:
            nxt = child_of[id(chain[-1])]
            if nxt in chain:
                break
            curves = _join_curves(curves, nxt.curves)
            chain.append(nxt)
        experiments.append(Experiment(chain, curves))
    return experiments


# --------------------------------------------------------------------------- selection

def _matches(config: Dict[str, Any], where: Sequence[Tuple[str, str]]) -> bool:
    flat = flatten(config)
    for key, text in where:
        if key not in flat:
            return False
        value = flat[key]
        if str(value) != text and json.dumps(value) != text and str(value).lower() != text.lower():
            return False
    return True


def parse_where(items: Sequence[str]) -> List[Tuple[str, str]]:
    """``["agent=grsn"]`` -> ``[("agent", "grsn")]``; a malformed item raises ValueError."""
    out = []
    for item in items:
        if "=" not in item or not item.split("=", 1)[0]:
            raise ValueError(f"--where '{item}' is not of the form key=value (e.g. --where env_args.map_name=3m)")
        key, value = item.split("=", 1)
        out.append((key.strip(), value.strip()))
    return out


def parse_since(text: Optional[str]) -> Optional[datetime.datetime]:
    """``2026-12-01`` or ``2026-12-01T15:00`` -> datetime; bad text raises ValueError."""
    if not text:
        return None
    try:
        return datetime.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--since '{text}' is not a date; use YYYY-MM-DD or YYYY-MM-DDTHH:MM") from None


@dataclass
class Selection:
    """The runs a summary covers, and what was left out and why."""

    experiments: List[Experiment]
    evaluations: List[RunRecord]
    left_out: Dict[str, int]


def select(runs: Sequence[RunRecord], statuses: Optional[Sequence[str]] = ("COMPLETED",),
           where: Sequence[Tuple[str, str]] = (), since: Optional[datetime.datetime] = None,
           names: Optional[Sequence[str]] = None) -> Selection:
    """Join resumed runs and keep the experiments whose (last) status, config and start pass
    (``names``: keep only runs whose config ``name`` is one of these, e.g. a sweep's runs)."""
    left: Dict[str, int] = {}

    def drop(reason: str) -> None:
        left[reason] = left.get(reason, 0) + 1

    training, evaluations = [], []
    for r in runs:
        if r.failed_start:
            drop("failed start")
        elif r.evaluate_only:
            evaluations.append(r)
        else:
            training.append(r)
    kept = []
    for exp in join_resumed(training):
        if statuses is not None and exp.status not in statuses:
            drop(f"status {exp.status}")
        elif not _matches(exp.config, where):
            drop("--where")
        elif names is not None and exp.config.get("name") not in names:
            drop("other run names")
        elif since is not None and (exp.first.start_time is None or exp.first.start_time < since):
            drop("--since")
        else:
            kept.append(exp)
    evaluations = [r for r in evaluations if _matches(r.config, where)
                   and (names is None or r.config.get("name") in names)
                   and (since is None or (r.start_time is not None and r.start_time >= since))]
    return Selection(kept, evaluations, left)


# --------------------------------------------------------------------------- numbers

def _mean_std(xs: List[float]) -> Tuple[Optional[float], Optional[float]]:
    if not xs:
        return None, None
    arr = np.asarray(xs, dtype=float)
    return float(arr.mean()), float(arr.std())


def group_experiments(experiments: Sequence[Experiment]) -> List[Dict[str, Any]]:
    """Groups of experiments with the same scenario and identity, each with its row label.

    The label is ``method_label``; rows of one scenario sharing a label get the ``key=value``
    pairs that differ between them appended."""
    groups: Dict[Tuple[str, Tuple[Tuple[str, str], ...]], List[Experiment]] = {}
    for exp in experiments:
        key = (exp.first.scenario, tuple(identity(exp.config).items()))
        groups.setdefault(key, []).append(exp)
    out = []
    for (scenario, ident), members in groups.items():
        out.append({"scenario": scenario, "identity": dict(ident), "members": members,
                    "method": method_label(members[0].config)})
    for g in out:
        peers = [p for p in out if p["scenario"] == g["scenario"] and p["method"] == g["method"]]
        keys = sorted({k for p in peers for k in set(p["identity"]) | set(g["identity"])
                       if p["identity"].get(k) != g["identity"].get(k)})
        g["differs"] = {k: json.loads(g["identity"][k]) if k in g["identity"] else None for k in keys}
        extra = " ".join(f"{k}={v}" for k, v in g["differs"].items())
        g["label"] = f"{g['method']} {extra}".strip()
    return sorted(out, key=lambda g: (g["scenario"], g["label"]))


def aggregate(experiments: Sequence[Experiment], metric: str = WIN_METRIC,
              return_metric: str = RETURN_METRIC) -> List[Dict[str, Any]]:
    """One row per (scenario, identity): final win rate (%), final return, last step, wall time."""
    rows = []
    for g in group_experiments(experiments):
        members = sorted(g["members"], key=lambda e: (str(e.first.seed), e.first.path))
        wins = [100.0 * v for v in (e.final(metric) for e in members) if v is not None]
        rets = [v for v in (e.final(return_metric) for e in members) if v is not None]
        walls = [v for v in (e.final("elapsed_s") for e in members) if v is not None]
        steps = [v for v in (e.last_step() for e in members) if v is not None]
        wm, ws = _mean_std(wins)
        rm, rs = _mean_std(rets)
        seeds = [e.first.seed for e in members]
        finals: Dict[str, Dict[str, Any]] = {}
        for key in sorted({k for spec in PLOT_METRICS for k in spec.keys} | {metric, return_metric}):
            vals = [v for v in (e.final(key) for e in members) if v is not None]
            if vals:
                mean, std = _mean_std(vals)
                finals[key] = {"mean": mean, "std": std, "n": len(vals), "values": vals}
        rows.append({
            "scenario": g["scenario"], "label": g["label"], "method": g["method"], "differs": g["differs"],
            "n_runs": len(members), "seeds": seeds,
            "repeated_seeds": sorted({str(s) for s in seeds if seeds.count(s) > 1}),
            "win_rate_mean": wm, "win_rate_std": ws, "n_win": len(wins),
            "return_mean": rm, "return_std": rs, "n_return": len(rets),
            "last_step_mean": _mean_std(steps)[0], "wall_time_mean": _mean_std(walls)[0],
            "final_win_rates": wins, "final_returns": rets, "final_metrics": finals,
            "runs": [[s.path for s in e.segments] for e in members],
            "identity": {k: json.loads(v) for k, v in g["identity"].items()},
        })
    return rows


def _cell(mean: Optional[float], std: Optional[float], n: int, digits: int) -> str:
    if mean is None:
        return "-"
    return f"{mean:.{digits}f} ± {std:.{digits}f} (n={n})"


def _num(value: Optional[float], fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def table_cells(rows: Sequence[Dict[str, Any]]) -> Tuple[List[str], List[List[str]]]:
    """Header and cells of the summary table (shared by markdown and HTML)."""
    header = ["scenario", "experiment", "runs", "seeds", "final test win %", "final test return",
              "last t_env (mean)", "wall time s (mean)"]
    cells = []
    for r in rows:
        seeds = ", ".join(str(s) for s in r["seeds"])
        if r["repeated_seeds"]:
            seeds += f" (repeated: {', '.join(r['repeated_seeds'])})"
        cells.append([r["scenario"], r["label"], str(r["n_runs"]), seeds,
                      _cell(r["win_rate_mean"], r["win_rate_std"], r["n_win"], 1),
                      _cell(r["return_mean"], r["return_std"], r["n_return"], 2),
                      _num(r["last_step_mean"], ",.0f"), _num(r["wall_time_mean"], ".0f")])
    return header, cells


def evaluation_cells(evaluations: Sequence[RunRecord]) -> Tuple[List[str], List[List[str]]]:
    """Header and cells of the evaluate-only table."""
    header = ["scenario", "experiment", "seed", "checkpoint", "test win %", "test return", "run"]
    cells = []
    for r in sorted(evaluations, key=lambda r: (r.scenario, r.path)):
        win = r.final(WIN_METRIC)
        cells.append([r.scenario, method_label(r.config), str(r.seed), str(r.config.get("checkpoint_path") or "-"),
                      _num(None if win is None else 100 * win, ".1f"), _num(r.final(RETURN_METRIC), ".2f"), r.path])
    return header, cells


def _md_table(header: List[str], cells: List[List[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells]
    return "\n".join(lines) + "\n"


NOTE = ("Final value of each run (the last logged test), mean ± std over runs (population std, "
        "ddof=0); n = runs with that metric. Runs are grouped by their whole config minus the seed "
        "and bookkeeping keys; resumed runs are joined to the run they continue.")


def markdown_report(rows: Sequence[Dict[str, Any]], selection: Selection) -> str:
    """summary.md: the experiments table, the evaluate-only runs and what was left out."""
    parts = [_md_table(*table_cells(rows)) + "\n" + NOTE + "\n" if rows else "No finished runs found.\n"]
    if selection.evaluations:
        parts.append("\nEvaluate-only runs (not aggregated):\n\n" + _md_table(*evaluation_cells(selection.evaluations)))
    if selection.left_out:
        parts.append("\nLeft out: " + ", ".join(f"{k}: {v}" for k, v in sorted(selection.left_out.items()))
                     + " (--all includes unfinished runs).\n")
    return "".join(parts)


# --------------------------------------------------------------------------- curves

def mean_curve(curves: Sequence[Curve]) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean, std and count of several (steps, values) curves on a common step grid.

    The grid is the union of all steps. A curve contributes at a grid point only between its
    own first and last step (linear interpolation there, never extrapolation). Returns
    ``(grid, mean, std, n)``, each ``[points]``; std is the population std (ddof=0).
    """
    curves = [(s, v) for s, v in curves if len(s)]
    if not curves:
        empty = np.zeros(0)
        return empty, empty, empty, empty
    grid = np.unique(np.concatenate([s for s, _ in curves]))
    vals = np.full((len(curves), len(grid)), np.nan)
    for i, (s, v) in enumerate(curves):
        inside = (grid >= s[0]) & (grid <= s[-1])
        vals[i, inside] = np.interp(grid[inside], s, v)
    n = (~np.isnan(vals)).sum(0)
    mean = np.nansum(vals, 0) / n
    std = np.sqrt(np.nansum((vals - mean) ** 2, 0) / n)
    return grid, mean, std, n.astype(float)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "default"


def band(spec: MetricSpec, mean: np.ndarray, std: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(line, lower, upper)`` in display units: mean and mean ± std, the band clipped to the
    metric's range (a win rate stays within 0..100 %)."""
    y = spec.scale * np.asarray(mean, dtype=float)
    s = spec.scale * np.asarray(std, dtype=float)
    return y, np.clip(y - s, spec.low, spec.high), np.clip(y + s, spec.low, spec.high)


def _metric_key(spec: MetricSpec, experiments: Sequence[Experiment]) -> Optional[str]:
    for key in spec.keys:
        if any(key in e.curves and len(e.curves[key][0]) for e in experiments):
            return key
    return None


def plot_curves(experiments: Sequence[Experiment], out_dir: str,
                metrics: Sequence[MetricSpec] = PLOT_METRICS) -> List[Dict[str, str]]:
    """One PNG per metric per scenario (``<scenario>__<metric>.png``): per experiment row a
    mean line and a ±std band clipped to the metric's range; dashed with ``n=k`` labels where
    fewer runs cover the steps. Returns ``[{"scenario", "metric", "path", "title"}]``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(out_dir, exist_ok=True)
    made = []
    for g_scen in sorted({e.first.scenario for e in experiments}):
        groups = [g for g in group_experiments(experiments) if g["scenario"] == g_scen]
        members = [e for g in groups for e in g["members"]]
        for spec in metrics:
            key = _metric_key(spec, members)
            if key is None:
                continue
            fig, ax = plt.subplots(figsize=(7, 4.2))
            for i, g in enumerate(groups):
                grid, mean, std, n = mean_curve([e.curves[key] for e in g["members"] if key in e.curves])
                if not len(grid):
                    continue
                color = f"C{i % 10}"
                y, lo, hi = band(spec, mean, std)
                n_max = int(n.max())
                ax.plot(grid, np.where(n == n_max, y, np.nan), color=color, label=f"{g['label']} (n={n_max})")
                if (n < n_max).any():
                    # dashed where fewer runs cover the steps, joined to the solid part at its ends
                    near = np.convolve((n < n_max).astype(int), [1, 1, 1], "same") > 0
                    ax.plot(grid, np.where(near, y, np.nan), color=color, linestyle="--")
                    changes = np.flatnonzero(np.diff(n) != 0) + 1
                    for j in changes:
                        ax.annotate(f"n={int(n[j])}", (grid[j], y[j]), fontsize=7, color=color,
                                    textcoords="offset points", xytext=(2, 4))
                ax.fill_between(grid, lo, hi, color=color, alpha=0.2, linewidth=0)
            title = f"{spec.title}, {g_scen}"
            ax.set_title(title)
            ax.set_xlabel("environment steps (t_env)")
            ax.set_ylabel(f"{key} [{spec.unit}]")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8, title="mean ± std over runs; dashed: fewer runs (n=k)", title_fontsize=8)
            fig.tight_layout()
            path = os.path.join(out_dir, f"{_safe(g_scen)}__{spec.name}.png")
            fig.savefig(path, dpi=100)
            plt.close(fig)
            made.append({"scenario": g_scen, "metric": spec.name, "key": key, "path": path, "title": title})
    return made


# --------------------------------------------------------------------------- HTML

_PAGE_CHECK = """<script>
window.addEventListener("load", function () {
  var imgs = document.images, ok = 0;
  for (var i = 0; i < imgs.length; i++) {
    if (imgs[i].complete && imgs[i].naturalWidth > 0) { ok++; } else { imgs[i].alt = "missing plot: " + imgs[i].alt; }
  }
  document.body.setAttribute("data-images-loaded", ok + "/" + imgs.length);
  if (ok < imgs.length) {
    document.getElementById("status").textContent = (imgs.length - ok) + " plot(s) failed to load.";
  }
});
</script>"""


def _html_table(header: List[str], cells: List[List[str]], css_id: str) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in cells)
    return f'<table id="{css_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def html_report(rows: Sequence[Dict[str, Any]], selection: Selection, plots: Sequence[Dict[str, str]],
                out_dir: str, title: str = "spikemarl results") -> str:
    """One self-contained page (plots referenced beside it): tables, then plots per scenario.

    On load, a small script counts the plots that rendered (``body[data-images-loaded]``) and
    says so on the page when one failed."""
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
             "td,th{border:1px solid #999;padding:3px 8px;font-size:13px}th{background:#eee}"
             "img{max-width:48%;margin:4px;border:1px solid #ddd}</style>", _PAGE_CHECK, "</head><body>",
             f"<h1>{html.escape(title)}</h1><p id='status'></p>"]
    if rows:
        parts.append(_html_table(*table_cells(rows), "summary") + f"<p>{html.escape(NOTE)}</p>")
    else:
        parts.append("<p>No finished runs found.</p>")
    if selection.evaluations:
        parts.append("<h2>Evaluate-only runs (not aggregated)</h2>"
                     + _html_table(*evaluation_cells(selection.evaluations), "evaluations"))
    if selection.left_out:
        parts.append("<p>Left out: " + html.escape(", ".join(f"{k}: {v}" for k, v in
                                                              sorted(selection.left_out.items()))) + "</p>")
    for scenario in sorted({p["scenario"] for p in plots}):
        parts.append(f"<h2>{html.escape(scenario)}</h2>")
        for p in plots:
            if p["scenario"] == scenario:
                rel = os.path.relpath(p["path"], out_dir)
                parts.append(f"<img src='{html.escape(rel)}' alt='{html.escape(p['title'])}'>")
    parts.append("</body></html>\n")
    return "".join(parts)


# --------------------------------------------------------------------------- driver

def summarize(roots: Sequence[str], out_dir: str, metric: str = WIN_METRIC, return_metric: str = RETURN_METRIC,
              statuses: Optional[Sequence[str]] = ("COMPLETED",), where: Sequence[Tuple[str, str]] = (),
              since: Optional[datetime.datetime] = None, plots: bool = True,
              names: Optional[Sequence[str]] = None) -> Tuple[str, List[Dict[str, Any]]]:
    """Collect, select, aggregate; write summary.md / summary.json / PNGs / report.html into ``out_dir``.
    ``names`` keeps only runs with those config names (a sweep's). Returns ``(markdown, rows)``."""
    selection = select(load_runs(roots), statuses=statuses, where=where, since=since, names=names)
    rows = aggregate(selection.experiments, metric, return_metric)
    md = markdown_report(rows, selection)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "summary.md"), "w") as fh:
        fh.write(md)
    made = plot_curves(selection.experiments, out_dir) if (plots and selection.experiments) else []
    with open(os.path.join(out_dir, "report.html"), "w") as fh:
        fh.write(html_report(rows, selection, made, out_dir))
    with open(os.path.join(out_dir, "summary.json"), "w") as fh:
        json.dump({"metric": metric, "return_metric": return_metric, "roots": list(roots),
                   "where": [f"{k}={v}" for k, v in where], "since": since.isoformat() if since else None,
                   "rows": rows, "plots": made, "left_out": selection.left_out,
                   "evaluations": [{"path": r.path, "scenario": r.scenario, "method": method_label(r.config),
                                    "checkpoint_path": r.config.get("checkpoint_path"),
                                    "test_win_rate": r.final(metric), "test_return": r.final(return_metric)}
                                   for r in selection.evaluations]}, fh, indent=2, default=str)
    return md, rows


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("roots", nargs="+", help="sacred folders to walk, e.g. results/sacred")
    p.add_argument("--metric", default=WIN_METRIC, help="win-rate metric, a fraction (default %(default)s)")
    p.add_argument("--return-metric", default=RETURN_METRIC, help="return metric (default %(default)s)")
    p.add_argument("--out", default=os.path.join("results", "summary"), help="output folder (default %(default)s)")
    p.add_argument("--all", action="store_true", help="include runs that are not COMPLETED")
    p.add_argument("--where", action="append", default=[], metavar="KEY=VALUE",
                   help="keep runs whose config has KEY=VALUE (dotted keys, e.g. env_args.map_name=3m); repeatable")
    p.add_argument("--since", default=None, help="keep runs started at or after this date (YYYY-MM-DD[THH:MM])")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG learning curves")
    a = p.parse_args(argv)
    try:
        md, _ = summarize(a.roots, a.out, a.metric, a.return_metric, statuses=None if a.all else ("COMPLETED",),
                          where=parse_where(a.where), since=parse_since(a.since), plots=not a.no_plots)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(md, end="")
    print(f"(written to {a.out}: summary.md, summary.json, report.html"
          + (")" if a.no_plots else " and one PNG per metric per scenario)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
