"""unroll == repeated step (outputs and gradients), beta handling, state, registry, recording."""
import copy

import pytest
import torch

from energy.recording import SpikeRecorder
from modules.neurons import REGISTRY, scan
from utils.registry import RegistryError, lookup

D = torch.float64
T, B, IN, H = 6, 3, 5, 4


def _layer(name, **kw):
    torch.manual_seed(0)
    return REGISTRY[name](IN, H, **kw).to(D)


def _inputs(seed=1):
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(T, B, IN, generator=g, dtype=D) * 2.0).requires_grad_()
    return x


def _random_state(layer, seed=2):
    g = torch.Generator().manual_seed(seed)
    return tuple((torch.rand(B, H, generator=g, dtype=D) * 0.8).requires_grad_()
                 for _ in layer.state_names)


def _grads(layer, x, state, mode):
    if mode == "step":
        outs, s = [], state
        for xt in x.unbind(0):
            o, s = layer.step(xt, s)
            outs.append(o)
        out = torch.stack(outs)
    else:
        out, s = layer.unroll(x, state)
    g = torch.Generator().manual_seed(3)
    w = torch.randn(out.shape, generator=g, dtype=D)
    loss = (out * w).sum() + sum((si * (k + 1.5)).sum() for k, si in enumerate(s))
    params = [p for p in layer.parameters()]
    grads = torch.autograd.grad(loss, params + [x] + list(state))
    return out.detach(), [si.detach() for si in s], grads


@pytest.mark.parametrize("name", ["lif", "grsn"])
@pytest.mark.parametrize("reset", ["hard", "soft"])
@pytest.mark.parametrize("learnable", [True, False])
@pytest.mark.parametrize("scripted", [True, False])
def test_unroll_equals_repeated_step(name, reset, learnable, scripted):
    scan.use_scripted_loops(scripted)
    try:
        layer = _layer(name, reset=reset, beta_learnable=learnable, threshold=0.4)
        x = _inputs()
        state = _random_state(layer)
        o1, s1, g1 = _grads(layer, x, state, "step")
        o2, s2, g2 = _grads(layer, x, state, "unroll")
    finally:
        scan.use_scripted_loops(True)
    assert 0.1 < o1.mean().item() < 0.9, "test needs both spikes and silence"
    assert torch.equal(o1, o2)
    for a, b in zip(s1, s2):
        assert torch.allclose(a, b, atol=1e-12)
    assert len(g1) == len(g2)
    for a, b in zip(g1, g2):
        assert a.abs().sum() > 0
        assert torch.allclose(a, b, atol=1e-10), (a - b).abs().max()


@pytest.mark.parametrize("name", ["lif", "grsn"])
def test_unroll_equals_step_with_rect_surrogate(name):
    layer = _layer(name, surrogate="rect", threshold=0.4)
    x = _inputs()
    state = _random_state(layer)
    _, _, g1 = _grads(layer, x, state, "step")
    _, _, g2 = _grads(layer, x, state, "unroll")
    for a, b in zip(g1, g2):
        assert torch.allclose(a, b, atol=1e-10)


@pytest.mark.parametrize("name,default", [("lif", False), ("grsn", True)])
def test_beta_learnable_gets_gradient_else_buffer(name, default):
    assert _layer(name).beta_learnable is default
    learn = _layer(name, beta_learnable=True, threshold=0.4)
    assert "beta_raw" in dict(learn.named_parameters())
    assert torch.allclose(learn.beta, torch.full((H,), 0.5, dtype=D))
    out, _ = learn.unroll(_inputs(), learn.init_state(B))
    out.sum().backward()
    assert learn.beta_raw.grad is not None and learn.beta_raw.grad.abs().sum() > 0

    fixed = _layer(name, beta_learnable=False, beta_init=0.3)
    assert not any("beta" in n for n, _ in fixed.named_parameters())
    assert "beta_fixed" in dict(fixed.named_buffers())
    assert torch.allclose(fixed.beta, torch.full((H,), 0.3, dtype=D))
    assert not fixed.beta.requires_grad


@pytest.mark.parametrize("learnable", [True, False])
def test_deepcopy_and_state_dict_carry_beta(learnable):
    layer = _layer("grsn", beta_learnable=learnable)
    new_beta = torch.linspace(0.2, 0.8, H, dtype=D)
    with torch.no_grad():
        if learnable:
            layer.beta_raw.copy_(torch.logit(new_beta))
        else:
            layer.beta_fixed.copy_(new_beta)
    target = copy.deepcopy(layer)
    assert torch.allclose(target.beta, new_beta)
    fresh = _layer("grsn", beta_learnable=learnable)
    assert not torch.allclose(fresh.beta, new_beta)
    fresh.load_state_dict(layer.state_dict())
    assert torch.allclose(fresh.beta, new_beta)


@pytest.mark.parametrize("name", ["lif", "grsn"])
def test_carried_state_differs_from_reset_each_step(name):
    layer = _layer(name, threshold=0.4, reset="soft")
    x = _inputs().detach()
    carried, _ = layer.unroll(x, layer.init_state(B))
    reset_each = torch.stack([layer.step(xt, layer.init_state(B))[0] for xt in x.unbind(0)])
    assert torch.equal(carried[0], reset_each[0])
    assert not torch.equal(carried, reset_each)


def test_state_shapes_and_bad_input_errors():
    layer = _layer("grsn")
    state = layer.init_state(7)
    assert len(state) == 2 and all(s.shape == (7, H) and s.dtype == D for s in state)
    assert len(_layer("lif").init_state(2)) == 1
    with pytest.raises(ValueError, match="state"):
        layer.step(torch.zeros(7, IN, dtype=D), state[:1])
    with pytest.raises(ValueError, match=r"\[batch, 5\]"):
        layer.step(torch.zeros(7, IN + 1, dtype=D), state)
    with pytest.raises(ValueError, match="reset"):
        REGISTRY["lif"](IN, H, reset="medium")
    with pytest.raises(ValueError, match="beta_init"):
        REGISTRY["grsn"](IN, H, beta_init=1.0)


def test_wrong_neuron_name_lists_valid_keys():
    with pytest.raises(RegistryError) as exc:
        lookup(REGISTRY, "izhikevich", what="neuron")
    msg = str(exc.value)
    assert "izhikevich" in msg and "grsn" in msg and "lif" in msg


def test_recorder_counts_and_detaches():
    layer = _layer("grsn", threshold=0.4)
    x = _inputs().detach()
    with SpikeRecorder(layer, membrane_samples=50) as rec:
        out, s = layer.unroll(x, layer.init_state(B))
        o2, _ = layer.step(x[0], s)
    st = rec.stats()["self"]
    assert st["spikes"] == pytest.approx(out.sum().item() + o2.sum().item())
    assert st["neuron_steps"] == (T + 1) * B * H
    assert st["decisions"] == (T + 1) * B
    assert st["firing_rate"] == pytest.approx(st["spikes"] / st["neuron_steps"])
    assert rec.membrane("self").numel() == 50
    assert layer._recorders == []  # off again: nothing recorded outside the block
    layer.unroll(x, layer.init_state(B))
    assert rec.stats()["self"]["neuron_steps"] == (T + 1) * B * H
