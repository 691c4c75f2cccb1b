import numpy as np
import pytest
import torch

from components.transition_replay import TransitionReplay


def _fill(buf, n, start=0):
    for i in range(start, start + n):
        buf.add(np.full(3, i), np.full(2, -i), float(i), np.full(3, i + 1), i % 5 == 4)


def test_ring_overwrites_oldest_and_keeps_rows_aligned():
    buf = TransitionReplay(obs_dim=3, act_dim=2, capacity=4, seed=0)
    _fill(buf, 6)  # transitions 0..5; 0 and 1 overwritten
    assert len(buf) == 4 and buf.pos == 2
    assert sorted(buf.rewards[:, 0].tolist()) == [2.0, 3.0, 4.0, 5.0]
    batch = buf.sample(64)
    r = batch["rewards"][:, 0]
    # every sampled row is one transition: obs == r, action == -r, next_obs == r + 1
    assert torch.equal(batch["obs"], r[:, None].expand(-1, 3))
    assert torch.equal(batch["actions"], -r[:, None].expand(-1, 2))
    assert torch.equal(batch["next_obs"], (r + 1)[:, None].expand(-1, 3))
    assert torch.equal(batch["terminated"][:, 0], (r == 4).float())
    assert set(r.tolist()) <= {2.0, 3.0, 4.0, 5.0}


def test_sample_shapes_dtypes_and_seeded_order():
    a, b = (TransitionReplay(3, 2, 100, seed=7) for _ in range(2))
    _fill(a, 50)
    _fill(b, 50)
    sa, sb = a.sample(16), b.sample(16)
    assert {k: tuple(v.shape) for k, v in sa.items()} == {
        "obs": (16, 3), "actions": (16, 2), "rewards": (16, 1), "next_obs": (16, 3), "terminated": (16, 1)}
    assert all(v.dtype == torch.float32 for v in sa.values())
    assert torch.equal(sa["rewards"], sb["rewards"])


def test_bad_use_is_refused():
    with pytest.raises(ValueError, match="capacity must be >= 1"):
        TransitionReplay(3, 2, 0)
    with pytest.raises(RuntimeError, match="empty replay"):
        TransitionReplay(3, 2, 10).sample(4)


def test_state_dict_round_trip_same_and_larger_capacity():
    buf = TransitionReplay(obs_dim=3, act_dim=2, capacity=4, seed=0)
    _fill(buf, 6)                                     # ring holds 2..5, next write at slot 2
    state = buf.state_dict()
    expected = buf.sample(8)["rewards"][:, 0].tolist()
    same = TransitionReplay(obs_dim=3, act_dim=2, capacity=4, seed=5)
    same.load_state_dict(state)
    assert same.pos == 2 and same.sample(8)["rewards"][:, 0].tolist() == expected
    bigger = TransitionReplay(obs_dim=3, act_dim=2, capacity=6, seed=5)   # e.g. a larger t_max on resume
    bigger.load_state_dict(state)
    assert bigger.rewards[:4, 0].tolist() == [2.0, 3.0, 4.0, 5.0]  # oldest first
    assert (bigger.pos, len(bigger)) == (4, 4)
    _fill(bigger, 1, start=6)
    assert bigger.rewards[4, 0] == 6.0 and bigger.obs[4, 0] == 6.0
    with pytest.raises(ValueError, match="does not fit"):
        TransitionReplay(obs_dim=3, act_dim=2, capacity=3).load_state_dict(state)
