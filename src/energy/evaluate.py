"""Energy estimation of trained (or freshly initialised) agents on real episodes (paper Sec. 5.4).

The run loops call one entry, ``report_energy(loop, args, logger, ...)`` (``evaluate=True
energy=True``); it dispatches to:

* MARL (``run.marl``): ``report_marl_energy`` plays greedy test episodes until at least
  ``ENERGY_DECISIONS`` (1024) agent decisions are collected, re-runs the agent over each episode
  (only its filled steps) with an ``energy.counting.OpCounter`` attached, counts the QMIX mixer
  per environment step, prints the Table-4 row, logs ``energy_*`` stats and stores the whole
  result under ``run.info["energy"]`` of the sacred run.
* Single-agent control (``run.po_rl``): ``collect_po_episodes`` + ``report_po_energy`` do the
  same for a PO actor (and optionally its critic, the paper's PO-Ctrl convention).
* PopSAN (``run.td3_mujoco``): ``report_popsan_energy`` on the evaluation states.

This module takes the run loops' objects (runner, learner, actor, ...) as arguments and imports
nothing of ``run`` or ``main``. Counting conventions: ``energy.counting`` (``energy_convention``
picks ours or the paper's); memory-aware energy: ``energy.memory``. All numbers are per decision
step: one agent's forward pass on one observation; the mixer column is per environment step.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from energy.counting import OpCounter, OpsSummary, check_convention
from energy.memory import DEFAULT_MEMORY_MODEL, memory_summary
from energy.table import TABLE4_MEMORY_COLUMNS, format_table, table4_row

ENERGY_DECISIONS = 1024  # agent decisions (sampled inputs) to average over, as in the paper


def convention_of(args: Any) -> str:
    """``args.energy_convention`` (default ``"ours"``), checked."""
    return check_convention(str(getattr(args, "energy_convention", "ours") or "ours"))


def with_memory(ops: OpsSummary) -> Dict[str, Any]:
    """``ops.as_dict()`` plus ``memory`` (``energy.memory.memory_summary``) and ``energy_mem_kpj``
    (compute + memory under the default memory model)."""
    out = ops.as_dict()
    out["memory"] = memory_summary(ops)
    out["energy_mem_kpj"] = out["memory"]["models"][DEFAULT_MEMORY_MODEL]["total_pj"] / 1e3
    return out


def _source(args: Any) -> str:
    path = str(getattr(args, "checkpoint_path", "") or "")
    return f"checkpoint {path}" if path else "freshly initialised network (no checkpoint_path)"


def _store(logger: Any, result: Dict[str, Any], t_env: int) -> None:
    """``energy_*`` stats via ``log_stat`` and the full dict in the sacred run's info."""
    ops = result["agent"]
    logger.log_stat("energy_mlp_kops", ops["mlp_k"], t_env)
    logger.log_stat("energy_rnn_kops", ops["rnn_k"], t_env)
    logger.log_stat("energy_snn_kops", ops["snn_k"], t_env)
    logger.log_stat("energy_kpj", ops["energy_kpj"], t_env)
    logger.log_stat("energy_mem_kpj", ops["energy_mem_kpj"], t_env)
    logger.log_stat("energy_firing_rate", ops["firing_rate"], t_env)
    if result.get("mixer") is not None:
        logger.log_stat("energy_mixer_kops", result["mixer"]["mac_ops"] / 1e3, t_env)
    run = getattr(logger, "_sacred_run", None)
    if run is not None:
        run.info["energy"] = result


# ---------------------------------------------------------------------------------------- MARL
def collect_marl_episodes(runner: Any, min_decisions: int = ENERGY_DECISIONS,
                          max_runs: int = 1000) -> List[Any]:
    """Greedy episodes (``runner.run(test_mode=True)``) until ``min_decisions`` agent decisions.

    Returns the EpisodeBatches. The runner's test statistics are left as they were, so the
    following test evaluation is not mixed with these episodes.
    """
    saved = {k: list(v) for k, v in runner.test_stats.items()}
    batches, decisions = [], 0
    n_agents = int(runner.env_info["n_agents"])
    try:
        for _ in range(max_runs):
            batch = runner.run(test_mode=True)
            batches.append(batch)
            decisions += int(batch.filled.sum().item()) * n_agents
            if decisions >= min_decisions:
                break
    finally:
        for k, v in runner.test_stats.items():
            v.clear()
            v.extend(saved.get(k, []))
    return batches


