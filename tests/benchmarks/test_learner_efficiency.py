"""benchmarks/learner_efficiency.py: the FLOP count (FlopCounterMode vs the hand count), variants, ratios."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks"))
import learner_efficiency as le  # noqa: E402

TINY = {"n_agents": 2, "n_actions": 3, "obs_shape": 5, "state_shape": 7, "episode_limit": 10, "map_name": "tiny"}


@pytest.mark.parametrize("agent", ["rnn", "grsn", "lif"])
def test_flop_counter_equals_the_hand_count_of_one_update(agent):
    B, T = 4, 3
    batch = le.fake_batch(TINY, B, T, seed=0)
    learner = le.build_learner(agent, TINY, dict(le.REFERENCE_KEYS), seed=0)
    counted, per_op = le.count_flops(lambda: learner.train(batch, t_env=0, episode=0))
    e = learner.mac.input_shape
    assert e == 5 + 3 + 2                                         # obs + last action + agent id
    want = le.hand_count(agent, B, T, 2, e, 64, 3, 7)
    assert counted == want
    assert set(per_op) <= {"aten.mm", "aten.addmm", "aten.bmm"}


def test_hand_count_pinned_for_lif_by_hand():
    # B=1, T=1, a=1, e=2, H=1, n=1, s=1, embed=1, hyper=1: R = 2 agent rows
    # agent fwd: fc1 2*2*2*1=8, syn 2*2*1*1=4, fc2 4 -> 16; bwd: fc1 w 8, syn 2*4, fc2 2*4 -> 24
    # mixer fwd per row: w1 2+2, wf 2+2, b1 2, value 2+2, bmm 2+2 = 18; bwd per row: first 2*2+2*2=8,
    # second 2*(2+2+2)=12, bmm 2*(2+2)=8 -> 28; online 1 row, target 2 rows
    assert le.hand_count("lif", 1, 1, 1, 2, 1, 1, 1, embed=1, hyper=1) == (16 + 24 + 18 + 28) + (16 + 2 * 18)


def test_parse_variant_reads_config_values():
    assert le.parse_variant("grsn") == ("grsn", {})
    assert le.parse_variant("rnn+rnn_fused_gru=false+lr=0.5+learner_threads=2+learner_packing=padded") == (
        "rnn", {"rnn_fused_gru": False, "lr": 0.5, "learner_threads": 2, "learner_packing": "padded"})
    with pytest.raises(ValueError, match="agent must be rnn, grsn or lif"):
        le.parse_variant("gru")
    with pytest.raises(ValueError, match="expected agent\\+key=value"):
        le.parse_variant("rnn+fused")


def test_median_ratio_is_per_repeat():
    assert le.median_ratio([2.0, 9.0, 3.0], [1.0, 3.0, 3.0]) == pytest.approx(2.0)   # 2, 3, 1 -> 2


def test_doc_splice_replaces_only_the_named_section_and_needs_its_markers():
    from doc_section import splice

    page = "intro\n<!-- a:begin -->\nold\n<!-- a:end -->\n<!-- b:begin -->\nkeep\n<!-- b:end -->\n"
    out = splice(page, "a", "new 1.23")
    assert out == "intro\n<!-- a:begin -->\nnew 1.23\n<!-- a:end -->\n<!-- b:begin -->\nkeep\n<!-- b:end -->\n"
    with pytest.raises(ValueError, match="no section 'c'"):
        splice(page, "c", "x")


def test_doc_section_reads_its_numbers_from_the_records():
    def rec(eff, ms, date):
        row = {"efficiency_median": eff, "cpu_ms_median": ms, "shape_ceiling": 0.61, "matmul_calls": 7,
               "matmul_alone_s": 0.05, "matmul_share_of_update": 0.5}
        return {"variants": {"rnn": dict(row), "grsn": dict(row, efficiency_median=eff / 2)},
                "time_ratios": {"grsn/rnn": 0.9}, "matmul_gflops_median": 90.0,
                "meta": {"date": date, "map": "3m", "batch_size": 128, "T": 60, "torch_threads": 1, "repeats": 9,
                         "loadavg_end": [1.0]}}
    text = le.doc_section(rec(0.41, 170.0, "d0"), rec(0.52, 140.0, "d1"))
    assert "| rnn | 0.41 | 0.52 | 170 | 140 | 0.61 | 1.00 | 1.00 |" in text
    assert "| grsn | 0.20 | 0.26 |" in text and "target efficiency of 0.75 is above" in text
    assert "No `benchmarks/results/learner_efficiency.json`" in le.doc_section(None, None)


def test_fake_batch_lengths_full_or_uniform_with_a_terminal_last_step():
    full = le.fake_batch(TINY, 5, 6, seed=0)
    assert full.filled.sum(1).tolist() == [6.0] * 5 and full.terminated[:, -1].tolist() == [1.0] * 5
    ragged = le.fake_batch(TINY, 40, 6, seed=0, min_length=2)
    n = ragged.filled.sum(1)
    assert int(n.min()) >= 2 and int(n.max()) <= 6 and len(set(n.tolist())) > 1
    for i in range(40):
        k = int(n[i])
        assert ragged.filled[i, :k].all() and not ragged.filled[i, k:].any()
        assert ragged.terminated[i].nonzero().flatten().tolist() == [k - 1]
        assert float(ragged.reward[i, k:].abs().sum()) == 0.0
    with pytest.raises(ValueError, match="min_length must be <= T=6"):
        le.fake_batch(TINY, 2, 6, seed=0, min_length=7)
