"""Proxy Target benchmark: {td3, td3_snn, td3_proxy} x MuJoCo tasks x seeds at a given step budget.

Each run is the real ``td3_mujoco`` loop, configured exactly as ``python src/main.py
--config=<cfg> --env-config=mujoco with ...`` would be (``utils.config.build_config``), run
in-process in a worker (no sacred record, no checkpoints). Reported per run: the test-return
curve, its maximum ("max average return": the best mean over ``test_nepisode`` evaluation
episodes from fixed start states, the paper's Table 1 metric), the mean of the last 5
evaluations, wall time, training speed, and the mechanism check: ``target_shift`` (RMS change of
the target actions per update: soft-updated SNN copy in td3_snn, proxy in td3_proxy) and the
proxy fit loss.

The paper trains 1M steps (25k random) and reports the mean over 5 seeds. That is out of reach
on a CPU; pass a budget (``--t-max``, ``--start-steps``) and compare vanilla vs proxy at equal
steps and seeds. The table compares configurations at the largest step every run of that task
reached (runs cut by ``--time-limit`` stop early), next to the paper's 1M-step numbers.

Examples::

    # the Walker2d grid (issue 22): 3 configs x 3 seeds, 150k steps, 10k random start steps
    python benchmarks/proxy_target.py --envs Walker2d-v4 --seeds 1 2 3 --t-max 150000 \
        --start-steps 10000 --test-interval 5000 --test-nepisode 10 --workers 2 --resume
    python benchmarks/proxy_target.py --table-only      # rebuild the markdown (and plots) from the json
    python benchmarks/proxy_target.py --speed --envs Walker2d-v4   # env steps/s, fused vs step loop

``--resume`` skips every run already complete in the json and continues every unfinished one
from its newest checkpoint (exact resume: ``--work`` keeps each run's checkpoints, with the replay,
every ``--save-every`` env steps, and its logged stats), so a grid can be split across sessions;
``--deadline-s`` / ``--time-limit`` stop runs with a last checkpoint. Results accumulate in
``benchmarks/results/proxy_target.json`` (one record per config, task, neuron, seed and budget; a
rerun replaces its record), the table in ``benchmarks/results/proxy_target.md`` and the
mechanism plot in ``benchmarks/results/proxy_target_mechanism_<task>.png``. ``--speed`` writes
``benchmarks/results/proxy_target_speed.{json,md}``.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from types import SimpleNamespace
from typing import Any, Callable, Dict, List, Optional, Sequence

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "src"))

RESULTS_DIR = os.path.join(ROOT, "benchmarks", "results")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report import compare_seeds, relation, write_report  # noqa: E402
from run_progress import StopAt, load_progress, save_progress  # noqa: E402  (benchmarks/run_progress.py)
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


# What "setup" a record was made with. Records without the key predate issue 22: one proxy batch
# (the critic's) for all K steps, encoder std 0.15, proxy lr 3e-3 for clif/dn, evaluations on one
# env that kept running (other start states at every evaluation).
SETUP = "authors (#22): K fresh proxy batches, enc std sqrt(0.05), proxy lr 1e-3, fixed-seed evals"
OLD_SETUP = "pre-#22"


class RecordingLogger:
    """The Logger interface (log_stat / print_recent_stats / console), kept in memory.

    ``stats`` starts from ``prior`` (the earlier parts of a resumed run) and is written to
    ``stats_path`` after every evaluation, so a run killed outright keeps its curve up to its last
    checkpoint. From ``stop_at`` (epoch seconds) on, the first stat logged sends this process a
    SIGTERM: the run loop saves a last checkpoint at its next safe point and stops.
    """

    def __init__(self, stop_at: Optional[float] = None, stats_path: str = "",
                 prior: Optional[Dict[str, List[List[float]]]] = None, wall_before: float = 0.0) -> None:
        import logging

        self.stats: Dict[str, List[List[float]]] = {k: [list(e) for e in v] for k, v in (prior or {}).items()}
        self.console = logging.getLogger("proxy_target_bench")
        self.stop, self.stats_path, self.wall_before = StopAt(stop_at), stats_path, float(wall_before)
        self.started = time.time()

    def log_stat(self, key: str, value: float, t: int) -> None:
        self.stats.setdefault(key, []).append([int(t), float(value)])
        if key == "test_return_best" and self.stats_path:
            self.dump()
        self.stop.check()

    def wall_s(self) -> float:
        """Training wall time of all parts of the run so far."""
        return self.wall_before + time.time() - self.started

    def dump(self) -> None:
        save_progress(self.stats_path, self.stats, self.wall_s())

    def print_recent_stats(self) -> None:
        pass

    def print_progress(self, t_env: int, t_max: int) -> None:
        pass

    def print_test(self, t_env: int) -> None:
        pass

    def state_dict(self) -> Dict[str, Any]:
        return {}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        pass


def job_threads(job: Dict[str, Any]) -> int:
    """Torch CPU threads of one run (``--threads``; 1 unless given)."""
    return int(job.get("threads") or 1)


def run_key(rec: Dict[str, Any]) -> str:
    return f"{rec['config']}|{rec['env']}|{rec['neuron']}|seed{rec['seed']}|t{rec['t_max']}"


def build_args(job: Dict[str, Any]) -> SimpleNamespace:
    """The merged config of one run, as main.py would build it."""
    from utils.config import CONFIG_DIR, build_config

    overrides = [f"env_args.key={job['env']}", f"seed={job['seed']}", f"t_max={job['t_max']}",
                 f"start_steps={job['start_steps']}", f"test_interval={job['test_interval']}",
                 f"test_nepisode={job['test_nepisode']}",
                 f"log_interval={job.get('log_interval') or job['test_interval']}",
                 f"device={job['device']}", f"torch_threads={job_threads(job)}"] + list(job.get("extra", []))
    if job.get("work"):   # checkpoints (with the replay) every save_every steps, for --resume
        overrides += ["save_model=True", f"save_model_interval={job['save_every']}", "save_buffer=True",
                      f"local_results_path={run_dir(job)}"]
    else:
        overrides.append("save_model=False")
    if job["config"] != "td3":
        overrides.append(f"actor_neuron={job['neuron']}")
        if job.get("unroll"):
            overrides.append(f"popsan_unroll={job['unroll']}")
    config = build_config(job["config"], "mujoco", overrides, config_dir=job["config_dir"] or CONFIG_DIR)
    config["name"] = f"bench_{job['config']}"
    args = SimpleNamespace(**config)
    args.unique_token = f"bench_{job['config']}_{job['env']}_seed{job['seed']}"
    return args


REPLAY_PART = "replay"   # the checkpoint part holding td3_mujoco's replay (src/run/td3_mujoco.py)


def run_dir(job: Dict[str, Any]) -> str:
    """A run's own folder under ``job['work']``: its checkpoints (``models/``) and ``stats.json``."""
    name = (f"{run_key(job)}_ss{job['start_steps']}_ti{job['test_interval']}_tn{job['test_nepisode']}"
            .replace("|", "_"))
    return os.path.join(job["work"], name)