@torch.no_grad()
def count_marl_ops(mac: Any, batches: Sequence[Any], mixer: Optional[torch.nn.Module] = None,
                   membrane_samples: int = 0, convention: str = "ours"
                   ) -> Tuple[OpsSummary, Optional[OpsSummary], Dict[str, Any]]:
    """Run ``mac.agent`` over every episode of ``batches`` (filled steps only, fresh hidden state,
    inputs as ``mac.build_inputs`` makes them) and ``mixer`` over their states.

    Returns (agent ops per agent decision, mixer ops per env step or None, info with
    ``episodes``, ``env_steps``, ``decisions``, ``mean_ep_length``).
    """
    agent = mac.agent
    device = next(agent.parameters()).device
    n_agents, n_actions = mac.n_agents, mac.n_actions
    counter = OpCounter(agent, membrane_samples=membrane_samples, convention=convention)
    mix_counter = OpCounter(mixer, convention=convention) if mixer is not None else None  # VDN: 0 MAC
    lengths: List[int] = []
    for batch in batches:
        onehot = batch.actions_onehot(n_actions)
        last = torch.cat([torch.zeros_like(onehot[:, :1]), onehot], dim=1)[:, :-1]  # [B, T, agents, n]
        obs = batch.obs[:, :-1]
        for b in range(batch.batch_size):
            length = int(batch.filled[b].sum().item())
            if length == 0:
                continue
            lengths.append(length)
            inputs = mac.build_inputs(obs[b:b + 1, :length].to(device), last[b:b + 1, :length].to(device))
            inputs = inputs.transpose(0, 1)                                   # [L, 1, agents, e]
            with counter:
                agent.forward_seq(inputs, agent.init_hidden(n_agents))
            if mix_counter is not None:
                states = batch.state[b:b + 1, :length].to(device)              # [1, L, state]
                with mix_counter:
                    mixer(torch.zeros(1, length, n_agents, device=device), states)
    if not lengths:
        raise ValueError("energy: the collected episodes hold no filled step; nothing to count")
    steps = int(sum(lengths))
    agent_ops = counter.summary(decisions=steps * n_agents)
    mixer_ops = mix_counter.summary(decisions=steps) if mix_counter is not None else None
    info = {"episodes": len(lengths), "env_steps": steps, "decisions": steps * n_agents,
            "mean_ep_length": steps / len(lengths)}
    if membrane_samples and counter.recorder is not None:
        info["membrane"] = {n: counter.recorder.membrane(n) for n in counter.recorder.records}
    return agent_ops, mixer_ops, info


def marl_energy(args: Any, runner: Any, learner: Any, min_decisions: int = ENERGY_DECISIONS) -> Dict[str, Any]:
    """Collect episodes and count; the JSON-friendly result with the Table-4 row and text."""
    batches = collect_marl_episodes(runner, min_decisions)
    convention = convention_of(args)
    agent_ops, mixer_ops, info = count_marl_ops(runner.mac, batches, getattr(learner, "mixer", None),
                                                convention=convention)
    env_name = str(args.env_args.get("map_name", args.env)) if isinstance(getattr(args, "env_args", None), dict) else str(args.env)
    agent = str(args.agent)
    if not getattr(args, "tap", True) and agent != "rnn":
        agent = f"{args.agent} (no TAP, T={args.snn_T})"
    row = table4_row(env_name, agent, agent_ops, mixer_ops)
    table = format_table([row], TABLE4_MEMORY_COLUMNS)
    return {"source": _source(args), "checkpoint_loaded": bool(getattr(args, "checkpoint_path", "")),
            "env": env_name, "agent_name": str(args.agent), "convention": convention, "row": row, "table": table,
            "agent": with_memory(agent_ops), "mixer": with_memory(mixer_ops) if mixer_ops is not None else None,
            "team_step_kpj": agent_ops.energy_pj * runner.mac.n_agents / 1e3, **info}


