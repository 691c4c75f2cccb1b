"""Synaptic-operation counting and energy estimation (GRSN paper Sec. 5.4, Eqs. 15-16).

Pure counting: no environment, no run loop. ``OpCounter`` watches a model while it runs on real
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
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

E_MAC_PJ = 4.6  # pJ per 32-bit float multiply-accumulate (Han et al. 2015)
E_AC_PJ = 0.9   # pJ per 32-bit float accumulate (spike-driven synaptic operation)

RECURRENT_GATES = {nn.GRU: 3, nn.GRUCell: 3, nn.LSTM: 4, nn.LSTMCell: 4, nn.RNN: 1, nn.RNNCell: 1}


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


def infer_spike_inputs(model: nn.Module) -> Dict[str, SpikeInput]:
    """The Linear layers of ``model`` that read spikes, by module name.

    Knows the project's models: a MARL spiking agent (``spiking`` layer -> ``fc2``), a PO
    actor/critic with a spiking core (``core.layer`` -> ``head.0`` / ``q1.0``, ``q2.0``; the
    critic's continuous action columns stay MAC) and the PopSAN actor (every ``layers.i.fc``
    reads spike trains). Pass ``spike_inputs`` to ``OpCounter`` yourself for other models.
    """
    from modules.neurons.base import SpikingLayer

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
            for head in ("head", "q1", "q2"):
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
    """

    decisions: int
    mlp: float = 0.0
    rnn: float = 0.0
    snn: float = 0.0
    layers: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    spiking: Dict[str, Dict[str, float]] = field(default_factory=dict)

    @property
    def mac(self) -> float:
        return self.mlp + self.rnn

    @property
    def ac(self) -> float:
        return self.snn

    @property
    def energy_pj(self) -> float:
        return energy_pj(self.mac, self.ac)

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
        return OpsSummary(self.decisions, self.mlp + other.mlp, self.rnn + other.rnn,
                          self.snn + other.snn, layers, spiking)

    def as_dict(self) -> Dict[str, Any]:
        """JSON-friendly: per-decision ops, K-ops, energy, firing rate, per-layer detail."""
        out: Dict[str, Any] = {"decisions": int(self.decisions), "mlp_ops": self.mlp,
                               "rnn_ops": self.rnn, "snn_ops": self.snn, "mac_ops": self.mac,
                               "ac_ops": self.ac, "energy_pj": self.energy_pj,
                               "firing_rate": self.firing_rate}
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
    potentials can be read back with ``counter.recorder.membrane(name)``.

    Counted by forward hooks: ``nn.Linear`` and the recurrent cells of ``RECURRENT_GATES``.
    Spiking layers (``modules.neurons.SpikingLayer``) are read through a ``SpikeRecorder``:
    their synapse MACs from the decisions it saw, their spikes for firing statistics. A
    parameterised leaf module of an unknown type raises (so nothing is silently left out),
    except the PopSAN encoder/decoder, counted from their sizes (one MAC per receptive field;
    ``pop + 1`` MACs per action). Run models under ``torch.no_grad()``; counts are totals until
    ``summary(decisions)`` divides them.
    """

    def __init__(self, model: nn.Module, spike_inputs: Optional[Dict[str, SpikeInput]] = None,
                 membrane_samples: int = 0) -> None:
        from modules.neurons.base import SpikingLayer
        from modules.neurons.recording import SpikeRecorder

        self.model = model
        self.spike_inputs = infer_spike_inputs(model) if spike_inputs is None else dict(spike_inputs)
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
                                 f"({type(mod).__name__}); extend utils.energy for it")
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
            real = module.in_features - (hi - lo)
            if real > 0:  # real-valued columns next to the spikes (e.g. the critic's action)
                self._add(name + ":real", "MAC", "mlp", rows * linear_macs(real, module.out_features, has_bias))
        return hook

    def _recurrent_hook(self, name: str, mod: nn.Module):
        gates = RECURRENT_GATES[type(mod)]
        layers = getattr(mod, "num_layers", 1)
        bidir = getattr(mod, "bidirectional", False)
        per_row = recurrent_macs(mod.input_size, mod.hidden_size, gates, mod.bias, layers, bidir)
        if getattr(mod, "proj_size", 0):
            raise ValueError(f"OpCounter: LSTM '{name}' with proj_size is not supported")

        def hook(module: nn.Module, inputs: Tuple[Any, ...], output: Any) -> None:
            x = inputs[0]
            if not isinstance(x, Tensor):
                raise ValueError(f"OpCounter: '{name}' got a packed sequence; count on padded tensors")
            rows = x.numel() // module.input_size
            self.calls[name] = self.calls.get(name, 0) + rows
            self._add(name, "MAC", "rnn", rows * per_row)
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
        spiking: Dict[str, Dict[str, float]] = {}
        if self.recorder is not None:
            for name, st in self.recorder.stats().items():
                spiking[name] = st
                layer = self.spiking_layers[name]
                lin = getattr(layer, "linear", None)
                if not isinstance(lin, nn.Linear):
                    raise ValueError(f"OpCounter: spiking layer '{name}' has no .linear synapses to count")
                macs = st["decisions"] * linear_macs(lin.in_features, lin.out_features, lin.bias is not None)
                ops[f"{name}.linear"] = {"kind": "MAC", "group": "mlp", "ops": float(macs)}
        out = OpsSummary(decisions=decisions, spiking=spiking)
        for name, rec in ops.items():
            per = rec["ops"] / decisions
            out.layers[name] = {"kind": rec["kind"], "group": rec["group"], "ops": per}
            setattr(out, rec["group"], getattr(out, rec["group"]) + per)
        return out


# ---------------------------------------------------------------------------------------- tables
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


def table4_row(env: str, agent: str, ops: OpsSummary, mixer: Optional[OpsSummary] = None) -> Dict[str, Any]:
    """One row for ``TABLE4_COLUMNS``; ``mixer_k`` is the mixer's MACs per env step (None: ``-``)."""
    row: Dict[str, Any] = {"env": env, "agent": agent}
    row.update(ops.kops())
    row["mixer_k"] = mixer.mac / 1e3 if mixer is not None else None
    return row
