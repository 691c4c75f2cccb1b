"""GRSN paper Table 1: final test returns on partially observable control, per sequence core.

TD3 on Pendulum-V / Pendulum-P and SAC-discrete on CartPole-V / CartPole-P, for the cores
mlp, gru, lif and grsn, several seeds each. Every run uses the project's config files
(``config/default.yaml <- envs/pomdp.yaml <- algs/{td3,sacd}.yaml``, the same merge as
``src/main.py``) plus the overrides below, and calls the po_rl loop in a worker process.
The final return is the last deterministic evaluation (``test_nepisode`` = 10 episodes at
``t_max``), as in the paper ("tested each final model ten times"), mean +- std over seeds.

    python benchmarks/po_table1.py                                  # full grid, paper budgets
    python benchmarks/po_table1.py --cores gru,grsn --envs CartPole-V --seeds 1 \
        --cartpole-steps 3000 --tag po_table1_small                 # a small check

``--collect`` runs nothing: it gathers every run stored in ``benchmarks/results/po_table1*.json``
(runs made at different budgets and in different sessions) and writes ``po_table1_all.{json,md}``,
each cell from the runs at the largest budget found for it, with that budget and the seed count.

Each finished run is written at once to ``<results-path>/runs/<env>_<core>_seed<s>_t<t_max>[_shortcut].json``;
``--resume`` reuses those, and the finished runs recorded in ``benchmarks/results/<tag>.json`` (a new
machine has no ``runs/``), so a grid can be split over several sessions; with ``--save-model``, a run
that was interrupted continues from its newest complete checkpoint
(``<results-path>/models/po_table1_<algo>_<run file name>``, the loop's true resume) instead
of starting again.

Networks: every run records ``po_shortcut`` and ``po_head_init`` from its config. Runs made
with the heads' shortcut branch (``po_shortcut: True``, the default since it was added) carry
``_shortcut`` in their file name; a stored run without ``po_shortcut`` was made before the key
existed, i.e. without the shortcut (and with PyTorch's default head init), and ``--collect``
puts it in its own row, ``<core> (no shortcut)``. Writes
``benchmarks/results/<tag>.json`` (every run's curve and final return, the summary) and
``benchmarks/results/<tag>.md`` (the table beside the paper's numbers).
"""
from __future__ import annotations

import argparse
import glob
import json
import multiprocessing as mp
import os
import re
import sys
import time
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(ROOT, "src")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report import compare_seeds, relation  # noqa: E402
from run_progress import StopAt, load_progress, save_progress  # noqa: E402  (benchmarks/run_progress.py)

ENVS = ["CartPole-V", "CartPole-P", "Pendulum-V", "Pendulum-P"]
CORES = ["mlp", "gru", "lif", "grsn"]
# Table 1 of Qin et al. (AAAI 2025), mean over 5 seeds (MLP and GRU: their reproduction of Ni et al.)
PAPER: Dict[str, Dict[str, float]] = {
    "mlp": {"CartPole-V": 21.6, "CartPole-P": 21.2, "Pendulum-V": -1502.8, "Pendulum-P": -1380.1},
    "gru": {"CartPole-V": 200.0, "CartPole-P": 196.7, "Pendulum-V": -181.3, "Pendulum-P": -203.5},
    "lif": {"CartPole-V": 200.0, "CartPole-P": 152.2, "Pendulum-V": -942.4, "Pendulum-P": -824.8},
    "grsn": {"CartPole-V": 200.0, "CartPole-P": 199.9, "Pendulum-V": -189.4, "Pendulum-P": -195.8},
}


# overrides that change only what is logged or saved, not what is trained: they do not make a variant
LOGGING_KEYS = {"test_interval", "log_interval", "runner_log_interval", "learner_log_interval",
                "save_model", "save_model_interval", "save_buffer", "local_results_path", "use_tensorboard"}


