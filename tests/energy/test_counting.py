"""Exact operation counts of energy.counting on hand-built networks with known spike patterns."""
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from modules.agents import REGISTRY as AGENT_REGISTRY
from modules.mixers.qmix import QMixer
from energy.counting import E_AC_PJ, E_MAC_PJ, OpCounter, SpikeInput, gru_macs, linear_macs, sop
from energy.table import TABLE4_COLUMNS, format_table, table4_row


def _hand_spiking_agent(neuron="lif", tap=True, snn_T=4, threshold=1.0):
    """Input 2 -> fc1 (3) -> LIF (3) -> fc2 (5) with constant currents [2, 1.5, 0.5].

    LIF, beta 0.5, theta 1, hard reset, from u = 0: current 2 fires every step
    (u = 1.0), 1.5 every other step (0.75, 1.125, 0.75, 1.125), 0.5 never (u -> 0.5).
    """
    args = SimpleNamespace(n_actions=5, snn_hidden_dim=3, tap=tap, snn_T=snn_T, snn_threshold=threshold)
    agent = AGENT_REGISTRY[neuron](2, args)
    with torch.no_grad():
        agent.fc1.weight.zero_()
        agent.fc1.bias.copy_(torch.tensor([2.0, 1.5, 0.5]))
        if neuron == "lif":
            agent.spiking.linear.weight.copy_(torch.eye(3))
            agent.spiking.linear.bias.zero_()
    return agent


def test_sop_formula_by_hand():
    spikes = torch.tensor([[1, 0, 1], [1, 1, 0], [0, 0, 1], [1, 0, 0]], dtype=torch.float32)  # [T=4, 3]
    # per neuron: 3, 1, 2 spikes; fan-outs 5, 2, 7 -> 15 + 2 + 14
    assert sop(spikes, [5, 2, 7]) == 31.0
    assert sop(spikes, 10) == 60.0
    with pytest.raises(ValueError, match="fan_out"):
        sop(spikes, [1, 2])


def test_hand_built_lif_agent_counts_with_tap():
    agent = _hand_spiking_agent()
    b, a, T = 2, 3, 4
    with torch.no_grad(), OpCounter(agent) as counter:
        agent.forward_seq(torch.randn(T, b, a, 2), agent.init_hidden(b * a))
    ops = counter.summary(decisions=T * b * a)
    # spikes per row over 4 steps: 4 + 2 + 0 = 6, fan-out 5 -> 30 AC per row per 4 decisions
    assert counter.recorder.stats()["spiking"]["spikes"] == 6 * b * a
    assert ops.snn == pytest.approx(30 / 4)
    # MAC per decision: fc1 (2 + 1) * 3 = 9, LIF synapses (3 + 1) * 3 = 12; fc2 bias not counted
    assert ops.mlp == 21 and ops.rnn == 0
    assert ops.layers["fc1"]["ops"] == 9 and ops.layers["spiking.linear"]["ops"] == 12
    assert ops.energy_pj == pytest.approx(21 * 4.6 + 7.5 * 0.9)
    assert ops.firing_rate == pytest.approx(6 / 12)


def test_hand_built_lif_agent_without_tap_counts_all_window_spikes():
    agent = _hand_spiking_agent(tap=False, snn_T=4)
    with torch.no_grad(), OpCounter(agent) as counter:
        agent.forward_seq(torch.randn(3, 1, 2, 2), agent.init_hidden(2))
    ops = counter.summary(decisions=3 * 2)
    # every decision: fresh state, 4 neuron steps -> 6 spikes -> 30 AC; input current once: 12 MAC
    assert ops.snn == pytest.approx(30.0)
    assert ops.mlp == 21
    assert counter.recorder.stats()["spiking"]["decisions"] == 6


def test_stepwise_forward_counts_like_forward_seq():
    agent = _hand_spiking_agent()
    hidden = agent.init_hidden(1)
    with torch.no_grad(), OpCounter(agent) as counter:
        for _ in range(4):
            _, hidden = agent(torch.randn(1, 1, 2), hidden)
    ops = counter.summary(decisions=4)
    assert ops.snn == pytest.approx(30 / 4) and ops.mlp == 21


def test_layer_that_never_spikes_costs_only_its_macs():
    for neuron in ("lif", "grsn"):
        agent = _hand_spiking_agent(neuron=neuron, threshold=1e6)
        with torch.no_grad(), OpCounter(agent) as counter:
            agent.forward_seq(torch.randn(5, 2, 2, 2), agent.init_hidden(4))
        ops = counter.summary(decisions=20)
        assert ops.snn == 0.0 and ops.firing_rate == 0.0
        synapses = 3 * (3 + 1) * (2 if neuron == "grsn" else 1)  # GRSN: W_f and W_i
        assert ops.mlp == 9 + synapses
        assert ops.energy_pj == pytest.approx(E_MAC_PJ * (9 + synapses))


