"""Synaptic-operation counting (GRSN paper Sec. 5.4, Eqs. 15-16) and the memory traffic it implies.

Pure counting: no environment, no run loop; imports ``modules`` (the layer below) and nothing above. ``OpCounter`` watches a model while it runs on real
inputs; ``summary(decisions)`` turns what it saw into operations per decision step.

Conventions, applied to every layer of every model (GRU, LIF, GRSN, MLP agents; MARL agents,
single-agent actors/critics, QMIX mixers, the PopSAN actor):

* **MAC** (multiply-accumulate, 4.6 pJ): a layer whose input is real-valued costs
  ``fan_in x neurons`` per input vector (Eq. 16), where **fan_in counts the bias as one more
  input** (``in_features + 1`` when the layer has a bias). This reproduces the paper's numbers
  exactly where they can be checked: the GRU's 24.96K = 2 products x 3 gates x 64 x (64 + 1)
  and the QMIX mixer's 51.20K on 8m (state 168, embed 32, hypernet 64).
* **AC** (accumulate, 0.9 pJ): synapses that read spikes cost ``fan_out x spikes``, summed over
  neuron steps and neurons (Eq. 15); ``fan_out`` is the number of outgoing synapses of the
  spiking neuron (the reading layer's ``out_features``). The reading layer's bias is a constant
  current, not spike-driven, and is not counted: a layer that never spikes costs no AC. A
  decoder that reads a spike *rate* over ``T`` neuron steps (no TAP) counts the spikes of all
  ``T`` steps (rate x T).
* **Recurrent ANN cells**: ``nn.GRU``/``nn.GRUCell`` (3 gates), ``nn.LSTM``/``nn.LSTMCell`` (4),
  ``nn.RNN``/``nn.RNNCell`` (1): ``gates x H x (in + 1)`` for the input product plus
  ``gates x H x (H + 1)`` for the recurrent product, per layer and direction (both biases).
* **Spiking layers of ``modules.neurons``** (LIF, GRSN): their synapses read the encoder's
  real-valued output, so ``W x_t`` (LIF) and GRSN's gate products ``[W_f; W_i] x_t`` count as
  MAC, once per decision. Without TAP the current of the repeated input is computed once and
  reused for the ``snn_T`` neuron steps (what the agents do), so it is still once per decision.
* Element-wise work (neuron leak and reset, GRSN's ``f * c``, GRU's gate multiplications,
  activations, the QMIX ``bmm`` mixing of the agents' Q-values) is not counted for any model,
  as in the paper. It is O(width), against O(width^2) for the products.

Table 4 columns: ``mlp`` = MACs of Linear layers (embeddings, encoders, heads, decoders on real
values, hypernetworks) and of spiking-layer synapses; ``rnn`` = MACs of recurrent ANN cells;
``snn`` = ACs. ``energy = 4.6 pJ x (mlp + rnn) + 0.9 pJ x snn``.

``convention="paper"`` (``CONVENTIONS``) is the counting the GRSN paper's PO-control GRSN numbers
imply (108.19 / 108.05 / 108.55 K): spiking-layer synapses (GRSN's gate products, LIF's ``W x``)
without their biases, and the spike columns of the PO actor's first head layer counted as dense
MAC instead of AC. ``"ours"`` (above) is the default.

Memory traffic (for ``energy.memory``), per decision, counted beside the operations:
* weight reads: one per MAC (the bias included, as in the MAC count) and one per AC (the weight of
  the synapse a spike drives), plus the bias of a spike-reading layer, read once per output
  neuron and input vector (``bias_reads``);
* persistent-state reads and writes: every neuron step reads and writes each state variable
  (LIF ``uhat``; GRSN ``c``, ``uhat``; a GRU/RNN cell's ``h``, an LSTM's ``h`` and ``c``).
Activations passed between layers (inputs, spikes, currents) are not memory traffic in this
model; that is the model of spikingjelly's ``NeuromorphicMemoryAccessCounter`` (docs/energy.md).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from energy.recording import SpikeRecorder
from modules.neurons.base import SpikingLayer

E_MAC_PJ = 4.6  # pJ per 32-bit float multiply-accumulate (Han et al. 2015)
E_AC_PJ = 0.9   # pJ per 32-bit float accumulate (spike-driven synaptic operation)

RECURRENT_GATES = {nn.GRU: 3, nn.GRUCell: 3, nn.LSTM: 4, nn.LSTMCell: 4, nn.RNN: 1, nn.RNNCell: 1}
RECURRENT_STATES = {nn.GRU: 1, nn.GRUCell: 1, nn.LSTM: 2, nn.LSTMCell: 2, nn.RNN: 1, nn.RNNCell: 1}  # h (, c)

CONVENTIONS = ("ours", "paper")


def check_convention(convention: str) -> str:
    """``convention`` if it is one of ``CONVENTIONS``, else a ValueError naming the choices."""
    if convention not in CONVENTIONS:
        raise ValueError(f"energy_convention must be one of {' | '.join(CONVENTIONS)} (ours: this project's "
                         f"counting; paper: the counting the GRSN paper's Table 4 implies), got {convention!r}")
    return convention


# ---------------------------------------------------------------------------------------- formulas
def linear_macs(in_features: int, out_features: int, bias: bool = True) -> int:
    """MACs of one input vector through a dense layer: ``(in_features + bias) x out_features``."""
    return (int(in_features) + int(bool(bias))) * int(out_features)


def recurrent_macs(input_size: int, hidden_size: int, gates: int, bias: bool = True,
                   num_layers: int = 1, bidirectional: bool = False) -> int:
    """MACs of one step of a gated recurrent ANN cell stack (input and recurrent products).

    Per layer and direction: ``gates x H x (in + b) + gates x H x (H + b)``; layers above the
    first read ``H x directions`` inputs.
    """
    dirs = 2 if bidirectional else 1
    total = 0
    for layer in range(int(num_layers)):
        in_l = int(input_size) if layer == 0 else int(hidden_size) * dirs
        per_dir = linear_macs(in_l, gates * hidden_size, bias) + linear_macs(hidden_size, gates * hidden_size, bias)
        total += dirs * per_dir
    return total


def gru_macs(input_size: int, hidden_size: int, bias: bool = True, num_layers: int = 1,
             bidirectional: bool = False) -> int:
    """MACs of one GRU step: ``3 H (in + 1) + 3 H (H + 1)`` per layer (e.g. 64/64 -> 24,960)."""
    return recurrent_macs(input_size, hidden_size, 3, bias, num_layers, bidirectional)


def sop(spikes: Tensor, fan_out: Union[int, Sequence[int], Tensor]) -> float:
    """Eq. 15: ``sum_t sum_j fan_out[j] * o_t[j]`` for spikes ``[..., neurons]`` (any leading dims).

    ``fan_out``: one int for all neurons or one per neuron ``[neurons]``.
    """
    spikes = torch.as_tensor(spikes, dtype=torch.float64)
    per_neuron = spikes.reshape(-1, spikes.shape[-1]).sum(0)  # [neurons]
    fo = torch.as_tensor(fan_out, dtype=torch.float64)
    if fo.dim() == 0:
        return float(per_neuron.sum() * fo)
    if fo.shape != per_neuron.shape:
        raise ValueError(f"sop: fan_out must be one int or one per neuron ({per_neuron.numel()}), "
                         f"got shape {list(fo.shape)}")
    return float((per_neuron * fo).sum())


def energy_pj(mac: float, ac: float) -> float:
    """``4.6 pJ x MAC + 0.9 pJ x AC``."""
    return E_MAC_PJ * float(mac) + E_AC_PJ * float(ac)


# ---------------------------------------------------------------------------------------- spike inputs
@dataclass(frozen=True)
class SpikeInput:
    """Marks a Linear whose input carries spikes.

    ``steps``: the input is a spike count divided by ``steps`` (1 = raw 0/1 spikes; ``snn_T`` for
    a rate decoder without TAP). ``cols``: ``(start, stop)`` of the input columns that carry
    spikes (None = all); the other columns are real-valued and count as MAC (with the bias).
    """

    steps: int = 1
    cols: Optional[Tuple[int, int]] = None


def infer_spike_inputs(model: nn.Module, convention: str = "ours") -> Dict[str, SpikeInput]:
    """The Linear layers of ``model`` that read spikes, by module name.

    Knows the project's models: a MARL spiking agent (``spiking`` layer -> ``fc2``), a PO
    actor/critic with a spiking core (``core.layer`` -> ``head.0`` / ``q1.0``, ``q2.0``; the
    critic's continuous action columns stay MAC) and the PopSAN actor (every ``layers.i.fc``
    reads spike trains). Pass ``spike_inputs`` to ``OpCounter`` yourself for other models.
    ``convention="paper"`` leaves the PO actor's ``head.0`` out (counted as dense MAC).
    """
    check_convention(convention)
    found: Dict[str, SpikeInput] = {}
    for prefix, mod in model.named_modules():
        pre = f"{prefix}." if prefix else ""
        spiking = getattr(mod, "spiking", None)
        fc2 = getattr(mod, "fc2", None)
        if isinstance(spiking, SpikingLayer) and isinstance(fc2, nn.Linear):
            found[pre + "fc2"] = SpikeInput(steps=spiking.steps_per_decision)
        core = getattr(mod, "core", None)
        layer = getattr(core, "layer", None) if core is not None else None
        if isinstance(layer, SpikingLayer):
            hidden = layer.hidden_dim
            for head in (("q1", "q2") if convention == "paper" else ("head", "q1", "q2")):
                seq = getattr(mod, head, None)
                if isinstance(seq, nn.Sequential) and len(seq) and isinstance(seq[0], nn.Linear):
                    cols = None if seq[0].in_features == hidden else (0, hidden)
                    found[f"{pre}{head}.0"] = SpikeInput(steps=layer.steps_per_decision, cols=cols)
        if type(mod).__name__ == "SpikingActor" and hasattr(mod, "layers") and hasattr(mod, "encoder"):
            for i, sub in enumerate(mod.layers):
                if isinstance(getattr(sub, "fc", None), nn.Linear):
                    found[f"{pre}layers.{i}.fc"] = SpikeInput(steps=1)
    return found


# ---------------------------------------------------------------------------------------- summary
@dataclass
class OpsSummary:
    """Operations per decision step (one agent's forward for one observation).

    ``mlp``/``rnn``: MACs, ``snn``: ACs; ``layers``: per counted layer ``{"kind": "MAC"|"AC",
    "group": "mlp"|"rnn"|"snn", "ops": per decision}``; ``spiking``: per spiking layer the
    recorder's statistics (spikes, neuron_steps, firing_rate, ...).

    Memory traffic per decision (module docstring): ``bias_reads`` (biases of spike-reading
    layers), ``state_reads`` / ``state_writes`` (persistent neuron / cell state words);
    ``ac_dense``: the ACs if every spiking neuron fired at every step (so ``snn = rate x
    ac_dense`` for one spiking layer; the break-even rate of ``energy.memory`` needs it).
    """

    decisions: int
    mlp: float = 0.0
    rnn: float = 0.0
    snn: float = 0.0
    layers: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    spiking: Dict[str, Dict[str, float]] = field(default_factory=dict)
    convention: str = "ours"
    ac_dense: float = 0.0
    bias_reads: float = 0.0
    state_reads: float = 0.0
    state_writes: float = 0.0

    @property
    def mac(self) -> float:
        return self.mlp + self.rnn

    @property
    def ac(self) -> float:
        return self.snn

    @property
    def energy_pj(self) -> float:
        """Compute-only energy per decision: ``4.6 pJ x MAC + 0.9 pJ x AC``."""
        return energy_pj(self.mac, self.ac)

    @property
    def weight_reads(self) -> float:
        """Parameter words read per decision: one per MAC and per AC, plus spike-layer biases."""
        return self.mac + self.ac + self.bias_reads

    @property
    def firing_rate(self) -> float:
        """Spikes / neuron steps over all spiking layers (0 without any)."""
        steps = sum(s["neuron_steps"] for s in self.spiking.values())
        return sum(s["spikes"] for s in self.spiking.values()) / steps if steps else 0.0

    def kops(self) -> Dict[str, float]:
        """Table-4 cells: ``mlp_k``, ``rnn_k``, ``snn_k`` (K-ops) and ``energy_kpj``."""
        return {"mlp_k": self.mlp / 1e3, "rnn_k": self.rnn / 1e3, "snn_k": self.snn / 1e3,
                "energy_kpj": self.energy_pj / 1e3}

    def __add__(self, other: "OpsSummary") -> "OpsSummary":
        """Ops of two networks that both run at every decision (e.g. actor + critic)."""
        layers = dict(self.layers)
        layers.update({f"+{k}": v for k, v in other.layers.items()})
        spiking = dict(self.spiking)
        spiking.update({f"+{k}": v for k, v in other.spiking.items()})
        if self.convention != other.convention:
            raise ValueError(f"OpsSummary: cannot add counts of conventions {self.convention!r} and "
                             f"{other.convention!r}; count both networks with one energy_convention")
        return OpsSummary(self.decisions, self.mlp + other.mlp, self.rnn + other.rnn,
                          self.snn + other.snn, layers, spiking, self.convention,
                          self.ac_dense + other.ac_dense, self.bias_reads + other.bias_reads,
                          self.state_reads + other.state_reads, self.state_writes + other.state_writes)

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "OpsSummary":
        """Back from ``as_dict`` (e.g. a stored JSON record), for ``energy.memory``'s functions."""
        return cls(decisions=int(d["decisions"]), mlp=float(d["mlp_ops"]), rnn=float(d["rnn_ops"]),
                   snn=float(d["snn_ops"]), layers={k: dict(v) for k, v in d.get("layers", {}).items()},
                   spiking={k: dict(v) for k, v in d.get("spiking", {}).items()},
                   convention=str(d.get("convention", "ours")), ac_dense=float(d.get("ac_dense_ops", 0.0)),
                   bias_reads=float(d.get("bias_reads", 0.0)), state_reads=float(d.get("state_reads", 0.0)),
                   state_writes=float(d.get("state_writes", 0.0)))

    def as_dict(self) -> Dict[str, Any]:
        """JSON-friendly: per-decision ops, K-ops, energy, firing rate, per-layer detail."""
        out: Dict[str, Any] = {"decisions": int(self.decisions), "convention": self.convention,
                               "mlp_ops": self.mlp, "rnn_ops": self.rnn, "snn_ops": self.snn,
                               "mac_ops": self.mac, "ac_ops": self.ac, "energy_pj": self.energy_pj,
                               "firing_rate": self.firing_rate, "ac_dense_ops": self.ac_dense,
                               "weight_reads": self.weight_reads, "bias_reads": self.bias_reads,
                               "state_reads": self.state_reads, "state_writes": self.state_writes}
        out.update(self.kops())
        out["layers"] = {k: dict(v) for k, v in self.layers.items()}
        out["spiking"] = {k: {kk: (float(vv) if isinstance(vv, (int, float)) else vv)
                              for kk, vv in v.items()} for k, v in self.spiking.items()}
        return out


# ---------------------------------------------------------------------------------------- counter
class OpCounter:
    """Count MACs and ACs while ``model`` runs (context manager).

    ``spike_inputs``: Linear layers reading spikes (name -> ``SpikeInput``); None infers them
    (``infer_spike_inputs``). ``membrane_samples``: passed to the ``SpikeRecorder`` so membrane
    potentials can be read back with ``counter.recorder.membrane(name)``. ``convention``: one of
    ``CONVENTIONS`` (module docstring).

    Counted by forward hooks: ``nn.Linear`` and the recurrent cells of ``RECURRENT_GATES``.
    Spiking layers (``modules.neurons.SpikingLayer``) are read through a ``SpikeRecorder``:
    their synapse MACs from the decisions it saw, their spikes for firing statistics. A
    parameterised leaf module of an unknown type raises (so nothing is silently left out),
    except the PopSAN encoder/decoder, counted from their sizes (one MAC per receptive field;
    ``pop + 1`` MACs per action). Run models under ``torch.no_grad()``; counts are totals until
    ``summary(decisions)`` divides them.
    """

    def __init__(self, model: nn.Module, spike_inputs: Optional[Dict[str, SpikeInput]] = None,
                 membrane_samples: int = 0, convention: str = "ours") -> None:
        self.model = model
        self.convention = check_convention(convention)
        self.spike_inputs = (infer_spike_inputs(model, convention) if spike_inputs is None
                             else dict(spike_inputs))
        names = dict(model.named_modules())
        for name in self.spike_inputs:
            if not isinstance(names.get(name), nn.Linear):
                raise ValueError(f"OpCounter: spike_inputs names '{name}', which is not an nn.Linear of "
                                 f"{type(model).__name__}; Linear layers: "
                                 f"{sorted(n for n, m in names.items() if isinstance(m, nn.Linear))}")
        self.spiking_layers = {n or "self": m for n, m in names.items() if isinstance(m, SpikingLayer)}
        inside_spiking = {id(p) for m in self.spiking_layers.values() for p in m.parameters()}
        self._targets: List[Tuple[str, nn.Module]] = []
        for name, mod in names.items():
            if isinstance(mod, SpikingLayer) or any(id(p) in inside_spiking for p in mod.parameters(recurse=False)):
                continue
            if isinstance(mod, nn.Linear) or type(mod) in RECURRENT_GATES or self._popsan_kind(mod):
                self._targets.append((name, mod))
            elif len(list(mod.parameters(recurse=False))) > 0:
                raise ValueError(f"OpCounter: don't know how to count layer '{name}' "
                                 f"({type(mod).__name__}); extend energy.counting for it")
        self.recorder = SpikeRecorder(model, membrane_samples=membrane_samples) if self.spiking_layers else None
        self._handles: List[Any] = []
        self.reset()

    @staticmethod
    def _popsan_kind(mod: nn.Module) -> str:
        name = type(mod).__name__
        return name if name in ("PopulationEncoder", "PopulationDecoder") else ""

    def reset(self) -> None:
        """Forget all counts (the recorder's too)."""
        self._ops: Dict[str, Dict[str, float]] = {}
        self._mem: Dict[str, float] = {"ac_dense": 0.0, "bias_reads": 0.0, "state_reads": 0.0, "state_writes": 0.0}
        self.calls: Dict[str, int] = {}
        if self.recorder is not None:
            self.recorder.reset()

    # -------------------------------------------------------------- hooks
    def _add(self, key: str, kind: str, group: str, ops: float) -> None:
        rec = self._ops.setdefault(key, {"kind": kind, "group": group, "ops": 0.0})
        rec["ops"] += float(ops)

    def _linear_hook(self, name: str, mod: nn.Linear):
        spec = self.spike_inputs.get(name)

        def hook(module: nn.Module, inputs: Tuple[Tensor, ...], output: Tensor) -> None:
            x = inputs[0]
            rows = x.numel() // module.in_features
            self.calls[name] = self.calls.get(name, 0) + rows
            has_bias = module.bias is not None
            if spec is None:
                self._add(name, "MAC", "mlp", rows * linear_macs(module.in_features, module.out_features, has_bias))
                return
            lo, hi = spec.cols if spec.cols is not None else (0, module.in_features)
            xs = x[..., lo:hi].detach().double() * spec.steps
            if xs.numel() and ((xs - xs.round()).abs().max() > 1e-3 or xs.min() < -1e-3
                               or xs.max() > spec.steps + 1e-3):
                raise ValueError(f"OpCounter: '{name}' is marked as reading spikes (rate over "
                                 f"{spec.steps} steps) but got non-spike values; fix spike_inputs")
            self._add(name, "AC", "snn", float(xs.sum()) * module.out_features)
            self._mem["ac_dense"] += rows * (hi - lo) * spec.steps * module.out_features
            real = module.in_features - (hi - lo)
            if real > 0:  # real-valued columns next to the spikes (e.g. the critic's action)
                self._add(name + ":real", "MAC", "mlp", rows * linear_macs(real, module.out_features, has_bias))
            elif has_bias:  # a constant current: no operation, but its value is read
                self._mem["bias_reads"] += rows * module.out_features
        return hook

    def _recurrent_hook(self, name: str, mod: nn.Module):
        gates = RECURRENT_GATES[type(mod)]
        layers = getattr(mod, "num_layers", 1)
        bidir = getattr(mod, "bidirectional", False)
        per_row = recurrent_macs(mod.input_size, mod.hidden_size, gates, mod.bias, layers, bidir)
        state_per_row = RECURRENT_STATES[type(mod)] * mod.hidden_size * layers * (2 if bidir else 1)
        if getattr(mod, "proj_size", 0):
            raise ValueError(f"OpCounter: LSTM '{name}' with proj_size is not supported")

        def hook(module: nn.Module, inputs: Tuple[Any, ...], output: Any) -> None:
            x = inputs[0]
            if not isinstance(x, Tensor):
                raise ValueError(f"OpCounter: '{name}' got a packed sequence; count on padded tensors")
            rows = x.numel() // module.input_size
            self.calls[name] = self.calls.get(name, 0) + rows
            self._add(name, "MAC", "rnn", rows * per_row)
            self._mem["state_reads"] += rows * state_per_row
            self._mem["state_writes"] += rows * state_per_row
        return hook

    def _popsan_hook(self, name: str, mod: nn.Module):
        kind = self._popsan_kind(mod)

        def hook(module: nn.Module, inputs: Tuple[Tensor, ...], output: Tensor) -> None:
            rows = inputs[0].shape[0]
            self.calls[name] = self.calls.get(name, 0) + rows
            if kind == "PopulationEncoder":
                per_row = module.obs_dim * module.pop          # one Gaussian field each
            else:
                per_row = module.act_dim * (module.pop + 1)    # per-action readout with bias
            self._add(name, "MAC", "mlp", rows * per_row)
        return hook

    def start(self) -> "OpCounter":
        if not self._handles:
            for name, mod in self._targets:
                if isinstance(mod, nn.Linear):
                    fn = self._linear_hook(name, mod)
                elif type(mod) in RECURRENT_GATES:
                    fn = self._recurrent_hook(name, mod)
                else:
                    fn = self._popsan_hook(name, mod)
                self._handles.append(mod.register_forward_hook(fn))
            if self.recorder is not None:
                self.recorder.start()
        return self

    def stop(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []
        if self.recorder is not None:
            self.recorder.stop()

    def __enter__(self) -> "OpCounter":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -------------------------------------------------------------- result
    def summary(self, decisions: int) -> OpsSummary:
        """Everything counted so far divided by ``decisions`` (inputs the model decided on)."""
        decisions = int(decisions)
        if decisions <= 0:
            raise ValueError(f"OpCounter.summary: decisions must be > 0, got {decisions}; run the "
                             f"model on some inputs first")
        ops = {k: dict(v) for k, v in self._ops.items()}
        mem = dict(self._mem)
        spiking: Dict[str, Dict[str, float]] = {}
        if self.recorder is not None:
            for name, st in self.recorder.stats().items():
                spiking[name] = st
                layer = self.spiking_layers[name]
                lin = getattr(layer, "linear", None)
                if not isinstance(lin, nn.Linear):
                    raise ValueError(f"OpCounter: spiking layer '{name}' has no .linear synapses to count")
                bias = lin.bias is not None and self.convention == "ours"  # the paper drops these biases
                macs = st["decisions"] * linear_macs(lin.in_features, lin.out_features, bias)
                ops[f"{name}.linear"] = {"kind": "MAC", "group": "mlp", "ops": float(macs)}
                if lin.bias is not None and not bias:  # not an operation here, still a read
                    mem["bias_reads"] += st["decisions"] * lin.out_features
                n_state = len(getattr(layer, "state_names", ("u",)))
                mem["state_reads"] += st["neuron_steps"] * n_state
                mem["state_writes"] += st["neuron_steps"] * n_state
        out = OpsSummary(decisions=decisions, spiking=spiking, convention=self.convention,
                         **{k: v / decisions for k, v in mem.items()})
        for name, rec in ops.items():
            per = rec["ops"] / decisions
            out.layers[name] = {"kind": rec["kind"], "group": rec["group"], "ops": per}
            setattr(out, rec["group"], getattr(out, rec["group"]) + per)
        return out
