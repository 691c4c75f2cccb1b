"""Storage faults for real: a full disk (a tiny tmpfs in a private mount namespace), a file-size
limit (RLIMIT_FSIZE), a read-only results folder and a read-only checkpoint folder (read-only
bind mounts; chmod does not stop root). Each ends in one error line naming the cause and the fix,
and never costs the newest complete checkpoint."""
import os
import subprocess
import sys
import textwrap

import pytest

from fault_helpers import (ROOT, error_lines, in_namespace, main_cmd, model_dirs, namespace_ok, run, sacred_records,
                           sh)

SRC = os.path.join(ROOT, "src")


def test_a_file_size_limit_during_a_save_is_one_line_and_keeps_the_previous_step(tmp_path):
    """The write of a part fails with EFBIG (errno 27) half-way: nothing of that save stays."""
    script = textwrap.dedent(f"""
        import os, resource, signal, sys
        sys.path.insert(0, {SRC!r})
        import torch
        from utils.checkpoint import CheckpointWriteError, save_checkpoint
        save_checkpoint({str(tmp_path)!r}, 10, {{"agent": torch.nn.Linear(4, 4)}})
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)        # the default action kills the process
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
        try:
            save_checkpoint({str(tmp_path)!r}, 20, {{"agent": torch.nn.Linear(4, 4), "buffer": torch.zeros(100_000)}})
        except CheckpointWriteError as exc:
            print(exc)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    [line] = out.stdout.splitlines()
    assert line.startswith(f"cannot save the checkpoint at t_env=20 in {tmp_path}: File too large (errno 27)")
    assert f"the newest complete checkpoint {tmp_path / '10'} is unchanged" in line
    assert "local_results_path=<a larger disk>" in line and "Traceback" not in out.stderr
    from utils.checkpoint import find_checkpoint
    assert find_checkpoint(str(tmp_path)) == (str(tmp_path / "10"), 10)
    assert sorted(os.listdir(tmp_path)) == ["10"]


@pytest.mark.slow
def test_a_full_disk_during_a_save_is_one_line_and_the_previous_checkpoint_resumes(tmp_path):
    """Issue 48: a full disk ended in two chained tracebacks (torch's "unexpected pos ...")."""
    why = namespace_ok()
    if why:
        pytest.skip(why)
    disk, logs = tmp_path / "disk", tmp_path / "logs"
    disk.mkdir()
    logs.mkdir()
    results = str(disk / "results")
    first = main_cmd("t_max=60", f"local_results_path={results}")
    # the resumed run's first save (t_env 120) meets a disk with 64 kB left: sacred's records still fit
    second = main_cmd("t_max=200", "save_model_interval=50", "checkpoint_path=MODEL", f"local_results_path={results}")
    script = f"""
        mount -t tmpfs -o size=8m tmpfs {disk}
        [ "$(df -k --output=avail {disk} | tail -1)" -lt 9000 ]   # the tmpfs, not the disk below
        {sh(first)} > {logs}/1.out 2> {logs}/1.err
        model=$(ls -d {results}/models/*)
        free=$(df -k --output=avail {disk} | tail -1)
        dd if=/dev/zero of={disk}/filler bs=1k count=$((free - 64)) 2>/dev/null
        set +e
        {sh(second).replace('checkpoint_path=MODEL', 'checkpoint_path=$model')} > {logs}/2.out 2> {logs}/2.err
        echo $? > {logs}/2.rc
        set -e
        ls -a $model > {logs}/first_model.ls
        ls -a {results}/models > {logs}/models.ls
        rm {disk}/filler
        {sh(second).replace('checkpoint_path=MODEL', 'checkpoint_path=$model')} > {logs}/3.out 2> {logs}/3.err
    """
    out = in_namespace(textwrap.dedent(script))
    err2 = (logs / "2.err").read_text()
    assert out.returncode == 0, (out.stderr + (logs / "3.err").read_text())[-3000:]
    assert (logs / "2.rc").read_text().strip() == "1" and "Traceback" not in err2
    [line] = error_lines(err2)
    assert "cannot save the checkpoint at t_env=" in line and "No space left on device (errno 28)" in line
    assert "free space on the disk" in line and "then resume with checkpoint_path=" in line
    assert "(the run's record, with the full traceback, is in" in err2   # a resumed run's record is kept
    # the first run's folder: its step as it was, linked to the resumed run's folder, no leftovers
    [step] = [e for e in (logs / "first_model.ls").read_text().split() if e not in (".", "..", "chain.json")]
    assert step.isdigit()
    folders = [e for e in (logs / "models.ls").read_text().split() if e not in (".", "..")]
    assert len(folders) == 2       # the first run's and the failed resume's (no step, no scratch folder in it)
    err3 = (logs / "3.err").read_text()
    assert "resumed at t_env" in err3 and "Completed after" in err3


def _ro_bind(folder) -> str:
    return f"mount --bind {folder} {folder}\nmount -o remount,ro,bind {folder}\n"


@pytest.mark.slow
def test_a_read_only_results_folder_is_refused_at_start_up_and_a_read_only_checkpoint_still_resumes(tmp_path):
    """Issue 48: a read-only results root was sacred's traceback; a read-only models folder was found only
    at the first checkpoint. A checkpoint on a read-only disk (e.g. a shared archive) must still resume."""
    why = namespace_ok()
    if why:
        pytest.skip(why)
    archive, fresh = str(tmp_path / "archive"), str(tmp_path / "fresh")
    out = run(main_cmd("t_max=60", f"local_results_path={archive}"))
    assert out.returncode == 0, out.stderr[-2000:]
    [model] = model_dirs(archive)
    script = _ro_bind(archive) + f"""
        set +e
        {sh(main_cmd("t_max=100", f"local_results_path={archive}"))} 2> {tmp_path}/ro.err
        echo $? > {tmp_path}/ro.rc
        set -e
        {sh(main_cmd(f"checkpoint_path={model}", "t_max=100", f"local_results_path={fresh}"))} 2> {tmp_path}/resume.err
    """
    out = in_namespace(textwrap.dedent(script))
    ro_err = (tmp_path / "ro.err").read_text()
    assert (tmp_path / "ro.rc").read_text().strip() == "2" and "Traceback" not in ro_err
    [line] = error_lines(ro_err)
    assert "cannot write the run's sacred records to" in line and "Read-only file system" in line
    assert out.returncode == 0, ((tmp_path / "resume.err").read_text())[-3000:]
    assert "resumed at t_env" in (tmp_path / "resume.err").read_text()
    assert len(sacred_records(fresh)) == 1 and not os.path.exists(os.path.join(model, "chain.json"))
