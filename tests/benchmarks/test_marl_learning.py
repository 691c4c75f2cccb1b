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


def test_with_ends_a_variant(tmp_path, monkeypatch):
    """``--variant NAME K=V with X=Y``: the overrides after ``with`` go to every run, not into the variant."""
    seen = {}

    def fake_build_jobs(a, variants, extra, buffer_sizes):
        seen.update(variants=variants, extra=extra)
        return [], []

    monkeypatch.setattr(marl_learning, "build_jobs", fake_build_jobs)
    argv = ["--work", str(tmp_path), "--dry-run", "--variant", "notap", "tap=False",
            "with", "torch_threads=1", "env_args.jax_cache_dir=c"]
    assert marl_learning.main(argv) == 0
    assert seen == {"variants": [("notap", ["tap=False"])], "extra": ["torch_threads=1", "env_args.jax_cache_dir=c"]}


# --------------------------------------------------------------------------- resumable grids
import json  # noqa: E402
import types  # noqa: E402

import torch  # noqa: E402

from utils.checkpoint import has_part, save_checkpoint  # noqa: E402


def grid_args(tmp_path, **kw):
    base = dict(config="qmix", agents="rnn", maps="3m", seeds="1", t_max=1000, test_interval=100,
                save_model_interval=0, work=str(tmp_path), tag="g")
    base.update(kw)
    return types.SimpleNamespace(**base)


def one_job(tmp_path, extra=(), buffer_sizes=None):
    jobs, groups = marl_learning.build_jobs(grid_args(tmp_path), [("", [])], list(extra), buffer_sizes or {})
    assert groups == [("3m", "rnn")] and len(jobs) == 1
    return jobs[0]


def sacred_run(job, run_id, status, config, steps, wins, model_token, start, wall=None):
    """A sacred record of the job's run under its root, with its model folder named in info.json."""
    d = os.path.join(job["root"], "sacred", "smax", "3m", "qmix_rnn", str(run_id))
    os.makedirs(d)
    json.dump(dict(config), open(os.path.join(d, "config.json"), "w"))
    json.dump({"status": status, "start_time": start}, open(os.path.join(d, "run.json"), "w"))
    info = {"model_dir": os.path.join(job["root"], "models", model_token),
            "test_battle_won_mean": wins, "test_battle_won_mean_T": steps,
            "test_return_mean": [10 * w for w in wins], "test_return_mean_T": steps,
            "elapsed_s": [float(t) / 10 for t in steps], "elapsed_s_T": steps}
    if wall is not None:
        info.update(wall_time_s=[wall], wall_time_s_T=[steps[-1]])
    json.dump(info, open(os.path.join(d, "info.json"), "w"))
    return d


def checkpoint(job, token, t_env, buffer=True):
    parts = {"agent": torch.nn.Linear(2, 2)}
    if buffer:
        parts["buffer"] = {"x": torch.zeros(64)}
    return save_checkpoint(os.path.join(job["root"], "models", token), t_env, parts)


def test_jobs_save_models_and_take_per_map_buffer_sizes(tmp_path):
    job = one_job(tmp_path, buffer_sizes={"3m": 700, "MMM2": 2400})
    assert "save_model=True" in job["cmd"] and "save_model_interval=1000" in job["cmd"]  # 0 -> t_max
    assert "buffer_size=700" in job["cmd"] and job["root"] == os.path.join(str(tmp_path), "g", "3m_rnn_s1")
    assert marl_learning.parse_buffer_sizes("8m=5000, MMM2=2400") == {"8m": 5000, "MMM2": 2400}
    for bad in ("8m", "8m=0", "8m=x"):
        with pytest.raises(ValueError, match="MAP=EPISODES"):
            marl_learning.parse_buffer_sizes(bad)


def test_benchmark_keys_cannot_be_overridden(capsys):
    with pytest.raises(SystemExit):
        marl_learning.main(["--dry-run", "with", "save_model=False"])
    assert "set by the benchmark itself" in capsys.readouterr().err


