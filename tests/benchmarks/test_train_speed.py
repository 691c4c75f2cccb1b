"""benchmarks/train_speed.py: the variants it builds and how it forms ratios of interleaved timings."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks"))
import train_speed  # noqa: E402


def test_learner_variants_add_a_notap_row_per_spiking_agent():
    v = train_speed.learner_variants(["rnn", "grsn"], ["grsn"])
    assert v == {"rnn": ("rnn", {}), "grsn": ("grsn", {}), "grsn_notap": ("grsn", {"tap": False})}


def test_ratio_is_the_median_of_per_repeat_ratios_not_the_ratio_of_medians():
    rows = {"a": {"seq": {"ms_all": [10.0, 20.0, 30.0]}}, "b": {"seq": {"ms_all": [5.0, 40.0, 10.0]}}}
    # per repeat: 2.0, 0.5, 3.0 -> median 2.0 (the ratio of the medians would be 20 / 10 = 2.0 too, so
    # a second case where they differ)
    assert train_speed.ratio_to(rows, ("a", "seq"), ("b", "seq")) == pytest.approx(2.0)
    rows["b"]["seq"]["ms_all"] = [20.0, 10.0, 60.0]                 # 0.5, 2.0, 0.5 -> 0.5; medians 20 / 20 = 1
    assert train_speed.ratio_to(rows, ("a", "seq"), ("b", "seq")) == pytest.approx(0.5)


def test_bench_learners_times_every_variant_and_path_once_per_repeat(monkeypatch):
    calls = []

    class FakeLearner:
        def __init__(self, mac, info, args, logger):
            self.key = (args.agent, getattr(args, "tap", True), args.mac_unroll)

        def train(self, batch, t_env, episode):
            calls.append(self.key)

    monkeypatch.setattr(train_speed, "QLearner", FakeLearner)
    monkeypatch.setattr(train_speed, "BasicMAC", lambda info, args: None)
    info = {"n_agents": 2, "n_actions": 3, "state_shape": 4, "obs_shape": 5, "episode_limit": 6}
    out = train_speed.bench_learners(info, train_speed.learner_variants(["rnn", "grsn"], ["grsn"]), None,
                                     seed=1, warmup=0, repeats=2)
    keys = [("rnn", True, "sequence"), ("rnn", True, "stepwise"), ("grsn", True, "sequence"),
            ("grsn", True, "stepwise"), ("grsn", False, "sequence"), ("grsn", False, "stepwise")]
    assert calls == keys + keys[::-1]                                # interleaved, order reversed in repeat 2
    assert set(out) == {"rnn", "grsn", "grsn_notap"} and all(len(out[k]["seq"]["ms_all"]) == 2 for k in out)
