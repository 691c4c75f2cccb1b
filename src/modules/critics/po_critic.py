"""Twin Q critic for single-agent recurrent RL in POMDPs, with its own embedders and core.

    h_t = core(embed(o_t, a_{t-1}, r_{t-1}), state)                 # as in the actor, own weights
    continuous (TD3):  Q_i(h_t, a_t) = MLP_i[128, 128]([h_t, a_t]) -> [..., 1],  i = 1, 2
    discrete (SAC-d):  Q_i(h_t, .)   = MLP_i[128, 128](h_t)        -> [..., n_actions]

Both Q heads share the memory (embedders + core), which is trained by the critic loss only.
"""
from __future__ import annotations

from typing import Any, Optional, Tuple

import torch
from torch import Tensor

from modules.agents.po_actor import SequenceModel
from modules.mlp import mlp


class POTwinCritic(SequenceModel):
    """Twin Q over a recurrent summary of the history; see module docstring."""

    def __init__(self, obs_dim: int, act_dim: int, discrete: bool, args: Any) -> None:
        super().__init__(obs_dim, act_dim, args)
        self.act_dim = int(act_dim)
        self.discrete = bool(discrete)
        layers = list(getattr(args, "po_head_layers", [128, 128]))
        in_dim = self.hidden_dim + (0 if self.discrete else self.act_dim)
        out_dim = self.act_dim if self.discrete else 1
        self.q1 = mlp(in_dim, layers, out_dim)
        self.q2 = mlp(in_dim, layers, out_dim)

    def q_values(self, feat: Tensor, action: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """``feat [..., hidden]`` (+ ``action [..., act_dim]`` when continuous) -> ``(q1, q2)``,
        each ``[..., 1]`` (continuous) or ``[..., n_actions]`` (discrete)."""
        if self.discrete:
            return self.q1(feat), self.q2(feat)
        if action is None:
            raise ValueError("a continuous-action critic needs the action to evaluate.")
        x = torch.cat([feat, action], dim=-1)
        return self.q1(x), self.q2(x)