def test_plan_reuses_finished_runs_and_resumes_from_a_checkpoint_with_its_replay(tmp_path):
    job = one_job(tmp_path)
    config = marl_learning.expected_config(job["cmd"])
    marl_learning.plan_job(job, resume=True)
    assert job["plan"] == "fresh"  # nothing there yet
    sacred_run(job, 1, "INTERRUPTED", config, [0, 100], [0.0, 0.25], "tokA", "2026-12-04T10:00:00")
    checkpoint(job, "tokA", 150, buffer=False)
    marl_learning.plan_job(job, resume=True)
    assert job["plan"] == "fresh" and "without a checkpoint holding its replay" in job["note"]
    checkpoint(job, "tokA", 160)
    marl_learning.plan_job(job, resume=False)
    assert job["plan"] == "fresh"  # only --resume continues a run
    marl_learning.plan_job(job, resume=True)
    assert job["plan"] == "resume" and job["resume_from"] == os.path.join(job["root"], "models", "tokA")
    resumed = dict(config, checkpoint_path=job["resume_from"])
    sacred_run(job, 2, "COMPLETED", resumed, [200, 300], [0.5, 0.75], "tokB", "2026-12-04T11:00:00", wall=33.0)
    marl_learning.plan_job(job, resume=True)
    assert job["plan"] == "reuse"
    other = marl_learning.expected_config(job["cmd"] + ["lr=0.01"])
    assert marl_learning.config_differences(config, other) == ["lr: 0.001 -> 0.01"]
    job2 = dict(job, cmd=job["cmd"] + ["lr=0.01"])
    marl_learning.plan_job(job2, resume=True)
    assert job2["plan"] == "fresh" and "lr: 0.001 -> 0.01" in job2["note"]


def test_the_record_joins_both_parts_and_spent_replays_are_removed(tmp_path):
    job = one_job(tmp_path)
    config = marl_learning.expected_config(job["cmd"])
    sacred_run(job, 1, "INTERRUPTED", config, [0, 100, 200], [0.0, 0.25, 0.3], "tokA", "2026-12-04T10:00:00")
    first = checkpoint(job, "tokA", 160)
    resumed = dict(config, checkpoint_path=os.path.join(job["root"], "models", "tokA"))
    sacred_run(job, 2, "INTERRUPTED", resumed, [200, 300], [0.5, 0.75], "tokB", "2026-12-04T11:00:00")
    second = checkpoint(job, "tokB", 320)
    assert marl_learning.drop_spent_buffers(job["root"]) > 0
    assert not has_part(first, "buffer") and has_part(second, "buffer")  # the unfinished part keeps its replay
    rec = marl_learning.run_record(job)
    # the first part's points before the resumed run's first step (200), then the resumed run's
    assert rec["info"]["test_battle_won_mean_T"] == [0, 100, 200, 300]
    assert rec["info"]["test_battle_won_mean"] == [0.0, 0.25, 0.5, 0.75]
    assert rec["truncated"] and rec["wall_time_s"] == 30.0  # elapsed_s at the last test (300 / 10)
    assert rec["model_dir"] == os.path.join(job["root"], "models", "tokB")
    sacred_run(job, 3, "COMPLETED", dict(config, checkpoint_path=rec["model_dir"]), [400], [1.0], "tokC",
               "2026-12-04T12:00:00", wall=55.0)
    final = checkpoint(job, "tokC", 400)
    assert marl_learning.drop_spent_buffers(job["root"], keep_final=True) > 0
    assert not has_part(second, "buffer") and has_part(final, "buffer")
    marl_learning.drop_spent_buffers(job["root"])
    assert not has_part(final, "buffer") and has_part(final, "agent")  # networks stay for the energy table
    rec = marl_learning.run_record(job)
    assert rec["status"] == "COMPLETED" and not rec["truncated"] and rec["wall_time_s"] == 55.0
    assert len(rec["segments"]) == 3 and rec["info"]["test_battle_won_mean"][-1] == 1.0


def test_an_attempt_killed_while_loading_keeps_the_replay_it_resumed_from(tmp_path):
    """A resume attempt that dies before saving a checkpoint (OOM-killed while loading the
    replay: sacred leaves it RUNNING, with no test point) must not cost the run its replay: the
    next --resume continues from the same checkpoint and the record joins the retry, not the
    dead attempt."""
    job = one_job(tmp_path)
    config = marl_learning.expected_config(job["cmd"])
    sacred_run(job, 1, "INTERRUPTED", config, [0, 100], [0.0, 0.25], "tokA", "2026-12-04T10:00:00")
    first = checkpoint(job, "tokA", 160)
    resumed = dict(config, checkpoint_path=os.path.join(job["root"], "models", "tokA"))
    sacred_run(job, 2, "RUNNING", resumed, [], [], "tokB", "2026-12-04T11:00:00")  # killed, no checkpoint
    assert marl_learning.drop_spent_buffers(job["root"]) == 0 and has_part(first, "buffer")
    marl_learning.plan_job(job, resume=True)
    assert job["plan"] == "resume" and job["resume_from"] == os.path.join(job["root"], "models", "tokA")
    sacred_run(job, 3, "INTERRUPTED", resumed, [200, 300], [0.5, 0.75], "tokC", "2026-12-04T12:00:00")
    third = checkpoint(job, "tokC", 320)
    assert marl_learning.drop_spent_buffers(job["root"]) > 0
    assert not has_part(first, "buffer") and has_part(third, "buffer")
    rec = marl_learning.run_record(job)
    assert [os.path.basename(p) for p in rec["segments"]] == ["1", "3"]  # the dead attempt is not in the chain
    assert rec["info"]["test_battle_won_mean_T"] == [0, 100, 200, 300]
    assert rec["model_dir"] == os.path.join(job["root"], "models", "tokC")
    marl_learning.plan_job(job, resume=True)
    assert job["resume_from"] == os.path.join(job["root"], "models", "tokC")


