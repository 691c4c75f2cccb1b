"""Statistics of experiments.stats: values computed by hand, and equality with rliable."""
import numpy as np
import pytest

from experiments import stats


def test_iqm_trims_a_quarter_at_each_end():
    # 8 scores sorted -50, 1, 2, 3, 4, 5, 6, 100: the 25 % trimmed mean drops 2 at each end -> mean of 2..5
    scores = np.array([[1.0, 100.0], [3.0, 4.0], [5.0, 6.0], [-50.0, 2.0]]).reshape(4, 2)
    assert stats.iqm(scores[None])[0] == pytest.approx((2 + 3 + 4 + 5) / 4)


def test_difference_point_is_the_difference_of_means():
    x = np.array([[1.0], [2.0], [3.0]])
    y = np.array([[0.0], [0.0], [3.0]])
    d, lo, hi = stats.difference(x, y)
    assert d == pytest.approx(2.0 - 1.0)
    # every resample's difference lies between min(x) - max(y) and max(x) - min(y)
    assert 1.0 - 3.0 <= lo <= d <= hi <= 3.0 - 0.0


def test_probability_of_improvement_by_hand():
    # pairs: 1>0, 1<2, 2>0, 2=2 -> (1 + 0 + 1 + 0.5) / 4
    p, lo, hi = stats.probability_of_improvement(np.array([[1.0], [2.0]]), np.array([[0.0], [2.0]]))
    assert p == pytest.approx(0.625)
    assert 0.0 <= lo <= p <= hi <= 1.0


@pytest.mark.parametrize("diff,lo,hi,margin,expected", [
    (3.0, 1.0, 5.0, 5.0, "above"),           # CI above 0
    (-3.0, -5.0, -1.0, 5.0, "below"),        # CI below 0
    (0.5, -2.0, 3.0, 5.0, "level"),          # CI inside +-5
    (0.5, -2.0, 6.0, 5.0, "no difference shown"),   # holds 0, wider than the margin
    (0.0, -1.0, 1.0, 0.0, "no difference shown"),   # no margin: never "level"
    (0.0, 0.0, 2.0, 5.0, "level"),           # touching 0 is not "above"
])
def test_verdict_rule(diff, lo, hi, margin, expected):
    assert stats.verdict(diff, lo, hi, margin) == expected


def test_verdict_flips_for_lower_is_better():
    assert stats.verdict(3.0, 1.0, 5.0, 0.0, higher_is_better=False) == "below"


def test_estimates_equal_rliable_for_the_same_seed():
    from rliable import library, metrics

    rng = np.random.RandomState(3)
    x, y = rng.rand(5, 3), rng.rand(4, 3)
    for agg, fn in (("IQM", metrics.aggregate_iqm), ("mean", metrics.aggregate_mean)):
        np.random.seed(stats.SEED)
        point, ci = library.get_interval_estimates({"a": x}, lambda s: np.array([fn(s)]), reps=500)
        ours = stats.interval_estimates({"a": x}, agg, reps=500)["a"]
        assert ours == pytest.approx((point["a"][0], ci["a"][0][0], ci["a"][1][0]))
    np.random.seed(stats.SEED)
    point, ci = library.get_interval_estimates(
        {"p": [x, y]}, lambda a, b: np.array([metrics.probability_of_improvement(a, b)]), reps=500)
    assert stats.probability_of_improvement(x, y, reps=500) == pytest.approx((point["p"][0], ci["p"][0][0], ci["p"][1][0]))
    np.random.seed(stats.SEED)
    point, ci = library.get_interval_estimates({"d": [x, y]}, lambda a, b: np.array([a.mean() - b.mean()]), reps=500)
    assert stats.difference(x, y, reps=500) == pytest.approx((point["d"][0], ci["d"][0][0], ci["d"][1][0]))


def test_common_grid_ends_where_the_shortest_run_ends():
    grid, values = stats.common_grid([([0, 10, 20], [0.0, 1.0, 2.0]), ([5, 15], [1.0, 3.0])], points=3)
    assert grid.tolist() == [5.0, 10.0, 15.0]
    assert values.tolist() == [[0.5, 1.0, 1.5], [1.0, 2.0, 3.0]]
    empty, _ = stats.common_grid([([0, 1], [0.0, 0.0]), ([2, 3], [0.0, 0.0])])
    assert len(empty) == 0


def test_mean_ci_brackets_the_mean_per_point():
    mu, lo, hi = stats.mean_ci(np.array([[0.0, 10.0], [2.0, 10.0], [4.0, 10.0]]))
    assert mu.tolist() == [2.0, 10.0]
    assert lo[0] < 2.0 < hi[0] and lo[1] == hi[1] == 10.0
