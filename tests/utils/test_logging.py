"""Logger: sacred/tensorboard mirroring and the one console format of all run loops."""
import logging

import pytest

from utils.logging import Logger, progress_line, time_str


class _FakeRun:
    def __init__(self):
        self.info, self.scalars = {}, []

    def log_scalar(self, key, value, t):
        self.scalars.append((key, value, t))


class _Clock:
    def __init__(self, t=1000.0):
        self.t = t

    def __call__(self):
        return self.t


def _logger(name, clock=None):
    console = logging.getLogger(name)
    console.setLevel(logging.INFO)
    return Logger(console=console, clock=clock or _Clock())


def test_series_reach_sacred_info_and_metrics():
    run = _FakeRun()
    log = Logger()
    log.setup_sacred(run)
    log.log_stat("test_return_mean", 1.5, 100)
    log.log_stat("test_return_mean", 2, 200)
    assert run.info == {"test_return_mean": [1.5, 2.0], "test_return_mean_T": [100, 200]}
    assert run.scalars == [("test_return_mean", 1.5, 100), ("test_return_mean", 2.0, 200)]
    assert log.last("test_return_mean") == 2.0 and log.last("missing") is None


def test_time_str_and_progress_line():
    assert time_str(3725.4) == "1h02m05s" and time_str(-16) == "-" and time_str(float("nan")) == "-"
    assert progress_line(20000, 400000, 655.2, 31.0, 580.0) == (
        "t_env: 20000 / 400000 (5.0 %) | 655 env steps/s | elapsed 0h00m31s | left ~0h09m40s")
    assert progress_line(0, 100, None, 2.0, None) == "t_env: 0 / 100 (0.0 %) | - env steps/s | elapsed 0h00m02s | left -"


def test_progress_rates_and_time_left(caplog):
    clock = _Clock()
    log = _logger("test_logging_progress", clock)
    log.log_stat("epsilon", 1.0, 0)
    clock.t += 10.0
    log.log_stat("epsilon", 0.5, 1000)
    log.log_stat("epsilon", 0.25, 2000)
    with caplog.at_level(logging.INFO, logger="test_logging_progress"):
        log.print_progress(2000, 10000)  # 2000 steps in 10 s since the first step (t=0)
        clock.t += 20.0
        log.print_progress(4000, 10000)  # 2000 steps in the last 20 s; 4000 in 30 s overall
        log.print_progress(12000, 10000)  # past t_max: no negative time left
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "t_env: 2000 / 10000 (20.0 %) | 200 env steps/s | elapsed 0h00m10s | left ~0h00m40s"
    assert lines[1].startswith("Latest stats at t_env 2000 (each stat's last logged value):")
    assert "epsilon:" in lines[1] and "0.2500" in lines[1] and "0.5833" not in lines[1]  # latest, not a mean
    assert lines[2] == "t_env: 4000 / 10000 (40.0 %) | 100 env steps/s | elapsed 0h00m30s | left ~0h00m45s"
    assert lines[4].endswith("left ~0h00m00s")


def test_test_line_shows_latest_and_best(caplog):
    clock = _Clock()
    log = _logger("test_logging_test_line", clock)
    for t, win, ret in [(0, 0.25, 5.0), (100, 0.5, 12.0), (200, 0.375, 14.0)]:
        clock.t += 7.0
        log.log_stat("test_battle_won_mean", win, t)
        log.log_stat("test_return_mean", ret, t)
        log.log_stat("test_ep_length_mean", 30.0, t)
        with caplog.at_level(logging.INFO, logger="test_logging_test_line"):
            log.print_test(t)
    last = caplog.records[-1].getMessage()
    assert last == ("Test at t_env 200: test_battle_won_mean 0.3750 (best 0.5000 at t_env 100) | "
                    "test_return_mean 14.0000 (best 14.0000 at t_env 200) | test_ep_length_mean 30.0000")
    assert [v for _, v in log.stats["elapsed_s"]] == [7.0, 14.0, 21.0]  # wall time at every test


def test_elapsed_not_logged_twice_when_the_loop_logs_it():
    log = _logger("test_logging_elapsed")
    log.log_stat("test_return_mean", 1.0, 50)
    log.log_stat("elapsed_s", 3.0, 50)
    log.print_test(50)
    assert log.stats["elapsed_s"] == [(50, 3.0)]


