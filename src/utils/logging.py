"""One Logger for every run loop: console progress, sacred info/metrics and tensorboard.

Console format (the one place for it; all three run loops use it):

    t_env: 20000 / 400000 (5.0 %) | 655 env steps/s | elapsed 0h00m31s | left ~0h09m40s
    Latest stats at t_env 20000 (each stat's last logged value):
    return_mean:      8.1000    epsilon:          0.8100    ...
    Test at t_env 20000: test_battle_won_mean 0.3750 (best 0.4062 at t_env 10000) | test_return_mean ...

``print_progress`` prints the first two parts at each log interval; ``print_test`` prints the
latest test result (and the best so far) on its own line after every test. No value is a
running mean unless its name says so (``*_mean`` stats are means over the episodes or updates
since the previous log, as logged by the run loop).
"""
from __future__ import annotations

import logging
import math
import os
import sys
import time
from collections import defaultdict
from typing import Any, Dict, List, Optional, Tuple

# test stats whose best value so far is shown beside the latest one (higher is better)
BEST_KEYS = ("test_battle_won_mean", "test_return_mean")


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


def time_str(seconds: float) -> str:
    """``3725.4`` -> ``"1h02m05s"``; negative or non-finite -> ``"-"``."""
    if not math.isfinite(seconds) or seconds < 0:
        return "-"
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m{seconds % 60:02d}s"


def progress_line(t_env: int, t_max: int, steps_per_s: Optional[float], elapsed_s: float,
                  left_s: Optional[float]) -> str:
    """``t_env: T / T_MAX (P %) | R env steps/s | elapsed E | left ~L`` (unknowns print ``-``)."""
    pct = f" ({100.0 * t_env / t_max:.1f} %)" if t_max > 0 else ""
    rate = "-" if steps_per_s is None else f"{steps_per_s:,.0f}"
    left = "-" if left_s is None else "~" + time_str(left_s)
    return f"t_env: {t_env} / {t_max}{pct} | {rate} env steps/s | elapsed {time_str(elapsed_s)} | left {left}"


def _best(series: List[Tuple[int, float]]) -> Tuple[int, float]:
    """The highest value of ``[(t, value), ...]`` and its step (the earliest step on ties)."""
    return max(series, key=lambda tv: (tv[1], -tv[0]))


def _fmt(value: float) -> str:
    return f"{value:.4f}" if abs(value) < 1e5 else f"{value:.4g}"


