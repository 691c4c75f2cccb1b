"""Packed layout of variable-length episodes: only real time slots, no padding.

Episodes are ranked by length (longest first, ties by batch index) and their slots stored
time-major: the rows of time ``t`` are the ``batch_sizes[t]`` episodes still running at ``t``,
in rank order. A recurrence therefore steps through ``t`` on a shrinking prefix of its state
(``h[:batch_sizes[t]]``), and per-step layers run once on all ``n_rows`` real slots.

    padded  x [batch, T, ...]  --pack-->  [n_rows, ...]  --unpack-->  [batch, T, ...] (zeros elsewhere)
"""
from __future__ import annotations

from typing import List

import torch
from torch import Tensor


class Packing:
    """Index maps between padded ``[batch, T, ...]`` tensors and packed ``[n_rows, ...]`` rows.

    ``lengths`` [batch]: slots used by each episode (each ``<= T``, the padded time length).
    """

    def __init__(self, lengths: Tensor, T: int) -> None:
        lengths = lengths.detach().to("cpu", torch.long)
        if lengths.dim() != 1:
            raise ValueError(f"Packing: lengths must be [batch], got shape {list(lengths.shape)}")
        if lengths.numel() and (int(lengths.min()) < 0 or int(lengths.max()) > T):
            raise ValueError(f"Packing: lengths must lie in [0, {T}], got {lengths.tolist()}")
        self.batch, self.T = int(lengths.numel()), int(T)
        # stable sort: longest first, equal lengths keep batch order
        self.order = torch.sort(-lengths, stable=True).indices            # rank -> batch index
        self.sorted_lengths = lengths[self.order]                          # [batch], non-increasing
        steps = torch.arange(self.T)
        self.batch_sizes = (self.sorted_lengths.unsqueeze(0) > steps.unsqueeze(1)).sum(1)   # [T]
        self.bs_list: List[int] = self.batch_sizes.tolist()
        self.offsets: List[int] = [0]
        for n in self.bs_list:
            self.offsets.append(self.offsets[-1] + n)
        self.n_rows = self.offsets[-1]
        # every episode uses all T slots: the packed rows already are the time-major layout
        self.full = self.n_rows == self.T * self.batch
        # padded position (episode b, time t, rank r) of every packed row, time-major
        t_idx = torch.repeat_interleave(steps, self.batch_sizes)
        r_idx = torch.cat([torch.arange(n) for n in self.bs_list]) if self.n_rows else steps[:0]
        self.t_idx, self.r_idx, self.b_idx = t_idx, r_idx, self.order[r_idx]
        self.tr_flat = t_idx * self.batch + r_idx                          # row in a flat [T * batch]
        # row of each padded slot, -1 where the slot is padding
        self.row_of = torch.full((self.batch, self.T), -1, dtype=torch.long)
        self.row_of[self.b_idx, self.t_idx] = torch.arange(self.n_rows)

    @classmethod
    def from_mask(cls, mask: Tensor, extra: int = 0) -> "Packing":
        """Slots ``0 .. filled + extra - 1`` of each episode, ``mask`` [batch, T] with leading ones
        (``extra=1`` also keeps the observation slot after the last transition)."""
        return cls(mask.sum(1).round().long() + extra, mask.shape[1] + extra)

    def pack(self, x: Tensor) -> Tensor:
        """``x`` [batch, T, ...] (at least T columns) -> ``[n_rows, ...]``."""
        flat = (self.b_idx * x.shape[1] + self.t_idx).to(x.device)
        return x.flatten(0, 1).index_select(0, flat)

    def unpack(self, rows: Tensor, fill: float = 0.0) -> Tensor:
        """``rows`` [n_rows, ...] -> ``[batch, T, ...]`` with ``fill`` in the padding slots."""
        out = rows.new_full((self.batch * self.T,) + tuple(rows.shape[1:]), fill)
        flat = (self.b_idx * self.T + self.t_idx).to(rows.device)
        return out.index_copy(0, flat, rows).view((self.batch, self.T) + tuple(rows.shape[1:]))

    def to_time_major(self, rows: Tensor) -> Tensor:
        """``rows`` [n_rows, ...] -> ``[T, batch, ...]`` in rank order (zeros in the padding)."""
        if self.full:   # no padding: a view (row t * batch + r is time t, rank r)
            return rows.reshape((self.T, self.batch) + tuple(rows.shape[1:]))
        out = rows.new_zeros((self.T * self.batch,) + tuple(rows.shape[1:]))
        flat = self.tr_flat.to(rows.device)
        return out.index_copy(0, flat, rows).view((self.T, self.batch) + tuple(rows.shape[1:]))

    def from_time_major(self, x: Tensor) -> Tensor:
        """``x`` [T, batch, ...] in rank order -> ``[n_rows, ...]`` (inverse of ``to_time_major``)."""
        if self.full:
            return x.flatten(0, 1)
        return x.flatten(0, 1).index_select(0, self.tr_flat.to(x.device))

    def rows_in(self, other: "Packing") -> Tensor:
        """For each row of ``other`` (a packing of a subset of these slots), its row here: ``[other.n_rows]``."""
        rows = self.row_of[other.b_idx, other.t_idx]
        if bool((rows < 0).any()):
            raise ValueError("Packing.rows_in: the other packing holds slots this one does not")
        return rows
