"""PopSAN neurons: hand-computed steps, hard reset, rectangular surrogate, registry."""
import pytest
import torch

from modules.popsan.neurons import POPSAN_NEURONS, CLIFNeuron, DNNeuron, LIFNeuron
from utils.registry import RegistryError, lookup


def run(neuron, currents):
    """Feed currents [T, n] one step at a time; returns spikes [T, n] and the last state."""
    state = neuron.init_state(1, currents.shape[1])
    out = []
    for i_t in currents:
        s, state = neuron.step(i_t.unsqueeze(0), state)
        out.append(s[0])
    return torch.stack(out), state


def test_lif_hand_computed():
    # v1 = 0.3 (no spike); v2 = 0.75*0.3 + 0.3 = 0.525 (spike); v3 = 0 (reset) + 0.3 = 0.3
    spikes, (v, s) = run(LIFNeuron(), torch.tensor([[0.3], [0.3], [0.3]]))
    assert spikes[:, 0].tolist() == [0.0, 1.0, 0.0]
    assert v.item() == pytest.approx(0.3)
    # without a spike the membrane only leaks: 0.2, 0.35, 0.4625
    spikes, (v, _) = run(LIFNeuron(), torch.tensor([[0.2], [0.2], [0.2]]))
    assert spikes.sum() == 0 and v.item() == pytest.approx(0.4625)


def test_clif_hand_computed():
    # c: 0.3, 0.45, 0.525 ; v: 0.3, 0.675 (spike), 0 + 0.525 (spike)
    spikes, (c, v, s) = run(CLIFNeuron(), torch.tensor([[0.3], [0.3], [0.3]]))
    assert spikes[:, 0].tolist() == [0.0, 1.0, 1.0]
    assert c.item() == pytest.approx(0.525)
    assert v.item() == pytest.approx(0.525)


@pytest.mark.parametrize("sign, u_exp", [(1, 0.132 + (-0.172 * 0.021 + 0.529 * 0.132)),
                                          (-1, 0.132 + (-0.172 * 0.021 - 0.529 * 0.132))])
def test_dn_hand_computed(sign, u_exp):
    n = DNNeuron(theta_u_sign=sign)
    # step 1 from rest, c = 1: v = 0 + (0 - 0 - 0 + 1) = 1 -> spike; u = 0 + (-0.172*0 +- 0.529*0) = 0
    s, state = n.step(torch.tensor([[1.0]]), n.init_state(1, 1))
    c, v, u, s = state
    assert (c.item(), v.item(), u.item(), s.item()) == pytest.approx((1.0, 1.0, 0.0, 1.0))
    # step 2, input 0: c = 0.5; reset v' = 0.021, u' = 0.132;
    # v = 0.021 + (0.021^2 - 0.021 - 0.132 + 0.5); u = 0.132 + (-0.172*0.021 +- 0.529*0.132)
    s, (c, v, u, s2) = n.step(torch.tensor([[0.0]]), state)
    v_exp = 0.021 + (0.021 ** 2 - 0.021 - 0.132 + 0.5)
    assert c.item() == pytest.approx(0.5)
    assert v.item() == pytest.approx(v_exp)
    assert u.item() == pytest.approx(u_exp)
    assert s2.item() == 0.0  # v_exp = 0.368... < 0.5


@pytest.mark.parametrize("sign, factor", [(1, 1.529), (-1, 1.0 - 0.529)])
def test_dn_theta_u_sign_scales_recovery(sign, factor):
    """With v' = 0 the recovery variable is multiplied by (1 + sign * theta_u) per step: the
    authors' code (+1, the default) grows it, MDC-SAN's equation (-1) decays it."""
    assert DNNeuron().theta_u_sign == 1
    n = DNNeuron(theta_u_sign=sign)
    state = (torch.zeros(1, 1), torch.zeros(1, 1), torch.ones(1, 1), torch.zeros(1, 1))
    _, (_, _, u, _) = n.step(torch.zeros(1, 1), state)
    assert u.item() == pytest.approx(factor)
    with pytest.raises(ValueError, match="dn_theta_u_sign must be 1"):
        DNNeuron(theta_u_sign=0)


@pytest.mark.parametrize("name, kw", [("lif", {}), ("clif", {}), ("dn", {}), ("lif", {"decay_v": 0.6}),
                                      ("lif", {"decay_v": 1.0}), ("clif", {"surrogate_width": 0.5})])
def test_fused_unroll_matches_step_loop(name, kw):
    """unroll (the fused _LIFScan for lif/clif) gives the step loop's spikes and gradients,
    including the gradient through the reset by the previous spike."""
    n = POPSAN_NEURONS[name](**kw)
    g = torch.Generator().manual_seed(0)
    cur = (torch.rand(7, 16, 33, generator=g) * 1.6 - 0.3).requires_grad_(True)
    w = torch.randn(7, 16, 33, generator=g)
    ref = n.unroll_steps(cur)
    (g_ref,) = torch.autograd.grad((ref * w).sum(), cur)
    out = n.unroll(cur)
    (g_out,) = torch.autograd.grad((out * w).sum(), cur)
    assert torch.equal(out, ref)
    assert 0.1 < ref.mean() < 0.9
    assert g_ref.abs().sum() > 0 and torch.allclose(g_out, g_ref, atol=1e-5)
    with torch.no_grad():
        assert torch.equal(n.unroll(cur), ref)


def test_lif_unroll_hand_computed_gradient():
    """Two steps, currents (0.6, 0.3): v1 = 0.6 spikes, v2 = 0.75 * 0.6 * (1 - s1) + 0.3 = 0.3.
    d s2 / d i1 goes only through the reset: ds2/dv2 * dv2/ds1 * ds1/dv1 = 1 * (-0.75 * 0.6) * 1."""
    n = LIFNeuron()
    cur = torch.tensor([[[0.6]], [[0.3]]], requires_grad=True)
    for fn in (n.unroll, n.unroll_steps):
        s = fn(cur)
        assert s.flatten().tolist() == [1.0, 0.0]
        (g,) = torch.autograd.grad(s[1].sum(), cur)
        assert g.flatten().tolist() == pytest.approx([-0.45, 1.0])


def test_decays_are_checked():
    with pytest.raises(ValueError, match=r"decay_v must be in \[0, 1\]"):
        LIFNeuron(decay_v=1.5)
    with pytest.raises(ValueError, match="decay_c"):
        CLIFNeuron(decay_c=-0.1)


@pytest.mark.parametrize("name", ["lif", "clif", "dn"])
def test_rect_surrogate_window(name):
    """dS/dI is 1 inside |v - 0.5| < 0.5 and 0 outside (on the first step from rest v = I for
    all three: the DN's v^2 - v - u terms vanish at v = u = 0)."""
    n = POPSAN_NEURONS[name]()
    i = torch.tensor([[0.2, 0.9, 1.2, -0.1]], requires_grad=True)
    s, _ = n.step(i, n.init_state(1, 4))
    s.sum().backward()
    assert i.grad[0].tolist() == [1.0, 1.0, 0.0, 0.0]
    assert s[0].tolist() == [0.0, 1.0, 1.0, 0.0]


def test_state_shapes_and_registry():
    for name, cls in POPSAN_NEURONS.items():
        n = cls()
        state = n.init_state(3, 7)
        assert len(state) == n.n_state and all(t.shape == (3, 7) for t in state)
        s, new = n.step(torch.randn(3, 7), state)
        assert s.shape == (3, 7) and len(new) == n.n_state
    with pytest.raises(RegistryError, match="clif, dn, lif"):
        lookup(POPSAN_NEURONS, "izhikevich", what="actor_neuron")
