"""Energy rows of saved runs: ``table_from_checkpoints(checkpoint_dirs)`` (for experiment reports).

Each checkpoint is rebuilt from the ``config.json`` saved beside it, through the run loops' public
builders (``run.marl.build_marl``, ``run.po_rl.build``), loaded, and played greedily until
``decisions`` decisions; the networks are counted as ``energy.evaluate`` does for
``evaluate=True energy=True``. This module is the one part of the package above ``run`` (it
builds runs); nothing in ``run`` imports it.

A row per checkpoint and network (MARL: ``agent``; PO control: ``actor + critic``, the paper's
PO-Ctrl column, and ``actor``), flat so a report can group rows by ``(env, agent, network,
convention)`` and give the mean and spread over seeds (``aggregate``). ``break_even`` pairs a GRSN
with a GRU/rnn row of the same env, seed and network and gives the firing rate at which the GRSN
would use as much energy, compute-only and under each memory model (``energy.memory``).
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence

from energy.counting import OpsSummary, check_convention
from energy.evaluate import ENERGY_DECISIONS, collect_po_episodes, marl_energy, po_energy
from energy.memory import MEMORY_MODELS, break_even_summary, memory_aware_pj

ROW_NUMBERS = ("mlp_k", "rnn_k", "snn_k", "mixer_k", "energy_kpj", "energy_mem_kpj", "firing_rate",
               "mac_ops", "ac_ops", "weight_reads")


def _args_for(step_dir: str, convention: str, device: str, overrides: Dict[str, Any]) -> Any:
    """The run's saved config as ``args``, set to evaluate ``step_dir`` on ``device``."""
    from types import SimpleNamespace

    from utils.checkpoint import resume_config, saved_config
    from utils.config import build_config

    saved = saved_config(step_dir)
    if saved is None or "config_name" not in saved or "env_config_name" not in saved:
        raise FileNotFoundError(f"table_from_checkpoints: {step_dir} has no usable config.json; it was saved by "
                                f"an older version. Evaluate it with src/main.py ... evaluate=True energy=True instead.")
    # today's defaults for keys added since the run was saved; the run's own values for the rest
    config, _ = resume_config(build_config(str(saved["config_name"]), str(saved["env_config_name"])), [], saved)
    config.update({"checkpoint_path": step_dir, "load_step": 0, "evaluate": True, "energy": True,
                   "energy_convention": convention, "device": device, "save_model": False,
                   "use_tensorboard": False, "mongo_url": None})
    config.update(overrides)
    args = SimpleNamespace(**config)
    args.unique_token = "energy_table"
    return args


def _marl(args: Any, step_dir: str, decisions: int) -> Dict[str, Any]:
    from run.marl import build_marl
    from utils.logging import Logger

    runner, _, learner = build_marl(args, Logger())
    try:
        learner.load(step_dir)
        return marl_energy(args, runner, learner, decisions)
    finally:
        runner.close()


def _po(args: Any, step_dir: str, decisions: int) -> Dict[str, Any]:
    import torch

    from run.po_rl import EpisodeRunner, build, make_env
    from utils.checkpoint import load_checkpoint

    device = torch.device(str(args.device))
    env = make_env(args, int(args.seed) + 100_000)
    actor, critic, learner = build(args, env, device)
    load_checkpoint(step_dir, {"actor": actor, "critic": critic}, map_location=device, required=("actor",))
    episodes = collect_po_episodes(EpisodeRunner(env, actor, learner, device), decisions)
    return po_energy(args, actor, episodes, critic)


