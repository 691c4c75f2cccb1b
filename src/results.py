"""Summarise sacred runs: final test win rate and return, mean ± std over seeds, plus curves.

    python src/results.py results/sacred/smax [more roots ...] [--metric test_battle_won_mean]
                          [--return-metric test_return_mean] [--out results/summary] [--all]

Walks every sacred run folder (one holding ``run.json`` and ``config.json``) under the
roots, groups runs by (scenario, agent) — scenario = ``env_args.map_name`` or
``env_args.key``, agent = ``agent`` (or ``actor_neuron`` for runs without one) — and
writes, like Table 2 of the GRSN paper (rows = scenarios, columns = agents: mean test
return and test win rate):

    <out>/summary.md      markdown table, cells "mean ± std [n seeds]" (std over seeds, ddof=0)
    <out>/summary.json    the same numbers plus every run's final values
    <out>/curves_<scenario>.png   learning curves: mean line and ±std band per agent

Metrics come from the run's ``metrics.json`` (sacred: ``{key: {"steps", "values", ...}}``)
when present, else from ``info.json`` (``info[key] = [...]``, ``info[key + "_T"] = [...]``).
The win-rate metric is a fraction in [0, 1] and is shown in percent. Only COMPLETED runs
are used unless ``--all`` is given.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

WIN_METRIC = "test_battle_won_mean"
RETURN_METRIC = "test_return_mean"


@dataclass
class RunRecord:
    """One sacred run: where it is, how it was configured and its metric curves."""

    path: str
    status: str
    scenario: str
    agent: str
    seed: Any
    name: str
    config: Dict[str, Any]
    curves: Dict[str, Tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # key -> (steps, values)

    def final(self, key: str) -> Optional[float]:
        """Last recorded value of ``key`` (None when never logged)."""
        if key not in self.curves or len(self.curves[key][1]) == 0:
            return None
        return float(self.curves[key][1][-1])


# --------------------------------------------------------------------------- reading

def _scalar(v: Any) -> Optional[float]:
    """A float from a logged value: plain number, or a jsonpickled numpy/torch scalar dict."""
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, dict):
        for k in ("value",):
            if k in v:
                return _scalar(v[k])
        return None
    if isinstance(v, (list, tuple)) and v:
        return _scalar(v[-1]) if len(v) == 1 else None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _series(steps: Sequence[Any], values: Sequence[Any]) -> Tuple[np.ndarray, np.ndarray]:
    pairs = [(_scalar(s), _scalar(v)) for s, v in zip(steps, values)]
    pairs = [(s, v) for s, v in pairs if s is not None and v is not None and math.isfinite(v)]
    if not pairs:
        return np.zeros(0), np.zeros(0)
    arr = np.asarray(pairs, dtype=float)
    return arr[:, 0], arr[:, 1]


def read_curves(run_dir: str) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    """``{metric: (steps, values)}`` from metrics.json if present, else info.json."""
    metrics_path = os.path.join(run_dir, "metrics.json")
    curves: Dict[str, Tuple[np.ndarray, np.ndarray]] = {}
    if os.path.isfile(metrics_path):
        with open(metrics_path) as fh:
            metrics = json.load(fh)
        for key, rec in metrics.items():
            if isinstance(rec, dict) and "values" in rec:
                steps = rec.get("steps") or list(range(len(rec["values"])))
                curves[key] = _series(steps, rec["values"])
        if curves:
            return curves
    info_path = os.path.join(run_dir, "info.json")
    if os.path.isfile(info_path):
        with open(info_path) as fh:
            info = json.load(fh)
        for key, values in info.items():
            if key.endswith("_T") or not isinstance(values, list):
                continue
            steps = info.get(key + "_T")
            if not isinstance(steps, list) or len(steps) != len(values):
                steps = list(range(len(values)))
            curves[key] = _series(steps, values)
    return curves


def run_identity(config: Dict[str, Any]) -> Tuple[str, str]:
    """``(scenario, agent)`` of a run's config (see module docstring)."""
    env_args = config.get("env_args") or {}
    scenario = env_args.get("map_name") or env_args.get("key") or "default"
    agent = config.get("agent") or config.get("actor_neuron") or "default"
    return str(scenario), str(agent)


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
    try:
        with open(os.path.join(run_dir, "run.json")) as fh:
            run = json.load(fh)
        with open(os.path.join(run_dir, "config.json")) as fh:
            config = json.load(fh)
    except (OSError, json.JSONDecodeError):
        return None
    scenario, agent = run_identity(config)
    return RunRecord(path=run_dir, status=str(run.get("status", "UNKNOWN")), scenario=scenario,
                     agent=agent, seed=config.get("seed"), name=str(config.get("name", "")),
                     config=config, curves=read_curves(run_dir))


