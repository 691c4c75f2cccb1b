"""The one place that seeds every random number generator of a run."""
from __future__ import annotations

import copy
import random
from typing import Any, Dict

import numpy as np
import torch


def set_seed(seed: int) -> None:
    """Seed python's ``random``, numpy and torch (CPU and CUDA) from one integer.

    Environments get their own seed from ``args.seed`` when they are built.
    """
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


# ----------------------------------------------------------------- RNG states for checkpoints
# Every state below is plain data (ints, lists, dicts, uint8 tensors), so a checkpoint holding it
# loads with ``torch.load(..., weights_only=True)``.

def global_rng_state() -> Dict[str, Any]:
    """The states of python's ``random``, numpy's global generator and torch (CPU, and CUDA when
    available): ``{"python": tuple, "numpy": dict, "torch": uint8 tensor, "cuda": [tensors]}``."""
    np_state = np.random.get_state(legacy=False)
    return {
        "python": random.getstate(),
        "numpy": {"bit_generator": np_state["bit_generator"],
                  "key": torch.from_numpy(np.asarray(np_state["state"]["key"], dtype=np.int64)),
                  "pos": int(np_state["state"]["pos"]),
                  "has_gauss": int(np_state["has_gauss"]), "gauss": float(np_state["gauss"])},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_global_rng_state(state: Dict[str, Any]) -> None:
    """Restore what ``global_rng_state`` returned (CUDA states only when CUDA is available)."""
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    np_state = state["numpy"]
    np.random.set_state({"bit_generator": np_state["bit_generator"],
                         "state": {"key": np_state["key"].numpy().astype(np.uint32), "pos": np_state["pos"]},
                         "has_gauss": np_state["has_gauss"], "gauss": np_state["gauss"]})
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def generator_state(gen: np.random.Generator) -> Dict[str, Any]:
    """The state of a numpy ``Generator`` as plain data (its bit generator's state dict)."""
    return copy.deepcopy(gen.bit_generator.state)


def set_generator_state(gen: np.random.Generator, state: Dict[str, Any]) -> None:
    """Restore a numpy ``Generator`` from ``generator_state``."""
    gen.bit_generator.state = state


def gym_env_rng_state(env: Any) -> Dict[str, Any]:
    """The random state of a gymnasium env between episodes: its ``np_random`` generator, its
    action space's generator and (for envs that seed their first reset lazily) ``_seeded``."""
    return {"np_random": generator_state(env.unwrapped.np_random),
            "action_space": generator_state(env.action_space.np_random),
            "seeded": bool(getattr(env, "_seeded", True))}


def set_gym_env_rng_state(env: Any, state: Dict[str, Any]) -> None:
    """Restore what ``gym_env_rng_state`` returned."""
    set_generator_state(env.unwrapped.np_random, state["np_random"])
    set_generator_state(env.action_space.np_random, state["action_space"])
    if hasattr(env, "_seeded"):
        env._seeded = bool(state["seeded"])
