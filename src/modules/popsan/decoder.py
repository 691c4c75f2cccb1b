"""Population decoder: firing rates of the output population -> actions.

Every action dimension ``i`` owns ``pop`` output neurons; its raw action is a linear readout
of their firing rates, ``y_i = sum_k W_{i,k} r_{i,k} + b_i`` (a grouped 1-d convolution in
PopSAN), and the action is ``max_action * tanh(y)``.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class PopulationDecoder(nn.Module):
    """``rates [batch, act_dim * pop]`` -> raw actions ``[batch, act_dim]`` (before tanh)."""

    def __init__(self, act_dim: int, pop: int = 10) -> None:
        super().__init__()
        if act_dim < 1 or pop < 1:
            raise ValueError(f"need act_dim >= 1 and pop >= 1, got {act_dim}, {pop}")
        self.act_dim, self.pop = act_dim, pop
        bound = 1.0 / math.sqrt(pop)
        self.weight = nn.Parameter(torch.empty(act_dim, pop).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(act_dim).uniform_(-bound, bound))

    def forward(self, rates: Tensor) -> Tensor:
        """Per-action readout of ``rates [batch, act_dim * pop]`` -> ``[batch, act_dim]``."""
        if rates.dim() != 2 or rates.shape[1] != self.act_dim * self.pop:
            raise ValueError(f"decoder expects rates [batch, {self.act_dim * self.pop}], "
                             f"got {tuple(rates.shape)}")
        grouped = rates.view(rates.shape[0], self.act_dim, self.pop)
        return (grouped * self.weight).sum(-1) + self.bias