def _row(base: Dict[str, Any], network: str, ops: Dict[str, Any], mixer: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    row = dict(base, network=network)
    for key in ROW_NUMBERS:
        row[key] = ops.get(key)
    row["mixer_k"] = mixer["mac_ops"] / 1e3 if mixer is not None else None
    row["ops"] = ops   # OpsSummary.as_dict() plus memory: for break_even and the record
    return row


def table_from_checkpoints(checkpoint_dirs: Sequence[str], decisions: int = ENERGY_DECISIONS,
                           convention: str = "ours", device: str = "cpu",
                           overrides: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Energy rows of every checkpoint in ``checkpoint_dirs`` (a run's model folder, whose latest
    step is taken, or one step folder).

    Returns ``{"rows": [...], "break_even": [...], "convention": ..., "decisions": ...}``. A row:
    ``checkpoint``, ``step_dir``, ``t_env``, ``run`` (marl | po_rl), ``env``, ``agent``, ``seed``,
    ``network`` (agent | actor + critic | actor), ``convention``, ``decisions`` (counted),
    ``mlp_k``, ``rnn_k``, ``snn_k`` (K-ops per decision), ``mixer_k`` (QMIX mixer K-MAC per env step
    or None), ``energy_kpj`` (compute-only) and ``energy_mem_kpj`` (+ memory, default memory
    model), ``firing_rate``, ``mac_ops``, ``ac_ops``, ``weight_reads`` and ``ops`` (the full
    counts, ``OpsSummary.as_dict()`` with ``memory``). ``overrides``: config keys to set on every
    run (e.g. ``{"env_args": {...}}``). A td3_mujoco (PopSAN) checkpoint is an error: its energy
    comes from ``evaluate=True energy=True``.
    """
    from utils.checkpoint import find_checkpoint

    check_convention(convention)
    if isinstance(checkpoint_dirs, str):
        raise TypeError("table_from_checkpoints: pass a list of checkpoint folders, not one string")
    rows: List[Dict[str, Any]] = []
    for path in checkpoint_dirs:
        step_dir, t_env = find_checkpoint(str(path), 0)
        args = _args_for(step_dir, convention, device, dict(overrides or {}))
        loop = str(getattr(args, "run", ""))
        base = {"checkpoint": str(path), "step_dir": step_dir, "t_env": int(t_env), "run": loop,
                "agent": str(args.agent), "seed": int(args.seed), "convention": convention}
        if loop == "marl":
            res = _marl(args, step_dir, decisions)
            base.update(env=res["env"], decisions=res["decisions"])
            rows.append(_row(base, "agent", res["agent"], res["mixer"]))
        elif loop == "po_rl":
            res = _po(args, step_dir, decisions)
            base.update(env=res["env"], decisions=res["decisions"])
            rows.append(_row(base, "actor + critic", res["actor_critic"], None))
            rows.append(_row(base, "actor", res["agent"], None))
        else:
            raise ValueError(f"table_from_checkpoints: {step_dir} is a '{loop}' run; only marl and po_rl "
                             f"checkpoints are rebuilt here (td3_mujoco: src/main.py ... evaluate=True energy=True)")
    return {"rows": rows, "break_even": break_even(rows), "convention": convention, "decisions": int(decisions)}


def break_even(rows: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """For each GRSN row with a GRU (po_rl ``gru``, MARL ``rnn``) row of the same env, seed, network
    and convention: the break-even firing rates (``energy.memory.break_even_summary``) and both
    energies. Sorted by env, network, seed."""
    refs = {(r["env"], r["seed"], r["network"], r["convention"]): r for r in rows if r["agent"] in ("gru", "rnn")}
    out = []
    for r in rows:
        if r["agent"] != "grsn":
            continue
        ref = refs.get((r["env"], r["seed"], r["network"], r["convention"]))
        if ref is None:
            continue
        spk, gru = OpsSummary.from_dict(r["ops"]), OpsSummary.from_dict(ref["ops"])
        out.append({"env": r["env"], "seed": r["seed"], "network": r["network"], "convention": r["convention"],
                    "grsn_firing_rate": r["firing_rate"], "break_even": break_even_summary(spk, gru),
                    "grsn_energy_pj": {"compute_only": spk.energy_pj,
                                       **{n: memory_aware_pj(spk, m) for n, m in MEMORY_MODELS.items()}},
                    "gru_energy_pj": {"compute_only": gru.energy_pj,
                                      **{n: memory_aware_pj(gru, m) for n, m in MEMORY_MODELS.items()}}})
    return sorted(out, key=lambda b: (b["env"], b["network"], b["seed"]))


def aggregate(rows: Sequence[Dict[str, Any]], keys: Sequence[str] = ("env", "agent", "network", "convention"),
              numbers: Sequence[str] = ROW_NUMBERS) -> List[Dict[str, Any]]:
    """Mean and population std over the rows (seeds) of each group: ``<number>_mean``,
    ``<number>_std`` and ``seeds`` (sorted), one dict per group in first-seen order."""
    groups: Dict[tuple, List[Dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r)
    out = []
    for key, members in groups.items():
        agg: Dict[str, Any] = dict(zip(keys, key))
        agg["seeds"] = sorted(m["seed"] for m in members)
        for n in numbers:
            vals = [float(m[n]) for m in members if m.get(n) is not None]
            mean = sum(vals) / len(vals) if vals else None
            agg[f"{n}_mean"] = mean
            agg[f"{n}_std"] = math.sqrt(sum((v - mean) ** 2 for v in vals) / len(vals)) if vals else None
        out.append(agg)
    return out
