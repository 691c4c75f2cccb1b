"""Whole-episode replay: windows, masks, padding, previous action/reward, sampling rule."""
import numpy as np
import pytest
import torch

from components.episode_replay import WHOLE_EPISODES, EpisodeReplay


def _episode(ep: int, n: int, act_dim: int = 1, terminal: bool = False):
    """obs[t] = [100*ep + t, -t]; act[t] = 10*ep + t (+0.5 per dim); rew[t] = t + 0.25."""
    obs = np.stack([np.array([100 * ep + t, -t], dtype=np.float32) for t in range(n + 1)])
    act = np.stack([np.full(act_dim, 10 * ep + t + 0.5, dtype=np.float32) for t in range(n)])
    rew = np.arange(n, dtype=np.float32) + 0.25
    term = np.zeros(n, dtype=np.float32)
    term[-1] = float(terminal)
    return obs, act, rew, term


def test_window_from_episode_start_and_padding():
    rb = EpisodeReplay(capacity=4, obs_dim=2, act_dim=1, max_episode_len=10)
    rb.add_episode(*_episode(0, 3, terminal=True))
    b = rb.get_windows([0], [0], seq_len=5)
    assert b["obs"].shape == (6, 1, 2) and b["act"].shape == (5, 1, 1)
    assert b["mask"][:, 0, 0].tolist() == [1, 1, 1, 0, 0]
    assert b["obs"][:, 0, 0].tolist() == [0, 1, 2, 3, 0, 0]      # obs[3] = final obs, then zeros
    assert b["act"][:, 0, 0].tolist() == [0.5, 1.5, 2.5, 0, 0]
    assert b["prev_act"][:, 0, 0].tolist() == [0, 0.5, 1.5, 2.5, 0, 0]  # a_{t-1}, zero at t=0
    assert b["rew"][:, 0, 0].tolist() == [0.25, 1.25, 2.25, 0, 0]
    assert b["prev_rew"][:, 0, 0].tolist() == [0, 0.25, 1.25, 2.25, 0, 0]
    assert b["term"][:, 0, 0].tolist() == [0, 0, 1, 0, 0]
    assert all(v.dtype == torch.float32 for v in b.values())


def test_mid_episode_window_uses_real_previous_action_and_reward():
    rb = EpisodeReplay(capacity=4, obs_dim=2, act_dim=2, max_episode_len=10)
    rb.add_episode(*_episode(0, 4, act_dim=2))
    rb.add_episode(*_episode(1, 8, act_dim=2))
    b = rb.get_windows([1, 0], [3, 1], seq_len=4)
    assert b["obs"][:, 0, 0].tolist() == [103, 104, 105, 106, 107]
    assert b["prev_act"][:, 0, 1].tolist() == [12.5, 13.5, 14.5, 15.5, 16.5]
    assert b["prev_rew"][:, 0, 0].tolist() == [2.25, 3.25, 4.25, 5.25, 6.25]
    assert b["mask"][:, 0, 0].tolist() == [1, 1, 1, 1]
    # second window: episode 0 (length 4) from step 1 -> 3 real steps, obs up to the final obs[4]
    assert b["mask"][:, 1, 0].tolist() == [1, 1, 1, 0]
    assert b["obs"][:, 1, 0].tolist() == [1, 2, 3, 4, 0]
    assert b["term"].sum() == 0  # truncated episodes carry no terminal flag


def test_discrete_actions_index_and_one_hot_previous_action():
    rb = EpisodeReplay(capacity=2, obs_dim=2, act_dim=3, max_episode_len=6, discrete=True)
    obs = np.zeros((5, 2), dtype=np.float32)
    rb.add_episode(obs, np.array([2, 0, 1, 2]), np.ones(4), np.array([0, 0, 0, 1]))
    b = rb.get_windows([0], [0], seq_len=4)
    assert b["act"][:, 0, 0].tolist() == [2, 0, 1, 2]
    assert b["prev_act"].shape == (5, 1, 3)
    expected = [[0, 0, 0], [0, 0, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]]
    assert b["prev_act"][:, 0].tolist() == expected


