"""Random episode batches for learner benchmarks (QMIX shapes of an env's info), one place for them."""
from __future__ import annotations

from typing import Any, Dict

import torch

from components.episode_buffer import EpisodeBatch


def fake_batch(info: Dict[str, Any], batch_size: int, T: int, seed: int,
               min_length: int = 0) -> EpisodeBatch:
    """``batch_size`` episodes padded to ``T`` transitions, random data, all actions available; every
    episode fills all ``T`` steps, or (``min_length`` > 0) has a length drawn uniformly from
    ``[min_length, T]`` (ending with a terminal flag)."""
    g = torch.Generator().manual_seed(seed)
    if min_length > 0:
        if min_length > T:
            raise ValueError(f"min_length must be <= T={T}, got {min_length}")
        lengths = torch.randint(min_length, T + 1, (batch_size,), generator=g)
    else:
        lengths = torch.full((batch_size,), T)
    b = EpisodeBatch.zeros(batch_size, T, info["n_agents"], info["obs_shape"], info["state_shape"],
                           info["n_actions"])
    b.obs.copy_(torch.rand(b.obs.shape, generator=g))
    b.state.copy_(torch.rand(b.state.shape, generator=g))
    b.avail_actions[:] = 1
    b.actions.copy_(torch.randint(0, info["n_actions"], b.actions.shape, generator=g))
    b.reward.copy_(torch.rand(b.reward.shape, generator=g))
    for i, n in enumerate(lengths.tolist()):
        b.filled[i, :n] = 1
        b.reward[i, n:] = 0
        b.terminated[i, n - 1] = 1
    return b
