"""VDN mixer: the joint value is the sum of the agents' values."""
from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn


class VDNMixer(nn.Module):
    """``forward(agent_qs [B, T, agents], states) -> q_tot [B, T, 1]`` (states unused)."""

    def __init__(self, n_agents: int = 0, state_dim: int = 0, args: Any = None) -> None:
        super().__init__()

    def forward(self, agent_qs: torch.Tensor, states: torch.Tensor = None) -> torch.Tensor:
        return agent_qs.sum(dim=-1, keepdim=True)
