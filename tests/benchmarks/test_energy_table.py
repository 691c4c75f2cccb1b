"""energy_table: PO checkpoints from po_table1's model folders; the PO rows of fresh networks; the
output never overwrites a committed record by default; remarks only where they apply."""
import json
import os
import re
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
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
    with pytest.raises(FileNotFoundError, match="no trained gru on Pendulum-V .seed 1.*experiment.py run table1 --point Pendulum-V__gru__s1"):
        energy_table.po_table1_checkpoint(str(tmp_path), "Pendulum-V", "gru", 1)


@pytest.mark.parametrize("convention,grsn_mlp_k", [("ours", 92.68), ("paper", 108.55)])
def test_fresh_po_rows_count_the_shortcut_networks(tmp_path, convention, grsn_mlp_k):
    assert energy_table.main(["--marl-maps", "--po-keys", "CartPole-V", "--decisions", "16",
                              "--out", str(tmp_path), "--tag", "energy_small", "--convention", convention]) == 0
    data = json.load(open(tmp_path / "energy_small.json"))
    both = next(r for r in data["rows"] if r["task"] == "CartPole-V" and r["network"] == "actor + critic")
    assert round(both["gru_mlp_k"], 2) == 116.74 and round(both["gru_rnn_k"], 2) == 136.70
    assert round(both["grsn_mlp_k"], 2) == grsn_mlp_k and both["convention"] == convention
    assert both["grsn_energy_mem_kpj"] > both["grsn_energy_kpj"]
    assert both["break_even_mem"] is not None and both["break_even_compute"] is not None
    md = open(tmp_path / "energy_small.md").read()
    assert "Freshly initialised networks (no checkpoint): CartPole-V:grsn, CartPole-V:gru." in md
    assert ("[paper counting]" in md or "the GRSN paper's" in md) == (convention == "paper")
    # every repository path the page cites exists; no design document outside the repository
    assert "DESIGN" not in md
    for path in re.findall(r"\b((?:docs|src|benchmarks)/[\w/.-]+\.(?:md|py))", md):
        assert os.path.exists(os.path.join(ROOT, path)), path


def test_defaults_do_not_overwrite_the_committed_record(tmp_path):
    assert energy_table.committed(os.path.join(ROOT, "benchmarks", "results", "energy.json"))
    assert not energy_table.committed(str(tmp_path / "energy.json"))
    defaults = energy_table.parser().parse_args([])
    assert (defaults.out, defaults.tag) == (os.path.join(ROOT, "benchmarks", "results"), "energy_run")
    assert not energy_table.committed(os.path.join(defaults.out, defaults.tag + ".json"))
    with pytest.raises(SystemExit, match="energy.json is a committed result.*--overwrite"):
        energy_table.main(["--marl-maps", "--po-keys", "--tag", "energy"])
    energy_table.check_output(os.path.join(ROOT, "benchmarks", "results"), "energy", overwrite=True)  # allowed


def test_untrained_remark_only_for_untrained_networks():
    trained = {"Pendulum-P": {"gru": {"checkpoint_loaded": True}, "grsn": {"checkpoint_loaded": True}}}
    text = "\n".join(energy_table.notes([], trained, {}, "ours"))
    assert "Freshly initialised" not in text and "barely fire" not in text
    half = {"Pendulum-P": {"gru": {"checkpoint_loaded": True}, "grsn": {"checkpoint_loaded": False}}}
    text = "\n".join(energy_table.notes([], half, {}, "ours"))
    assert "Freshly initialised networks (no checkpoint): Pendulum-P:grsn." in text


def test_memory_from_a_record_keeps_its_compute_only_numbers(tmp_path):
    assert energy_table.main(["--marl-maps", "--po-keys", "CartPole-V", "--decisions", "16",
                              "--out", str(tmp_path), "--tag", "src"]) == 0
    assert energy_table.main(["--memory-from", str(tmp_path / "src.json"), "--decisions", "16",
                              "--out", str(tmp_path), "--tag", "mem"]) == 0
    src = {r["network"]: r for r in json.load(open(tmp_path / "src.json"))["rows"]}
    mem = json.load(open(tmp_path / "mem.json"))
    for row in mem["rows"]:
        assert row["network"].endswith("(untrained, src.json)")
        orig = src[row["network"].split(" (untrained")[0]]
        for key in ("gru_energy_kpj", "grsn_energy_kpj", "grsn_mlp_k", "grsn_snn_k", "ratio_pct"):
            assert row[key] == pytest.approx(orig[key]), key
        assert row["gru_energy_mem_kpj"] > row["gru_energy_kpj"] and row["break_even_mem"] > 0
    be = mem["detail"]["src.json"]["CartPole-V"]["actor_critic"]["break_even"]
    assert set(be) == {"compute_only", "sram_8kb_45nm", "sram_1mb_45nm", "spikingjelly_simple"}


def test_memory_from_rejects_a_record_of_another_architecture():
    fresh = {"mac_ops": 1000.0, "decisions": 1, "mlp_ops": 1000.0, "rnn_ops": 0.0, "snn_ops": 0.0}
    with pytest.raises(ValueError, match="not the same architecture"):
        energy_table.trained_with_structure({"mac_ops": 1200.0, "snn_ops": 3.0}, fresh)
