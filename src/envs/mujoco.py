"""Gymnasium MuJoCo control tasks for TD3 (the Proxy Target benchmark).

``make_mujoco_env(seed, key="Hopper-v4")`` returns a plain ``gymnasium.Env`` (Box observations
and actions, symmetric action bounds), already reset-seeded with ``seed``. No rendering.

Versions: the paper uses the ``-v4`` tasks. gymnasium 1.4 with ``mujoco`` 4.0 still builds
them (with a deprecation warning, silenced here) on the new ``mujoco`` bindings; ``-v5`` is
accepted too. Note ``Ant-v5`` includes contact forces in its observation by default (105 dims
against 27 for ``Ant-v4``).
"""
from __future__ import annotations

import warnings
from typing import Any, List

from utils.registry import MissingDependencyError

TASKS = ("InvertedPendulum", "InvertedDoublePendulum", "Ant", "HalfCheetah", "Hopper", "Walker2d")
VERSIONS = ("v4", "v5")
SUPPORTED_KEYS: List[str] = [f"{t}-{v}" for t in TASKS for v in VERSIONS]
INSTALL_HINT = 'pip install "gymnasium[mujoco]==1.4.0"'


def make_mujoco_env(seed: int, key: str = "Hopper-v4", **env_args: Any):
    """Build and seed the gymnasium MuJoCo task ``key`` (e.g. "Hopper-v4", "Walker2d-v5").

    Extra ``env_args`` go to ``gymnasium.make`` (e.g. ``max_episode_steps``). The env's
    first ``reset`` is seeded with ``seed``; its action space is seeded too.
    """
    if key not in SUPPORTED_KEYS:
        raise ValueError(f"unknown MuJoCo task env_args.key='{key}'. Supported: "
                         f"{', '.join(SUPPORTED_KEYS)}.")
    try:
        import gymnasium as gym
        import mujoco  # noqa: F401  (the bindings gymnasium's MuJoCo envs need)
    except ImportError as exc:
        raise MissingDependencyError(
            f"the MuJoCo tasks need gymnasium and mujoco ({exc}). Install with: {INSTALL_HINT}") from exc
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)   # "-v4 is out of date"
        try:
            env = gym.make(key, **env_args)
        except (ImportError, gym.error.DependencyNotInstalled) as exc:
            raise MissingDependencyError(
                f"could not build {key} ({exc}). Install with: {INSTALL_HINT}") from exc
    space = env.action_space
    if not (hasattr(space, "low") and (space.low == -space.high).all()):
        env.close()
        raise ValueError(f"{key}: the TD3 loop needs a Box action space with symmetric bounds, "
                         f"got {space}.")
    env.reset(seed=int(seed))
    env.action_space.seed(int(seed))
    return env
