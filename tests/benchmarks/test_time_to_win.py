"""benchmarks/time_to_win.py: the 'three consecutive tests' detection, JaxMARL test records, ratios."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks"))
import time_to_win as ttw  # noqa: E402


def test_first_sustained_needs_consecutive_tests_at_or_above_the_threshold():
    wins = [0.1, 0.85, 0.9, 0.7, 0.8, 0.81, 0.95, 0.99]
    assert ttw.first_sustained(wins, 0.8, 3) == 6           # 0.85, 0.9 broken by 0.7; then 0.8 (>=), 0.81, 0.95
    assert ttw.first_sustained(wins, 0.8, 2) == 2
    assert ttw.first_sustained(wins, 0.8, 1) == 1
    assert ttw.first_sustained(wins, 0.9, 3) is None         # 0.95, 0.99: only two at the end
    assert ttw.first_sustained([], 0.8, 3) is None
    with pytest.raises(ValueError, match="consecutive must be >= 1"):
        ttw.first_sustained(wins, 0.8, 0)


def test_time_to_reads_the_clocks_of_the_completing_test():
    tests = [{"t_env": 10 * i, "win": w, "cpu_s": 100.0 + i, "wall_s": 50.0 + 2 * i}
             for i, w in enumerate([0.9, 0.9, 0.2, 0.8, 0.9, 0.85])]
    assert ttw.time_to(tests, 0.8, 3) == {"t_env": 50, "cpu_s": 105.0, "wall_s": 60.0}
    assert ttw.time_to(tests, 0.95, 3) is None


def test_jaxmarl_tests_keep_the_updates_of_its_test_period():
    lines = [{"header": True, "every": 3, "jax": "x"}] + [
        {"env_step": 100 * u, "update_steps": u, "test_returned_won_episode": 0.1 * u, "cpu_s": u, "wall_s": 2 * u}
        for u in range(7)] + [{"done": True, "cpu_s": 9, "wall_s": 9}]
    got = ttw.jaxmarl_tests(lines)
    assert [t["t_env"] for t in got] == [0, 300, 600]
    assert [t["win"] for t in got] == pytest.approx([0.0, 0.3, 0.6])
    assert [t["cpu_s"] for t in got] == [0, 3, 6]
    assert len(ttw.jaxmarl_tests(lines[:-1] + [{"stopped": True}])) == 3       # ended early at the threshold
    with pytest.raises(RuntimeError, match="did not finish"):
        ttw.jaxmarl_tests(lines[:-1])
    with pytest.raises(RuntimeError, match="did not finish"):
        ttw.jaxmarl_tests(lines[1:])


def test_summarise_takes_the_median_over_seeds_of_per_seed_ratios():
    def run(cpu_at_third):      # three tests at 1.0: reached at the third, whose cpu_s is given
        return {"tests": [{"t_env": i, "win": 1.0, "cpu_s": cpu_at_third * (i + 1) / 3, "wall_s": 1.0} for i in range(3)]}
    runs = {"ours": {1: run(100.0), 2: run(300.0), 3: run(50.0)},
            "jaxmarl": {1: run(200.0), 2: run(200.0), 3: run(200.0)}}
    s = ttw.summarise(runs, 3)
    assert s["ratio_cpu_s_to_0.8_per_seed"] == pytest.approx([0.5, 1.5, 0.25])
    assert s["ratio_cpu_s_to_0.8"] == pytest.approx(0.5)
    assert s["ratio_wall_s_to_0.9"] == pytest.approx(1.0)
    runs["ours"][2]["tests"][1]["win"] = 0.0                 # seed 2 never holds 0.8 three times: left out
    assert ttw.summarise(runs, 3)["ratio_cpu_s_to_0.8_per_seed"] == pytest.approx([0.5, 0.25])
