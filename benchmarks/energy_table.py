"""GRU vs GRSN energy (GRSN paper Table 4) on SMAX maps and PO-control tasks.

For every task, builds the GRU and the GRSN agent exactly as ``src/main.py`` would (fresh, or
from ``--ckpt TASK:AGENT=PATH``), plays greedy episodes until ``--decisions`` decisions and
counts operations with the ``energy`` package (conventions: docs/energy.md; ``--convention
paper`` counts as the GRSN paper's numbers imply). Writes ``<out>/<tag>.json`` and ``.md``
(default ``benchmarks/results/energy_run``) with the paper's layout, the GRSN/GRU energy ratio
compute-only and memory-aware (``energy.memory``), the paper's own ratio, and the firing rate at
which GRSN would break even with the GRU under each energy model. A record committed to git is
never overwritten unless ``--overwrite`` is given.

PO control counts actor + critic, which is the paper's PO-Ctrl convention (its RNN column,
136.70K, is exactly two GRUs of 48 -> 128: the actor's and the critic's); the actor alone (the
deployed network) is listed too. MARL counts one agent network per decision; the mixer column
is the QMIX mixer per environment step.

    python benchmarks/energy_table.py                       # fresh networks, 3m 8m Pendulum-P CartPole-V
    python benchmarks/energy_table.py --marl-maps --po-keys Pendulum-P --convention paper --tag energy_paper
    python benchmarks/energy_table.py --marl-maps 8m --po-keys Pendulum-P \
        --ckpt 8m:rnn=results/models/<tok> --ckpt 8m:grsn=results/models/<tok2>
    python benchmarks/energy_table.py --marl-maps MMM2 --po-keys --tag energy_mmm2   # SMAX MMM2 (Medivac)
    # PO rows from trained Table 1 actors saved under the folder naming below, seed 1:
    python benchmarks/energy_table.py --marl-maps --po-keys Pendulum-P Pendulum-V CartPole-P CartPole-V \
        --po-models results/po_table1/models --po-seed 1 --tag energy_po_trained

``--memory-from RECORD ...`` re-expresses committed records of trained networks (their ACs and
firing rates) with the memory-aware model: it rebuilds each network fresh (its structure gives the
MACs, which must equal the record's, and the memory traffic that does not depend on spikes) and
takes the spike-driven part from the record:

    python benchmarks/energy_table.py --memory-from benchmarks/results/energy_po_trained.json \
        benchmarks/results/grid_table2_energy*.json --tag energy_memory_trained

``--po-models DIR`` takes each PO task's GRU and GRSN checkpoint from the folders po_table1
writes, ``DIR/po_table1_<algo>_<task>_<agent>_seed<N>_t<T>_shortcut`` (the largest ``T``);
an explicit ``--ckpt`` wins. Trained spiking cores fire, so their SNN column can be set beside
the paper's (9.73 / 11.16 / 6.98 / 7.33 K on Pendulum-P / Pendulum-V / CartPole-P / CartPole-V).
"""
from __future__ import annotations

import argparse
import glob
import os
import re
import sys
import time
from typing import Any, Dict, List, Optional, Tuple
from report import write_report  # noqa: E402  (benchmarks/report.py)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "src"))

