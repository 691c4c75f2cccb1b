"""Proxy Target benchmark: {td3, td3_snn, td3_proxy} x MuJoCo tasks x seeds at a given step budget.

Each run is the real ``td3_mujoco`` loop, configured exactly as ``python src/main.py
--config=<cfg> --env-config=mujoco with ...`` would be (``utils.config.build_config``), run
in-process in a worker (no sacred record, no checkpoints). Reported per run: the test-return
curve, its maximum ("max average return": the best mean over ``test_nepisode`` evaluation
episodes, the paper's Table 1 metric), wall time and training speed.

The paper trains 1M steps (25k random) and reports the mean over 5 seeds. That is out of reach
on a CPU; pass a budget (``--t-max``, ``--start-steps``) and compare vanilla vs proxy at equal
steps and seeds. The table compares configurations at the largest step every run of that task
reached (runs cut by ``--time-limit`` stop early), next to the paper's 1M-step numbers.

Examples::

    python benchmarks/proxy_target.py --envs Hopper-v4 --seeds 1 2 --t-max 30000 \\
        --start-steps 5000 --test-interval 2500 --test-nepisode 5 --workers 2
    python benchmarks/proxy_target.py --table-only      # rebuild the markdown from the json

Results accumulate in ``benchmarks/results/proxy_target.json`` (one record per config, task,
neuron, seed and budget; a rerun replaces its record) and the table in
``benchmarks/results/proxy_target.md``.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from types import SimpleNamespace
from typing import Any, Dict, List, Optional, Sequence

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "src"))

RESULTS_DIR = os.path.join(ROOT, "benchmarks", "results")
CONFIGS = ("td3", "td3_snn", "td3_proxy")
LABELS = {"td3": "ANN TD3", "td3_snn": "vanilla SNN", "td3_proxy": "proxy-target SNN"}
TASKS = ("InvertedDoublePendulum", "Ant", "HalfCheetah", "Hopper", "Walker2d")
# Paper Table 1 (max average return, 1M steps, 5 seeds); SNN rows with LIF neurons.
PAPER = {
    "td3": {"InvertedDoublePendulum": 7503, "Ant": 4770, "HalfCheetah": 10857, "Hopper": 3410,
            "Walker2d": 4340},
    "td3_snn": {"InvertedDoublePendulum": 9347, "Ant": 4294, "HalfCheetah": 9404, "Hopper": 3520,
                "Walker2d": 1862},
    "td3_proxy": {"InvertedDoublePendulum": 9348, "Ant": 5383, "HalfCheetah": 10103,
                  "Hopper": 3385, "Walker2d": 4314},
}


class _TimeUp(Exception):
    """Raised from the logger when a run's wall-clock limit has passed."""


class RecordingLogger:
    """The Logger interface (log_stat / print_recent_stats / console), kept in memory."""

    def __init__(self, deadline: Optional[float]) -> None:
        import logging

        self.stats: Dict[str, List[List[float]]] = {}
        self.console = logging.getLogger("proxy_target_bench")
        self.deadline = deadline

    def log_stat(self, key: str, value: float, t: int) -> None:
        self.stats.setdefault(key, []).append([int(t), float(value)])
        # stop only right after an evaluation, so every run ends on a test point
        if key == "test_return_best" and self.deadline is not None and time.time() > self.deadline:
            raise _TimeUp()

    def print_recent_stats(self) -> None:
        pass


def run_key(rec: Dict[str, Any]) -> str:
    return f"{rec['config']}|{rec['env']}|{rec['neuron']}|seed{rec['seed']}|t{rec['t_max']}"


def build_args(job: Dict[str, Any]) -> SimpleNamespace:
    """The merged config of one run, as main.py would build it."""
    from utils.config import CONFIG_DIR, build_config

    overrides = [f"env_args.key={job['env']}", f"seed={job['seed']}", f"t_max={job['t_max']}",
                 f"start_steps={job['start_steps']}", f"test_interval={job['test_interval']}",
                 f"test_nepisode={job['test_nepisode']}", f"log_interval={job['test_interval']}",
                 "save_model=False", f"device={job['device']}", "torch_threads=1"]
    if job["config"] != "td3":
        overrides.append(f"actor_neuron={job['neuron']}")
    config = build_config(job["config"], "mujoco", overrides, config_dir=job["config_dir"] or CONFIG_DIR)
    config["name"] = f"bench_{job['config']}"
    args = SimpleNamespace(**config)
    args.unique_token = f"bench_{job['config']}_{job['env']}_seed{job['seed']}"
    return args


def run_one(job: Dict[str, Any]) -> Dict[str, Any]:
    """Run one configuration; returns its record (also on a time-out, marked ``complete: False``)."""
    import torch

    from run.td3_mujoco import run_td3_mujoco
    from utils.seeding import set_seed

    torch.set_num_threads(1)
    args = build_args(job)
    set_seed(int(args.seed))
    start = time.time()
    logger = RecordingLogger(start + job["time_limit"] if job["time_limit"] else None)
    complete = True
    try:
        run_td3_mujoco(args, logger)
    except _TimeUp:
        complete = False
    wall = time.time() - start
    curve = logger.stats.get("test_return_mean", [])
    t_reached = curve[-1][0] if curve else 0
    sps = [v for t, v in logger.stats.get("steps_per_sec", []) if t > job["start_steps"]]
    rec = {k: job[k] for k in ("config", "env", "neuron", "seed", "t_max", "start_steps",
                                "test_interval", "test_nepisode", "device")}
    rec.update(complete=complete, t_reached=t_reached, wall_s=round(wall, 1),
               train_steps_per_sec=round(sum(sps) / len(sps), 2) if sps else None,
               max_avg_return=max(v for _, v in curve) if curve else None,
               final_return=curve[-1][1] if curve else None, test_curve=curve,
               proxy_loss=logger.stats.get("proxy_loss", []),
               firing_rate=logger.stats.get("test_firing_rate", []))
    return rec


