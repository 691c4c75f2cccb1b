"""run_progress: a grid run's curve across resumes, and the deadline stop (StopAt)."""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                "benchmarks"))
import run_progress  # noqa: E402

from utils.checkpoint import StopRequest  # noqa: E402


def test_progress_round_trip_keeps_the_entries_up_to_the_checkpoint(tmp_path):
    path = str(tmp_path / "run" / "progress.json")
    run_progress.save_progress(path, {"ret": [[0, 1.0], [100, 2.0], [200, 3.0]]}, 12.5)
    assert run_progress.load_progress(path, 100) == ({"ret": [[0, 1.0], [100, 2.0]]}, 12.5)
    assert run_progress.load_progress(str(tmp_path / "none.json"), 100) == ({}, 0.0)


def test_the_watch_thread_stops_a_run_loop_soon_after_the_deadline_without_a_logged_stat():
    stop = run_progress.StopAt(time.time() + 0.2, poll_s=0.05)
    with StopRequest() as request, stop.watch():
        t0 = time.time()
        while not request.requested and time.time() - t0 < 5.0:   # a loop that logs nothing
            time.sleep(0.01)
    assert request.requested and stop.sent and time.time() - t0 < 2.0


def test_no_signal_outside_a_run_loop_and_none_before_the_deadline():
    got = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: got.append(signum))
    try:
        late = run_progress.StopAt(time.time() - 1.0, poll_s=0.02)   # passed, but no StopRequest handles SIGTERM
        with late.watch():
            time.sleep(0.15)
        late.check()
        assert late.passed() and not late.sent
        early = run_progress.StopAt(time.time() + 60.0, poll_s=0.02)
        with StopRequest() as request, early.watch():
            time.sleep(0.15)
        assert not early.sent and not request.requested
        assert run_progress.StopAt(None).passed() is False
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert got == []
