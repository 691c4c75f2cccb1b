"""Learnable Gaussian population encoder (PopSAN style).

Each observation dimension ``j`` is seen by ``pop`` neurons with Gaussian receptive fields
``a_{j,k} = exp(-(x_j - mu_{j,k})^2 / (2 sigma_{j,k}^2))`` on ``x = tanh(obs)`` (the means
start evenly spaced over ``mean_range``, every ``sigma`` starts at ``std``, default ``sqrt(0.05)``
as in the Proxy Target release; both are learned).
The activations drive deterministic regular spike trains over ``T`` steps: a
non-leaky accumulator ``w_t = w_{t-1} + a`` emits ``s_t = H(w_t - 0.999)`` and subtracts
1 when it fires, so a neuron with activation ``a`` fires about ``a * T`` times. The spike's
gradient is passed straight through (``ds/dw = 1``) so that ``mu`` and ``sigma`` learn.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

ENCODER_THRESHOLD = 0.999


def straight_through_spike(w: Tensor, threshold: float = ENCODER_THRESHOLD) -> Tensor:
    """``H(w - threshold)`` forward, identity gradient backward; shape of ``w``."""
    if not w.requires_grad:      # acting / no-grad forwards: the step alone (same values)
        return (w >= threshold).to(w.dtype)
    return (w >= threshold).to(w.dtype).detach() + (w - w.detach())


class PopulationEncoder(nn.Module):
    """``obs [batch, obs_dim]`` -> spike trains ``[T, batch, obs_dim * pop]``.

    Neuron ``j * pop + k`` belongs to observation dimension ``j`` and receptive field ``k``.
    """

    def __init__(self, obs_dim: int, pop: int = 10, T: int = 5,
                 mean_range: Sequence[float] = (-1.0, 1.0), std: float = 0.05 ** 0.5,
                 squash: bool = True) -> None:
        super().__init__()
        if obs_dim < 1 or pop < 2 or T < 1:
            raise ValueError(f"need obs_dim >= 1, pop >= 2, T >= 1; got {obs_dim}, {pop}, {T}")
        if std <= 0:
            raise ValueError(f"popsan encoder std must be > 0, got {std}")
        lo, hi = float(mean_range[0]), float(mean_range[1])
        if not hi > lo:
            raise ValueError(f"popsan encoder mean_range must be increasing, got {mean_range}")
        self.obs_dim, self.pop, self.T, self.squash = obs_dim, pop, T, squash
        means = torch.linspace(lo, hi, pop).repeat(obs_dim, 1)          # [obs_dim, pop]
        self.mean = nn.Parameter(means)
        self.std = nn.Parameter(torch.full((obs_dim, pop), float(std)))

    @property
    def out_dim(self) -> int:
        """Number of encoder neurons, ``obs_dim * pop``."""
        return self.obs_dim * self.pop

    def activations(self, obs: Tensor) -> Tensor:
        """Receptive-field activations in (0, 1], ``[batch, obs_dim * pop]``."""
        if obs.dim() != 2 or obs.shape[1] != self.obs_dim:
            raise ValueError(f"encoder expects obs [batch, {self.obs_dim}], got {tuple(obs.shape)}")
        x = torch.tanh(obs) if self.squash else obs
        z = (x.unsqueeze(-1) - self.mean) / self.std                   # [batch, obs_dim, pop]
        return torch.exp(-0.5 * z * z).reshape(obs.shape[0], self.out_dim)

    def forward(self, obs: Tensor) -> Tensor:
        """Deterministic regular spike trains, ``[T, batch, obs_dim * pop]`` of 0/1."""
        act = self.activations(obs)
        w = torch.zeros_like(act)
        spikes = []
        for _ in range(self.T):
            w = w + act
            s = straight_through_spike(w)
            w = w - s * 1.0
            spikes.append(s)
        return torch.stack(spikes, 0)
