"""energy_table: PO checkpoints from po_table1's model folders; the PO rows of fresh networks."""
import json
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                "benchmarks"))
import energy_table  # noqa: E402


def test_po_table1_checkpoint_takes_the_largest_budget_of_the_shortcut_runs(tmp_path):
    for name in ("po_table1_td3_Pendulum-P_grsn_seed1_t10000_shortcut",
                 "po_table1_td3_Pendulum-P_grsn_seed1_t50000_shortcut",
                 "po_table1_td3_Pendulum-P_grsn_seed1_t90000",                     # no shortcut
                 "po_table1_td3_Pendulum-P_grsn_seed1_t90000_shortcut_sampled_seq_len-m1",  # a variant
                 "po_table1_td3_Pendulum-P_grsn_seed2_t70000_shortcut",             # another seed
                 "po_table1_sacd_CartPole-V_gru_seed1_t11000_shortcut"):
        (tmp_path / name).mkdir()
    got = energy_table.po_table1_checkpoint(str(tmp_path), "Pendulum-P", "grsn", 1)
    assert os.path.basename(got) == "po_table1_td3_Pendulum-P_grsn_seed1_t50000_shortcut"
    got = energy_table.po_table1_checkpoint(str(tmp_path), "CartPole-V", "gru", 1)
    assert os.path.basename(got) == "po_table1_sacd_CartPole-V_gru_seed1_t11000_shortcut"
    with pytest.raises(FileNotFoundError, match="no trained gru on Pendulum-V .seed 1.*--save-model"):
        energy_table.po_table1_checkpoint(str(tmp_path), "Pendulum-V", "gru", 1)


def test_fresh_po_rows_count_the_shortcut_networks(tmp_path):
    assert energy_table.main(["--marl-maps", "--po-keys", "CartPole-V", "--decisions", "16",
                              "--out", str(tmp_path), "--tag", "energy_small"]) == 0
    rows = json.load(open(tmp_path / "energy_small.json"))["rows"]
    both = next(r for r in rows if r["task"] == "CartPole-V" and r["network"] == "actor + critic")
    assert round(both["gru_mlp_k"], 2) == 116.74 and round(both["gru_rnn_k"], 2) == 136.70
    assert round(both["grsn_mlp_k"], 2) == 92.68
    assert os.path.exists(tmp_path / "energy_small.md")
