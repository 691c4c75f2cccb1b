"""Sequence cores for single-agent recurrent RL: ``mlp`` (stateless), ``gru``, ``lif``, ``grsn``.

Common interface (``x`` is the concatenated embedding of observation, previous action and
previous reward):

* ``state = core.init_state(batch)``: tuple of tensors, first dim ``batch`` (``()`` when stateless);
  the zero state every episode and every sampled training window starts from.
* ``out, state = core.step(x[batch, input_dim], state)`` -> ``out [batch, hidden_dim]``.
* ``outs, state = core.unroll(x[T, batch, input_dim], state)`` -> ``outs [T, batch, hidden_dim]``,
  equal to ``T`` calls of ``step``.

Spiking cores wrap one layer from ``modules.neurons`` and output its spikes; the head reads them.
With ``tap=True`` (temporal alignment, default) the neuron makes one update per environment step
and its state ``(c, uhat, ...)`` is threaded exactly like a GRU hidden state. With ``tap=False``
(the paper's ablation) the state is reset at every decision, the same input is presented for
``snn_T`` neuron steps and the output is the spike rate over those steps; the core is then
stateless from the caller's point of view.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple, Type

import torch
from torch import Tensor, nn

from utils.registry import lookup

State = Tuple[Tensor, ...]


class SequenceCore(nn.Module):
    """Base class: ``input_dim`` -> ``hidden_dim`` per step, with a threaded state."""

    stateful: bool = True

    def __init__(self, input_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.input_dim = int(input_dim)
        self.hidden_dim = int(hidden_dim)

    def _device(self) -> torch.device:
        p = next(self.parameters(), None)
        return p.device if p is not None else torch.device("cpu")

    def init_state(self, batch: int) -> State:
        raise NotImplementedError

    def step(self, x: Tensor, state: State) -> Tuple[Tensor, State]:
        raise NotImplementedError

    def unroll(self, x: Tensor, state: State) -> Tuple[Tensor, State]:
        raise NotImplementedError


class MLPCore(SequenceCore):
    """Stateless: ``ReLU(W x + b)`` at each step (the Markovian baseline)."""

    stateful = False

    def __init__(self, input_dim: int, hidden_dim: int, args: Any = None) -> None:
        super().__init__(input_dim, hidden_dim)
        self.fc = nn.Linear(self.input_dim, self.hidden_dim)

    def init_state(self, batch: int) -> State:
        return ()

    def step(self, x: Tensor, state: State) -> Tuple[Tensor, State]:
        return torch.relu(self.fc(x)), state

    def unroll(self, x: Tensor, state: State) -> Tuple[Tensor, State]:
        return torch.relu(self.fc(x)), state


class GRUCore(SequenceCore):
    """One GRU layer; state ``(h [batch, hidden_dim],)``. ``unroll`` uses the fused ``nn.GRU``."""

    def __init__(self, input_dim: int, hidden_dim: int, args: Any = None) -> None:
        super().__init__(input_dim, hidden_dim)
        self.gru = nn.GRU(self.input_dim, self.hidden_dim)

    def init_state(self, batch: int) -> State:
        w = self.gru.weight_hh_l0
        return (torch.zeros(batch, self.hidden_dim, device=w.device, dtype=w.dtype),)

    def step(self, x: Tensor, state: State) -> Tuple[Tensor, State]:
        out, h = self.gru(x.unsqueeze(0), state[0].unsqueeze(0).contiguous())
        return out[0], (h[0],)

    def unroll(self, x: Tensor, state: State) -> Tuple[Tensor, State]:
        out, h = self.gru(x, state[0].unsqueeze(0).contiguous())
        return out, (h[0],)


def neuron_kwargs(args: Any) -> Dict[str, Any]:
    """Neuron constructor knobs from ``args`` (``snn_*``, ``surrogate_alpha``); None = neuron default."""
    names = {"threshold": "snn_threshold", "beta_init": "snn_beta_init",
             "beta_learnable": "snn_beta_learnable", "surrogate_alpha": "surrogate_alpha",
             "reset": "snn_reset", "surrogate": "snn_surrogate"}
    out = {}
    for kw, key in names.items():
        value = getattr(args, key, None) if args is not None else None
        if value is not None:
            out[kw] = value
    return out


class SpikingCore(SequenceCore):
    """One spiking layer (``neuron`` in modules.neurons) fed the embedding; outputs spikes.

    ``args`` supplies ``tap`` (default True), ``snn_T`` (default 4, used without TAP) and the
    neuron knobs of ``neuron_kwargs``.
    """

    neuron: str = ""

    def __init__(self, input_dim: int, hidden_dim: int, args: Any = None) -> None:
        super().__init__(input_dim, hidden_dim)
        from modules.neurons import REGISTRY as NEURON_REGISTRY
        cls = lookup(NEURON_REGISTRY, self.neuron, what="neuron")
        self.layer = cls(self.input_dim, self.hidden_dim, **neuron_kwargs(args))
        self.tap = bool(getattr(args, "tap", True)) if args is not None else True
        self.snn_T = int(getattr(args, "snn_T", 4)) if args is not None else 4
        if self.snn_T < 1:
            raise ValueError(f"snn_T must be >= 1, got {self.snn_T}.")
        self.stateful = self.tap
        if not self.tap:  # spike statistics count snn_T neuron steps per decision
            self.layer.steps_per_decision = self.snn_T

    def _zero(self, batch: int) -> State:
        dev = self._device()
        return tuple(s.to(dev) for s in self.layer.init_state(batch))

    def init_state(self, batch: int) -> State:
        return self._zero(batch) if self.tap else ()

    def _rate(self, x: Tensor) -> Tensor:
        """Without TAP: present ``x [N, in]`` for snn_T steps from a zero state; mean spikes [N, hid].

        The input product is computed once and repeated (``project`` then ``integrate``)."""
        pre = self.layer.project(x)
        reps = pre.unsqueeze(0).expand(self.snn_T, *pre.shape)
        spikes, _ = self.layer.integrate(reps, self._zero(x.shape[0]))
        return spikes.mean(0)

    def step(self, x: Tensor, state: State) -> Tuple[Tensor, State]:
        if not self.tap:
            return self._rate(x), ()
        return self.layer.step(x, state)

    def unroll(self, x: Tensor, state: State) -> Tuple[Tensor, State]:
        if not self.tap:
            T, b, d = x.shape
            return self._rate(x.reshape(T * b, d)).reshape(T, b, -1), ()
        return self.layer.unroll(x, state)


class LIFCore(SpikingCore):
    """LIF layer (hard reset, fixed beta by default)."""
    neuron = "lif"


class GRSNCore(SpikingCore):
    """GRSN layer (gated recurrent current, learnable beta, soft reset by default)."""
    neuron = "grsn"


CORES: Dict[str, Type[SequenceCore]] = {}
CORES["mlp"] = MLPCore
CORES["gru"] = GRUCore
CORES["lif"] = LIFCore
CORES["grsn"] = GRSNCore


def build_core(name: str, input_dim: int, hidden_dim: int, args: Optional[Any] = None) -> SequenceCore:
    """``CORES[name](input_dim, hidden_dim, args)``; an unknown name lists the valid ones."""
    return lookup(CORES, name, what="agent")(input_dim, hidden_dim, args)
