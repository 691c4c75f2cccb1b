"""Twin Q critic for single-agent recurrent RL in POMDPs, with its own embedders and core.

    h_t = core(embed(o_t, a_{t-1}, r_{t-1}), state)                 # as in the actor, own weights
    continuous (TD3):  s_t = ReLU(W_s [o_t, a_t]) (48)                # shortcut of obs and action
                       Q_i(h_t, o_t, a_t) = MLP_i[128, 128]([h_t, s_t]) -> [..., 1]
    discrete (SAC-d):  s_t = ReLU(W_s o_t) (48)                       # shortcut of obs only
                       Q_i(h_t, o_t, .)   = MLP_i[128, 128]([h_t, s_t]) -> [..., n_actions]

The shortcut's width is the core's input width (``po_obs_embed + po_action_embed +
po_reward_embed`` = 48), as in pomdp-baselines' and the GRSN authors' critics. With
``po_shortcut=False`` the heads read ``[h_t, a_t]`` (continuous) or ``h_t`` (discrete).
Both Q heads share the memory (embedders + core), which is trained by the critic loss only.
"""
from __future__ import annotations

from typing import Any, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from modules.agents.po_actor import CRITIC_LAST_BOUND, SequenceModel, Shortcut, init_head, uses_shortcut
from modules.mlp import mlp


class POTwinCritic(SequenceModel):
    """Twin Q over a recurrent summary of the history; see module docstring."""

    def __init__(self, obs_dim: int, act_dim: int, discrete: bool, args: Any) -> None:
        super().__init__(obs_dim, act_dim, args)
        self.act_dim = int(act_dim)
        self.discrete = bool(discrete)
        layers = list(getattr(args, "po_head_layers", [128, 128]))
        self.shortcut: Optional[Shortcut] = None
        if uses_shortcut(args):
            short_in = obs_dim + (0 if self.discrete else self.act_dim)
            self.shortcut = Shortcut(short_in, self.embedder.out_dim)
            in_dim = self.hidden_dim + self.shortcut.out_dim
        else:
            in_dim = self.hidden_dim + (0 if self.discrete else self.act_dim)
        out_dim = self.act_dim if self.discrete else 1
        self.q1 = mlp(in_dim, layers, out_dim)
        self.q2 = mlp(in_dim, layers, out_dim)
        init_head(self.q1, self.head_init, CRITIC_LAST_BOUND)
        init_head(self.q2, self.head_init, CRITIC_LAST_BOUND)

    def q_values(self, feat: Tensor, obs: Tensor, action: Optional[Tensor] = None,
                 const_feat: bool = False) -> Tuple[Tensor, Tensor]:
        """``feat [..., hidden]``, the current ``obs [..., obs_dim]`` (+ ``action [..., act_dim]``
        when continuous) -> ``(q1, q2)``, each ``[..., 1]`` (continuous) or ``[..., n_actions]``
        (discrete).

        ``const_feat=True`` (for the TD3 actor loss: ``feat`` and the critic's weights need no
        gradient, only the action) splits each head's first layer ``W [feat, s] + b`` into
        ``W_feat feat + (W_s s + b)`` so the backward pass skips the ``feat`` columns; same values."""
        if not self.discrete and action is None:
            raise ValueError("a continuous-action critic needs the action to evaluate.")
        if self.shortcut is not None:
            x = obs if self.discrete else torch.cat([obs, action], dim=-1)
            rest = self.shortcut(x)
        else:
            rest = None if self.discrete else action
        if rest is None:
            return self.q1(feat), self.q2(feat)
        if not const_feat:
            x = torch.cat([feat, rest], dim=-1)
            return self.q1(x), self.q2(x)
        return self._split_first(self.q1, feat, rest), self._split_first(self.q2, feat, rest)

    @staticmethod
    def _split_first(head: nn.Sequential, feat: Tensor, rest: Tensor) -> Tensor:
        """``head(cat([feat, rest]))`` with the first Linear applied to the two parts separately."""
        first, h = head[0], feat.shape[-1]
        if torch.is_grad_enabled() and (feat.requires_grad or first.weight.requires_grad):
            raise ValueError("q_values(const_feat=True) needs feat without gradient and a frozen critic "
                             "(utils.rl_utils.frozen); use const_feat=False to train through them.")
        with torch.no_grad():
            pre_feat = F.linear(feat, first.weight[:, :h])
        return head[1:](F.linear(rest, first.weight[:, h:], first.bias) + pre_feat)