def report_marl_energy(args: Any, runner: Any, learner: Any, logger: Any) -> Dict[str, Any]:
    """Count a MARL agent's operations on >= 1024 real decisions, print the Table-4 row, log
    ``energy_*`` stats and store the result as ``run.info["energy"]``. Returns the result."""
    result = marl_energy(args, runner, learner)
    if not result["checkpoint_loaded"]:
        logger.console.warning("energy: counting a freshly initialised network (no checkpoint_path); "
                               "its spike counts are not those of a trained agent")
    ops = result["agent"]
    lines = [f"energy estimate (GRSN paper Table 4 layout), {result['source']}",
             f"averaged over {result['decisions']} agent decisions from {result['episodes']} greedy "
             f"episodes (mean length {result['mean_ep_length']:.1f}); per agent decision, mixer per "
             f"env step; MAC 4.6 pJ, AC 0.9 pJ; memory: {DEFAULT_MEMORY_MODEL} (docs/energy.md)",
             result["table"],
             f"firing rate {ops['firing_rate']:.4f}; MAC {ops['mac_ops']:.0f}, AC {ops['ac_ops']:.1f} per "
             f"decision; all {runner.mac.n_agents} agents per env step: {result['team_step_kpj']:.2f} KpJ"]
    logger.console.info("\n".join(lines))
    _store(logger, result, int(getattr(runner, "t_env", 0)))
    return result


# ---------------------------------------------------------------------------------------- PO control
def collect_po_episodes(episode_runner: Any, min_decisions: int = ENERGY_DECISIONS,
                        mode: str = "greedy", max_episodes: int = 10_000) -> List[Dict[str, np.ndarray]]:
    """Episodes of ``episode_runner.run(mode)`` (``run.po_rl.EpisodeRunner``) until
    ``min_decisions`` steps; each a dict with ``obs [n+1, obs_dim]``, ``act``, ``rew [n]``."""
    episodes, steps = [], 0
    for _ in range(max_episodes):
        ep = episode_runner.run(mode)
        episodes.append(ep)
        steps += int(ep["rew"].shape[0])
        if steps >= min_decisions:
            break
    return episodes


def _po_sequences(ep: Dict[str, np.ndarray], act_dim: int, discrete: bool, device: torch.device):
    """``obs [n, 1, obs_dim]``, ``prev_act [n, 1, act_in]``, ``prev_rew [n, 1, 1]``, ``act [n, 1, act_dim]``."""
    obs = torch.as_tensor(np.asarray(ep["obs"], dtype=np.float32), device=device)
    n = int(np.asarray(ep["rew"]).reshape(-1).shape[0])
    obs = obs[:n]
    rew = torch.as_tensor(np.asarray(ep["rew"], dtype=np.float32).reshape(n, 1), device=device)
    if discrete:
        idx = torch.as_tensor(np.asarray(ep["act"]).reshape(n).astype(np.int64), device=device)
        act = torch.nn.functional.one_hot(idx, act_dim).float()
    else:
        act = torch.as_tensor(np.asarray(ep["act"], dtype=np.float32).reshape(n, act_dim), device=device)
    prev_act = torch.cat([torch.zeros_like(act[:1]), act[:-1]], 0)
    prev_rew = torch.cat([torch.zeros_like(rew[:1]), rew[:-1]], 0)
    return obs.unsqueeze(1), prev_act.unsqueeze(1), prev_rew.unsqueeze(1), act.unsqueeze(1)


@torch.no_grad()
def count_po_ops(actor: Any, episodes: Sequence[Dict[str, np.ndarray]], critic: Optional[Any] = None,
                 membrane_samples: int = 0, convention: str = "ours"
                 ) -> Tuple[OpsSummary, Optional[OpsSummary], Dict[str, Any]]:
    """Unroll ``actor`` (a ``POActor``) over each episode from a zero state; the critic (a
    ``POTwinCritic``, optional) too, on the actions taken. Returns (actor ops, critic ops or
    None, info) per decision step."""
    device = next(actor.parameters()).device
    a_counter = OpCounter(actor, membrane_samples=membrane_samples, convention=convention)
    c_counter = OpCounter(critic, convention=convention) if critic is not None else None
    steps = 0
    for ep in episodes:
        obs, prev_act, prev_rew, act = _po_sequences(ep, actor.act_dim, actor.discrete, device)
        if obs.shape[0] == 0:
            continue
        steps += obs.shape[0]
        with a_counter:
            actor(obs, prev_act, prev_rew, actor.init_state(1))
        if c_counter is not None:
            with c_counter:
                feat, _ = critic.features(obs, prev_act, prev_rew, critic.init_state(1))
                critic.q_values(feat, obs, None if critic.discrete else act)
    if steps == 0:
        raise ValueError("energy: the episodes hold no step; nothing to count")
    info = {"episodes": len(episodes), "decisions": steps, "mean_ep_length": steps / max(len(episodes), 1)}
    if membrane_samples and a_counter.recorder is not None:
        info["membrane"] = {n: a_counter.recorder.membrane(n) for n in a_counter.recorder.records}
    return (a_counter.summary(steps), c_counter.summary(steps) if c_counter is not None else None, info)