def test_a_larger_t_max_extends_a_finished_run_only_when_it_kept_its_replay(tmp_path):
    job = one_job(tmp_path)
    config = marl_learning.expected_config(job["cmd"])
    sacred_run(job, 1, "COMPLETED", config, [0, 1000], [0.0, 0.5], "tokA", "2026-12-04T10:00:00", wall=9.0)
    final = checkpoint(job, "tokA", 1000)
    longer = dict(job, cmd=[c if not c.startswith("t_max=") else "t_max=2000" for c in job["cmd"]])
    marl_learning.plan_job(longer, resume=True)
    assert longer["plan"] == "resume" and longer["note"] == "extending t_max 1000 -> 2000"
    shorter = dict(job, cmd=[c if not c.startswith("t_max=") else "t_max=500" for c in job["cmd"]])
    marl_learning.plan_job(shorter, resume=True)
    assert shorter["plan"] == "fresh"
    marl_learning.drop_spent_buffers(job["root"])  # the default: a finished run's replay is removed
    assert not has_part(final, "buffer")
    marl_learning.plan_job(longer, resume=True)
    assert longer["plan"] == "fresh" and "t_max: 1000 -> 2000" in longer["note"]


def test_no_run_starts_while_a_resumed_run_still_loads_its_replay(tmp_path):
    class Proc:
        code = None

        def poll(self):
            return self.code

    (tmp_path / "stdout.log").write_text("old part: resumed at t_env 5\n")
    job = {"plan": "resume", "root": str(tmp_path), "proc": Proc(),
           "log_offset": os.path.getsize(tmp_path / "stdout.log")}  # earlier parts' lines do not count
    assert marl_learning.still_loading(job)
    with open(tmp_path / "stdout.log", "a") as fh:
        fh.write("[INFO] loading checkpoint ...\n")
    assert marl_learning.still_loading(job)
    with open(tmp_path / "stdout.log", "a") as fh:
        fh.write("[INFO] resumed at t_env 38722, episode 1, 64 episodes in the replay buffer\n")
    assert not marl_learning.still_loading(job)
    fresh = dict(job, plan="fresh", loaded=False)
    assert not marl_learning.still_loading(fresh)
    died = {"plan": "resume", "root": str(tmp_path / "none"), "proc": Proc(), "log_offset": 0}
    died["proc"].code = 1
    assert not marl_learning.still_loading(died)


def test_collect_writes_the_report_of_runs_on_disk_and_starts_none(tmp_path, monkeypatch):
    """A grid run in parts: ``--collect`` reports the finished and the unfinished runs, runs nothing."""
    monkeypatch.setattr(marl_learning.subprocess, "Popen", lambda *a, **k: pytest.fail("--collect started a run"))
    out = tmp_path / "out"
    argv = ["--work", str(tmp_path), "--out", str(out), "--tag", "g", "--agents", "rnn", "--seeds", "1,2",
            "--t-max", "1000", "--test-interval", "100", "--collect"]
    jobs, _ = marl_learning.build_jobs(grid_args(tmp_path, seeds="1,2"), [("", [])], [], {})
    for job, status, wins in zip(jobs, ("COMPLETED", "INTERRUPTED"), ([0.5, 1.0], [0.0, 0.25])):
        sacred_run(job, 1, status, marl_learning.expected_config(job["cmd"]), [0, 1000 if wins[1] == 1.0 else 100],
                   wins, "tok", "2026-12-04T10:00:00", wall=20.0 if status == "COMPLETED" else None)
    assert marl_learning.main(argv) == 0
    group = json.load(open(out / "g.json"))["groups"]["3m/rnn"]
    assert [r["status"] for r in group["runs"]] == ["COMPLETED", "INTERRUPTED"]
    assert group["final_test_win_mean"] == pytest.approx((1.0 + 0.25) / 2) and group["truncated_runs"] == 1


# --------------------------------------------------------------------------- records of a new machine
def grid_argv(tmp_path, out, *more):
    return ["--work", str(tmp_path / "work"), "--out", str(out), "--tag", "g", "--agents", "rnn", "--seeds", "1,2",
            "--t-max", "1000", "--test-interval", "100", *more]


