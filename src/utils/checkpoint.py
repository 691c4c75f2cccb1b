"""Saving and loading checkpoints: ``<model_dir>/<t_env>/<part>.pt`` for each part."""
from __future__ import annotations

import contextlib
import os
from typing import Any, Callable, Dict, Iterator, Tuple

import torch


def model_dir_for(args: Any) -> str:
    """Where a run saves its checkpoints: ``<local_results_path>/models/<unique_token>``."""
    return os.path.join(args.local_results_path, "models", args.unique_token)


def save_checkpoint(model_dir: str, t_env: int, parts: Dict[str, Any]) -> str:
    """Save ``part.state_dict()`` of every part to ``<model_dir>/<t_env>/<name>.pt``.

    The file is written to a temporary name first and renamed, so an interrupted save never
    leaves a truncated checkpoint behind. Returns the step directory.
    """
    step_dir = os.path.join(model_dir, str(int(t_env)))
    os.makedirs(step_dir, exist_ok=True)
    for name, part in parts.items():
        path = os.path.join(step_dir, f"{name}.pt")
        torch.save(part.state_dict(), path + ".tmp")
        os.replace(path + ".tmp", path)
    return step_dir


def find_checkpoint(checkpoint_path: str, load_step: int = 0) -> Tuple[str, int]:
    """Pick the step directory to load under ``checkpoint_path``.

    ``checkpoint_path`` is either a run's model dir (holding numeric step folders) or one step
    folder itself. With ``load_step == 0`` the latest step is taken, else the closest one.
    Returns ``(step_dir, t_env)``.
    """
    if not os.path.isdir(checkpoint_path):
        raise FileNotFoundError(
            f"checkpoint_path '{checkpoint_path}' is not a directory. Point it at a run's model dir "
            f"(results/models/<token>) or one of its step folders.")
    base = os.path.basename(os.path.normpath(checkpoint_path))
    if base.isdigit() and any(f.endswith(".pt") for f in os.listdir(checkpoint_path)):
        return checkpoint_path, int(base)
    steps = [int(d) for d in os.listdir(checkpoint_path)
             if d.isdigit() and os.path.isdir(os.path.join(checkpoint_path, d))]
    if not steps:
        raise FileNotFoundError(
            f"no checkpoint step folders (numeric names) under '{checkpoint_path}'. "
            f"Did the run save models (save_model=True)?")
    step = max(steps) if load_step == 0 else min(steps, key=lambda s: abs(s - load_step))
    return os.path.join(checkpoint_path, str(step)), step


def load_checkpoint(step_dir: str, parts: Dict[str, Any], map_location: Any = "cpu",
                    required: Tuple[str, ...] = ()) -> None:
    """Load each ``<step_dir>/<name>.pt`` into ``parts[name]`` (via ``load_state_dict``).

    Parts named in ``required`` must exist; other missing parts are skipped (e.g. optimiser
    state when only a deployable model was saved).
    """
    for name, part in parts.items():
        path = os.path.join(step_dir, f"{name}.pt")
        if not os.path.exists(path):
            if name in required:
                raise FileNotFoundError(f"checkpoint part '{name}.pt' missing in '{step_dir}'.")
            continue
        state = torch.load(path, map_location=map_location, weights_only=False)
        part.load_state_dict(state)


@contextlib.contextmanager
def checkpoint_on_interrupt(save: Callable[[], object], enabled: bool) -> Iterator[None]:
    """Run a training loop; if it stops with an exception (Ctrl-C, SIGTERM, a crash), call
    ``save()`` (when ``enabled``) before the exception propagates, so no training is lost."""
    try:
        yield
    except BaseException:
        if enabled:
            save()
        raise
