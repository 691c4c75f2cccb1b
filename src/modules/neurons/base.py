"""Common machinery of spiking layers: constructor checks, decay factor, state, recording hook.

A spiking layer owns its synaptic weights (``self.linear``) and exposes

* ``init_state(batch, device=None) -> tuple`` of zero tensors ``[batch, hidden]``;
* ``step(x[batch, input_dim], state) -> (spikes[batch, hidden], state)``: one neuron update,
  written straight from the equations with autograd through the surrogate spike (reference);
* ``unroll(x[T, batch, input_dim], state) -> (spikes[T, batch, hidden], state)``: the same
  as ``T`` calls of ``step`` but with all input products in one matmul (``project``) and the
  element-wise recursion in a fused kernel (``integrate``, see ``scan.py``).

``project(x[..., input_dim]) -> pre[..., proj_dim]`` and ``integrate(pre[T, batch, proj_dim],
state)`` are public so callers can reuse one projection for repeated input (no-TAP rate coding).
"""
from __future__ import annotations

import math
from typing import List, Optional, Tuple

import torch
from torch import Tensor, nn

from utils.registry import lookup

from .surrogate import SURROGATES, spike

State = Tuple[Tensor, ...]
RESETS = ("soft", "hard")


class SpikingLayer(nn.Module):
    """Base class: decay ``beta`` (per neuron), threshold, reset mode, surrogate, recorders.

    Subclasses set ``default_reset``, ``default_beta_learnable``, ``state_names`` and
    ``n_projections`` (input products per neuron: the synapse ``linear`` maps
    ``input_dim -> n_projections * hidden_dim = proj_dim``) and implement ``project``,
    ``integrate`` and ``step``.
    """

    default_reset: str = "hard"
    default_beta_learnable: bool = False
    state_names: Tuple[str, ...] = ("uhat",)
    n_projections: int = 1

    def __init__(self, input_dim: int, hidden_dim: int, threshold: float = 1.0,
                 beta_init: float = 0.5, beta_learnable: Optional[bool] = None,
                 surrogate_alpha: float = 2.0, reset: Optional[str] = None,
                 surrogate: str = "atan") -> None:
        super().__init__()
        name = type(self).__name__
        if int(input_dim) <= 0 or int(hidden_dim) <= 0:
            raise ValueError(f"{name}: input_dim and hidden_dim must be positive, got "
                             f"{input_dim} and {hidden_dim}")
        if not threshold > 0:
            raise ValueError(f"{name}: threshold must be > 0, got {threshold} (set snn_threshold)")
        if not surrogate_alpha > 0:
            raise ValueError(f"{name}: surrogate_alpha must be > 0, got {surrogate_alpha}")
        lookup(SURROGATES, surrogate, what="surrogate")
        reset = self.default_reset if reset is None else reset
        if reset not in RESETS:
            raise ValueError(f"{name}: reset must be one of {RESETS} (or null for the neuron "
                             f"default '{self.default_reset}'), got {reset!r} (set snn_reset)")
        learnable = self.default_beta_learnable if beta_learnable is None else bool(beta_learnable)
        beta_init = float(beta_init)
        if learnable and not 0.0 < beta_init < 1.0:
            raise ValueError(f"{name}: a learnable beta is sigmoid(raw), so beta_init must be in "
                             f"(0, 1), got {beta_init} (set snn_beta_init)")
        if not 0.0 <= beta_init <= 1.0:
            raise ValueError(f"{name}: beta_init must be in [0, 1], got {beta_init} (set snn_beta_init)")

        self.input_dim = int(input_dim)
        self.hidden_dim = int(hidden_dim)
        self.threshold = float(threshold)
        self.surrogate = surrogate
        self.surrogate_alpha = float(surrogate_alpha)
        self.reset_mode = reset
        self.beta_learnable = learnable
        if learnable:
            raw = math.log(beta_init / (1.0 - beta_init))
            self.beta_raw = nn.Parameter(torch.full((self.hidden_dim,), raw))
        else:
            self.register_buffer("beta_fixed", torch.full((self.hidden_dim,), beta_init))
        self.proj_dim = self.n_projections * self.hidden_dim
        self.linear = nn.Linear(self.input_dim, self.proj_dim)
        # neuron steps that make one decision (set by agents that rate-code without TAP)
        self.steps_per_decision = 1
        self._recorders: List = []  # filled by energy.recording.SpikeRecorder; empty = no cost

    def __getstate__(self):
        # copies (deepcopy for target networks, pickling) start without attached recorders
        state = super().__getstate__() if hasattr(super(), "__getstate__") else self.__dict__
        state = dict(state)
        state["_recorders"] = []
        return state

    # ------------------------------------------------------------------ parameters
    @property
    def beta(self) -> Tensor:
        """Decay factor per neuron, shape ``[hidden]`` (sigmoid of ``beta_raw`` when learnable)."""
        if self.beta_learnable:
            return torch.sigmoid(self.beta_raw)
        return self.beta_fixed

    @property
    def soft_reset(self) -> bool:
        return self.reset_mode == "soft"

    def extra_repr(self) -> str:
        return (f"input_dim={self.input_dim}, hidden_dim={self.hidden_dim}, "
                f"threshold={self.threshold}, reset={self.reset_mode}, "
                f"beta_learnable={self.beta_learnable}, surrogate={self.surrogate}"
                f"(alpha={self.surrogate_alpha})")

    # ------------------------------------------------------------------ state
    def init_state(self, batch: int, device: Optional[torch.device] = None) -> State:
        """Zero state: tuple of ``len(state_names)`` tensors ``[batch, hidden]``."""
        ref = next(iter(self.parameters()))
        device = ref.device if device is None else device
        return tuple(torch.zeros(batch, self.hidden_dim, device=device, dtype=ref.dtype)
                     for _ in self.state_names)

    def _check_state(self, state: State, batch: int) -> State:
        if not isinstance(state, (tuple, list)) or len(state) != len(self.state_names):
            raise ValueError(f"{type(self).__name__}: state must be a tuple {self.state_names} of "
                             f"[batch, {self.hidden_dim}] tensors (use init_state(batch)), got "
                             f"{type(state).__name__} of length "
                             f"{len(state) if isinstance(state, (tuple, list)) else '-'}")
        for s in state:
            if s.shape != (batch, self.hidden_dim):
                raise ValueError(f"{type(self).__name__}: state tensors must be "
                                 f"[{batch}, {self.hidden_dim}], got {list(s.shape)}")
        return tuple(state)

    def _check_input(self, x: Tensor, ndim: int, what: str) -> None:
        if x.dim() != ndim or x.shape[-1] != self.input_dim:
            raise ValueError(f"{type(self).__name__}.{what}: input must be "
                             f"{'[T, batch, ' if ndim == 3 else '[batch, '}{self.input_dim}], "
                             f"got {list(x.shape)}")

    # ------------------------------------------------------------------ dynamics
    def _fire(self, u: Tensor) -> Tuple[Tensor, Tensor]:
        """Spike and reset for one step: returns ``(o_t, uhat_t)`` from the membrane ``u_t``."""
        o = spike(u - self.threshold, self.surrogate, self.surrogate_alpha)
        if self.soft_reset:
            uhat = u - self.threshold * o
        else:  # hard reset to u_r = 0
            uhat = (1.0 - o) * u
        return o, uhat

    def project(self, x: Tensor) -> Tensor:
        """Input products for any leading shape: ``x[..., input_dim] -> pre[..., proj_dim]``
        (LIF: currents ``W x + b``; GRSN: gate pre-activations ``[W_f; W_i] x + b``)."""
        return self.linear(x)

    def integrate(self, pre: Tensor, state: State) -> Tuple[Tensor, State]:
        """Run the recursion over projected inputs ``pre[T, batch, proj_dim]`` (fused kernel)."""
        raise NotImplementedError

    def step(self, x: Tensor, state: State) -> Tuple[Tensor, State]:
        """One neuron update: ``x[batch, input_dim]`` -> spikes ``[batch, hidden]``, new state."""
        raise NotImplementedError

    def unroll(self, x: Tensor, state: State) -> Tuple[Tensor, State]:
        """``T`` neuron updates: ``x[T, batch, input_dim]`` -> spikes ``[T, batch, hidden]``, state."""
        self._check_input(x, 3, "unroll")
        return self.integrate(self.project(x), state)

    # ------------------------------------------------------------------ recording
    def _record(self, spikes: Tensor, membrane: Tensor) -> None:
        """Hand spikes and pre-reset membrane (same shape ``[..., batch, hidden]``) to recorders."""
        for rec in self._recorders:
            rec.add(spikes, membrane, self.steps_per_decision)
