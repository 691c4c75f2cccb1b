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


def test_verdicts_compare_the_configs_max_against_the_spread():
    # maxima: proxy 7 and 3 (5 +- 2), vanilla 7 and 7 (7 +- 0), ANN 3 and 1 (2 +- 1)
    assert pt.verdict_text({"td3_proxy": [7.0, 3.0], "td3_snn": [7.0, 7.0], "td3": [3.0, 1.0]}) == (
        "proxy-target SNN level with vanilla SNN (-2, std 2); proxy-target SNN above ANN TD3 (+3, std 2); "
        "vanilla SNN above ANN TD3 (+5, std 1)")
    assert pt.verdict_text({"td3_proxy": [7.0]}) == "not enough configs yet"
    runs = [record("td3_proxy", 1, CURVE_1), record("td3_snn", 1, CURVE_2)]
    md = pt.markdown_table(runs)
    assert "- authors (#22), Walker2d-v4, 30 steps: proxy-target SNN above vanilla SNN (+4, std 0)" in md


def test_a_row_in_progress_is_made_of_finished_runs_and_names_the_unfinished_ones():
    # seed 2's vanilla run stopped at step 10: without the rule the row would be cut to 10 steps
    runs = [record("td3_proxy", 1, CURVE_1), record("td3_snn", 1, CURVE_2),
            record("td3_snn", 2, CURVE_1[:3], complete=False)]
    md = pt.markdown_table(runs)
    row = next(line for line in md.splitlines() if line.startswith("| authors"))
    assert "| 30 | 1,2 |" not in row and "| 30 | 1 |" in row
    assert "7 ± 0 (n=1) | 4 ± 0 (n=1) | 4314" in row     # proxy seed 1 over all 30 steps: max 7, last 5 = 4
    assert "Unfinished runs, left out of their rows (`--resume` continues them): vanilla SNN seed 2 " \
           "(Walker2d-v4, 30 steps) at 10." in md
    # a row whose runs were all cut early (--time-limit) still compares them at the common step
    cut = [record("td3_proxy", 1, CURVE_1, complete=False), record("td3_snn", 1, CURVE_1[:3], complete=False)]
    row = next(line for line in pt.markdown_table(cut).splitlines() if line.startswith("| authors"))
    assert "| 10 | 1 |" in row and "Unfinished" not in pt.markdown_table(cut)


def test_resume_skips_only_complete_runs_of_this_setup():
    jobs = [dict(config=c, env="Walker2d-v4", neuron="lif", seed=1, t_max=30, start_steps=10)
            for c in ("td3", "td3_snn", "td3_proxy")]
    runs = {pt.run_key(r): r for r in [record("td3", 1, CURVE_1),
                                       record("td3_snn", 1, CURVE_1, complete=False),
                                       record("td3_proxy", 1, CURVE_1, setup=pt.OLD_SETUP)]}
    assert [j["config"] for j in pt.pending_jobs(jobs, runs)] == ["td3_snn", "td3_proxy"]
    assert pt.pending_jobs([dict(jobs[0], start_steps=20)], runs) == [dict(jobs[0], start_steps=20)]


def test_finished_runs_are_reported_when_a_row_has_any():
    done, cut = record("td3", 1, CURVE_1), record("td3_snn", 1, CURVE_1[:3], complete=False)
    assert pt.finished_runs([done, cut]) == ([done], [cut])
    assert pt.finished_runs([cut]) == ([cut], [])   # all cut early: compared as they are


def test_mechanism_plot_is_written(tmp_path):
    paths = pt.plot_mechanism([record("td3_proxy", 1, CURVE_1), record("td3_snn", 1, CURVE_2)], str(tmp_path))
    assert paths == [str(tmp_path / "proxy_target_mechanism_Walker2d.png")]
    assert os.path.getsize(paths[0]) > 1000


# ------------------------------------------------------------------ checkpointed resume of a grid run
SMALL = ["batch_size_transitions=16", "log_interval=30", "popsan_hidden=[16]",
         "mujoco_actor_hidden=[16]", "mujoco_critic_hidden=[16]", "proxy_hidden=[16]"]


def _job(work, **kw):
    job = dict(config="td3_proxy", env="Hopper-v4", neuron="lif", seed=1, t_max=200, start_steps=50,
               test_interval=50, test_nepisode=1, device="cpu", time_limit=0, config_dir="", work=str(work),
               save_every=60, deadline_at=None, extra=SMALL)
    job.update(kw)
    return job


