"""GRU agent (pymarl2 ``rnn``): fc1 -> ReLU -> GRU -> fc2, hidden ``rnn_hidden_dim``.

One ``nn.GRU`` serves both paths: ``forward`` runs it on a length-1 sequence (one environment
step) and ``forward_seq`` on the whole sequence (fused kernel, cuDNN on GPU), so both share
weights and state_dict keys and give the same result.
"""
from __future__ import annotations

from typing import Any, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from components.packing import Packing

from ._common import arg, check_inputs, flat_hidden, n_actions


class RNNAgent(nn.Module):
    """Per-agent Q network with a GRU memory. Hidden state: ``[batch * agents, rnn_hidden_dim]``."""

    def __init__(self, input_shape: int, args: Any) -> None:
        super().__init__()
        self.input_shape = int(input_shape)
        self.hidden_dim = int(arg(args, "rnn_hidden_dim", 64))
        self.n_actions = n_actions("RNNAgent", args)
        self.fc1 = nn.Linear(self.input_shape, self.hidden_dim)
        self.rnn = nn.GRU(self.hidden_dim, self.hidden_dim)
        self.fc2 = nn.Linear(self.hidden_dim, self.n_actions)

    def init_hidden(self, n: int) -> Tensor:
        """Zero hidden state ``[n, rnn_hidden_dim]`` (n = batch * agents) on the agent's device."""
        w = self.fc1.weight
        return torch.zeros(n, self.hidden_dim, device=w.device, dtype=w.dtype)

    def forward(self, inputs: Tensor, hidden: Tensor) -> Tuple[Tensor, Tensor]:
        """One step: inputs ``[b, a, e]``, hidden ``[b*a, H]`` -> q ``[b, a, n_actions]``, hidden ``[b*a, H]``."""
        check_inputs("RNNAgent", inputs, 3, self.input_shape)
        b, a, e = inputs.shape
        h = flat_hidden("RNNAgent", hidden, b * a, self.hidden_dim)
        x = F.relu(self.fc1(inputs.reshape(b * a, e)))
        y, h = self.rnn(x.unsqueeze(0), h.unsqueeze(0).contiguous())
        q = self.fc2(y[0])
        return q.view(b, a, self.n_actions), h[0]

    def forward_seq(self, inputs: Tensor, hidden: Tensor) -> Tuple[Tensor, Tensor]:
        """Sequence: inputs ``[T, b, a, e]`` -> q ``[T, b, a, n_actions]``, final hidden ``[b*a, H]``."""
        check_inputs("RNNAgent", inputs, 4, self.input_shape)
        t, b, a, e = inputs.shape
        h = flat_hidden("RNNAgent", hidden, b * a, self.hidden_dim)
        x = F.relu(self.fc1(inputs.reshape(t, b * a, e)))
        y, h = self.rnn(x, h.unsqueeze(0).contiguous())
        q = self.fc2(y)
        return q.view(t, b, a, self.n_actions), h[0]

    def forward_packed(self, inputs: Tensor, packing: Packing) -> Tensor:
        """Packed episodes from a zero hidden state: inputs ``[n_rows, a, e]`` (rows of ``packing``,
        time-major) -> q ``[n_rows, a, n_actions]``. Equals ``forward_seq`` on the real slots.

        fc1 and fc2 run once on the real rows; the GRU runs on them as a ``PackedSequence`` (the
        rows' layout already is one: time-major, longest episodes first, agents innermost), so
        each step only updates the episodes still running."""
        check_inputs("RNNAgent", inputs, 3, self.input_shape)
        rows, a, e = inputs.shape
        x = F.relu(self.fc1(inputs.reshape(rows * a, e)))
        sizes = packing.batch_sizes[packing.batch_sizes > 0] * a           # (trailing zeros: empty steps)
        y, _ = self.rnn(PackedSequence(x, sizes))
        return self.fc2(y.data).view(rows, a, self.n_actions)
