"""``stop_at_test_win_rate``: the MARL loop ends at the first test evaluation that reaches it."""
from types import SimpleNamespace

import pytest

pytest.importorskip("jaxmarl")

import run.marl as marl  # noqa: E402
from utils.config import build_config  # noqa: E402
from utils.logging import Logger  # noqa: E402


def _args(request, tmp_path, **kw):
    cfg = build_config("qmix", "smax")
    cfg.update(device="cpu", rnn_hidden_dim=16, batch_size_run=4, batch_size=8, buffer_size=32,
               test_nepisode=4, test_interval=200, log_interval=200, runner_log_interval=200,
               learner_log_interval=200, t_max=3000, save_model=False, local_results_path=str(tmp_path),
               unique_token="stop_test")
    cfg["env_args"]["jax_cache_dir"] = str(request.config.cache.mkdir("smax_jax_cache"))
    cfg.update(kw)
    return SimpleNamespace(**cfg)


def _train(args, monkeypatch, test_win_rates):
    """Run marl.train with the test evaluation replaced by a scripted win-rate sequence."""
    calls = []

    def scripted(args_, runner, logger):
        calls.append(runner.t_env)
        return test_win_rates[min(len(calls) - 1, len(test_win_rates) - 1)]

    monkeypatch.setattr(marl, "run_test_episodes", scripted)
    logger = Logger()
    runner, _, learner = marl.build_marl(args, logger)
    try:
        marl.train(args, logger, runner, learner)
    finally:
        runner.close()
    return runner, calls, logger


def test_training_stops_at_the_first_test_reaching_the_level(request, tmp_path, monkeypatch):
    args = _args(request, tmp_path, stop_at_test_win_rate=0.9)
    runner, calls, logger = _train(args, monkeypatch, [0.0, 0.5, 0.95, 0.0])
    assert len(calls) == 3                      # no further test, no extra final test
    assert runner.t_env < args.t_max
    elapsed = logger.stats["elapsed_s"]
    assert [t for t, _ in elapsed] == calls     # wall time recorded at every test
    assert all(b >= a for (_, a), (_, b) in zip(elapsed, elapsed[1:]))


def test_level_zero_trains_to_t_max(request, tmp_path, monkeypatch):
    args = _args(request, tmp_path, stop_at_test_win_rate=0.0, t_max=800)
    runner, calls, _ = _train(args, monkeypatch, [1.0])
    assert runner.t_env > args.t_max
    assert len(calls) >= 3                      # periodic tests plus the final one
