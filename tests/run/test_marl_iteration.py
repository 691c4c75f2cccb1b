"""The loop body (src/run/marl_iteration.py): pymarl2's order and the overlapped one, on fakes
that record what each part saw."""
import threading
from types import SimpleNamespace

import pytest
import torch

from run.marl_iteration import TrainingIteration


class FakeMAC:
    """A controller whose whole state is one tensor (``w``), like an agent's weights."""

    def __init__(self):
        self.w = torch.zeros(1)

    def load_state(self, other):
        self.w.copy_(other.w)


class FakeRunner:
    """Each run "collects" n_envs episodes of 10 steps, labelled by the acting weights it used."""

    def __init__(self, n_envs=2):
        self.n_envs, self.t_env, self.mac, self.threads = n_envs, 0, None, []

    def setup(self, mac):
        self.mac = mac

    def run(self, test_mode=False):
        self.threads.append(threading.current_thread().name)
        self.t_env += 10 * self.n_envs
        return [float(self.mac.w)] * self.n_envs


class FakeBuffer(list):
    def can_sample(self, n):
        return len(self) >= n

    def insert(self, episodes):
        self.extend(episodes)

    def sample(self, n):
        return SimpleNamespace(seen=list(self), to=lambda device: SimpleNamespace(seen=list(self)))


class FakeLearner:
    """Records (buffer contents, t_env, episode) per update and adds 1 to the weights."""

    def __init__(self, mac):
        self.mac, self.calls = mac, []

    def train(self, batch, t_env, episode):
        self.calls.append((batch.seen, t_env, episode))
        self.mac.w += 1.0


def _loop(overlap, iters=3):
    args = SimpleNamespace(overlap_acting=overlap, batch_size=2, device="cpu")
    mac, runner, buffer = FakeMAC(), FakeRunner(), FakeBuffer()
    runner.setup(mac)
    learner = FakeLearner(mac)
    step = TrainingIteration(args, runner, buffer, learner, mac)
    episode = 0
    try:
        for _ in range(iters):
            episode = step(episode)
    finally:
        step.close()
    return runner, buffer, learner, episode


def test_sequential_order_is_pymarl2s():
    """Collect with the current weights, store, then update on a replay that holds the new episodes."""
    runner, buffer, learner, episode = _loop(overlap=False)
    assert list(buffer) == [0.0, 0.0, 1.0, 1.0, 2.0, 2.0]        # batch k acted with the weights after k-1 updates
    assert learner.calls == [([0.0, 0.0], 20, 2), ([0.0, 0.0, 1.0, 1.0], 40, 4),
                             ([0.0, 0.0, 1.0, 1.0, 2.0, 2.0], 60, 6)]
    assert episode == 6 and runner.mac is not None
    assert set(runner.threads) == {threading.current_thread().name}


def test_overlap_acts_with_the_same_weights_and_learns_without_the_newest_batch():
    runner, buffer, learner, episode = _loop(overlap=True)
    assert list(buffer) == [0.0, 0.0, 0.0, 0.0, 1.0, 1.0]
    # iteration 1: nothing to sample yet; 2: the replay as before it (batch 1), at the t_env it started from,
    # with the episode count including the batch being collected (the target-update schedule is unchanged)
    assert learner.calls == [([0.0, 0.0], 20, 4), ([0.0, 0.0, 0.0, 0.0], 40, 6)]
    assert episode == 6 and float(learner.mac.w) == 2.0
    assert runner.mac is not learner.mac                         # the runner acts with its own copy ...
    assert all(name.startswith("acting") for name in runner.threads)   # ... in the worker thread


def test_overlap_acting_copy_is_synced_only_at_iteration_starts_and_on_request():
    args = SimpleNamespace(overlap_acting=True, batch_size=1, device="cpu")
    mac, runner, buffer = FakeMAC(), FakeRunner(), FakeBuffer()
    runner.setup(mac)
    step = TrainingIteration(args, runner, buffer, FakeLearner(mac), mac)
    try:
        step(0)
        step(2)
        assert float(mac.w) == 1.0 and float(runner.mac.w) == 0.0   # acted with the pre-update weights
        step.sync_acting()                                             # as before test episodes
        assert float(runner.mac.w) == 1.0
    finally:
        step.close()


def test_overlap_runner_error_is_raised_and_the_worker_joined():
    class Broken(FakeRunner):
        def run(self, test_mode=False):
            raise RuntimeError("env died")

    args = SimpleNamespace(overlap_acting=True, batch_size=1, device="cpu")
    mac = FakeMAC()
    step = TrainingIteration(args, Broken(), FakeBuffer(), FakeLearner(mac), mac)
    with pytest.raises(RuntimeError, match="env died"):
        step(0)
    step.close()


def test_collect_only_stores_without_learning():
    args = SimpleNamespace(overlap_acting=False, batch_size=1, device="cpu")
    mac, runner, buffer = FakeMAC(), FakeRunner(), FakeBuffer()
    runner.setup(mac)
    learner = FakeLearner(mac)
    step = TrainingIteration(args, runner, buffer, learner, mac)
    assert step.collect_only(0) == 2 and list(buffer) == [0.0, 0.0] and learner.calls == []
    step.close()
