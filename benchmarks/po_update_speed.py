"""PO-control update speed (po_rl loop): ``po_update_impl=fast`` against ``reference`` (CPU).

For each core (``--cores``) and task (``--tasks``: Pendulum-* trains TD3, CartPole-* SAC-discrete,
the configs of ``--config=td3|sacd --env-config=pomdp``), two learners with the same initial
weights, one per ``po_update_impl``, each make ``--updates`` updates per round on the same
pre-sampled window batches (``po_batch_size`` x ``sampled_seq_len`` from a replay of
``--episodes`` uniform-random episodes of the real env). Rounds alternate the order (A, B, B, A,
...); the table reports medians over ``--rounds`` rounds of the ms per update (wall time and the
process's CPU time: with one torch thread the CPU time is what an update costs on a quiet machine,
the wall time adds waiting for a core on a shared one) and of the per-round ratio fast / reference. Then both learners run ``--updates`` more under torch.profiler for a breakdown
of one update by section (target, critic forward, critic backward + Adam, ...). Random CartPole episodes are short (~20 steps), so its windows are mostly
padding, as early in training.

Acting: ms per env step of ``EpisodeRunner.run("explore")`` (actor step + env step). The projected
wall time of a ``t_max``-step run = ``t_max`` x (ms per update x po_updates_per_step + ms per
act step) + the evaluation episodes (``t_max / test_interval`` x ``test_nepisode`` x the env's
episode limit act steps, an upper bound); logging and checkpoints are not counted.

    python benchmarks/po_update_speed.py                  # 4 cores x 2 tasks (~6-10 min on 2 loaded cores)
    python benchmarks/po_update_speed.py --cores mlp --tasks Pendulum-P --rounds 2 --updates 2 --tag tmp
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from typing import Any, Dict, List, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "src"))

import torch  # noqa: E402

from report import write_report  # noqa: E402  (benchmarks/report.py)

IMPLS = ("reference", "fast")


def po_args(core: str, task: str, impl: str, threads: int) -> Any:
    """The run's args for ``--config=td3|sacd --env-config=pomdp`` with this core, task and impl."""
    from main import args_from_config, finalize_config
    from utils.config import build_config
    alg = "sacd" if task.startswith("CartPole") else "td3"
    overrides = [f"env_args.key={task}", f"agent={core}", f"po_update_impl={impl}", f"torch_threads={threads}"]
    return args_from_config(finalize_config(build_config(alg, "pomdp", overrides)))


def setup(core: str, task: str, impl: str, threads: int, episodes: int, seed: int) -> Dict[str, Any]:
    """Env, learner (seeded weights), runner and a replay of random episodes for one variant."""
    from components.episode_replay import EpisodeReplay
    from run.po_rl import EpisodeRunner, build, make_env
    args = po_args(core, task, impl, threads)
    env = make_env(args, seed)
    torch.manual_seed(seed)
    actor, _, learner = build(args, env, torch.device("cpu"))
    runner = EpisodeRunner(env, actor, learner, torch.device("cpu"))
    replay = EpisodeReplay(episodes, env.obs_dim, env.act_dim, env.max_episode_steps,
                           discrete=env.discrete, seed=seed)
    for _ in range(episodes):
        ep = runner.run("random")
        replay.add_episode(ep["obs"], ep["act"], ep["rew"], ep["term"])
    return {"args": args, "env": env, "learner": learner, "runner": runner, "replay": replay}


def time_updates(learner: Any, batches: List[Dict[str, torch.Tensor]]) -> Tuple[float, float]:
    """(wall ms, process CPU ms) per ``learner.train`` over ``batches``. With one torch thread
    the CPU time is what the update costs on a quiet machine; the wall time adds the waits for
    a core on a shared one."""
    start, cpu = time.perf_counter(), time.process_time()
    for b in batches:
        learner.train(b)
    n = len(batches)
    return (time.perf_counter() - start) * 1e3 / n, (time.process_time() - cpu) * 1e3 / n


SECTIONS = ("po_target", "po_critic_forward", "po_critic_backward_adam", "po_actor_forward",
            "po_actor_backward_adam", "po_soft_update")
ADAM = "Optimizer.step#Adam.step"