class Logger:
    """Collects ``(t, value)`` per stat and forwards them to sacred and tensorboard.

    ``log_stat(key, value, t)`` records ``value`` at environment step ``t``. With a sacred run
    attached, ``run.info[key]`` / ``run.info[key + "_T"]`` hold the whole series (what pymarl
    users read from info.json) and ``run.log_scalar`` writes metrics.json.
    """

    def __init__(self, console: Optional[logging.Logger] = None, clock: Any = time.time) -> None:
        self.console = console or get_console_logger()
        self.stats: Dict[str, List[Tuple[int, float]]] = defaultdict(list)
        self._sacred_run: Any = None
        self._tb: Any = None
        self._tb_close: Any = None
        self._sinks: List[Tuple[Any, Any]] = []   # (write(key, value, t), close()) of the CSV / W&B outputs
        self._clock = clock
        self._wall0 = clock()
        self._t_first: Optional[int] = None  # first env step seen (a resumed run starts late)
        self._last_progress: Optional[Tuple[int, float]] = None
        self._best_before: Dict[str, Tuple[int, float]] = {}  # best of the run's earlier parts (resume)
        self._history_before: Dict[str, List[List[float]]] = {}  # test series of the earlier parts (resume)

    def setup_sacred(self, sacred_run: Any) -> None:
        """Mirror every stat into ``sacred_run.info`` and its metrics."""
        self._sacred_run = sacred_run

    def setup_tensorboard(self, log_dir: str) -> None:
        """Write stats as tensorboard scalars under ``log_dir`` (torch's SummaryWriter, which needs
        the ``tensorboard`` package pinned in requirements.txt). ``close()`` flushes them."""
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:
            from utils.registry import MissingDependencyError
            raise MissingDependencyError(
                "use_tensorboard=True needs the tensorboard package: `pip install -r requirements.txt` "
                "(it pins tensorboard); or run with use_tensorboard=False.") from exc
        writer = SummaryWriter(log_dir)
        self._tb = writer.add_scalar
        self._tb_close = writer.close

    def setup_csv(self, path: str) -> None:
        """Also append every stat to the CSV file ``path`` as ``t_env,key,value`` rows (long format: a
        stat added later needs no new column; pandas: ``read_csv(path).pivot(...)``)."""
        import csv

        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        new = not os.path.exists(path) or os.path.getsize(path) == 0
        fh = open(path, "a", newline="")
        writer = csv.writer(fh)
        if new:
            writer.writerow(["t_env", "key", "value"])
        self._sinks.append((lambda k, v, t: writer.writerow([t, k, repr(v)]), fh.close))

    def setup_wandb(self, project: str, mode: str, name: str, config: Dict[str, Any], folder: str) -> None:
        """Also log every stat to Weights & Biases (optional; ``mode`` offline writes under ``folder``
        for a later ``wandb sync``, online needs a login, disabled logs nothing)."""
        try:
            import wandb
        except ImportError as exc:
            from utils.registry import MissingDependencyError
            raise MissingDependencyError(
                "use_wandb=True needs the optional wandb package: `pip install -r requirements-wandb.txt` "
                "(not part of the main install); or run with use_wandb=False.") from exc
        os.makedirs(folder, exist_ok=True)
        run = wandb.init(project=project, mode=mode, name=name, config=config, dir=folder, reinit=True)
        self._sinks.append((lambda k, v, t: run.log({k: v, "t_env": t}), run.finish))

    def close(self) -> None:
        """Flush and close the tensorboard writer and the CSV / W&B sinks (if any)."""
        if self._tb_close is not None:
            self._tb_close()
            self._tb = self._tb_close = None
        for _, close in self._sinks:
            close()
        self._sinks = []

    def log_stat(self, key: str, value: float, t: int) -> None:
        """Record ``value`` of stat ``key`` at environment step ``t``."""
        value = float(value)
        t = int(t)
        self.stats[key].append((t, value))
        if self._t_first is None:
            self._t_first = t
        if self._tb is not None:
            self._tb(key, value, t)
        for write, _ in self._sinks:
            write(key, value, t)
        run = self._sacred_run
        if run is not None:
            run.info.setdefault(key, []).append(value)
            run.info.setdefault(key + "_T", []).append(t)
            run.log_scalar(key, value, t)

    def last(self, key: str) -> Optional[float]:
        """The most recent value of ``key`` or None."""
        series = self.stats.get(key)
        return series[-1][1] if series else None

    def elapsed(self) -> float:
        """Seconds since this logger was made (the run's start)."""
        return self._clock() - self._wall0

    def print_progress(self, t_env: int, t_max: int) -> None:
        """The progress line (env steps/s since the previous call, time left from the average
        rate since the first logged step), then each stat's latest value."""
        now = self._clock()
        t_env, t_max = int(t_env), int(t_max)
        rate = None
        if self._last_progress is not None and t_env > self._last_progress[0]:
            rate = (t_env - self._last_progress[0]) / max(now - self._last_progress[1], 1e-9)
        t0 = self._t_first if self._t_first is not None and self._t_first <= t_env else 0
        left = None
        if t_env > t0:
            left = max(t_max - t_env, 0) * (now - self._wall0) / (t_env - t0)
        if rate is None and t_env > t0:
            rate = (t_env - t0) / max(now - self._wall0, 1e-9)
        self._last_progress = (t_env, now)
        self.console.info(progress_line(t_env, t_max, rate, now - self._wall0, left))
        self.print_recent_stats()

    def print_test(self, t_env: int) -> None:
        """One line with every ``test_*`` stat logged at ``t_env`` (the latest test) and, for
        ``BEST_KEYS``, the best value so far and its step. Also logs ``elapsed_s`` (wall time
        since the start) at ``t_env`` unless the run loop already did."""
        t_env = int(t_env)
        elapsed = self.stats.get("elapsed_s")
        if not elapsed or elapsed[-1][0] != t_env:
            self.log_stat("elapsed_s", self.elapsed(), t_env)
        keys = [k for k, s in self.stats.items() if k.startswith("test_") and s and s[-1][0] == t_env]
        keys.sort(key=lambda k: (BEST_KEYS.index(k) if k in BEST_KEYS else len(BEST_KEYS), k))
        cells = []
        for k in keys:
            cell = f"{k} {_fmt(self.stats[k][-1][1])}"
            series = self._best_series(k)
            if k in BEST_KEYS and len(series) > 1:
                best_t, best_v = _best(series)
                cell += f" (best {_fmt(best_v)} at t_env {best_t})"
            cells.append(cell)
        self.console.info(f"Test at t_env {t_env}: " + (" | ".join(cells) if cells else "no test stats logged"))

    def _best_series(self, key: str) -> List[Tuple[int, float]]:
        prior = [self._best_before[key]] if key in self._best_before else []
        return prior + list(self.stats.get(key, []))

    def logged_anything(self) -> bool:
        """Whether this run's record holds any stat: logged here, or carried from the run it resumed."""
        return bool(self.stats) or any(self._history_before.values())

    def set_info(self, key: str, value: Any) -> None:
        """Put ``value`` into the sacred run's ``info`` under ``key`` (no-op without sacred)."""
        if self._sacred_run is not None:
            self._sacred_run.info[key] = value

    def test_history(self) -> Dict[str, List[List[float]]]:
        """Every ``test_*`` series of the whole run so far, earlier parts (resume) included:
        ``{key: [[t_env, value], ...]}``."""
        out = {k: [list(p) for p in v] for k, v in self._history_before.items()}
        for key, series in self.stats.items():
            if key.startswith("test_"):
                out.setdefault(key, []).extend([int(t), float(v)] for t, v in series)
        return out

    def state_dict(self) -> Dict[str, Any]:
        """Saved with a checkpoint: ``best`` (the best value so far of each ``BEST_KEYS`` stat as
        ``{key: [t_env, value]}``, so the test line of a resumed run still shows the best of the
        whole run) and ``test_history`` (``test_history()``, so the resumed run's record holds the
        tests of the earlier parts too)."""
        best = {k: [int(t), float(v)] for k in BEST_KEYS if self._best_series(k)
                for t, v in [_best(self._best_series(k))]}
        return {"best": best, "test_history": self.test_history()}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (checkpoints of earlier versions hold only the best values).

        The earlier parts' test series go into the sacred record (``info`` and metrics) before
        anything this run logs, so one record holds every test of the run; ``stats`` keeps only
        what this process logs. ``info["test_history_until"]`` names the step they end at."""
        if "best" in state or "test_history" in state:
            best, history = state.get("best", {}), state.get("test_history", {})
        else:
            best, history = state, {}
        self._best_before = {k: (int(t), float(v)) for k, (t, v) in best.items()}
        self._history_before = {k: [[int(t), float(v)] for t, v in series] for k, series in history.items()}
        run = self._sacred_run
        if run is not None and self._history_before:
            for key, series in self._history_before.items():
                values = run.info.setdefault(key, [])
                steps = run.info.setdefault(key + "_T", [])
                values[:0] = [v for _, v in series]
                steps[:0] = [t for t, _ in series]
                for t, v in series:
                    run.log_scalar(key, v, t)
            run.info["test_history_until"] = max(t for s in self._history_before.values() for t, _ in s) \
                if any(self._history_before.values()) else None

    def print_recent_stats(self) -> None:
        """Each stat's latest value (not a running mean), four per line."""
        keys = sorted(k for k in self.stats if self.stats[k])
        t = max((self.stats[k][-1][0] for k in keys), default=0)
        lines = [f"Latest stats at t_env {t} (each stat's last logged value):"]
        cells = [f"{k + ':':<24}{_fmt(self.stats[k][-1][1]):>12}" for k in keys]
        for i in range(0, len(cells), 4):
            lines.append("    ".join(cells[i:i + 4]))
        self.console.info("\n".join(lines))
