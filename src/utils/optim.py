"""One gradient step, the one place that checks a loss for NaN/inf before applying it."""
from __future__ import annotations

from typing import Iterable, Optional

import torch


def check_finite(loss: torch.Tensor, what: str, hint: str) -> None:
    """Raise FloatingPointError naming ``what`` and how to fix it when ``loss`` is NaN or inf."""
    if not torch.isfinite(loss).all():
        raise FloatingPointError(f"{what} became {loss.detach().flatten()[0].item()}. {hint}")


def gradient_step(optimiser: torch.optim.Optimizer, loss: torch.Tensor, what: str, hint: str,
                  params: Optional[Iterable[torch.nn.Parameter]] = None,
                  clip: Optional[float] = None) -> Optional[float]:
    """Check ``loss``, back-propagate it, optionally clip the gradient norm of ``params`` to
    ``clip`` and step ``optimiser``. Returns the (pre-clip) gradient norm when clipping."""
    check_finite(loss, what, hint)
    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    norm = None
    if clip is not None:
        norm = float(torch.nn.utils.clip_grad_norm_(list(params), clip))
    optimiser.step()
    return norm
