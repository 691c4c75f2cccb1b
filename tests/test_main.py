"""src/main.py around a run: a failed start leaves no sacred folder; tensorboard scalars of a tiny
run land under results/tb_logs and the sacred record holds the same values; start-up checks,
stops and records (issue 48)."""
import glob
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAIN = os.path.join(ROOT, "src", "main.py")
TINY_PO = ["env_args.key=CartPole-V", "env_args.max_episode_steps=20", "t_max=60", "test_interval=30",
           "test_nepisode=1", "log_interval=30", "runner_log_interval=30", "learner_log_interval=30",
           "po_init_random_episodes=1", "po_batch_size=2", "sampled_seq_len=8", "po_updates_per_step=0.1",
           "save_model=False"]


def _main(*with_args, alg="sacd", env="pomdp"):
    cmd = [sys.executable, MAIN, f"--config={alg}", f"--env-config={env}", "with", *with_args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))


def test_failed_start_leaves_no_sacred_folder(tmp_path):
    out = _main("env_args.key=CartPole-X", f"local_results_path={tmp_path}")
    assert out.returncode == 1 and "CartPole-X" in out.stderr and "sacred folder was removed" in out.stderr
    assert os.listdir(tmp_path / "sacred") == []


def test_tiny_run_writes_tensorboard_scalars_and_a_readable_record(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = _main(*TINY_PO, "use_tensorboard=True", f"local_results_path={tmp_path}")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Test at t_env 0: test_return_mean" in out.stderr and "env steps/s | elapsed" in out.stderr
    tb_dirs = glob.glob(str(tmp_path / "tb_logs" / "*"))
    assert len(tb_dirs) == 1
    acc = EventAccumulator(tb_dirs[0])
    acc.Reload()
    steps = [e.step for e in acc.Scalars("test_return_mean")]
    assert steps[0] == 0 and steps[-1] >= 60 and len(steps) >= 3
    [record] = glob.glob(str(tmp_path / "sacred" / "pomdp" / "CartPole-V" / "sacd_gru" / "*" / "metrics.json"))
    with open(record) as f:
        metrics = json.load(f)
    assert metrics["test_return_mean"]["steps"] == steps
    assert metrics["test_return_mean"]["values"] == pytest.approx([e.value for e in acc.Scalars("test_return_mean")])


# ------------------------------------------------------------------ issue 48: start-up checks, stops, records
import shlex  # noqa: E402
import signal  # noqa: E402
import time  # noqa: E402

import main as entry  # noqa: E402


def _run(argv, timeout=120):
    return subprocess.run([sys.executable, MAIN, *argv], capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))


def _error_lines(stderr):
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_no_arguments_prints_the_usage_and_exits_2_and_help_prints_it():
    """Issue 48: no arguments silently started a 2.05M-step run; --help was an unrecognised argument."""
    out = _run([])
    assert out.returncode == 2 and out.stderr.startswith("usage: python src/main.py --config=ALG")
    assert "examples:" in out.stderr and out.stdout == ""
    for flag in ("--help", "-h"):
        out = _run([flag])
        assert out.returncode == 0 and out.stdout.startswith("usage: python src/main.py")


@pytest.mark.parametrize("override,cause", [("device=tpu", "is not a device"),
                                            ("name=../../escaped", "is not a plain folder name")])
def test_bad_values_are_refused_at_start_up_in_one_line(tmp_path, override, cause):
    results_dir = tmp_path / "deep" / "results"
    out = _main(*TINY_PO, override, f"local_results_path={results_dir}")
    assert out.returncode == 2 and len(_error_lines(out.stderr)) == 1 and cause in out.stderr
    assert "Traceback" not in out.stderr and not (tmp_path / "escaped").exists() and not results_dir.exists()


def test_an_unwritable_models_folder_is_refused_before_training(tmp_path):
    """Issue 48: a read-only models folder was found only at the first checkpoint, after training started.
    A file where the folder must be is unwritable for root too (chmod is not, when tests run as root)."""
    (tmp_path / "models").write_text("a file in the way")
    out = _main(*TINY_PO[:-1], f"local_results_path={tmp_path}")   # TINY_PO minus save_model=False
    assert out.returncode == 2 and "Test at t_env" not in out.stderr
    [line] = _error_lines(out.stderr)
    assert "cannot write the run's models records to" in line and "local_results_path=<a writable folder>" in line