def variant_of(overrides: Sequence[str]) -> List[str]:
    """The ``--set`` overrides that change training (sorted), e.g. ``["sampled_seq_len=-1"]``.

    Runs with a variant get their own table row and run file, so they never merge into the
    standard cell nor satisfy ``--resume`` for it."""
    return sorted(o for o in overrides if o.split("=", 1)[0].strip() not in LOGGING_KEYS)


def _variant(entry: Dict[str, Any]) -> List[str]:
    """Variant of a job (from its ``extra``) or of a stored run (its ``variant``)."""
    return list(entry["variant"]) if "variant" in entry else variant_of(entry.get("extra", []))


def network_settings(algo: str, extra: Sequence[str], config_dir: str = "") -> Dict[str, Any]:
    """``po_shortcut`` and ``po_head_init`` of a run's merged config (``extra`` = its ``--set``)."""
    if SRC not in sys.path:
        sys.path.insert(0, SRC)
    from utils.config import build_config

    kwargs = {"config_dir": config_dir} if config_dir else {}
    config = build_config(algo, "pomdp", list(extra), **kwargs)
    return {"po_shortcut": bool(config.get("po_shortcut", False)),
            "po_head_init": str(config.get("po_head_init", "torch"))}


def algo_for(env_key: str) -> str:
    """TD3 for the continuous Pendulum tasks, SAC-discrete for CartPole."""
    return "td3" if env_key.startswith("Pendulum") else "sacd"


def run_one(job: Dict[str, Any]) -> Dict[str, Any]:
    """Train one (env, core, seed) with the po_rl loop; returns its test curve and final return,
    or ``{"stopped": ...}`` when the deadline (``job["deadline_at"]``, epoch s) came first: then
    the run did not start, or it saved a last checkpoint (``--save-model``) and stopped."""
    stop = StopAt(job.get("deadline_at"))
    if stop.passed():
        return {"stopped": "not started (deadline passed)"}
    sys.path.insert(0, SRC)
    import torch
    from run.po_rl import run_po_rl
    from utils.config import build_config
    from utils.device import resolve_device
    from utils.logging import Logger
    from utils.seeding import set_seed
    from types import SimpleNamespace

    torch.set_num_threads(int(job["threads"]))
    overrides = [f"agent={job['core']}", f"env_args.key={job['env']}", f"seed={job['seed']}",
                 f"t_max={job['t_max']}", f"save_model={job['save_model']}",
                 f"local_results_path={job['results_path']}", f"device={job['device']}"]
    if job["core"] == "mlp" and job.get("mlp_obs_only"):
        overrides += ["po_action_embed=0", "po_reward_embed=0"]  # the Markovian baseline of Ni et al.
    overrides += list(job["extra"])
    if job.get("resume_from"):  # true resume of an interrupted run from its newest complete checkpoint
        overrides.append(f"checkpoint_path={job['resume_from']}")
    kwargs = {"config_dir": job["config_dir"]} if job["config_dir"] else {}
    config = build_config(job["algo"], "pomdp", overrides, **kwargs)
    config["device"] = resolve_device(config["device"])
    config["name"] = f"{job['algo']}_{job['core']}"
    args = SimpleNamespace(**config)
    args.unique_token = model_token(job)  # checkpoints (--save-model) under <results-path>/models/<token>
    set_seed(int(args.seed))
    logger = Logger()
    logger.print_recent_stats = lambda *a, **k: None  # keep worker output short
    start = time.time()
    # the test curve so far beside the checkpoints, so that a resumed run reports all of it
    progress = (os.path.join(job["results_path"], "models", model_token(job), "progress.json")
                if job["save_model"] else "")
    prior: Dict[str, List[List[float]]] = {}
    wall_before = 0.0
    if job.get("resume_from") and progress:
        from utils.checkpoint import find_checkpoint
        prior, wall_before = load_progress(progress, find_checkpoint(job["resume_from"], 0)[1])
    log_stat = logger.log_stat

    def log_and_keep(key: str, value: float, t: int) -> None:
        log_stat(key, value, t)
        if key == "test_return_mean" and progress:
            save_progress(progress, {key: prior.get(key, []) + [[int(x), float(v)] for x, v in logger.stats[key]]},
                          wall_before + time.time() - start)
        stop.check()
    logger.log_stat = log_and_keep
    error: Optional[str] = None
    try:
        with stop.watch():
            run_po_rl(args, logger)
    except KeyboardInterrupt:
        if not stop.sent:
            raise   # Ctrl-C / SIGTERM from outside: stop the grid
        where = "saved a last checkpoint" if job["save_model"] else "nothing saved (no --save-model)"
        print(f"[{job['env']} {job['core']} seed {job['seed']}] stopped by the deadline; {where}", flush=True)
        return {"stopped": where}
    except Exception as exc:  # one failed run must not lose the others
        error = f"{type(exc).__name__}: {exc}"
    wall = wall_before + time.time() - start
    tests = [tuple(e) for e in prior.get("test_return_mean", [])] + list(logger.stats.get("test_return_mean", []))
    out = {k: job[k] for k in ("algo", "env", "core", "seed", "t_max", "mlp_obs_only")}
    out["variant"] = _variant(job)
    out["po_shortcut"] = bool(config.get("po_shortcut", False))
    out["po_head_init"] = str(config.get("po_head_init", "torch"))
    if job.get("resume_from"):  # curve and wall time: the earlier parts (progress.json) and this one
        out["resumed_from"] = job["resume_from"]
    out.update({"wall_time_s": wall, "error": error,
                "test_T": [t for t, _ in tests], "test_return_mean": [v for _, v in tests],
                "final_return": tests[-1][1] if tests and error is None else None,
                "best_return": max(v for _, v in tests) if tests else None})
    msg = (f"[{job['env']} {job['core']} seed {job['seed']}] final {out['final_return']} "
           f"in {wall:.0f}s" + (f" ERROR {error}" if error else ""))
    print(msg, flush=True)
    return out


