"""Tests of the batch runner (src/runners/batch_runner.py) on SMAX 3m.

The vectorized runner must play, env for env, the episodes the one-env runner plays: SMAX
gives env i of a batch of any size the battles of env 0 of a one-env batch built with
``first_env_index=i`` (src/envs/smax.py, "Seeding"), so with actions that depend only on each
env's own observations the two runners must write identical episodes.

JAX compiles SMAX once per n_envs (1 and 4 here; other runtime env_args such as
episode_limit share it); the compile cache under .pytest_cache makes reruns faster.
"""
from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any, Dict

import numpy as np
import pytest
import torch

pytest.importorskip("jaxmarl")

from components.episode_buffer import EpisodeBatch  # noqa: E402
from controllers.basic_controller import BasicMAC  # noqa: E402
from runners.batch_runner import BatchRunner  # noqa: E402
from utils.config import build_config  # noqa: E402

N_ENVS = 4
STOP, EAST, FIRST_ATTACK = 4, 1, 5
FIELDS = ("obs", "state", "avail_actions", "actions", "reward", "terminated", "filled")


class StubLogger:
    """Records log_stat calls; enough of utils.logging.Logger for the runner."""

    def __init__(self) -> None:
        self.stats: Dict[str, list] = {}
        self.console = logging.getLogger("test_batch_runner")

    def log_stat(self, key: str, value: float, t: int) -> None:
        self.stats.setdefault(key, []).append((t, value))


class ObsPolicyMAC:
    """A controller stub whose actions depend only on each env's own observation row.

    Each alive agent shoots the lowest-index enemy in range, else moves: east, or a move picked
    by a hash of its observation (float64 sum per row, so other envs cannot change it)."""

    def __init__(self, stop_only: bool = False) -> None:
        self.selector = SimpleNamespace(epsilon=0.0)
        self.stop_only = stop_only
        self.calls = 0

    def init_hidden(self, batch_size: int) -> None:
        self.batch_size = batch_size

    def act(self, obs: torch.Tensor, last_onehot: torch.Tensor, avail: torch.Tensor, t_env: int,
            test_mode: bool = False) -> torch.Tensor:
        self.calls += 1
        assert obs.shape[0] == self.batch_size == last_onehot.shape[0] == avail.shape[0]
        av = avail.numpy()
        if self.stop_only:
            return torch.full(av.shape[:2], STOP, dtype=torch.long)
        o = obs.numpy().astype(np.float64)
        h = (np.abs(o).sum(-1) * 1e4).astype(np.int64)   # [b, agents]
        move = np.where(h % 3 == 0, h % 4, EAST)
        att = av[..., FIRST_ATTACK:]
        acts = np.where(att.any(-1), att.argmax(-1) + FIRST_ATTACK, move)
        acts = np.where(av[..., EAST] == 1, acts, STOP)  # dead agents (and padded rows) only stop
        return torch.as_tensor(acts, dtype=torch.long)


def make_args(request, seed: int = 3, **env_args: Any) -> SimpleNamespace:
    """The real merged config (default <- smax <- qmix), CPU, small nets, given env_args."""
    cfg = build_config("qmix", "smax")
    cfg.update(seed=seed, device="cpu", rnn_hidden_dim=16, runner_log_interval=0)
    cfg["env_args"].update(jax_cache_dir=str(request.config.cache.mkdir("smax_jax_cache")), **env_args)
    return SimpleNamespace(**cfg)


def new_runner(args: SimpleNamespace, n_envs: int, mac: Any) -> BatchRunner:
    runner = BatchRunner(args, StubLogger(), n_envs=n_envs)
    runner.setup(mac)
    return runner


def episode(batch: EpisodeBatch, i: int) -> Dict[str, torch.Tensor]:
    """Env ``i`` of ``batch``, cut to its own length (transitions and obs slots)."""
    n = int(batch.filled[i].sum())
    out = {}
    for k in FIELDS:
        v = getattr(batch, k)[i]
        out[k] = v[:n + 1] if k in ("obs", "state", "avail_actions") else v[:n]
    return out


def assert_same_episode(a: Dict[str, torch.Tensor], b: Dict[str, torch.Tensor]) -> None:
    for k in FIELDS:
        assert a[k].shape == b[k].shape, k
        assert torch.equal(a[k], b[k]), k


@pytest.fixture(scope="module")
def vector_episodes(request):
    """Two runs (two resets) of the 4-env runner with the observation-only stub policy."""
    runner = new_runner(make_args(request), N_ENVS, ObsPolicyMAC())
    batches = [runner.run(test_mode=True) for _ in range(2)]
    return runner, batches


