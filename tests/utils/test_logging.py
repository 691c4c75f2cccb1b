import logging
from utils.logging import Logger


class _FakeRun:
    def __init__(self):
        self.info, self.scalars = {}, []

    def log_scalar(self, key, value, t):
        self.scalars.append((key, value, t))


def test_series_reach_sacred_info_and_metrics():
    run = _FakeRun()
    log = Logger()
    log.setup_sacred(run)
    log.log_stat("test_return_mean", 1.5, 100)
    log.log_stat("test_return_mean", 2, 200)
    assert run.info == {"test_return_mean": [1.5, 2.0], "test_return_mean_T": [100, 200]}
    assert run.scalars == [("test_return_mean", 1.5, 100), ("test_return_mean", 2.0, 200)]
    assert log.last("test_return_mean") == 2.0 and log.last("missing") is None


def test_recent_stats_print_window_means(caplog):
    console = logging.getLogger("test_logging_console")
    console.setLevel(logging.INFO)
    log = Logger(console=console)
    for t, v in enumerate([0.0, 10.0, 20.0, 30.0]):
        log.log_stat("loss", v, t)
    log.log_stat("episode", 7, 3)
    with caplog.at_level(logging.INFO, logger="test_logging_console"):
        log.print_recent_stats(window=2)
    text = caplog.text
    assert "t_env:          3" in text and "episode:        7" in text
    assert "loss:" in text and "25.0000" in text  # mean of the last two values
    assert text.count("episode:") == 1  # in the header, not repeated as a stat cell