def test_sampling_rule_windows_stay_inside_episodes():
    L = 5
    rb = EpisodeReplay(capacity=8, obs_dim=2, act_dim=1, max_episode_len=20, seed=0)
    lengths = [3, 12, 7, 20]
    for ep, n in enumerate(lengths):
        rb.add_episode(*_episode(ep, n))
    b = rb.sample(4000, L)
    ep_id = (b["obs"][0, :, 0] // 100).long()
    start = (b["obs"][0, :, 0] % 100).long()
    counts = {}
    for e, s, m in zip(ep_id.tolist(), start.tolist(), b["mask"][:, :, 0].sum(0).tolist()):
        n = lengths[e]
        assert s <= max(0, n - L)
        assert m == min(L, n)  # only the short episode is padded
        counts[(e, s)] = counts.get((e, s), 0) + 1
    n_valid = sum(max(1, n - L + 1) for n in lengths)
    assert len(counts) == n_valid  # every valid start is drawn
    freq = np.array(list(counts.values())) / 4000
    assert np.all(np.abs(freq - 1 / n_valid) < 0.03)  # uniformly


def test_whole_episode_sampling_starts_at_step_zero_and_pads_to_the_longest():
    rb = EpisodeReplay(capacity=8, obs_dim=2, act_dim=1, max_episode_len=20, seed=0)
    lengths = [3, 12, 7]
    for ep, n in enumerate(lengths):
        rb.add_episode(*_episode(ep, n))
    b = rb.sample(3000, WHOLE_EPISODES)
    ep_id = (b["obs"][0, :, 0] // 100).long()
    assert b["act"].shape[0] == 12  # the longest episode in the batch
    assert (b["obs"][0, :, 0] % 100 == 0).all()  # every sample starts at its episode's first step
    assert (b["prev_act"][0] == 0).all() and (b["prev_rew"][0] == 0).all()
    assert b["mask"][:, :, 0].sum(0).tolist() == [lengths[e] for e in ep_id.tolist()]
    freq = np.bincount(ep_id.numpy(), minlength=3) / 3000
    assert np.all(np.abs(freq - 1 / 3) < 0.03)  # episodes equally likely, whatever their length
    short = rb.get_windows([0, 2], [0, 0], 7)
    assert rb.sample(1, WHOLE_EPISODES)["act"].shape[0] in lengths
    assert short["mask"][:, :, 0].sum(0).tolist() == [3, 7]


@pytest.mark.parametrize("seq_len", [0, -2])
def test_a_window_length_below_one_other_than_whole_episodes_is_rejected(seq_len):
    rb = EpisodeReplay(capacity=2, obs_dim=2, act_dim=1, max_episode_len=4)
    rb.add_episode(*_episode(0, 3))
    with pytest.raises(ValueError, match="-1 for whole episodes"):
        rb.sample(2, seq_len)


def test_ring_overwrites_oldest_episode():
    rb = EpisodeReplay(capacity=2, obs_dim=2, act_dim=1, max_episode_len=10)
    for ep, n in enumerate([4, 6, 9]):
        rb.add_episode(*_episode(ep, n))
    assert len(rb) == 2 and rb.n_steps == 15
    ids = set((rb.sample(200, 3)["obs"][0, :, 0] // 100).long().tolist())
    assert ids == {1, 2}


def test_bad_input_is_rejected():
    rb = EpisodeReplay(capacity=2, obs_dim=2, act_dim=1, max_episode_len=4)
    obs, act, rew, term = _episode(0, 3)
    with pytest.raises(ValueError, match="n\\+1"):
        rb.add_episode(obs[:-1], act, rew, term)
    with pytest.raises(ValueError, match="length"):
        rb.add_episode(*_episode(0, 5))
    bad = term.copy()
    bad[0] = 1
    with pytest.raises(ValueError, match="last step"):
        rb.add_episode(obs, act, rew, bad)
    with pytest.raises(RuntimeError, match="empty"):
        rb.sample(2, 2)


def test_state_dict_round_trip_continues_the_same_windows():
    rep = EpisodeReplay(3, obs_dim=2, act_dim=1, max_episode_len=6, seed=0)
    for ep, n in enumerate([4, 6, 2, 5]):                      # 4 episodes in 3 slots: wraps
        rep.add_episode(*_episode(ep, n))
    state = rep.state_dict()
    expected = [rep.sample(3, 2)["obs"].sum().item() for _ in range(3)]
    other = EpisodeReplay(3, obs_dim=2, act_dim=1, max_episode_len=6, seed=9)
    other.load_state_dict(state)
    assert (other._top, other.n_episodes, other.n_steps) == (1, 3, 5 + 6 + 2)
    assert other.lengths.tolist() == [5, 6, 2]
    assert [other.sample(3, 2)["obs"].sum().item() for _ in range(3)] == expected
    with pytest.raises(ValueError, match="checkpoint's config"):
        EpisodeReplay(4, obs_dim=2, act_dim=1, max_episode_len=6).load_state_dict(state)
