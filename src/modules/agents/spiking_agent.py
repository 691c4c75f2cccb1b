"""Spiking agents (``lif``, ``grsn``): fc1 encoder (Linear + ReLU) -> spiking layer -> fc2 decoder.

* ``tap: True`` (temporal alignment, default): one neuron update per environment step; the
  neuron state is threaded across steps like a GRU hidden state; the decoder reads the spikes.
* ``tap: False`` (ablation): the state is reset at every decision, the encoded input is
  repeated for ``snn_T`` neuron steps and the decoder reads the spike rate over those steps
  (values in {0, 1/T, ..., 1}). ``hidden`` is then ignored; the returned state (the neurons'
  state at the end of the decision window) only has the right shape.

``forward`` uses the layer's reference ``step``; ``forward_seq`` uses the fused ``integrate``
(one matmul for all steps + element-wise kernel) and equals repeated ``forward``.
Spike counts: ``energy.recording.SpikeRecorder(agent)``; ``self.spiking.steps_per_decision``
is ``snn_T`` without TAP so the recorder counts decisions correctly.
"""
from __future__ import annotations

from typing import Any, Tuple

import torch.nn.functional as F
from torch import Tensor, nn

from components.packing import Packing
from modules.neurons import REGISTRY as NEURON_REGISTRY
from modules.neurons.base import State
from utils.registry import lookup

from ._common import arg, check_inputs, flat_hidden, n_actions


class SpikingAgent(nn.Module):
    """Q network with a spiking hidden layer. Hidden state: tuple of ``[batch * agents, snn_hidden_dim]``."""

    neuron: str = ""

    def __init__(self, input_shape: int, args: Any, neuron: str = "") -> None:
        super().__init__()
        self.neuron = neuron or self.neuron or arg(args, "agent", "grsn")
        layer_cls = lookup(NEURON_REGISTRY, self.neuron, what="neuron")
        name = f"SpikingAgent[{self.neuron}]"
        self.input_shape = int(input_shape)
        self.hidden_dim = int(arg(args, "snn_hidden_dim", 64))
        self.n_actions = n_actions(name, args)
        self.tap = bool(arg(args, "tap", True))
        self.T = int(arg(args, "snn_T", 4))
        if not self.tap and self.T < 1:
            raise ValueError(f"{name}: snn_T must be >= 1 without TAP, got {self.T}")
        self.fc1 = nn.Linear(self.input_shape, self.hidden_dim)
        self.spiking = layer_cls(
            self.hidden_dim, self.hidden_dim,
            threshold=float(arg(args, "snn_threshold", 1.0)),
            beta_init=float(arg(args, "snn_beta_init", 0.5)),
            beta_learnable=getattr(args, "snn_beta_learnable", None),
            surrogate_alpha=float(arg(args, "surrogate_alpha", 2.0)),
            reset=getattr(args, "snn_reset", None),
            surrogate=str(arg(args, "snn_surrogate", "atan")),
        )
        self.spiking.steps_per_decision = 1 if self.tap else self.T
        self.fc2 = nn.Linear(self.hidden_dim, self.n_actions)
        self._name = name

    def init_hidden(self, n: int) -> State:
        """Zero neuron state: tuple of ``[n, snn_hidden_dim]`` tensors (n = batch * agents)."""
        return self.spiking.init_state(n, device=self.fc1.weight.device)

    def _flat_state(self, hidden: State, n: int) -> State:
        if not isinstance(hidden, (tuple, list)) or len(hidden) != len(self.spiking.state_names):
            raise ValueError(f"{self._name}: hidden must be the tuple {self.spiking.state_names} "
                             f"from init_hidden(batch*agents), got {type(hidden).__name__}")
        return tuple(flat_hidden(self._name, h, n, self.hidden_dim) for h in hidden)

    def forward(self, inputs: Tensor, hidden: State) -> Tuple[Tensor, State]:
        """One env step: inputs ``[b, a, e]`` -> q ``[b, a, n_actions]``, new hidden (tuple of ``[b*a, H]``)."""
        check_inputs(self._name, inputs, 3, self.input_shape)
        b, a, e = inputs.shape
        n = b * a
        x = F.relu(self.fc1(inputs.reshape(n, e)))
        if self.tap:
            out, state = self.spiking.step(x, self._flat_state(hidden, n))
        else:
            state = self.spiking.init_state(n, device=x.device)
            total = None
            for _ in range(self.T):
                o, state = self.spiking.step(x, state)
                total = o if total is None else total + o
            out = total / self.T
        q = self.fc2(out)
        return q.view(b, a, self.n_actions), state

    def forward_seq(self, inputs: Tensor, hidden: State) -> Tuple[Tensor, State]:
        """Sequence: inputs ``[T, b, a, e]`` -> q ``[T, b, a, n_actions]``, hidden after the last step."""
        check_inputs(self._name, inputs, 4, self.input_shape)
        t, b, a, e = inputs.shape
        n = b * a
        x = F.relu(self.fc1(inputs.reshape(t, n, e)))
        pre = self.spiking.project(x)                        # [t, n, proj]: one matmul for all steps
        if self.tap:
            out, state = self.spiking.integrate(pre, self._flat_state(hidden, n))
        else:
            flat = pre.reshape(1, t * n, pre.shape[-1]).expand(self.T, -1, -1)
            spikes, state = self.spiking.integrate(flat, self.spiking.init_state(t * n, x.device))
            out = spikes.mean(0).view(t, n, self.hidden_dim)  # spike rate per decision
            state = tuple(s[(t - 1) * n:] for s in state)     # state after the last decision
        q = self.fc2(out)
        return q.view(t, b, a, self.n_actions), state

    def forward_packed(self, inputs: Tensor, packing: Packing) -> Tensor:
        """Packed episodes from a zero state: inputs ``[n_rows, a, e]`` (rows of ``packing``,
        time-major) -> q ``[n_rows, a, n_actions]``. Equals ``forward_seq`` on the real slots.

        The encoder, the synaptic products and the decoder run once on the real rows; with TAP
        the element-wise neuron scan runs on the rank-ordered time-major layout (padding only
        after each episode's end, so it never reaches a real slot); without TAP every decision
        is independent and the T-step scan runs on the real rows alone."""
        check_inputs(self._name, inputs, 3, self.input_shape)
        rows, a, e = inputs.shape
        x = F.relu(self.fc1(inputs.reshape(rows, a, e)))
        pre = self.spiking.project(x)                                      # [rows, a, proj]
        if self.tap:
            seq = packing.to_time_major(pre).flatten(1, 2)                 # [T, batch*a, proj]
            spikes, _ = self.spiking.integrate(seq, self.init_hidden(seq.shape[1]))
            out = packing.from_time_major(spikes.view(packing.T, packing.batch, a, self.hidden_dim))
        else:
            flat = pre.reshape(1, rows * a, pre.shape[-1]).expand(self.T, -1, -1)
            spikes, _ = self.spiking.integrate(flat, self.spiking.init_state(rows * a, x.device))
            out = spikes.mean(0).view(rows, a, self.hidden_dim)
        return self.fc2(out)


class LIFAgent(SpikingAgent):
    """Spiking agent with LIF neurons (fixed beta, hard reset by default)."""

    neuron = "lif"

    def __init__(self, input_shape: int, args: Any) -> None:
        super().__init__(input_shape, args, neuron="lif")


class GRSNAgent(SpikingAgent):
    """Spiking agent with gated recurrent spiking neurons (learnable beta, soft reset by default)."""

    neuron = "grsn"

    def __init__(self, input_shape: int, args: Any) -> None:
        super().__init__(input_shape, args, neuron="grsn")