def test_vector_runner_equals_one_env_runners(request, vector_episodes):
    """Env i of the 4-env runner == the one-env runner on env i of the seed's stream, two runs."""
    _, batches = vector_episodes
    lengths = batches[0].filled.sum(1)
    assert len(set(lengths.tolist())) > 1  # envs end at different steps: masking is exercised
    for i in range(N_ENVS):
        single = new_runner(make_args(request, first_env_index=i), 1, ObsPolicyMAC())
        for run in range(2):
            one = single.run(test_mode=True)
            assert one.batch_size == 1
            assert one.max_t == int(one.filled[0].sum())  # a one-env batch is cut to its episode
            assert_same_episode(episode(one, 0), episode(batches[run], i))
    # the other envs of the batch play other battles
    assert not torch.equal(batches[0].obs[0, 0], batches[0].obs[1, 0])


def test_vector_runner_with_a_real_mac_equals_one_env_runner(request):
    """A greedy (test_mode) GRU controller with fixed weights: env 0 of the 4-env runner plays
    the episode of the one-env runner (hidden states of the envs do not mix)."""
    args = make_args(request, seed=11)
    torch.manual_seed(0)
    probe = BatchRunner(args, StubLogger(), n_envs=1)
    info = probe.env_info
    args.n_agents, args.n_actions = info["n_agents"], info["n_actions"]
    mac = BasicMAC(info, args)
    with torch.no_grad():  # larger weights: the greedy policy varies with the observation
        for p in mac.agent.parameters():
            p.mul_(3.0)
    probe.setup(mac)
    one = probe.run(test_mode=True)
    vec = new_runner(args, N_ENVS, mac).run(test_mode=True)
    assert len(torch.unique(one.actions)) > 1  # not a constant policy
    assert_same_episode(episode(one, 0), episode(vec, 0))
    assert probe.t_env == 0  # test episodes do not count


def test_t_env_and_finished_envs_are_not_written(request):
    """t_env grows by the filled steps of training runs; after an env's last transition nothing
    more is written for it and its env is no longer stepped."""
    runner = new_runner(make_args(request), N_ENVS, ObsPolicyMAC())
    t_before = runner.t_env
    batch = runner.run(test_mode=False)
    lengths = batch.filled.sum(1).long()
    assert runner.t_env - t_before == int(lengths.sum()) > 0
    assert batch.max_t == int(lengths.max())
    assert len(set(lengths.tolist())) > 1
    smax_step = np.asarray(runner.env._carry[1].state.step)
    np.testing.assert_array_equal(smax_step, lengths.numpy())  # finished envs were not stepped
    for i, n in enumerate(lengths.tolist()):
        assert torch.all(batch.filled[i, :n] == 1) and torch.all(batch.filled[i, n:] == 0)
        for k in ("actions", "reward", "terminated"):
            assert torch.all(getattr(batch, k)[i, n:] == 0), k
        for k in ("obs", "state", "avail_actions"):
            v = getattr(batch, k)[i]
            assert torch.all(v[n + 1:] == 0), k       # nothing after the final observation slot
            if k != "obs":                            # (a lost battle's last obs is all zero: dead allies)
                assert v[n].abs().sum() > 0, k        # the final observation slot is written
        assert batch.terminated[i, n - 1] == 1        # these battles end for real (no time-out)
        assert torch.all(batch.terminated[i, :n - 1] == 0)
    (t_log, ret_mean), = runner.logger.stats["return_mean"]  # runner_log_interval 0: logged now
    assert t_log == runner.t_env
    assert ret_mean == pytest.approx(float(batch.reward.sum(1).double().mean()), rel=1e-5)
    assert runner.logger.stats["ep_length_mean"][0][1] == pytest.approx(float(lengths.double().mean()))
    # a test run does not advance t_env
    t_train = runner.t_env
    runner.run(test_mode=True)
    assert runner.t_env == t_train


def test_time_outs_are_not_terminal(request):
    """With episode_limit 5 and everyone standing still every env times out: 5 filled steps,
    none marked terminated, the 6th observation slot written, no battle won."""
    runner = new_runner(make_args(request, episode_limit=5), N_ENVS, ObsPolicyMAC(stop_only=True))
    batch = runner.run(test_mode=False)
    assert batch.max_t == 5 and torch.all(batch.filled == 1)
    assert torch.all(batch.terminated == 0)
    assert torch.all(batch.obs[:, 5].abs().sum((-1, -2)) > 0)
    assert runner.t_env == 5 * N_ENVS
    assert runner.logger.stats["ep_length_mean"] == [(5 * N_ENVS, 5.0)]
    assert runner.logger.stats["battle_won_mean"] == [(5 * N_ENVS, 0.0)]
    assert runner.env.get_stats()["timeouts"] == N_ENVS