def load_results(path: str) -> Dict[str, Dict[str, Any]]:
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return {run_key(r): r for r in json.load(f)["runs"]}


def save_results(path: str, runs: Dict[str, Dict[str, Any]]) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    data = {"paper_table1_max_avg_return_1M_steps": PAPER,
            "runs": sorted(runs.values(), key=run_key)}
    with open(path + ".tmp", "w") as f:
        json.dump(data, f, indent=1)
    os.replace(path + ".tmp", path)


def _task(env_key: str) -> str:
    return env_key.split("-")[0]


def markdown_table(runs: Sequence[Dict[str, Any]]) -> str:
    """Max average test return (mean ± std over seeds) at equal steps, beside the paper."""
    import numpy as np

    groups: Dict[tuple, List[Dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault((r["env"], r["neuron"], r["device"], r["t_max"], r["start_steps"]), []).append(r)
    lines = ["# Proxy Target benchmark (max average test return)", "",
             "Ours: mean ± std over seeds of the best evaluation mean, counted up to the step every "
             "run of that row reached (`steps`). Paper: Table 1 of Xu et al. (1M steps, 5 seeds, LIF). "
             "Our budgets are far below 1M steps, so only the ordering at equal steps is comparable.",
             "", "| task | neuron | device | start steps | steps | seeds | " + " | ".join(
                 f"{LABELS[c]} (ours) | {LABELS[c]} (paper)" for c in CONFIGS) + " | train steps/s (ann/snn/proxy) |",
             "|" + "---|" * (7 + 2 * len(CONFIGS))]
    for (env, neuron, device, t_max, start), rs in sorted(groups.items()):
        common = min(r["t_reached"] for r in rs)
        cells, speeds = [], []
        seeds = sorted({r["seed"] for r in rs})
        for c in CONFIGS:
            vals = [max(v for t, v in r["test_curve"] if t <= common) for r in rs if r["config"] == c]
            sp = [r["train_steps_per_sec"] for r in rs if r["config"] == c and r["train_steps_per_sec"]]
            speeds.append(f"{np.mean(sp):.0f}" if sp else "-")
            ours = f"{np.mean(vals):.0f} ± {np.std(vals):.0f} (n={len(vals)})" if vals else "-"
            paper = PAPER[c].get(_task(env), "-")
            cells += [ours, str(paper) if c == "td3" or neuron == "lif" else "-"]
        lines.append(f"| {env} | {neuron} | {device} | {start} | {common} | {','.join(map(str, seeds))} | "
                     + " | ".join(cells) + f" | {'/'.join(speeds)} |")
    lines += ["", "`steps`: evaluations up to this env step count (runs cut by --time-limit stop early). "
              "Speeds are env steps/s while training, one process per run on one torch thread, and depend "
              "on the machine's load. Per-run curves, budgets and test settings: proxy_target.json."]
    return "\n".join(lines) + "\n"


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--envs", nargs="+", default=["Hopper-v4"])
    p.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=CONFIGS)
    p.add_argument("--seeds", nargs="+", type=int, default=[1])
    p.add_argument("--neuron", default="lif", choices=["lif", "clif", "dn"])
    p.add_argument("--t-max", type=int, default=20000)
    p.add_argument("--start-steps", type=int, default=5000)
    p.add_argument("--test-interval", type=int, default=2500)
    p.add_argument("--test-nepisode", type=int, default=5)
    p.add_argument("--device", default="cpu")
    p.add_argument("--workers", type=int, default=1, help="runs in parallel (processes)")
    p.add_argument("--time-limit", type=float, default=0.0,
                   help="seconds per run; a run past it stops after its next evaluation (0: none)")
    p.add_argument("--config-dir", default="", help="config folder (default: the repo's config/)")
    p.add_argument("--out", default=os.path.join(RESULTS_DIR, "proxy_target.json"))
    p.add_argument("--table-only", action="store_true", help="only rebuild the markdown table")
    a = p.parse_args(argv)

    runs = load_results(a.out)
    md_path = os.path.splitext(a.out)[0] + ".md"
    if not a.table_only:
        jobs = [dict(config=c, env=e, seed=s, neuron=a.neuron, t_max=a.t_max,
                     start_steps=a.start_steps, test_interval=a.test_interval,
                     test_nepisode=a.test_nepisode, device=a.device, time_limit=a.time_limit,
                     config_dir=a.config_dir)
                for e in a.envs for s in a.seeds for c in a.configs]
        print(f"{len(jobs)} runs, {a.workers} at a time", flush=True)
        ctx = mp.get_context("spawn")
        with ctx.Pool(max(1, a.workers), maxtasksperchild=1) as pool:
            for rec in pool.imap_unordered(run_one, jobs):
                runs[run_key(rec)] = rec
                save_results(a.out, runs)
                with open(md_path, "w") as f:
                    f.write(markdown_table(list(runs.values())))
                print(f"done {run_key(rec)}: max avg return {rec['max_avg_return']:.1f} at "
                      f"t={rec['t_reached']} ({rec['wall_s']}s, {rec['train_steps_per_sec']} steps/s"
                      f"{'' if rec['complete'] else ', cut by --time-limit'})", flush=True)
    with open(md_path, "w") as f:
        f.write(markdown_table(list(runs.values())))
    print(open(md_path).read())
    return 0


if __name__ == "__main__":
    sys.exit(main())
