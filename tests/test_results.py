"""Aggregation of synthetic sacred runs by src/results.py: numbers, table, json and plots."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

import results


def write_run(root, env, scenario, name, run_id, *, agent, seed, win, ret, status="COMPLETED",
              fmt="metrics", key_name="map_name", steps=(0, 100, 200)):
    """A sacred run folder with test_battle_won_mean / test_return_mean curves ending in win/ret."""
    d = root / env / scenario / name / str(run_id)
    d.mkdir(parents=True)
    cfg = {"env": env, "env_args": {key_name: scenario}, "seed": seed, "name": name}
    if agent is not None:
        cfg["agent"] = agent
    (d / "config.json").write_text(json.dumps(cfg))
    (d / "run.json").write_text(json.dumps({"status": status}))
    n = len(steps)
    wins = list(np.linspace(0.0, win, n)) if win is not None else None
    rets = list(np.linspace(0.0, ret, n))
    if fmt == "metrics":
        m = {"test_return_mean": {"steps": list(steps), "values": rets, "timestamps": [""] * n}}
        if wins is not None:
            m["test_battle_won_mean"] = {"steps": list(steps), "values": wins, "timestamps": [""] * n}
        (d / "metrics.json").write_text(json.dumps(m))
        (d / "info.json").write_text(json.dumps({"test_return_mean": [-999.0], "test_return_mean_T": [0]}))
    else:  # pymarl info.json, one value jsonpickled like a numpy scalar
        info = {"test_return_mean": rets[:-1] + [{"py/object": "numpy.float64", "dtype": "float64",
                                                  "value": rets[-1]}],
                "test_return_mean_T": list(steps)}
        if wins is not None:
            info["test_battle_won_mean"] = wins
            info["test_battle_won_mean_T"] = list(steps)
        (d / "info.json").write_text(json.dumps(info))
    return d


@pytest.fixture
def sacred(tmp_path):
    root = tmp_path / "sacred"
    # 3m: rnn seeds win 0.5/0.7/0.9 (info.json for one), grsn 1.0/0.8
    write_run(root, "smax", "3m", "qmix_rnn", 1, agent="rnn", seed=0, win=0.5, ret=10.0)
    write_run(root, "smax", "3m", "qmix_rnn", 2, agent="rnn", seed=1, win=0.7, ret=14.0)
    write_run(root, "smax", "3m", "qmix_rnn", 3, agent="rnn", seed=2, win=0.9, ret=18.0, fmt="info")
    write_run(root, "smax", "3m", "qmix_grsn", 1, agent="grsn", seed=0, win=1.0, ret=20.0,
              steps=(0, 150, 300))
    write_run(root, "smax", "3m", "qmix_grsn", 2, agent="grsn", seed=1, win=0.8, ret=16.0)
    # an unfinished run must be left out by default
    write_run(root, "smax", "3m", "qmix_grsn", 3, agent="grsn", seed=2, win=0.0, ret=0.0, status="RUNNING")
    # 8m: only rnn
    write_run(root, "smax", "8m", "qmix_rnn", 1, agent="rnn", seed=0, win=0.25, ret=5.0)
    # control task: key instead of map_name, no win rate
    write_run(root, "pomdp", "Pendulum-P", "td3_grsn", 1, agent="grsn", seed=0, win=None, ret=-150.0,
              key_name="key")
    return root


def test_aggregate_numbers(sacred):
    runs, skipped = results.collect_runs([str(sacred)])
    assert len(runs) == 7 and [r.status for r in skipped] == ["RUNNING"]
    rows = {(r["scenario"], r["agent"]): r for r in results.aggregate(runs)}
    rnn3 = rows[("3m", "rnn")]
    assert rnn3["n_runs"] == 3 and rnn3["seeds"] == [0, 1, 2]
    assert rnn3["win_rate_mean"] == pytest.approx(70.0)
    assert rnn3["win_rate_std"] == pytest.approx(np.std([50.0, 70.0, 90.0]))
    assert rnn3["return_mean"] == pytest.approx(14.0)  # info.json value (jsonpickled) read, not -999
    grsn3 = rows[("3m", "grsn")]
    assert grsn3["win_rate_mean"] == pytest.approx(90.0) and grsn3["win_rate_std"] == pytest.approx(10.0)
    assert grsn3["return_mean"] == pytest.approx(18.0) and grsn3["return_std"] == pytest.approx(2.0)
    pend = rows[("Pendulum-P", "grsn")]
    assert pend["win_rate_mean"] is None and pend["return_mean"] == pytest.approx(-150.0)

    all_runs, _ = results.collect_runs([str(sacred)], statuses=None)
    rows_all = {(r["scenario"], r["agent"]): r for r in results.aggregate(all_runs)}
    assert rows_all[("3m", "grsn")]["n_runs"] == 3
    assert rows_all[("3m", "grsn")]["win_rate_mean"] == pytest.approx(60.0)


def test_markdown_table_layout(sacred):
    runs, _ = results.collect_runs([str(sacred)])
    md = results.markdown_table(results.aggregate(runs))
    lines = md.splitlines()
    assert lines[0] == "| Scenario | grsn reward | grsn win % | rnn reward | rnn win % |"
    row3m = next(line for line in lines if line.startswith("| 3m "))
    assert "18.00 ± 2.00 [2]" in row3m and "90.0 ± 10.0 [2]" in row3m and "70.0 ± 16.3 [3]" in row3m
    row8m = next(line for line in lines if line.startswith("| 8m "))
    assert row8m.split(" | ")[1:3] == ["-", "-"]  # no grsn run on 8m
    assert "25.0 ± 0.0 [1]" in row8m


def test_summarize_writes_files_and_plots(sacred, tmp_path):
    out = tmp_path / "out"
    md, rows = results.summarize([str(sacred)], str(out))
    assert (out / "summary.md").read_text() == md and "RUNNING 1" in md
    data = json.loads((out / "summary.json").read_text())
    assert len(data["rows"]) == 4 and data["n_skipped"] == 1
    for scen in ("3m", "8m", "Pendulum-P"):
        png = out / f"curves_{scen}.png"
        assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert os.path.getsize(png) > 5000


def test_mean_curve_interpolates_on_common_grid():
    a = (np.array([0.0, 100.0, 200.0]), np.array([0.0, 1.0, 2.0]))
    b = (np.array([0.0, 50.0, 150.0, 300.0]), np.array([0.0, 0.0, 1.0, 3.0]))
    grid, mean, std = results.mean_curve([a, b])
    assert grid.tolist() == [0.0, 50.0, 100.0, 150.0, 200.0]  # up to the shorter run's end
    b_at_200 = 1.0 + 2.0 * 50 / 150
    assert mean[-1] == pytest.approx((2.0 + b_at_200) / 2)
    assert std[2] == pytest.approx(abs(1.0 - 0.5) / 2)


def test_cli(sacred, tmp_path, capsys):
    out = tmp_path / "cli"
    assert results.main([str(sacred / "smax"), "--out", str(out), "--no-plots"]) == 0
    printed = capsys.readouterr().out
    assert "| 3m |" in printed and "Pendulum-P" not in printed
    assert not list(out.glob("*.png"))
    assert results.main([str(tmp_path / "missing")]) == 2
