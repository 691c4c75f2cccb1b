"""Memory-aware energy beside the compute-only one, and the firing rate at which GRSN breaks even.

Compute-only (GRSN paper Eq. 16, ``energy.counting``): ``4.6 pJ x MAC + 0.9 pJ x AC`` (Horowitz,
ISSCC 2014, 45 nm, 32-bit float: add 0.9 pJ, multiply 3.7 pJ).

Memory-aware: compute-only plus the memory traffic that ``energy.counting`` counts per decision,

    E_mem = read_pj x (weight_reads + state_reads) + write_pj x state_writes
    weight_reads = MAC + AC + bias_reads      (one weight per MAC and per AC; spike-layer biases)

with ``read_pj`` / ``write_pj`` the energy of one 32-bit word access of a ``MemoryModel``. The
traffic model (weights and biases actually used, plus one read and one write of every persistent
state variable per neuron step; activations between layers are not counted) is the one of
spikingjelly 2.0.0's ``op_counter.NeuromorphicMemoryAccessCounter``; the word energies are:

* ``sram_8kb_45nm``: 5 pJ per 32-bit word. Horowitz, "Computing's energy problem (and what we can
  do about it)", ISSCC 2014, doi:10.1109/ISSCC.2014.6757323, energy table for 45 nm at 0.9 V: a
  64-bit access of an 8 KB SRAM cache costs 10 pJ; half of it for a 32-bit word.
* ``sram_1mb_45nm`` (default): 50 pJ per word, the same table's 100 pJ per 64-bit access of a 1 MB
  cache. Every agent of this project keeps its 32-bit weights in well under 1 MB but over 32 KB.
* ``spikingjelly_simple``: 99.84 pJ per word = 24.96 pJ per byte (3.12 pJ per bit), the default
  ``e_memory_pj_per_byte`` of spikingjelly 2.0.0's ``SimpleEnergyCostConfig.fp32()``.

Break-even: with every spiking layer firing at one rate ``r``, a spiking agent's energy is linear
in ``r``: ``E(r) = E_fixed + r x AC_dense x (0.9 pJ + read_pj)`` (each AC also reads its weight),
where ``AC_dense`` is the AC count at ``r = 1``. It equals a reference (GRU) agent's energy at

    r* = (E_ref - E_fixed) / (AC_dense x (0.9 pJ + read_pj))

(``read_pj = 0`` and no memory terms for compute-only). ``r* >= 1``: the spiking agent uses less
energy at any firing rate; ``r* <= 0``: more at any rate.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Dict, Optional

from energy.counting import E_AC_PJ, E_MAC_PJ, OpsSummary


@dataclass(frozen=True)
class MemoryModel:
    """Energy of one 32-bit word read / written, with the source of the numbers."""

    name: str
    read_pj: float
    write_pj: float
    source: str


MEMORY_MODELS: Dict[str, MemoryModel] = {
    "sram_8kb_45nm": MemoryModel(
        "sram_8kb_45nm", 5.0, 5.0,
        "Horowitz ISSCC 2014 (doi:10.1109/ISSCC.2014.6757323), 45 nm 0.9 V: 8 KB SRAM cache, 10 pJ per "
        "64-bit access -> 5 pJ per 32-bit word"),
    "sram_1mb_45nm": MemoryModel(
        "sram_1mb_45nm", 50.0, 50.0,
        "Horowitz ISSCC 2014 (doi:10.1109/ISSCC.2014.6757323), 45 nm 0.9 V: 1 MB SRAM cache, 100 pJ per "
        "64-bit access -> 50 pJ per 32-bit word"),
    "spikingjelly_simple": MemoryModel(
        "spikingjelly_simple", 99.84, 99.84,
        "spikingjelly 2.0.0 op_counter SimpleEnergyCostConfig.fp32(): 24.96 pJ per byte (3.12 pJ per bit) "
        "-> 99.84 pJ per 32-bit word"),
}
DEFAULT_MEMORY_MODEL = "sram_1mb_45nm"


def memory_model(name: str = DEFAULT_MEMORY_MODEL) -> MemoryModel:
    """The ``MEMORY_MODELS`` entry ``name``; a ValueError listing the names otherwise."""
    if name not in MEMORY_MODELS:
        raise ValueError(f"unknown memory model {name!r}; use one of {', '.join(sorted(MEMORY_MODELS))}")
    return MEMORY_MODELS[name]


def memory_pj(ops: OpsSummary, model: MemoryModel) -> float:
    """Memory energy per decision: ``read_pj x (weight_reads + state_reads) + write_pj x state_writes``."""
    return model.read_pj * (ops.weight_reads + ops.state_reads) + model.write_pj * ops.state_writes


def memory_aware_pj(ops: OpsSummary, model: MemoryModel) -> float:
    """Compute-only energy plus ``memory_pj``, per decision."""
    return ops.energy_pj + memory_pj(ops, model)


def break_even_rate(spiking: OpsSummary, reference: OpsSummary,
                    model: Optional[MemoryModel] = None) -> Optional[float]:
    """Firing rate ``r*`` (module docstring) at which ``spiking`` uses as much energy per decision as
    ``reference`` (e.g. the GRU agent on the same task); compute-only when ``model`` is None.

    None when ``spiking`` has no spike-reading synapse (``ac_dense == 0``). Not clipped to [0, 1].
    """
    if spiking.ac_dense <= 0:
        return None
    read = model.read_pj if model is not None else 0.0
    e_ref = reference.energy_pj + (memory_pj(reference, model) if model is not None else 0.0)
    fixed = E_MAC_PJ * spiking.mac
    if model is not None:  # everything but the AC-proportional weight reads
        fixed += (model.read_pj * (spiking.mac + spiking.bias_reads + spiking.state_reads)
                  + model.write_pj * spiking.state_writes)
    return (e_ref - fixed) / (spiking.ac_dense * (E_AC_PJ + read))


def memory_summary(ops: OpsSummary, models: Optional[Dict[str, MemoryModel]] = None) -> Dict[str, Any]:
    """JSON-friendly: the traffic per decision and, per memory model, memory and total energy (pJ)."""
    models = MEMORY_MODELS if models is None else models
    return {"weight_reads": ops.weight_reads, "state_reads": ops.state_reads, "state_writes": ops.state_writes,
            "default_model": DEFAULT_MEMORY_MODEL,
            "models": {name: {**asdict(m), "memory_pj": memory_pj(ops, m), "total_pj": memory_aware_pj(ops, m)}
                       for name, m in models.items()}}


def break_even_summary(spiking: OpsSummary, reference: OpsSummary,
                       models: Optional[Dict[str, MemoryModel]] = None) -> Dict[str, Optional[float]]:
    """``{"compute_only": r*, <memory model>: r*, ...}`` (``break_even_rate`` under each model)."""
    models = MEMORY_MODELS if models is None else models
    out: Dict[str, Optional[float]] = {"compute_only": break_even_rate(spiking, reference)}
    out.update({name: break_even_rate(spiking, reference, m) for name, m in models.items()})
    return out