def test_tensorboard_scalars_are_written(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    log = _logger("test_logging_tb")
    log.setup_tensorboard(str(tmp_path / "tb"))
    log.log_stat("test_return_mean", 1.5, 10)
    log.log_stat("test_return_mean", 2.5, 20)
    log.close()
    acc = EventAccumulator(str(tmp_path / "tb"))
    acc.Reload()
    assert [(e.step, e.value) for e in acc.Scalars("test_return_mean")] == [(10, 1.5), (20, 2.5)]


def test_best_so_far_survives_a_resume(caplog):
    """A resumed run's test line shows the best of the whole run, not of the resumed part only:
    the first part's best (0.75 at t=200) is carried by state_dict into a fresh Logger."""
    import logging as std_logging

    first = Logger(console=std_logging.getLogger("test_best_resume"))
    for t, v in [(100, 0.5), (200, 0.75), (300, 0.25)]:
        first.log_stat("test_battle_won_mean", v, t)
    state = first.state_dict()
    assert state["best"] == {"test_battle_won_mean": [200, 0.75]}

    resumed = Logger(console=std_logging.getLogger("test_best_resume"))
    resumed.load_state_dict(state)
    resumed.log_stat("test_battle_won_mean", 0.5, 400)
    with caplog.at_level(std_logging.INFO, logger="test_best_resume"):
        resumed.print_test(400)
    assert "test_battle_won_mean 0.5000 (best 0.7500 at t_env 200)" in caplog.text
    resumed.log_stat("test_battle_won_mean", 1.0, 500)
    assert resumed.state_dict()["best"] == {"test_battle_won_mean": [500, 1.0]}
    old_format = Logger(console=std_logging.getLogger("test_best_resume"))
    old_format.load_state_dict({"test_battle_won_mean": [200, 0.75]})   # checkpoints of earlier versions
    assert old_format.state_dict()["best"] == {"test_battle_won_mean": [200, 0.75]}


class FakeRun:
    def __init__(self):
        self.info, self.scalars = {}, []

    def log_scalar(self, key, value, t):
        self.scalars.append((key, value, t))


def test_test_history_before_a_resume_goes_into_the_new_record():
    """Issue 48: the resumed run's sacred record holds the tests of the earlier parts too, before its
    own, so one record is the whole run (stats keep only this process's values)."""
    import logging as std_logging

    first = Logger(console=std_logging.getLogger("test_history_resume"))
    first.log_stat("test_return_mean", 1.0, 0)
    first.log_stat("return_mean", 9.0, 50)          # not a test stat: not carried
    first.log_stat("test_return_mean", 2.0, 100)
    resumed = Logger(console=std_logging.getLogger("test_history_resume"))
    run = FakeRun()
    resumed.setup_sacred(run)
    resumed.load_state_dict(first.state_dict())
    resumed.log_stat("test_return_mean", 3.0, 200)
    assert run.info["test_return_mean"] == [1.0, 2.0, 3.0] and run.info["test_return_mean_T"] == [0, 100, 200]
    assert "return_mean" not in run.info and run.info["test_history_until"] == 100
    assert [s for s in run.scalars if s[0] == "test_return_mean"] == [("test_return_mean", 1.0, 0),
                                                                       ("test_return_mean", 2.0, 100),
                                                                       ("test_return_mean", 3.0, 200)]
    assert dict(resumed.stats) == {"test_return_mean": [(200, 3.0)]}
    # a third part gets the history of both earlier parts
    assert resumed.state_dict()["test_history"] == {"test_return_mean": [[0, 1.0], [100, 2.0], [200, 3.0]]}


def test_csv_sink_writes_every_stat_as_a_row(tmp_path):
    import csv

    from utils.logging import Logger

    path = tmp_path / "csv" / "run.csv"
    logger = Logger()
    logger.setup_csv(str(path))
    logger.log_stat("test_return_mean", 1.5, 100)
    logger.log_stat("loss", 0.25, 120)
    logger.close()
    rows = list(csv.reader(path.open()))
    assert rows == [["t_env", "key", "value"], ["100", "test_return_mean", "1.5"], ["120", "loss", "0.25"]]
    logger = Logger()                       # a resumed run appends below the header
    logger.setup_csv(str(path))
    logger.log_stat("loss", 0.5, 130)
    logger.close()
    assert list(csv.reader(path.open()))[-1] == ["130", "loss", "0.5"] and path.read_text().count("t_env") == 1


def test_wandb_sink_offline_or_a_clear_missing_dependency_error(tmp_path):
    import pytest

    from utils.logging import Logger
    from utils.registry import MissingDependencyError

    logger = Logger()
    try:
        import wandb  # noqa: F401
    except ImportError:
        with pytest.raises(MissingDependencyError, match="requirements-wandb.txt"):
            logger.setup_wandb("p", "offline", "run", {}, str(tmp_path))
        return
    logger.setup_wandb("spikemarl-test", "offline", "run", {"lr": 0.1}, str(tmp_path))
    logger.log_stat("test_return_mean", 2.0, 10)
    logger.close()
    assert list(tmp_path.glob("wandb/offline-run-*")), "no offline W&B run folder written"


def test_wandb_mode_is_checked_at_start_up():
    import pytest

    from utils.config import ConfigError, build_config

    with pytest.raises(ConfigError, match="wandb_mode='cloud' is not one of offline"):
        build_config("qmix", "smax", ["wandb_mode=cloud"])