def _prior_part(job: Dict[str, Any], args: SimpleNamespace) -> tuple:
    """``(checkpoint dir or '', stats so far, wall seconds so far, checkpoint step)`` of an interrupted run: its newest
    complete checkpoint and the stats logged up to that checkpoint's step (later ones are logged
    again by the resumed run, which continues exactly)."""
    from utils.checkpoint import CheckpointError, find_checkpoint, has_part, model_dir_for

    models = model_dir_for(args)
    stats_path = os.path.join(run_dir(job), "stats.json")
    none = ("", {}, 0.0, 0)
    if not (os.path.isdir(models) and os.path.exists(stats_path)):
        return none
    try:
        step_dir, t_ck = find_checkpoint(models)
    except CheckpointError:
        return none
    if not has_part(step_dir, REPLAY_PART):
        return none
    stats, wall = load_progress(stats_path, t_ck)
    return models, stats, wall, int(t_ck)


def drop_old_replays(models: str, keep_newest: bool) -> None:
    """Remove the replay from a run's checkpoints: all but the newest step's (``keep_newest``), or all."""
    from utils.checkpoint import drop_part

    if not os.path.isdir(models):
        return
    steps = sorted((int(d) for d in os.listdir(models) if d.isdigit()), reverse=True)
    for i, step in enumerate(steps):
        step_dir = os.path.join(models, str(step))
        if (i > 0 or not keep_newest) and os.path.exists(os.path.join(step_dir, "manifest.json")):
            drop_part(step_dir, REPLAY_PART)


