from types import SimpleNamespace

import pytest
import torch

from components.action_selectors import EpsilonGreedySelector, LinearSchedule


def test_linear_schedule():
    s = LinearSchedule(1.0, 0.05, 100)
    assert s(0) == 1.0 and s(100) == pytest.approx(0.05) and s(10_000) == pytest.approx(0.05)
    assert s(50) == pytest.approx(0.525)
    assert LinearSchedule(1.0, 0.1, 0)(0) == 0.1


def _selector(start, finish=0.05, anneal=100):
    return EpsilonGreedySelector(SimpleNamespace(epsilon_start=start, epsilon_finish=finish,
                                                 epsilon_anneal_time=anneal))


def test_greedy_never_picks_an_unavailable_action():
    q = torch.tensor([[[5.0, 1.0, 3.0], [0.0, 9.0, 2.0]]])
    avail = torch.tensor([[[0, 1, 1], [1, 0, 1]]])
    sel = _selector(1.0)
    assert sel.select(q, avail, t_env=0, test_mode=True).tolist() == [[2, 2]]
    assert sel.epsilon == 0.0


def test_full_exploration_is_uniform_over_available_actions():
    torch.manual_seed(0)
    n = 4000
    q = torch.zeros(n, 1, 4)
    q[..., 0] = 10.0  # greedy would always pick 0
    avail = torch.tensor([1, 0, 1, 1]).expand(n, 1, 4)
    acts = _selector(1.0, 1.0).select(q, avail, t_env=0).flatten()
    counts = torch.bincount(acts, minlength=4).tolist()
    assert counts[1] == 0
    assert all(abs(c - n / 3) < 0.1 * n for c in (counts[0], counts[2], counts[3]))


def test_epsilon_follows_the_schedule():
    sel = _selector(1.0, 0.0, 100)
    q = torch.zeros(2, 3, 5)
    avail = torch.ones(2, 3, 5)
    sel.select(q, avail, t_env=25)
    assert sel.epsilon == pytest.approx(0.75)
    q[..., 3] = 1.0
    assert (sel.select(q, avail, t_env=500) == 3).all()  # epsilon reached 0: greedy
