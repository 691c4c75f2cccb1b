"""Actor for single-agent recurrent RL in POMDPs (separate from the critic, after Ni et al. 2022).

Per step ``t`` the actor reads ``(prev_action_{t}, prev_reward_{t}, obs_t)`` where
``prev_action_t = a_{t-1}`` and ``prev_reward_t = r_{t-1}`` (zeros at ``t = 0``):

    x_t = [ReLU(W_o o_t) (32), ReLU(W_a a_{t-1}) (8), ReLU(W_r r_{t-1}) (8)]
    h_t, state = core.step(x_t, state)              # mlp | gru | lif | grsn, hidden 128
    s_t = ReLU(W_s o_t) (32)                        # shortcut of the current observation
    z_t = [h_t, s_t]                                # po_shortcut=False: z_t = h_t
    TD3:   mu_t = tanh(MLP[128, 128](z_t))          # deterministic action in [-1, 1]^act_dim
    SAC-d: logits_t = MLP[128, 128](z_t)            # categorical over n actions

The shortcut is pomdp-baselines' (and the GRSN authors') "current observation branch": its
width is the observation embedding's (``po_obs_embed``). Spiking cores output spikes, so the
head reads spikes beside the real-valued shortcut. Discrete previous actions are fed as
one-hot vectors (all zero before the first action).

Head initialisation (``po_head_init``): ``authors`` = the authors' code (every hidden layer
``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` weights and bias 0.1, last layer weights and bias
``U(-b, b)`` with ``b`` = 1e-3 for the actor, 3e-3 for the critic); ``torch`` = PyTorch's
``nn.Linear`` default.
"""
from __future__ import annotations

import math
from typing import Any, Optional, Tuple

import torch
from torch import Tensor, nn

from modules.sequence_cores import State, build_core
from modules.mlp import mlp

HEAD_INITS = ("authors", "torch")
ACTOR_LAST_BOUND = 1e-3   # authors' code: last actor layer U(-1e-3, 1e-3)
CRITIC_LAST_BOUND = 3e-3  # authors' code: last Q layer U(-3e-3, 3e-3)
HIDDEN_BIAS = 0.1         # authors' code: hidden-layer bias


def init_head(head: nn.Sequential, scheme: str, last_bound: float) -> None:
    """Initialise an ``mlp`` head in place by ``scheme`` (see module docstring).

    ``authors``: hidden Linear weights ``U(+-1/sqrt(in_features))`` and bias 0.1, the last
    Linear's weights and bias ``U(+-last_bound)``. The authors' helper takes the bound from
    the weight's first dimension (``out_features`` in PyTorch's layout); we use the true
    fan-in. ``torch``: leave PyTorch's default.
    """
    if scheme not in HEAD_INITS:
        raise ValueError(f"po_head_init must be one of {list(HEAD_INITS)}, got {scheme!r}.")
    if scheme == "torch":
        return
    linears = [m for m in head if isinstance(m, nn.Linear)]
    with torch.no_grad():
        for lin in linears[:-1]:
            bound = 1.0 / math.sqrt(lin.in_features)
            lin.weight.uniform_(-bound, bound)
            lin.bias.fill_(HIDDEN_BIAS)
        linears[-1].weight.uniform_(-last_bound, last_bound)
        linears[-1].bias.uniform_(-last_bound, last_bound)


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


class Shortcut(nn.Module):
    """``ReLU(Linear(in_dim -> out_dim))`` of the current input, read by the head beside the core."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.fc = nn.Linear(int(in_dim), int(out_dim))
        self.out_dim = int(out_dim)

    def forward(self, x: Tensor) -> Tensor:
        """``x [..., in_dim]`` -> ``[..., out_dim]``."""
        return torch.relu(self.fc(x))


def uses_shortcut(args: Any) -> bool:
    """``po_shortcut`` (default True); must be a bool."""
    value = getattr(args, "po_shortcut", True)
    if not isinstance(value, bool):
        raise ValueError(f"po_shortcut must be True or False, got {value!r}.")
    return value


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
        self.head_init = str(getattr(args, "po_head_init", "authors"))
        if self.head_init not in HEAD_INITS:
            raise ValueError(f"po_head_init must be one of {list(HEAD_INITS)}, got {self.head_init!r}.")

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
        self.shortcut: Optional[Shortcut] = (Shortcut(obs_dim, int(getattr(args, "po_obs_embed", 32)))
                                             if uses_shortcut(args) else None)
        in_dim = self.hidden_dim + (self.shortcut.out_dim if self.shortcut is not None else 0)
        self.head = mlp(in_dim, list(getattr(args, "po_head_layers", [128, 128])), self.act_dim)
        init_head(self.head, self.head_init, ACTOR_LAST_BOUND)

    def head_out(self, feat: Tensor, obs: Tensor) -> Tensor:
        """``feat [..., hidden]`` and the current ``obs [..., obs_dim]`` -> action in [-1, 1]
        ``[..., act_dim]`` (TD3) or logits (SAC-d)."""
        if self.shortcut is not None:
            feat = torch.cat([feat, self.shortcut(obs)], dim=-1)
        out = self.head(feat)
        return out if self.discrete else torch.tanh(out)

    def forward(self, obs: Tensor, prev_act: Tensor, prev_rew: Tensor,
                state: State) -> Tuple[Tensor, State]:
        """Sequence forward ``[T, B, ...]`` -> (``head_out [T, B, act_dim]``, final state)."""
        feat, state = self.features(obs, prev_act, prev_rew, state)
        return self.head_out(feat, obs), state

    def step(self, obs: Tensor, prev_act: Tensor, prev_rew: Tensor,
             state: State) -> Tuple[Tensor, State]:
        """One act-time step on ``[B, ...]`` inputs -> (``head_out [B, act_dim]``, next state)."""
        feat, state = self.step_features(obs, prev_act, prev_rew, state)
        return self.head_out(feat, obs), state
