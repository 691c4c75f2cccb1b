"""Return targets and target-network helpers shared by the learners."""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn


def td_lambda_targets(reward: torch.Tensor, terminated: torch.Tensor, mask: torch.Tensor,
                      target_q: torch.Tensor, gamma: float, td_lambda: float) -> torch.Tensor:
    """TD(lambda) targets ``G_t`` for every transition of padded episodes.

    reward, terminated, mask: ``[batch, T]``; target_q: ``[batch, T + 1]`` (value of the state
    after each transition, slot 0 unused by the recursion but kept for alignment).

        G_t = r_t + gamma * (1 - d_t) * ((1 - lambda) * Q_{t+1} + lambda * G'_{t+1})

    where ``G'_{t+1} = G_{t+1}`` if step t+1 is a filled transition, else ``Q_{t+1}``: an
    episode cut by the time limit (no terminal flag) bootstraps from the value of its last
    state. Returns ``[batch, T]``; entries where ``mask == 0`` are zero.

    The recursion is linear, ``G_t = a_t + b_t G_{t+1}`` with
    ``a_t = m_t (r_t + gamma (1 - d_t) (1 - lambda f_{t+1}) Q_{t+1})`` and
    ``b_t = m_t gamma (1 - d_t) lambda f_{t+1}`` (``f_{t+1}`` = mask of step t+1, 0 after the last
    column), so it runs as a reverse scan by doubling: ``ceil(log2 T)`` rounds of
    ``a_t += b_t a_{t+s}``, ``b_t *= b_{t+s}`` on whole tensors, no loop over time (same values as
    the step-by-step recursion ``td_lambda_targets_loop`` up to rounding).
    """
    batch, T = reward.shape
    f_next = torch.cat([mask[:, 1:], torch.zeros_like(mask[:, :1])], dim=1)
    cont = gamma * (1 - terminated)
    q_next = target_q[:, 1:T + 1]
    a = mask * (reward + cont * q_next * (1 - td_lambda * f_next))
    b = mask * cont * (td_lambda * f_next)
    s = 1
    while s < T:
        a = torch.cat([a[:, :T - s] + b[:, :T - s] * a[:, s:], a[:, T - s:]], dim=1)
        b = torch.cat([b[:, :T - s] * b[:, s:], torch.zeros_like(b[:, T - s:])], dim=1)
        s *= 2
    return a


def td_lambda_targets_loop(reward: torch.Tensor, terminated: torch.Tensor, mask: torch.Tensor,
                           target_q: torch.Tensor, gamma: float, td_lambda: float) -> torch.Tensor:
    """``td_lambda_targets`` as the step-by-step backward recursion (the reference for tests)."""
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


@torch.no_grad()
def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """Polyak averaging ``target <- (1 - tau) * target + tau * source`` (params and float buffers)."""
    for t, s in zip(target.parameters(), source.parameters()):
        t.lerp_(s, tau)
    for t, s in zip(target.buffers(), source.buffers()):
        if t.dtype.is_floating_point:
            t.lerp_(s, tau)
        else:
            t.copy_(s)


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """Temporarily stop gradients into ``module``'s trainable parameters (restores the flags)."""
    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)
