"""Action selection for value-based MARL: epsilon-greedy over available actions."""
from __future__ import annotations

from typing import Any, Callable, Dict

import torch


class LinearSchedule:
    """Linear decay from ``start`` to ``finish`` over ``duration`` steps, then constant."""

    def __init__(self, start: float, finish: float, duration: float) -> None:
        self.start, self.finish, self.duration = float(start), float(finish), float(duration)

    def __call__(self, t: float) -> float:
        if self.duration <= 0:
            return self.finish
        frac = min(max(t / self.duration, 0.0), 1.0)
        return self.start + frac * (self.finish - self.start)


class EpsilonGreedySelector:
    """Pick the greedy available action, or with probability epsilon a uniform available one."""

    def __init__(self, args: Any) -> None:
        self.schedule = LinearSchedule(args.epsilon_start, args.epsilon_finish, args.epsilon_anneal_time)
        self.epsilon = self.schedule(0)

    def select(self, q: torch.Tensor, avail: torch.Tensor, t_env: int, test_mode: bool = False) -> torch.Tensor:
        """``q`` [b, agents, n_actions], ``avail`` [b, agents, n_actions] -> actions [b, agents] (long)."""
        self.epsilon = 0.0 if test_mode else self.schedule(t_env)
        avail = avail.bool()
        masked = q.masked_fill(~avail, -float("inf"))
        greedy = masked.argmax(dim=-1)
        if self.epsilon == 0.0:
            return greedy
        random_actions = torch.multinomial(avail.reshape(-1, avail.shape[-1]).float(), 1).reshape(greedy.shape)
        explore = torch.rand(greedy.shape, device=q.device) < self.epsilon
        return torch.where(explore, random_actions, greedy)


REGISTRY: Dict[str, Callable[[Any], EpsilonGreedySelector]] = {}
REGISTRY["epsilon_greedy"] = EpsilonGreedySelector