def run_name(job: Dict[str, Any]) -> str:
    """File name of one run's result: ``<env>_<core>_seed<seed>_t<t_max>``, then ``_shortcut`` for
    the networks with the heads' shortcut branch (``po_shortcut`` True; runs stored before that
    key have none), then ``_<variant>`` when training overrides were set (``_sampled_seq_len-m1``
    for ``sampled_seq_len=-1``)."""
    tag = "_obsonly" if job["core"] == "mlp" and job.get("mlp_obs_only") else ""
    name = f"{job['env']}_{job['core']}{tag}_seed{job['seed']}_t{job['t_max']}"
    if job.get("po_shortcut") is True:
        name += "_shortcut"
    for override in _variant(job):
        name += "_" + re.sub(r"[^A-Za-z0-9_.]+", "-", override.replace("=-", "-m").replace("=", "-"))
    return name


def stored_runs(path: str) -> List[Dict[str, Any]]:
    """The runs of a stored ``<tag>.json``, each with its ``variant`` (a run stored before variants
    were recorded per run gets its file's training overrides)."""
    with open(path) as f:
        record = json.load(f)
    return [r if "variant" in r else dict(r, variant=variant_of(record.get("overrides", [])))
            for r in record.get("runs", [])]


def tag_runs(path: str) -> Dict[str, Dict[str, Any]]:
    """The finished runs recorded in a ``<tag>.json`` (``{}`` if there is none), by ``run_name``. A
    new machine starts without ``<results-path>/runs/``; ``--resume`` reuses these instead."""
    if not os.path.exists(path):
        return {}
    return {run_name(r): r for r in stored_runs(path) if r.get("final_return") is not None}


def same_networks(stored: Dict[str, Any], job: Dict[str, Any]) -> bool:
    """Whether a stored run was made with the job's networks: the same ``po_shortcut`` (a run stored
    before the key existed had none) and, where the run records it, the same ``po_head_init``."""
    return (stored.get("po_shortcut", False) == job["po_shortcut"]
            and stored.get("po_head_init", job.get("po_head_init")) == job.get("po_head_init"))


