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
from modules.fused_gru import fused_gru

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
        self.fused_gru = bool(arg(args, "rnn_fused_gru", True))

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

        fc1 and fc2 run once on the real rows; the recurrence steps through time on the shrinking
        prefix of still-running episodes. The rows' layout already is a ``PackedSequence`` (time-major,
        longest episodes first, agents innermost): without autograd nn.GRU runs it (its C++ loop is
        fastest there); with autograd a Python loop of nn.GRU's equations on precomputed input
        products (nn.GRU's packed backward is about 2x slower on CPU). With ``rnn_fused_gru`` (default)
        both cases run ``modules.fused_gru`` instead (per-step products, hand-written backward)."""
        check_inputs("RNNAgent", inputs, 3, self.input_shape)
        rows, a, e = inputs.shape
        x = F.relu(self.fc1(inputs.reshape(rows * a, e)))
        sizes = [n * a for n in packing.bs_list if n > 0]                 # (trailing zeros: empty steps)
        if self.fused_gru:   # rnn_fused_gru: same values and gradients, hand-written backward
            y = fused_gru(x, sizes, self.rnn.weight_ih_l0, self.rnn.bias_ih_l0, self.rnn.weight_hh_l0,
                          self.rnn.bias_hh_l0) if sizes else x.new_zeros(0, self.hidden_dim)
            return self.fc2(y).view(rows, a, self.n_actions)
        if not torch.is_grad_enabled():
            y, _ = self.rnn(PackedSequence(x, torch.tensor(sizes, dtype=torch.long)))
            return self.fc2(y.data).view(rows, a, self.n_actions)
        gi = F.linear(x, self.rnn.weight_ih_l0, self.rnn.bias_ih_l0)      # [rows*a, 3H]
        w_hh, b_hh = self.rnn.weight_hh_l0, self.rnn.bias_hh_l0
        h = self.init_hidden(sizes[0] if sizes else 0)
        outs = []
        # one split (not a slice per step: each slice's backward would zero-fill all of gi)
        for n, gi_t in zip(sizes, gi.split(sizes)):
            h_prev = h[:n]
            i_r, i_z, i_n = gi_t.chunk(3, dim=1)
            h_r, h_z, h_n = F.linear(h_prev, w_hh, b_hh).chunk(3, dim=1)
            r = torch.sigmoid(i_r + h_r)
            z = torch.sigmoid(i_z + h_z)
            cand = torch.tanh(i_n + r * h_n)
            h = cand + z * (h_prev - cand)                                 # (1 - z) * cand + z * h
            outs.append(h)
        y = torch.cat(outs, dim=0) if outs else x.new_zeros(0, self.hidden_dim)
        return self.fc2(y).view(rows, a, self.n_actions)
