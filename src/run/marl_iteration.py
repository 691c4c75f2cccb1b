"""The MARL training loop body, ``collect -> store -> learn``, in one place.

src/run/marl.py's loop and benchmarks/marl_loop_speed.py both step it.

``overlap_acting=False`` (pymarl2's order): the runner collects ``batch_size_run`` episodes with
the current networks, they enter the replay, then the learner makes one update on a sample that
may include them.

``overlap_acting=True``: the runner collects in a worker thread with its own acting copy of the
controller (synced to the learner's networks at the start of each iteration and before tests),
while the learner makes its update on the replay as it was before this iteration; the new
episodes are stored once both are done. The episodes are collected with the same networks as in
pymarl2's order (those after the previous update); the one difference is that each update samples
from a replay without the newest ``batch_size_run`` episodes (and logs at the ``t_env`` the
iteration started from). The learner draws no random numbers, and the runner's draws happen only
in the worker, so no timing enters the result: a run with overlap is as repeatable and exactly
resumable as one without. It pays when a second core is free (SMAX's jitted steps and torch's
kernels release the GIL); two runs side by side on two cores leave it nothing to use.
"""
from __future__ import annotations

import copy
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, Optional


class TrainingIteration:
    """Steps the loop body; keeps the seconds spent per phase in ``seconds``.

    ``runner`` (``run(test_mode)``, ``t_env``, ``n_envs``, ``setup(mac)``), ``buffer`` (replay of
    episodes), ``learner`` (``train(batch, t_env, episode)``) and ``mac`` (the learner's controller)
    as built by ``run.marl.build_marl``. With overlap the runner is given an acting copy of ``mac``:
    build this before restoring the runner's state from a checkpoint (the state holds the acting
    hidden states of in-flight episodes).
    """

    def __init__(self, args: Any, runner: Any, buffer: Any, learner: Any, mac: Any) -> None:
        self.args, self.runner, self.buffer, self.learner, self.mac = args, runner, buffer, learner, mac
        self.overlap = bool(getattr(args, "overlap_acting", False))
        self.acting: Optional[Any] = None
        self.pool: Optional[ThreadPoolExecutor] = None
        if self.overlap:
            self.acting = copy.deepcopy(mac)
            runner.setup(self.acting)
            self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="acting")
        self.seconds: Dict[str, float] = {"runner": 0.0, "buffer": 0.0, "learner": 0.0, "wall": 0.0}

    def sync_acting(self) -> None:
        """Copy the learner's networks into the acting copy (no-op without overlap). Call before
        test episodes, so they test the newest networks."""
        if self.acting is not None:
            self.acting.load_state(self.mac)

    def __call__(self, episode: int) -> int:
        """One iteration; ``episode``: episodes collected so far. Returns the new count."""
        t0 = time.perf_counter()
        if self.overlap:
            episode = self._overlapped(episode)
        else:
            episode = self._sequential(episode)
        self.seconds["wall"] += time.perf_counter() - t0
        return episode

    def collect_only(self, episode: int) -> int:
        """Collect and store one batch without a learner update (e.g. to fill the replay first);
        returns the new episode count."""
        self._store(self._timed_run())
        return episode + self.runner.n_envs

    def _timed_run(self) -> Any:
        t0 = time.perf_counter()
        batch = self.runner.run(test_mode=False)
        self.seconds["runner"] += time.perf_counter() - t0
        return batch

    def _learn(self, t_env: int, episode: int) -> None:
        args = self.args
        t0 = time.perf_counter()
        if not self.buffer.can_sample(args.batch_size):
            return
        sample = self.buffer.sample(args.batch_size).to(args.device)
        t1 = time.perf_counter()
        self.learner.train(sample, t_env, episode)
        self.seconds["buffer"] += t1 - t0
        self.seconds["learner"] += time.perf_counter() - t1

    def _store(self, batch: Any) -> None:
        t0 = time.perf_counter()
        self.buffer.insert(batch)
        self.seconds["buffer"] += time.perf_counter() - t0

    def _sequential(self, episode: int) -> int:
        self._store(self._timed_run())
        episode += self.runner.n_envs
        self._learn(self.runner.t_env, episode)
        return episode

    def _overlapped(self, episode: int) -> int:
        assert self.pool is not None
        self.sync_acting()
        t_env, episode = self.runner.t_env, episode + self.runner.n_envs
        collecting = self.pool.submit(self._timed_run)
        try:
            self._learn(t_env, episode)
        finally:
            batch = collecting.result()       # re-raises the runner's error; always waits for the worker
        self._store(batch)
        return episode

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)
            self.pool = None
