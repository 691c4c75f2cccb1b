"""QMIX mixer: a monotonic mixing network whose weights come from state hypernetworks."""
from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F


def _hypernet(state_dim: int, out_dim: int, layers: int, embed: int) -> nn.Module:
    if layers == 1:
        return nn.Linear(state_dim, out_dim)
    if layers == 2:
        return nn.Sequential(nn.Linear(state_dim, embed), nn.ReLU(), nn.Linear(embed, out_dim))
    raise ValueError(f"hypernet_layers must be 1 or 2, got {layers}.")


class QMixer(nn.Module):
    """``forward(agent_qs [B, T, agents], states [B, T, state_dim]) -> q_tot [B, T, 1]``.

    The mixing weights are absolute values of hypernetwork outputs, so dQ_tot/dQ_a >= 0.
    """

    def __init__(self, n_agents: int, state_dim: int, args: Any) -> None:
        super().__init__()
        self.n_agents, self.state_dim = n_agents, state_dim
        self.embed_dim = args.mixing_embed_dim
        layers, hyper = args.hypernet_layers, args.hypernet_embed
        self.hyper_w1 = _hypernet(state_dim, self.embed_dim * n_agents, layers, hyper)
        self.hyper_w_final = _hypernet(state_dim, self.embed_dim, layers, hyper)
        self.hyper_b1 = nn.Linear(state_dim, self.embed_dim)
        self.value = nn.Sequential(nn.Linear(state_dim, self.embed_dim), nn.ReLU(), nn.Linear(self.embed_dim, 1))

    def forward(self, agent_qs: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
        lead = agent_qs.shape[:-1]
        qs = agent_qs.reshape(-1, 1, self.n_agents)
        s = states.reshape(-1, self.state_dim)
        w1 = self.hyper_w1(s).abs().view(-1, self.n_agents, self.embed_dim)
        b1 = self.hyper_b1(s).view(-1, 1, self.embed_dim)
        hidden = F.elu(torch.bmm(qs, w1) + b1)
        w_final = self.hyper_w_final(s).abs().view(-1, self.embed_dim, 1)
        v = self.value(s).view(-1, 1, 1)
        return (torch.bmm(hidden, w_final) + v).view(*lead, 1)
