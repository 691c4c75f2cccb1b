"""Learning benchmark: QMIX test win rate over env steps for several agents, maps and seeds.

Runs ``src/main.py`` once per (agent, map, seed) as independent processes (``--parallel`` at a
time), then reads each sacred run's info.json and writes
``benchmarks/results/<tag>.json`` and ``<tag>.md``:

    python benchmarks/marl_learning.py --agents rnn,grsn --maps 3m --seeds 1,2,3 --t-max 200000

``--variant NAME KEY=VALUE ...`` (repeatable) runs every (agent, map, seed) once per variant
with those extra overrides, side by side; e.g. the training-speed before/after comparison
(pymarl2-style per-step unroll and per-env stepping vs the sequence unroll and vmapped SMAX),
stopping each run when it first reaches the level:

    python benchmarks/marl_learning.py --agents rnn --seeds 1 --t-max 400000 --tag speed_to_win_3m \
        --variant before mac_unroll=stepwise env_args.vectorized=False --variant after \
        --stop-at-level
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional

import numpy as np
from report import write_report  # noqa: E402  (benchmarks/report.py)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def steps_to_reach(ts: List[int], values: List[float], level: float) -> Optional[int]:
    """First env step at which ``values`` reaches ``level`` (None if never)."""
    for t, v in zip(ts, values):
        if v >= level:
            return int(t)
    return None


def read_run(sacred_root: str) -> Dict[str, Any]:
    """The info.json and config.json of the single sacred run under ``sacred_root``."""
    infos = sorted(glob.glob(os.path.join(sacred_root, "**", "info.json"), recursive=True),
                   key=lambda p: int(os.path.basename(os.path.dirname(p))))  # newest sacred id last
    if not infos:
        raise FileNotFoundError(f"no sacred info.json under {sacred_root}")
    run_dir = os.path.dirname(infos[-1])
    with open(infos[-1]) as f:
        info = json.load(f)
    with open(os.path.join(run_dir, "run.json")) as f:
        status = json.load(f)["status"]
    return {"info": info, "status": status, "run_dir": run_dir}


def wall_time_to_reach(info: Dict[str, Any], level: float) -> Optional[float]:
    """Seconds of training (tests included) until the first test win rate >= ``level``, read
    from the ``elapsed_s`` stat logged at every test (None if never reached or not logged)."""
    t_reach = steps_to_reach(info["test_battle_won_mean_T"], info["test_battle_won_mean"], level)
    if t_reach is None or "elapsed_s" not in info:
        return None
    return float(dict(zip(info["elapsed_s_T"], info["elapsed_s"])).get(t_reach, float("nan")))


def summarise(runs: List[Dict[str, Any]], level: float) -> Dict[str, Any]:
    """Mean/std of final test win rate and return, steps and wall time to ``level`` win rate."""
    finals_win = [r["info"]["test_battle_won_mean"][-1] for r in runs]
    finals_ret = [r["info"]["test_return_mean"][-1] for r in runs]
    reach = [steps_to_reach(r["info"]["test_battle_won_mean_T"], r["info"]["test_battle_won_mean"], level)
             for r in runs]
    walls = [r["wall_time_s"] for r in runs]
    reached = [s for s in reach if s is not None]
    wall_reach = [wall_time_to_reach(r["info"], level) for r in runs]
    per_10k = [1e4 * r["info"]["elapsed_s"][-1] / max(r["info"]["elapsed_s_T"][-1], 1)
               for r in runs if r["info"].get("elapsed_s")]
    reached_wall = [w for w in wall_reach if w is not None]
    return {
        "n_seeds": len(runs),
        "final_test_win_mean": float(np.mean(finals_win)), "final_test_win_std": float(np.std(finals_win)),
        "final_test_return_mean": float(np.mean(finals_ret)), "final_test_return_std": float(np.std(finals_ret)),
        "steps_to_level": reach, "seeds_reaching_level": len(reached),
        "median_steps_to_level": float(np.median(reached)) if reached else None,
        "wall_s_to_level": wall_reach,
        "median_wall_s_to_level": float(np.median(reached_wall)) if reached_wall else None,
        "wall_s_per_10k_steps": per_10k,
        "median_wall_s_per_10k_steps": float(np.median(per_10k)) if per_10k else None,
        "wall_time_s_mean": float(np.mean(walls)),
        "final_T": [int(r["info"]["test_battle_won_mean_T"][-1]) for r in runs],
        "truncated_runs": sum(bool(r.get("truncated")) for r in runs),
    }


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="qmix")
    p.add_argument("--agents", default="rnn,grsn")
    p.add_argument("--maps", default="3m")
    p.add_argument("--seeds", default="1,2,3")
    p.add_argument("--t-max", type=int, default=200000)
    p.add_argument("--test-interval", type=int, default=10000)
    p.add_argument("--parallel", type=int, default=2, help="runs at a time")
    p.add_argument("--deadline-s", type=float, default=0.0,
                   help="> 0: interrupt (SIGINT) runs still going after this many seconds and report the "
                        "curve they reached (marked truncated)")
    p.add_argument("--level", type=float, default=0.9, help="win rate whose first crossing is reported")
    p.add_argument("--tag", default="marl_learning")
    p.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results"))
    p.add_argument("--work", default=os.path.join(ROOT, "results", "bench"))
    p.add_argument("--variant", nargs="+", action="append", default=None, metavar="NAME_THEN_KEY=VALUE",
                   help="a named set of extra overrides (repeatable): every run is done once per variant")
    p.add_argument("--stop-at-level", action="store_true",
                   help="stop each run at its first test reaching --level (stop_at_test_win_rate)")
    p.add_argument("with_args", nargs="*", help="extra key=value overrides for every run")
    a = p.parse_args(argv)
    variants = [(v[0], v[1:]) for v in a.variant] if a.variant else [("", [])]
    for name, overrides in variants:
        bad = [o for o in overrides if "=" not in o]
        if "=" in name or bad:
            p.error(f"--variant takes a name then KEY=VALUE overrides, got {[name] + overrides}")
    extra = [w for w in a.with_args if w != "with"]
    if a.stop_at_level:
        extra.append(f"stop_at_test_win_rate={a.level}")

    jobs = []
    groups = []  # (map, label) in table order; label = agent or agent/variant
    for m in a.maps.split(","):
        for agent in a.agents.split(","):
            for vname, overrides in variants:
                label = f"{agent}/{vname}" if vname else agent
                groups.append((m, label))
                for seed in a.seeds.split(","):
                    root = os.path.join(a.work, a.tag, f"{m}_{label.replace('/', '_')}_s{seed}")
                    cmd = [sys.executable, os.path.join(ROOT, "src", "main.py"), f"--config={a.config}",
                           "--env-config=smax", "with", f"agent={agent}", f"env_args.map_name={m}",
                           f"seed={seed}", f"t_max={a.t_max}", f"test_interval={a.test_interval}",
                           f"log_interval={a.test_interval * 5}", "save_model=False",
                           f"local_results_path={root}", *extra, *overrides]
                    jobs.append({"map": m, "agent": label, "seed": int(seed), "root": root, "cmd": cmd})

    pending = []
    for job in jobs:  # resume: a run that already completed under its folder is read, not re-run
        try:
            done = read_run(job["root"])
        except FileNotFoundError:
            done = None
        if done is not None and done["status"] == "COMPLETED":
            job["wall_time_s"] = done["info"].get("wall_time_s", [float("nan")])[-1]
            job["reused"] = True
        else:
            pending.append(job)
    running: List[Dict[str, Any]] = []
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    t0 = time.time()
    while pending or running:
        if a.deadline_s > 0 and time.time() - t0 > a.deadline_s:
            for job in running:
                if job["proc"].poll() is None and not job.get("interrupted"):
                    job["proc"].send_signal(signal.SIGINT)
                    job["interrupted"] = True
            pending.clear()
        while pending and len(running) < a.parallel:
            job = pending.pop(0)
            os.makedirs(job["root"], exist_ok=True)
            job["log"] = open(os.path.join(job["root"], "stdout.log"), "w")
            job["start"] = time.time()
            # a background shell starts children with SIGINT ignored; restore it so --deadline-s works
            job["proc"] = subprocess.Popen(job["cmd"], stdout=job["log"], stderr=subprocess.STDOUT, env=env,
                                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
            running.append(job)
        time.sleep(2)
        for job in list(running):
            if job["proc"].poll() is not None:
                job["wall_time_s"] = time.time() - job["start"]
                job["log"].close()
                running.remove(job)
                print(f"done {job['map']} {job['agent']} seed {job['seed']} rc={job['proc'].returncode} "
                      f"in {job['wall_time_s']:.0f}s", flush=True)

    results: Dict[str, Any] = {"config": vars(a), "groups": {}}
    lines = [f"| map | agent | seeds | final test win % | final test return | seeds reaching {a.level:.0%} | "
             f"median steps to {a.level:.0%} | median wall time to {a.level:.0%} (s) | env steps reached | "
             f"wall time / run (s) | training s per 10k env steps |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for m, agent in groups:
        group = [j for j in jobs if j["map"] == m and j["agent"] == agent]
        runs = []
        for j in group:
            failed = "proc" in j and j["proc"].returncode != 0 and not j.get("interrupted")
            if failed or ("proc" not in j and not j.get("reused")):
                print(f"run failed: {j['cmd']} (see {j['root']}/stdout.log)", file=sys.stderr)
                continue
            run = read_run(j["root"])
            run["wall_time_s"] = j["wall_time_s"]
            run["truncated"] = bool(j.get("interrupted"))
            run["seed"] = j["seed"]
            if not run["info"].get("test_battle_won_mean"):
                continue
            runs.append(run)
        if not runs:
            continue
        s = summarise(runs, a.level)
        s["curves"] = [{"seed": r["seed"], "T": r["info"]["test_battle_won_mean_T"],
                        "test_battle_won_mean": r["info"]["test_battle_won_mean"],
                        "test_return_mean": r["info"]["test_return_mean"]} for r in runs]
        results["groups"][f"{m}/{agent}"] = s
        med = "-" if s["median_steps_to_level"] is None else f"{s['median_steps_to_level']:.0f}"
        med_wall = "-" if s["median_wall_s_to_level"] is None else f"{s['median_wall_s_to_level']:.0f}"
        per_10k = "-" if s["median_wall_s_per_10k_steps"] is None else f"{s['median_wall_s_per_10k_steps']:.1f}"
        lines.append(f"| {m} | {agent} | {s['n_seeds']} | {100 * s['final_test_win_mean']:.1f} ± "
                     f"{100 * s['final_test_win_std']:.1f} | {s['final_test_return_mean']:.2f} ± "
                     f"{s['final_test_return_std']:.2f} | {s['seeds_reaching_level']}/{s['n_seeds']} | {med} | {med_wall} | "
                     f"{min(s['final_T'])}-{max(s['final_T'])} | {s['wall_time_s_mean']:.0f} | {per_10k} |")
    write_report(a.out, a.tag, results, "\n".join(lines))
    return 0 if all(j.get("interrupted") or j["proc"].returncode == 0 for j in jobs if "proc" in j) else 1


if __name__ == "__main__":
    sys.exit(main())
