"""The one place that seeds every random number generator of a run."""
from __future__ import annotations

import random

import numpy as np
import torch


def set_seed(seed: int) -> None:
    """Seed python's ``random``, numpy and torch (CPU and CUDA) from one integer.

    Environments get their own seed from ``args.seed`` when they are built.
    """
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
