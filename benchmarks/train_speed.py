"""Training speed of the MARL stack, side by side in one run (CPU).

(a) Learner update: milliseconds per ``QLearner.train()`` call (QMIX, double Q, TD(lambda),
    online + target unroll, backward, Adam step) on a batch of ``--batch-size`` episodes of
    ``--T`` transitions, for the ``rnn``, ``lif`` and ``grsn`` agents at the obs/state/action
    sizes of the real SMAX maps (``get_env_info`` of ``--maps``). Two paths per agent:
      * ``seq``:  ``mac_unroll=sequence`` (default): ``agent.forward_seq``, one fused call over
                  the sequence (nn.GRU, or one matmul for all steps + the element-wise scan kernels);
      * ``step``: ``mac_unroll=stepwise``: the pymarl2-style loop of ``agent.forward`` over t.
(b) Runner throughput on ``--runner-map``: environment steps per second of ``BatchRunner.run``
    with a real controller acting (``rnn`` agent, test_mode, fresh weights), against raw SMAX
    stepping (uniform random valid actions, all envs stepped every call) of a batch of the same
    size, for each of ``--runner-envs``.

All learners of a map (every agent and path, plus ``<agent>_notap`` = ``tap=False`` for
``--notap-agents``) are timed in turn within each repeat (order reversed every other repeat), and
ratios such as GRSN / GRU and TAP / no-TAP are medians of the per-repeat ratios.

Timings are medians over ``--repeats`` after ``--warmup`` untimed calls. Writes
``benchmarks/results/train_speed.json`` and ``train_speed.md`` and prints the tables.

    python benchmarks/train_speed.py                      # 3m and 8m, 8 and 64 envs (~3-4 min, 2 cores)
    python benchmarks/train_speed.py --maps 3m --repeats 3 --runner-envs 8 --notap-agents grsn
    python benchmarks/train_speed.py --device cuda        # GPU: Triton scans vs loops vs cuDNN GRU
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from types import SimpleNamespace
from typing import Any, Callable, Dict, List, Optional, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "src"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from components.episode_buffer import EpisodeBatch  # noqa: E402
from controllers.basic_controller import BasicMAC  # noqa: E402
from learners.q_learner import QLearner  # noqa: E402
from runners.batch_runner import BatchRunner  # noqa: E402
from utils.config import build_config  # noqa: E402
from report import write_report  # noqa: E402  (benchmarks/report.py)
from fake_batch import fake_batch  # noqa: E402  (benchmarks/fake_batch.py)

NOISE_NOTE = ("CPU only, on a small shared machine ({cores} cores visible, other jobs running): "
              "absolute times are noisy; medians of {repeats} repeats, compare ratios within this run.")


# unroll paths compared (the ``mac_unroll`` config key of BasicMAC)
PATHS: Dict[str, str] = {"seq": "sequence", "step": "stepwise"}


class NullLogger:
    """Swallows stats (the benchmark times the work, not the logging)."""

    def log_stat(self, key: str, value: float, t: int) -> None:
        pass


def base_args(seed: int, env_args: Dict[str, Any]) -> SimpleNamespace:
    """The real merged config (default <- smax <- qmix) on CPU, no logging."""
    cfg = build_config("qmix", "smax")
    cfg.update(seed=seed, device="cpu", learner_log_interval=10 ** 12, runner_log_interval=10 ** 12)
    cfg["env_args"].update(env_args)
    return SimpleNamespace(**cfg)


def timed(fn: Callable[[], Any], warmup: int, repeats: int) -> List[float]:
    """Seconds of each of ``repeats`` calls of ``fn`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def learner_variants(agents: List[str], notap: List[str]) -> Dict[str, Tuple[str, Dict[str, Any]]]:
    """label -> (agent, extra config): each agent as configured, plus ``<agent>_notap`` (``tap=False``)
    for each spiking agent in ``notap``."""
    out: Dict[str, Tuple[str, Dict[str, Any]]] = {agent: (agent, {}) for agent in agents}
    for agent in notap:
        out[f"{agent}_notap"] = (agent, {"tap": False})
    return out


def bench_learners(info: Dict[str, Any], variants: Dict[str, Tuple[str, Dict[str, Any]]], batch: EpisodeBatch,
                   seed: int, warmup: int, repeats: int) -> Dict[str, Dict[str, Any]]:
    """ms per ``QLearner.train`` for every (variant, unroll path of PATHS), same initial weights per agent.

    All learners are timed in turn within every repeat, the order reversed every other repeat
    (A, B, C, C, B, A, ...), so drifting machine load hits all alike; ratios between variants are
    then taken per repeat (``ratio_to``) and their median reported."""
    learners: Dict[Tuple[str, str], QLearner] = {}
    for label, (agent, extra) in variants.items():
        for path, mode in PATHS.items():
            args = base_args(seed, {})
            args.agent, args.mac_unroll = agent, mode
            for key, value in extra.items():
                setattr(args, key, value)
            args.n_agents, args.n_actions = info["n_agents"], info["n_actions"]
            args.state_shape, args.obs_shape = info["state_shape"], info["obs_shape"]
            args.episode_limit = info["episode_limit"]
            torch.manual_seed(seed)
            learners[(label, path)] = QLearner(BasicMAC(info, args), info, args, NullLogger())
    keys = list(learners)
    for _ in range(warmup):
        for key in keys:
            learners[key].train(batch, t_env=0, episode=0)
    times: Dict[Tuple[str, str], List[float]] = {key: [] for key in keys}
    for r in range(repeats):
        for key in (keys if r % 2 == 0 else keys[::-1]):
            t0 = time.perf_counter()
            learners[key].train(batch, t_env=0, episode=0)
            times[key].append(time.perf_counter() - t0)
    out: Dict[str, Dict[str, Any]] = {label: {} for label in variants}
    for (label, path), t in times.items():
        out[label][path] = {"ms_median": 1e3 * statistics.median(t), "ms_min": 1e3 * min(t),
                            "ms_all": [1e3 * x for x in t]}
    return out


def ratio_to(rows: Dict[str, Dict[str, Any]], a: Tuple[str, str], b: Tuple[str, str]) -> float:
    """Median over repeats of (time of ``a`` / time of ``b``), each ``(label, path)`` timed in the same repeat."""
    ta, tb = rows[a[0]][a[1]]["ms_all"], rows[b[0]][b[1]]["ms_all"]
    return statistics.median(x / y for x, y in zip(ta, tb))


def firing_rate(mac: BasicMAC, batch: EpisodeBatch) -> Optional[float]:
    """Mean firing rate of a spiking agent's layer over ``mac.unroll(batch)`` (None for rnn)."""
    from energy.recording import SpikeRecorder

    if not hasattr(mac.agent, "spiking"):
        return None
    with torch.no_grad(), SpikeRecorder(mac.agent, membrane_samples=0) as rec:
        mac.unroll(batch)
    return float(rec.stats()["spiking"]["firing_rate"])


def unroll_agreement(info: Dict[str, Any], agent: str, batch: EpisodeBatch, seed: int,
                     extra: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Check that the ``seq`` and ``step`` paths compute the same Q on 8 episodes (same weights).

    Fresh spiking agents do not fire on these inputs (Q is then the decoder bias on both paths),
    so the check also runs with all weights x3, where they fire."""
    args = base_args(seed, {})
    args.agent, args.n_actions = agent, info["n_actions"]
    for key, value in (extra or {}).items():
        setattr(args, key, value)
    torch.manual_seed(seed)
    seq = BasicMAC(info, args)
    step_args = SimpleNamespace(**vars(args))
    step_args.mac_unroll = "stepwise"
    others = [BasicMAC(info, step_args)]
    small = batch.map(lambda v: v[:8])
    out: Dict[str, Any] = {"firing_rate": firing_rate(seq, small)}
    for tag, scale in (("fresh", 1.0), ("x3", 3.0)):
        with torch.no_grad():
            if scale != 1.0:
                for p in seq.agent.parameters():
                    p.mul_(scale)
            q = seq.unroll(small)
            diffs = []
            for other in others:
                other.load_state(seq)
                diffs.append(float((q - other.unroll(small)).abs().max()))
            out[f"max_abs_dq_{tag}"] = max(diffs)
    out["firing_rate_x3"] = firing_rate(seq, small)
    return out


def random_valid(rng: np.random.Generator, avail: np.ndarray) -> np.ndarray:
    return (rng.random(avail.shape) * avail).argmax(-1)


def bench_runner(map_name: str, n_envs: int, seed: int, warmup: int, repeats: int,
                 env_args: Dict[str, Any]) -> Dict[str, Any]:
    """Env steps/s of BatchRunner (rnn MAC, test_mode) vs raw stepping of the same SMAX batch."""
    args = base_args(seed, dict(env_args, map_name=map_name))
    args.agent = "rnn"
    t0 = time.perf_counter()
    runner = BatchRunner(args, NullLogger(), n_envs=n_envs)
    build_s = time.perf_counter() - t0
    info = runner.env_info
    args.n_agents, args.n_actions = info["n_agents"], info["n_actions"]
    torch.manual_seed(seed)
    runner.setup(BasicMAC(info, args))

    env = runner.env  # the same compiled batch, stepped directly
    limit = runner.episode_limit
    rng = np.random.default_rng(seed)
    counts: List[Dict[str, int]] = []

    def run_once() -> None:
        batch = runner.run(test_mode=True)
        counts.append({"filled": int(batch.filled.sum()), "slots": batch.max_t * n_envs})

    def raw_once() -> None:
        out = env.reset()
        for _ in range(limit):
            out, _, _, _ = env.step(random_valid(rng, out["avail_actions"]))

    # runner and raw stepping take turns within every repeat (drifting load hits both alike)
    for _ in range(warmup):
        run_once()
        raw_once()
    counts.clear()
    run_times, raw_times = [], []
    for _ in range(repeats):
        for fn, out in ((run_once, run_times), (raw_once, raw_times)):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
    filled_rate = [c["filled"] / t for c, t in zip(counts, run_times)]
    slot_rate = [c["slots"] / t for c, t in zip(counts, run_times)]
    raw_rate = [n_envs * limit / t for t in raw_times]
    runner.close()
    med = statistics.median
    return {
        "map": map_name, "n_envs": n_envs, "env_build_s": build_s,
        "runner_steps_per_s": med(filled_rate), "runner_slot_steps_per_s": med(slot_rate),
        "runner_mean_ep_length": float(np.mean([c["filled"] / n_envs for c in counts])),
        "runner_ms_per_run": 1e3 * med(run_times),
        "raw_steps_per_s": med(raw_rate), "raw_ms_per_batch_step": 1e3 * med(raw_times) / limit,
        "runner_over_raw": med(filled_rate) / med(raw_rate),
        "runner_slots_over_raw": med(slot_rate) / med(raw_rate),
    }


def env_infos(maps: List[str], env_args: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
    """get_env_info of a 1-env SMAX batch of each map (compiles each map once)."""
    from envs.smax import make_smax_batch

    out = {}
    for m in maps:
        env = make_smax_batch(1, seed=0, map_name=m, **env_args)
        out[m] = env.get_env_info()
        env.close()
    return out


def _rate(r: Optional[float]) -> str:
    return "-" if r is None else f"{r:.3f}"


def markdown(res: Dict[str, Any]) -> str:
    meta = res["meta"]
    lines = [f"# Training speed ({meta['date']})", "",
             f"_{meta['note']}_", "",
             f"torch {meta['torch']} with {meta['torch_threads']} thread(s), jax {meta['jax']}, "
             f"{meta['cpu_count']} CPU cores visible, load average at start/end {meta['loadavg_start']} / "
             f"{meta['loadavg_end']}; total wall time {meta['wall_s']:.0f} s.", "",
             f"## (a) Learner update: ms per `QLearner.train()` (QMIX), batch {meta['batch_size']} episodes "
             f"x T = {meta['T']} transitions, hidden 64", "",
             "seq = `mac_unroll=sequence` (`agent.forward_seq`, the default); step = `mac_unroll=stepwise`, "
             "a loop of `agent.forward` over t (pymarl2 style). Median (min) of the repeats. Spiking agents are timed with fresh weights "
             "(firing rate shown; the kernels' cost does not depend on it); max|dQ| = largest Q difference of "
             "the two paths with all weights x3 (where the spiking agents fire at the rate in brackets).", "",
             "| map | agents x obs / state / actions | agent | seq ms | step ms | step / seq | "
             "seq / rnn seq | firing rate | max abs dQ (x3 rate) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for m, block in res["learner"].items():
        info = block["env_info"]
        shape = f"{info['n_agents']} x {info['obs_shape']} / {info['state_shape']} / {info['n_actions']}"
        for agent, row in block["agents"].items():
            cells = " | ".join(f"{row[k]['ms_median']:.1f} ({row[k]['ms_min']:.1f})" for k in PATHS)
            lines.append(f"| {m} | {shape} | {agent} | {cells} | {row['step_over_seq']:.2f} | "
                         f"{row['seq_over_rnn_seq']:.2f} | {_rate(row['firing_rate'])} | "
                         f"{row['max_abs_dq_x3']:.1e} ({_rate(row['firing_rate_x3'])}) |")
    lines += ["", "Ratios of update times, each the median over repeats of the ratio within a repeat "
              "(all variants timed in turn in every repeat, the order reversed every other repeat):", ""]
    for m, b in res["learner"].items():
        r = b["ratios"]
        parts = []
        if "grsn_over_rnn_seq" in r:
            parts.append(f"GRSN / GRU: seq {r['grsn_over_rnn_seq']:.2f}, step {r['grsn_over_rnn_step']:.2f}, "
                         f"GRSN seq / GRU step {r['grsn_seq_over_rnn_step']:.2f}")
        parts += [f"{k.split('_')[0].upper()} TAP / no-TAP (seq) {v:.2f}" for k, v in r.items()
                  if k.endswith("_tap_over_notap_seq")]
        lines.append(f"- {m}: " + "; ".join(parts))
    lines.append("")
    lines += [f"## (b) Runner throughput on {meta['runner_map']}: env steps / s", "",
              "runner = `BatchRunner.run(test_mode=True)` with a fresh `rnn` MAC (counts filled transitions; "
              "slots = loop steps x envs, incl. finished envs waiting for the batch); raw = `env.step` with "
              "random valid actions on all envs, episode_limit steps per reset. Medians of "
              f"{meta['runner_repeats']} repeats, runner and raw taking turns. The fresh greedy policy ends its "
              "battles early (mean ep length), so the runner also pays one reset per short episode.", "",
              "| envs | runner steps/s | runner slots/s | mean ep length | raw SMAX steps/s | runner / raw | "
              "slots / raw | ms per raw batch step |",
              "|---|---|---|---|---|---|---|---|"]
    for r in res["runner"]:
        lines.append(f"| {r['n_envs']} | {r['runner_steps_per_s']:.0f} | {r['runner_slot_steps_per_s']:.0f} | "
                     f"{r['runner_mean_ep_length']:.1f} | {r['raw_steps_per_s']:.0f} | {r['runner_over_raw']:.2f} | "
                     f"{r['runner_slots_over_raw']:.2f} | {r['raw_ms_per_batch_step']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--maps", default="3m,8m", help="SMAX maps whose shapes the learner benchmark uses")
    p.add_argument("--agents", default="rnn,lif,grsn")
    p.add_argument("--T", type=int, default=60, help="transitions per episode in the learner batch "
                   "(60 = pymarl2's 3m learner shape, DESIGN sec 11; SMAX's episode_limit is 100)")
    p.add_argument("--batch-size", type=int, default=128, help="episodes per learner batch")
    p.add_argument("--notap-agents", default="lif,grsn",
                   help="spiking agents also timed with tap=False (label <agent>_notap; TAP / no-TAP ratio)")
    p.add_argument("--runner-map", default="3m")
    p.add_argument("--runner-envs", default="8,64", help="batch sizes of the runner benchmark")
    p.add_argument("--repeats", type=int, default=7, help="timed repeats (median reported)")
    p.add_argument("--runner-repeats", type=int, default=15, help="timed runner/raw repeats (median reported)")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls before timing")
    p.add_argument("--torch-threads", type=int, default=1, help="torch.set_num_threads (0 = torch default)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--jax-cache-dir", default=os.path.join(ROOT, "results", "jax_cache"),
                   help="persistent XLA compile cache ('' = off)")
    p.add_argument("--out-dir", default=os.path.join(ROOT, "benchmarks", "results"))
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="cuda: learner update and scan kernels on the GPU, Triton vs torch loops vs "
                   "cuDNN GRU (benchmarks/train_speed_cuda.py; writes train_speed_gpu.json)")
    p.add_argument("--env-info-from", default=os.path.join(ROOT, "benchmarks", "results", "train_speed.json"),
                   help="--device cuda without jaxmarl: map shapes from this train_speed.json")
    p.add_argument("--learner-packing", default="padded,packed",
                   help="--device cuda: learner_packing values timed (padded: rnn on cuDNN GRU)")
    a = p.parse_args(argv)
    if a.device == "cuda":
        from train_speed_cuda import main_cuda
        return main_cuda(a, base_args, fake_batch, NullLogger)

    if a.torch_threads > 0:
        torch.set_num_threads(a.torch_threads)
    start = time.perf_counter()
    load_start = [round(x, 2) for x in os.getloadavg()]
    maps = [m for m in a.maps.split(",") if m]
    agents = [x for x in a.agents.split(",") if x]
    notap = [x for x in a.notap_agents.split(",") if x]
    env_args = {"jax_cache_dir": a.jax_cache_dir}
    cores = os.cpu_count()
    import jax

    print(NOISE_NOTE.format(cores=cores, repeats=a.repeats), flush=True)
    print(f"torch threads: {torch.get_num_threads()}, learner batch {a.batch_size} x T={a.T}", flush=True)

    infos = env_infos(maps, env_args)
    learner: Dict[str, Any] = {}
    for m in maps:
        info = infos[m]
        batch = fake_batch(info, a.batch_size, a.T, a.seed)
        rows: Dict[str, Any] = bench_learners(info, learner_variants(agents, notap), batch, a.seed, a.warmup,
                                              a.repeats)
        variants = learner_variants(agents, notap)
        for label, row in rows.items():
            agent, extra = variants[label]
            row["step_over_seq"] = ratio_to(rows, (label, "step"), (label, "seq"))
            row["seq_over_rnn_seq"] = ratio_to(rows, (label, "seq"), ("rnn", "seq")) if "rnn" in rows else float("nan")
            row.update(unroll_agreement(info, agent, batch, a.seed, extra))
            print(f"[learner] {m} {label}: " + ", ".join(f"{k} {row[k]['ms_median']:.1f} ms" for k in PATHS),
                  flush=True)
        ratios = {}
        if "rnn" in rows and "grsn" in rows:
            ratios = {"grsn_over_rnn_seq": ratio_to(rows, ("grsn", "seq"), ("rnn", "seq")),
                      "grsn_over_rnn_step": ratio_to(rows, ("grsn", "step"), ("rnn", "step")),
                      "grsn_seq_over_rnn_step": ratio_to(rows, ("grsn", "seq"), ("rnn", "step"))}
        for agent in notap:
            if agent in rows:
                ratios[f"{agent}_tap_over_notap_seq"] = ratio_to(rows, (agent, "seq"), (f"{agent}_notap", "seq"))
        learner[m] = {"env_info": info, "agents": rows, "ratios": ratios}

    runner_rows = []
    for n in [int(x) for x in a.runner_envs.split(",") if x]:
        r = bench_runner(a.runner_map, n, a.seed, a.warmup, a.runner_repeats, env_args)
        print(f"[runner] {a.runner_map} x {n}: runner {r['runner_steps_per_s']:.0f} steps/s, raw "
              f"{r['raw_steps_per_s']:.0f} steps/s", flush=True)
        runner_rows.append(r)

    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M"), "note": NOISE_NOTE.format(cores=cores, repeats=a.repeats),
        "torch": torch.__version__, "jax": jax.__version__, "python": platform.python_version(),
        "torch_threads": torch.get_num_threads(), "cpu_count": cores, "device": "cpu",
        "batch_size": a.batch_size, "T": a.T, "repeats": a.repeats, "runner_repeats": a.runner_repeats,
        "warmup": a.warmup, "seed": a.seed,
        "runner_map": a.runner_map, "loadavg_start": load_start,
        "loadavg_end": [round(x, 2) for x in os.getloadavg()], "wall_s": time.perf_counter() - start,
    }
    res = {"meta": meta, "learner": learner, "runner": runner_rows}
    md = markdown(res)
    write_report(a.out_dir, "train_speed", res, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
