"""Short end-to-end runs of src/main.py on SMAX (sacred record, checkpoints, evaluate)."""
import glob
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAIN = os.path.join(ROOT, "src", "main.py")


def _main(*with_args, alg="qmix", env="smax", timeout=600):
    cmd = [sys.executable, MAIN, f"--config={alg}", f"--env-config={env}", "with", *with_args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))


# the XLA compile cache shared with tests/envs/test_smax.py saves the SMAX compile per process
CACHE = os.path.join(ROOT, ".pytest_cache", "d", "smax_jax_cache")
TINY = [f"env_args.jax_cache_dir={CACHE}", "env_args.map_name=3m", "t_max=600", "batch_size=8", "batch_size_run=4", "buffer_size=32",
        "test_interval=300", "test_nepisode=4", "log_interval=300", "runner_log_interval=300",
        "learner_log_interval=300"]


@pytest.mark.slow
@pytest.mark.parametrize("agent", ["rnn", "grsn"])
def test_train_then_evaluate_round_trip(tmp_path, agent):
    res = tmp_path / "results"
    out = _main(*TINY, f"agent={agent}", f"local_results_path={res}")
    assert out.returncode == 0, out.stderr[-3000:]
    infos = glob.glob(str(res / "sacred" / "smax" / "3m" / f"qmix_{agent}" / "*" / "info.json"))
    assert len(infos) == 1
    info = json.load(open(infos[0]))
    for key in ("test_battle_won_mean", "test_return_mean", "return_mean", "battle_won_mean",
                "ep_length_mean", "epsilon", "loss", "grad_norm", "td_error_abs", "q_taken_mean",
                "target_mean"):
        assert key in info and key + "_T" in info, key
    assert all(0.0 <= w <= 1.0 for w in info["test_battle_won_mean"])
    assert json.load(open(os.path.join(os.path.dirname(infos[0]), "run.json")))["status"] == "COMPLETED"
    if agent != "rnn":
        assert "spike_rate_mean" in info and 0.0 <= info["spike_rate_mean"][-1] <= 1.0

    models = glob.glob(str(res / "models" / "*"))
    assert len(models) == 1
    steps = sorted(int(d) for d in os.listdir(models[0]))
    assert steps and steps[-1] >= 600
    assert os.path.exists(os.path.join(models[0], str(steps[-1]), "agent.pt"))

    ev = _main(*TINY, f"agent={agent}", f"local_results_path={res}", "evaluate=True",
               f"checkpoint_path={models[0]}", "name=evaluation")
    assert ev.returncode == 0, ev.stderr[-3000:]
    assert "loading checkpoint" in ev.stderr + ev.stdout
    ev_info = glob.glob(str(res / "sacred" / "smax" / "3m" / "evaluation" / "*" / "info.json"))
    assert "test_battle_won_mean" in json.load(open(ev_info[0]))


def test_typo_in_override_exits_nonzero_naming_it():
    out = _main("agnt=rnn")
    assert out.returncode != 0
    assert "agnt" in out.stderr and "Traceback" not in out.stderr


def test_unknown_agent_lists_valid_names(tmp_path):
    out = _main("agent=gru_typo", f"local_results_path={tmp_path}", "t_max=10")
    assert out.returncode != 0
    assert "gru_typo" in out.stderr and "grsn" in out.stderr and "Traceback" not in out.stderr


def test_sc2_without_starcraft_gives_install_guidance(tmp_path):
    out = _main(f"local_results_path={tmp_path}", env="sc2")
    assert out.returncode != 0
    assert "install_sc2.sh" in out.stderr and "Traceback" not in out.stderr


def test_smac_map_missing_from_smax_explains_it_needs_starcraft(tmp_path):
    out = _main("env_args.map_name=corridor", f"local_results_path={tmp_path}")
    assert out.returncode != 0
    assert "corridor" in out.stderr and "sc2" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.slow
def test_sigterm_keeps_the_record_and_a_checkpoint(tmp_path):
    """A run stopped with `kill` is closed as INTERRUPTED and saves a last checkpoint."""
    import signal
    import time

    res = tmp_path / "results"
    cmd = [sys.executable, MAIN, "--config=qmix", "--env-config=smax", "with", *TINY, "t_max=10000000",
           f"local_results_path={res}"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=dict(os.environ, OMP_NUM_THREADS="1"))
    deadline = time.time() + 300
    infos = []
    while time.time() < deadline:  # wait until training has logged something
        infos = glob.glob(str(res / "sacred" / "smax" / "3m" / "*" / "*" / "info.json"))
        if infos and "return_mean" in json.load(open(infos[0])):
            break
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0
    run = json.load(open(os.path.join(os.path.dirname(infos[0]), "run.json")))
    assert run["status"] == "INTERRUPTED", out[-2000:]
    steps = os.listdir(glob.glob(str(res / "models" / "*"))[0])
    assert any(int(s) > 0 for s in steps)
