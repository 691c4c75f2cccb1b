"""Ablation of the GRSN paper (Table 3): {LIF, GRSN} x {with TAP, without TAP}.

Trains the four settings on one environment with the same seeds and budget (one
``src/main.py`` process per setting and seed, each with its own results folder), then writes
``benchmarks/results/ablation_<env>_<key>.json`` and ``.md`` in the Table-3 layout:

    mean reward (mean over seeds of the final test return), its standard deviation over seeds,
    test win rate (MARL), total neuron time steps per episode, training wall time.

Total neuron time steps per episode = reference episode length x (1 with TAP, snn_T without):
one neuron update per environment step with TAP, ``snn_T`` repeated steps per decision without.
The reference length is the mean test episode length over all runs of the table (so the
without-TAP column is exactly ``snn_T`` times the with-TAP one, as in the paper); each setting's
own mean episode length is listed too. For the PO tasks (fixed 200-step episodes) the paper's
"64 vs 256" is the training window: ``sampled_seq_len x (1 | snn_T)``, also listed.

Examples (tiny smoke budgets; the paper trains 10M steps on SMAC, 50k on Pendulum-P, 5 seeds):

    python benchmarks/ablation.py --env-config=smax --key 8m --t-max 2000 --seeds 1 \
        -- test_nepisode=8 batch_size=8 buffer_size=64
    python benchmarks/ablation.py --env-config=pomdp --key Pendulum-P --t-max 2000 --seeds 1 2
"""
from __future__ import annotations

import argparse
import concurrent.futures as futures
import glob
import json
import os
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAIN = os.path.join(ROOT, "src", "main.py")
RESULTS = os.path.join(ROOT, "benchmarks", "results")

# env config -> (default alg, env_args key naming the task, default task)
ENVS = {
    "smax": ("qmix", "map_name", "8m"),
    "sc2": ("qmix", "map_name", "8m"),
    "pomdp": ("td3", "key", "Pendulum-P"),
}
SETTINGS = [("lif", True), ("grsn", True), ("lif", False), ("grsn", False)]


def setting_name(agent: str, tap: bool) -> str:
    return f"{agent}_{'tap' if tap else 'notap'}"


def override_value(overrides: List[str], key: str, default: Any) -> Any:
    """The value of ``key=...`` among ``overrides`` (last wins), else ``default``."""
    value = default
    for item in overrides:
        if item.startswith(key + "="):
            value = type(default)(item.split("=", 1)[1]) if default is not None else item.split("=", 1)[1]
    return value


def run_one(alg: str, env: str, task_key: str, task: str, agent: str, tap: bool, seed: int,
            t_max: int, run_dir: str, extra: List[str], timeout: Optional[float]) -> Dict[str, Any]:
    """Train one setting for one seed in its own ``run_dir``; read its sacred info.json."""
    os.makedirs(run_dir, exist_ok=True)
    name = f"ablation_{setting_name(agent, tap)}"
    cmd = [sys.executable, MAIN, f"--config={alg}", f"--env-config={env}", "with",
           f"env_args.{task_key}={task}", f"agent={agent}", f"tap={tap}", f"seed={seed}",
           f"t_max={t_max}", f"local_results_path={run_dir}", "save_model=False", f"name={name}", *extra]
    start = time.time()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                              env=dict(os.environ, PYTHONUNBUFFERED="1"))
        rc, err = proc.returncode, proc.stderr
    except subprocess.TimeoutExpired as exc:
        rc, err = -1, f"timed out after {timeout} s: {exc}"
    wall = time.time() - start
    with open(os.path.join(run_dir, "log.txt"), "w") as f:
        f.write(" ".join(cmd) + "\n\n" + (err or ""))
    out: Dict[str, Any] = {"agent": agent, "tap": tap, "seed": seed, "returncode": rc,
                           "process_wall_s": wall, "cmd": " ".join(cmd), "run_dir": run_dir}
    infos = sorted(glob.glob(os.path.join(run_dir, "sacred", "**", name, "*", "info.json"), recursive=True))
    if rc != 0 or not infos:
        out["error"] = (err or "")[-2000:] or "no sacred info.json found"
        return out
    info = json.load(open(infos[-1]))

    def last(key: str) -> Optional[float]:
        series = info.get(key)
        return float(series[-1]) if series else None

    out.update({"test_return": last("test_return_mean"), "test_won": last("test_battle_won_mean"),
                "test_ep_length": last("test_ep_length_mean"), "train_wall_s": last("wall_time_s"),
                "spike_rate": last("spike_rate_mean"), "t_env": (info.get("test_return_mean_T") or [None])[-1]})
    return out