def test_gru_agent_macs_equal_the_formula():
    args = SimpleNamespace(n_actions=4, rnn_hidden_dim=8)
    agent = AGENT_REGISTRY["rnn"](10, args)
    with torch.no_grad(), OpCounter(agent) as counter:
        agent.forward_seq(torch.randn(6, 2, 3, 10), agent.init_hidden(6))
    ops = counter.summary(decisions=36)
    assert gru_macs(8, 8) == 3 * 8 * 9 + 3 * 8 * 9 == 432
    assert ops.rnn == 432
    assert ops.mlp == linear_macs(10, 8) + linear_macs(8, 4) == 11 * 8 + 9 * 4
    assert ops.snn == 0
    assert ops.energy_pj == pytest.approx(E_MAC_PJ * (432 + 124))


def test_gru_cell_and_paper_numbers():
    cell = nn.GRUCell(5, 7)
    with torch.no_grad(), OpCounter(cell) as counter:
        cell(torch.randn(3, 5))
    assert counter.summary(3).rnn == 3 * 7 * 6 + 3 * 7 * 8
    assert gru_macs(64, 64) == 24960  # the paper's "RNN (K) 24.96"
    # the paper's 8m GRU energy (7.57 + 24.96) K MAC -> 149.6 KpJ; GRSN 14.98 K MAC + 0.01 K AC -> 68.9
    assert (7.57 + 24.96) * E_MAC_PJ == pytest.approx(149.6, abs=0.05)
    assert 14.98 * E_MAC_PJ + 0.01 * E_AC_PJ == pytest.approx(68.9, abs=0.05)


def test_qmix_mixer_macs_match_paper_8m():
    # SMAC 8m: state 168, 8 agents, embed 32, hypernet 64 -> the paper's mixer column 51.20 K
    mixer = QMixer(8, 168, SimpleNamespace(mixing_embed_dim=32, hypernet_layers=2, hypernet_embed=64))
    with torch.no_grad(), OpCounter(mixer) as counter:
        mixer(torch.zeros(2, 3, 8), torch.zeros(2, 3, 168))
    per_step = counter.summary(decisions=6).mac
    assert per_step == (169 * 64 + 65 * 256) + (169 * 64 + 65 * 32) + 169 * 32 + (169 * 32 + 33) == 51201


def test_critic_like_layer_mixes_spike_and_real_columns():
    lin = nn.Linear(4, 3)
    model = nn.Sequential(lin)
    spec = {"0": SpikeInput(steps=1, cols=(0, 3))}
    x = torch.tensor([[1.0, 0.0, 1.0, 0.37], [0.0, 0.0, 1.0, -2.0]])  # 3 spikes + 1 real column
    with torch.no_grad(), OpCounter(model, spike_inputs=spec) as counter:
        model(x)
    ops = counter.summary(decisions=2)
    assert ops.snn == 3 * 3 / 2
    assert ops.mlp == (1 + 1) * 3  # real column + bias


def test_wrong_spike_input_is_a_clear_error():
    model = nn.Sequential(nn.Linear(3, 2))
    with pytest.raises(ValueError, match="non-spike"):
        with torch.no_grad(), OpCounter(model, spike_inputs={"0": SpikeInput()}):
            model(torch.tensor([[0.5, 0.2, 1.0]]))
    with pytest.raises(ValueError, match="not an nn.Linear"):
        OpCounter(model, spike_inputs={"fc9": SpikeInput()})
    with pytest.raises(ValueError, match="don't know how to count"):
        OpCounter(nn.Sequential(nn.Linear(2, 2), nn.LayerNorm(2)))


def test_table_row_and_format():
    agent = _hand_spiking_agent()
    with torch.no_grad(), OpCounter(agent) as counter:
        agent.forward_seq(torch.randn(4, 1, 1, 2), agent.init_hidden(1))
    row = table4_row("toy", "lif", counter.summary(4))
    text = format_table([row], TABLE4_COLUMNS, digits=4)
    assert "| toy | lif | 0.0210 | 0.0000 | 0.0075 |" in text
    assert text.rstrip().endswith("| - |")  # no mixer


def _marl_args(agent):
    return SimpleNamespace(agent=agent, obs_last_action=True, obs_agent_id=True, action_selector="epsilon_greedy",
                           epsilon_start=1.0, epsilon_finish=0.05, epsilon_anneal_time=100, n_actions=5,
                           rnn_hidden_dim=8, snn_hidden_dim=8, mixing_embed_dim=4, hypernet_layers=2,
                           hypernet_embed=6)