# The paper's Table 4: (MLP K, RNN-or-SNN K, energy KpJ) for GRU and GRSN, mixer K.
PAPER: Dict[str, Dict[str, Any]] = {
    "Pendulum-P": {"gru": (116.39, 136.70, 1164.22), "grsn": (108.19, 9.73, 506.44), "mixer": None},
    "Pendulum-V": {"gru": (116.24, 136.70, 1163.56), "grsn": (108.05, 11.16, 507.07), "mixer": None},
    "CartPole-P": {"gru": (116.74, 136.70, 1165.85), "grsn": (108.55, 6.98, 505.91), "mixer": None},
    "CartPole-V": {"gru": (116.74, 136.70, 1165.85), "grsn": (108.55, 7.33, 505.60), "mixer": None},
    "8m": {"gru": (7.57, 24.96, 149.62), "grsn": (14.98, 0.01, 68.90), "mixer": 51.20},
    "2s3z": {"gru": (6.99, 24.96, 146.97), "grsn": (22.85, 0.01, 105.11), "mixer": 35.75},
    "8m_vs_9m": {"gru": (8.02, 24.96, 151.69), "grsn": (15.36, 0.06, 70.71), "mixer": 53.31},
    "3s_vs_5z": {"gru": (4.81, 24.96, 136.95), "grsn": (12.42, 0.03, 57.15), "mixer": 21.60},
    "27m_vs_30m": {"gru": (24.74, 24.96, 228.62), "grsn": (30.72, 0.07, 141.38), "mixer": 283.11},
    "MMM2": {"gru": (14.35, 24.96, 180.84), "grsn": (29.76, 0.01, 136.90), "mixer": 84.93},
}

# SC2 SMAC shapes (pymarl agent input = obs + last action one-hot + agent id, n_actions, n_agents,
# state incl. last actions) for the structural rows. 8m: obs 80, 14 actions, state 96 + 72.
# MMM2 (unit_type_bits 3): obs 4 move + 12 x 8 enemy + 9 x 8 ally + 4 own = 176, 6 + 12 = 18
# actions, state 10 x 7 + 12 x 6 + 10 x 18 = 322 (they reproduce the paper's GRU MLP and mixer).
SMAC_SHAPES: Dict[str, Tuple[int, int, int, int]] = {"8m": (102, 14, 8, 168),
                                                    "MMM2": (176 + 18 + 10, 18, 10, 322)}

COLUMNS: List[Tuple[str, str]] = [
    ("task", "Environment"), ("network", "Network"), ("gru_mlp_k", "GRU MLP (K)"),
    ("gru_rnn_k", "GRU RNN (K)"), ("gru_energy_kpj", "GRU Energy (KpJ)"), ("grsn_mlp_k", "GRSN MLP (K)"),
    ("grsn_snn_k", "GRSN SNN (K)"), ("grsn_energy_kpj", "GRSN Energy (KpJ)"), ("mixer_k", "Mixer (K)"),
    ("ratio_pct", "GRSN/GRU (%)"), ("paper_ratio_pct", "paper GRSN/GRU (%)"), ("grsn_firing_rate", "GRSN firing rate"),
    ("gru_energy_mem_kpj", "GRU Energy + memory (KpJ)"), ("grsn_energy_mem_kpj", "GRSN Energy + memory (KpJ)"),
    ("ratio_mem_pct", "GRSN/GRU + memory (%)"), ("break_even_compute", "GRSN break-even rate, compute-only"),
    ("break_even_mem", "GRSN break-even rate, + memory"),
]


def build_args(alg: str, env: str, overrides: List[str]):
    from main import args_from_config, finalize_config
    from utils.config import build_config

    return args_from_config(finalize_config(build_config(alg, env, overrides)))


def marl_result(task: str, agent: str, ckpt: str, decisions: int, extra: List[str]) -> Dict[str, Any]:
    from energy.evaluate import marl_energy
    from run.marl import build_marl
    from utils.checkpoint import find_checkpoint
    from utils.logging import Logger
    from utils.seeding import set_seed

    over = [f"env_args.map_name={task}", f"agent={agent}", "device=cpu", *extra]
    if ckpt:
        over.append(f"checkpoint_path={ckpt}")
    args = build_args("qmix", "smax", over)
    set_seed(int(args.seed))
    runner, mac, learner = build_marl(args, Logger())
    try:
        if ckpt:
            learner.load(find_checkpoint(ckpt, 0)[0])
        return marl_energy(args, runner, learner, decisions)
    finally:
        runner.close()


