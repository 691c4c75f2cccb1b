"""Environment registry. Each entry builds an environment lazily, so an optional
dependency (StarCraft II, MuJoCo) is imported only when its key is used.

MARL entries return a batch env (see ``envs.batch_env.BatchEnv``):
    make(n_envs: int, seed: int, **env_args) -> BatchEnv
Single-agent entries return a gymnasium-style env:
    make(seed: int, **env_args) -> gymnasium.Env
"""
from __future__ import annotations

from typing import Any, Callable, Dict


def _smax(**kwargs: Any):
    from envs.smax import make_smax_batch
    return make_smax_batch(**kwargs)


def _sc2(**kwargs: Any):
    from envs.sc2 import make_sc2_batch
    return make_sc2_batch(**kwargs)


def _pomdp(**kwargs: Any):
    from envs.pomdp import make_pomdp_env
    return make_pomdp_env(**kwargs)


def _mujoco(**kwargs: Any):
    from envs.mujoco import make_mujoco_env
    return make_mujoco_env(**kwargs)


REGISTRY: Dict[str, Callable[..., Any]] = {}
REGISTRY["smax"] = _smax
REGISTRY["sc2"] = _sc2
REGISTRY["pomdp"] = _pomdp
REGISTRY["mujoco"] = _mujoco
