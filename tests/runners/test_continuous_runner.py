"""Tests of the continuous runner (src/runners/continuous_runner.py) on SMAX 3m.

SMAX gives env i's k-th episode the same battle whether the envs restart together or one by
one (src/envs/smax.py, "Seeding"), so with actions that depend only on each env's own
observations the continuous runner must collect exactly the lockstep runner's episodes: the
episode it reports as (env i, episode k) is env i's episode of the lockstep runner's k-th run.
"""
from __future__ import annotations

import io
from typing import Any, List, Tuple

import numpy as np
import pytest
import torch

pytest.importorskip("jaxmarl")

from controllers.basic_controller import BasicMAC  # noqa: E402
from envs import REGISTRY as ENV_REGISTRY  # noqa: E402
from envs.batch_env import BatchEnv  # noqa: E402
from runners import REGISTRY as RUNNER_REGISTRY  # noqa: E402
from runners.batch_runner import BatchRunner  # noqa: E402
from runners.continuous_runner import ContinuousRunner, reset_hidden_rows  # noqa: E402
from test_batch_runner import (N_ENVS, ObsPolicyMAC, StubLogger, assert_same_episode, episode,  # noqa: E402
                               make_args)


def runner_of(kind, args, mac, n_envs: int = N_ENVS):
    runner = kind(args, StubLogger(), n_envs=n_envs)
    runner.setup(mac)
    return runner


def collect(runner: ContinuousRunner, calls: int) -> List[Tuple[Any, list, int]]:
    """``calls`` training runs: (batch, origins, t_env gained) each."""
    out = []
    for _ in range(calls):
        t0 = runner.t_env
        batch = runner.run(test_mode=False)
        out.append((batch, list(runner.last_origins), runner.t_env - t0))
    return out


@pytest.fixture(scope="module")
def lockstep_runs(request):
    """Four training runs of the lockstep runner with the observation-only policy."""
    runner = runner_of(BatchRunner, make_args(request), ObsPolicyMAC())
    return [runner.run(test_mode=False) for _ in range(4)]


def test_registry_entry(request):
    args = make_args(request)
    args.batch_size_run = 2
    runner = RUNNER_REGISTRY["continuous"](args, StubLogger())
    assert isinstance(runner, ContinuousRunner) and runner.n_envs == 2
    runner.close()


def test_collects_the_lockstep_episodes_without_waiting(request, lockstep_runs):
    """Every run returns n_envs finished episodes, each equal to the lockstep runner's episode
    of the same env and episode number; t_env counts exactly the returned steps; each env's
    episodes arrive in order, none lost; the first ones to finish come first."""
    runner = runner_of(ContinuousRunner, make_args(request), ObsPolicyMAC())
    runs = collect(runner, 3)
    seen = {i: [] for i in range(N_ENVS)}
    for batch, origins, gained in runs:
        lengths = batch.filled.sum(1).long()
        assert batch.batch_size == N_ENVS == len(origins)
        assert gained == int(lengths.sum()) and batch.max_t == int(lengths.max())
        for j, (i, k) in enumerate(origins):
            assert_same_episode(episode(batch, j), episode(lockstep_runs[k], i))
            n = int(lengths[j])
            assert torch.all(batch.filled[j, :n] == 1) and torch.all(batch.filled[j, n:] == 0)
            assert torch.all(batch.obs[j, n + 1:] == 0)
            seen[i].append(k)
    for i, ks in seen.items():
        assert ks == list(range(len(ks))), (i, ks)
    # no lockstep: in the first run, the episodes are returned shortest first (all started together)
    first_lengths = runs[0][0].filled.sum(1)
    assert torch.all(first_lengths[1:] >= first_lengths[:-1])
    # stats and logging as the lockstep runner's (runner_log_interval 0: logged every run)
    t_log, ret_mean = runner.logger.stats["return_mean"][-1]
    assert t_log == runner.t_env
    assert ret_mean == pytest.approx(float(runs[-1][0].reward.sum(1).double().mean()), rel=1e-5)
    # every env took a step in every loop iteration (one act call each): the steps taken are the
    # returned ones plus those of the episodes in flight
    smax_steps = np.asarray(runner.env._carry[1].state.step)
    np.testing.assert_array_equal(smax_steps, runner.live["t"])
    assert sum(g for _, _, g in runs) + int(runner.live["t"].sum()) == runner.mac.calls * N_ENVS


def test_time_outs_are_not_terminal(request):
    """episode_limit 5, everyone standing still: every episode times out after 5 steps, none is
    marked terminated, its 6th observation slot is written, and the env restarts."""
    runner = runner_of(ContinuousRunner, make_args(request, episode_limit=5), ObsPolicyMAC(stop_only=True))
    for call in range(2):
        batch = runner.run(test_mode=False)
        assert batch.max_t == 5 and torch.all(batch.filled == 1)
        assert torch.all(batch.terminated == 0)
        assert torch.all(batch.obs[:, 5].abs().sum((-1, -2)) > 0)
        assert runner.last_origins == [(i, call) for i in range(N_ENVS)]
        assert runner.t_env == 5 * N_ENVS * (call + 1)
    assert runner.env.get_stats()["timeouts"] == 2 * N_ENVS


