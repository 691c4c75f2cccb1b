"""src/main.py around a run: a failed start leaves no sacred folder; tensorboard scalars of a tiny
run land under results/tb_logs; results.py reads the run's sacred record."""
import glob
import os
import subprocess
import sys

import pytest

import results

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
    md, rows = results.summarize([str(tmp_path / "sacred")], str(tmp_path / "summary"), plots=False)
    assert [(r["scenario"], r["label"], r["n_runs"]) for r in rows] == [("CartPole-V", "sacd gru", 1)]
    assert rows[0]["return_mean"] == pytest.approx(acc.Scalars("test_return_mean")[-1].value)
