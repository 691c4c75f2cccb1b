"""Whole QMIX training loop speed on SMAX, variants interleaved, ratios reported (CPU).

Each variant is a set of config overrides (default: ``learner_packing=padded`` against
``learner_packing=packed``). Every variant gets its own runner, controller, learner and replay
buffer, built from the same seed, with its own copy of the seeded random streams (so variants
that do the same maths collect the same episodes until float rounding makes them drift apart),
and first collects ``--warm-episodes`` episodes. Then, for
``--rounds`` rounds, every variant runs ``--iters`` iterations of the real loop body
(``runner.run`` -> ``buffer.insert`` -> ``buffer.sample`` -> ``learner.train``, as in
src/run/marl.py; test episodes and logging are left out) in turn, the order alternating
between rounds (A, B, B, A, ...), so drifting machine load hits all variants alike. Reported:
training env steps per second of the whole loop per round, the median over rounds of each
variant's ratio to the first variant, and where the time goes (runner, buffer, learner). As the
variants collect their own episodes, the learner is also timed on ``--same-batches`` identical
real batches (sampled from the first variant's buffer), variants alternating per batch.

    python benchmarks/marl_loop_speed.py                         # 3m, rnn and grsn, ~4 min on 2 loaded cores
    python benchmarks/marl_loop_speed.py --agents rnn --rounds 3 --iters 5 --out-name marl_loop_speed_smoke
    python benchmarks/marl_loop_speed.py --variants "packed:learner_packing=packed;2thr:learner_threads=2"

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
from typing import Any, Dict, List, Optional, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "src"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from components.episode_buffer import ReplayBuffer  # noqa: E402
from run.marl import build_marl  # noqa: E402
from run.marl_iteration import TrainingIteration  # noqa: E402
from utils.config import build_config  # noqa: E402
from utils.seeding import global_rng_state, set_global_rng_state, set_seed  # noqa: E402
from report import write_report  # noqa: E402  (benchmarks/report.py)

PHASES = ("runner", "buffer", "learner")
DEFAULT_VARIANTS = "padded:learner_packing=padded;packed:learner_packing=packed"


class NullLogger:
    """Swallows stats (the benchmark times the work, not the logging)."""

    def __init__(self) -> None:
        import logging
        self.console = logging.getLogger("marl_loop_speed")

    def log_stat(self, key: str, value: float, t: int) -> None:
        pass


def parse_variants(text: str) -> List[Tuple[str, List[str]]]:
    """``"name:k=v,k=v;name2:..."`` -> ``[(name, ["k=v", ...]), ...]`` (at least two, names unique)."""
    out: List[Tuple[str, List[str]]] = []
    for part in [p.strip() for p in text.split(";") if p.strip()]:
        if ":" not in part:
            raise SystemExit(f"--variants: '{part}' is not name:key=value[,key=value]")
        name, sets = part.split(":", 1)
        out.append((name.strip(), [s.strip() for s in sets.split(",") if s.strip()]))
    if len(out) < 2 or len({n for n, _ in out}) != len(out):
        raise SystemExit(f"--variants needs at least two variants with distinct names, got {text!r}")
    return out


class Loop:
    """One variant's runner, learner and buffer, stepping the training loop body."""

    def __init__(self, overrides: List[str], agent: str, map_name: str, seed: int, n_envs: int) -> None:
        cfg = build_config("qmix", "smax", [f"agent={agent}", f"env_args.map_name={map_name}", f"seed={seed}",
                                            f"batch_size_run={n_envs}", "device=cpu"] + overrides)
        cfg.update(learner_log_interval=10 ** 12, runner_log_interval=10 ** 12)
        self.args = args = SimpleNamespace(**cfg)
        set_seed(seed)
        self.runner, self.mac, self.learner = build_marl(args, NullLogger())
        info = self.runner.env_info
        self.buffer = ReplayBuffer(args.buffer_size, self.runner.episode_limit, info["n_agents"], info["obs_shape"],
                                   info["state_shape"], info["n_actions"], rng=np.random.default_rng(seed))
        self.step = TrainingIteration(args, self.runner, self.buffer, self.learner, self.mac)
        self.episode = 0
        self.fill: List[float] = []
        self.last_fill = 0.0   # batch fill of the newest learner update
        train = self.learner.train

        def train_and_note_fill(batch: Any, t_env: int, episode: int) -> Dict[str, float]:
            self.last_fill = float(batch.filled.mean())
            return train(batch, t_env, episode)
        self.learner.train = train_and_note_fill
        self.rng_state = global_rng_state()   # each variant draws from its own copy of the seeded streams

    def iterate(self, train: bool = True) -> Dict[str, float]:
        """One loop iteration on this variant's own random streams (see ``_iterate``)."""
        set_global_rng_state(self.rng_state)
        try:
            return self._iterate(train)
        finally:
            self.rng_state = global_rng_state()

    def _iterate(self, train: bool) -> Dict[str, float]:
        """One loop iteration (src/run/marl_iteration.py, as src/run/marl.py steps it); seconds spent
        in each phase (with ``overlap_acting`` runner and learner overlap: ``wall`` < their sum), the
        env steps collected, and the learner's batch fill."""
        before = dict(self.step.seconds)
        t_before, can_train = self.runner.t_env, self.buffer.can_sample(self.args.batch_size)
        if train:
            self.episode = self.step(self.episode)
            if can_train:
                self.fill.append(self.last_fill)
        else:
            self.episode = self.step.collect_only(self.episode)
        out = {k: self.step.seconds[k] - before[k] for k in before}
        out["steps"] = float(self.runner.t_env - t_before)
        return out

    def close(self) -> None:
        self.step.close()
        self.runner.close()


