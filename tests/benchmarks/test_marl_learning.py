"""The learning benchmark's read-out: steps and wall time to a win-rate level, variants."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                "benchmarks"))
import marl_learning  # noqa: E402

INFO = {"test_battle_won_mean_T": [0, 10, 20, 30], "test_battle_won_mean": [0.0, 0.5, 0.92, 0.8],
        "elapsed_s_T": [0, 10, 20, 30], "elapsed_s": [1.0, 11.0, 25.0, 40.0],
        "test_return_mean": [1.0, 2.0, 3.0, 4.0]}


def test_wall_time_is_read_at_the_first_crossing():
    assert marl_learning.steps_to_reach(INFO["test_battle_won_mean_T"], INFO["test_battle_won_mean"], 0.9) == 20
    assert marl_learning.wall_time_to_reach(INFO, 0.9) == 25.0
    assert marl_learning.wall_time_to_reach(INFO, 0.95) is None
    assert marl_learning.wall_time_to_reach({k: v for k, v in INFO.items() if not k.startswith("elapsed")},
                                            0.9) is None


def test_summary_medians():
    late = dict(INFO, elapsed_s=[2.0, 20.0, 50.0, 70.0])
    s = marl_learning.summarise([{"info": INFO, "wall_time_s": 41.0}, {"info": late, "wall_time_s": 71.0}], 0.9)
    assert s["steps_to_level"] == [20, 20]
    assert s["wall_s_to_level"] == [25.0, 50.0]
    assert s["median_wall_s_to_level"] == 37.5
    assert s["wall_s_per_10k_steps"] == pytest.approx([40.0 / 30 * 1e4, 70.0 / 30 * 1e4])
    assert s["final_test_win_mean"] == pytest.approx(0.8)


def test_variant_needs_a_name_first(capsys):
    with pytest.raises(SystemExit):
        marl_learning.main(["--variant", "mac_unroll=stepwise"])
    assert "--variant takes a name" in capsys.readouterr().err