def test_test_mode_is_lockstep_on_separate_envs(request, lockstep_runs):
    """Test runs play one episode in each of n_envs test envs (envs n_envs..2 n_envs - 1 of the
    seed's stream) and leave the training episodes in flight untouched."""
    args = make_args(request)
    plain = runner_of(ContinuousRunner, args, ObsPolicyMAC())
    mixed = runner_of(ContinuousRunner, args, ObsPolicyMAC())
    a = [plain.run() for _ in range(2)]
    b0 = mixed.run()
    test = mixed.run(test_mode=True)
    b1 = mixed.run()
    for x, y in zip(a, (b0, b1)):
        for k in ("obs", "actions", "reward", "filled"):
            assert torch.equal(getattr(x, k), getattr(y, k)), k
    assert mixed.t_env == plain.t_env
    assert test.batch_size == N_ENVS
    shifted = runner_of(BatchRunner, make_args(request, first_env_index=N_ENVS), ObsPolicyMAC())
    ref = shifted.run(test_mode=True)
    for i in range(N_ENVS):
        assert_same_episode(episode(test, i), episode(ref, i))
    assert not torch.equal(test.obs[0, 0], lockstep_runs[0].obs[0, 0])  # not the training battles


def real_mac(args, info, agent: str) -> BasicMAC:
    """A controller with fixed, enlarged weights (the greedy action depends on the hidden state)."""
    args.n_agents, args.n_actions, args.agent = info["n_agents"], info["n_actions"], agent
    torch.manual_seed(0)
    mac = BasicMAC(info, args)
    with torch.no_grad():
        for p in mac.agent.parameters():
            p.mul_(3.0)
    return mac


@pytest.mark.parametrize("agent", ["rnn", "grsn"])
def test_state_dict_continues_the_episodes_in_flight(request, agent):
    """A runner restored from ``state_dict`` (through a weights_only save) in a fresh runner
    and controller collects what the original collects next: same episodes, same hidden state
    (a tensor for rnn, a tuple for grsn), same t_env. Epsilon-greedy at epsilon 0.2."""
    args = make_args(request, seed=7)
    args.snn_hidden_dim, args.epsilon_start, args.epsilon_finish = 16, 0.2, 0.2
    first = runner_of(ContinuousRunner, args, None)
    mac = real_mac(args, first.env_info, agent)
    first.setup(mac)
    collect(first, 2)
    first.run(test_mode=True)  # the test envs' state is saved too
    blob = io.BytesIO()
    torch.save(first.state_dict(), blob)
    rng = torch.get_rng_state()
    expected = collect(first, 2) + [(first.run(test_mode=True), None, 0)]

    second = runner_of(ContinuousRunner, args, None)
    mac2 = real_mac(args, second.env_info, agent)
    second.setup(mac2)
    blob.seek(0)
    second.load_state_dict(torch.load(blob, weights_only=True))
    torch.set_rng_state(rng)
    got = collect(second, 2) + [(second.run(test_mode=True), None, 0)]
    for (x, ox, gx), (y, oy, gy) in zip(expected, got):
        assert ox == oy and gx == gy
        for k in ("obs", "state", "avail_actions", "actions", "reward", "terminated", "filled"):
            assert torch.equal(getattr(x, k), getattr(y, k)), k
    assert second.t_env == first.t_env
    h1, h2 = mac.hidden, mac2.hidden
    assert type(h1) is type(h2)
    for a, b in zip(h1 if isinstance(h1, tuple) else (h1,), h2 if isinstance(h2, tuple) else (h2,)):
        assert torch.equal(a, b)


def test_reset_hidden_rows_hand_values():
    hidden = torch.arange(12.0).reshape(6, 2)   # 3 envs x 2 agents
    fresh = torch.full((6, 2), -1.0)
    rows = torch.tensor([False, False, True, True, False, False])  # env 1
    out = reset_hidden_rows(hidden, fresh, rows)
    assert out.tolist() == [[0, 1], [2, 3], [-1, -1], [-1, -1], [8, 9], [10, 11]]
    pair = reset_hidden_rows((hidden, hidden + 100), (fresh, fresh * 2), rows)
    assert isinstance(pair, tuple) and pair[1][2].tolist() == [-2, -2] and pair[1][0].tolist() == [100, 101]


def test_looped_env_collects_the_same_episodes(request):
    """``env_args.vectorized=False`` (sub-envs reset one by one) plays the vmapped batch's episodes."""
    vec = collect(runner_of(ContinuousRunner, make_args(request), ObsPolicyMAC()), 2)
    looped = collect(runner_of(ContinuousRunner, make_args(request, vectorized=False), ObsPolicyMAC()), 2)
    for (x, ox, gx), (y, oy, gy) in zip(vec, looped):
        assert ox == oy and gx == gy
        assert torch.equal(x.obs, y.obs) and torch.equal(x.actions, y.actions)


def test_env_without_single_resets_is_refused(request, monkeypatch):
    class Lockstep(BatchEnv):
        def __init__(self, n_envs: int, seed: int, **_: Any) -> None:
            self.n_envs = n_envs

        def get_env_info(self):
            return {"n_agents": 1, "n_actions": 2, "obs_shape": 1, "state_shape": 1, "episode_limit": 3,
                    "n_enemies": 1}

    monkeypatch.setitem(ENV_REGISTRY, "lockstep_toy", Lockstep)
    args = make_args(request)
    args.env, args.env_args = "lockstep_toy", {}
    with pytest.raises(ValueError, match="runner=continuous needs envs that restart one by one.*runner=parallel"):
        ContinuousRunner(args, StubLogger(), n_envs=2)
