"""Memory-aware energy and the break-even firing rate, against values computed by hand."""
from types import SimpleNamespace

import pytest
import torch

from energy.counting import OpCounter, OpsSummary
from energy.memory import (DEFAULT_MEMORY_MODEL, MEMORY_MODELS, break_even_rate, break_even_summary,
                           memory_aware_pj, memory_model, memory_pj, memory_summary)
from modules.agents import REGISTRY as AGENT_REGISTRY
from test_counting import _hand_spiking_agent

SRAM8K = MEMORY_MODELS["sram_8kb_45nm"]


def _count(agent, steps=4, batch=1, agents=1, n_in=2):
    with torch.no_grad(), OpCounter(agent) as counter:
        agent.forward_seq(torch.randn(steps, batch, agents, n_in), agent.init_hidden(batch * agents))
    return counter.summary(decisions=steps * batch * agents)


def _tiny_gru():
    """Input 2 -> fc1 (3) -> GRU (3) -> fc2 (5)."""
    return AGENT_REGISTRY["rnn"](2, SimpleNamespace(n_actions=5, rnn_hidden_dim=3))


def test_memory_models_state_their_numbers_and_source():
    assert SRAM8K.read_pj == SRAM8K.write_pj == 5.0 and "8 KB" in SRAM8K.source and "Horowitz" in SRAM8K.source
    assert MEMORY_MODELS["sram_1mb_45nm"].read_pj == 50.0
    assert MEMORY_MODELS["spikingjelly_simple"].read_pj == pytest.approx(24.96 * 4)
    assert memory_model() is MEMORY_MODELS[DEFAULT_MEMORY_MODEL]
    with pytest.raises(ValueError, match="unknown memory model 'dram'.*sram_8kb_45nm"):
        memory_model("dram")


def test_lif_agent_memory_traffic_by_hand():
    ops = _count(_hand_spiking_agent())
    # MAC: fc1 (2 + 1) x 3 = 9, LIF synapses (3 + 1) x 3 = 12; AC: 6 spikes x fan-out 5 / 4 decisions
    assert ops.mac == 21 and ops.ac == pytest.approx(7.5)
    assert ops.bias_reads == 5                       # fc2's bias, read once per decision
    assert ops.weight_reads == pytest.approx(21 + 7.5 + 5)
    assert ops.state_reads == ops.state_writes == 3  # LIF: uhat of 3 neurons
    assert ops.ac_dense == 3 * 5                     # every neuron spiking: 3 x fan-out 5
    assert memory_pj(ops, SRAM8K) == pytest.approx(5 * (33.5 + 3) + 5 * 3)   # 197.5
    assert memory_aware_pj(ops, SRAM8K) == pytest.approx(21 * 4.6 + 7.5 * 0.9 + 197.5)


def test_gru_agent_memory_traffic_by_hand():
    ops = _count(_tiny_gru())
    # fc1 (2 + 1) x 3 = 9, GRU 3 x 3 x (3 + 1) x 2 = 72, fc2 (3 + 1) x 5 = 20
    assert ops.mac == 101 and ops.ac == 0 and ops.ac_dense == 0
    assert ops.weight_reads == 101 and ops.state_reads == ops.state_writes == 3   # h
    assert memory_pj(ops, SRAM8K) == pytest.approx(5 * 104 + 5 * 3)


def test_grsn_break_even_rate_on_a_tiny_layer_by_hand():
    grsn = _count(_hand_spiking_agent(neuron="grsn"))
    gru = _count(_tiny_gru())
    # GRSN: MAC = fc1 9 + gates (3 + 1) x 6 = 33; AC_dense = 3 x 5; bias reads 5; state (c, uhat) 6 / 6
    assert (grsn.mac, grsn.ac_dense, grsn.bias_reads, grsn.state_reads, grsn.state_writes) == (33, 15, 5, 6, 6)
    # compute-only: r* = 4.6 (101 - 33) / (15 x 0.9)
    assert break_even_rate(grsn, gru) == pytest.approx(312.8 / 13.5)
    # 5 pJ words: E_gru = 464.6 + 5 (101 + 3) + 5 x 3 = 999.6; fixed = 151.8 + 5 (33 + 5 + 6) + 5 x 6 = 401.8
    assert break_even_rate(grsn, gru, SRAM8K) == pytest.approx((999.6 - 401.8) / (15 * 5.9))
    both = break_even_summary(grsn, gru)
    assert set(both) == {"compute_only", *MEMORY_MODELS}
    assert both["sram_8kb_45nm"] == pytest.approx(6.754802, rel=1e-6)


@pytest.mark.parametrize("model", [None, *MEMORY_MODELS.values()])
def test_at_the_break_even_rate_both_agents_use_the_same_energy(model):
    ref = OpsSummary(decisions=1, rnn=110.0, state_reads=4, state_writes=4)
    spk = OpsSummary(decisions=1, mlp=60.0, ac_dense=400.0, bias_reads=5, state_reads=8, state_writes=8)
    r = break_even_rate(spk, ref, model)
    if model is None:  # 4.6 x (110 - 60) / (400 x 0.9)
        assert r == pytest.approx(230 / 360)
    at = OpsSummary(decisions=1, mlp=60.0, snn=r * 400.0, ac_dense=400.0, bias_reads=5, state_reads=8, state_writes=8)
    energy = (lambda o: o.energy_pj) if model is None else (lambda o: memory_aware_pj(o, model))
    assert energy(at) == pytest.approx(energy(ref))


def test_break_even_edge_cases():
    ref = OpsSummary(decisions=1, mlp=10.0)
    assert break_even_rate(OpsSummary(decisions=1, mlp=5.0), ref) is None          # nothing reads spikes
    assert break_even_rate(OpsSummary(decisions=1, mlp=20.0, ac_dense=8.0), ref) < 0  # loses at any rate


def test_memory_summary_and_json_round_trip():
    ops = _count(_hand_spiking_agent())
    summ = memory_summary(ops)
    assert summ["default_model"] == DEFAULT_MEMORY_MODEL
    assert summ["models"]["sram_8kb_45nm"]["memory_pj"] == pytest.approx(197.5)
    back = OpsSummary.from_dict(ops.as_dict())
    assert (back.mac, back.ac, back.ac_dense, back.weight_reads, back.state_writes) == \
        (ops.mac, ops.ac, ops.ac_dense, ops.weight_reads, ops.state_writes)
