"""Return targets shared by the learners."""
from __future__ import annotations

import torch


def td_lambda_targets(reward: torch.Tensor, terminated: torch.Tensor, mask: torch.Tensor,
                      target_q: torch.Tensor, gamma: float, td_lambda: float) -> torch.Tensor:
    """TD(lambda) targets ``G_t`` for every transition of padded episodes.

    reward, terminated, mask: ``[batch, T]``; target_q: ``[batch, T + 1]`` (value of the state
    after each transition, slot 0 unused by the recursion but kept for alignment).

        G_t = r_t + gamma * (1 - d_t) * ((1 - lambda) * Q_{t+1} + lambda * G'_{t+1})

    where ``G'_{t+1} = G_{t+1}`` if step t+1 is a filled transition, else ``Q_{t+1}``: an
    episode cut by the time limit (no terminal flag) bootstraps from the value of its last
    state. Returns ``[batch, T]``; entries where ``mask == 0`` are zero.
    """
    batch, T = reward.shape
    out = torch.zeros_like(reward)
    next_g = target_q[:, T]
    next_filled = torch.zeros_like(reward[:, 0])
    for t in range(T - 1, -1, -1):
        q_next = target_q[:, t + 1]
        continuation = next_filled * next_g + (1 - next_filled) * q_next
        g = reward[:, t] + gamma * (1 - terminated[:, t]) * ((1 - td_lambda) * q_next + td_lambda * continuation)
        g = g * mask[:, t]
        out[:, t] = g
        next_g, next_filled = g, mask[:, t]
    return out