def breakdown(learner: Any, replay: Any, batches: List[Dict[str, torch.Tensor]]) -> Dict[str, float]:
    """Where one update's time goes: ms per update in each ``record_function`` section of the
    learner (``ADAM`` = all Adam steps, already inside the ``*_backward_adam`` sections), the
    rest of ``train`` and one replay ``sample`` (under torch.profiler, which adds overhead)."""
    from torch.profiler import ProfilerActivity, profile
    bs, L = batches[0]["act"].shape[1], batches[0]["act"].shape[0]
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        for b in batches:
            learner.train(b)
        total = (time.perf_counter() - start) * 1e3 / len(batches)
    got = {e.key: e.cpu_time_total / 1e3 / len(batches) for e in prof.key_averages()
           if e.key in SECTIONS or e.key == ADAM}
    out = {k: got.get(k, 0.0) for k in SECTIONS}
    out["other"] = max(0.0, total - sum(out.values()))
    out["adam_steps"] = got.get(ADAM, 0.0)
    out["total"] = total
    start = time.perf_counter()
    for _ in range(len(batches)):
        replay.sample(bs, L)
    out["replay_sample"] = (time.perf_counter() - start) * 1e3 / len(batches)
    return out


def time_acting(runner: Any, min_steps: int) -> Tuple[float, float]:
    """(wall ms, process CPU ms) per env step of exploring episodes (at least ``min_steps``)."""
    steps, start, cpu = 0, time.perf_counter(), time.process_time()
    while steps < min_steps:
        steps += int(runner.run("explore")["rew"].shape[0])
    return (time.perf_counter() - start) * 1e3 / steps, (time.process_time() - cpu) * 1e3 / steps


def projected_minutes(args: Any, update_ms: float, act_ms: float, episode_limit: int) -> float:
    """Wall minutes of a ``t_max``-step run from per-update and per-act-step costs (see docstring)."""
    t_max = int(args.t_max)
    evals = t_max // max(1, int(args.test_interval)) + 1
    eval_steps = evals * int(args.test_nepisode) * int(episode_limit)
    ms = t_max * (update_ms * float(args.po_updates_per_step) + act_ms) + eval_steps * act_ms
    return ms / 60_000.0


def bench_cell(core: str, task: str, a: argparse.Namespace) -> Dict[str, Any]:
    """Interleaved rounds for one (core, task); returns medians and the per-round values."""
    variants = {impl: setup(core, task, impl, a.threads, a.episodes, a.seed) for impl in IMPLS}
    ref = variants["reference"]
    seq_len, bs = int(ref["args"].sampled_seq_len), int(ref["args"].po_batch_size)
    batches = [ref["replay"].sample(bs, seq_len) for _ in range(a.updates)]
    for v in variants.values():  # warm-up (allocator, first fused-Adam step)
        time_updates(v["learner"], batches[:2])
    wall: Dict[str, List[float]] = {impl: [] for impl in IMPLS}
    cpu: Dict[str, List[float]] = {impl: [] for impl in IMPLS}
    ratios: Dict[str, List[float]] = {"wall": [], "cpu": []}
    for r in range(a.rounds):
        order = IMPLS if r % 2 == 0 else IMPLS[::-1]
        for impl in order:
            w, c = time_updates(variants[impl]["learner"], batches)
            wall[impl].append(w)
            cpu[impl].append(c)
        ratios["wall"].append(wall["fast"][-1] / wall["reference"][-1])
        ratios["cpu"].append(cpu["fast"][-1] / cpu["reference"][-1])
    act_wall, act_cpu = time_acting(variants["fast"]["runner"], a.act_steps)
    parts = {impl: breakdown(variants[impl]["learner"], ref["replay"], batches) for impl in IMPLS}
    limit = int(ref["env"].max_episode_steps)
    med_wall = {impl: statistics.median(v) for impl, v in wall.items()}
    med_cpu = {impl: statistics.median(v) for impl, v in cpu.items()}
    return {"core": core, "task": task, "learner": str(ref["args"].po_learner),
            "window": [bs, seq_len], "ms_per_update": med_wall, "cpu_ms_per_update": med_cpu,
            "ms_per_update_rounds": wall, "cpu_ms_per_update_rounds": cpu,
            "ratio_fast_over_reference": statistics.median(ratios["wall"]),
            "cpu_ratio_fast_over_reference": statistics.median(ratios["cpu"]), "ratios": ratios,
            "act_ms_per_step": act_wall, "act_cpu_ms_per_step": act_cpu, "breakdown_ms": parts,
            "t_max": int(ref["args"].t_max),
            "projected_run_min": {impl: projected_minutes(ref["args"], med_wall[impl], act_wall, limit)
                                  for impl in IMPLS},
            "projected_run_min_cpu": {impl: projected_minutes(ref["args"], med_cpu[impl], act_cpu, limit)
                                      for impl in IMPLS}}