def run_one(job: Dict[str, Any]) -> Dict[str, Any]:
    """Run one configuration; returns its record (``complete: False`` when stopped by the time limit
    or the deadline: it saved a checkpoint and continues from there with ``--resume``)."""
    import torch

    from run.td3_mujoco import run_td3_mujoco
    from utils.checkpoint import model_dir_for
    from utils.seeding import set_seed

    torch.set_num_threads(job_threads(job))
    args = build_args(job)
    start = time.time()
    stops = [x for x in (start + job["time_limit"] if job["time_limit"] else None, job.get("deadline_at"))
             if x]
    if job.get("deadline_at") and start > job["deadline_at"]:
        return {"not_started": True}
    checkpoint, prior, wall_before, t_ck = _prior_part(job, args) if job.get("work") else ("", {}, 0.0, 0)
    if checkpoint:
        args.checkpoint_path = checkpoint
    stats_path = os.path.join(run_dir(job), "stats.json") if job.get("work") else ""
    if stats_path:
        os.makedirs(run_dir(job), exist_ok=True)
    logger = RecordingLogger(min(stops) if stops else None, stats_path, prior, wall_before)
    set_seed(int(args.seed))
    complete = True
    try:
        with logger.stop.watch():
            run_td3_mujoco(args, logger)
    except KeyboardInterrupt:
        complete = False
    if stats_path:
        logger.dump()
        drop_old_replays(model_dir_for(args), keep_newest=not complete)
    curve = logger.stats.get("test_return_mean", [])
    t_reached = curve[-1][0] if curve else 0
    # training speed: log windows wholly after the random start steps, without the final one
    # (it also holds the last evaluation)
    step = int(args.log_interval)
    sps = [v for t, v in logger.stats.get("steps_per_sec", [])
           if t - step >= job["start_steps"] and t < t_reached]
    rec = {k: job[k] for k in ("config", "env", "neuron", "seed", "t_max", "start_steps",
                                "test_interval", "test_nepisode", "device")}
    rec.update(setup=SETUP, complete=complete, t_reached=t_reached, wall_s=round(logger.wall_s(), 1),
               resumed_from_t=t_ck if checkpoint else None,
               train_steps_per_sec=round(sum(sps) / len(sps), 2) if sps else None,
               max_avg_return=max(v for _, v in curve) if curve else None,
               last5_mean=sum(v for _, v in curve[-5:]) / len(curve[-5:]) if curve else None,
               final_return=curve[-1][1] if curve else None, test_curve=curve,
               proxy_loss=logger.stats.get("proxy_loss", []),
               proxy_loss_first=logger.stats.get("proxy_loss_first", []),
               target_shift=logger.stats.get("target_shift", []),
               firing_rate=logger.stats.get("test_firing_rate", []),
               popsan_unroll=getattr(args, "popsan_unroll", None) if job["config"] != "td3" else None,
               torch_threads=job_threads(job))
    return rec