def resumable_checkpoint(job: Dict[str, Any]) -> str:
    """The model folder of an unfinished run that holds a complete checkpoint ('' if none): an
    interrupted run saved with ``--save-model`` continues from there instead of from step 0."""
    model_dir = os.path.join(job["results_path"], "models", model_token(job))
    if not os.path.isdir(model_dir):
        return ""
    if SRC not in sys.path:
        sys.path.insert(0, SRC)
    from utils.checkpoint import find_checkpoint

    try:
        find_checkpoint(model_dir, 0)
    except Exception:  # no step folder, or none complete: start from scratch
        return ""
    return model_dir


def checkpoint_step(model_dir: str) -> int:
    """The env step of the newest complete checkpoint in ``model_dir``."""
    from utils.checkpoint import find_checkpoint

    return find_checkpoint(model_dir, 0)[1]


def model_token(job: Dict[str, Any]) -> str:
    """Model folder name of a run (``--save-model``): ``po_table1_<algo>_<run_name>``, so runs with
    and without the shortcut, or with other training overrides, never share a folder."""
    return f"po_table1_{job['algo']}_{run_name(job)}"


def summarise(runs: List[Dict[str, Any]]) -> Dict[str, Dict[str, Dict[str, Any]]]:
    """``summary[core][env]`` = mean/std of final returns over seeds, and wall time."""
    summary: Dict[str, Dict[str, Dict[str, Any]]] = {}
    for r in runs:
        cell = summary.setdefault(r["core"], {}).setdefault(r["env"], {"finals": [], "walls": [], "errors": 0})
        if r["final_return"] is None:
            cell["errors"] += 1
        else:
            cell["finals"].append(r["final_return"])
        cell["walls"].append(r["wall_time_s"])
    for core in summary.values():
        for cell in core.values():
            f = cell["finals"]
            cell["n_seeds"] = len(f)
            cell["final_mean"] = float(np.mean(f)) if f else None
            cell["final_std"] = float(np.std(f)) if f else None
            cell["wall_time_s_mean"] = float(np.mean(cell.pop("walls")))
    return summary


