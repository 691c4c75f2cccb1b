"""Agents: forward_seq == repeated forward (outputs + grads), TAP vs no-TAP, beta carried."""
import copy
from types import SimpleNamespace

import pytest
import torch

from modules.agents import REGISTRY, SpikingAgent
from energy.recording import SpikeRecorder
from utils.registry import RegistryError, lookup

D = torch.float64
T_ENV, BS, N_AG, E, N_ACT = 5, 2, 3, 6, 4


def _args(**kw):
    base = dict(n_actions=N_ACT, rnn_hidden_dim=8, snn_hidden_dim=8, snn_threshold=0.3,
                snn_beta_init=0.5, snn_beta_learnable=None, surrogate_alpha=2.0, snn_reset=None,
                tap=True, snn_T=4)
    base.update(kw)
    return SimpleNamespace(**base)


def _agent(name, **kw):
    torch.manual_seed(0)
    return REGISTRY[name](E, _args(**kw)).to(D)


def _obs(seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(T_ENV, BS, N_AG, E, generator=g, dtype=D) * 2.0


def _as_tuple(h):
    return h if isinstance(h, tuple) else (h,)


def _run(agent, obs, mode):
    h = agent.init_hidden(BS * N_AG)
    if mode == "seq":
        q, h = agent.forward_seq(obs, h)
    else:
        qs = []
        for t in range(obs.shape[0]):
            qt, h = agent.forward(obs[t], h)
            qs.append(qt)
        q = torch.stack(qs)
    g = torch.Generator().manual_seed(3)
    loss = (q * torch.randn(q.shape, generator=g, dtype=D)).sum()
    loss = loss + sum(hi.sum() * 0.3 for hi in _as_tuple(h))
    grads = torch.autograd.grad(loss, list(agent.parameters()))
    return q.detach(), [hi.detach() for hi in _as_tuple(h)], grads


CASES = [("rnn", True), ("lif", True), ("grsn", True), ("lif", False), ("grsn", False)]


@pytest.mark.parametrize("name,tap", CASES)
def test_forward_seq_equals_forward_loop(name, tap):
    agent = _agent(name, tap=tap)
    obs = _obs()
    q1, h1, g1 = _run(agent, obs, "loop")
    q2, h2, g2 = _run(agent, obs, "seq")
    assert q1.shape == (T_ENV, BS, N_AG, N_ACT)
    assert torch.allclose(q1, q2, atol=1e-10)
    assert len(h1) == len(h2)
    for a, b in zip(h1, h2):
        assert a.shape == (BS * N_AG, 8)
        assert torch.allclose(a, b, atol=1e-10)
    for a, b in zip(g1, g2):
        assert torch.allclose(a, b, atol=1e-9), (a - b).abs().max()
    assert sum(g.abs().sum() for g in g1) > 0


@pytest.mark.parametrize("name", ["lif", "grsn"])
def test_spiking_agents_fire_sometimes(name):
    agent = _agent(name)
    with SpikeRecorder(agent) as rec:
        agent.forward_seq(_obs(), agent.init_hidden(BS * N_AG))
    st = rec.stats()["spiking"]
    assert 0.05 < st["firing_rate"] < 0.95  # otherwise the equality tests above prove little
    assert st["decisions"] == T_ENV * BS * N_AG


@pytest.mark.parametrize("name", ["lif", "grsn"])
def test_no_tap_decoder_reads_rates_in_multiples_of_one_over_T(name):
    T = 4
    agent = _agent(name, tap=False, snn_T=T)
    seen = []
    agent.fc2.register_forward_hook(lambda m, inp, out: seen.append(inp[0].detach()))
    with SpikeRecorder(agent) as rec:
        agent.forward_seq(_obs(), agent.init_hidden(BS * N_AG))
        agent.forward(_obs()[0], agent.init_hidden(BS * N_AG))
    rates = torch.cat([s.reshape(-1) for s in seen])
    scaled = rates * T
    assert torch.allclose(scaled, scaled.round(), atol=1e-12)
    assert rates.min() >= 0 and rates.max() <= 1
    assert len(set(scaled.round().tolist())) > 2  # some fractional rates really occur
    st = rec.stats()["spiking"]
    assert st["decisions"] == (T_ENV + 1) * BS * N_AG
    assert st["neuron_steps"] == (T_ENV + 1) * BS * N_AG * 8 * T


@pytest.mark.parametrize("name", ["lif", "grsn"])
def test_no_tap_ignores_hidden_and_tap_uses_it(name):
    obs = _obs()
    no_tap = _agent(name, tap=False)
    h0 = no_tap.init_hidden(BS * N_AG)
    _, h_after = no_tap.forward(obs[0], h0)
    q_a, _ = no_tap.forward(obs[1], h0)
    q_b, _ = no_tap.forward(obs[1], h_after)
    assert torch.equal(q_a, q_b)

    tap = _agent(name, tap=True, snn_reset="soft")
    h = tap.init_hidden(BS * N_AG)
    q_carried, q_reset = [], []
    for t in range(T_ENV):
        q, h = tap.forward(obs[t], h)
        q_carried.append(q)
        q_reset.append(tap.forward(obs[t], tap.init_hidden(BS * N_AG))[0])
    assert torch.equal(q_carried[0], q_reset[0])
    assert not torch.allclose(torch.stack(q_carried), torch.stack(q_reset))


def test_rnn_hidden_and_state_dict():
    agent = _agent("rnn")
    h = agent.init_hidden(BS * N_AG)
    assert h.shape == (BS * N_AG, 8) and h.dtype == D and not h.any()
    q, h2 = agent.forward(_obs()[0], h.view(BS, N_AG, 8))  # [b, a, H] hidden is accepted too
    assert q.shape == (BS, N_AG, N_ACT) and h2.shape == (BS * N_AG, 8)
    keys = set(agent.state_dict())
    assert {"fc1.weight", "rnn.weight_ih_l0", "rnn.weight_hh_l0", "fc2.bias"} <= keys


@pytest.mark.parametrize("name,key", [("grsn", "spiking.beta_raw"), ("lif", "spiking.beta_fixed")])
def test_agent_copies_carry_beta(name, key):
    agent = _agent(name)
    assert key in agent.state_dict()
    new = torch.linspace(0.2, 0.7, 8, dtype=D)
    with torch.no_grad():
        if key.endswith("raw"):
            agent.spiking.beta_raw.copy_(torch.logit(new))
        else:
            agent.spiking.beta_fixed.copy_(new)
    assert torch.allclose(copy.deepcopy(agent).spiking.beta, new)
    other = _agent(name)
    other.load_state_dict(agent.state_dict())
    assert torch.allclose(other.spiking.beta, new)


def test_config_keys_reach_the_layer():
    agent = _agent("lif", snn_reset="soft", snn_beta_learnable=True, snn_beta_init=0.8,
                   snn_threshold=0.7, surrogate_alpha=3.0, snn_surrogate="rect")
    layer = agent.spiking
    assert layer.reset_mode == "soft" and layer.beta_learnable and layer.surrogate == "rect"
    assert torch.allclose(layer.beta, torch.full((8,), 0.8, dtype=D))
    assert layer.threshold == 0.7 and layer.surrogate_alpha == 3.0
    grsn = _agent("grsn").spiking
    assert grsn.reset_mode == "soft" and grsn.beta_learnable
    lif = _agent("lif").spiking
    assert lif.reset_mode == "hard" and not lif.beta_learnable


def test_bad_names_and_shapes_fail_clearly():
    with pytest.raises(RegistryError) as exc:
        SpikingAgent(E, _args(), neuron="izh")
    assert "grsn" in str(exc.value) and "lif" in str(exc.value)
    with pytest.raises(RegistryError) as exc:
        lookup(REGISTRY, "transformer", what="agent")
    assert all(k in str(exc.value) for k in ("rnn", "lif", "grsn"))
    agent = _agent("grsn")
    with pytest.raises(ValueError, match="input_shape=6"):
        agent.forward(torch.zeros(BS, N_AG, E + 1, dtype=D), agent.init_hidden(BS * N_AG))
    with pytest.raises(ValueError, match="batch\\*agents"):
        agent.forward(torch.zeros(BS, N_AG, E, dtype=D), agent.init_hidden(BS * N_AG + 1))
    with pytest.raises(ValueError, match="n_actions"):
        REGISTRY["rnn"](E, _args(n_actions=None))
