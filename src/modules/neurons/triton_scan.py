"""Triton kernels for the spiking recursions (GPU path of ``scan.py``; Triton is optional).

Same functions, same maths as the element-wise loops in ``scan.py`` (read that module's docstring
for the equations), written as Triton kernels in which **one program owns a block of neurons and
loops over time inside the kernel**: the state of its ``BLOCK`` neurons stays in registers for the
whole sequence, so a sequence costs one launch per direction instead of one small launch per
time step and per op (the reason the eager loop is slow on a GPU).

* ``gated_scan(pre[T, B, 2H], c0[B, H]) -> C[T, B, H]``: GRSN's gated current. Forward stores
  ``C``; backward recomputes ``f, j`` from ``pre`` and reads ``C[t-1]``.
* ``membrane_scan(cur[T, B, H], uh0[B, H], beta[H], theta, soft, surrogate, alpha)
  -> (O[T, B, H], uhat_T[B, H], U[T, B, H])``: the LIF membrane with soft or hard reset.
  Forward stores ``U`` and ``O``; backward recomputes ``uhat_{t-1}`` from ``U[t-1]`` (reset of
  the stored membrane) and the surrogate derivative from ``U[t]``, so nothing else is saved.
  ``d beta`` is summed over time inside the kernel and over the batch by one torch ``sum``.

Surrogates ``atan`` and ``rect`` (``surrogate.py``) are compiled in as constants. Arithmetic is in
the input dtype, float32 or float64 (others: ``supports`` says why not).

Kernels are made on first use, one set per mode: compiled for CUDA tensors, run by Triton's
interpreter for CPU tensors (how the tests check them on a machine without a GPU; slow, for
tests only). ``TRITON_INTERPRET=1`` in the environment makes every set interpreted.
"""
from __future__ import annotations

import os
from contextlib import nullcontext
from typing import Callable, Dict, Optional, Tuple

import torch
from torch import Tensor

try:  # optional dependency: scan.py falls back to its torch loops without it
    import triton
    import triton.language as tl
    TRITON_IMPORT_ERROR: Optional[str] = None
except ImportError as exc:  # pragma: no cover - depends on the environment
    triton = None
    tl = None
    TRITON_IMPORT_ERROR = f"{type(exc).__name__}: {exc}"

AVAILABLE = triton is not None
INSTALL_HINT = ("Triton is not installed; it is optional (GPU kernels for the spiking scans): "
                "pip install -r requirements-gpu.txt")
BLOCK = 128           # neurons per program (one per thread with 4 warps)
NUM_WARPS = 4
MAX_ELEMENTS = 2 ** 31 - 1   # int32 offsets inside the kernels
# float32/64 only: the backward recomputes spikes from the stored membrane, which must round-trip
# exactly (a float16 U could flip a spike); other dtypes keep the torch loops
SUPPORTED_DTYPES = (torch.float32, torch.float64)
SURROGATE_IDS: Dict[str, int] = {"atan": 0, "rect": 1}


# ------------------------------------------------------------------ kernel bodies (plain functions)
# Flattened layout: a [T, B, H] tensor is T rows of N = B * H neurons; neuron n is (b, h) =
# (n // H, n % H), its value at step t sits at t * N + n. ``pre`` is [T, B, 2H]: f at
# t * 2N + b * 2H + h, j at the same + H.