def test_a_read_only_results_root_is_refused_in_one_line(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("runs as root: chmod does not stop root from writing (the file-in-the-way test covers it)")
    root = tmp_path / "results"
    root.mkdir()
    root.chmod(0o555)
    try:
        out = _main(*TINY_PO, f"local_results_path={root}")
    finally:
        root.chmod(0o755)
    assert out.returncode == 2 and "Permission denied" in _error_lines(out.stderr)[0]


def test_a_diverged_loss_is_one_error_line(tmp_path):
    """Issue 48: a FloatingPointError was a full traceback."""
    out = _main(*TINY_PO, "t_max=200", "po_updates_per_step=0.5", "critic_lr=1e30", "actor_lr=1e30",
                f"local_results_path={tmp_path}")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    [line] = _error_lines(out.stderr)
    assert "became nan" in line and "Lower actor_lr/critic_lr" in line


def test_the_resume_hint_names_the_exact_command_or_says_nothing_was_saved(tmp_path):
    """Issue 48: after a double Ctrl-C nothing was saved, but the last line still said "resume with
    checkpoint_path=<the run's model dir>"; the hint never printed the actual command."""
    from utils.checkpoint import save_checkpoint

    empty = tmp_path / "models" / "run"
    empty.mkdir(parents=True)
    hint = entry.resume_hint("qmix", "smax", ["agent=grsn"], str(empty), "")
    assert hint.startswith("nothing was saved (no complete checkpoint in") and "resume with" not in hint
    save_checkpoint(str(empty), 10, {"loop": {"episode": 1}})
    hint = entry.resume_hint("qmix", "smax", ["agent=grsn", f"local_results_path={tmp_path} x", "device=cpu",
                                              "checkpoint_path=old", "t_max=10"], str(empty), "")
    assert hint == ("resume with: python src/main.py --config=qmix --env-config=smax with "
                    f"checkpoint_path={empty} 'local_results_path={tmp_path} x' device=cpu")
    # a resumed run stopped before its first save: the checkpoint it resumed from is still there
    assert entry.resume_hint("qmix", "smax", [], str(tmp_path / "nothing"), str(empty)).startswith(
        f"resume with: python src/main.py --config=qmix --env-config=smax with checkpoint_path={empty}")


@pytest.mark.slow
def test_sigterm_prints_a_resume_command_that_resumes(tmp_path):
    """The printed command, run as printed, continues the run from the checkpoint the stop saved."""
    cmd = [sys.executable, MAIN, "--config=sacd", "--env-config=pomdp", "with", *TINY_PO[:-1], "t_max=100000",
           f"local_results_path={tmp_path}"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=dict(os.environ, OMP_NUM_THREADS="1"))
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if "Test at t_env 0" in line:
            break
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    lines += proc.stderr.readlines()
    assert proc.wait(timeout=60) == 130
    [hint] = [line for line in lines if line.startswith("interrupted:")]
    command = shlex.split(hint.split("resume with: ", 1)[1])
    assert command[:5] == ["python", "src/main.py", "--config=sacd", "--env-config=pomdp", "with"]
    out = subprocess.run([sys.executable, *command[1:], "t_max=200"], capture_output=True, text=True, timeout=120,
                         cwd=ROOT, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert out.returncode == 0, out.stderr[-2000:]
    assert "resumed at t_env" in out.stderr


def test_a_killed_run_left_running_is_marked_interrupted_at_the_next_start(tmp_path):
    """Issue 48: killed runs stayed RUNNING in their sacred record."""
    import datetime

    now = datetime.datetime(2026, 12, 7, 12, 0, 0)
    for run_id, beat in (("1", now - datetime.timedelta(hours=1)), ("2", now - datetime.timedelta(seconds=20))):
        (tmp_path / run_id).mkdir()
        (tmp_path / run_id / "run.json").write_text(json.dumps({"status": "RUNNING", "heartbeat": beat.isoformat()}))
    (tmp_path / "3").mkdir()
    (tmp_path / "3" / "run.json").write_text(json.dumps({"status": "COMPLETED", "heartbeat": "2020-01-01T00:00:00"}))
    assert entry.mark_killed_runs(str(tmp_path), now=now) == [str(tmp_path / "1")]
    killed = json.loads((tmp_path / "1" / "run.json").read_text())
    assert killed["status"] == "INTERRUPTED" and killed["stop_reason"].startswith("killed: no heartbeat since")
    assert json.loads((tmp_path / "2" / "run.json").read_text())["status"] == "RUNNING"   # alive (recent beat)
    assert json.loads((tmp_path / "3" / "run.json").read_text())["status"] == "COMPLETED"


def test_the_jax_compile_cache_is_on_by_default_under_the_results_folder():
    """Issue 48: each run paid 25-33 s of JAX compiling because the cache was on only in the grid commands."""
    from utils.config import build_config

    config = entry.finalize_config(build_config("qmix", "smax", ["local_results_path=/data/res", "device=cpu"]))
    assert config["env_args"]["jax_cache_dir"] == os.path.join("/data/res", "jax_cache")
    config = entry.finalize_config(build_config("qmix", "smax", ["env_args.jax_cache_dir=off", "device=cpu"]))
    assert config["env_args"]["jax_cache_dir"] == ""
    config = entry.finalize_config(build_config("qmix", "smax", ["env_args.jax_cache_dir=/c", "device=cpu"]))
    assert config["env_args"]["jax_cache_dir"] == "/c"
    assert "jax_cache_dir" not in entry.finalize_config(build_config("sacd", "pomdp", ["device=cpu"]))["env_args"]


def test_a_scenario_name_leading_out_of_the_results_folder_is_refused(tmp_path):
    """The run's folders are built from env_args too (map name / key): they must stay inside local_results_path."""
    from utils.config import ConfigError, build_config

    config = build_config("qmix", "smax", ["env_args.map_name=../../../escaped", f"local_results_path={tmp_path / 'r'}"])
    config["name"] = "qmix_rnn"
    with pytest.raises(ConfigError, match="lies outside local_results_path"):
        entry.check_start_up(config)
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "r").exists()
