"""Leaky integrate-and-fire layer (GRSN paper Eqs. 1-5).

    c_t = W x_t + b
    u_t = beta * uhat_{t-1} + (1 - beta) * c_t
    o_t = H(u_t - theta)
    uhat_t = (1 - o_t) * u_t              (hard reset to u_r = 0, the LIF default)
    uhat_t = u_t - theta * o_t            (soft reset)

beta: per-neuron buffer (fixed, default 0.5) unless ``beta_learnable`` (then sigmoid of a
parameter). State: ``(uhat,)``, each ``[batch, hidden]``.
"""
from __future__ import annotations

from typing import Tuple

from torch import Tensor

from .base import SpikingLayer, State
from .scan import membrane_scan


class LIFLayer(SpikingLayer):
    """Linear synapses ``input_dim -> hidden_dim`` feeding LIF neurons; outputs 0/1 spikes."""

    default_reset = "hard"
    default_beta_learnable = False
    state_names = ("uhat",)

    def integrate(self, pre: Tensor, state: State) -> Tuple[Tensor, State]:
        """Membrane recursion over currents ``pre[T, batch, hidden]`` -> spikes ``[T, batch, hidden]``."""
        if pre.dim() != 3 or pre.shape[-1] != self.proj_dim:
            raise ValueError(f"LIFLayer.integrate: pre must be [T, batch, {self.proj_dim}] "
                             f"(from project), got {list(pre.shape)}")
        (uhat,) = self._check_state(state, pre.shape[1])
        spikes, uhat, u = membrane_scan(pre, uhat, self.beta, self.threshold, self.soft_reset,
                                        self.surrogate, self.surrogate_alpha)
        if self._recorders:
            self._record(spikes, u)
        return spikes, (uhat,)

    def step(self, x: Tensor, state: State) -> Tuple[Tensor, State]:
        """One update: ``x[batch, input_dim]`` -> spikes ``[batch, hidden]``, ``(uhat,)``."""
        self._check_input(x, 2, "step")
        (uhat,) = self._check_state(state, x.shape[0])
        beta = self.beta
        c = self.project(x)
        u = beta * uhat + (1.0 - beta) * c
        o, uhat = self._fire(u)
        if self._recorders:
            self._record(o, u)
        return o, (uhat,)