def _gated_fwd_kernel(pre_ptr, c0_ptr, c_ptr, T, N, H, BLOCK: tl.constexpr, F64: tl.constexpr):
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    m = offs < N
    pf = (offs // H) * (2 * H) + offs % H
    acc = tl.float64 if F64 else tl.float32
    c = tl.load(c0_ptr + offs, mask=m, other=0.0).to(acc)
    for t in range(T):
        fp = tl.load(pre_ptr + t * 2 * N + pf, mask=m, other=0.0).to(acc)
        jp = tl.load(pre_ptr + t * 2 * N + pf + H, mask=m, other=0.0).to(acc)
        f = 1.0 / (1.0 + tl.exp(-fp))
        j = tl.maximum(jp, 0.0)
        c = j + f * (c - j)
        tl.store(c_ptr + t * N + offs, c.to(c_ptr.dtype.element_ty), mask=m)


def _gated_bwd_kernel(pre_ptr, c0_ptr, c_ptr, gc_ptr, gpre_ptr, gc0_ptr, T, N, H,
                      BLOCK: tl.constexpr, F64: tl.constexpr):
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    m = offs < N
    pf = (offs // H) * (2 * H) + offs % H
    acc = tl.float64 if F64 else tl.float32
    c0 = tl.load(c0_ptr + offs, mask=m, other=0.0).to(acc)
    carry = tl.full([BLOCK], 0.0, acc)          # f_{t+1} * G_{t+1}
    for i in range(T):
        t = T - 1 - i
        g = tl.load(gc_ptr + t * N + offs, mask=m, other=0.0).to(acc) + carry   # dL/dc_t, all paths
        fp = tl.load(pre_ptr + t * 2 * N + pf, mask=m, other=0.0).to(acc)
        jp = tl.load(pre_ptr + t * 2 * N + pf + H, mask=m, other=0.0).to(acc)
        f = 1.0 / (1.0 + tl.exp(-fp))
        j = tl.maximum(jp, 0.0)
        has_prev = tl.full([BLOCK], t, tl.int32) > 0     # (block-shaped: the interpreter needs it)
        cprev = tl.load(c_ptr + (t - 1) * N + offs, mask=m & has_prev, other=0.0).to(acc)
        cprev = tl.where(has_prev, cprev, c0)
        a = g * (1.0 - f)                          # dL/dj
        tl.store(gpre_ptr + t * 2 * N + pf + H, tl.where(jp > 0.0, a, 0.0).to(gpre_ptr.dtype.element_ty),
                 mask=m)
        tl.store(gpre_ptr + t * 2 * N + pf, ((cprev - j) * f * a).to(gpre_ptr.dtype.element_ty), mask=m)
        carry = f * g
    tl.store(gc0_ptr + offs, carry.to(gc0_ptr.dtype.element_ty), mask=m)


def _membrane_fwd_kernel(cur_ptr, uh0_ptr, beta_ptr, o_ptr, u_ptr, uhT_ptr, T, N, H, theta,
                         SOFT: tl.constexpr, BLOCK: tl.constexpr, F64: tl.constexpr):
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    m = offs < N
    acc = tl.float64 if F64 else tl.float32
    beta = tl.load(beta_ptr + offs % H, mask=m, other=0.0).to(acc)
    uh = tl.load(uh0_ptr + offs, mask=m, other=0.0).to(acc)
    for t in range(T):
        cur = tl.load(cur_ptr + t * N + offs, mask=m, other=0.0).to(acc)
        u = (1.0 - beta) * cur + beta * uh
        o = tl.where(u >= theta, 1.0, 0.0).to(acc)
        if SOFT:
            uh = u - theta * o
        else:
            uh = u - o * u
        tl.store(u_ptr + t * N + offs, u.to(u_ptr.dtype.element_ty), mask=m)
        tl.store(o_ptr + t * N + offs, o.to(o_ptr.dtype.element_ty), mask=m)
    tl.store(uhT_ptr + offs, uh.to(uhT_ptr.dtype.element_ty), mask=m)


def _membrane_bwd_kernel(cur_ptr, uh0_ptr, beta_ptr, u_ptr, go_ptr, guhT_ptr,
                         gcur_ptr, gbeta_ptr, guh0_ptr, T, N, H, theta, alpha,
                         SOFT: tl.constexpr, SURROGATE: tl.constexpr, BLOCK: tl.constexpr,
                         F64: tl.constexpr):
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    m = offs < N
    acc = tl.float64 if F64 else tl.float32
    beta = tl.load(beta_ptr + offs % H, mask=m, other=0.0).to(acc)
    uh0 = tl.load(uh0_ptr + offs, mask=m, other=0.0).to(acc)
    guh = tl.load(guhT_ptr + offs, mask=m, other=0.0).to(acc)     # dL/d uhat_t, from later steps
    gbeta = tl.full([BLOCK], 0.0, acc)
    nonempty = tl.full([BLOCK], T, tl.int32) > 0
    u = tl.load(u_ptr + (T - 1) * N + offs, mask=m & nonempty, other=0.0).to(acc)
    for i in range(T):
        t = T - 1 - i
        has_prev = tl.full([BLOCK], t, tl.int32) > 0
        uprev = tl.load(u_ptr + (t - 1) * N + offs, mask=m & has_prev, other=0.0).to(acc)
        oprev = tl.where(uprev >= theta, 1.0, 0.0).to(acc)
        if SOFT:
            uhprev = uprev - theta * oprev
        else:
            uhprev = uprev - oprev * uprev
        uhprev = tl.where(has_prev, uhprev, uh0)
        v = u - theta
        if SURROGATE == 0:   # atan: alpha / (2 (1 + (pi/2 alpha v)^2))
            z = (0.5 * 3.141592653589793 * alpha) * v
            sg = (0.5 * alpha) / (1.0 + z * z)
        else:                # rect: 1/alpha inside |v| < alpha/2
            sg = tl.where(tl.abs(v) < 0.5 * alpha, 1.0 / alpha, 0.0).to(acc)
        if SOFT:             # uhat = u - theta o
            p = 1.0 - theta * sg
        else:                # uhat = (1 - o) u
            o = tl.where(u >= theta, 1.0, 0.0).to(acc)
            p = 1.0 - u * sg - o
        go = tl.load(go_ptr + t * N + offs, mask=m, other=0.0).to(acc)
        cur = tl.load(cur_ptr + t * N + offs, mask=m, other=0.0).to(acc)
        gu = sg * go + guh * p                      # dL/du_t
        tl.store(gcur_ptr + t * N + offs, (gu * (1.0 - beta)).to(gcur_ptr.dtype.element_ty), mask=m)
        gbeta += gu * (uhprev - cur)                # du_t/dbeta = uhat_{t-1} - cur_t
        guh = gu * beta
        u = uprev
    tl.store(guh0_ptr + offs, guh.to(guh0_ptr.dtype.element_ty), mask=m)
    tl.store(gbeta_ptr + offs, gbeta.to(gbeta_ptr.dtype.element_ty), mask=m)


_BODIES = {"gated_fwd": _gated_fwd_kernel, "gated_bwd": _gated_bwd_kernel,
           "membrane_fwd": _membrane_fwd_kernel, "membrane_bwd": _membrane_bwd_kernel}
_KERNELS: Dict[bool, Dict[str, Callable]] = {}


def _kernels(interpret: bool) -> Dict[str, Callable]:
    """The four kernels, jitted on first use: interpreted (CPU tensors) or compiled (CUDA)."""
    if not AVAILABLE:
        raise RuntimeError(f"{INSTALL_HINT} ({TRITON_IMPORT_ERROR})")
    interpret = interpret or os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")
    if interpret not in _KERNELS:
        # triton.jit reads TRITON_INTERPRET when it decorates: set it for the decoration only
        old = os.environ.get("TRITON_INTERPRET")
        os.environ["TRITON_INTERPRET"] = "1" if interpret else "0"
        try:
            _KERNELS[interpret] = {k: triton.jit(fn) for k, fn in _BODIES.items()}
        finally:
            if old is None:
                os.environ.pop("TRITON_INTERPRET", None)
            else:
                os.environ["TRITON_INTERPRET"] = old
    return _KERNELS[interpret]


def supports(*tensors: Tensor) -> Optional[str]:
    """None when the kernels can take these tensors, else the reason they cannot."""
    if not AVAILABLE:
        return INSTALL_HINT
    for x in tensors:
        if x.dtype not in SUPPORTED_DTYPES:
            return f"dtype {x.dtype} (Triton scans take {', '.join(map(str, SUPPORTED_DTYPES))})"
        if x.numel() > MAX_ELEMENTS:
            return f"{x.numel()} elements exceed the kernels' int32 offsets"
    return None


def _launch(name: str, ref: Tensor, n: int, *args, **meta) -> None:
    if n == 0:
        return
    kern = _kernels(not ref.is_cuda)[name]
    grid = (triton.cdiv(n, BLOCK),)
    with torch.cuda.device(ref.device) if ref.is_cuda else nullcontext():
        kern[grid](*args, BLOCK=BLOCK, F64=ref.dtype == torch.float64, num_warps=NUM_WARPS, **meta)


# ------------------------------------------------------------------ autograd Functions
class _GatedScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, pre: Tensor, c0: Tensor) -> Tensor:  # type: ignore[override]
        T, B, H = pre.shape[0], c0.shape[0], c0.shape[1]
        C = pre.new_empty((T, B, H))
        _launch("gated_fwd", pre, B * H, pre, c0, C, T, B * H, H)
        ctx.save_for_backward(pre, c0, C)
        return C

    @staticmethod
    def backward(ctx, gC: Tensor):  # type: ignore[override]
        pre, c0, C = ctx.saved_tensors
        T, B, H = C.shape
        g_pre = torch.empty_like(pre)
        g_c0 = torch.empty_like(c0)
        _launch("gated_bwd", pre, B * H, pre, c0, C, gC.contiguous(), g_pre, g_c0, T, B * H, H)
        return g_pre, g_c0


def gated_scan(pre: Tensor, c0: Tensor) -> Tensor:
    """Triton version of ``scan.gated_scan``: pre [T, B, 2H], c0 [B, H] -> C [T, B, H]."""
    return _GatedScan.apply(pre.contiguous(), c0.contiguous())


class _MembraneScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, cur: Tensor, uh0: Tensor, beta: Tensor, theta: float, soft: bool,
                surrogate: str, alpha: float):  # type: ignore[override]
        T, B, H = cur.shape
        O = torch.empty_like(cur)
        U = torch.empty_like(cur)
        uhT = uh0.clone() if T == 0 else torch.empty_like(uh0)
        b = beta.detach().to(cur.dtype).contiguous()
        _launch("membrane_fwd", cur, B * H, cur, uh0, b, O, U, uhT, T, B * H, H, theta, SOFT=soft)
        ctx.save_for_backward(cur, uh0, beta, U)
        ctx.cfg = (theta, soft, SURROGATE_IDS[surrogate], alpha)
        ctx.mark_non_differentiable(U)
        return O, uhT, U

    @staticmethod
    def backward(ctx, gO: Optional[Tensor], g_uhT: Optional[Tensor], _gU: Optional[Tensor]):  # type: ignore[override]
        cur, uh0, beta, U = ctx.saved_tensors
        theta, soft, sid, alpha = ctx.cfg
        T, B, H = cur.shape
        gO = torch.zeros_like(cur) if gO is None else gO.contiguous()
        g_uhT = torch.zeros_like(uh0) if g_uhT is None else g_uhT.contiguous()
        g_cur = torch.empty_like(cur)
        g_beta_part = torch.empty_like(uh0)          # summed over time, per (batch, neuron)
        g_uh0 = torch.empty_like(uh0)
        b = beta.detach().to(cur.dtype).contiguous()
        _launch("membrane_bwd", cur, B * H, cur, uh0, b, U, gO, g_uhT, g_cur, g_beta_part, g_uh0,
                T, B * H, H, theta, alpha, SOFT=soft, SURROGATE=sid)
        g_beta = g_beta_part.sum(0).to(beta.dtype).reshape(beta.shape) if ctx.needs_input_grad[2] else None
        return g_cur, g_uh0, g_beta, None, None, None, None


def membrane_scan(cur: Tensor, uh0: Tensor, beta: Tensor, theta: float, soft: bool,
                  surrogate: str = "atan", alpha: float = 2.0) -> Tuple[Tensor, Tensor, Tensor]:
    """Triton version of ``scan.membrane_scan``: cur [T, B, H], uh0 [B, H], beta [H] ->
    spikes O [T, B, H], final uhat [B, H], pre-reset membrane U [T, B, H] (no gradient)."""
    if surrogate not in SURROGATE_IDS:
        raise ValueError(f"Triton membrane_scan: surrogate must be one of {sorted(SURROGATE_IDS)}, "
                         f"got {surrogate!r}")
    if beta.numel() != cur.shape[-1]:
        raise ValueError(f"Triton membrane_scan: beta must hold one decay per neuron "
                         f"({cur.shape[-1]}), got shape {list(beta.shape)}")
    return _MembraneScan.apply(cur.contiguous(), uh0.contiguous(), beta, float(theta), bool(soft),
                               surrogate, float(alpha))


__all__ = ["AVAILABLE", "INSTALL_HINT", "gated_scan", "membrane_scan", "supports"]
