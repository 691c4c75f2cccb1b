import numpy as np
import torch
import pytest

from components.episode_buffer import EpisodeBatch, ReplayBuffer


def _batch(lengths, max_t=5, n_agents=2, obs_dim=3, state_dim=4, n_actions=3, start=0.0):
    b = EpisodeBatch.zeros(len(lengths), max_t, n_agents, obs_dim, state_dim, n_actions)
    for i, L in enumerate(lengths):
        b.filled[i, :L] = 1
        b.reward[i, :L] = start + i
        b.obs[i, :L + 1] = start + i
    return b


def test_zeros_shapes():
    b = EpisodeBatch.zeros(4, 10, 3, 7, 9, 5)
    assert b.obs.shape == (4, 11, 3, 7) and b.state.shape == (4, 11, 9)
    assert b.avail_actions.shape == (4, 11, 3, 5) and b.actions.shape == (4, 10, 3)
    assert b.reward.shape == b.terminated.shape == b.filled.shape == (4, 10)
    assert b.actions_onehot(5).shape == (4, 10, 3, 5)


def test_insert_wraps_and_sample_truncates_to_longest():
    buf = ReplayBuffer(3, 5, 2, 3, 4, 3, rng=np.random.default_rng(0))
    buf.insert(_batch([2, 3]))
    assert len(buf) == 2 and not buf.can_sample(3)
    buf.insert(_batch([1, 2], start=10.0))    # wraps: overwrites slot 0
    assert len(buf) == 3
    rewards = sorted(buf.storage.reward[:, 0].tolist())
    assert rewards == [1.0, 10.0, 11.0]
    s = buf.sample(3)
    assert s.max_t == 3 and s.obs.shape[1] == 4      # longest stored episode has 3 steps
    # masks: each episode's filled count is preserved
    assert sorted(s.filled.sum(1).tolist()) == [1.0, 2.0, 3.0]


def test_insert_shorter_batch_clears_old_tail():
    buf = ReplayBuffer(1, 5, 2, 3, 4, 3)
    buf.insert(_batch([5], start=7.0))
    buf.insert(_batch([2], max_t=2, start=1.0))
    assert buf.storage.filled[0].tolist() == [1, 1, 0, 0, 0]
    assert buf.storage.reward[0, 2:].abs().sum() == 0 and buf.storage.obs[0, 3:].abs().sum() == 0


def test_sample_more_than_stored_raises():
    buf = ReplayBuffer(4, 5, 2, 3, 4, 3)
    buf.insert(_batch([2]))
    with pytest.raises(ValueError, match="cannot sample 2"):
        buf.sample(2)


def test_sample_is_without_replacement():
    buf = ReplayBuffer(8, 3, 1, 1, 1, 2, rng=np.random.default_rng(1))
    buf.insert(_batch([3] * 8, max_t=3, n_agents=1, obs_dim=1, state_dim=1, n_actions=2))
    s = buf.sample(8)
    assert sorted(s.reward[:, 0].tolist()) == list(map(float, range(8)))


def test_state_dict_round_trip_continues_the_same_samples(tmp_path):
    from utils.checkpoint import load_part

    buf = ReplayBuffer(4, 5, 2, 3, 4, 3, rng=np.random.default_rng(0))
    buf.insert(_batch([2, 5, 3]))
    buf.insert(_batch([4, 1], start=10.0))                      # wraps: index 1, size 4
    torch.save(buf.state_dict(), tmp_path / "buffer.pt")
    expected = [buf.sample(2).reward.sum().item() for _ in range(4)]
    other = ReplayBuffer(4, 5, 2, 3, 4, 3, rng=np.random.default_rng(123))
    other.load_state_dict(load_part(str(tmp_path / "buffer.pt")))
    assert (other.index, other.size) == (1, 4)
    assert other.storage.reward[0, :4].tolist() == [11.0, 0.0, 0.0, 0.0]   # the wrapped-in episode
    assert [other.sample(2).reward.sum().item() for _ in range(4)] == expected
    with pytest.raises(ValueError, match="buffer_size=4"):
        ReplayBuffer(8, 5, 2, 3, 4, 3).load_state_dict(buf.state_dict())
    with pytest.raises(ValueError, match="different map"):
        ReplayBuffer(4, 5, 2, 7, 4, 3).load_state_dict(buf.state_dict())
