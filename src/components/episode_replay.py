"""Whole-episode replay for single-agent recurrent off-policy RL (after Ni et al. 2022).

Episodes are stored whole, one slot each (a ring of ``capacity`` episodes). Training samples
windows of ``seq_len`` consecutive steps. A window starts at any index ``s`` with
``0 <= s <= max(0, len - seq_len)``, every such (episode, start) pair equally likely, so each
window lies inside its episode and only episodes shorter than ``seq_len`` are padded (mask 0).
``seq_len = -1`` samples whole episodes instead (every stored episode equally likely, each from
its first step, padded to the longest one in the batch).
The learner unrolls its sequence models over each window from a zero state: with windows that
start mid-episode this state differs from the one the actor carries at that step when acting;
with whole episodes the two agree.

Time index conventions inside a stored episode of length ``n``:
``obs[t]`` for t = 0..n (``obs[n]`` is the observation after the last action, kept so the
last transition can bootstrap when the episode was truncated), ``act[t]``, ``rew[t]``,
``term[t]`` for t = 0..n-1. ``term`` is 1 only for a true termination, never for a time-out.
Previous action / reward at step ``t`` are ``act[t-1]`` / ``rew[t-1]`` (zeros at t = 0).
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence

import numpy as np
import torch
from torch import Tensor


WHOLE_EPISODES = -1  # the sampled_seq_len that asks for whole episodes instead of windows


class EpisodeReplay:
    """Ring buffer of whole episodes with window sampling.

    ``obs_dim``: observation size. ``act_dim``: continuous action size, or for
    ``discrete=True`` the number of actions (actions are then stored as an index ``[1]``).
    ``max_episode_len``: the longest episode that can be stored.
    """

    def __init__(self, capacity: int, obs_dim: int, act_dim: int, max_episode_len: int,
                 discrete: bool = False, seed: Optional[int] = None) -> None:
        if capacity < 1 or max_episode_len < 1:
            raise ValueError(f"capacity ({capacity}) and max_episode_len ({max_episode_len}) must be >= 1.")
        self.capacity = int(capacity)
        self.obs_dim = int(obs_dim)
        self.act_dim = int(act_dim)
        self.discrete = bool(discrete)
        self.act_width = 1 if self.discrete else self.act_dim
        self.max_episode_len = int(max_episode_len)
        n, T = self.capacity, self.max_episode_len
        self.obs = np.zeros((n, T + 1, self.obs_dim), dtype=np.float32)
        self.act = np.zeros((n, T, self.act_width), dtype=np.int64 if self.discrete else np.float32)
        self.rew = np.zeros((n, T, 1), dtype=np.float32)
        self.term = np.zeros((n, T, 1), dtype=np.float32)
        self.lengths = np.zeros(n, dtype=np.int64)
        self._top = 0  # next slot to write
        self.n_episodes = 0  # episodes currently held
        self.n_steps = 0  # transitions currently held
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.n_episodes

    def add_episode(self, obs: np.ndarray, act: np.ndarray, rew: np.ndarray,
                    term: np.ndarray) -> None:
        """Store one episode: ``obs[n+1, obs_dim]``, ``act[n, act_width]`` (discrete: ``[n]`` or
        ``[n, 1]`` indices), ``rew[n]``, ``term[n]`` (1 only at a true termination)."""
        obs = np.asarray(obs, dtype=np.float32)
        n = int(np.asarray(rew).reshape(-1).shape[0])
        if n < 1 or n > self.max_episode_len:
            raise ValueError(f"episode length {n} must be in [1, {self.max_episode_len}].")
        if obs.shape != (n + 1, self.obs_dim):
            raise ValueError(f"obs must be [n+1={n + 1}, {self.obs_dim}] (including the final "
                             f"observation), got {obs.shape}.")
        act = np.asarray(act).reshape(n, -1)
        if act.shape[1] != self.act_width:
            raise ValueError(f"act must be [{n}, {self.act_width}], got {act.shape}.")
        term = np.asarray(term, dtype=np.float32).reshape(n)
        if term[:-1].any():
            raise ValueError("only the last step of an episode can be terminal.")
        slot = self._top
        if self.lengths[slot] > 0:
            self.n_steps -= int(self.lengths[slot])
        self.obs[slot] = 0.0
        self.act[slot] = 0
        self.rew[slot] = 0.0
        self.term[slot] = 0.0
        self.obs[slot, :n + 1] = obs
        self.act[slot, :n] = act
        self.rew[slot, :n, 0] = np.asarray(rew, dtype=np.float32).reshape(n)
        self.term[slot, :n, 0] = term
        self.lengths[slot] = n
        self.n_steps += n
        self._top = (slot + 1) % self.capacity
        self.n_episodes = min(self.n_episodes + 1, self.capacity)

    _ARRAYS = ("obs", "act", "rew", "term", "lengths")

    def state_dict(self) -> Dict[str, Any]:
        """Stored episodes (arrays cut to the ``n_episodes`` filled slots, as tensors), the write
        slot ``top``, counts, shapes and the sampling generator's state."""
        from utils.seeding import generator_state
        n = self.n_episodes
        out: Dict[str, Any] = {k: torch.from_numpy(getattr(self, k)[:n].copy()) for k in self._ARRAYS}
        out.update(top=self._top, n_episodes=n, n_steps=self.n_steps, rng=generator_state(self.rng),
                   shape=[self.capacity, self.obs_dim, self.act_dim, self.max_episode_len, int(self.discrete)])
        return out

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore ``state_dict()`` into a replay built with the same capacity and shapes."""
        from utils.seeding import set_generator_state
        mine = [self.capacity, self.obs_dim, self.act_dim, self.max_episode_len, int(self.discrete)]
        if list(state["shape"]) != mine:
            raise ValueError(f"the saved replay has [capacity, obs_dim, act_dim, max_episode_len, discrete] = "
                             f"{list(state['shape'])}, this run {mine}: resume with the checkpoint's config.")
        n = int(state["n_episodes"])
        for k in self._ARRAYS:
            arr = getattr(self, k)
            arr[...] = 0
            arr[:n] = state[k].numpy()
        self._top, self.n_episodes, self.n_steps = int(state["top"]), n, int(state["n_steps"])
        set_generator_state(self.rng, state["rng"])

    def get_windows(self, slots: Sequence[int], starts: Sequence[int], seq_len: int,
                    device: torch.device | str = "cpu") -> Dict[str, Tensor]:
        """Windows of ``seq_len`` steps from episode ``slots[i]`` starting at ``starts[i]``.

        Returns time-major float tensors (B = len(slots), L = seq_len):
        ``obs [L+1, B, obs_dim]`` (obs at s..s+L), ``prev_act [L+1, B, act_dim]`` (act at
        s-1..s+L-1, one-hot when discrete, zero before the episode start), ``prev_rew [L+1, B, 1]``,
        ``act [L, B, act_width]`` (discrete: float indices), ``rew [L, B, 1]``,
        ``term [L, B, 1]``, ``mask [L, B, 1]`` (1 for real steps, 0 for padding).
        Entries past an episode's end are zero.
        """
        slots = np.asarray(slots, dtype=np.int64)
        starts = np.asarray(starts, dtype=np.int64)
        if slots.shape != starts.shape or slots.ndim != 1:
            raise ValueError("slots and starts must be 1-D of the same length.")
        if (slots < 0).any() or (slots >= self.n_episodes).any():
            raise IndexError(f"slot out of range [0, {self.n_episodes}).")
        lens = self.lengths[slots]
        if (starts < 0).any() or (starts >= lens).any():
            raise IndexError("window start must lie inside its episode.")
        L = int(seq_len)
        t_steps = starts[:, None] + np.arange(L)[None, :]  # [B, L]
        step_valid = t_steps < lens[:, None]
        t_obs = starts[:, None] + np.arange(L + 1)[None, :]  # [B, L+1]
        obs_valid = t_obs <= lens[:, None]
        t_prev = t_obs - 1
        prev_valid = (t_prev >= 0) & (t_prev < lens[:, None])
        T = self.max_episode_len
        rows = slots[:, None]

        def take(arr: np.ndarray, t: np.ndarray, valid: np.ndarray, hi: int) -> np.ndarray:
            x = arr[rows, np.clip(t, 0, hi)].astype(np.float32)  # [B, L', d]
            x *= valid[..., None]
            return np.ascontiguousarray(x.transpose(1, 0, 2))

        if self.discrete:  # previous action as one-hot, all zero before the first action
            idx = self.act[rows, np.clip(t_prev, 0, T - 1), 0]  # [B, L+1]
            prev_act = np.eye(self.act_dim, dtype=np.float32)[idx] * prev_valid[..., None]
            prev_act = np.ascontiguousarray(prev_act.transpose(1, 0, 2))
        else:
            prev_act = take(self.act, t_prev, prev_valid, T - 1)
        out = {
            "obs": take(self.obs, t_obs, obs_valid, T),
            "prev_act": prev_act,
            "prev_rew": take(self.rew, t_prev, prev_valid, T - 1),
            "act": take(self.act, t_steps, step_valid, T - 1),
            "rew": take(self.rew, t_steps, step_valid, T - 1),
            "term": take(self.term, t_steps, step_valid, T - 1),
            "mask": np.ascontiguousarray(step_valid.T[..., None].astype(np.float32)),
        }
        return {k: torch.from_numpy(v).to(device) for k, v in out.items()}

    def sample(self, batch_size: int, seq_len: int,
               device: torch.device | str = "cpu") -> Dict[str, Tensor]:
        """``batch_size`` random windows (see get_windows), every valid start equally likely;
        ``seq_len = -1``: whole episodes from their first step, ``L`` = the longest one sampled."""
        if self.n_episodes == 0:
            raise RuntimeError("cannot sample from an empty replay; add episodes first.")
        seq_len = int(seq_len)
        if seq_len == WHOLE_EPISODES:
            slots = self.rng.integers(0, self.n_episodes, size=int(batch_size))
            L = int(self.lengths[slots].max())
            return self.get_windows(slots, np.zeros_like(slots), L, device=device)
        if seq_len < 1:
            raise ValueError(f"seq_len must be >= 1, or {WHOLE_EPISODES} for whole episodes; got {seq_len}.")
        lens = self.lengths[:self.n_episodes]
        n_starts = np.maximum(1, lens - int(seq_len) + 1)
        cum = np.cumsum(n_starts)
        flat = self.rng.integers(0, int(cum[-1]), size=int(batch_size))
        slots = np.searchsorted(cum, flat, side="right")
        starts = flat - (cum[slots] - n_starts[slots])
        return self.get_windows(slots, starts, seq_len, device=device)