def pending_jobs(jobs: Sequence[Dict[str, Any]], runs: Dict[str, Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The jobs without a complete record of the current setup in ``runs`` (``--resume``)."""
    def done(j: Dict[str, Any]) -> bool:
        rec = runs.get(run_key(j), {})
        return bool(rec.get("complete")) and rec.get("setup") == SETUP and rec.get("start_steps") == j["start_steps"]
    return [j for j in jobs if not done(j)]


def plan_of(job: Dict[str, Any], pending: Sequence[Dict[str, Any]]) -> str:
    """How ``--resume`` runs ``job``: ``reuse`` (complete), ``resume from step N`` (an unfinished
    run's newest checkpoint with its replay under ``--work``) or ``fresh``."""
    if job not in pending:
        return "reuse"
    t_ck = _prior_part(job, build_args(job))[3] if job.get("work") else 0
    return f"resume from step {t_ck}" if t_ck else "fresh"


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


def _cell(vals: Sequence[float]) -> str:
    import numpy as np

    return f"{np.mean(vals):.0f} ± {np.std(vals):.0f} (n={len(vals)})" if vals else "-"


def finished_runs(rs: Sequence[Dict[str, Any]]) -> tuple:
    """``(runs to report, runs left out)`` of one row or plot: its finished runs when it has any (a
    grid in progress; an unfinished run would cut the curves to the step it reached), else all of
    them (runs all cut by ``--time-limit``, compared at the step every one reached)."""
    done = [r for r in rs if r.get("complete")]
    return (done, [r for r in rs if not r.get("complete")]) if done else (list(rs), [])


def markdown_table(runs: Sequence[Dict[str, Any]]) -> str:
    """Max average test return and mean of the last 5 evaluations (mean ± std over seeds) at
    equal steps, beside the paper. A row with finished runs is made of those only (unfinished
    ones are named under the verdicts); a row of runs all cut early compares them at the step
    every one reached."""
    import numpy as np

    groups: Dict[tuple, List[Dict[str, Any]]] = {}
    for r in runs:
        key = (r.get("setup", OLD_SETUP), r["env"], r["neuron"], r["device"], r["t_max"], r["start_steps"])
        groups.setdefault(key, []).append(r)
    lines = ["# Proxy Target benchmark (max average test return; mean of the last 5 evaluations)", "",
             "Ours: mean ± std over seeds of the best evaluation mean (max) and of the mean of the last 5 "
             "evaluations (last 5), counted up to the step every run of that row reached (`steps`). "
             "Paper: Table 1 of Xu et al. (max average return, 1M steps, 5 seeds, LIF). Our budgets are "
             "far below 1M steps, so only the ordering at equal steps is comparable.", "",
             "| setup | task | neuron | device | start steps | steps | seeds | " + " | ".join(
                 f"{LABELS[c]} max | {LABELS[c]} last 5 | paper" for c in CONFIGS)
             + " | train steps/s (ann/snn/proxy) |",
             "|" + "---|" * (8 + 3 * len(CONFIGS))]
    verdicts, unfinished = [], []
    for (setup, env, neuron, device, t_max, start), rs in sorted(groups.items()):
        rs, left_out = finished_runs(rs)
        unfinished += [f"{LABELS[r['config']]} seed {r['seed']} ({env}, {t_max:,} steps) at {r['t_reached']:,}"
                       for r in left_out]
        common = min(r["t_reached"] for r in rs)
        cells, speeds, maxima = [], [], {}
        seeds = sorted({r["seed"] for r in rs})
        for c in CONFIGS:
            curves = [[(t, v) for t, v in r["test_curve"] if t <= common] for r in rs if r["config"] == c]
            best = [max(v for _, v in cv) for cv in curves if cv]
            maxima[c] = best
            last5 = [float(np.mean([v for _, v in cv[-5:]])) for cv in curves if cv]
            sp = [r["train_steps_per_sec"] for r in rs if r["config"] == c and r["train_steps_per_sec"]
                  and r.get("torch_threads", 1) == 1]
            speeds.append(f"{np.mean(sp):.0f}" if sp else "-")
            paper = PAPER[c].get(_task(env), "-")
            cells += [_cell(best), _cell(last5), str(paper) if c == "td3" or neuron == "lif" else "-"]
        lines.append(f"| {setup.split(':')[0]} | {env} | {neuron} | {device} | {start} | {common} | "
                     f"{','.join(map(str, seeds))} | " + " | ".join(cells) + f" | {'/'.join(speeds)} |")
        verdicts.append(f"- {setup.split(':')[0]}, {env}, {common} steps: " + verdict_text(maxima))
    lines += ["", "Verdict per row on the max (a config above / below another only when the means are further "
              "apart than the larger std over seeds, else level; one seed gives std 0, so any gap counts):", ""]
    lines += verdicts
    if unfinished:
        lines += ["", "Unfinished runs, left out of their rows (`--resume` continues them): "
                  + "; ".join(unfinished) + "."]
    lines += ["", f"Setups: `{SETUP}`; `{OLD_SETUP}`: the code before issue 22 (one proxy batch reused for "
              "the K steps, encoder std 0.15, evaluations from changing start states).",
              "`steps`: evaluations up to this env step count (a row whose runs were all cut by --time-limit "
              "compares them at the step all reached). "
              "Speeds are env steps/s while training, one process per run on one torch thread (runs given more "
              "threads with `--threads` are left out of them), and depend on the machine's load. Per-run curves, "
              "budgets, test settings and threads: proxy_target.json."]
    return "\n".join(lines) + "\n"


def verdict_text(maxima: Dict[str, List[float]]) -> str:
    """The paper's claims at one row: proxy-target SNN vs vanilla SNN, and each SNN vs ANN TD3, by
    ``report.compare_seeds`` on the per-seed max average returns ``{config: [max per seed]}``."""
    out = []
    for a, b in (("td3_proxy", "td3_snn"), ("td3_proxy", "td3"), ("td3_snn", "td3")):
        if maxima.get(a) and maxima.get(b):
            how, diff, tol = compare_seeds(maxima[a], maxima[b])
            out.append(f"{LABELS[a]} {relation(how)} {LABELS[b]} ({diff:+.0f}, std {tol:.0f})")
    return "; ".join(out) if out else "not enough configs yet"


def _mean_curve(curves: Sequence[Sequence[Sequence[float]]]) -> tuple:
    """Mean over runs of curves ``[[t, v], ...]`` at the steps all of them logged."""
    import numpy as np

    common = sorted(set.intersection(*[{int(t) for t, _ in c} for c in curves])) if curves else []
    vals = [[dict((int(t), v) for t, v in c)[t] for t in common] for c in curves]
    return common, np.mean(vals, 0) if vals else []


def plot_mechanism(runs: Sequence[Dict[str, Any]], out_dir: str) -> List[str]:
    """Per task (new-setup runs only; finished ones when the task has any, see ``finished_runs``):
    the test return, ``target_shift`` and the proxy fit loss against env steps, averaged over
    seeds. Returns the PNG paths written."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for env in sorted({r["env"] for r in runs if r.get("setup") == SETUP}):
        rs, _ = finished_runs([r for r in runs if r.get("setup") == SETUP and r["env"] == env])
        fig, axes = plt.subplots(1, 3, figsize=(15, 4))
        for c in CONFIGS:
            mine = [r for r in rs if r["config"] == c]
            if not mine:
                continue
            t, v = _mean_curve([r["test_curve"] for r in mine])
            axes[0].plot(t, v, label=f"{LABELS[c]} (n={len(mine)})")
            shifts = [r["target_shift"] for r in mine if r.get("target_shift")]
            if shifts:
                t, v = _mean_curve(shifts)
                axes[1].plot(t, v, label=LABELS[c])
            for key, style in (("proxy_loss_first", "-"), ("proxy_loss", "--")):
                losses = [r[key] for r in mine if r.get(key)]
                if losses:
                    t, v = _mean_curve(losses)
                    axes[2].plot(t, v, style, label=f"{key} ({LABELS[c]})")
        axes[0].set(title=f"{env}: test return (fixed start states)", xlabel="env steps")
        axes[1].set(title="target_shift: RMS change of target actions per update", xlabel="env steps",
                    yscale="log")
        axes[2].set(title="proxy fit loss (first / last of K steps)", xlabel="env steps", yscale="log")
        for ax in axes:
            if ax.lines:
                ax.legend(fontsize=8)
        fig.tight_layout()
        path = os.path.join(out_dir, f"proxy_target_mechanism_{_task(env)}.png")
        fig.savefig(path, dpi=90)
        plt.close(fig)
        paths.append(path)
    return paths


# ---------------------------------------------------------------------------- speed
def speed_job(job: Dict[str, Any]) -> Dict[str, Any]:
    """One speed measurement: the real loop for ``start_steps + train`` steps (training speed from
    the log windows after the random steps), plus the time of one evaluation batched and one
    episode at a time on the same fixed start states."""
    import torch

    import learners.td3_mujoco as td3_learner

    if job["variant"] == "before":   # the per-parameter Adam (PyTorch's CPU default) in this worker
        td3_learner.adam = lambda params, lr, device: torch.optim.Adam(params, lr=lr)
    rec = run_one(job)
    out = {k: rec[k] for k in ("config", "env", "seed", "train_steps_per_sec", "wall_s")}
    out["variant"] = job["variant"]
    out["round"] = job["round"]
    if job.get("eval_timing"):
        import numpy as np

        from learners.td3_mujoco import TD3MujocoLearner
        from run.td3_mujoco import _make_env, evaluate

        args = build_args(job)
        env = _make_env(args, 0)
        learner = TD3MujocoLearner(int(np.prod(env.observation_space.shape)), int(np.prod(env.action_space.shape)),
                                   env.action_space.high.astype(np.float32), args)
        seeds = [100 + i for i in range(int(job["test_nepisode"]))]
        envs = [_make_env(args, s) for s in seeds]
        torch.manual_seed(0)
        t0 = time.perf_counter()
        batched, _, states = evaluate(learner.act, envs, seeds)
        t1 = time.perf_counter()
        serial = [evaluate(learner.act, [envs[i]], [s])[0][0] for i, s in enumerate(seeds)]
        t2 = time.perf_counter()
        assert np.allclose(batched, serial), "batched and one-at-a-time evaluations differ"
        out.update(eval_batched_s=round(t1 - t0, 3), eval_serial_s=round(t2 - t1, 3), eval_steps=int(len(states)))
    return out


def _task_shapes(job: Dict[str, Any]) -> tuple:
    """``(args, obs_dim, act_dim, max_action)`` of one job's task."""
    import numpy as np

    from run.td3_mujoco import _make_env

    args = build_args(job)
    env = _make_env(args, 0)
    obs_dim, act_dim = int(np.prod(env.observation_space.shape)), int(np.prod(env.action_space.shape))
    max_a = env.action_space.high.astype(np.float32)
    env.close()
    return args, obs_dim, act_dim, max_a


def _synthetic_batch(batch_size: int, obs_dim: int, act_dim: int, proxy_steps: int) -> tuple:
    """A fixed random replay batch ``{obs [b, obs_dim], actions [b, act_dim], ...}`` and proxy states
    ``[proxy_steps, b, obs_dim]`` (None when 0), the same on every call."""
    import torch

    g = torch.Generator().manual_seed(0)
    b = batch_size
    batch = {"obs": torch.randn(b, obs_dim, generator=g), "actions": torch.rand(b, act_dim, generator=g) * 2 - 1,
             "rewards": torch.randn(b, 1, generator=g), "next_obs": torch.randn(b, obs_dim, generator=g),
             "terminated": torch.zeros(b, 1)}
    return batch, (torch.randn(proxy_steps, b, obs_dim, generator=g) if proxy_steps else None)


def alternate_ms(steps: Dict[str, Callable[[], None]], n: int, warmup: int = 4) -> Dict[str, float]:
    """Median ms of each named callable, called in turn A, B, A, B ... (``warmup`` rounds not timed),
    so that load changes hit all alike."""
    import numpy as np

    times: Dict[str, List[float]] = {name: [] for name in steps}
    for i in range(n + warmup):
        for name, step in steps.items():
            t0 = time.perf_counter()
            step()
            if i >= warmup:
                times[name].append((time.perf_counter() - t0) * 1000)
    return {name: round(float(np.median(t)), 2) for name, t in times.items()}


def update_timing(job: Dict[str, Any], n: int = 40) -> Dict[str, Any]:
    """Median ms of one ``train_step`` (batch 256, Walker2d-sized or the task's shapes) for "before"
    and "after" learners of ``job['config']``, alternating A, B, A, B in one process so that load
    changes hit both alike. Synthetic replay batches; the same for both."""
    import torch

    import learners.td3_mujoco as td3_learner

    torch.set_num_threads(1)
    args, obs_dim, act_dim, max_a = _task_shapes(job)
    fused_adam = td3_learner.adam
    learners = {}
    for variant, unroll in (("before", "steps"), ("after", "fused")):
        args.popsan_unroll = unroll
        td3_learner.adam = fused_adam if variant == "after" else (
            lambda params, lr, device: torch.optim.Adam(params, lr=lr))
        torch.manual_seed(0)
        learners[variant] = td3_learner.TD3MujocoLearner(obs_dim, act_dim, max_a, args)
    td3_learner.adam = fused_adam
    batch, proxy_obs = _synthetic_batch(int(args.batch_size_transitions), obs_dim, act_dim,
                                        learners["after"].proxy_states_needed)
    ms = alternate_ms({v: (lambda ln=ln: ln.train_step(batch, proxy_obs)) for v, ln in learners.items()}, n)
    out = {f"{v}_median_ms": t for v, t in ms.items()}
    out["ratio_before_over_after"] = round(out["before_median_ms"] / out["after_median_ms"], 2)
    return out


def thread_timing(job: Dict[str, Any], threads: Sequence[int], n: int = 40) -> Dict[str, float]:
    """Median ms of one ``train_step`` of ``job['config']`` (batch 256, synthetic batches) on each
    torch thread count in ``threads``, one learner, the counts alternating call by call."""
    import torch

    from learners.td3_mujoco import TD3MujocoLearner

    args, obs_dim, act_dim, max_a = _task_shapes(job)
    torch.manual_seed(0)
    learner = TD3MujocoLearner(obs_dim, act_dim, max_a, args)
    batch, proxy_obs = _synthetic_batch(int(args.batch_size_transitions), obs_dim, act_dim,
                                        learner.proxy_states_needed)

    def step(k: int) -> Callable[[], None]:
        def go() -> None:
            torch.set_num_threads(k)
            learner.train_step(batch, proxy_obs)
        return go
    ms = alternate_ms({str(k): step(k) for k in threads}, n)
    torch.set_num_threads(1)
    return ms


def run_thread_scaling(a: argparse.Namespace) -> int:
    """``--thread-scaling K ...``: one train_step's median ms per config at each thread count,
    interleaved; prints a table and writes ``<--speed-tag>_threads.{json,md}``."""
    configs = list(a.configs)
    job = dict(config=configs[0], env=a.envs[0], seed=a.seeds[0], neuron=a.neuron, t_max=a.t_max,
               start_steps=a.start_steps, test_interval=a.test_interval, test_nepisode=a.test_nepisode,
               device=a.device, config_dir=a.config_dir)
    threads = list(a.thread_scaling)
    res = {c: thread_timing(dict(job, config=c), threads) for c in configs}
    base_k = str(threads[0])
    lines = [f"# Proxy Target update time per torch thread count ({a.envs[0]}, {a.neuron}, {a.device})", "",
             "Median ms of one train_step (batch 256, synthetic batches), the thread counts alternating "
             "call by call in one process; speed-up = ms at the first count / ms at this count. "
             "Run it with the machine otherwise idle: other jobs take the extra threads' cores.", "",
             "| config | " + " | ".join(f"{k} thread(s) ms" for k in threads) + " | "
             + " | ".join(f"speed-up at {k}" for k in threads[1:]) + " |",
             "|---|" + "---|" * (2 * len(threads) - 1)]
    for c, ms in res.items():
        lines.append(f"| {c} | " + " | ".join(str(ms[str(k)]) for k in threads) + " | "
                     + " | ".join(f"{ms[base_k] / ms[str(k)]:.2f}" for k in threads[1:]) + " |")
    lines += ["", "Command: `python benchmarks/proxy_target.py " + " ".join(sys.argv[1:]) + "`"]
    write_report(RESULTS_DIR, a.speed_tag + "_threads", {"env": a.envs[0], "neuron": a.neuron, "device": a.device,
                                                         "threads": threads, "median_ms": res}, "\n".join(lines))
    return 0


def run_speed(a: argparse.Namespace) -> int:
    """Rounds: for each round and config, "before" (reference step loop ``popsan_unroll=steps``,
    per-parameter Adam) and "after" (fused unroll, fused Adam) run at the same time, one process
    each, so that both see the same machine load; ratios per round, medians reported."""
    import numpy as np

    configs = [c for c in a.configs if c != "td3"] or ["td3_snn", "td3_proxy"]
    jobs = []
    for rnd in range(a.rounds):
        for c in configs:
            for variant, unroll in (("before", "steps"), ("after", "fused")):
                jobs.append(dict(config=c, env=a.envs[0], seed=a.seeds[0], neuron=a.neuron,
                                 t_max=a.start_steps + a.speed_train_steps, start_steps=a.start_steps,
                                 test_interval=10 ** 9, test_nepisode=a.test_nepisode, device=a.device,
                                 time_limit=0, config_dir=a.config_dir, unroll=unroll, round=rnd, variant=variant,
                                 log_interval=max(1, a.speed_train_steps // 4), eval_timing=True))
    updates = {}
    for c in configs:
        updates[c] = update_timing(dict(jobs[0], config=c))
        print(f"{c}: one train_step (batch {256}) before {updates[c]['before_median_ms']} ms, after "
              f"{updates[c]['after_median_ms']} ms (interleaved, medians)", flush=True)
    recs = []
    ctx = mp.get_context("spawn")
    with ctx.Pool(2, maxtasksperchild=1) as pool:         # before and after of a round side by side
        pairs = [jobs[i:i + 2] for i in range(0, len(jobs), 2)]      # (before, after) of one round
        for rec in (r for pair in pairs for r in pool.map(speed_job, pair)):
            recs.append(rec)
            print(f"round {rec['round']} {rec['config']} {rec['variant']}: {rec['train_steps_per_sec']} env steps/s; "
                  f"evaluation batched {rec['eval_batched_s']} s vs one at a time {rec['eval_serial_s']} s", flush=True)
    lines = [f"# Proxy Target training speed ({a.envs[0]}, {a.neuron}, {a.device}, one torch thread)", "",
             f"Each cell: env steps/s over {a.speed_train_steps} training steps after {a.start_steps} random "
             f"steps (the real td3_mujoco loop; each round runs *before* and *after* side by side, so both see "
             f"the same load); *before*: the reference "
             f"step loop `popsan_unroll=steps`, PyTorch's per-parameter Adam) and *after* (fused neuron unroll, "
             f"fused Adam). Evaluation: {a.test_nepisode} episodes of the untrained actor from fixed start "
             "states, batched vs one at a time.", "",
             "| config | before (per round) | after (per round) | median ratio after/before | "
             "update ms before | update ms after | eval one at a time (s) | eval batched (s) |",
             "|---|---|---|---|---|---|---|---|"]
    summary = {}
    for c in configs:
        per = {u: [r for r in recs if r["config"] == c and r["variant"] == u] for u in ("before", "after")}
        ratios = [f["train_steps_per_sec"] / s_["train_steps_per_sec"]
                  for s_, f in zip(per["before"], per["after"])]
        summary[c] = {"median_ratio_after_over_before": float(np.median(ratios)), "update": updates[c],
                      "before_median": float(np.median([r["train_steps_per_sec"] for r in per["before"]])),
                      "after_median": float(np.median([r["train_steps_per_sec"] for r in per["after"]])),
                      "eval_serial_median_s": float(np.median([r["eval_serial_s"] for r in recs if r["config"] == c])),
                      "eval_batched_median_s": float(np.median([r["eval_batched_s"] for r in recs if r["config"] == c]))}
        lines.append(f"| {c} | {', '.join(str(r['train_steps_per_sec']) for r in per['before'])} | "
                     f"{', '.join(str(r['train_steps_per_sec']) for r in per['after'])} | "
                     f"{summary[c]['median_ratio_after_over_before']:.2f} | {updates[c]['before_median_ms']} | "
                     f"{updates[c]['after_median_ms']} | {summary[c]['eval_serial_median_s']:.2f} | "
                     f"{summary[c]['eval_batched_median_s']:.2f} |")
    lines += ["", "Update ms: median time of one train_step (batch 256, synthetic batches), before and after "
              "learners alternating in one process (so load hits both alike).",
              "Command: `python benchmarks/proxy_target.py " + " ".join(sys.argv[1:]) + "`",
              "Speeds depend on the machine's load; only the ratios of interleaved runs compare variants."]
    base = os.path.join(RESULTS_DIR, a.speed_tag)
    os.makedirs(RESULTS_DIR, exist_ok=True)
    with open(base + ".json", "w") as f:
        json.dump({"env": a.envs[0], "neuron": a.neuron, "device": a.device, "start_steps": a.start_steps,
                   "train_steps": a.speed_train_steps, "summary": summary, "runs": recs}, f, indent=1)
    with open(base + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


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
                   help="seconds per run; a run past it saves a checkpoint and stops (0: none)")
    p.add_argument("--deadline-s", type=float, default=0.0,
                   help="seconds from now: runs still going save a checkpoint and stop, no more start (0: none)")
    p.add_argument("--work", default=os.path.join(ROOT, "results", "bench", "proxy_target"),
                   help="folder of the runs' checkpoints and stats (--resume continues from them; '' = none)")
    p.add_argument("--save-every", type=int, default=10000,
                   help="env steps between checkpoints (with the replay; older ones drop theirs)")
    p.add_argument("--config-dir", default="", help="config folder (default: the repo's config/)")
    p.add_argument("--out", default=os.path.join(RESULTS_DIR, "proxy_target.json"))
    p.add_argument("--table-only", action="store_true", help="only rebuild the markdown table and plots")
    p.add_argument("--resume", action="store_true", help="skip runs already complete in --out")
    p.add_argument("--dry-run", action="store_true",
                   help="with --resume: print each run's plan (reuse / resume from step N / fresh) and stop")
    p.add_argument("--speed", action="store_true",
                   help="measure env steps/s, reference step loop vs fused unroll, interleaved")
    p.add_argument("--rounds", type=int, default=2, help="--speed: interleaved rounds")
    p.add_argument("--speed-train-steps", type=int, default=1000, help="--speed: training steps per run")
    p.add_argument("--speed-tag", default="proxy_target_speed", help="--speed: results file name")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads per run (1: the speeds in the table; more for a run alone on the machine)")
    p.add_argument("--thread-scaling", nargs="+", type=int, default=None, metavar="K",
                   help="only measure one train_step's time per config at these thread counts, interleaved")
    a = p.parse_args(argv)
    if a.threads < 1:
        p.error(f"--threads must be >= 1, got {a.threads}")
    if a.speed:
        return run_speed(a)
    if a.thread_scaling:
        if min(a.thread_scaling) < 1:
            p.error(f"--thread-scaling counts must be >= 1, got {a.thread_scaling}")
        return run_thread_scaling(a)

    runs = load_results(a.out)
    md_path = os.path.splitext(a.out)[0] + ".md"
    if not a.table_only:
        jobs = [dict(config=c, env=e, seed=s, neuron=a.neuron, t_max=a.t_max,
                     start_steps=a.start_steps, test_interval=a.test_interval,
                     test_nepisode=a.test_nepisode, device=a.device, time_limit=a.time_limit,
                     config_dir=a.config_dir, work=a.work, save_every=a.save_every, threads=a.threads,
                     deadline_at=time.time() + a.deadline_s if a.deadline_s > 0 else None)
                for e in a.envs for s in a.seeds for c in a.configs]
        if a.resume:
            n_all = len(jobs)
            pending = pending_jobs(jobs, runs)
            for j in jobs:
                print(f"{run_key(j)}: {plan_of(j, pending)}", flush=True)
            jobs = pending
            print(f"--resume: {n_all - len(jobs)} runs already complete", flush=True)
        print(f"{len(jobs)} runs, {a.workers} at a time", flush=True)
        if a.dry_run:
            return 0
        ctx = mp.get_context("spawn")
        with ctx.Pool(max(1, a.workers), maxtasksperchild=1) as pool:
            for rec in pool.imap_unordered(run_one, jobs):
                if rec.get("not_started"):
                    continue
                runs[run_key(rec)] = rec
                save_results(a.out, runs)
                with open(md_path, "w") as f:
                    f.write(markdown_table(list(runs.values())))
                print(f"done {run_key(rec)}: max avg return {rec['max_avg_return']:.1f}, "
                      f"reached t={rec['t_reached']} ({rec['wall_s']}s, {rec['train_steps_per_sec']} steps/s"
                      f"{'' if rec['complete'] else ', stopped by the time limit: --resume continues it'})",
                      flush=True)
    with open(md_path, "w") as f:
        f.write(markdown_table(list(runs.values())))
    for path in plot_mechanism(list(runs.values()), os.path.dirname(a.out)):
        print(f"wrote {path}")
    print(open(md_path).read())
    return 0


if __name__ == "__main__":
    sys.exit(main())
