"""Actor for single-agent recurrent RL in POMDPs (separate from the critic, after Ni et al. 2022).

Per step ``t`` the actor reads ``(prev_action_{t}, prev_reward_{t}, obs_t)`` where
``prev_action_t = a_{t-1}`` and ``prev_reward_t = r_{t-1}`` (zeros at ``t = 0``):

    x_t = [ReLU(W_o o_t) (32), ReLU(W_a a_{t-1}) (8), ReLU(W_r r_{t-1}) (8)]
    h_t, state = core.step(x_t, state)              # mlp | gru | lif | grsn, hidden 128
    TD3:   mu_t = tanh(MLP[128, 128](h_t))          # deterministic action in [-1, 1]^act_dim
    SAC-d: logits_t = MLP[128, 128](h_t)            # categorical over n actions

Spiking cores output spikes, so the head reads spikes. Discrete previous actions are fed as
one-hot vectors (all zero before the first action).
"""
from __future__ import annotations

from typing import Any, Tuple

import torch
from torch import Tensor, nn

from modules.sequence_cores import State, build_core
from modules.mlp import mlp


class TrajectoryEmbedder(nn.Module):
    """Embeds ``obs [..., obs_dim]``, ``prev_act [..., act_in]``, ``prev_rew [..., 1]`` and concatenates.

    Output ``[..., obs_embed + act_embed + rew_embed]``. A zero embedding size drops that input.
    """

    def __init__(self, obs_dim: int, act_in: int, obs_embed: int = 32, act_embed: int = 8,
                 rew_embed: int = 8) -> None:
        super().__init__()
        self.obs_fc = nn.Linear(obs_dim, obs_embed) if obs_embed > 0 else None
        self.act_fc = nn.Linear(act_in, act_embed) if act_embed > 0 else None
        self.rew_fc = nn.Linear(1, rew_embed) if rew_embed > 0 else None
        self.out_dim = int(obs_embed) + int(act_embed) + int(rew_embed)
        if self.obs_fc is None:
            raise ValueError("the observation embedding size must be > 0.")

    def forward(self, obs: Tensor, prev_act: Tensor, prev_rew: Tensor) -> Tensor:
        parts = [torch.relu(self.obs_fc(obs))]
        if self.act_fc is not None:
            parts.append(torch.relu(self.act_fc(prev_act)))
        if self.rew_fc is not None:
            parts.append(torch.relu(self.rew_fc(prev_rew)))
        return torch.cat(parts, dim=-1)


class SequenceModel(nn.Module):
    """Embedder + sequence core: the memory part shared in design by actor and critic."""

    def __init__(self, obs_dim: int, act_in: int, args: Any) -> None:
        super().__init__()
        self.embedder = TrajectoryEmbedder(obs_dim, act_in, int(getattr(args, "po_obs_embed", 32)),
                                           int(getattr(args, "po_action_embed", 8)),
                                           int(getattr(args, "po_reward_embed", 8)))
        self.core = build_core(getattr(args, "agent", "gru"), self.embedder.out_dim,
                               int(getattr(args, "po_hidden_dim", 128)), args)
        self.hidden_dim = self.core.hidden_dim

    def init_state(self, batch: int) -> State:
        """Zero core state for ``batch`` sequences."""
        return self.core.init_state(batch)

    def features(self, obs: Tensor, prev_act: Tensor, prev_rew: Tensor,
                 state: State) -> Tuple[Tensor, State]:
        """Unroll over ``obs [T, B, obs_dim]``, ``prev_act [T, B, act_in]``, ``prev_rew [T, B, 1]``.

        Returns core outputs ``[T, B, hidden]`` and the final state.
        """
        return self.core.unroll(self.embedder(obs, prev_act, prev_rew), state)

    def step_features(self, obs: Tensor, prev_act: Tensor, prev_rew: Tensor,
                      state: State) -> Tuple[Tensor, State]:
        """One step on ``[B, ...]`` inputs: core output ``[B, hidden]`` and the next state."""
        return self.core.step(self.embedder(obs, prev_act, prev_rew), state)


class POActor(SequenceModel):
    """Recurrent actor. ``discrete=False``: deterministic tanh policy over ``act_dim`` dims (TD3);
    ``discrete=True``: categorical over ``act_dim`` actions (SAC-discrete)."""

    def __init__(self, obs_dim: int, act_dim: int, discrete: bool, args: Any) -> None:
        super().__init__(obs_dim, act_dim, args)
        self.act_dim = int(act_dim)
        self.discrete = bool(discrete)
        self.head = mlp(self.hidden_dim, list(getattr(args, "po_head_layers", [128, 128])), self.act_dim)

    def head_out(self, feat: Tensor) -> Tensor:
        """``feat [..., hidden]`` -> action in [-1, 1] ``[..., act_dim]`` (TD3) or logits (SAC-d)."""
        out = self.head(feat)
        return out if self.discrete else torch.tanh(out)

    def forward(self, obs: Tensor, prev_act: Tensor, prev_rew: Tensor,
                state: State) -> Tuple[Tensor, State]:
        """Sequence forward ``[T, B, ...]`` -> (``head_out [T, B, act_dim]``, final state)."""
        feat, state = self.features(obs, prev_act, prev_rew, state)
        return self.head_out(feat), state

    def step(self, obs: Tensor, prev_act: Tensor, prev_rew: Tensor,
             state: State) -> Tuple[Tensor, State]:
        """One act-time step on ``[B, ...]`` inputs -> (``head_out [B, act_dim]``, next state)."""
        feat, state = self.step_features(obs, prev_act, prev_rew, state)
        return self.head_out(feat), state
