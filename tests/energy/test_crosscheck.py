"""Our per-layer MAC / AC counts against spikingjelly's op_counter and NeuroBench's synaptic operations.

Both libraries are optional (requirements-energy.txt); each test skips with the install line when
its library is absent. Every layer call of a model is captured (its module and inputs) and replayed
under the library's counter, so the comparison is per layer. Where the conventions agree the counts
are equal; where they differ, the difference is pinned here and explained in docs/energy.md:

* bias: ours counts a dense layer's bias as one more input (``(in + 1) x out``); both libraries
  count ``in x out`` (spikingjelly: the ``addmm``'s ``m x n x k``; NeuroBench zeroes the bias).
* zeros: NeuroBench's *effective* MACs skip zero inputs (ReLU outputs, the zero initial state);
  spikingjelly treats an all-zero tensor as binary spikes, so a product with the zero initial GRU
  state costs no MAC there; ours counts every product of a real-valued layer.
* spike inputs: identical in all three (``spikes x fan_out`` AC, bias not an operation).
* binary real-valued inputs (the one-hot previous action of CartPole): both libraries decide
  "spikes" from the values (all 0/1), so they count ``ones x out`` AC; ours decides from the
  architecture (only a spiking layer's output is a spike) and counts the layer as MAC.
* a layer reading spikes next to real columns (the PO critic's ``[spikes, action]``): ours splits
  it into AC (spike columns) and MAC (real columns + bias); the libraries see a non-binary input
  and count the whole layer as MAC (spikingjelly dense, NeuroBench effective = nonzeros x out).
* a rate decoder without TAP (input = spike count / T): ours counts the spikes of all T steps as
  AC; the libraries see a non-binary rate and count MAC.
* ``nn.GRU``: spikingjelly counts its products (above); NeuroBench 2.3.0 does not support
  ``nn.RNNBase`` layers (``recurrent_layer_macs`` raises a str, a TypeError).
* memory: spikingjelly's ``NeuromorphicMemoryAccessCounter`` weight + bias reads equal our weight
  reads for Linear layers; it does not see ``nn.GRU`` weights nor our neurons' state (it counts
  the state of its own ``BaseNode`` neurons only).
"""
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from energy.counting import OpCounter, gru_macs
from modules.agents import REGISTRY as AGENT_REGISTRY

SJ_HINT = "spikingjelly not installed: .venv/bin/pip install --no-deps -r requirements-energy.txt (docs/energy.md)"
NB_HINT = ("NeuroBench's layer counting not importable: .venv/bin/pip install --no-deps -r requirements-energy.txt "
           "(docs/energy.md)")


def _sj():
    return pytest.importorskip("spikingjelly.activation_based.op_counter", reason=SJ_HINT)


def _nb_macs():
    return pytest.importorskip("neurobench.metrics.utils.layers.macs", reason=NB_HINT).single_layer_MACs


def layer_calls(model, run):
    """``[(name, module, inputs)]`` of every Linear / GRU call while ``run()`` executes."""
    calls = []

    def hook(name):
        return lambda mod, inp, out: calls.append((name, mod, tuple(i.detach().clone() if torch.is_tensor(i) else i
                                                                     for i in inp)))
    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules()
               if isinstance(m, (nn.Linear, nn.GRU, nn.GRUCell))]
    try:
        with torch.no_grad():
            run()
    finally:
        for h in handles:
            h.remove()
    return calls


def ours_per_layer(model, run, decisions, convention="ours"):
    with torch.no_grad(), OpCounter(model, convention=convention) as counter:
        run()
    ops = counter.summary(decisions)
    return ops, {name: rec["ops"] * decisions for name, rec in ops.layers.items()}


def sj_per_layer(calls):
    sj = _sj()
    out = {}
    for name, mod, inputs in calls:
        mac, syn = sj.MACCounter(), sj.SynOpCounter()
        with torch.no_grad(), sj.DispatchCounterMode([mac, syn]):
            mod(*inputs)
        acc = out.setdefault(name, {"mac": 0, "ac": 0})
        acc["mac"] += mac.get_total()
        acc["ac"] += syn.get_total()
    return out


