"""Proxy Target loop speed: env steps/s of the ANN TD3 loop vs ``td3_proxy`` (LIF), side by side.

Both loops run in one process on the same MuJoCo task (``--env``, default Hopper-v4), one torch
thread, with the real pieces of ``run/td3_mujoco.train``: the actor's action plus Gaussian noise,
``env.step``, ``TransitionReplay.add``, one replay batch (and, for the proxy, K fresh batches) and
one ``TD3MujocoLearner.train_step`` per env step. Each loop first fills its replay with
``--start-steps`` random steps (not timed); then the loops take turns in blocks of ``--block`` env
steps (order reversed every other round) and each block's process CPU time is recorded.

Reported: env steps per CPU-second of each loop (median over blocks), ``ratio_proxy_over_ann`` (median
of the per-round ratios; the issue's target is >= 0.5), the matmul FLOPs of one ``train_step``
(mean over ``policy_delay`` consecutive steps, ``FlopCounterMode``) of each, and the proxy's
``train_step`` split into critic / actor / proxy-fit CPU-ms. At equal matmul efficiency the speed
ratio cannot exceed the inverse FLOP ratio (``flop_bound_ratio``). Writes
``benchmarks/results/proxy_loop_speed.json`` and ``.md``.

    nice -n 5 python benchmarks/proxy_loop_speed.py                    # ~3 min on one core
    python benchmarks/proxy_loop_speed.py --rounds 3 --block 50 --start-steps 600
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import sys
import time
from types import SimpleNamespace
from typing import Any, Callable, Dict, List, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "src"))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from components.transition_replay import TransitionReplay  # noqa: E402
from learners.td3_mujoco import TD3MujocoLearner  # noqa: E402
from utils.config import build_config  # noqa: E402
from report import write_report  # noqa: E402

CONFIGS = ("td3", "td3_proxy")


def loop_args(config: str, env_key: str, seed: int, extra: Dict[str, Any]) -> SimpleNamespace:
    """The merged ``<config>`` + mujoco config on CPU for ``env_key``."""
    cfg = build_config(config, "mujoco")
    cfg.update(seed=seed, device="cpu")
    cfg["env_args"] = dict(cfg.get("env_args") or {}, key=env_key)
    cfg.update(extra)
    return SimpleNamespace(**cfg)


class Loop:
    """One TD3 training loop, stepped ``n`` env steps at a time (the body of ``run/td3_mujoco.train``)."""

    def __init__(self, config: str, env_key: str, seed: int, capacity: int, extra: Dict[str, Any]) -> None:
        from envs.mujoco import make_mujoco_env

        self.config = config
        self.args = loop_args(config, env_key, seed, extra)
        self.env = make_mujoco_env(seed, key=env_key)
        self.obs_dim = int(np.prod(self.env.observation_space.shape))
        self.act_dim = int(np.prod(self.env.action_space.shape))
        self.max_action = self.env.action_space.high.astype(np.float32)
        torch.manual_seed(seed)
        self.learner = TD3MujocoLearner(self.obs_dim, self.act_dim, self.max_action, self.args)
        self.replay = TransitionReplay(self.obs_dim, self.act_dim, capacity, seed=seed)
        self.rng = np.random.default_rng(seed + 1)
        self.batch_size = int(self.args.batch_size_transitions)
        self.noise = float(self.args.expl_noise) * self.max_action
        self.obs, _ = self.env.reset(seed=seed)
        self.env.action_space.seed(seed)

    def _env_step(self, action: np.ndarray) -> None:
        next_obs, rew, terminated, truncated, _ = self.env.step(action)
        self.replay.add(self.obs, action, float(rew), next_obs, bool(terminated))
        self.obs = next_obs
        if terminated or truncated:
            self.obs, _ = self.env.reset()

    def random_steps(self, n: int) -> None:
        for _ in range(n):
            self._env_step(self.env.action_space.sample())

    def sample(self):
        batch = self.replay.sample(self.batch_size, self.learner.device)
        k = self.learner.proxy_states_needed
        proxy_obs = (self.replay.sample(k * self.batch_size, self.learner.device)["obs"].reshape(k, self.batch_size, -1)
                     if k else None)
        return batch, proxy_obs

    def train_steps(self, n: int) -> None:
        """``n`` env steps of the training phase: act + noise, env step, replay add, one train_step."""
        for _ in range(n):
            action = self.learner.act(self.obs) + self.rng.normal(0.0, 1.0, self.act_dim) * self.noise
            self._env_step(np.clip(action, -self.max_action, self.max_action).astype(np.float32))
            self.learner.train_step(*self.sample())


def train_step_flops(loop: Loop) -> float:
    """Matmul FLOPs of one ``train_step``, averaged over ``policy_delay`` consecutive calls."""
    n = int(loop.learner.policy_delay)
    with FlopCounterMode(display=False) as counter:
        for _ in range(n):
            loop.learner.train_step(*loop.sample())
    return counter.get_total_flops() / n


def proxy_split_ms(loop: Loop, reps: int) -> Dict[str, float]:
    """Median CPU-ms of the parts of one proxy ``train_step``: critic, actor (run every
    ``policy_delay``-th step), proxy fit; on fresh replay batches."""
    ln = loop.learner
    parts: Dict[str, Callable[[], Any]] = {
        "critic": lambda: ln.update_critic(loop.sample()[0]),
        "actor": lambda: ln.update_actor(loop.sample()[0]["obs"]),
        "proxy_fit": lambda: ln.update_proxy(loop.sample()[1]),
    }
    out: Dict[str, List[float]] = {k: [] for k in parts}
    for _ in range(reps):
        for k, fn in parts.items():
            t0 = time.process_time()
            fn()
            out[k].append(1e3 * (time.process_time() - t0))
    return {k: statistics.median(v) for k, v in out.items()}


def run(env_key: str, seed: int, start_steps: int, rounds: int, block: int, extra: Dict[str, Any],
        split_reps: int = 10) -> Dict[str, Any]:
    """Interleave the loops of ``CONFIGS`` for ``rounds`` rounds of ``block`` env steps each."""
    capacity = start_steps + (rounds + 2) * block + 64
    loops = {c: Loop(c, env_key, seed, capacity, extra) for c in CONFIGS}
    for lp in loops.values():
        lp.random_steps(start_steps)
        lp.train_steps(max(2, block // 10))                 # warm-up (allocations, first calls)
    cpu: Dict[str, List[float]] = {c: [] for c in CONFIGS}
    wall: Dict[str, List[float]] = {c: [] for c in CONFIGS}
    faults: Dict[str, int] = {c: 0 for c in CONFIGS}
    order = list(CONFIGS)
    for r in range(rounds):
        for c in (order if r % 2 == 0 else order[::-1]):
            f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            t0, w0 = time.process_time(), time.perf_counter()
            loops[c].train_steps(block)
            cpu[c].append(time.process_time() - t0)
            wall[c].append(time.perf_counter() - w0)
            faults[c] += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0
    rows: Dict[str, Dict[str, Any]] = {}
    for c, lp in loops.items():
        sps = [block / t for t in cpu[c]]
        rows[c] = {"env_steps_per_cpu_s_median": statistics.median(sps), "env_steps_per_cpu_s_all": sps,
                   "env_steps_per_wall_s_median": statistics.median(block / t for t in wall[c]),
                   "train_step_matmul_flops": train_step_flops(lp), "mode": lp.learner.mode,
                   "page_faults_per_env_step": faults[c] / (rounds * block)}
    ratios = [(block / p) / (block / a) for p, a in zip(cpu["td3_proxy"], cpu["td3"])]
    return {"loops": rows, "ratio_proxy_over_ann": statistics.median(ratios), "ratio_all": ratios,
            "flop_ratio_proxy_over_ann": rows["td3_proxy"]["train_step_matmul_flops"]
            / rows["td3"]["train_step_matmul_flops"],
            "flop_bound_ratio": rows["td3"]["train_step_matmul_flops"] / rows["td3_proxy"]["train_step_matmul_flops"],
            "proxy_split_ms": proxy_split_ms(loops["td3_proxy"], split_reps),
            "obs_dim": loops["td3"].obs_dim, "act_dim": loops["td3"].act_dim}


def _count(x: Optional[float]) -> str:
    return "-" if x is None else f"{x:.0f}"


def markdown(res: Dict[str, Any]) -> str:
    m = res["meta"]
    lines = [f"# Proxy Target loop speed ({m['date']})", "",
             f"{m['env']}, one torch thread, process CPU time, {m['rounds']} interleaved rounds of {m['block']} env "
             f"steps after {m['start_steps']} random steps; batch 256, the configs' defaults (td3_proxy: LIF, T = 5, "
             f"K = 3 proxy steps). learner_keep_heap = {m['keep_heap']}. Load average start/end {m['loadavg_start']} / "
             f"{m['loadavg_end']}.", "",
             "| loop | env steps / CPU-s | env steps / wall-s | matmul GFLOP / train_step | page faults / env step |",
             "|---|---|---|---|---|"]
    for c, row in res["loops"].items():
        lines.append(f"| {c} | {row['env_steps_per_cpu_s_median']:.1f} | {row['env_steps_per_wall_s_median']:.1f} | "
                     f"{row['train_step_matmul_flops'] / 1e9:.3f} | {_count(row.get('page_faults_per_env_step'))} |")
    sp = res["proxy_split_ms"]
    lines += ["", f"- td3_proxy / ANN TD3 env steps per CPU-s: **{res['ratio_proxy_over_ann']:.3f}** (median of per-round "
              f"ratios; target >= 0.5)",
              f"- matmul FLOPs per train_step, proxy / ANN: {res['flop_ratio_proxy_over_ann']:.2f}, so at equal efficiency "
              f"the ratio is bounded by {res['flop_bound_ratio']:.3f}",
              f"- one td3_proxy train_step, CPU-ms: critic {sp['critic']:.1f}, actor {sp['actor']:.1f} (on every "
              f"policy_delay = {m['policy_delay']} steps), proxy fit {sp['proxy_fit']:.1f} (SNN forward on K x 256 states + K Adam steps)"]
    return "\n".join(lines) + "\n"


def doc_section(before: Optional[Dict[str, Any]], after: Optional[Dict[str, Any]]) -> str:
    """The docs/performance.md section: loop speeds and the FLOP bound, from the two JSON records."""
    if after is None:
        return "_No `benchmarks/results/proxy_loop_speed.json` yet: run `python benchmarks/proxy_loop_speed.py`._"
    lines = ["| run | ANN TD3 env steps / CPU-s | td3_proxy env steps / CPU-s | proxy / ANN | FLOP bound | "
             "learner_keep_heap | td3_proxy page faults / env step |", "|---|---|---|---|---|---|---|"]
    for tag, res in (("before", before), ("now", after)):
        if res is None:
            continue
        lo = res["loops"]
        lines.append(f"| {tag} ({res['meta']['date']}) | {lo['td3']['env_steps_per_cpu_s_median']:.0f} | "
                     f"{lo['td3_proxy']['env_steps_per_cpu_s_median']:.1f} | {res['ratio_proxy_over_ann']:.3f} | "
                     f"{res['flop_bound_ratio']:.3f} | {res['meta']['keep_heap']} | "
                     f"{_count(lo['td3_proxy'].get('page_faults_per_env_step'))} |")
    sp, lo, m = after["proxy_split_ms"], after["loops"], after["meta"]
    lines += ["", f"{m['env']}, {m['rounds']} interleaved rounds of {m['block']} env steps, one thread; load average "
              f"at the end {m['loadavg_end']}.", "",
              f"- One train_step: ANN TD3 {lo['td3']['train_step_matmul_flops'] / 1e9:.2f} GFLOP of matmuls, "
              f"td3_proxy {lo['td3_proxy']['train_step_matmul_flops'] / 1e9:.2f} "
              f"({after['flop_ratio_proxy_over_ann']:.1f}x): at equal efficiency td3_proxy cannot run faster than "
              f"{after['flop_bound_ratio']:.2f}x the ANN loop; the measured ratio is "
              + ("above that bound: the proxy loop already turns its FLOPs into env steps more efficiently than the "
                 "ANN loop." if after["ratio_proxy_over_ann"] >= after["flop_bound_ratio"] else
                 "below that bound: the proxy loop uses its FLOPs less efficiently than the ANN loop."),
              f"- td3_proxy train_step split (CPU-ms): critic {sp['critic']:.1f}, actor {sp['actor']:.1f} (on every "
              f"policy_delay = {m['policy_delay']} steps), proxy fit {sp['proxy_fit']:.1f} (the spiking actor's forward on K x 256 "
              f"fresh states and K Adam steps of the 512-512 proxy)."]
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--env", default="Hopper-v4")
    p.add_argument("--start-steps", type=int, default=2000, help="random steps filling each replay (not timed)")
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--block", type=int, default=100, help="env steps per timed block")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--keep-heap", type=int, choices=(0, 1), default=1, help="learner_keep_heap (process-wide)")
    p.add_argument("--name", default="proxy_loop_speed")
    p.add_argument("--out-dir", default=os.path.join(ROOT, "benchmarks", "results"))
    p.add_argument("--doc", action="store_true", help="only rewrite the proxy_loop_speed section of "
                   "docs/performance.md from proxy_loop_speed{_before,}.json")
    a = p.parse_args(argv)
    if a.doc:
        from doc_section import load, update_page
        update_page("proxy_loop_speed", doc_section(load("proxy_loop_speed_before", a.out_dir),
                                                    load("proxy_loop_speed", a.out_dir)))
        return 0
    torch.set_num_threads(1)
    load_start = [round(x, 2) for x in os.getloadavg()]
    start = time.perf_counter()
    res = run(a.env, a.seed, a.start_steps, a.rounds, a.block, {"learner_keep_heap": bool(a.keep_heap)})
    res["meta"] = {"date": time.strftime("%Y-%m-%d %H:%M"), "env": a.env, "start_steps": a.start_steps,
                   "rounds": a.rounds, "block": a.block, "seed": a.seed, "keep_heap": bool(a.keep_heap),
                   "policy_delay": int(loop_args("td3_proxy", a.env, a.seed, {}).policy_delay),
                   "torch": torch.__version__, "python": platform.python_version(), "torch_threads": torch.get_num_threads(),
                   "cpu_count": os.cpu_count(), "loadavg_start": load_start,
                   "loadavg_end": [round(x, 2) for x in os.getloadavg()], "wall_s": time.perf_counter() - start,
                   "command": "python benchmarks/proxy_loop_speed.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    write_report(a.out_dir, a.name, res, markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