def test_count_marl_ops_uses_filled_steps_only():
    from components.episode_buffer import EpisodeBatch
    from controllers.basic_controller import BasicMAC
    from energy.evaluate import count_marl_ops

    env_info = {"n_agents": 2, "n_actions": 5, "obs_shape": 4, "state_shape": 6}
    batch = EpisodeBatch.zeros(2, 7, 2, 4, 6, 5)
    batch.obs.normal_()
    batch.filled[0, :3] = 1
    batch.filled[1, :5] = 1
    mac = BasicMAC(env_info, _marl_args("rnn"))
    mixer = QMixer(2, 6, _marl_args("rnn"))
    agent_ops, mixer_ops, info = count_marl_ops(mac, [batch], mixer)
    assert info["env_steps"] == 8 and info["decisions"] == 16 and info["episodes"] == 2
    assert agent_ops.rnn == gru_macs(8, 8)
    assert agent_ops.layers["fc1"]["ops"] == linear_macs(4 + 5 + 2, 8)  # obs + last action + id
    assert mixer_ops.mac == (7 * 6 + 7 * 8) + (7 * 6 + 7 * 4) + 7 * 4 + (7 * 4 + 5)
    # the spiking agent ran on exactly the 16 filled agent-steps (padding would add 12 more)
    mac = BasicMAC(env_info, _marl_args("grsn"))
    agent_ops, _, _ = count_marl_ops(mac, [batch], None)
    assert agent_ops.spiking["spiking"]["decisions"] == 16
    assert agent_ops.spiking["spiking"]["neuron_steps"] == 16 * 8


def test_count_po_ops_actor_and_critic_gru_match_paper_rnn_column():
    from modules.agents.po_actor import POActor
    from modules.critics.po_critic import POTwinCritic
    from energy.evaluate import count_po_ops

    args = SimpleNamespace(agent="gru", po_obs_embed=32, po_action_embed=8, po_reward_embed=8,
                           po_hidden_dim=128, po_head_layers=[128, 128], po_shortcut=False)
    actor, critic = POActor(2, 1, False, args), POTwinCritic(2, 1, False, args)
    eps = [{"obs": torch.randn(n + 1, 2).numpy(), "act": torch.rand(n, 1).numpy(),
            "rew": torch.randn(n).numpy()} for n in (5, 9)]
    a_ops, c_ops, info = count_po_ops(actor, eps, critic)
    assert info["decisions"] == 14
    # Pendulum-P, embed 32 + 8 + 8 = 48 -> GRU 128: actor + critic = the paper's 136.70 K
    assert a_ops.rnn + c_ops.rnn == 2 * gru_macs(48, 128) == 136704
    embed = linear_macs(2, 32) + linear_macs(1, 8) + linear_macs(1, 8)
    head = linear_macs(128, 128) + linear_macs(128, 128) + linear_macs(128, 1)
    assert a_ops.mlp == embed + head
    q_head = linear_macs(129, 128) + linear_macs(128, 128) + linear_macs(128, 1)
    assert c_ops.mlp == embed + 2 * q_head


def test_count_po_ops_spiking_critic_keeps_action_columns_as_mac():
    from modules.agents.po_actor import POActor
    from modules.critics.po_critic import POTwinCritic
    from energy.evaluate import count_po_ops

    args = SimpleNamespace(agent="grsn", po_obs_embed=4, po_action_embed=2, po_reward_embed=2,
                           po_hidden_dim=6, po_head_layers=[5], snn_threshold=0.05, po_shortcut=False)
    actor, critic = POActor(3, 2, False, args), POTwinCritic(3, 2, False, args)
    eps = [{"obs": torch.randn(13, 3).numpy(), "act": torch.rand(12, 2).numpy(), "rew": torch.randn(12).numpy()}]
    a_ops, c_ops, _ = count_po_ops(actor, eps, critic)
    # actor head.0 reads spikes only (fan-out 5); critic q1.0/q2.0 read spikes + 2 action columns
    spikes = a_ops.spiking["core.layer"]["spikes"]
    assert spikes > 0 and a_ops.snn == pytest.approx(spikes * 5 / 12)
    assert c_ops.layers["q1.0:real"]["ops"] == linear_macs(2, 5) and "q1.0" in c_ops.layers
    assert a_ops.layers["core.layer.linear"]["ops"] == linear_macs(8, 12)  # GRSN W_f, W_i


