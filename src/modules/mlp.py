"""The multilayer perceptron every actor, critic and head is built from."""
from __future__ import annotations

from typing import Sequence

from torch import nn


def mlp(in_dim: int, hidden: Sequence[int], out_dim: int) -> nn.Sequential:
    """``Linear -> ReLU`` for each width in ``hidden``, then a final ``Linear`` to ``out_dim``:
    ``[..., in_dim] -> [..., out_dim]``."""
    layers = []
    last = in_dim
    for width in hidden:
        layers += [nn.Linear(last, int(width)), nn.ReLU()]
        last = int(width)
    layers.append(nn.Linear(last, out_dim))
    return nn.Sequential(*layers)