def markdown(summary: Dict[str, Any], envs: Sequence[str], cores: Sequence[str],
             budgets: Dict[str, int], overrides: Sequence[str] = ()) -> str:
    """The table: ours (mean +- std, n seeds) next to the paper's value, per core and env."""
    head = "| core | " + " | ".join(f"{e} (ours) | {e} (paper)" for e in envs) + " |"
    sep = "|---|" + "---|---|" * len(envs)
    lines = ["Final test return (test_nepisode deterministic episodes at t_max, 10 by default; "
             "mean +- std over seeds). Budgets: " + ", ".join(f"{e} {budgets[e]} steps" for e in envs) + "."
             + (f" Overrides: {', '.join(overrides)}." if overrides else ""), "", head, sep]
    for core in cores:
        cells = []
        for e in envs:
            c = summary.get(core, {}).get(e)
            if c is None or c["final_mean"] is None:
                ours = "-" if c is None else f"failed ({c['errors']})"
            else:
                ours = f"{c['final_mean']:.1f} +- {c['final_std']:.1f} (n={c['n_seeds']})"
            paper = PAPER.get(core, {}).get(e)
            cells += [ours, "-" if paper is None else f"{paper:.1f}"]
        lines.append(f"| {core} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def collect(results_dir: str) -> List[Dict[str, Any]]:
    """Every run stored in ``results_dir/po_table1*.json`` (one per env/core/seed/t_max, newest file
    wins), keeping per (env, core) only the runs at the largest t_max."""
    found: Dict[str, Dict[str, Any]] = {}
    paths = sorted(glob.glob(os.path.join(results_dir, "po_table1*.json")), key=os.path.getmtime)
    for path in paths:
        if os.path.basename(path) == "po_table1_all.json":
            continue
        for r in stored_runs(path):
            found[run_name(r)] = r
    best: Dict[Any, int] = {}
    for r in found.values():
        key = (r["env"], cell_core(r))
        best[key] = max(best.get(key, 0), int(r["t_max"]))
    return [r for r in found.values() if int(r["t_max"]) == best[(r["env"], cell_core(r))]]


def cell_core(run: Dict[str, Any]) -> str:
    """The table row of a run: its core, then in brackets ``obs only`` for the Markovian MLP
    baseline, ``no shortcut`` for a run without the heads' shortcut (a record without
    ``po_shortcut`` predates it) and its training overrides, e.g. ``gru (no shortcut,
    sampled_seq_len=-1)``."""
    labels = ["obs only"] if run["core"] == "mlp" and run.get("mlp_obs_only") else []
    variant = _variant(run)
    if run.get("po_shortcut") is not True and not any(v.startswith("po_shortcut=") for v in variant):
        labels.append("no shortcut")
    labels += variant
    return f"{run['core']} ({', '.join(labels)})" if labels else run["core"]


def row_order(row: str) -> tuple:
    """Plain rows first, then variants, then the no-shortcut rows; each group in CORES order."""
    base = row.split(" ")[0]
    return ("no shortcut" in row, row != base, CORES.index(base) if base in CORES else len(CORES), row)


def collected_markdown(runs: List[Dict[str, Any]]) -> str:
    """Table 1 layout from runs of mixed budgets: each cell states its budget and seed count."""
    rows = sorted({cell_core(r) for r in runs}, key=row_order)
    head = "| core | " + " | ".join(f"{e} (ours) | {e} (paper)" for e in ENVS) + " |"
    lines = ["Final test return (test_nepisode = 10 deterministic episodes at the end of training), mean +- std over "
             "n seeds, at the budget in brackets (the paper: Pendulum 50k, CartPole ~11k env steps, 5 seeds). "
             "'-' = not run.", "", head, "|---|" + "---|---|" * len(ENVS)]
    for core in rows:
        cells = []
        for e in ENVS:
            cell = [r for r in runs if r["env"] == e and cell_core(r) == core and r["final_return"] is not None]
            if cell:
                f = [r["final_return"] for r in cell]
                cells.append(f"{np.mean(f):.1f} +- {np.std(f):.1f} (n={len(f)}, {cell[0]['t_max'] // 1000}k)")
            else:
                cells.append("-")
            paper = PAPER.get(core.split(" ")[0], {}).get(e)
            cells.append("-" if paper is None else f"{paper:.1f}")
        lines.append(f"| {core} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def verdicts(runs: List[Dict[str, Any]], seeds_planned: int = 5) -> Dict[str, Dict[str, Any]]:
    """Per env, the plain rows' (shortcut networks) GRSN against GRU, LIF and MLP on the final test
    return, by ``report.compare_seeds`` (above / below only when the means are further apart than
    the larger std over seeds); provisional while a core has fewer than ``seeds_planned`` seeds."""
    out: Dict[str, Dict[str, Any]] = {}
    for e in ENVS:
        finals = {c: [r["final_return"] for r in runs if r["env"] == e and cell_core(r) == c
                      and r["final_return"] is not None] for c in CORES}
        g = finals["grsn"]
        if not g:
            continue
        vs = {}
        for other in ("gru", "lif", "mlp"):
            o = finals[other]
            if o:
                how, diff, tol = compare_seeds(g, o)
                vs[other] = {"verdict": how, "diff": diff, "tol": tol}
        out[e] = {"n": {c: len(v) for c, v in finals.items()},
                  "provisional": any(len(v) < seeds_planned for v in finals.values()), "grsn_vs": vs}
    return out


def verdict_lines(found: Dict[str, Dict[str, Any]], seeds_planned: int = 5) -> List[str]:
    """One markdown line per env: our GRSN against each core, then the paper's values."""
    lines = []
    for e, v in found.items():
        n = ", ".join(f"{c} {v['n'][c]}" for c in CORES)
        head = f"- {e} ({'provisional, ' if v['provisional'] else ''}seeds: {n} of {seeds_planned}): "
        parts = [f"{relation(how['verdict'])} {c.upper()} "
                 f"({how['diff']:+.1f}, std {how['tol']:.1f})" for c, how in v["grsn_vs"].items()]
        paper = ", ".join(f"{c.upper()} {PAPER[c][e]:.1f}" for c in ("grsn", "gru", "lif", "mlp"))
        lines.append(head + ("GRSN " + "; ".join(parts) if parts else "no other core yet") + f". Paper: {paper}.")
    return lines


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--envs", default=",".join(ENVS), help=f"comma list of {ENVS} (or -F keys)")
    p.add_argument("--cores", default=",".join(CORES), help="comma list of mlp,gru,lif,grsn")
    p.add_argument("--seeds", default="1,2,3,4,5")
    p.add_argument("--pendulum-steps", type=int, default=50000, help="t_max for Pendulum-* (paper setting: 50k)")
    p.add_argument("--cartpole-steps", type=int, default=11000, help="t_max for CartPole-* (paper setting: ~11k)")
    p.add_argument("--parallel", type=int, default=max(1, (os.cpu_count() or 2) // 2),
                   help="runs at a time (worker processes)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads per run")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--save-model", action="store_true", help="keep each run's final checkpoint")
    p.add_argument("--results-path", default=os.path.join(ROOT, "results", "po_table1"))
    p.add_argument("--config-dir", default="", help="config folder (default: the project's config/)")
    p.add_argument("--mlp-obs-only", action="store_true",
                   help="mlp core sees only the current observation (no previous action/reward), like "
                        "the Markovian baseline of Ni et al. 2022; default: same inputs as the other cores")
    p.add_argument("--resume", action="store_true",
                   help="reuse finished runs found under <results-path>/runs/ or recorded in "
                        "benchmarks/results/<tag>.json (same env/core/seed/t_max/networks/overrides); an "
                        "unfinished run with a checkpoint (--save-model) continues from it")
    p.add_argument("--tag", default="po_table1", help="output name under benchmarks/results/")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="extra config overrides for every run (e.g. test_interval=2000)")
    p.add_argument("--deadline-s", type=float, default=0.0,
                   help="seconds from now after which runs still going save a last checkpoint (with "
                        "--save-model) and stop, and no new run starts; give the command again with --resume")
    p.add_argument("--dry-run", action="store_true",
                   help="print each run's plan (reuse / resume from step N / fresh) and stop")
    p.add_argument("--collect", action="store_true",
                   help="run nothing; gather the stored runs of every po_table1*.json into po_table1_all")
    p.add_argument("--out-dir", default=os.path.join(ROOT, "benchmarks", "results"),
                   help="where <tag>.json/.md are written (and --collect reads)")
    a = p.parse_args(argv)
    out_dir = a.out_dir
    if a.collect:
        runs = collect(out_dir)
        os.makedirs(out_dir, exist_ok=True)
        found = verdicts(runs)
        table = collected_markdown(runs) + "\n".join(
            ["", "Verdict per task for the shortcut rows (final test return; GRSN above / below another core only "
                 "when the means are further apart than the larger std over seeds, else level):", ""]
            + verdict_lines(found)) + "\n"
        with open(os.path.join(out_dir, "po_table1_all.json"), "w") as f:
            json.dump({"paper": PAPER, "runs": runs, "verdicts": found}, f, indent=1)
        with open(os.path.join(out_dir, "po_table1_all.md"), "w") as f:
            f.write(f"# po_table1_all: GRSN paper Table 1 (PO control), all stored runs\n\n{table}")
        print(table)
        return 0

    envs = [e for e in a.envs.split(",") if e]
    cores = [c for c in a.cores.split(",") if c]
    seeds = [int(s) for s in a.seeds.split(",") if s]
    budgets = {e: a.pendulum_steps if e.startswith("Pendulum") else a.cartpole_steps for e in envs}
    nets = {algo: network_settings(algo, a.set, a.config_dir) for algo in {algo_for(e) for e in envs}}
    jobs = [{"algo": algo_for(e), "env": e, "core": c, "seed": s, "t_max": budgets[e],
             "threads": a.threads, "device": a.device, "save_model": bool(a.save_model),
             "results_path": a.results_path, "extra": a.set, "config_dir": a.config_dir,
             "mlp_obs_only": bool(a.mlp_obs_only), **nets[algo_for(e)]}
            for e in envs for c in cores for s in seeds]
    deadline_at = time.time() + a.deadline_s if a.deadline_s > 0 else None
    run_dir = os.path.join(a.results_path, "runs")
    os.makedirs(run_dir, exist_ok=True)
    recorded = tag_runs(os.path.join(out_dir, f"{a.tag}.json")) if a.resume else {}
    done: List[Dict[str, Any]] = []
    todo = []
    for j in jobs:
        path = os.path.join(run_dir, run_name(j) + ".json")
        stored, source = None, ""
        if a.resume and os.path.exists(path):
            with open(path) as f:
                stored = json.load(f)
        elif run_name(j) in recorded:
            stored, source = recorded[run_name(j)], f" (its record in {a.tag}.json)"
        if stored is not None and same_networks(stored, j):
            done.append(stored)
            plan = "reuse" + source
        else:
            if a.resume:
                j["resume_from"] = resumable_checkpoint(j)
            todo.append(dict(j, deadline_at=deadline_at))
            plan = f"resume from step {checkpoint_step(j['resume_from'])}" if j.get("resume_from") else "fresh"
        print(f"{run_name(j)}: {plan}", flush=True)
    resumed = sum(bool(j.get("resume_from")) for j in todo)
    print(f"{len(jobs)} runs ({len(done)} already done, {resumed} resumed from a checkpoint), "
          f"{a.parallel} at a time", flush=True)
    if a.dry_run:
        return 0
    start = time.time()
    runs = list(done)

    def write_record(complete: bool) -> str:
        """``<tag>.json/.md`` from the runs so far: rewritten after every finished run, so an
        interrupted invocation still leaves its finished runs where ``--collect`` finds them."""
        summary = summarise(runs)
        os.makedirs(out_dir, exist_ok=True)
        record = {"envs": envs, "cores": cores, "seeds": seeds, "budgets": budgets, "overrides": a.set,
                  "mlp_obs_only": bool(a.mlp_obs_only), "networks": nets, "complete": complete,
                  "runs_planned": len(jobs), "runs_finished": len(runs),
                  "device": a.device, "wall_time_s": time.time() - start, "paper": PAPER,
                  "summary": summary, "runs": runs}
        with open(os.path.join(out_dir, f"{a.tag}.json"), "w") as f:
            json.dump(record, f, indent=1)
        table = markdown(summary, envs, cores, budgets, a.set)
        state = "" if complete else f"(partial: {len(runs)} of {len(jobs)} runs finished)\n\n"
        with open(os.path.join(out_dir, f"{a.tag}.md"), "w") as f:
            nets_line = "; ".join(f"{k}: po_shortcut={v['po_shortcut']}, po_head_init={v['po_head_init']}"
                                  for k, v in sorted(nets.items()))
            f.write(f"# {a.tag}: GRSN paper Table 1 (PO control)\n\nNetworks: {nets_line}.\n\n{state}{table}")
        return table

    stopped: List[str] = []

    def keep(r: Dict[str, Any]) -> None:  # each finished run is on disk at once (see --resume)
        if "stopped" in r:
            stopped.append(r["stopped"])
            return
        with open(os.path.join(run_dir, run_name(r) + ".json"), "w") as f:
            json.dump(r, f)
        runs.append(r)
        if len(runs) < len(jobs):
            write_record(complete=False)

    if a.parallel <= 1:
        for j in todo:
            keep(run_one(j))
    else:
        with mp.get_context("spawn").Pool(a.parallel) as pool:
            for r in pool.imap_unordered(run_one, todo, chunksize=1):
                keep(r)
    if stopped:
        write_record(complete=False)
        print(f"deadline: {len(runs)} of {len(jobs)} runs finished; {len(stopped)} stopped or not started "
              f"({sum(s.startswith('saved') for s in stopped)} saved a checkpoint). Give the same command "
              f"with --resume to continue.", flush=True)
    else:
        print(write_record(complete=True))
    return 1 if any(r["error"] for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
