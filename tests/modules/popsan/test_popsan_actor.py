"""The spiking actor end to end: shapes, action bounds, gradients to every parameter."""
import pytest
import torch

from modules.popsan.actor import SpikingActor, set_fused
from utils.registry import RegistryError


@pytest.mark.parametrize("neuron", ["lif", "clif", "dn"])
def test_actor_shapes_bounds_and_gradients(neuron):
    torch.manual_seed(0)
    actor = SpikingActor(obs_dim=5, act_dim=2, max_action=[2.0, 0.5], neuron=neuron, T=5,
                         hidden=(32, 32))
    obs = torch.randn(16, 5) * 3
    action, rates = actor.forward_with_rates(obs)
    assert action.shape == (16, 2)
    assert [r.shape for r in rates] == [(16, 32), (16, 32), (16, 20)]
    assert (action[:, 0].abs() <= 2.0).all() and (action[:, 1].abs() <= 0.5).all()
    assert all(((r >= 0) & (r <= 1)).all() for r in rates)
    # rates are spike counts / T
    assert torch.allclose(rates[0] * 5, (rates[0] * 5).round())
    action.pow(2).sum().backward()
    for name, p in actor.named_parameters():
        assert p.grad is not None, name
    assert actor.decoder.weight.grad.abs().sum() > 0
    assert actor.layers[0].fc.weight.grad.abs().sum() > 0


def test_actor_is_deterministic_and_step_equivalent():
    torch.manual_seed(1)
    actor = SpikingActor(obs_dim=3, act_dim=1, max_action=1.0, neuron="clif", hidden=(16,))
    obs = torch.randn(4, 3)
    assert torch.equal(actor(obs), actor(obs))
    # layer-by-layer unrolling equals the step-interleaved simulation
    x = actor.encoder(obs)
    states = [l.neuron.init_state(4, l.out_dim) for l in actor.layers]
    counts = torch.zeros(4, actor.layers[-1].out_dim)
    for t in range(actor.T):
        h = x[t]
        for i, layer in enumerate(actor.layers):
            h, states[i] = layer.neuron.step(layer.fc(h), states[i])
        counts += h
    expected = actor.max_action * torch.tanh(actor.decoder(counts / actor.T))
    assert torch.allclose(actor(obs), expected, atol=1e-6)


def test_unknown_neuron_lists_valid():
    with pytest.raises(RegistryError, match="clif, dn, lif"):
        SpikingActor(obs_dim=3, act_dim=1, max_action=1.0, neuron="grsn")


@pytest.mark.parametrize("neuron", ["lif", "clif"])
def test_fused_actor_equals_reference_step_loop(neuron):
    """set_fused(False) (the step loop) and the fused default give the same actions and gradients."""
    torch.manual_seed(2)
    actor = SpikingActor(obs_dim=4, act_dim=2, max_action=1.0, neuron=neuron, hidden=(24, 24))
    obs = torch.randn(32, 4) * 2
    grads = []
    for fused in (True, False):
        set_fused(actor, fused)
        actor.zero_grad()
        a = actor(obs)
        a.pow(2).sum().backward()
        grads.append((a.detach(), [p.grad.clone() for p in actor.parameters()]))
    assert torch.equal(grads[0][0], grads[1][0])
    for g_f, g_r in zip(grads[0][1], grads[1][1]):
        assert torch.allclose(g_f, g_r, atol=1e-5)


def test_encoder_std_default_and_neuron_kwargs():
    actor = SpikingActor(obs_dim=3, act_dim=1, max_action=1.0, neuron="dn", hidden=(8,),
                         neuron_kwargs={"theta_u_sign": -1})
    assert torch.allclose(actor.encoder.std, torch.full((3, 10), 0.05 ** 0.5))
    assert all(layer.neuron.theta_u_sign == -1 for layer in actor.layers)
    steps = SpikingActor(obs_dim=3, act_dim=1, max_action=1.0, hidden=(8,), unroll="steps")
    assert not any(layer.fused for layer in steps.layers)
    with pytest.raises(ValueError, match="popsan_unroll must be one of fused, steps"):
        SpikingActor(obs_dim=3, act_dim=1, max_action=1.0, unroll="scan")
