"""The launcher end to end on local Ray: the smoke spec, and a grid stopped by SIGTERM that resumes
to exactly the records of a straight run."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from experiments.launcher import parse_duration
from experiments.records import load_records

from tiny_spec import TINY_BASE
from experiments.sacred_runs import find_runs

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CMD = [sys.executable, os.path.join(REPO, "src", "experiment.py")]


def test_parse_duration():
    assert parse_duration("90") == 90 and parse_duration("45m") == 2700 and parse_duration("1h30m") == 5400
    with pytest.raises(Exception, match="like 90s"):
        parse_duration("soon")


def run(args, **kw):
    return subprocess.run(CMD + args, capture_output=True, text=True, cwd=REPO, timeout=900, **kw)


@pytest.mark.slow
def test_smoke_spec_end_to_end(tmp_path):
    res = run(["run", "smoke", "--results", str(tmp_path), "--max-parallel", "2"])
    assert res.returncode == 0, res.stdout + res.stderr
    records, skipped = load_records(str(tmp_path / "records"), "smoke")
    assert skipped == [] and sorted(r.point for r in records) == [
        "3m__grsn__s1", "3m__grsn__s2", "3m__rnn__s1", "3m__rnn__s2"]
    for r in records:
        assert r.t_env >= 3000 and r.absolute["episodes"] == 16 and 0 <= r.absolute["value"] <= 1
    again = run(["run", "smoke", "--results", str(tmp_path)])
    assert again.returncode == 0 and "nothing to run" in again.stdout
    status = run(["status", "smoke", "--results", str(tmp_path)])
    assert "4 done, 0 partly trained, 0 not started" in status.stdout
    rep = run(["report", "smoke", "--records", str(tmp_path / "records"), "--out", str(tmp_path / "rep")])
    assert rep.returncode == 0, rep.stderr
    assert "| grsn vs rnn | 3m |" in (tmp_path / "rep" / "smoke.md").read_text()
    bad = run(["report", "smoke", "--records", str(tmp_path / "records"), "--out", str(tmp_path / "rep"),
               "--where", "nosuchkey=1"])
    assert bad.returncode == 2 and "no field 'nosuchkey'" in bad.stderr


RESUME_SPEC = "name: resume\n" + TINY_BASE + """agents: [grsn]
scenarios: {3m: {t_max: 6000}}
seeds: [1]
protocol: {metric: test_battle_won_mean, last_k: 2, absolute_episodes: 8}
checkpoint_interval: 1000
retries: 0
"""


def _steps(workdir):
    models = os.path.join(workdir, "models")
    if not os.path.isdir(models):
        return []
    return [int(s) for t in os.listdir(models) for s in os.listdir(os.path.join(models, t)) if s.isdigit()]


@pytest.mark.slow
def test_sigterm_stops_cleanly_and_the_resumed_grid_equals_a_straight_run(tmp_path):
    spec = tmp_path / "resume.yaml"
    spec.write_text(RESUME_SPEC)
    straight = run(["run", str(spec), "--results", str(tmp_path / "straight")])
    assert straight.returncode == 0, straight.stdout + straight.stderr

    results = tmp_path / "stopped"
    proc = subprocess.Popen(CMD + ["run", str(spec), "--results", str(results)], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    workdir = results / "resume" / "3m__grsn__s1"
    deadline = time.time() + 300
    while not _steps(str(workdir)) and time.time() < deadline:   # the first periodic checkpoint
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=400)
    assert proc.returncode == 3, out
    assert "Traceback" not in out and "stopping (signal" in out
    runs, _ = find_runs(str(workdir / "sacred"))
    assert [r.status for r in runs] == ["INTERRUPTED"]            # never left RUNNING
    assert 1000 <= max(_steps(str(workdir))) < 6000               # a last checkpoint mid-run

    resumed = run(["run", str(spec), "--results", str(results)])
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    (a,), _ = load_records(str(tmp_path / "straight" / "records"), "resume")
    (b,), _ = load_records(str(results / "records"), "resume")
    assert b.segments == 2 and a.segments == 1
    for key in ("test_battle_won_mean", "test_return_mean", "test_ep_length_mean"):
        assert b.curves[key] == a.curves[key], key
    assert b.absolute["value"] == a.absolute["value"]


def test_eta_from_finished_points():
    from experiments.launcher import eta

    assert eta([], 3, 2) == ""
    assert eta([600.0, 1200.0], 4, 2) == ", ETA ~30 min"      # 900 s x 4 points / 2 at a time
    assert eta([3600.0], 3, 1) == ", ETA ~3.0 h"
