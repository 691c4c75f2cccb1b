"""Spike functions with surrogate gradients.

Forward pass: Heaviside ``H(v) = 1 if v >= 0 else 0`` where ``v = u - theta`` has already been
formed by the caller. Backward pass: the derivative of a smooth stand-in.

* ``"atan"`` (GRSN paper Eq. 6): ``h(v) = atan(pi/2 * alpha * v) / pi + 1/2``, so
  ``dH/dv := alpha / (2 * (1 + (pi/2 * alpha * v)^2))``; ``alpha`` (default 2) sets the width.
* ``"rect"``: ``dH/dv := 1/a * 1[|v| < a/2]``, width ``a`` (default 1).

Both are written straight-through style, ``H(v).detach() + (g(v) - g(v).detach())`` with
``g`` an antiderivative of the surrogate, so the forward value is exactly the Heaviside step
and autograd sees ``g'(v)``. Plain tensor ops only: works under autograd, TorchScript and
torch.compile without a custom ``autograd.Function``.

The closed-form derivatives (``atan_grad``, ``rect_grad``) are exported too; the fused neuron
kernels use them in their hand-written backward passes.
"""
from __future__ import annotations

import math
from typing import Callable, Dict, Optional

import torch
from torch import Tensor

from utils.registry import lookup

ATAN_ALPHA_DEFAULT = 2.0
RECT_WIDTH_DEFAULT = 1.0


def heaviside(v: Tensor) -> Tensor:
    """Step function, 1.0 where ``v >= 0`` else 0.0, same dtype/shape as ``v``; no gradient."""
    return (v >= 0).to(v.dtype)


def atan_grad(v: Tensor, alpha: float = ATAN_ALPHA_DEFAULT) -> Tensor:
    """Surrogate derivative ``alpha / (2 * (1 + (pi/2 * alpha * v)^2))`` (paper Eq. 6), shape of ``v``."""
    z = (0.5 * math.pi * alpha) * v
    return (0.5 * alpha) / (1.0 + z * z)


def rect_grad(v: Tensor, width: float = RECT_WIDTH_DEFAULT) -> Tensor:
    """Surrogate derivative ``1/width * 1[|v| < width/2]``, shape of ``v``."""
    return (v.abs() < 0.5 * width).to(v.dtype) / width


def spike_atan(v: Tensor, alpha: float = ATAN_ALPHA_DEFAULT) -> Tensor:
    """Heaviside forward, ATan surrogate backward. ``v``: any shape (``u - theta``)."""
    if not v.requires_grad:  # acting / no_grad: the step alone
        return heaviside(v)
    g = torch.atan((0.5 * math.pi * alpha) * v) / math.pi
    return heaviside(v).detach() + (g - g.detach())


def spike_rect(v: Tensor, width: float = RECT_WIDTH_DEFAULT) -> Tensor:
    """Heaviside forward, rectangular surrogate backward (``1/width`` inside ``|v| < width/2``)."""
    if not v.requires_grad:
        return heaviside(v)
    inside = (v.abs() < 0.5 * width).to(v.dtype).detach()
    g = v * inside / width
    return heaviside(v).detach() + (g - g.detach())


SURROGATES: Dict[str, Callable[..., Tensor]] = {}
SURROGATES["atan"] = spike_atan
SURROGATES["rect"] = spike_rect

SURROGATE_GRADS: Dict[str, Callable[..., Tensor]] = {}
SURROGATE_GRADS["atan"] = atan_grad
SURROGATE_GRADS["rect"] = rect_grad

SURROGATE_DEFAULT_WIDTH: Dict[str, float] = {"atan": ATAN_ALPHA_DEFAULT, "rect": RECT_WIDTH_DEFAULT}


def spike(v: Tensor, kind: str = "atan", alpha: Optional[float] = None) -> Tensor:
    """Emit spikes ``H(v)`` with surrogate ``kind`` ("atan" | "rect").

    ``alpha`` is the surrogate's width parameter: alpha of the ATan surrogate (default 2.0) or
    the window width ``a`` of the rectangular one (default 1.0); ``None`` picks the kind's default.
    ``v``: any shape, already ``u - theta``. Returns a tensor of 0/1 with ``v``'s shape and dtype.
    """
    fn = lookup(SURROGATES, kind, what="surrogate")
    width = SURROGATE_DEFAULT_WIDTH[kind] if alpha is None else float(alpha)
    if width <= 0:
        raise ValueError(f"surrogate width/alpha must be > 0, got {width}; set surrogate_alpha > 0")
    return fn(v, width)


def surrogate_grad(v: Tensor, kind: str = "atan", alpha: Optional[float] = None) -> Tensor:
    """Closed-form surrogate derivative ``dH/dv`` of ``kind`` at ``v`` (same width rules as ``spike``)."""
    fn = lookup(SURROGATE_GRADS, kind, what="surrogate")
    width = SURROGATE_DEFAULT_WIDTH[kind] if alpha is None else float(alpha)
    return fn(v, width)
