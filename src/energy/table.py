"""Table-4-style rows and Markdown tables of operation counts and energy (GRSN paper Table 4).

``TABLE4_COLUMNS`` is the paper's layout; ``TABLE4_MEMORY_COLUMNS`` adds the memory-aware energy
(``energy.memory``, default memory model) and the counting convention of the row.
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

from energy.counting import OpsSummary
from energy.memory import DEFAULT_MEMORY_MODEL, MemoryModel, memory_aware_pj, memory_model


def format_table(rows: List[Dict[str, Any]], columns: Sequence[Tuple[str, str]], digits: int = 2) -> str:
    """A Markdown table: ``columns`` = ``[(key, header), ...]``; floats with ``digits`` decimals,
    None / missing as ``-``."""
    def cell(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return "nan" if math.isnan(v) else f"{v:.{digits}f}"
        return str(v)

    header = "| " + " | ".join(h for _, h in columns) + " |"
    sep = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join(cell(r.get(k)) for k, _ in columns) + " |" for r in rows]
    return "\n".join([header, sep] + body)


TABLE4_COLUMNS: List[Tuple[str, str]] = [
    ("env", "Environment"), ("agent", "Agent"), ("mlp_k", "MLP (K)"), ("rnn_k", "RNN (K)"),
    ("snn_k", "SNN (K)"), ("energy_kpj", "Energy (KpJ)"), ("mixer_k", "Mixer (K)"),
]
TABLE4_MEMORY_COLUMNS: List[Tuple[str, str]] = TABLE4_COLUMNS + [
    ("energy_mem_kpj", f"Energy + memory (KpJ, {DEFAULT_MEMORY_MODEL})"), ("firing_rate", "Firing rate"),
    ("convention", "Counting"),
]

CONVENTION_LABELS = {"ours": "ours", "paper": "paper's (GRSN Table 4)"}


def agent_label(agent: str, convention: str) -> str:
    """``agent`` with ``[paper counting]`` appended under the paper's convention."""
    return agent if convention == "ours" else f"{agent} [paper counting]"


def table4_row(env: str, agent: str, ops: OpsSummary, mixer: Optional[OpsSummary] = None,
               memory: Optional[MemoryModel] = None) -> Dict[str, Any]:
    """One row for ``TABLE4_COLUMNS`` / ``TABLE4_MEMORY_COLUMNS``; ``mixer_k`` is the mixer's MACs per
    env step (None: ``-``); ``energy_mem_kpj`` under ``memory`` (default: ``DEFAULT_MEMORY_MODEL``)."""
    memory = memory_model() if memory is None else memory
    row: Dict[str, Any] = {"env": env, "agent": agent_label(agent, ops.convention)}
    row.update(ops.kops())
    row["mixer_k"] = mixer.mac / 1e3 if mixer is not None else None
    row["energy_mem_kpj"] = memory_aware_pj(ops, memory) / 1e3
    row["firing_rate"] = ops.firing_rate
    row["convention"] = CONVENTION_LABELS[ops.convention]
    return row