def nb_per_layer(calls):
    """NeuroBench's counts per layer; None when NeuroBench is absent (the spikingjelly checks still run)."""
    try:
        from neurobench.metrics.utils.layers.macs import single_layer_MACs as single_layer_macs
    except ImportError:
        return None
    out = {}
    for name, mod, inputs in calls:
        if isinstance(mod, nn.RNNBase):
            continue
        ops, spiking = single_layer_macs(inputs[0], mod)
        dense, _ = single_layer_macs(inputs[0], mod, total=True)
        acc = out.setdefault(name, {"mac": 0, "ac": 0, "dense": 0})
        acc["ac" if spiking else "mac"] += ops
        acc["dense"] += dense
    return out


def rows_of(calls, name):
    return sum(inp[0].numel() // mod.in_features for n, mod, inp in calls if n == name)


def binary_input(calls, name):
    return all(bool(((inp[0] == 0) | (inp[0] == 1)).all()) for n, _, inp in calls if n == name)


def nonzeros_of(calls, name):
    return sum(int(inp[0].count_nonzero()) for n, mod, inp in calls if n == name)


def check_linear_layers(model, calls, ours, sj=None, nb=None, spiking_synapses=()):
    """The per-layer relations of the module docstring for every nn.Linear of ``model``."""
    mods = dict(model.named_modules())
    checked = 0
    for name in {n for n, m, _ in calls if isinstance(m, nn.Linear)}:
        lin, rows = mods[name], rows_of(calls, name)
        bias = rows * lin.out_features if lin.bias is not None else 0
        dense = rows * lin.in_features * lin.out_features
        if name in spiking_synapses:      # counted by ours from the recorder, as "<layer>.linear"
            ours_mac, ours_ac = ours[name], 0.0
        elif name + ":real" in ours:      # spikes next to real columns
            ours_mac, ours_ac = ours[name + ":real"], ours[name]
        elif name in ours:
            kind = "AC" if ours_ac_layer(model, name) else "MAC"
            ours_mac, ours_ac = (ours[name], 0.0) if kind == "MAC" else (0.0, ours[name])
        else:
            raise AssertionError(f"ours does not count layer {name}")
        if ours_ac and not ours_mac:      # reads only spikes: the three agree exactly
            if sj is not None:
                assert sj[name] == {"mac": 0, "ac": ours_ac}, name
            if nb is not None:
                assert nb[name]["ac"] == ours_ac and nb[name]["mac"] == 0, name
        elif ours_ac:                     # mixed: the libraries count the whole layer as MAC
            if sj is not None:
                assert sj[name] == {"mac": dense, "ac": 0}, name
            if nb is not None:            # effective: nonzero inputs (spikes and real values) x out
                assert nb[name]["mac"] == nonzeros_of(calls, name) * lin.out_features, name
                assert nb[name]["mac"] >= ours_ac, name    # the spike columns are among the nonzeros
        elif binary_input(calls, name):   # e.g. a one-hot previous action: 0/1 values, but not spikes
            assert ours_mac - bias == dense, name
            events = nonzeros_of(calls, name) * lin.out_features
            if sj is not None:
                assert sj[name] == {"mac": 0, "ac": events}, name
            if nb is not None:
                assert nb[name] == {"mac": 0, "ac": events, "dense": dense}, name
        else:                             # real-valued input: equal up to the bias
            assert ours_mac - bias == dense, name
            if sj is not None:
                assert sj[name] == {"mac": dense, "ac": 0}, name
            if nb is not None:
                assert nb[name]["dense"] == dense and nb[name]["ac"] == 0, name
                assert nb[name]["mac"] == nonzeros_of(calls, name) * lin.out_features, name
        checked += 1
    return checked


def ours_ac_layer(model, name):
    from energy.counting import infer_spike_inputs
    return name in infer_spike_inputs(model)


def marl_agent(kind, tap=True):
    torch.manual_seed(0)
    args = SimpleNamespace(n_actions=5, rnn_hidden_dim=8, snn_hidden_dim=8, snn_threshold=0.05, tap=tap, snn_T=4)
    agent = AGENT_REGISTRY[kind](6, args)
    x = torch.randn(4, 2, 3, 6)
    return agent, (lambda: agent.forward_seq(x, agent.init_hidden(6))), 4 * 2 * 3


@pytest.mark.parametrize("kind", ["lif", "grsn"])
def test_spiking_marl_agents_match_spikingjelly_and_neurobench(kind):
    agent, run, decisions = marl_agent(kind)
    ops, ours = ours_per_layer(agent, run, decisions)
    assert ops.snn > 0                                    # the spiking layer fires
    calls = layer_calls(agent, run)
    sj, nb = sj_per_layer(calls), nb_per_layer(calls)
    assert check_linear_layers(agent, calls, ours, sj, nb, spiking_synapses=("spiking.linear",)) == 3
    # the decoder reads spikes: ours AC = spikingjelly SynOps = NeuroBench effective ACs
    assert ops.snn * decisions == sj["fc2"]["ac"]
    if nb is not None:  # NeuroBench skips the encoder's ReLU zeros in the synapse products; we do not
        assert nb["fc2"]["ac"] == sj["fc2"]["ac"] and nb["spiking.linear"]["mac"] < sj["spiking.linear"]["mac"]


def test_gru_marl_agent_differs_by_bias_and_zero_initial_state():
    agent, run, decisions = marl_agent("rnn")
    _, ours = ours_per_layer(agent, run, decisions)
    calls = layer_calls(agent, run)
    sj = sj_per_layer(calls)
    assert check_linear_layers(agent, calls, ours, sj, nb_per_layer(calls)) == 2
    H, batch, steps = 8, 6, 4
    assert ours["rnn"] == decisions * gru_macs(H, H)
    # spikingjelly: no biases, and the product with the all-zero initial state is "spikes" (0 MAC)
    assert sj["rnn"] == {"mac": decisions * 3 * H * H + (steps - 1) * batch * 3 * H * H, "ac": 0}
    assert ours["rnn"] - sj["rnn"]["mac"] == decisions * 2 * 3 * H + batch * 3 * H * H


def test_neurobench_does_not_count_nn_gru():
    single_layer_macs = _nb_macs()
    gru = nn.GRU(4, 3)
    with pytest.raises(TypeError):  # NeuroBench 2.3.0 raises a str for nn.RNNBase layers
        single_layer_macs((torch.randn(2, 1, 4), torch.zeros(1, 1, 3)), gru)


def test_rate_decoder_without_tap_is_ac_for_us_and_mac_for_the_libraries():
    agent, run, decisions = marl_agent("lif", tap=False)
    ops, ours = ours_per_layer(agent, run, decisions)
    calls = layer_calls(agent, run)
    rate = torch.cat([inp[0].reshape(-1, 8) for n, _, inp in calls if n == "fc2"])
    assert ((rate * 4) - (rate * 4).round()).abs().max() < 1e-6 and ours["fc2"] == pytest.approx(
        float(rate.sum() * 4) * 5)                                     # spikes over T = 4 steps x fan-out 5
    sj, nb = sj_per_layer(calls), nb_per_layer(calls)
    assert sj["fc2"] == {"mac": rate.shape[0] * 8 * 5, "ac": 0}
    if nb is not None:
        assert nb["fc2"] == {"mac": int(rate.count_nonzero()) * 5, "ac": 0, "dense": rate.shape[0] * 8 * 5}


PO = {"Pendulum-P": (2, 1, False), "CartPole-V": (2, 2, True)}


def po_nets(core, task):
    from modules.agents.po_actor import POActor
    from modules.critics.po_critic import POTwinCritic

    obs_dim, act_dim, discrete = PO[task]
    args = SimpleNamespace(agent=core, po_obs_embed=32, po_action_embed=8, po_reward_embed=8, po_hidden_dim=128,
                           po_head_layers=[128, 128], snn_threshold=0.02)
    torch.manual_seed(0)
    actor, critic = POActor(obs_dim, act_dim, discrete, args), POTwinCritic(obs_dim, act_dim, discrete, args)
    g = torch.Generator().manual_seed(1)
    n = 12
    obs = torch.randn(n, 1, obs_dim, generator=g)
    act = (nn.functional.one_hot(torch.randint(0, act_dim, (n,), generator=g), act_dim).float() if discrete
           else torch.rand(n, act_dim, generator=g)).unsqueeze(1)
    prev_act = torch.cat([torch.zeros_like(act[:1]), act[:-1]])
    prev_rew = torch.randn(n, 1, 1, generator=g)

    def run_actor():
        actor(obs, prev_act, prev_rew, actor.init_state(1))

    def run_critic():
        feat, _ = critic.features(obs, prev_act, prev_rew, critic.init_state(1))
        critic.q_values(feat, obs, None if discrete else act)
    return (actor, run_actor), (critic, run_critic), n


@pytest.mark.parametrize("task", list(PO))
def test_po_grsn_actor_and_critic_match_where_conventions_agree(task):
    (actor, run_a), (critic, run_c), n = po_nets("grsn", task)
    for model, run in ((actor, run_a), (critic, run_c)):
        ops, ours = ours_per_layer(model, run, n)
        assert ops.snn > 0
        calls = layer_calls(model, run)
        checked = check_linear_layers(model, calls, ours, sj_per_layer(calls), nb_per_layer(calls),
                                      spiking_synapses=("core.layer.linear",))
        assert checked == sum(isinstance(m, nn.Linear) for m in model.modules())  # every Linear


@pytest.mark.parametrize("task", list(PO))
def test_po_gru_actor_and_critic_linear_layers_match(task):
    (actor, run_a), (critic, run_c), n = po_nets("gru", task)
    for model, run in ((actor, run_a), (critic, run_c)):
        _, ours = ours_per_layer(model, run, n)
        calls = layer_calls(model, run)
        sj = sj_per_layer(calls)
        assert check_linear_layers(model, calls, ours, sj, nb_per_layer(calls)) == \
            sum(isinstance(m, nn.Linear) for m in model.modules())
        H, in_dim = 128, 48
        assert sj["core.gru"]["mac"] == n * 3 * H * in_dim + (n - 1) * 3 * H * H
        assert ours["core.gru"] == n * gru_macs(in_dim, H)


@pytest.mark.parametrize("kind", ["rnn", "lif", "grsn"])
def test_weight_reads_match_spikingjelly_neuromorphic_memory_counter(kind):
    sj = _sj()
    agent, run, decisions = marl_agent(kind)
    ops, _ = ours_per_layer(agent, run, decisions)
    mem = sj.NeuromorphicMemoryAccessCounter()
    with torch.no_grad(), sj.ModuleCounterMode([mem], model=agent):
        run()
    counts = mem.get_counts()["Global"]
    words = (counts["weight_read_bytes"] + counts["bias_read_bytes"]) / 4   # float32
    gru_reads = decisions * gru_macs(8, 8) if kind == "rnn" else 0         # not seen by spikingjelly
    assert ops.weight_reads * decisions == pytest.approx(words + gru_reads)
    # neuron / cell state: spikingjelly counts its own BaseNode neurons only
    assert counts["neuron_state_read_bytes"] == counts["neuron_state_write_bytes"] == 0
    state_vars = {"rnn": 1, "lif": 1, "grsn": 2}[kind]
    assert ops.state_reads * decisions == ops.state_writes * decisions == decisions * 8 * state_vars
