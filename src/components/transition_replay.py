"""Flat transition replay for off-policy single-agent RL (preallocated numpy ring buffer)."""
from __future__ import annotations

from typing import Any, Dict, Optional

import numpy as np
import torch


class TransitionReplay:
    """Stores ``(obs, action, reward, next_obs, terminated)`` transitions, oldest overwritten first.

    ``terminated`` is 1.0 only for a true terminal state (not a time-limit truncation), so the
    learner bootstraps through truncations.
    """

    def __init__(self, obs_dim: int, act_dim: int, capacity: int, seed: Optional[int] = None) -> None:
        capacity = int(capacity)
        if capacity < 1:
            raise ValueError(f"replay capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.obs = np.zeros((capacity, obs_dim), dtype=np.float32)
        self.actions = np.zeros((capacity, act_dim), dtype=np.float32)
        self.rewards = np.zeros((capacity, 1), dtype=np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), dtype=np.float32)
        self.terminated = np.zeros((capacity, 1), dtype=np.float32)
        self.pos = 0
        self.size = 0
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.size

    def add(self, obs: np.ndarray, action: np.ndarray, reward: float, next_obs: np.ndarray,
            terminated: bool) -> None:
        """Append one transition (``obs``/``next_obs`` ``[obs_dim]``, ``action`` ``[act_dim]``)."""
        i = self.pos
        self.obs[i] = obs
        self.actions[i] = action
        self.rewards[i, 0] = reward
        self.next_obs[i] = next_obs
        self.terminated[i, 0] = float(terminated)
        self.pos = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    _ARRAYS = ("obs", "actions", "rewards", "next_obs", "terminated")

    def state_dict(self) -> Dict[str, Any]:
        """The ``size`` stored transitions (as tensors), the write index ``pos``, ``capacity``
        and the sampling generator's state."""
        from utils.seeding import generator_state
        out: Dict[str, Any] = {k: torch.from_numpy(getattr(self, k)[:self.size].copy()) for k in self._ARRAYS}
        out.update(pos=self.pos, size=self.size, capacity=self.capacity, rng=generator_state(self.rng))
        return out

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore ``state_dict()``. The same capacity restores the ring exactly; a larger one (the
        capacity is capped at ``t_max``, which a resumed run may raise) takes the transitions
        oldest first. Shapes must match, and the saved transitions must fit."""
        from utils.seeding import set_generator_state
        size, saved_cap = int(state["size"]), int(state["capacity"])
        if size > self.capacity or state["obs"].shape[1:] != self.obs.shape[1:] \
                or state["actions"].shape[1:] != self.actions.shape[1:]:
            raise ValueError(f"the saved replay ({size} transitions, obs {list(state['obs'].shape[1:])}, actions "
                             f"{list(state['actions'].shape[1:])}) does not fit this one (capacity {self.capacity}, "
                             f"obs {list(self.obs.shape[1:])}, actions {list(self.actions.shape[1:])}); resume with "
                             f"the checkpoint's config (buffer_size_transitions, t_max).")
        pos = int(state["pos"])
        order = slice(None) if saved_cap == self.capacity else (
            (list(range(pos, size)) + list(range(pos))) if size == saved_cap else slice(None))
        for k in self._ARRAYS:
            arr = getattr(self, k)
            arr[...] = 0
            arr[:size] = state[k].numpy()[order]
        self.pos = pos if saved_cap == self.capacity else size % self.capacity
        self.size = size
        set_generator_state(self.rng, state["rng"])

    def sample(self, batch_size: int, device: torch.device | str = "cpu") -> Dict[str, torch.Tensor]:
        """Uniform sample with replacement: dict of float32 tensors, each ``[batch, dim]``.

        Keys: ``obs``, ``actions``, ``rewards`` ``[batch, 1]``, ``next_obs``, ``terminated`` ``[batch, 1]``.
        """
        if self.size == 0:
            raise RuntimeError("cannot sample from an empty replay buffer")
        idx = self.rng.integers(0, self.size, size=int(batch_size))
        out = {"obs": self.obs[idx], "actions": self.actions[idx], "rewards": self.rewards[idx],
               "next_obs": self.next_obs[idx], "terminated": self.terminated[idx]}
        return {k: torch.from_numpy(v).to(device) for k, v in out.items()}
