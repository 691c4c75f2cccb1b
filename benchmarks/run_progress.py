"""A benchmark run's logged stats kept on disk beside its checkpoints, so that a run continued
from a checkpoint (true resume) reports its whole curve, not only the part after the resume.

The progress file holds ``{"stats": {key: [[t, value], ...]}, "wall_s": seconds}`` and is rewritten
after every evaluation. A run killed between two checkpoints has logged past its newest one; the
resumed run logs those steps again (identically), so ``load_progress`` keeps only the entries up
to the checkpoint's step.
"""
from __future__ import annotations

import json
import os
from typing import Dict, List, Tuple

Stats = Dict[str, List[List[float]]]


def trimmed(stats: Stats, t_max: int) -> Stats:
    """``stats`` without the entries logged after step ``t_max``."""
    return {k: [list(e) for e in v if e[0] <= t_max] for k, v in stats.items()}


def save_progress(path: str, stats: Stats, wall_s: float) -> None:
    """Write ``stats`` and the run's wall time so far to ``path`` (atomically)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"stats": stats, "wall_s": float(wall_s)}, f)
    os.replace(tmp, path)


def load_progress(path: str, t_checkpoint: int) -> Tuple[Stats, float]:
    """The stats logged up to ``t_checkpoint`` and the wall time so far (empty and 0 without a file)."""
    if not os.path.exists(path):
        return {}, 0.0
    with open(path) as f:
        saved = json.load(f)
    return trimmed(saved["stats"], int(t_checkpoint)), float(saved.get("wall_s", 0.0))
