"""A GRU over packed sequences with a hand-written backward (``fused_gru``), for the learner's CPU unroll.

Same equations and parameters as one ``nn.GRU`` layer (PyTorch's gate order r, z, n):

    r_t = sigmoid(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)
    z_t = sigmoid(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)
    n_t = tanh(W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn))
    h_t = n_t + z_t * (h_{t-1} - n_t)                       (= (1 - z_t) n_t + z_t h_{t-1})

on rows packed time-major with a shrinking batch (``sizes[t]`` rows at step t, non-increasing, as
in ``components.packing`` and ``PackedSequence``), from a zero state. Why: on one CPU core the
tall-skinny whole-sequence products (``[T*N, 64] x [64, 192]``) run at ~70 % of the large-matmul
rate (their outputs do not fit in cache), while the per-step products (``[N, 64] x [64, 192]``)
run at the full rate; and autograd through a Python loop of the cell costs ~30 graph nodes per
step. Here the forward does every product per step, saves the gates, and the backward walks back
in time once, computing input, hidden and weight gradients per step (weight gradients
accumulated in place). ``tanh`` is computed as ``2 sigmoid(2 v) - 1`` (ATen's CPU tanh is ~6x slower
than its sigmoid on this hardware; same value up to rounding). Values and gradients equal autograd
through the same equations (tested in float64).
"""
from __future__ import annotations

import warnings
from typing import List, Tuple

import torch
from torch import Tensor


def _fwd_loop(x: Tensor, sizes: List[int], w_ih: Tensor, b_ih: Tensor, w_hh: Tensor, b_hh: Tensor,
              save: bool) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """x [rows, I] -> Y [rows, H]; with ``save`` also RZ [rows, 2H], N [rows, H], GHN [rows, H]."""
    H = w_hh.size(1)
    rows = x.size(0)
    Y = x.new_empty(rows, H)
    keep = rows if save else 0
    RZ = x.new_empty(keep, 2 * H)
    N = x.new_empty(keep, H)
    GHN = x.new_empty(keep, H)
    w_ih_t = w_ih.t()
    w_hh_t = w_hh.t()
    h = x.new_zeros(sizes[0] if len(sizes) > 0 else 0, H)
    start = 0
    for n in sizes:
        end = start + n
        h_prev = h[:n]
        gi = torch.addmm(b_ih, x[start:end], w_ih_t)                 # [n, 3H]
        gh = torch.addmm(b_hh, h_prev, w_hh_t)                       # [n, 3H]
        rz = torch.sigmoid(gi[:, :2 * H] + gh[:, :2 * H])
        ghn = gh[:, 2 * H:]
        # tanh(v) = 2 sigmoid(2 v) - 1: ATen's CPU tanh is ~6x slower than its sigmoid here
        cand = torch.sigmoid(torch.addcmul(gi[:, 2 * H:], rz[:, :H], ghn).mul_(2.0)).mul_(2.0).sub_(1.0)
        h = torch.addcmul(cand, rz[:, H:], h_prev - cand, out=Y[start:end])
        if save:
            RZ[start:end] = rz
            N[start:end] = cand
            GHN[start:end] = ghn
        start = end
    return Y, RZ, N, GHN