def po_result(task: str, agent: str, ckpt: str, decisions: int, extra: List[str]) -> Dict[str, Any]:
    from energy.evaluate import collect_po_episodes, po_energy
    from run.po_rl import EpisodeRunner, build, make_env
    from utils.checkpoint import find_checkpoint, load_checkpoint
    from utils.seeding import set_seed

    alg = "sacd" if task.startswith("CartPole") else "td3"
    over = [f"env_args.key={task}", f"agent={agent}", "device=cpu", *extra]
    if ckpt:
        over.append(f"checkpoint_path={ckpt}")
    args = build_args(alg, "pomdp", over)
    set_seed(int(args.seed))
    device = "cpu"
    import torch
    env = make_env(args, int(args.seed) + 100_000)
    actor, critic, learner = build(args, env, torch.device(device))
    if ckpt:
        load_checkpoint(find_checkpoint(ckpt, 0)[0], {"actor": actor, "critic": critic},
                        map_location=device, required=("actor",))
    episodes = collect_po_episodes(EpisodeRunner(env, actor, learner, torch.device(device)), decisions)
    return po_energy(args, actor, episodes, critic)


def smac_structural(task: str, decisions: int, convention: str = "ours") -> Dict[str, Any]:
    """GRU and GRSN agents and the QMIX mixer with SC2 SMAC shapes of ``task`` (``SMAC_SHAPES``,
    e.g. 8m: agent input 80 obs + 14 last action + 8 id = 102, 14 actions, state 168) on random
    inputs: the MAC columns are structural, so this row checks the counting against the paper's."""
    from types import SimpleNamespace

    import torch
    from modules.agents import REGISTRY as AGENTS
    from modules.mixers.qmix import QMixer
    from energy.counting import OpCounter
    from energy.evaluate import with_memory

    torch.manual_seed(0)
    n_in, n_actions, n_agents, n_state = SMAC_SHAPES[task]
    args = SimpleNamespace(n_actions=n_actions, rnn_hidden_dim=64, snn_hidden_dim=64, mixing_embed_dim=32,
                           hypernet_layers=2, hypernet_embed=64)
    t, b = 32, max(1, decisions // (32 * n_agents))
    out: Dict[str, Any] = {}
    for name in ("rnn", "grsn"):
        agent = AGENTS[name](n_in, args)
        with torch.no_grad(), OpCounter(agent, convention=convention) as c:
            agent.forward_seq(torch.rand(t, b, n_agents, n_in), agent.init_hidden(b * n_agents))
        out[name] = with_memory(c.summary(t * b * n_agents))
    mixer = QMixer(n_agents, n_state, args)
    with torch.no_grad(), OpCounter(mixer, convention=convention) as c:
        mixer(torch.zeros(1, 4, n_agents), torch.rand(1, 4, n_state))
    out["mixer_k"] = c.summary(4).mac / 1e3
    return out


def po_table1_checkpoint(models_dir: str, task: str, agent: str, seed: int) -> str:
    """The model folder of a po_table1 run with the shortcut networks (largest budget), e.g.
    ``<models_dir>/po_table1_td3_Pendulum-P_grsn_seed1_t50000_shortcut``; a clear error if none."""
    algo = "sacd" if task.startswith("CartPole") else "td3"
    stem = f"po_table1_{algo}_{task}_{agent}_seed{int(seed)}_t"
    found = []
    for path in glob.glob(os.path.join(models_dir, glob.escape(stem) + "*_shortcut")):
        m = re.fullmatch(re.escape(stem) + r"(\d+)_shortcut", os.path.basename(path))
        if m and os.path.isdir(path):
            found.append((int(m.group(1)), path))
    if not found:
        raise FileNotFoundError(
            f"--po-models: no trained {agent} on {task} (seed {seed}) under {models_dir} (expected a folder "
            f"{stem}<T>_shortcut). Train it with: python src/experiment.py run table1 --point "
            f"{task}__{agent}__s{seed} and pass its model folder, --ckpt {task}:{agent}=PATH")
    return max(found)[1]


def ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return 100.0 * a / b if a is not None and b else None


def paper_ratio(task: str) -> Optional[float]:
    ref = PAPER.get(task)
    return ratio(ref["grsn"][2], ref["gru"][2]) if ref else None


def break_even(gru: Dict[str, Any], grsn: Dict[str, Any], memory: bool) -> Optional[float]:
    """``energy.memory.break_even_rate`` of the GRSN counts against the GRU counts (as_dict form),
    compute-only or under the default memory model."""
    from energy.counting import OpsSummary
    from energy.memory import break_even_rate, memory_model

    return break_even_rate(OpsSummary.from_dict(grsn), OpsSummary.from_dict(gru), memory_model() if memory else None)


def row_from(task: str, network: str, gru: Dict[str, Any], grsn: Dict[str, Any],
             mixer_k: Optional[float]) -> Dict[str, Any]:
    return {"task": task, "network": network, "gru_mlp_k": gru["mlp_k"], "gru_rnn_k": gru["rnn_k"],
            "gru_energy_kpj": gru["energy_kpj"], "grsn_mlp_k": grsn["mlp_k"], "grsn_snn_k": grsn["snn_k"],
            "grsn_energy_kpj": grsn["energy_kpj"], "mixer_k": mixer_k,
            "ratio_pct": ratio(grsn["energy_kpj"], gru["energy_kpj"]), "paper_ratio_pct": paper_ratio(task),
            "grsn_firing_rate": grsn["firing_rate"], "gru_energy_mem_kpj": gru["energy_mem_kpj"],
            "grsn_energy_mem_kpj": grsn["energy_mem_kpj"],
            "ratio_mem_pct": ratio(grsn["energy_mem_kpj"], gru["energy_mem_kpj"]),
            "break_even_compute": break_even(gru, grsn, memory=False),
            "break_even_mem": break_even(gru, grsn, memory=True), "convention": grsn.get("convention", "ours")}


def paper_row(task: str) -> Optional[Dict[str, Any]]:
    ref = PAPER.get(task)
    if not ref:
        return None
    g, s = ref["gru"], ref["grsn"]
    return {"task": task, "network": "paper (SMAC / Ni et al. nets)", "gru_mlp_k": g[0], "gru_rnn_k": g[1],
            "gru_energy_kpj": g[2], "grsn_mlp_k": s[0], "grsn_snn_k": s[1], "grsn_energy_kpj": s[2],
            "mixer_k": ref["mixer"], "ratio_pct": ratio(s[2], g[2]), "paper_ratio_pct": ratio(s[2], g[2])}


def committed(path: str) -> bool:
    """Whether ``path`` is a file git tracks in this repository (an existing file counts as
    committed when git cannot tell)."""
    import subprocess

    if not os.path.exists(path):
        return False
    try:
        res = subprocess.run(["git", "ls-files", "--error-unmatch", os.path.abspath(path)], cwd=ROOT,
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return True
    return res.returncode == 0


def check_output(out: str, tag: str, overwrite: bool) -> None:
    """A clear error instead of overwriting a committed record (``--overwrite`` allows it)."""
    for ext in ("json", "md"):
        path = os.path.join(out, f"{tag}.{ext}")
        if committed(path) and not overwrite:
            raise SystemExit(f"energy_table: {path} is a committed result; pass another --tag (or --out), or "
                             f"--overwrite to replace it")


def notes(rows: List[Dict[str, Any]], detail: Dict[str, Any], structural: Dict[str, Any],
          convention: str) -> List[str]:
    """The remarks under the table, each only where it applies, with numbers from this run."""
    from energy.memory import DEFAULT_MEMORY_MODEL, memory_model

    out: List[str] = []
    fresh = sorted(f"{t}:{ag}" for t, d in detail.items() for ag, r in d.items() if not r["checkpoint_loaded"])
    if fresh:
        out += [f"Freshly initialised networks (no checkpoint): {', '.join(fresh)}. Untrained spiking layers "
                "barely fire, so their SNN column is near zero; the MAC columns are structural and do not "
                "depend on training.", ""]
    for key, st in structural.items():
        task = key.split("_smac_shapes")[0]
        ref = PAPER.get(task)
        if ref:
            out += [f"MARL {task}: SMAX's vectors differ from SC2's on the same map, so fc1 and the mixer differ "
                    f"from the paper's. With SMAC's {task} shapes (row 'SMAC {task} shapes') the counting gives "
                    f"GRU {st['rnn']['mlp_k']:.2f} + {st['rnn']['rnn_k']:.2f} K, GRSN {st['grsn']['mlp_k']:.2f} K "
                    f"and mixer {st['mixer_k']:.2f} K against the paper's {ref['gru'][0]:.2f} + {ref['gru'][1]:.2f}, "
                    f"{ref['grsn'][0]:.2f} and {ref['mixer']:.2f}.", ""]
    po = [r for r in rows if r["network"].startswith("actor + critic") and r["task"] in PAPER
          and PAPER[r["task"]]["mixer"] is None]
    if po:
        diffs = ", ".join(f"{r['task']} {r['grsn_mlp_k']:.2f} vs {PAPER[r['task']]['grsn'][0]:.2f} K" for r in po)
        if convention == "ours":
            out += ["PO control counts actor + critic (the paper's RNN column is the actor's and the critic's "
                    "GRU); the networks have the heads' shortcut (po_shortcut). GRSN MLP column, ours vs the "
                    f"paper's: {diffs}. We count GRSN's gate products with their biases and every head input "
                    "column that carries spikes as AC; `--convention paper` counts as the paper's numbers "
                    "imply (docs/energy.md).", ""]
        else:
            out += [f"Counted with the paper's convention (gate biases dropped, the actor head's spike block as "
                    f"MAC): GRSN MLP column vs the paper's: {diffs}.", ""]
    mem = memory_model()
    out += [f"Memory-aware energy: compute-only plus {mem.read_pj:g} pJ per 32-bit word read or written "
            f"({DEFAULT_MEMORY_MODEL}: {mem.source}); weight reads = MAC + AC + spike-layer biases, plus a read "
            "and a write of every neuron's / GRU cell's state per step (docs/energy.md). The break-even rate is "
            "the firing rate of the GRSN's spiking layers at which its energy equals the GRU's (> 1: GRSN uses "
            "less at any rate).", ""]
    return out


def trained_with_structure(record: Dict[str, Any], fresh: Dict[str, Any]) -> Dict[str, Any]:
    """The counts of a trained network from a stored record (``as_dict`` form: its ACs and spike
    statistics) on the structure of the same network built fresh (MACs, spike-reading capacity,
    biases, state); a ValueError when the MACs differ (not the same architecture)."""
    from energy.counting import OpsSummary
    from energy.evaluate import with_memory

    if abs(float(record["mac_ops"]) - float(fresh["mac_ops"])) > 1e-6 * max(1.0, float(fresh["mac_ops"])):
        raise ValueError(f"--memory-from: the record's network has {record['mac_ops']} MACs per decision, the one "
                         f"built now {fresh['mac_ops']}: not the same architecture (pass the overrides it was "
                         f"trained with via --marl-override / --po-override)")
    ops = OpsSummary.from_dict(fresh)
    ops.snn = float(record["snn_ops"])
    ops.spiking = {k: dict(v) for k, v in record.get("spiking", {}).items()}
    return with_memory(ops)


def memory_from_records(paths: List[str], decisions: int, marl_extra: List[str],
                        po_extra: List[str]) -> Tuple[List[Dict[str, Any]], Dict[str, Any]]:
    """Rows (``COLUMNS``) of the trained networks in the records ``paths`` with memory-aware energy and
    break-even rates (``trained_with_structure``)."""
    import json

    from energy.counting import OpsSummary
    from energy.memory import break_even_summary

    rows: List[Dict[str, Any]] = []
    detail: Dict[str, Any] = {}
    for path in paths:
        record = json.load(open(path))
        for task, per_agent in record["detail"].items():
            marl = "mixer" in next(iter(per_agent.values()))
            ref, spk = ("rnn", "grsn") if marl else ("gru", "grsn")
            if ref not in per_agent or spk not in per_agent:
                continue
            fresh = {ag: (marl_result(task, ag, "", decisions, marl_extra) if marl
                          else po_result(task, ag, "", decisions, po_extra)) for ag in (ref, spk)}
            nets = [("agent (per decision)", "agent")] if marl else [("actor + critic", "actor_critic"),
                                                                     ("actor only", "agent")]
            name = os.path.basename(path)
            trained = "trained, " if all(per_agent[ag].get("checkpoint_loaded") for ag in (ref, spk)) else "untrained, "
            for label, key in nets:
                counts = {ag: trained_with_structure(per_agent[ag][key], fresh[ag][key]) for ag in (ref, spk)}
                mixer = per_agent[ref].get("mixer")
                rows.append(row_from(task, f"{label} ({trained}{name})", counts[ref], counts[spk],
                                     mixer["mac_ops"] / 1e3 if mixer else None))
                detail.setdefault(name, {}).setdefault(task, {})[key] = {
                    "sources": {ag: per_agent[ag]["source"] for ag in (ref, spk)}, **counts,
                    "break_even": break_even_summary(OpsSummary.from_dict(counts[spk]),
                                                     OpsSummary.from_dict(counts[ref]))}
            print(f"{task} ({name}): done", flush=True)
    return rows, detail


def parser() -> argparse.ArgumentParser:
    from energy.counting import CONVENTIONS

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--marl-maps", nargs="*", default=["3m", "8m"])
    p.add_argument("--po-keys", nargs="*", default=["Pendulum-P", "CartPole-V"])
    p.add_argument("--ckpt", action="append", default=[], help="TASK:AGENT=PATH, e.g. 8m:grsn=results/models/tok")
    p.add_argument("--po-models", default="", help="take the PO checkpoints from po_table1's model folders here")
    p.add_argument("--po-seed", type=int, default=1, help="seed of the po_table1 runs used with --po-models")
    p.add_argument("--tag", default="energy_run", help="output name under --out (<tag>.json, <tag>.md)")
    p.add_argument("--overwrite", action="store_true", help="allow replacing a committed <tag>.json / .md")
    p.add_argument("--convention", default="ours", choices=CONVENTIONS,
                   help="ours (default) or paper: the counting the GRSN paper's Table 4 implies")
    p.add_argument("--decisions", type=int, default=1024)
    p.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results"))
    p.add_argument("--marl-override", action="append", default=[], help="extra key=value for MARL builds")
    p.add_argument("--po-override", action="append", default=[], help="extra key=value for PO builds")
    p.add_argument("--memory-from", nargs="+", default=[], metavar="RECORD",
                   help="re-express stored records of trained networks with the memory-aware model (no playing)")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    from energy.table import format_table

    p = parser()
    a = p.parse_args(argv)
    check_output(a.out, a.tag, a.overwrite)
    if a.memory_from:
        return memory_main(a)

    ckpts: Dict[Tuple[str, str], str] = {}
    for item in a.ckpt:
        try:
            lhs, path = item.split("=", 1)
            task, agent = lhs.split(":", 1)
        except ValueError:
            p.error(f"--ckpt '{item}' must be TASK:AGENT=PATH")
        ckpts[(task, agent)] = path

    conv = [f"energy_convention={a.convention}"]
    rows: List[Dict[str, Any]] = []
    detail: Dict[str, Any] = {}
    structural: Dict[str, Any] = {}
    for task in a.marl_maps:
        res = {ag: marl_result(task, ag, ckpts.get((task, ag), ""), a.decisions, conv + a.marl_override)
               for ag in ("rnn", "grsn")}
        mixer = res["rnn"]["mixer"]
        rows.append(row_from(task, "agent (per decision)", res["rnn"]["agent"], res["grsn"]["agent"],
                             mixer["mac_ops"] / 1e3 if mixer else None))
        if task in SMAC_SHAPES:
            st = smac_structural(task, a.decisions, a.convention)
            rows.append(row_from(task, f"SMAC {task} shapes (structural, random inputs)", st["rnn"], st["grsn"],
                                 st["mixer_k"]))
            structural[f"{task}_smac_shapes"] = st
        ref = paper_row(task)
        if ref:
            rows.append(ref)
        detail[task] = {ag: {k: v for k, v in r.items() if k != "table"} for ag, r in res.items()}
        print(f"{task}: done ({res['rnn']['source']}; {res['grsn']['source']})", flush=True)
    for task in a.po_keys:
        for ag in ("gru", "grsn"):
            if a.po_models and (task, ag) not in ckpts:
                ckpts[(task, ag)] = po_table1_checkpoint(a.po_models, task, ag, a.po_seed)
        res = {ag: po_result(task, ag, ckpts.get((task, ag), ""), a.decisions, conv + a.po_override)
               for ag in ("gru", "grsn")}
        trained = " (trained)" if all(res[ag]["checkpoint_loaded"] for ag in res) else ""
        rows.append(row_from(task, "actor + critic" + trained, res["gru"]["actor_critic"],
                             res["grsn"]["actor_critic"], None))
        rows.append(row_from(task, "actor only" + trained, res["gru"]["agent"], res["grsn"]["agent"], None))
        ref = paper_row(task)
        if ref:
            rows.append(ref)
        detail[task] = {ag: {k: v for k, v in r.items() if k not in ("table", "rows")} for ag, r in res.items()}
        print(f"{task}: done", flush=True)

    sources = sorted({f"{t}:{ag}: {d[ag]['source']}" for t, d in detail.items() for ag in d})
    table = format_table(rows, COLUMNS)
    label = "ours" if a.convention == "ours" else "the GRSN paper's (labelled [paper counting])"
    md = "\n".join([
        "# Energy estimate: GRU vs GRSN (GRSN paper Table 4 layout)", "",
        f"Generated {time.strftime('%Y-%m-%d %H:%M')} by benchmarks/energy_table.py; averaged over >= "
        f"{a.decisions} decisions of greedy episodes per network. MAC 4.6 pJ, AC 0.9 pJ; fan-in counts "
        f"the bias; per decision step (MARL: one agent network; mixer per env step). Counting convention: "
        f"{label}; conventions and the memory model: docs/energy.md.", "",
        table, "",
        "Weights: " + "; ".join(sources), "",
        *notes(rows, detail, structural, a.convention)])
    write_report(a.out, a.tag, {"rows": rows, "detail": detail, "structural": structural,
                                "decisions": a.decisions, "convention": a.convention}, md)
    return 0


def memory_main(a: argparse.Namespace) -> int:
    """``--memory-from``: the trained networks of stored records, compute-only and memory-aware."""
    from dataclasses import asdict

    from energy.memory import DEFAULT_MEMORY_MODEL, MEMORY_MODELS
    from energy.table import format_table

    rows, detail = memory_from_records(a.memory_from, min(a.decisions, 64), a.marl_override, a.po_override)
    mem = MEMORY_MODELS[DEFAULT_MEMORY_MODEL]
    md = "\n".join([
        "# Energy of trained GRSN and GRU networks, compute-only and memory-aware", "",
        f"Generated {time.strftime('%Y-%m-%d %H:%M')} by benchmarks/energy_table.py --memory-from "
        f"{' '.join(a.memory_from)}. ACs and firing rates of the trained networks come from those records; "
        "MACs (checked equal to the records'), spike-reading capacity, biases and neuron / cell state from the "
        "same networks built now. Compute-only: MAC 4.6 pJ, AC 0.9 pJ. Memory-aware: plus "
        f"{mem.read_pj:g} pJ per 32-bit word read or written ({DEFAULT_MEMORY_MODEL}: {mem.source}). "
        "Break-even rate: the firing rate of the GRSN's spiking layers at which its energy equals the GRU's "
        "(> 1: the GRSN uses less at any rate); the JSON holds it for every memory model "
        f"({', '.join(MEMORY_MODELS)}). Conventions: docs/energy.md.", "",
        format_table(rows, COLUMNS), ""])
    write_report(a.out, a.tag, {"rows": rows, "detail": detail, "records": a.memory_from,
                                "memory_models": {n: asdict(m) for n, m in MEMORY_MODELS.items()}}, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
