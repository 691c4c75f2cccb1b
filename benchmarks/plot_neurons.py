"""Firing-rate and membrane-potential distributions of a spiking agent (like GRSN paper Fig. 3).

Builds the agent from the same config as ``src/main.py`` (``--config``, ``--env-config`` and
``key=value`` overrides after ``--``), loads a checkpoint (or warns and uses a freshly
initialised network), plays greedy episodes until ``--decisions`` decisions, re-runs the agent
over them with a trace attached to every spiking layer and writes PNGs (matplotlib, Agg):

* ``<layer>_firing_rate.png``: histogram of each neuron's firing rate (spikes / neuron steps);
* ``<layer>_membrane.png``: density of the pre-reset membrane potential u_t of all neurons at
  each time step t (a ridge plot, time step on the y-axis, as in Fig. 3);
* ``<layer>_beta_delta.png``: the same for beta * delta_t, delta_t = d uhat_t / d u_t with the
  surrogate derivative (soft reset: 1 - theta H'(u - theta); hard: 1 - o_t - u_t H'(u - theta)),
  the factor whose size decides whether gradients flow through the membrane (paper Sec. 4.2);
* ``summary.json``: firing rates, per-step means/stds, source of the weights.

With TAP, time step t is the environment step of the episode; without TAP it is the neuron
step inside a decision window (``snn_T`` steps, state reset every decision).

Examples:
    python benchmarks/plot_neurons.py --config=qmix --env-config=smax \
        --checkpoint results/models/<token> -- agent=grsn env_args.map_name=3m
    python benchmarks/plot_neurons.py --config=sacd --env-config=pomdp \
        --checkpoint results/models/<token> -- agent=grsn env_args.key=CartPole-V
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from typing import Any, Dict, List, Optional

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "src"))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402


class TraceRecorder:
    """Keeps every spike/membrane tensor a spiking layer reports (its ``_record`` protocol).

    ``calls``: list of ``(spikes, membrane)`` CPU tensors ``[T, rows, hidden]`` (a ``step`` call
    gives ``T = 1``).
    """

    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.calls: List[tuple] = []

    def add(self, spikes: torch.Tensor, membrane: torch.Tensor, steps_per_decision: int) -> None:
        s, u = spikes.detach().cpu(), membrane.detach().cpu()
        if s.dim() == 2:
            s, u = s.unsqueeze(0), u.unsqueeze(0)
        self.calls.append((s, u))

    def __enter__(self) -> "TraceRecorder":
        self.layer._recorders.append(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.layer._recorders.remove(self)


def build_args(alg: str, env: str, overrides: List[str]):
    from main import args_from_config, finalize_config
    from utils.config import build_config

    return args_from_config(finalize_config(build_config(alg, env, overrides)))


def marl_traces(args: Any, checkpoint: str, load_step: int, decisions: int):
    """(agent, {layer name: TraceRecorder}) after re-running the agent over greedy episodes."""
    from modules.neurons.base import SpikingLayer
    from energy.evaluate import collect_marl_episodes
    from run.marl import build_marl
    from utils.checkpoint import find_checkpoint
    from utils.logging import Logger

    runner, mac, learner = build_marl(args, Logger())
    try:
        if checkpoint:
            step_dir, t_env = find_checkpoint(checkpoint, load_step)
            learner.load(step_dir)
            print(f"loaded {step_dir} (t_env {t_env})")
        batches = collect_marl_episodes(runner, decisions)
    finally:
        runner.close()
    agent = mac.agent
    layers = {n: m for n, m in agent.named_modules() if isinstance(m, SpikingLayer)}
    if not layers:
        raise SystemExit(f"agent '{args.agent}' has no spiking layer; use agent=lif or agent=grsn")
    traces = {n: TraceRecorder(m) for n, m in layers.items()}
    device = next(agent.parameters()).device
    with torch.no_grad():
        for batch in batches:
            onehot = batch.actions_onehot(mac.n_actions)
            last = torch.cat([torch.zeros_like(onehot[:, :1]), onehot], dim=1)[:, :-1]
            for b in range(batch.batch_size):
                n = int(batch.filled[b].sum().item())
                if n == 0:
                    continue
                x = mac.build_inputs(batch.obs[b:b + 1, :n].to(device), last[b:b + 1, :n].to(device))
                for tr in traces.values():
                    tr.__enter__()
                try:
                    agent.forward_seq(x.transpose(0, 1), agent.init_hidden(mac.n_agents))
                finally:
                    for tr in traces.values():
                        tr.__exit__()
    return traces


def po_traces(args: Any, checkpoint: str, load_step: int, decisions: int):
    import torch

    from modules.neurons.base import SpikingLayer
    from energy.evaluate import _po_sequences, collect_po_episodes
    from run.po_rl import EpisodeRunner, build, make_env
    from utils.checkpoint import find_checkpoint, load_checkpoint
    from utils.device import resolve_device

    device = torch.device(resolve_device(args.device))
    env = make_env(args, int(args.seed) + 100_000)
    actor, critic, learner = build(args, env, device)
    if checkpoint:
        step_dir, t_env = find_checkpoint(checkpoint, load_step)
        load_checkpoint(step_dir, {"actor": actor}, map_location=device, required=("actor",))
        print(f"loaded {step_dir} (t_env {t_env})")
    episodes = collect_po_episodes(EpisodeRunner(env, actor, learner, device), decisions)
    layers = {n: m for n, m in actor.named_modules() if isinstance(m, SpikingLayer)}
    if not layers:
        raise SystemExit(f"core '{args.agent}' has no spiking layer; use agent=lif or agent=grsn")
    traces = {n: TraceRecorder(m) for n, m in layers.items()}
    with torch.no_grad():
        for ep in episodes:
            obs, pa, pr, _ = _po_sequences(ep, actor.act_dim, actor.discrete, device)
            for tr in traces.values():
                tr.__enter__()
            try:
                actor(obs, pa, pr, actor.init_state(1))
            finally:
                for tr in traces.values():
                    tr.__exit__()
    return traces


def beta_delta(layer: Any, u: torch.Tensor, o: torch.Tensor) -> torch.Tensor:
    """``beta * d uhat_t / d u_t`` for membrane ``u`` and spikes ``o`` ``[..., hidden]``."""
    from modules.neurons.surrogate import surrogate_grad

    g = surrogate_grad(u - layer.threshold, layer.surrogate, layer.surrogate_alpha)
    delta = 1.0 - layer.threshold * g if layer.soft_reset else (1.0 - o) - u * g
    return layer.beta.detach().cpu() * delta


def per_step(calls: List[tuple], fn, max_steps: int) -> List[np.ndarray]:
    """Values of ``fn(spikes, membrane)`` grouped by time step (index 0 = first step)."""
    steps: List[List[np.ndarray]] = [[] for _ in range(max_steps)]
    for s, u in calls:
        vals = fn(s, u)
        for t in range(min(max_steps, vals.shape[0])):
            steps[t].append(vals[t].reshape(-1).numpy())
    return [np.concatenate(v) if v else np.empty(0) for v in steps]


def ridge_plot(values: List[np.ndarray], title: str, xlabel: str, path: str) -> None:
    """One density curve per time step, offset upwards (time step on the y-axis)."""
    present = [v for v in values if v.size]
    if not present:
        return
    allv = np.concatenate(present)
    lo, hi = np.percentile(allv, 0.5), np.percentile(allv, 99.5)
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    bins = np.linspace(lo, hi, 121)
    centers = 0.5 * (bins[1:] + bins[:-1])
    kernel = np.exp(-0.5 * (np.arange(-4, 5) / 1.5) ** 2)
    kernel /= kernel.sum()
    dens = []
    for v in values:
        if not v.size:
            dens.append(None)
            continue
        v = v[(v >= lo) & (v <= hi)]
        if not v.size:
            dens.append(None)
            continue
        h, _ = np.histogram(v, bins=bins, density=True)
        dens.append(np.convolve(h, kernel, mode="same"))
    peak = max(d.max() for d in dens if d is not None) or 1.0
    fig, ax = plt.subplots(figsize=(6, 0.35 * len(values) + 2))
    cmap = plt.get_cmap("viridis")
    for t in reversed(range(len(values))):
        d = dens[t]
        if d is None:
            continue
        y = t + 1 + 1.8 * d / peak
        ax.fill_between(centers, t + 1, y, color=cmap(t / max(len(values) - 1, 1)), alpha=0.8, lw=0)
        ax.plot(centers, y, color="k", lw=0.5)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("time step")
    ax.set_title(title, fontsize=9)
    ax.set_ylim(0.5, len(values) + 2.5)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="qmix")
    p.add_argument("--env-config", default="smax")
    p.add_argument("--checkpoint", default="", help="model dir (results/models/<token>) or a step folder")
    p.add_argument("--load-step", type=int, default=0)
    p.add_argument("--decisions", type=int, default=1024, help="decisions to collect (greedy episodes)")
    p.add_argument("--max-steps", type=int, default=16, help="time steps shown in the ridge plots")
    p.add_argument("--out", default=None, help="output folder (default benchmarks/results/neurons_<run>)")
    p.add_argument("overrides", nargs="*", help="config overrides key=value (after --)")
    a = p.parse_args(argv)

    args = build_args(a.config, a.env_config, a.overrides)
    from utils.seeding import set_seed
    set_seed(int(args.seed))
    if args.checkpoint_path and not a.checkpoint:
        a.checkpoint = args.checkpoint_path
    source = f"checkpoint {a.checkpoint}" if a.checkpoint else "freshly initialised network"
    if not a.checkpoint:
        warnings.warn("plot_neurons: no --checkpoint given: plotting a freshly initialised network", stacklevel=1)
        print("WARNING: no --checkpoint: plotting a freshly initialised network")
    task = args.env_args.get("map_name") or args.env_args.get("key") or args.env
    out = a.out or os.path.join(ROOT, "benchmarks", "results",
                                f"neurons_{args.env}_{task}_{args.agent}{'' if args.tap else '_notap'}")
    os.makedirs(out, exist_ok=True)
    if args.run == "marl":
        traces = marl_traces(args, a.checkpoint, a.load_step, a.decisions)
    elif args.run == "po_rl":
        traces = po_traces(args, a.checkpoint, a.load_step, a.decisions)
    else:
        raise SystemExit(f"plot_neurons supports the marl and po_rl loops, not run={args.run}")

    summary: Dict[str, Any] = {"source": source, "agent": args.agent, "tap": bool(args.tap),
                               "env": args.env, "task": task, "layers": {}}
    tag = f"{args.agent}{'' if args.tap else ' (no TAP)'} on {task}, {source if a.checkpoint else 'fresh network'}"
    for name, tr in traces.items():
        if not tr.calls:
            continue
        safe = name.replace(".", "_") or "layer"
        layer = tr.layer
        spikes = torch.cat([s.reshape(-1, s.shape[-1]) for s, _ in tr.calls], 0)  # [steps*rows, H]
        rates = spikes.mean(0).numpy()
        fig, ax = plt.subplots(figsize=(5, 3.2))
        ax.hist(rates, bins=np.linspace(0, 1, 41), color="tab:blue", edgecolor="k", lw=0.3)
        ax.set_xlabel("firing rate (spikes / neuron step)")
        ax.set_ylabel("neurons")
        ax.set_title(f"{name}: {tag}\nmean rate {rates.mean():.4f}, silent neurons {(rates == 0).sum()}/{rates.size}",
                     fontsize=8)
        fig.tight_layout()
        fig.savefig(os.path.join(out, f"{safe}_firing_rate.png"), dpi=130)
        plt.close(fig)

        k = max(1, min(a.max_steps, max(s.shape[0] for s, _ in tr.calls)))
        mem = per_step(tr.calls, lambda s, u: u, k)
        bd = per_step(tr.calls, lambda s, u: beta_delta(layer, u, s), k)
        ridge_plot(mem, f"membrane potential u_t, {name}: {tag}", "u_t", os.path.join(out, f"{safe}_membrane.png"))
        ridge_plot(bd, f"beta * delta_t, {name}: {tag}", "beta * delta_t", os.path.join(out, f"{safe}_beta_delta.png"))
        summary["layers"][name] = {
            "neurons": int(rates.size), "neuron_steps": int(spikes.numel()),
            "firing_rate_mean": float(rates.mean()), "silent_neurons": int((rates == 0).sum()),
            "firing_rate_per_neuron": [float(r) for r in rates],
            "membrane_mean_per_step": [float(v.mean()) if v.size else None for v in mem],
            "membrane_std_per_step": [float(v.std()) if v.size else None for v in mem],
            "beta_delta_max_abs_per_step": [float(np.abs(v).max()) if v.size else None for v in bd],
        }
        print(f"{name}: mean firing rate {rates.mean():.4f}, silent {(rates == 0).sum()}/{rates.size}, "
              f"|beta*delta| max {max(x for x in summary['layers'][name]['beta_delta_max_abs_per_step'] if x is not None):.3f}")
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print(f"wrote plots and summary.json to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
