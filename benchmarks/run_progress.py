"""A grid run across sessions: its logged stats kept on disk beside its checkpoints, so that a run
continued from a checkpoint (true resume) reports its whole curve, not only the part after the
resume; and ``StopAt``, which stops a run at a deadline with a last checkpoint.

The progress file holds ``{"stats": {key: [[t, value], ...]}, "wall_s": seconds}`` and is rewritten
after every evaluation. A run killed between two checkpoints has logged past its newest one; the
resumed run logs those steps again (identically), so ``load_progress`` keeps only the entries up
to the checkpoint's step.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from typing import Dict, Iterator, List, Optional, Tuple

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


def stop_handled() -> bool:
    """Whether a run loop's ``StopRequest`` handles SIGTERM now (outside one it would kill the process)."""
    from utils.checkpoint import StopRequest

    return isinstance(getattr(signal.getsignal(signal.SIGTERM), "__self__", None), StopRequest)


class StopAt:
    """A deadline for the run in this process: once ``at`` (epoch seconds; None = never) has
    passed, this process gets one SIGTERM, sent only while the run loop's ``StopRequest`` handles
    SIGTERM, so the loop saves a last checkpoint at its next safe point and stops
    (``KeyboardInterrupt``). ``check()`` looks at once (e.g. from the logger); inside ``watch()``
    a background thread also looks every ``poll_s`` seconds, so the stop does not wait for the
    next logged stat."""

    def __init__(self, at: Optional[float], poll_s: float = 5.0) -> None:
        self.at = at
        self.poll_s = float(poll_s)
        self.sent = False

    def passed(self) -> bool:
        """Whether the deadline has passed (e.g. a job that should not start any more)."""
        return self.at is not None and time.time() > self.at

    def check(self) -> None:
        self._fire_if_due()

    def _fire_if_due(self) -> None:
        if not self.sent and self.passed() and stop_handled():
            self.sent = True
            os.kill(os.getpid(), signal.SIGTERM)

    @contextlib.contextmanager
    def watch(self) -> Iterator["StopAt"]:
        """Look every ``poll_s`` seconds in a daemon thread while the block runs."""
        done = threading.Event()

        def poll() -> None:
            while not done.wait(self.poll_s) and not self.sent:
                self._fire_if_due()

        thread = threading.Thread(target=poll, name="stop-at", daemon=True)
        if self.at is not None:
            thread.start()
        try:
            yield self
        finally:
            done.set()
            if thread.is_alive():
                thread.join()