def test_popsan_actor_counts_spike_trains_as_ac():
    from modules.popsan import SpikingActor

    actor = SpikingActor(3, 2, 1.0, neuron="lif", T=5, hidden=(16, 12))
    obs = torch.randn(7, 3)
    with torch.no_grad():
        enc_spikes = float(actor.encoder(obs).sum())
        with OpCounter(actor) as counter:
            actor(obs)
    ops = counter.summary(decisions=7)
    assert ops.layers["layers.0.fc"]["ops"] == pytest.approx(enc_spikes * 16 / 7)
    assert ops.layers["layers.0.fc"]["kind"] == "AC" and ops.rnn == 0
    assert ops.mlp == 3 * 10 + 2 * (10 + 1)  # receptive fields + per-action readout


# the PO tasks as (obs_dim, act_dim, discrete): Pendulum-P [cos, sin], Pendulum-V [theta_dot], CartPole-V/P
PO_TASKS = {"Pendulum-P": (2, 1, False), "Pendulum-V": (1, 1, False), "CartPole-V": (2, 2, True)}


def _po_nets_and_ops(agent, task, convention="ours"):
    from modules.agents.po_actor import POActor
    from modules.critics.po_critic import POTwinCritic
    from energy.evaluate import count_po_ops

    obs_dim, act_dim, discrete = PO_TASKS[task]
    args = SimpleNamespace(agent=agent, po_obs_embed=32, po_action_embed=8, po_reward_embed=8,
                           po_hidden_dim=128, po_head_layers=[128, 128])  # po_shortcut default: True
    torch.manual_seed(0)
    actor, critic = POActor(obs_dim, act_dim, discrete, args), POTwinCritic(obs_dim, act_dim, discrete, args)
    g = torch.Generator().manual_seed(1)
    act = (torch.randint(0, act_dim, (12,), generator=g) if discrete else torch.rand(12, act_dim, generator=g))
    eps = [{"obs": torch.randn(13, obs_dim, generator=g).numpy(), "act": act.numpy(),
            "rew": torch.randn(12, generator=g).numpy()}]
    return count_po_ops(actor, eps, critic, convention=convention)


def _po_embeds(obs_dim, act_dim):
    return linear_macs(obs_dim, 32) + linear_macs(act_dim, 8) + linear_macs(1, 8)


@pytest.mark.parametrize("task,paper_k", [("Pendulum-P", 116.39), ("Pendulum-V", 116.24), ("CartPole-V", 116.74)])
def test_po_gru_with_shortcut_gives_the_papers_table4_mlp_and_rnn_columns(task, paper_k):
    obs_dim, act_dim, discrete = PO_TASKS[task]
    a_ops, c_ops, _ = _po_nets_and_ops("gru", task)
    q_out = act_dim if discrete else 1
    actor = (_po_embeds(obs_dim, act_dim) + linear_macs(obs_dim, 32)             # shortcut o -> 32
             + linear_macs(128 + 32, 128) + linear_macs(128, 128) + linear_macs(128, act_dim))
    short_in = obs_dim if discrete else obs_dim + act_dim                        # critic shortcut -> 48
    critic = (_po_embeds(obs_dim, act_dim) + linear_macs(short_in, 48)
              + 2 * (linear_macs(128 + 48, 128) + linear_macs(128, 128) + linear_macs(128, q_out)))
    assert a_ops.mlp == actor and c_ops.mlp == critic
    assert round((a_ops.mlp + c_ops.mlp) / 1e3, 2) == paper_k
    assert a_ops.rnn + c_ops.rnn == 2 * gru_macs(48, 128) == 136704  # the paper's 136.70 K


@pytest.mark.parametrize("task", list(PO_TASKS))
def test_po_grsn_with_shortcut_counts_gates_and_real_columns_as_mac(task):
    obs_dim, act_dim, discrete = PO_TASKS[task]
    a_ops, c_ops, _ = _po_nets_and_ops("grsn", task)
    q_out = act_dim if discrete else 1
    gates = linear_macs(48, 2 * 128)   # [W_f; W_i] x_t with both biases, once per decision
    # head.0 reads [spikes (AC), shortcut (MAC, with the layer's bias)]
    actor = (_po_embeds(obs_dim, act_dim) + linear_macs(obs_dim, 32) + gates
             + linear_macs(32, 128) + linear_macs(128, 128) + linear_macs(128, act_dim))
    short_in = obs_dim if discrete else obs_dim + act_dim
    critic = (_po_embeds(obs_dim, act_dim) + linear_macs(short_in, 48) + gates
              + 2 * (linear_macs(48, 128) + linear_macs(128, 128) + linear_macs(128, q_out)))
    assert a_ops.mlp == actor and c_ops.mlp == critic and a_ops.rnn == c_ops.rnn == 0
    spikes = a_ops.spiking["core.layer"]["spikes"]
    assert a_ops.snn == pytest.approx(spikes * 128 / 12)  # fan-out of each core neuron: head.0's 128