def aggregate(runs: List[Dict[str, Any]], snn_T: int, seq_len: Optional[int], marl: bool) -> List[Dict[str, Any]]:
    """One Table-3 row per setting (mean and std over seeds)."""
    ok = [r for r in runs if "error" not in r]
    lengths = [r["test_ep_length"] for r in ok if r.get("test_ep_length") is not None]
    ref_len = float(np.mean(lengths)) if lengths else float("nan")
    rows = []
    for agent, tap in SETTINGS:
        mine = [r for r in ok if r["agent"] == agent and r["tap"] == tap]
        factor = 1 if tap else snn_T
        rets = [r["test_return"] for r in mine if r.get("test_return") is not None]
        wins = [r["test_won"] for r in mine if r.get("test_won") is not None]
        lens = [r["test_ep_length"] for r in mine if r.get("test_ep_length") is not None]
        walls = [r["train_wall_s"] if r.get("train_wall_s") is not None else r["process_wall_s"] for r in mine]
        row = {"setting": f"{'w/' if tap else 'w/o'} TAP {agent.upper()}", "agent": agent, "tap": tap,
               "seeds": len(mine), "failed": sum(1 for r in runs if r["agent"] == agent and r["tap"] == tap) - len(mine),
               "mean_reward": float(np.mean(rets)) if rets else None,
               "std_reward": float(np.std(rets)) if rets else None,
               "win_rate_pct": 100.0 * float(np.mean(wins)) if (marl and wins) else None,
               "time_steps_per_episode": ref_len * factor,
               "own_ep_length": float(np.mean(lens)) if lens else None,
               "window_time_steps": seq_len * factor if seq_len else None,
               "train_time_s": float(np.mean(walls)) if walls else None,
               "train_time_h": float(np.mean(walls)) / 3600 if walls else None}
        rows.append(row)
    return rows