class StopAt95(pt.RecordingLogger):
    """Stops the run as a passed deadline would, once a stat at t >= 95 is logged."""

    def log_stat(self, key, value, t):
        if t >= 95:
            self.stop.at = 0.0
        super().log_stat(key, value, t)


SERIES = ("test_curve", "target_shift", "proxy_loss", "proxy_loss_first", "firing_rate")


@pytest.mark.parametrize("hard_kill", [False, True])
def test_a_stopped_grid_run_continues_exactly_with_resume(tmp_path, monkeypatch, hard_kill):
    """Stopped by its deadline (last checkpoint at the stop) or killed outright (only the periodic
    checkpoint at 60 is left, and stats logged after it): the resumed run's record equals a straight one's."""
    pytest.importorskip("mujoco")
    import shutil

    straight = pt.run_one(_job(tmp_path / "a"))
    assert straight["complete"] and straight["t_reached"] == 200 and straight["resumed_from_t"] is None

    original, drop = pt.RecordingLogger, pt.drop_old_replays
    monkeypatch.setattr(pt, "RecordingLogger", StopAt95)
    if hard_kill:   # a killed process drops no replays
        monkeypatch.setattr(pt, "drop_old_replays", lambda models, keep_newest: None)
    first = pt.run_one(_job(tmp_path / "b"))
    assert not first["complete"] and 95 <= first["t_reached"] < 200
    models = os.path.join(pt.run_dir(_job(tmp_path / "b")), "models", "bench_td3_proxy_Hopper-v4_seed1")
    steps = sorted(int(d) for d in os.listdir(models) if d.isdigit())
    if hard_kill:
        assert steps[0] == 60
        for step in steps[1:]:
            shutil.rmtree(os.path.join(models, str(step)))
    monkeypatch.setattr(pt, "RecordingLogger", original)
    monkeypatch.setattr(pt, "drop_old_replays", drop)
    job_b = _job(tmp_path / "b")
    assert pt.plan_of(job_b, [job_b]) == f"resume from step {60 if hard_kill else steps[-1]}"
    assert pt.plan_of(_job(tmp_path / "c"), [_job(tmp_path / "c")]) == "fresh"
    assert pt.plan_of(job_b, []) == "reuse"
    second = pt.run_one(job_b)
    assert second["complete"] and second["resumed_from_t"] == (60 if hard_kill else steps[-1])
    for key in SERIES:
        assert second[key] == straight[key], key
    assert second["max_avg_return"] == straight["max_avg_return"]
    # only the newest checkpoint keeps its replay while a run is unfinished; none once it is complete
    from utils.checkpoint import has_part
    assert not any(has_part(os.path.join(models, d), pt.REPLAY_PART) for d in os.listdir(models) if d.isdigit())


def test_a_job_after_the_deadline_does_not_start(tmp_path):
    import time
    assert pt.run_one(_job(tmp_path, deadline_at=time.time() - 1)) == {"not_started": True}


# ------------------------------------------------------------------ threads
def test_runs_on_more_threads_are_left_out_of_the_speed_column():
    runs = [record("td3_proxy", 1, CURVE_1), record("td3_proxy", 3, CURVE_2, torch_threads=2)]
    row = next(line for line in pt.markdown_table(runs).splitlines() if line.startswith("| authors"))
    assert row.endswith("| -/-/10 |")      # seed 1's 10 steps/s; seed 3 (30 steps/s on 2 threads) left out
    assert "| 30 | 1,3 |" in row            # its returns still count


def test_threads_reach_the_run_config(tmp_path):
    assert pt.build_args(_job(tmp_path)).torch_threads == 1
    assert pt.build_args(_job(tmp_path, threads=2)).torch_threads == 2
    with pytest.raises(SystemExit):
        pt.main(["--threads", "0", "--dry-run"])


def test_alternate_ms_calls_the_variants_in_turn():
    calls = []
    ms = pt.alternate_ms({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, n=3, warmup=2)
    assert calls == ["a", "b"] * 5 and set(ms) == {"a", "b"} and all(v >= 0 for v in ms.values())


def test_thread_timing_times_one_learner_per_thread_count(tmp_path):
    pytest.importorskip("mujoco")
    import torch
    ms = pt.thread_timing(_job(tmp_path), [1, 2], n=2)
    assert set(ms) == {"1", "2"} and all(v > 0 for v in ms.values())
    assert torch.get_num_threads() == 1