def _bwd_loop(x: Tensor, sizes: List[int], w_ih: Tensor, w_hh: Tensor, Y: Tensor, RZ: Tensor, N: Tensor,
              GHN: Tensor, gY: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Reverse-time pass: returns dX [rows, I], dW_ih [3H, I], db_ih [3H], dW_hh [3H, H], db_hh [3H]."""
    H = w_hh.size(1)
    dX = torch.empty_like(x)
    dW_ih = torch.zeros_like(w_ih)
    dW_hh = torch.zeros_like(w_hh)
    db_ih = w_ih.new_zeros(3 * H)
    db_hh = w_ih.new_zeros(3 * H)
    starts: List[int] = []
    s = 0
    for n in sizes:
        starts.append(s)
        s += n
    carry = x.new_zeros(0, H)
    for i in range(len(sizes)):
        t = len(sizes) - 1 - i
        n = sizes[t]
        start = starts[t]
        end = start + n
        dh = gY[start:end].clone()
        m = carry.size(0)
        if m > 0:
            dh[:m] += carry
        r = RZ[start:end, :H]
        z = RZ[start:end, H:]
        cand = N[start:end]
        ghn = GHN[start:end]
        if t > 0:
            h_prev = Y[starts[t - 1]:starts[t - 1] + n]
        else:
            h_prev = torch.zeros_like(cand)
        dgi = x.new_empty(n, 3 * H)
        dgh = x.new_empty(n, 3 * H)
        # dn_pre = dh (1 - z) (1 - n^2)
        dn_pre = torch.mul(dh, 1.0 - z) * (1.0 - cand * cand)
        dgi[:, 2 * H:] = dn_pre
        torch.mul(dn_pre, r, out=dgh[:, 2 * H:])
        # dr_pre = dn_pre * ghn * r (1 - r);  dz_pre = dh (h_prev - n) z (1 - z)
        torch.mul(dn_pre * ghn, r * (1.0 - r), out=dgi[:, :H])
        torch.mul(dh * (h_prev - cand), z * (1.0 - z), out=dgi[:, H:2 * H])
        dgh[:, :2 * H] = dgi[:, :2 * H]
        torch.mm(dgi, w_ih, out=dX[start:end])
        dW_ih.addmm_(dgi.t(), x[start:end])
        db_ih += dgi.sum(0)
        db_hh += dgh.sum(0)
        if t > 0:
            dW_hh.addmm_(dgh.t(), h_prev)
        carry = torch.addmm(dh * z, dgh, w_hh)                       # dL/dh_{t-1} on the n rows
    return dX, dW_ih, db_ih, dW_hh, db_hh


def _try_script(fn):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.jit.script(fn)
    except Exception:  # TorchScript unavailable: plain Python loops, same results
        return fn


_FWD = _try_script(_fwd_loop)
_BWD = _try_script(_bwd_loop)


class _FusedGRU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, sizes: List[int], w_ih: Tensor, b_ih: Tensor, w_hh: Tensor,  # type: ignore[override]
                b_hh: Tensor) -> Tensor:
        save = any(ctx.needs_input_grad)
        Y, RZ, N, GHN = _FWD(x, sizes, w_ih, b_ih, w_hh, b_hh, save)
        if save:
            ctx.save_for_backward(x, w_ih, w_hh, Y, RZ, N, GHN)
            ctx.sizes = sizes
        return Y

    @staticmethod
    def backward(ctx, gY: Tensor):  # type: ignore[override]
        x, w_ih, w_hh, Y, RZ, N, GHN = ctx.saved_tensors
        dX, dW_ih, db_ih, dW_hh, db_hh = _BWD(x, ctx.sizes, w_ih, w_hh, Y, RZ, N, GHN, gY.contiguous())
        return dX, None, dW_ih, db_ih, dW_hh, db_hh


def fused_gru(x: Tensor, sizes: List[int], w_ih: Tensor, b_ih: Tensor, w_hh: Tensor, b_hh: Tensor) -> Tensor:
    """GRU from a zero state over packed rows.

    x: ``[rows, I]``, time-major with ``sizes[t]`` rows at step t (non-increasing, ``sum(sizes) == rows``);
    w_ih ``[3H, I]``, b_ih ``[3H]``, w_hh ``[3H, H]``, b_hh ``[3H]`` (``nn.GRU``'s ``*_l0``). Returns the
    hidden states ``[rows, H]`` in the same row order."""
    sizes = [int(n) for n in sizes if int(n) > 0]
    if sum(sizes) != x.shape[0] or any(b > a for a, b in zip(sizes, sizes[1:])):
        raise ValueError(f"fused_gru: sizes must be non-increasing and sum to x's {x.shape[0]} rows, "
                         f"got {sizes[:8]}... (sum {sum(sizes)})")
    return _FusedGRU.apply(x.contiguous(), sizes, w_ih, b_ih, w_hh, b_hh)