def to_markdown(meta: Dict[str, Any], rows: List[Dict[str, Any]]) -> str:
    """The Table-3 layout: settings as columns, measures as rows."""
    def fmt(v: Any, digits: int = 2) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return "nan" if np.isnan(v) else f"{v:.{digits}f}"
        return str(v)

    marl = meta["marl"]
    lines = [f"# Ablation: {meta['task']} ({meta['alg']} on {meta['env']})", "",
             f"t_max {meta['t_max']} per run, seeds {meta['seeds']}, snn_T {meta['snn_T']} without TAP; "
             f"extra overrides: {' '.join(meta['extra']) or '-'}. Generated {meta['date']}.", ""]
    header = "| Measure | " + " | ".join(r["setting"] for r in rows) + " |"
    lines += [header, "|---|" + "---|" * len(rows)]
    measures = [("Mean reward", "mean_reward", 2), ("Standard deviation (over seeds)", "std_reward", 2)]
    if marl:
        measures.append(("Test win rate (%)", "win_rate_pct", 1))
    measures += [("Total time steps per episode", "time_steps_per_episode", 1),
                 ("Own mean episode length", "own_ep_length", 1)]
    if not marl:
        measures.append(("Time steps per training window", "window_time_steps", 0))
    measures += [("Training wall time (s)", "train_time_s", 1), ("Seeds (failed)", None, 0)]
    for label, key, digits in measures:
        if key is None:
            cells = [f"{r['seeds']} ({r['failed']})" for r in rows]
        else:
            cells = [fmt(r[key], digits) for r in rows]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "Total time steps = reference episode length (mean test episode length over all runs "
              "here) x 1 with TAP or x snn_T without (one neuron update per env step vs snn_T "
              "repeated steps per decision). Mean reward / win rate: final test evaluation of each "
              "run, averaged over seeds; standard deviation over seeds. Wall time: the run's training "
              "loop (MARL: wall_time_s) or the whole process (PO control)."]
    return "\n".join(lines) + "\n"


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env-config", default="smax", choices=sorted(ENVS))
    p.add_argument("--config", default=None, help="algorithm config (default: qmix for MARL, td3 for pomdp)")
    p.add_argument("--key", default=None, help="map name (smax/sc2) or pomdp key (default 8m / Pendulum-P)")
    p.add_argument("--t-max", type=int, default=2000, help="env steps per run (same for all settings)")
    p.add_argument("--seeds", type=int, nargs="+", default=[1])
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel")
    p.add_argument("--timeout", type=float, default=None, help="seconds per run (default none)")
    p.add_argument("--runs-dir", default=None, help="where the runs' results go "
                   "(default results/ablation/<env>_<key>)")
    p.add_argument("--out", default=RESULTS, help="folder for ablation_<env>_<key>.json/.md")
    p.add_argument("overrides", nargs="*", help="extra `key=value` overrides for every run (after --)")
    a = p.parse_args(argv)

    default_alg, task_key, default_task = ENVS[a.env_config]
    alg = a.config or default_alg
    task = a.key or default_task
    marl = a.env_config in ("smax", "sc2")
    extra = list(a.overrides)
    for item in extra:
        if "=" not in item:
            p.error(f"override '{item}' is not key=value")
        if item.split("=", 1)[0] in ("agent", "tap", "seed", "t_max", "local_results_path", "name"):
            p.error(f"'{item.split('=', 1)[0]}' is set by the ablation itself; drop it")
    snn_T = int(override_value(extra, "snn_T", 4))
    seq_len = None if marl else int(override_value(extra, "sampled_seq_len", 64))
    runs_dir = a.runs_dir or os.path.join(ROOT, "results", "ablation", f"{a.env_config}_{task}")

    jobs = []
    for seed in a.seeds:
        for agent, tap in SETTINGS:
            run_dir = os.path.join(runs_dir, f"{setting_name(agent, tap)}_seed{seed}_{int(time.time())}")
            jobs.append((alg, a.env_config, task_key, task, agent, tap, seed, a.t_max, run_dir, extra, a.timeout))
    print(f"ablation: {len(jobs)} runs of {alg} on {a.env_config}:{task}, t_max {a.t_max}, "
          f"seeds {a.seeds}, {a.jobs} at a time; runs under {runs_dir}", flush=True)
    runs: List[Dict[str, Any]] = []
    with futures.ThreadPoolExecutor(max_workers=max(1, a.jobs)) as pool:
        pending = {pool.submit(run_one, *job): job for job in jobs}
        for fut in futures.as_completed(pending):
            r = fut.result()
            runs.append(r)
            status = "FAILED: " + r["error"].strip().splitlines()[-1] if "error" in r else \
                f"return {r['test_return']}, won {r['test_won']}, ep length {r['test_ep_length']}"
            print(f"  {setting_name(r['agent'], r['tap'])} seed {r['seed']}: {r['process_wall_s']:.0f} s, "
                  f"{status}", flush=True)
    runs.sort(key=lambda r: (SETTINGS.index((r["agent"], r["tap"])), r["seed"]))
    rows = aggregate(runs, snn_T, seq_len, marl)
    meta = {"env": a.env_config, "alg": alg, "task": task, "t_max": a.t_max, "seeds": a.seeds,
            "snn_T": snn_T, "sampled_seq_len": seq_len, "extra": extra, "marl": marl,
            "date": time.strftime("%Y-%m-%d %H:%M")}
    os.makedirs(a.out, exist_ok=True)
    stem = os.path.join(a.out, f"ablation_{a.env_config}_{task}")
    with open(stem + ".json", "w") as f:
        json.dump({"meta": meta, "rows": rows, "runs": runs}, f, indent=2)
    md = to_markdown(meta, rows)
    with open(stem + ".md", "w") as f:
        f.write(md)
    print(md)
    print(f"wrote {stem}.json and {stem}.md")
    failed = [r for r in runs if "error" in r]
    if failed:
        print(f"{len(failed)} run(s) failed; see log.txt in their run dirs, e.g. {failed[0]['run_dir']}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
