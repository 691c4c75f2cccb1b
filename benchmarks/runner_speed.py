"""Runner throughput in training mode against raw vmapped SMAX, runners interleaved (CPU).

For each batch size in ``--n-envs``: raw SMAX (``env.step`` of all envs with random valid
actions, no controller, no episode bookkeeping: the upper bound), the lockstep runner
(``runner=parallel``: one episode per env per ``run``, finished envs wait for the batch's
longest episode) and the continuous runner (``runner=continuous``: finished envs restart at
once). Both runners act with a fresh ``rnn`` controller in training mode (epsilon-greedy at
the epsilon of ``--t-env``; 0 = epsilon_start, i.e. early training) and count the env steps
they return (``t_env``). Every repeat times raw, lockstep and continuous in turn, the order
alternating between repeats, so drifting load hits all alike; reported are the medians over
repeats of env steps/s and of each runner's ratio to raw of the same repeat, by wall time and
by the process's CPU time (``time.process_time``, all its threads). On a machine shared with
other jobs the wall-time ratios favour raw: the scheduler preempts a process the more, the
longer it runs without pause, and raw has no pause-free controller work between its env steps
(measured here: a 1 ms busy loop before each SMAX step made the step itself 40 % slower). CPU
time counts every thread of the process, XLA's worker pool included.

    python benchmarks/runner_speed.py                                  # 3m, 8 and 64 envs, ~3 min
    python benchmarks/runner_speed.py --n-envs 8 --repeats 3 --out-name runner_speed_smoke

Writes ``benchmarks/results/<out-name>.json`` and ``.md``.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from types import SimpleNamespace
from typing import Any, Callable, Dict, List, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "src"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from controllers.basic_controller import BasicMAC  # noqa: E402
from runners import REGISTRY as RUNNER_REGISTRY  # noqa: E402
from utils.config import build_config  # noqa: E402
from report import write_report  # noqa: E402  (benchmarks/report.py)

VARIANTS = ("raw", "lockstep", "continuous")
RUNNER_OF = {"lockstep": "parallel", "continuous": "continuous"}


class NullLogger:
    """Swallows stats (the benchmark times the work, not the logging)."""

    def __init__(self) -> None:
        import logging
        self.console = logging.getLogger("runner_speed")

    def log_stat(self, key: str, value: float, t: int) -> None:
        pass


def make_runner(kind: str, map_name: str, n_envs: int, seed: int, t_env: int, env_args: Dict[str, Any]) -> Any:
    cfg = build_config("qmix", "smax", [f"env_args.map_name={map_name}", f"seed={seed}", f"batch_size_run={n_envs}",
                                        "device=cpu", "agent=rnn", f"runner={RUNNER_OF[kind]}"])
    cfg.update(learner_log_interval=10 ** 12, runner_log_interval=10 ** 12)
    cfg["env_args"].update(env_args)
    args = SimpleNamespace(**cfg)
    runner = RUNNER_REGISTRY[args.runner](args, NullLogger())
    info = runner.env_info
    args.n_agents, args.n_actions = info["n_agents"], info["n_actions"]
    torch.manual_seed(seed)
    runner.setup(BasicMAC(info, args))
    runner.t_env = int(t_env)
    return runner


def bench(map_name: str, n_envs: int, a: argparse.Namespace) -> Dict[str, Any]:
    env_args = {"jax_cache_dir": a.jax_cache_dir} if a.jax_cache_dir else {}
    runners = {k: make_runner(k, map_name, n_envs, a.seed, a.t_env, env_args) for k in RUNNER_OF}
    env = runners["lockstep"].env  # raw: the lockstep runner's own batch, stepped directly
    limit = runners["lockstep"].episode_limit
    rng = np.random.default_rng(a.seed)

    def raw() -> float:
        out = env.reset()
        for _ in range(limit):
            out = env.step((rng.random(out["avail_actions"].shape) * out["avail_actions"]).argmax(-1))[0]
        return float(n_envs * limit)

    def run_with(runner: Any) -> Callable[[], float]:
        def once() -> float:
            t0 = runner.t_env
            for _ in range(a.calls):
                runner.run(test_mode=False)
            steps = runner.t_env - t0
            runner.t_env = t0  # keep epsilon where --t-env put it
            return float(steps)
        return once

    fns = {"raw": raw, "lockstep": run_with(runners["lockstep"]), "continuous": run_with(runners["continuous"])}
    for _ in range(a.warmup):
        for fn in fns.values():
            fn()
    rates: Dict[str, List[float]] = {k: [] for k in VARIANTS}
    cpu_rates: Dict[str, List[float]] = {k: [] for k in VARIANTS}
    for r in range(a.repeats):
        for name in (VARIANTS if r % 2 == 0 else VARIANTS[::-1]):
            t0, c0 = time.perf_counter(), time.process_time()
            steps = fns[name]()
            rates[name].append(steps / (time.perf_counter() - t0))
            cpu_rates[name].append(steps / (time.process_time() - c0))
        print(f"[{map_name} x {n_envs}] repeat {r + 1}/{a.repeats}: " + ", ".join(
            f"{k} {rates[k][-1]:.0f}" for k in VARIANTS) + " env steps/s", flush=True)
    med = statistics.median
    row: Dict[str, Any] = {"map": map_name, "n_envs": n_envs, "episode_limit": limit,
                           "epsilon": float(runners["lockstep"].mac.selector.epsilon)}
    for k in VARIANTS:
        row[f"{k}_steps_per_s"] = med(rates[k])
        row[f"{k}_steps_per_s_repeats"] = rates[k]
        row[f"{k}_steps_per_cpu_s"] = med(cpu_rates[k])
    for k in RUNNER_OF:
        row[f"{k}_over_raw"] = med(x / y for x, y in zip(rates[k], rates["raw"]))
        row[f"{k}_over_raw_cpu"] = med(x / y for x, y in zip(cpu_rates[k], cpu_rates["raw"]))
        stats = runners[k].train_stats["ep_length"]
        row[f"{k}_mean_ep_length"] = float(np.mean(stats)) if stats else None
    row["continuous_over_lockstep"] = med(x / y for x, y in zip(rates["continuous"], rates["lockstep"]))
    for runner in runners.values():
        runner.close()
    return row


def markdown(res: Dict[str, Any]) -> str:
    m = res["meta"]
    lines = [f"# Runner throughput in training mode, SMAX ({m['date']})", "", f"_{m['note']}_", "",
             f"`{m['command']}`", "",
             f"torch {m['torch']}, {m['torch_threads']} thread(s); {m['repeats']} repeats x {m['calls']} runner "
             f"calls, variants interleaved; epsilon {res['rows'][0]['epsilon']:.2f}; load average "
             f"{m['loadavg_start']} -> {m['loadavg_end']}", "",
             "| map | envs | raw SMAX steps/s | lockstep steps/s | continuous steps/s | lockstep / raw "
             "| continuous / raw | continuous / lockstep | lockstep / raw (CPU time) | continuous / raw (CPU time) "
             "| mean ep length |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        length = r["continuous_mean_ep_length"]
        lines.append(f"| {r['map']} | {r['n_envs']} | {r['raw_steps_per_s']:.0f} | {r['lockstep_steps_per_s']:.0f} "
                     f"| {r['continuous_steps_per_s']:.0f} | {r['lockstep_over_raw']:.2f} "
                     f"| {r['continuous_over_raw']:.2f} | {r['continuous_over_lockstep']:.2f} "
                     f"| {r['lockstep_over_raw_cpu']:.2f} | {r['continuous_over_raw_cpu']:.2f} "
                     f"| {'-' if length is None else f'{length:.1f}'} |")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--maps", default="3m")
    p.add_argument("--n-envs", default="8,64", help="batch sizes (batch_size_run)")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--calls", type=int, default=3, help="runner.run calls per timed repeat")
    p.add_argument("--t-env", type=int, default=0, help="t_env the runners act at (sets epsilon)")
    p.add_argument("--torch-threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--jax-cache-dir", default=os.path.join(ROOT, "results", "jax_cache"))
    p.add_argument("--out-dir", default=os.path.join(ROOT, "benchmarks", "results"))
    p.add_argument("--out-name", default="runner_speed")
    a = p.parse_args(argv)
    if a.torch_threads > 0:
        torch.set_num_threads(a.torch_threads)
    start, load_start = time.perf_counter(), [round(x, 2) for x in os.getloadavg()]
    rows = [bench(m, int(n), a) for m in a.maps.split(",") if m for n in a.n_envs.split(",") if n]
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M"), "repeats": a.repeats, "calls": a.calls, "t_env": a.t_env,
        "seed": a.seed, "torch": torch.__version__, "python": platform.python_version(),
        "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(), "loadavg_start": load_start,
        "loadavg_end": [round(x, 2) for x in os.getloadavg()], "wall_s": time.perf_counter() - start,
        "command": "python benchmarks/runner_speed.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "note": ("CPU only, on a small shared machine (other jobs running): absolute rates are noisy, compare the "
                 "interleaved ratios. Runners count the env steps of the episodes they return; raw counts every "
                 "env step of the batch (no controller, no bookkeeping)."),
    }
    res = {"meta": meta, "rows": rows}
    write_report(a.out_dir, a.out_name, res, markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
