"""Where every benchmark's results go: ``<out_dir>/<name>.json`` and ``<name>.md``, table printed."""
from __future__ import annotations

import json
import os
from typing import Any, Sequence, Tuple


def write_report(out_dir: str, name: str, data: Any, markdown: str) -> None:
    """Write ``data`` as JSON and ``markdown`` beside it, then print the markdown."""
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, f"{name}.json"), "w") as f:
        json.dump(data, f, indent=1, default=float)
    with open(os.path.join(out_dir, f"{name}.md"), "w") as f:
        f.write(markdown if markdown.endswith("\n") else markdown + "\n")
    print(markdown)


def compare_means(a_mean: float, a_std: float, b_mean: float, b_std: float) -> Tuple[str, float, float]:
    """How a cell compares with another over seeds: ``("above" | "level" | "below", a_mean - b_mean,
    tolerance)``; above or below only when the means are further apart than the larger of the two
    stds over seeds (the tolerance), else level. Higher is better."""
    diff = a_mean - b_mean
    tol = max(a_std, b_std)
    return ("level" if abs(diff) <= tol else "above" if diff > 0 else "below"), diff, tol


def compare_seeds(a: Sequence[float], b: Sequence[float]) -> Tuple[str, float, float]:
    """``compare_means`` on two cells given as their per-seed values (mean and population std)."""
    import numpy as np

    return compare_means(float(np.mean(a)), float(np.std(a)), float(np.mean(b)), float(np.std(b)))


def relation(how: str) -> str:
    """The words for a ``compare_means`` result inside a sentence: "above", "below" or "level with"."""
    return "level with" if how == "level" else how
