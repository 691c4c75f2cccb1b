"""One gradient step, the one place that checks a loss for NaN/inf before applying it; and the
learning rates of resumed optimisers (``apply_config_lrs``)."""
from __future__ import annotations

from typing import Callable, Dict, Iterable, List, Mapping, Optional, Tuple

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


def apply_config_lrs(optimisers: Mapping[str, Tuple[torch.optim.Optimizer, float]],
                     log: Optional[Callable[[str], None]] = None) -> Dict[str, Tuple[List[float], float]]:
    """Set every param group's learning rate from the run's config after a resume.

    ``optimisers``: ``{config key: (optimiser, lr from the config)}``, e.g.
    ``{"lr": (learner.optimiser, args.lr)}``. ``load_state_dict`` of a torch optimiser brings back
    the saved ``lr`` of each param group, so without this an ``lr=...`` override of a resumed run
    would be written to its config but never used. Returns ``{key: (old lrs, new lr)}`` for the
    keys whose rate changed, and logs one line for them through ``log``.
    """
    changed: Dict[str, Tuple[List[float], float]] = {}
    for key, (optimiser, lr) in optimisers.items():
        lr = float(lr)
        old = [float(group["lr"]) for group in optimiser.param_groups]
        for group in optimiser.param_groups:
            group["lr"] = lr
        if any(o != lr for o in old):
            changed[key] = (old, lr)
    if changed and log is not None:
        cells = []
        for key, (old, lr) in changed.items():
            before = ", ".join(f"{o:g}" for o in sorted(set(old)))
            cells.append(f"{key} {before} -> {lr:g}")
        log("learning rate changed from the checkpoint's to this run's config: " + "; ".join(cells))
    return changed