def bench_agent(agent: str, variants: List[Tuple[str, List[str]]], a: argparse.Namespace) -> Dict[str, Any]:
    loops = {name: Loop(sets, agent, a.map, a.seed, a.n_envs) for name, sets in variants}
    for loop in loops.values():                     # fill the buffers (untimed)
        while len(loop.buffer) < max(a.warm_episodes, loop.args.batch_size):
            loop.iterate(train=False)
        for _ in range(a.warm_iters):
            loop.iterate()
    names = [n for n, _ in variants]
    rounds: List[Dict[str, Dict[str, float]]] = []
    for r in range(a.rounds):
        order = names if r % 2 == 0 else names[::-1]
        row: Dict[str, Dict[str, float]] = {}
        for name in order:
            tot = {k: 0.0 for k in ("steps", "wall") + PHASES}
            for _ in range(a.iters):
                for k, v in loops[name].iterate().items():
                    tot[k] += v
            row[name] = dict(tot, steps_per_s=tot["steps"] / tot["wall"])
        rounds.append(row)
        print(f"[{agent}] round {r + 1}/{a.rounds}: " + ", ".join(
            f"{n} {row[n]['steps_per_s']:.0f} steps/s" for n in names), flush=True)
    base = names[0]
    out: Dict[str, Any] = {"variants": {}, "base": base, "same_batch": same_batch(loops, names, a)}
    for name, sets in variants:
        per = [rd[name] for rd in rounds]
        wall = sum(p["wall"] for p in per)
        out["variants"][name] = {
            "overrides": sets,
            "steps_per_s_median": statistics.median(p["steps_per_s"] for p in per),
            "steps_per_s_rounds": [p["steps_per_s"] for p in per],
            "ratio_to_base_median": statistics.median(p["steps_per_s"] / rd[base]["steps_per_s"]
                                                      for p, rd in zip(per, rounds)),
            "learner_ms_per_update_median": statistics.median(
                1e3 * p["learner"] / a.iters for p in per),
            "time_share": {ph: sum(p[ph] for p in per) / wall for ph in PHASES},
            "batch_fill_mean": float(np.mean(loops[name].fill)) if loops[name].fill else None,
            "mean_ep_length": sum(p["steps"] for p in per) / (len(per) * a.iters * a.n_envs),
        }
    for loop in loops.values():
        loop.close()
    return out


def same_batch(loops: Dict[str, Loop], names: List[str], a: argparse.Namespace) -> Dict[str, Any]:
    """Each variant's ``learner.train`` on the same real batches (sampled from the base variant's
    buffer), variants in alternating order per batch; median over batches of the ratio to the base."""
    base = loops[names[0]]
    times: Dict[str, List[float]] = {n: [] for n in names}
    fills = []
    flops: Dict[str, float] = {}
    if a.same_batches:   # matmul FLOPs of one update per variant (torch's counter), outside the timing
        from torch.utils.flop_counter import FlopCounterMode
        batch = base.buffer.sample(base.args.batch_size)
        for name in names:
            with FlopCounterMode(display=False) as counter:
                loops[name].learner.train(batch, loops[name].runner.t_env, loops[name].episode)
            flops[name] = float(counter.get_total_flops())
    for i in range(a.same_batches):
        batch = base.buffer.sample(base.args.batch_size)
        fills.append(float(batch.filled.mean()))
        for name in (names if i % 2 == 0 else names[::-1]):
            t0 = time.perf_counter()
            loops[name].learner.train(batch, loops[name].runner.t_env, loops[name].episode)
            times[name].append(time.perf_counter() - t0)
    ms = {n: 1e3 * statistics.median(t) for n, t in times.items()} if fills else {}
    return {"batches": a.same_batches, "batch_fill_mean": float(np.mean(fills)) if fills else None,
            "gflop_per_update": {n: f / 1e9 for n, f in flops.items()},
            "achieved_gflop_per_s": {n: flops[n] / 1e6 / ms[n] for n in flops if ms.get(n)},
            "ms_median": ms,
            "ratio_to_base_median": {n: statistics.median(x / y for x, y in zip(t, times[names[0]]))
                                     for n, t in times.items()} if fills else {}}


