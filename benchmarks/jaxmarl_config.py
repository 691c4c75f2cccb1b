"""JaxMARL qmix_rnn settings matching this project's QMIX defaults, for the side-by-side benchmarks."""
from __future__ import annotations

import json
from typing import Any, Dict, Sequence


def qmix_overrides(ours: Dict[str, Any], map_name: str, total_steps: int, num_envs: int, seed: int,
                   lr: float) -> Dict[str, Any]:
    """JaxMARL config keys for ``map_name`` at our network sizes (``ours``: our merged qmix/smax config)."""
    env_args = ours["env_args"]
    walls = env_args.get("walls_cause_death")
    walls = True if walls is None else bool(walls)     # null = the jaxmarl fidelity's rule: the edge kills
    return {"MAP_NAME": map_name, "TOTAL_TIMESTEPS": total_steps, "NUM_ENVS": num_envs, "SEED": seed,
            "NUM_SEEDS": 1, "HIDDEN_SIZE": ours["rnn_hidden_dim"], "MIXER_EMBEDDING_DIM": ours["mixing_embed_dim"],
            "MIXER_HYPERNET_HIDDEN_DIM": ours["hypernet_embed"], "LR": lr, "SAVE_PATH": None, "HYP_TUNE": False,
            "ENV_KWARGS": {"see_enemy_actions": env_args["see_enemy_actions"],
                           "walls_cause_death": walls,
                           "attack_mode": env_args["enemy_attack_mode"]}}


def apply_sets(overrides: Dict[str, Any], items: Sequence[str]) -> Dict[str, Any]:
    """``KEY=VALUE`` items on top: a value that parses as JSON (numbers, true/false/null, lists, objects)
    is taken as such, anything else (``MAP_NAME=8m``) as a string."""
    for item in items:
        key, value = item.split("=", 1)
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    return overrides
