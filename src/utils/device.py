"""The one place that turns the ``device`` config value into a torch device name."""
from __future__ import annotations

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