def collect_runs(roots: Iterable[str], statuses: Optional[Sequence[str]] = ("COMPLETED",),
                 names: Optional[Iterable[str]] = None) -> Tuple[List[RunRecord], List[RunRecord]]:
    """Load the runs under ``roots``. Returns ``(kept, skipped)``: runs whose status is not in
    ``statuses`` (None = any) or whose config name is not in ``names`` (None = any) are skipped."""
    name_set = None if names is None else set(names)
    kept, skipped = [], []
    seen = set()
    for root in roots:
        if not os.path.exists(root):
            raise FileNotFoundError(f"results root '{root}' does not exist (expected e.g. results/sacred)")
        for d in find_run_dirs(root):
            real = os.path.realpath(d)
            if real in seen:
                continue
            seen.add(real)
            rec = load_run(d)
            if rec is None:
                continue
            if name_set is not None and rec.name not in name_set:
                continue
            if statuses is not None and rec.status not in statuses:
                skipped.append(rec)
            else:
                kept.append(rec)
    return kept, skipped


# --------------------------------------------------------------------------- numbers

def _mean_std(xs: List[float]) -> Tuple[Optional[float], Optional[float]]:
    if not xs:
        return None, None
    arr = np.asarray(xs, dtype=float)
    return float(arr.mean()), float(arr.std())


def aggregate(runs: Sequence[RunRecord], metric: str = WIN_METRIC,
              return_metric: str = RETURN_METRIC) -> List[Dict[str, Any]]:
    """One row per (scenario, agent): final win rate (%) and final return, mean and std over runs."""
    groups: Dict[Tuple[str, str], List[RunRecord]] = {}
    for r in runs:
        groups.setdefault((r.scenario, r.agent), []).append(r)
    rows = []
    for (scenario, agent), members in sorted(groups.items()):
        members = sorted(members, key=lambda r: (str(r.seed), r.path))
        wins = [100.0 * v for v in (r.final(metric) for r in members) if v is not None]
        rets = [v for v in (r.final(return_metric) for r in members) if v is not None]
        wm, ws = _mean_std(wins)
        rm, rs = _mean_std(rets)
        rows.append({
            "scenario": scenario, "agent": agent, "n_runs": len(members),
            "seeds": [r.seed for r in members],
            "win_rate_mean": wm, "win_rate_std": ws, "n_win": len(wins),
            "return_mean": rm, "return_std": rs, "n_return": len(rets),
            "final_win_rates": wins, "final_returns": rets,
            "runs": [r.path for r in members],
        })
    return rows


def _cell(mean: Optional[float], std: Optional[float], n: int, digits: int) -> str:
    if mean is None:
        return "-"
    return f"{mean:.{digits}f} ± {std:.{digits}f} [{n}]"


def markdown_table(rows: Sequence[Dict[str, Any]], metric: str = WIN_METRIC,
                   return_metric: str = RETURN_METRIC) -> str:
    """Table 2 layout: rows = scenarios; per agent a return column and a win-rate column."""
    agents = sorted({r["agent"] for r in rows})
    scenarios = sorted({r["scenario"] for r in rows})
    by_key = {(r["scenario"], r["agent"]): r for r in rows}
    header = ["Scenario"]
    for a in agents:
        header += [f"{a} reward", f"{a} win %"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for s in scenarios:
        cells = [s]
        for a in agents:
            r = by_key.get((s, a))
            if r is None:
                cells += ["-", "-"]
            else:
                cells.append(_cell(r["return_mean"], r["return_std"], r["n_return"], 2))
                cells.append(_cell(r["win_rate_mean"], r["win_rate_std"], r["n_win"], 1))
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"Final `{return_metric}` and final `{metric}` (in %), mean ± std over seeds "
                 f"(std with ddof=0); [n] = runs in the cell.")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- curves

def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "default"


