"""The one place that turns the ``device`` config value into a torch device name, and sets torch threads."""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch

from utils.config import ConfigError


def resolve_device(device: str) -> str:
    """``"auto"`` -> ``"cuda"`` when torch sees a GPU, else ``"cpu"``; other names pass through.

    Raises ConfigError for a CUDA device on a machine without one (instead of a late crash).
    """
    device = str(device or "auto")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={device} but torch sees no CUDA GPU. Use device=cpu or device=auto.")
    return device


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch CPU threads, then restore the previous count (``n <= 0``:
    leave the count as it is). Used by the learner (``learner_threads``) so acting and env
    stepping keep ``torch_threads`` while the update may use more cores."""
    n = int(n)
    if n < 0:
        raise ValueError(f"thread count must be >= 0 (0 = unchanged), got {n}")
    before = torch.get_num_threads()
    if n == 0 or n == before:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