def po_energy(args: Any, actor: Any, episodes: Sequence[Dict[str, np.ndarray]],
              critic: Optional[Any] = None) -> Dict[str, Any]:
    """Count and build the JSON-friendly result (rows for the actor and, with a critic,
    actor + critic as the paper's PO-Ctrl column does)."""
    convention = convention_of(args)
    actor_ops, critic_ops, info = count_po_ops(actor, episodes, critic, convention=convention)
    env_name = str(args.env_args.get("key", args.env)) if isinstance(getattr(args, "env_args", None), dict) else str(args.env)
    agent = str(args.agent)
    rows = [table4_row(env_name, f"{agent} actor", actor_ops)]
    result: Dict[str, Any] = {"source": _source(args), "checkpoint_loaded": bool(getattr(args, "checkpoint_path", "")),
                              "env": env_name, "agent_name": agent, "convention": convention,
                              "agent": with_memory(actor_ops), **info}
    if critic_ops is not None:
        both = actor_ops + critic_ops
        rows.append(table4_row(env_name, f"{agent} actor+critic", both))
        result["critic"] = with_memory(critic_ops)
        result["actor_critic"] = with_memory(both)
    result["rows"] = rows
    result["table"] = format_table(rows, TABLE4_MEMORY_COLUMNS)
    return result


def report_po_energy(args: Any, actor: Any, episodes: Sequence[Dict[str, np.ndarray]], logger: Any,
                     critic: Optional[Any] = None, t_env: int = 0) -> Dict[str, Any]:
    """Energy of a single-agent PO actor (and critic) on ``episodes``; print, log, store.

    ``episodes``: dicts as ``run.po_rl.EpisodeRunner.run`` returns them (``obs [n+1, obs_dim]``,
    ``act [n, act_dim]`` or discrete ``[n]``, ``rew [n]``), together >= 1024 steps for the
    paper's average (``collect_po_episodes`` gets them). Stats ``energy_*`` are the actor's (the
    network deployed); the sacred info holds actor, critic and actor + critic.
    """
    result = po_energy(args, actor, episodes, critic)
    if not result["checkpoint_loaded"]:
        logger.console.warning("energy: counting a freshly initialised network (no checkpoint_path); "
                               "its spike counts are not those of a trained agent")
    if result["decisions"] < ENERGY_DECISIONS:
        logger.console.warning(f"energy: only {result['decisions']} decisions (< {ENERGY_DECISIONS}); "
                               f"pass more episodes for the paper's average")
    ops = result["agent"]
    logger.console.info("\n".join([
        f"energy estimate (GRSN paper Table 4 layout), {result['source']}",
        f"averaged over {result['decisions']} decisions from {result['episodes']} episodes; per "
        f"decision step; MAC 4.6 pJ, AC 0.9 pJ; memory: {DEFAULT_MEMORY_MODEL} (docs/energy.md)",
        result["table"],
        f"actor firing rate {ops['firing_rate']:.4f}"]))
    _store(logger, result, int(t_env))
    return result


