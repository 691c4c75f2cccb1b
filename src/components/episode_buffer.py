"""Batches of whole MARL episodes and a replay buffer of them.

An ``EpisodeBatch`` holds ``batch`` episodes padded to ``max_t`` transitions:
    obs            [batch, max_t + 1, agents, obs_dim]   (slot t+1 holds the obs after step t)
    state          [batch, max_t + 1, state_dim]
    avail_actions  [batch, max_t + 1, agents, n_actions]
    actions        [batch, max_t, agents]                (long)
    reward         [batch, max_t]
    terminated     [batch, max_t]                        (1 on a true terminal step, not a time-out)
    filled         [batch, max_t]                        (1 where a transition happened)
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Dict, Optional

import numpy as np
import torch


@dataclass
class EpisodeBatch:
    obs: torch.Tensor
    state: torch.Tensor
    avail_actions: torch.Tensor
    actions: torch.Tensor
    reward: torch.Tensor
    terminated: torch.Tensor
    filled: torch.Tensor

    @classmethod
    def zeros(cls, batch: int, max_t: int, n_agents: int, obs_dim: int, state_dim: int,
              n_actions: int, device: str = "cpu") -> "EpisodeBatch":
        """An all-zero batch of ``batch`` episodes with room for ``max_t`` transitions."""
        f = dict(dtype=torch.float32, device=device)
        return cls(
            obs=torch.zeros(batch, max_t + 1, n_agents, obs_dim, **f),
            state=torch.zeros(batch, max_t + 1, state_dim, **f),
            avail_actions=torch.zeros(batch, max_t + 1, n_agents, n_actions, dtype=torch.uint8, device=device),
            actions=torch.zeros(batch, max_t, n_agents, dtype=torch.long, device=device),
            reward=torch.zeros(batch, max_t, **f),
            terminated=torch.zeros(batch, max_t, **f),
            filled=torch.zeros(batch, max_t, **f),
        )

    @property
    def batch_size(self) -> int:
        return self.reward.shape[0]

    @property
    def max_t(self) -> int:
        return self.reward.shape[1]

    def as_dict(self) -> Dict[str, torch.Tensor]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def map(self, fn) -> "EpisodeBatch":
        """A new batch with ``fn`` applied to every tensor."""
        return EpisodeBatch(**{k: fn(v) for k, v in self.as_dict().items()})

    def to(self, device: str) -> "EpisodeBatch":
        return self.map(lambda v: v.to(device, non_blocking=True))

    def truncate(self, t: int) -> "EpisodeBatch":
        """Keep the first ``t`` transitions (and ``t + 1`` observation slots)."""
        out = {}
        for k, v in self.as_dict().items():
            out[k] = v[:, :t + 1] if k in ("obs", "state", "avail_actions") else v[:, :t]
        return EpisodeBatch(**out)

    def max_filled(self) -> int:
        """Length of the longest episode in the batch (number of transitions)."""
        steps = self.filled.sum(dim=1)
        return int(steps.max().item()) if steps.numel() else 0

    def mask(self) -> torch.Tensor:
        """Loss mask ``[batch, max_t]``: filled steps (terminal step included)."""
        return self.filled

    def actions_onehot(self, n_actions: int) -> torch.Tensor:
        """One-hot actions ``[batch, max_t, agents, n_actions]``."""
        return torch.nn.functional.one_hot(self.actions, n_actions).float()


class ReplayBuffer:
    """A ring buffer of ``capacity`` episodes of up to ``max_t`` transitions, kept on ``device``."""

    def __init__(self, capacity: int, max_t: int, n_agents: int, obs_dim: int, state_dim: int,
                 n_actions: int, device: str = "cpu", rng: Optional[np.random.Generator] = None) -> None:
        self.capacity = int(capacity)
        self.storage = EpisodeBatch.zeros(self.capacity, max_t, n_agents, obs_dim, state_dim, n_actions, device)
        self.index = 0
        self.size = 0
        self.rng = rng or np.random.default_rng()

    def insert(self, batch: EpisodeBatch) -> None:
        """Copy the episodes of ``batch`` in, overwriting the oldest when full."""
        n = batch.batch_size
        if n > self.capacity:
            raise ValueError(f"cannot insert {n} episodes into a buffer of {self.capacity}.")
        idx = (self.index + torch.arange(n)) % self.capacity
        src = batch.as_dict()
        dst = self.storage.as_dict()
        for k, v in src.items():
            t = v.shape[1]
            dst[k][idx, :t] = v.to(dst[k].device)
            if t < dst[k].shape[1]:
                dst[k][idx, t:] = 0
        self.index = (self.index + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def can_sample(self, n: int) -> bool:
        return self.size >= n

    def sample(self, n: int) -> EpisodeBatch:
        """``n`` distinct episodes chosen uniformly, truncated to their longest filled length."""
        if not self.can_sample(n):
            raise ValueError(f"buffer holds {self.size} episodes, cannot sample {n}.")
        idx = torch.as_tensor(self.rng.choice(self.size, size=n, replace=False))
        batch = self.storage.map(lambda v: v[idx])
        return batch.truncate(max(batch.max_filled(), 1))

    def __len__(self) -> int:
        return self.size

    def state_dict(self) -> Dict[str, Any]:
        """The filled episodes (``storage`` tensors cut to ``[size, ...]``), the write ``index``,
        ``size``, ``capacity`` and the sampling generator's state (plain data and tensors)."""
        from utils.seeding import generator_state
        return {"storage": {k: v[:self.size].cpu() for k, v in self.storage.as_dict().items()},
                "index": self.index, "size": self.size, "capacity": self.capacity,
                "rng": generator_state(self.rng)}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore ``state_dict()``; the buffer must have the same capacity and episode shapes."""
        from utils.seeding import set_generator_state
        if int(state["capacity"]) != self.capacity:
            raise ValueError(f"the saved replay buffer holds {state['capacity']} episodes, this one "
                             f"{self.capacity} (buffer_size); resume with buffer_size={state['capacity']}.")
        size = int(state["size"])
        dst = self.storage.as_dict()
        for k, v in state["storage"].items():
            if tuple(v.shape[1:]) != tuple(dst[k].shape[1:]):
                raise ValueError(f"the saved replay's '{k}' is {list(v.shape[1:])} per episode, this run's "
                                 f"{list(dst[k].shape[1:])}: a different map or episode limit.")
            dst[k].zero_()
            dst[k][:size] = v.to(dst[k].device)
        self.index, self.size = int(state["index"]), size
        set_generator_state(self.rng, state["rng"])
