"""kill -9 of a real training process: the newest complete checkpoint resumes, the resumed record
holds every test of the run, and its values equal those of a run that was never killed."""
import os
import random
import signal
import subprocess

import pytest

from fault_helpers import ENV, ROOT, main_cmd, model_dirs, recorded_tests, run, sacred_records

RUN = ["t_max=300", "save_model_interval=60", "save_buffer=all"]


@pytest.mark.slow
def test_kill_9_mid_run_resumes_and_logs_what_a_run_never_killed_logs(tmp_path):
    straight = str(tmp_path / "straight")
    out = run(main_cmd(*RUN, f"local_results_path={straight}"))
    assert out.returncode == 0, out.stderr[-2000:]

    killed = str(tmp_path / "killed")
    proc = subprocess.Popen(main_cmd(*RUN, f"local_results_path={killed}"), stderr=subprocess.PIPE, text=True,
                            cwd=ROOT, env=ENV)
    saves = 0
    for line in proc.stderr:
        saves += "saved checkpoint" in line
        if saves == 2:
            break
    for _ in range(random.Random(0).randrange(0, 40)):   # somewhere between the 2nd and 3rd save
        proc.stderr.readline()
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    [first] = model_dirs(killed)
    # what a kill in the middle of a save leaves: a scratch folder of a process that is gone
    leftover = os.path.join(first, ".tmp-999-999999999@elsewhere-abcdef")
    os.makedirs(leftover)
    os.utime(leftover, (0, 0))                             # older than a day: another host's, but stale

    out = run(main_cmd(f"checkpoint_path={first}", f"local_results_path={killed}"))
    assert out.returncode == 0, out.stderr[-2000:]
    assert "resumed at t_env" in out.stderr and not os.path.exists(leftover)
    records = sacred_records(killed)
    assert len(records) == 2
    expected = recorded_tests(sacred_records(straight)[0])
    assert sorted(expected) and expected == recorded_tests(records[-1])   # one record holds the whole run