# ---------------------------------------------------------------------------------------- PopSAN
@torch.no_grad()
def popsan_energy(actor: Any, obs: torch.Tensor, env_name: str = "mujoco", convention: str = "ours") -> Dict[str, Any]:
    """Ops per decision of a PopSAN ``SpikingActor`` on observations ``obs [N, obs_dim]`` (e.g.
    states from the replay): encoder fields and readout as MAC, every spiking layer's synapses
    as AC from the spike trains they read. Returns the ``OpsSummary.as_dict()`` with a row;
    ``firing_rate`` is the mean over the spiking layers' neurons and ``T`` steps (an ANN actor,
    which has no ``forward_with_rates``, is counted as all MAC with firing rate 0)."""
    counter = OpCounter(actor, convention=convention)
    with counter:
        actor(obs)
    ops = counter.summary(decisions=int(obs.shape[0]))
    out = with_memory(ops)
    if hasattr(actor, "forward_with_rates"):
        _, rates = actor.forward_with_rates(obs)
        out["firing_rate"] = float(torch.cat([r.flatten() for r in rates]).mean())
    out["row"] = table4_row(env_name, f"popsan-{getattr(actor, 'neuron_name', '?')}"
                            if hasattr(actor, "forward_with_rates") else "ann actor", ops)
    out["row"]["firing_rate"] = out["firing_rate"]
    out["table"] = format_table([out["row"]], TABLE4_MEMORY_COLUMNS)
    return out


def report_popsan_energy(args: Any, actor: Any, obs: np.ndarray, logger: Any, t_env: int = 0) -> Dict[str, Any]:
    """Energy of the td3_mujoco actor on the states ``obs [N, obs_dim]`` of its evaluation
    episodes (``evaluate=True energy=True``); print, log ``energy_*``, store in the sacred info."""
    if len(obs) == 0:
        raise ValueError("energy: the evaluation visited no state; nothing to count")
    device = next(actor.parameters()).device
    env_name = str(dict(getattr(args, "env_args", {}) or {}).get("key", "mujoco"))
    ops = popsan_energy(actor, torch.as_tensor(np.asarray(obs), dtype=torch.float32, device=device), env_name,
                        convention_of(args))
    result: Dict[str, Any] = {"source": _source(args), "checkpoint_loaded": bool(getattr(args, "checkpoint_path", "")),
                              "env": env_name, "agent": ops, "decisions": int(len(obs)), "table": ops["table"]}
    if not result["checkpoint_loaded"]:
        logger.console.warning("energy: counting a freshly initialised network (no checkpoint_path); "
                               "its spike counts are not those of a trained agent")
    if len(obs) < ENERGY_DECISIONS:
        logger.console.warning(f"energy: only {len(obs)} evaluation states (< {ENERGY_DECISIONS}); "
                               f"raise test_nepisode for the paper's average")
    logger.console.info("\n".join([
        f"energy estimate, {result['source']}", f"averaged over the {len(obs)} states of the evaluation "
        f"episodes; per decision; MAC 4.6 pJ, AC 0.9 pJ", ops["table"],
        f"actor firing rate {ops['firing_rate']:.4f}"]))
    _store(logger, result, int(t_env))
    return result


# ---------------------------------------------------------------------------------------- the one entry
def report_energy(loop: str, args: Any, logger: Any, t_env: int = 0, **parts: Any) -> Dict[str, Any]:
    """Count, print, log and store the energy of the networks a run loop evaluates.

    ``loop``: ``"marl"`` (``parts``: ``runner``, ``learner``), ``"po_rl"`` (``actor``,
    ``episode_runner``, optional ``critic``: episodes are collected here) or ``"td3_mujoco"``
    (``actor``, ``states [N, obs_dim]``). Returns the result dict of ``report_*_energy``.
    """
    need = {"marl": ("runner", "learner"), "po_rl": ("actor", "episode_runner"), "td3_mujoco": ("actor", "states")}
    if loop not in need:
        raise ValueError(f"report_energy: unknown run loop {loop!r}; use one of {', '.join(need)}")
    missing = [k for k in need[loop] if parts.get(k) is None]
    if missing:
        raise ValueError(f"report_energy({loop!r}): missing {', '.join(missing)}; pass them as keyword arguments")
    convention_of(args)  # a bad energy_convention fails before any episode is played
    if loop == "marl":
        return report_marl_energy(args, parts["runner"], parts["learner"], logger)
    if loop == "po_rl":
        episodes = collect_po_episodes(parts["episode_runner"])
        return report_po_energy(args, parts["actor"], episodes, logger, critic=parts.get("critic"), t_env=t_env)
    return report_popsan_energy(args, parts["actor"], parts["states"], logger, t_env)
