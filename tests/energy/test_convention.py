"""energy_convention: ours (default) and paper, which reproduces the GRSN paper's PO GRSN MLP column."""
import os

import pytest
import torch

from energy.counting import OpCounter, check_convention, gru_macs, linear_macs
from energy.evaluate import report_energy
from energy.table import TABLE4_MEMORY_COLUMNS, format_table, table4_row
from test_counting import PO_TASKS, _hand_spiking_agent, _po_embeds, _po_nets_and_ops

PAPER_GRSN_MLP_K = {"Pendulum-P": 108.19, "Pendulum-V": 108.05, "CartPole-V": 108.55}   # GRSN paper Table 4
OURS_GRSN_MLP_K = {"Pendulum-P": 92.32, "Pendulum-V": 92.18, "CartPole-V": 92.68}


def _ours_grsn_mlp(task):
    """Actor + critic MACs by hand (tests/energy/test_counting.py): gates with biases, spikes as AC."""
    obs_dim, act_dim, discrete = PO_TASKS[task]
    q_out = act_dim if discrete else 1
    gates = linear_macs(48, 2 * 128)
    actor = (_po_embeds(obs_dim, act_dim) + linear_macs(obs_dim, 32) + gates
             + linear_macs(32, 128) + linear_macs(128, 128) + linear_macs(128, act_dim))
    short_in = obs_dim if discrete else obs_dim + act_dim
    critic = (_po_embeds(obs_dim, act_dim) + linear_macs(short_in, 48) + gates
              + 2 * (linear_macs(48, 128) + linear_macs(128, 128) + linear_macs(128, q_out)))
    return actor + critic


@pytest.mark.parametrize("task", list(PO_TASKS))
def test_ours_and_paper_po_grsn_mlp_columns(task):
    ours = _ours_grsn_mlp(task)
    a, c, _ = _po_nets_and_ops("grsn", task)
    assert a.mlp + c.mlp == ours and a.convention == "ours"
    assert round(ours / 1e3, 2) == OURS_GRSN_MLP_K[task]
    a, c, _ = _po_nets_and_ops("grsn", task, convention="paper")
    # the paper's counting: the 4 x 128 gate biases (actor and critic, W_f and W_i) dropped and the
    # actor head's 128 x 128 spike-reading block counted as MAC
    assert a.mlp + c.mlp == ours - 4 * 128 + 128 * 128
    assert abs((a.mlp + c.mlp) / 1e3 - PAPER_GRSN_MLP_K[task]) < 0.01
    assert a.convention == c.convention == "paper"
    assert a.layers["head.0"]["kind"] == "MAC" and c.layers["q1.0"]["kind"] == "AC"
    assert a.bias_reads == c.bias_reads == 2 * 128   # the dropped gate biases are still read


@pytest.mark.parametrize("task,paper_k", [("Pendulum-P", 116.39), ("Pendulum-V", 116.24), ("CartPole-V", 116.74)])
def test_gru_counts_do_not_depend_on_the_convention(task, paper_k):
    for convention in ("ours", "paper"):
        a, c, _ = _po_nets_and_ops("gru", task, convention=convention)
        assert round((a.mlp + c.mlp) / 1e3, 2) == paper_k
        assert a.rnn + c.rnn == 2 * gru_macs(48, 128)


def test_marl_agent_under_the_paper_convention_drops_only_the_synapse_bias():
    ours, paper = [OpCounter(_hand_spiking_agent(), convention=cv) for cv in ("ours", "paper")]
    for counter in (ours, paper):
        agent = counter.model
        with torch.no_grad(), counter:
            agent.forward_seq(torch.randn(4, 1, 1, 2), agent.init_hidden(1))
    o, p = ours.summary(4), paper.summary(4)
    assert o.mlp - p.mlp == 3            # LIF synapses (3 + 1) x 3 -> 3 x 3
    assert o.snn == p.snn == pytest.approx(7.5)


def test_bad_convention_is_one_clear_error():
    with pytest.raises(ValueError, match=r"energy_convention must be one of ours \| paper.*'Paper'"):
        check_convention("Paper")
    with pytest.raises(ValueError, match="energy_convention must be one of"):
        OpCounter(torch.nn.Linear(2, 2), convention="mine")


def test_table_labels_the_papers_counting():
    a, c, _ = _po_nets_and_ops("grsn", "Pendulum-P", convention="paper")
    row = table4_row("Pendulum-P", "grsn actor+critic", a + c)
    assert row["agent"] == "grsn actor+critic [paper counting]"
    assert row["convention"] == "paper's (GRSN Table 4)"
    text = format_table([row], TABLE4_MEMORY_COLUMNS)
    assert "| Pendulum-P | grsn actor+critic [paper counting] | 108.19 |" in text
    ours_a, _, _ = _po_nets_and_ops("grsn", "Pendulum-P")
    with pytest.raises(ValueError, match="cannot add counts of conventions"):
        ours_a + c


def test_default_yaml_declares_the_key_with_ours_as_default():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    lines = [line for line in open(os.path.join(root, "config", "default.yaml"))
             if line.startswith("energy_convention:")]
    assert len(lines) == 1 and lines[0].split("#")[0].split(":")[1].strip() == "ours"
    assert "[str]" in lines[0] and "ours" in lines[0] and "paper" in lines[0]


def test_report_energy_checks_its_arguments():
    from types import SimpleNamespace

    with pytest.raises(ValueError, match="unknown run loop 'sc2'"):
        report_energy("sc2", SimpleNamespace(), None)
    with pytest.raises(ValueError, match="missing learner"):
        report_energy("marl", SimpleNamespace(), None, runner=object())
    with pytest.raises(ValueError, match="energy_convention must be one of"):
        report_energy("marl", SimpleNamespace(energy_convention="both"), None, runner=object(), learner=object())
