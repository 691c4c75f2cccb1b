"""The launcher on a two-node Ray cluster on this machine, with the worker node killed mid-grid: the
grid still finishes and every point's record equals a straight local run's.

Starts and stops `ray start` processes (token auth, ~/.ray/auth_token), so it runs only when asked:
``SPIKEMARL_CLUSTER_TEST=1 python -m pytest tests/experiments/test_cluster.py``.
"""
import os
import signal
import subprocess
import sys
import time

import pytest

from experiments.records import load_records

from tiny_spec import TINY_BASE

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    os.environ.get("SPIKEMARL_CLUSTER_TEST") != "1",
    reason="starts a two-node Ray cluster on this machine; set SPIKEMARL_CLUSTER_TEST=1 to run it")]

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RAY = os.path.join(os.path.dirname(sys.executable), "ray")
SPEC = "name: two\n" + TINY_BASE + """agents: [rnn, grsn]
scenarios: {3m: {t_max: 6000}}
seeds: [1]
protocol: {metric: test_battle_won_mean, last_k: 2, absolute_episodes: 8}
checkpoint_interval: 1000
retries: 2
"""
PORT, NODE2_PORT = "6391", "52111"


def _steps(folder):
    models = os.path.join(folder, "models")
    return [s for t in (os.listdir(models) if os.path.isdir(models) else [])
            for s in os.listdir(os.path.join(models, t)) if s.isdigit()]


def test_a_killed_worker_node_does_not_change_the_records(tmp_path):
    spec = tmp_path / "two.yaml"
    spec.write_text(SPEC)
    cmd = [sys.executable, os.path.join(REPO, "src", "experiment.py"), "run", str(spec)]
    straight = subprocess.run(cmd + ["--results", str(tmp_path / "straight"), "--max-parallel", "2"], cwd=REPO,
                              capture_output=True, text=True, timeout=900)
    assert straight.returncode == 0, straight.stdout + straight.stderr
    env = dict(os.environ, RAY_AUTH_MODE="token")
    common = ["--num-cpus=1", "--include-dashboard=false", "--disable-usage-stats"]
    try:
        subprocess.run([RAY, "start", "--head", f"--port={PORT}", "--node-ip-address=127.0.0.1"] + common,
                       env=env, check=True, capture_output=True, timeout=120)
        subprocess.run([RAY, "start", f"--address=127.0.0.1:{PORT}", "--node-ip-address=127.0.0.2",
                        f"--node-manager-port={NODE2_PORT}", "--num-cpus=1", "--disable-usage-stats"],
                       env=env, check=True, capture_output=True, timeout=120)
        grid = subprocess.Popen(cmd + ["--results", str(tmp_path / "cluster"), "--address", f"127.0.0.1:{PORT}"],
                                cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        points = [tmp_path / "cluster" / "two" / p for p in ("3m__rnn__s1", "3m__grsn__s1")]
        deadline = time.time() + 600
        while not all(_steps(str(p)) for p in points) and time.time() < deadline:
            time.sleep(0.5)
        ps = subprocess.run(["ps", "-ww", "-eo", "pid,args"], capture_output=True, text=True).stdout
        raylet = [int(line.split()[0]) for line in ps.splitlines()
                  if "raylet/raylet" in line and f"node_manager_port={NODE2_PORT}" in line]
        assert raylet, "the second node's raylet is not running"
        os.kill(raylet[0], signal.SIGKILL)                      # the worker node dies mid-grid
        out, _ = grid.communicate(timeout=900)
        assert grid.returncode == 0, out
    finally:
        subprocess.run([RAY, "stop", "--force"], capture_output=True, timeout=120)
    a = {r.point: r for r in load_records(str(tmp_path / "straight" / "records"), "two")[0]}
    b = {r.point: r for r in load_records(str(tmp_path / "cluster" / "records"), "two")[0]}
    assert set(a) == set(b) == {"3m__rnn__s1", "3m__grsn__s1"}
    assert max(r.segments for r in b.values()) == 2             # the killed node's point resumed elsewhere
    for p in a:
        for key in ("test_battle_won_mean", "test_return_mean", "test_ep_length_mean"):
            assert b[p].curves[key] == a[p].curves[key], (p, key)
        assert b[p].absolute["value"] == a[p].absolute["value"]
