"""Gated recurrent spiking neuron layer (GRSN paper Eqs. 12-14).

    f_t = sigmoid(W_f x_t + b_f)               forget gate
    j_t = ReLU(W_i x_t + b_i)                  input
    c_t = f_t * c_{t-1} + (1 - f_t) * j_t      gated recurrent current
    u_t = beta * uhat_{t-1} + (1 - beta) * c_t
    o_t = H(u_t - theta)
    uhat_t = u_t - theta * o_t                 (soft reset, the GRSN default; "hard": (1 - o_t) * u_t)

beta: learnable per neuron (sigmoid of ``beta_raw``, initial ``beta_init``) by default, else a
buffer. ``self.linear`` holds ``[W_f; W_i]`` stacked: output rows ``[:hidden]`` are the forget
gate, ``[hidden:]`` the input. State: ``(c, uhat)``, each ``[batch, hidden]``.
The gates depend on ``x_t`` only, so ``unroll`` computes them for all steps in one matmul;
only the element-wise recursions of ``c`` and ``u`` run step by step (fused kernels).
"""
from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor

from .base import SpikingLayer, State
from .scan import gated_scan, membrane_scan


class GRSNLayer(SpikingLayer):
    """Gated synapses ``input_dim -> 2 * hidden_dim`` feeding GRSN neurons; outputs 0/1 spikes."""

    default_reset = "soft"
    default_beta_learnable = True
    state_names = ("c", "uhat")
    n_projections = 2

    def _gates(self, pre: Tensor) -> Tuple[Tensor, Tensor]:
        """``(f, (1 - f) * j)`` from pre-activations ``[..., 2 * hidden]``, each ``[..., hidden]``."""
        f_pre, j_pre = pre.split(self.hidden_dim, dim=-1)
        f = torch.sigmoid(f_pre)
        return f, (1.0 - f) * torch.relu(j_pre)

    def integrate(self, pre: Tensor, state: State) -> Tuple[Tensor, State]:
        """Recursions over ``pre[T, batch, 2 * hidden]`` -> spikes ``[T, batch, hidden]``, ``(c, uhat)``."""
        if pre.dim() != 3 or pre.shape[-1] != self.proj_dim:
            raise ValueError(f"GRSNLayer.integrate: pre must be [T, batch, {self.proj_dim}] "
                             f"(from project), got {list(pre.shape)}")
        c, uhat = self._check_state(state, pre.shape[1])
        C = gated_scan(pre, c)
        spikes, uhat, u = membrane_scan(C, uhat, self.beta, self.threshold, self.soft_reset,
                                        self.surrogate, self.surrogate_alpha)
        if self._recorders:
            self._record(spikes, u)
        c_end = C[-1] if C.shape[0] > 0 else c
        return spikes, (c_end, uhat)

    def step(self, x: Tensor, state: State) -> Tuple[Tensor, State]:
        """One update: ``x[batch, input_dim]`` -> spikes ``[batch, hidden]``, ``(c, uhat)``."""
        self._check_input(x, 2, "step")
        c, uhat = self._check_state(state, x.shape[0])
        beta = self.beta
        f, drive = self._gates(self.project(x))
        c = f * c + drive
        u = beta * uhat + (1.0 - beta) * c
        o, uhat = self._fire(u)
        if self._recorders:
            self._record(o, u)
        return o, (c, uhat)
