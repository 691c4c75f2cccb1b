"""Partially observable classic control (Pendulum / CartPole with masked observations).

Keys ``<Task>-<F|P|V>``: ``-F`` full observation, ``-P`` positions only, ``-V`` velocities only
(Han, Doya & Tani 2020; Ni et al. 2022):

* Pendulum-v1 obs ``[cos th, sin th, th_dot]``: P keeps ``[cos th, sin th]``, V keeps ``[th_dot]``.
  Actions are in ``[-1, 1]`` and rescaled to the torque range ``[-2, 2]``.
* CartPole-v1 obs ``[x, x_dot, th, th_dot]``: P keeps ``[x, th]``, V keeps ``[x_dot, th_dot]``.
  Two discrete actions.

Episodes last at most ``max_episode_steps`` (200) steps. Hitting that limit is a *truncation*
(``truncated=True, terminated=False``): learners must bootstrap through it. Only CartPole's
pole falling / cart leaving the track is a termination.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import gymnasium as gym
import numpy as np

# task -> (gymnasium id, {suffix: kept observation indices or None for all})
_TASKS: Dict[str, Tuple[str, Dict[str, Optional[List[int]]]]] = {
    "Pendulum": ("Pendulum-v1", {"F": None, "P": [0, 1], "V": [2]}),
    "CartPole": ("CartPole-v1", {"F": None, "P": [0, 2], "V": [1, 3]}),
}

VALID_KEYS: List[str] = [f"{task}-{s}" for task, (_, masks) in _TASKS.items() for s in masks]


def observation_indices(key: str) -> Optional[List[int]]:
    """Indices of the full observation that ``key`` keeps (None: all). Raises on an unknown key."""
    task, suffix = _split_key(key)
    return _TASKS[task][1][suffix]


def _split_key(key: str) -> Tuple[str, str]:
    if not isinstance(key, str) or key.count("-") != 1:
        raise _unknown(key)
    task, suffix = key.split("-")
    if task not in _TASKS or suffix not in _TASKS[task][1]:
        raise _unknown(key)
    return task, suffix


def _unknown(key: Any) -> KeyError:
    from utils.registry import RegistryError
    return RegistryError(f"unknown pomdp env key '{key}'. Valid keys: {', '.join(VALID_KEYS)}. "
                         f"Set it with `with env_args.key=Pendulum-P` (for example).")


class MaskedControlEnv(gym.Wrapper):
    """A gymnasium wrapper whose observation keeps only some dims and whose actions live in [-1, 1].

    ``reset(seed=None) -> (obs[obs_dim] float32, info)``;
    ``step(action) -> (obs, reward, terminated, truncated, info)``. For a continuous task
    ``action`` is an array ``[act_dim]`` in ``[-1, 1]`` (clipped, then rescaled to the env's
    bounds); for a discrete task an int in ``[0, n_actions)``.
    Attributes: ``key``, ``obs_dim``, ``discrete``, ``act_dim`` (continuous action dims, or
    the number of discrete actions), ``max_episode_steps``, ``observation_space``,
    ``action_space`` (the [-1, 1] box or the discrete space), ``env`` (inner gymnasium env).
    """

    def __init__(self, key: str, seed: int, max_episode_steps: int = 200) -> None:
        task, suffix = _split_key(key)
        gym_id, masks = _TASKS[task]
        if int(max_episode_steps) < 1:
            raise ValueError(f"max_episode_steps must be >= 1, got {max_episode_steps}.")
        super().__init__(gym.make(gym_id, max_episode_steps=int(max_episode_steps)))
        self.key = key
        self.max_episode_steps = int(max_episode_steps)
        full_dim = self.env.observation_space.shape[0]
        self._idx = np.arange(full_dim) if masks[suffix] is None else np.asarray(masks[suffix])
        self.obs_dim = int(len(self._idx))
        low = self.env.observation_space.low[self._idx]
        high = self.env.observation_space.high[self._idx]
        self.observation_space = gym.spaces.Box(low=low, high=high, dtype=np.float32)
        inner = self.env.action_space
        self.discrete = isinstance(inner, gym.spaces.Discrete)
        if self.discrete:
            self.act_dim = int(inner.n)
            self.action_space = inner
            self._low = self._high = None
        else:
            self.act_dim = int(inner.shape[0])
            self._low = inner.low.astype(np.float64)
            self._high = inner.high.astype(np.float64)
            self.action_space = gym.spaces.Box(-1.0, 1.0, shape=inner.shape, dtype=np.float32)
        self._seed = int(seed)
        self._seeded = False
        self.action_space.seed(self._seed)

    def _mask(self, obs: np.ndarray) -> np.ndarray:
        return np.asarray(obs, dtype=np.float32)[self._idx]

    def reset(self, *, seed: Optional[int] = None,
              options: Optional[Dict[str, Any]] = None) -> Tuple[np.ndarray, Dict[str, Any]]:
        """Start an episode. The first reset uses the constructor's seed unless one is given."""
        if seed is None and not self._seeded:
            seed = self._seed
        self._seeded = True
        obs, info = self.env.reset(seed=seed, options=options)
        return self._mask(obs), info

    def rescale_action(self, action: Any) -> Any:
        """Map a policy action in [-1, 1] to the inner env's bounds (discrete: int index)."""
        if self.discrete:
            a = int(np.asarray(action).reshape(-1)[0]) if np.ndim(action) else int(action)
            if not 0 <= a < self.act_dim:
                raise ValueError(f"discrete action {a} out of range [0, {self.act_dim}).")
            return a
        a = np.clip(np.asarray(action, dtype=np.float64).reshape(self.act_dim), -1.0, 1.0)
        return (self._low + (a + 1.0) * 0.5 * (self._high - self._low)).astype(np.float32)

    def step(self, action: Any) -> Tuple[np.ndarray, float, bool, bool, Dict[str, Any]]:
        """One env step; a time-out comes back as ``truncated`` and never as ``terminated``."""
        obs, reward, terminated, truncated, info = self.env.step(self.rescale_action(action))
        return self._mask(obs), float(reward), bool(terminated), bool(truncated), info


def make_pomdp_env(seed: int, key: str = "Pendulum-P", max_episode_steps: int = 200,
                   **env_args: Any) -> MaskedControlEnv:
    """Build the masked control env named ``key`` (see VALID_KEYS), seeded with ``seed``.

    Unknown extra ``env_args`` are an error (a typo would otherwise change nothing silently).
    """
    if env_args:
        raise TypeError(f"unknown pomdp env_args {sorted(env_args)}; valid: key, max_episode_steps.")
    _split_key(key)
    return MaskedControlEnv(key, seed, max_episode_steps=max_episode_steps)
