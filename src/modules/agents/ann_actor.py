"""MLP actors for TD3 on MuJoCo: the ANN actor (256-256) and the proxy-target network (512-512).

Both are ``obs [batch, obs_dim] -> max_action * tanh(MLP(obs)) [batch, act_dim]`` with ReLU hidden
layers on the raw state.
"""
from __future__ import annotations

from typing import Sequence, Union

import torch
from torch import Tensor, nn
from modules.mlp import mlp


def action_bound(max_action: Union[float, Sequence[float]], act_dim: int) -> Tensor:
    """Symmetric action bounds ``[act_dim]`` from a float or a per-dimension sequence."""
    max_a = torch.as_tensor(max_action, dtype=torch.float32).reshape(-1)
    if max_a.numel() == 1:
        max_a = max_a.repeat(act_dim)
    if max_a.numel() != act_dim:
        raise ValueError(f"max_action has {max_a.numel()} entries, expected {act_dim}")
    return max_a


class ANNActor(nn.Module):
    """Deterministic MLP policy ``obs [batch, obs_dim] -> action [batch, act_dim]``.

    ``max_action``: a float or a per-dimension sequence (symmetric bounds ``[-m, m]``).
    """

    def __init__(self, obs_dim: int, act_dim: int, max_action: Union[float, Sequence[float]],
                 hidden: Sequence[int] = (256, 256)) -> None:
        super().__init__()
        self.net = mlp(obs_dim, hidden, act_dim)
        self.register_buffer("max_action", action_bound(max_action, act_dim))

    def forward(self, obs: Tensor) -> Tensor:
        """``obs [batch, obs_dim]`` -> ``[batch, act_dim]`` in ``[-max_action, max_action]``."""
        return self.max_action * torch.tanh(self.net(obs))


def make_proxy_actor(obs_dim: int, act_dim: int, max_action: Union[float, Sequence[float]],
                     hidden: Sequence[int] = (512, 512)) -> ANNActor:
    """The proxy-target network: an ANN actor (default 512-512 ReLU, tanh) on the raw state."""
    return ANNActor(obs_dim, act_dim, max_action, hidden)