def test_looped_env_runner_equals_vector_runner(request, vector_episodes):
    """``env_args.vectorized=False`` (one jitted single-env step per env, in a loop) plays the
    same episodes as the vmapped batch: it is only the slow baseline, not another task."""
    _, batches = vector_episodes
    runner = new_runner(make_args(request, vectorized=False), N_ENVS, ObsPolicyMAC())
    assert type(runner.env).__name__ == "LoopedBatchEnv"
    for run in range(2):
        looped = runner.run(test_mode=True)
        for i in range(N_ENVS):
            assert_same_episode(episode(looped, i), episode(batches[run], i))
    stats = runner.env.get_stats()
    assert stats["battles_game"] == 2 * N_ENVS
    assert stats["win_rate"] == stats["battles_won"] / stats["battles_game"]


class StepCountAgent(torch.nn.Module):
    """A stateful toy agent whose hidden state counts the steps it has seen since its reset.

    Hidden state ``[batch * agents, 1]`` (zeros from ``init_hidden``, like the real agents). The
    controller's input holds the last action one-hot, which is all zero exactly at an episode's
    first step; so at every call the agent knows for each row how many steps of the current
    episode came before, and records a mismatch whenever the hidden state it is given disagrees
    (a stale state at an episode start, or a state that was reset or not carried within one).
    Rows are env-agent slots, stable across calls of the same batch size."""

    def __init__(self, obs_dim: int, n_actions: int) -> None:
        super().__init__()
        self.obs_dim, self.n_actions = obs_dim, n_actions
        self.expected: Any = None
        self.mismatches: list = []
        self.firsts = 0
        self.max_count = 0
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def init_hidden(self, n: int) -> torch.Tensor:
        return torch.zeros(n, 1)

    def forward(self, inputs: torch.Tensor, hidden: torch.Tensor):
        b, a, _ = inputs.shape
        last = inputs.reshape(b * a, -1)[:, self.obs_dim:self.obs_dim + self.n_actions]
        first = last.abs().sum(-1) == 0
        if self.expected is None or self.expected.shape[0] != b * a:
            self.expected = torch.zeros(b * a)
        self.expected = torch.where(first, torch.zeros_like(self.expected), self.expected + 1)
        got = hidden.reshape(b * a)
        for row in torch.nonzero(got != self.expected).flatten().tolist():
            self.mismatches.append((row, bool(first[row]), float(got[row]), float(self.expected[row])))
        self.firsts += int(first.sum())
        self.max_count = max(self.max_count, int(got.max()))
        return torch.zeros(b, a, self.n_actions), hidden + 1


@pytest.mark.parametrize("kind", ["parallel", "continuous"])
def test_hidden_state_is_reset_at_each_episode_start_and_carried_within(request, kind):
    """Catches a runner that does not reset the hidden state per episode (the toy agent sees
    its count from the last episode at the next episode's first step) and one that resets or
    drops the hidden state within an episode (count 0 at a later step). Three training runs of
    4 envs with random actions (epsilon 1): several episode starts per env. The continuous
    runner restarts envs one by one (rows stay the env's rows), so it must reset single rows."""
    from runners.continuous_runner import ContinuousRunner
    args = make_args(request, seed=5)
    probe = {"parallel": BatchRunner, "continuous": ContinuousRunner}[kind](args, StubLogger(), n_envs=N_ENVS)
    info = probe.env_info
    args.n_agents, args.n_actions = info["n_agents"], info["n_actions"]
    mac = BasicMAC(info, args)
    mac.agent = StepCountAgent(info["obs_shape"], info["n_actions"])
    probe.setup(mac)
    lengths = [probe.run(test_mode=False).filled.sum(1) for _ in range(3)]
    agent = mac.agent
    assert not agent.mismatches, f"(row, episode start?, hidden count, expected) e.g. {agent.mismatches[:4]}"
    assert agent.firsts >= 3 * N_ENVS * info["n_agents"]            # every episode start was seen
    assert agent.max_count >= int(max(n.max() for n in lengths)) - 1  # carried over whole episodes