def mean_curve(curves: Sequence[Tuple[np.ndarray, np.ndarray]]) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and std of several (steps, values) curves on a common step grid.

    The grid is the union of all steps up to the shortest run's last step (so every point
    averages all runs); values are linearly interpolated. Returns ``(grid, mean, std)``.
    """
    curves = [(s, v) for s, v in curves if len(s)]
    if not curves:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    end = min(float(s[-1]) for s, _ in curves)
    grid = np.unique(np.concatenate([s[s <= end] for s, _ in curves]))
    stacked = np.stack([np.interp(grid, s, v) for s, v in curves])
    return grid, stacked.mean(0), stacked.std(0)


def plot_curves(runs: Sequence[RunRecord], out_dir: str, metric: str = WIN_METRIC,
                return_metric: str = RETURN_METRIC) -> List[str]:
    """One PNG per scenario: ``metric`` (or ``return_metric`` where it was never logged)
    against environment steps, mean line and ±std band per agent. Returns the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for scenario in sorted({r.scenario for r in runs}):
        members = [r for r in runs if r.scenario == scenario]
        key = metric if any(metric in r.curves and len(r.curves[metric][0]) for r in members) else return_metric
        scale = 100.0 if key == metric else 1.0
        fig, ax = plt.subplots(figsize=(6, 4))
        drew = False
        for agent in sorted({r.agent for r in members}):
            grid, mean, std = mean_curve([r.curves[key] for r in members if r.agent == agent and key in r.curves])
            if not len(grid):
                continue
            n = sum(1 for r in members if r.agent == agent and key in r.curves)
            ax.plot(grid, scale * mean, label=f"{agent} (n={n})")
            ax.fill_between(grid, scale * (mean - std), scale * (mean + std), alpha=0.25)
            drew = True
        if not drew:
            plt.close(fig)
            continue
        ax.set_title(scenario)
        ax.set_xlabel("environment steps")
        ax.set_ylabel(f"{key} (%)" if scale != 1.0 else key)
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        path = os.path.join(out_dir, f"curves_{_safe(scenario)}.png")
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(path)
    return paths


# --------------------------------------------------------------------------- driver

def summarize(roots: Sequence[str], out_dir: str, metric: str = WIN_METRIC,
              return_metric: str = RETURN_METRIC, statuses: Optional[Sequence[str]] = ("COMPLETED",),
              names: Optional[Iterable[str]] = None, plots: bool = True) -> Tuple[str, List[Dict[str, Any]]]:
    """Collect, aggregate, write summary.md / summary.json / curve PNGs into ``out_dir``.
    Returns ``(markdown, rows)``."""
    runs, skipped = collect_runs(roots, statuses=statuses, names=names)
    rows = aggregate(runs, metric, return_metric)
    md = markdown_table(rows, metric, return_metric) if rows else "No finished runs found.\n"
    if skipped:
        counts: Dict[str, int] = {}
        for r in skipped:
            counts[r.status] = counts.get(r.status, 0) + 1
        md += ("Left out (status): " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
               + " — use --all to include them.\n")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "summary.md"), "w") as fh:
        fh.write(md)
    pngs = plot_curves(runs, out_dir, metric, return_metric) if (plots and runs) else []
    with open(os.path.join(out_dir, "summary.json"), "w") as fh:
        json.dump({"metric": metric, "return_metric": return_metric, "roots": list(roots),
                   "rows": rows, "plots": pngs, "n_skipped": len(skipped)}, fh, indent=2)
    return md, rows


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("roots", nargs="+", help="sacred folders to walk, e.g. results/sacred/smax")
    p.add_argument("--metric", default=WIN_METRIC, help="win-rate metric, a fraction (default %(default)s)")
    p.add_argument("--return-metric", default=RETURN_METRIC, help="return metric (default %(default)s)")
    p.add_argument("--out", default=os.path.join("results", "summary"), help="output folder (default %(default)s)")
    p.add_argument("--all", action="store_true", help="include runs that are not COMPLETED")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG learning curves")
    a = p.parse_args(argv)
    try:
        md, rows = summarize(a.roots, a.out, a.metric, a.return_metric,
                             statuses=None if a.all else ("COMPLETED",), plots=not a.no_plots)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(md, end="")
    print(f"(written to {os.path.join(a.out, 'summary.md')}, summary.json and curves_*.png)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
