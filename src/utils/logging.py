"""One Logger for every run loop: console summaries, sacred info/metrics and tensorboard."""
from __future__ import annotations

import logging
import math
import sys
from collections import defaultdict
from typing import Any, Dict, List, Optional, Tuple

import numpy as np


class _CurrentStderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at emit time, so lines logged during a sacred run
    land in the run's captured output and lines logged after it still reach the terminal."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def get_console_logger(name: str = "spikemarl.run") -> logging.Logger:
    """A console logger printing ``[LEVEL time] message`` lines (set up once)."""
    logger = logging.getLogger(name)
    if not logger.handlers:
        handler = _CurrentStderrHandler()
        handler.setFormatter(logging.Formatter("[%(levelname)s %(asctime)s] %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger


class Logger:
    """Collects ``(t, value)`` per stat and forwards them to sacred and tensorboard.

    ``log_stat(key, value, t)`` records ``value`` at environment step ``t``. With a sacred run
    attached, ``run.info[key]`` / ``run.info[key + "_T"]`` hold the whole series (what pymarl
    users read from info.json) and ``run.log_scalar`` writes metrics.json.
    """

    def __init__(self, console: Optional[logging.Logger] = None) -> None:
        self.console = console or get_console_logger()
        self.stats: Dict[str, List[Tuple[int, float]]] = defaultdict(list)
        self._sacred_run: Any = None
        self._tb: Any = None

    def setup_sacred(self, sacred_run: Any) -> None:
        """Mirror every stat into ``sacred_run.info`` and its metrics."""
        self._sacred_run = sacred_run

    def setup_tensorboard(self, log_dir: str) -> None:
        """Write stats as tensorboard scalars under ``log_dir``.

        Uses torch's SummaryWriter (needs the ``tensorboard`` package) or ``tensorboard_logger``.
        """
        try:
            from torch.utils.tensorboard import SummaryWriter
            writer = SummaryWriter(log_dir)
            self._tb = lambda k, v, t: writer.add_scalar(k, v, t)
            return
        except ImportError:
            pass
        try:
            from tensorboard_logger import Logger as TBLogger
            tb = TBLogger(log_dir)
            self._tb = lambda k, v, t: tb.log_value(k, v, t)
        except ImportError as exc:
            from utils.registry import MissingDependencyError
            raise MissingDependencyError(
                "use_tensorboard=True needs `pip install tensorboard` (or tensorboard-logger==0.1.0 "
                "with protobuf 3.20.x); or run with use_tensorboard=False.") from exc

    def log_stat(self, key: str, value: float, t: int) -> None:
        """Record ``value`` of stat ``key`` at environment step ``t``."""
        value = float(value)
        t = int(t)
        self.stats[key].append((t, value))
        if self._tb is not None:
            self._tb(key, value, t)
        run = self._sacred_run
        if run is not None:
            run.info.setdefault(key, []).append(value)
            run.info.setdefault(key + "_T", []).append(t)
            run.log_scalar(key, value, t)

    def last(self, key: str) -> Optional[float]:
        """The most recent value of ``key`` or None."""
        series = self.stats.get(key)
        return series[-1][1] if series else None

    def print_recent_stats(self, window: int = 5) -> None:
        """Print the latest step and the mean of each stat's last ``window`` values."""
        if not self.stats or "episode" not in self.stats:
            keys = sorted(self.stats)
        else:
            keys = sorted(k for k in self.stats if k != "episode")
        t = max((s[-1][0] for s in self.stats.values() if s), default=0)
        lines = [f"Recent stats | t_env: {t:>10}"]
        if "episode" in self.stats:
            lines[0] += f" | episode: {int(self.stats['episode'][-1][1]):>8}"
        cells = []
        for k in keys:
            vals = [v for _, v in self.stats[k][-window:]]
            mean = float(np.mean(vals)) if vals else math.nan
            cells.append(f"{k + ':':<24}{mean:>10.4f}")
        for i in range(0, len(cells), 4):
            lines.append("    ".join(cells[i:i + 4]))
        self.console.info("\n".join(lines))
