"""benchmarks/proxy_target.py: the table (max and last-5 per config), --resume, mechanism plots."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks"))
import proxy_target as pt  # noqa: E402


def record(config, seed, curve, setup=pt.SETUP, **kw):
    rec = dict(config=config, env="Walker2d-v4", neuron="lif", seed=seed, t_max=30, start_steps=10,
               test_interval=5, test_nepisode=10, device="cpu", setup=setup, complete=True,
               t_reached=curve[-1][0], train_steps_per_sec=10.0 * seed, test_curve=curve,
               target_shift=[[10, 0.5], [20, 0.25]], proxy_loss=[[10, 0.1], [20, 0.05]],
               proxy_loss_first=[[10, 0.2], [20, 0.1]])
    rec.update(kw)
    return rec


CURVE_1 = [[0, 1.0], [5, 7.0], [10, 3.0], [15, 4.0], [20, 5.0], [25, 6.0], [30, 2.0]]
CURVE_2 = [[0, 3.0], [5, 1.0], [10, 1.0], [15, 1.0], [20, 1.0], [25, 1.0], [30, 1.0]]


def test_table_has_max_and_last5_per_config_and_setup_rows():
    runs = [record("td3_proxy", 1, CURVE_1), record("td3_proxy", 2, CURVE_2),
            record("td3_snn", 1, CURVE_2, setup=pt.OLD_SETUP)]
    md = pt.markdown_table([r for r in runs if "setup" in r])
    new_row = next(line for line in md.splitlines() if line.startswith("| authors"))
    # seed 1: max 7, last 5 = (3+4+5+6+2)/5 = 4; seed 2: max 3, last 5 = 1 -> means 5 ± 2 and 2.5 ± 1.5
    assert "5 ± 2 (n=2) | 2 ± 2 (n=2) | 4314" in new_row    # 2.5 and 1.5 shown with 0 decimals
    assert "| 30 | 1,2 |" in new_row and new_row.endswith("| -/-/15 |")
    assert any(line.startswith("| pre-#22") for line in md.splitlines())


def test_resume_skips_only_complete_runs_of_this_setup():
    jobs = [dict(config=c, env="Walker2d-v4", neuron="lif", seed=1, t_max=30, start_steps=10)
            for c in ("td3", "td3_snn", "td3_proxy")]
    runs = {pt.run_key(r): r for r in [record("td3", 1, CURVE_1),
                                       record("td3_snn", 1, CURVE_1, complete=False),
                                       record("td3_proxy", 1, CURVE_1, setup=pt.OLD_SETUP)]}
    assert [j["config"] for j in pt.pending_jobs(jobs, runs)] == ["td3_snn", "td3_proxy"]
    assert pt.pending_jobs([dict(jobs[0], start_steps=20)], runs) == [dict(jobs[0], start_steps=20)]


def test_mechanism_plot_is_written(tmp_path):
    paths = pt.plot_mechanism([record("td3_proxy", 1, CURVE_1), record("td3_snn", 1, CURVE_2)], str(tmp_path))
    assert paths == [str(tmp_path / "proxy_target_mechanism_Walker2d.png")]
    assert os.path.getsize(paths[0]) > 1000