def markdown(rows: List[Dict[str, Any]], meta: Dict[str, Any]) -> str:
    lines = [f"PO-control update speed, po_update_impl fast vs reference ({meta['note']})", "",
             "Wall = elapsed time on the shared machine; CPU = the process's CPU time (one thread: "
             "about the wall time on a quiet machine). Projected = a t_max-step run incl. acting and evaluations.", "",
             "| core | task | CPU ms/update reference | CPU ms/update fast | fast/reference (CPU) "
             "| wall ms/update reference | wall ms/update fast | fast/reference (wall) | act CPU ms/step "
             "| projected run min, CPU, fast | projected run min, wall, fast |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['core']} | {r['task']} ({r['learner']}) | {r['cpu_ms_per_update']['reference']:.1f} "
                     f"| {r['cpu_ms_per_update']['fast']:.1f} | {r['cpu_ratio_fast_over_reference']:.2f} "
                     f"| {r['ms_per_update']['reference']:.1f} | {r['ms_per_update']['fast']:.1f} "
                     f"| {r['ratio_fast_over_reference']:.2f} | {r['act_cpu_ms_per_step']:.2f} "
                     f"| {r['projected_run_min_cpu']['fast']:.0f} | {r['projected_run_min']['fast']:.0f} |")
    names = list(SECTIONS) + ["other", "adam_steps", "replay_sample"]
    lines += ["", "Where one update's time goes (ms per update under torch.profiler, po_update_impl=fast; "
              "`adam_steps` is inside the two `*_backward_adam` sections; `replay_sample` is outside `train`)", "",
              "| core | task | " + " | ".join(n.replace("po_", "") for n in names) + " |",
              "|---|---|" + "---|" * len(names)]
    for r in rows:
        b = r["breakdown_ms"]["fast"]
        lines.append(f"| {r['core']} | {r['task']} | " + " | ".join(f"{b[n]:.1f}" for n in names) + " |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cores", default="mlp,gru,lif,grsn")
    p.add_argument("--tasks", default="Pendulum-P,CartPole-V")
    p.add_argument("--rounds", type=int, default=4, help="interleaved rounds per variant (>= 1)")
    p.add_argument("--updates", type=int, default=6, help="timed updates per round (>= 2)")
    p.add_argument("--episodes", type=int, default=20, help="random episodes in the replay (>= 1)")
    p.add_argument("--act-steps", type=int, default=1000, help="env steps timed for acting (>= 1)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (>= 1)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--tag", default="po_update_speed")
    a = p.parse_args()
    for key in ("rounds", "episodes", "act_steps", "threads"):
        if getattr(a, key) < 1:
            p.error(f"--{key.replace('_', '-')} must be >= 1")
    if a.updates < 2:
        p.error("--updates must be >= 2 (TD3's actor steps every policy_delay = 2 updates)")
    torch.set_num_threads(a.threads)
    load_start = os.getloadavg()
    rows = [bench_cell(core, task, a) for task in a.tasks.split(",") for core in a.cores.split(",")]
    load_end = os.getloadavg()
    note = (f"CPU only, {os.cpu_count()} cores shared with other jobs (1-min load {load_start[0]:.1f} at start, "
            f"{load_end[0]:.1f} at end), torch_threads={a.threads}: absolute ms are noisy, the ratios are "
            f"medians over {a.rounds} interleaved rounds of {a.updates} updates")
    meta = {"note": note, "torch": torch.__version__, "platform": platform.platform(),
            "argv": sys.argv[1:], "loadavg_start": load_start, "loadavg_end": load_end}
    write_report(os.path.join(ROOT, "benchmarks", "results"), a.tag, {"meta": meta, "rows": rows},
                 markdown(rows, meta))


if __name__ == "__main__":
    main()