def test_a_new_machine_reuses_the_finished_runs_of_the_stored_report(tmp_path, monkeypatch):
    """Session 1 finishes seed 1 and stops seed 2; a new machine (no --work folder) reuses seed 1
    from g.json, runs seed 2 again, and its report keeps both; another config reuses nothing."""
    out = tmp_path / "out"
    argv = grid_argv(tmp_path, out, "--collect", "with", "torch_threads=1", "env_args.jax_cache_dir=c")
    a = types.SimpleNamespace(**dict(vars(grid_args(tmp_path / "work", seeds="1,2"))))
    a.with_args, a.with_overrides, a.variant, a.buffer_sizes, a.stop_at_level = [], ["torch_threads=1",
                                                                                     "env_args.jax_cache_dir=c"], None, "", False
    jobs, _ = marl_learning.build_jobs(a, *marl_learning.job_inputs(a))
    for job, status, wins in zip(jobs, ("COMPLETED", "INTERRUPTED"), ([0.5, 1.0], [0.0, 0.25])):
        sacred_run(job, 1, status, marl_learning.expected_config(job["cmd"]), [0, 1000 if wins[1] == 1.0 else 100],
                   wins, "tok", "2026-12-04T10:00:00", wall=20.0 if status == "COMPLETED" else None)
    assert marl_learning.main(argv) == 0
    stored = json.load(open(out / "g.json"))
    assert stored["config"]["with_overrides"] == ["torch_threads=1", "env_args.jax_cache_dir=c"]

    import shutil
    shutil.rmtree(tmp_path / "work")                         # a new machine
    found = marl_learning.stored_finished_runs(str(out), "g")
    assert list(found) == [("3m", "rnn", 1)]                 # the unfinished seed 2 is not reusable
    started = []

    class Proc:
        returncode = 0

        def __init__(self, cmd, **kw):
            started.append(cmd)
            seed = int(next(c for c in cmd if c.startswith("seed=")).split("=")[1])
            job = next(j for j in jobs if j["seed"] == seed)
            sacred_run(job, 1, "COMPLETED", marl_learning.expected_config(cmd), [0, 1000], [0.0, 0.75], "tok2",
                       "2026-12-05T10:00:00", wall=30.0)

        def poll(self):
            return 0

    monkeypatch.setattr(marl_learning.subprocess, "Popen", Proc)
    monkeypatch.setattr(marl_learning.time, "sleep", lambda s: None)
    # torch_threads is bookkeeping: another thread count still reuses seed 1
    assert marl_learning.main(grid_argv(tmp_path, out, "--resume", "with", "torch_threads=2",
                                        "env_args.jax_cache_dir=c")) == 0
    assert len(started) == 1 and "seed=2" in started[0]
    group = json.load(open(out / "g.json"))["groups"]["3m/rnn"]
    assert [(r["seed"], r["status"]) for r in group["runs"]] == [(1, "COMPLETED"), (2, "COMPLETED")]
    assert group["final_test_win_mean"] == pytest.approx((1.0 + 0.75) / 2)
    assert group["curves"][0]["test_battle_won_mean"] == [0.5, 1.0]

    job = dict(jobs[0], cmd=jobs[0]["cmd"] + ["lr=0.01"], root=str(tmp_path / "none"))
    marl_learning.plan_job(job, True, found[("3m", "rnn", 1)])
    assert job["plan"] == "fresh" and "g.json has another config (lr: 0.001 -> 0.01)" in job["note"]


def test_a_partial_call_may_not_drop_stored_runs_that_only_the_report_holds(tmp_path, capsys):
    out = tmp_path / "out"
    a = types.SimpleNamespace(**dict(vars(grid_args(tmp_path / "work", seeds="1")), with_args=[],
                                     with_overrides=[], variant=None, buffer_sizes="", stop_at_level=False))
    job = marl_learning.build_jobs(a, *marl_learning.job_inputs(a))[0][0]
    sacred_run(job, 1, "COMPLETED", marl_learning.expected_config(job["cmd"]), [0, 1000], [0.5, 1.0], "tok",
               "2026-12-04T10:00:00", wall=20.0)
    assert marl_learning.main(grid_argv(tmp_path, out, "--collect")) == 0      # g.json holds seed 1 (and seed 2: none)
    part = grid_argv(tmp_path, out, "--dry-run")
    part[part.index("1,2")] = "2"                                                # a call for seed 2 only
    assert marl_learning.main(part) == 0                                         # seed 1 is still on disk: fine
    import shutil
    shutil.rmtree(tmp_path / "work")                                             # a new machine
    assert marl_learning.main(part) == 0                                         # --dry-run writes nothing
    with pytest.raises(SystemExit):
        marl_learning.main([x for x in part if x != "--dry-run"])
    assert "records finished runs outside this call's grid that are not on this machine (3m rnn seed 1)" in \
        capsys.readouterr().err
