"""Twin Q critic for TD3 on MuJoCo: two independent MLPs (default 256-256 ReLU) on ``[obs, action]``."""
from __future__ import annotations

from typing import Sequence, Tuple

import torch
from torch import Tensor, nn

from modules.mlp import mlp


class TwinQCritic(nn.Module):
    """``Q1, Q2 (obs [batch, obs_dim], action [batch, act_dim]) -> [batch, 1]`` each."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int] = (256, 256)) -> None:
        super().__init__()
        self.q1_net = mlp(obs_dim + act_dim, hidden, 1)
        self.q2_net = mlp(obs_dim + act_dim, hidden, 1)

    def forward(self, obs: Tensor, action: Tensor) -> Tuple[Tensor, Tensor]:
        """Both Q estimates, each ``[batch, 1]``."""
        x = torch.cat([obs, action], dim=-1)
        return self.q1_net(x), self.q2_net(x)

    def q1(self, obs: Tensor, action: Tensor) -> Tensor:
        """The first Q estimate only (used by the actor loss), ``[batch, 1]``."""
        return self.q1_net(torch.cat([obs, action], dim=-1))