def markdown(res: Dict[str, Any]) -> str:
    m = res["meta"]
    lines = [f"# Whole QMIX loop speed, SMAX {m['map']} ({m['date']})", "",
             f"_{m['note']}_", "",
             f"`{m['command']}`", "",
             f"torch {m['torch']}, {m['torch_threads']} thread(s); {m['n_envs']} envs, batch "
             f"{m['batch_size']} episodes; {m['rounds']} rounds x {m['iters']} iterations per variant, "
             f"interleaved; load average {m['loadavg_start']} -> {m['loadavg_end']}", "",
             "| agent | variant | env steps/s (median) | ratio to base (median of rounds) | learner ms/update "
             "| runner % | buffer % | learner % | sampled batch fill |",
             "|---|---|---|---|---|---|---|---|---|"]
    if any("overlap_acting=True" in o for row in res["agents"].values() for v in row["variants"].values()
           for o in v["overrides"]):
        lines[-2:-2] = ["With `overlap_acting=True` runner and learner run at the same time (on two cores): "
                        "their shares of the wall time add up to more than 100 %.", ""]
    for agent, row in res["agents"].items():
        for name, v in row["variants"].items():
            sh = v["time_share"]
            fill = "-" if v["batch_fill_mean"] is None else f"{v['batch_fill_mean']:.2f}"
            lines.append(f"| {agent} | {name} | {v['steps_per_s_median']:.0f} | {v['ratio_to_base_median']:.2f} "
                         f"| {v['learner_ms_per_update_median']:.1f} | {100 * sh['runner']:.0f} "
                         f"| {100 * sh['buffer']:.0f} | {100 * sh['learner']:.0f} | {fill} |")
    lines += ["", "Learner update alone on the same real batches (sampled from the base variant's buffer), "
              "variants alternating:", "",
              "| agent | variant | ms/update (median) | ratio to base (median over batches) | batch fill "
              "| GFLOP/update (matmuls) | achieved GFLOP/s |",
              "|---|---|---|---|---|---|---|"]
    for agent, row in res["agents"].items():
        sb = row["same_batch"]
        for name, ms in sb["ms_median"].items():
            gf, rate = sb.get("gflop_per_update", {}).get(name), sb.get("achieved_gflop_per_s", {}).get(name)
            lines.append(f"| {agent} | {name} | {ms:.1f} | {sb['ratio_to_base_median'][name]:.2f} "
                         f"| {sb['batch_fill_mean']:.2f} | {'-' if gf is None else f'{gf:.2f}'} "
                         f"| {'-' if rate is None else f'{rate:.1f}'} |")
    peak = res["meta"].get("matmul_peak_gflop_per_s")
    if peak:
        lines += ["", f"For scale: one fp32 matmul of 2048 x 160 by 160 x 128 runs at {peak:.0f} GFLOP/s on one thread "
                  f"here; the learner's matmuls are much smaller (e.g. 384 x 64 by 64 x 192 per GRU step)."]
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--map", default="3m")
    p.add_argument("--agents", default="rnn,grsn")
    p.add_argument("--variants", default=DEFAULT_VARIANTS,
                   help="'name:key=value[,key=value];name2:...' config overrides; the first is the base")
    p.add_argument("--n-envs", type=int, default=8, help="batch_size_run")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--iters", type=int, default=6, help="loop iterations per variant per round")
    p.add_argument("--warm-episodes", type=int, default=128, help="episodes collected before timing")
    p.add_argument("--warm-iters", type=int, default=2, help="untimed training iterations before timing")
    p.add_argument("--same-batches", type=int, default=12, help="batches of the same-batch learner comparison")
    p.add_argument("--torch-threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out-dir", default=os.path.join(ROOT, "benchmarks", "results"))
    p.add_argument("--out-name", default="marl_loop_speed")
    a = p.parse_args(argv)
    variants = parse_variants(a.variants)
    if a.torch_threads > 0:
        torch.set_num_threads(a.torch_threads)
    start, load_start = time.perf_counter(), [round(x, 2) for x in os.getloadavg()]
    agents = {agent: bench_agent(agent, variants, a) for agent in [x for x in a.agents.split(",") if x]}
    x, w = torch.randn(2048, 160), torch.randn(160, 128)
    for _ in range(20):
        x @ w
    t0 = time.perf_counter()
    for _ in range(200):
        x @ w
    peak = 2 * 2048 * 160 * 128 * 200 / (time.perf_counter() - t0) / 1e9
    probe = build_config("qmix", "smax")
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M"), "map": a.map, "n_envs": a.n_envs,
        "batch_size": probe["batch_size"], "rounds": a.rounds, "iters": a.iters, "seed": a.seed,
        "torch": torch.__version__, "python": platform.python_version(), "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(), "loadavg_start": load_start, "matmul_peak_gflop_per_s": peak,
        "loadavg_end": [round(x, 2) for x in os.getloadavg()], "wall_s": time.perf_counter() - start,
        "command": "python benchmarks/marl_loop_speed.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "note": ("CPU only, on a small shared machine (other jobs running): absolute rates are noisy, "
                 "compare the interleaved ratios. Variants train (and so collect) on their own from the same "
                 "seed and random streams; test episodes and logging are not timed."),
    }
    write_report(a.out_dir, a.out_name, {"meta": meta, "agents": agents}, markdown({"meta": meta, "agents": agents}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
