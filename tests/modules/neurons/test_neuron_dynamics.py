"""Hand-computed trajectories of LIF and GRSN layers (beta 0.5), via step and via unroll."""
import math

import pytest
import torch

from energy.recording import SpikeRecorder
from modules.neurons import GRSNLayer, LIFLayer

D = torch.float64


def _run(layer, xs, mode):
    """Returns spikes [T, 1, H], membrane u [T, H] (from the recorder), final state."""
    layer = layer.to(D)
    state = layer.init_state(1)
    with SpikeRecorder(layer, membrane_samples=10_000) as rec:
        if mode == "step":
            outs = []
            for x in xs:
                o, state = layer.step(torch.tensor([[x]], dtype=D), state)
                outs.append(o)
            spikes = torch.stack(outs)
        else:
            spikes, state = layer.unroll(torch.tensor(xs, dtype=D).view(-1, 1, 1), state)
    u = rec.membrane("self").view(len(xs), -1)
    return spikes[:, 0], u, state


def _lif(reset):
    layer = LIFLayer(1, 2, threshold=1.0, beta_init=0.5, reset=reset)
    with torch.no_grad():
        layer.linear.weight.copy_(torch.tensor([[4.0], [2.0]]))
        layer.linear.bias.copy_(torch.tensor([0.0, 0.5]))
    return layer


XS = [1.0, 0.5, 0.0]  # currents c = [4, 2.5], [2, 1.5], [0, 0.5]


@pytest.mark.parametrize("mode", ["step", "unroll"])
def test_lif_hard_reset_trajectory(mode):
    spikes, u, (uhat,) = _run(_lif("hard"), XS, mode)
    # t1: u = .5*0 + .5*[4, 2.5] = [2, 1.25] -> spikes [1, 1], reset to 0
    # t2: u = .5*[2, 1.5] = [1, .75] -> [1, 0] (u == theta fires); uhat [0, .75]
    # t3: u = .5*[0, .75] + .5*[0, .5] = [0, .625] -> [0, 0]
    assert u.tolist() == [[2.0, 1.25], [1.0, 0.75], [0.0, 0.625]]
    assert spikes.tolist() == [[1.0, 1.0], [1.0, 0.0], [0.0, 0.0]]
    assert uhat.tolist() == [[0.0, 0.625]]


@pytest.mark.parametrize("mode", ["step", "unroll"])
def test_lif_soft_reset_trajectory(mode):
    spikes, u, (uhat,) = _run(_lif("soft"), XS, mode)
    # t1: u = [2, 1.25] -> [1, 1]; uhat = u - 1 = [1, .25]
    # t2: u = .5*[1, .25] + .5*[2, 1.5] = [1.5, .875] -> [1, 0]; uhat [.5, .875]
    # t3: u = .5*[.5, .875] + .5*[0, .5] = [.25, .6875] -> [0, 0]
    assert u.tolist() == [[2.0, 1.25], [1.5, 0.875], [0.25, 0.6875]]
    assert spikes.tolist() == [[1.0, 1.0], [1.0, 0.0], [0.0, 0.0]]
    assert uhat.tolist() == [[0.25, 0.6875]]


def _grsn(reset):
    layer = GRSNLayer(1, 2, threshold=0.5, beta_init=0.5, reset=reset)
    with torch.no_grad():
        # forget gate rows: f = sigmoid([0, ln 3]) = [.5, .75]; input rows: j = relu([2x, 4x - 1])
        layer.linear.weight.copy_(torch.tensor([[0.0], [0.0], [2.0], [4.0]]))
        layer.linear.bias.copy_(torch.tensor([0.0, math.log(3.0), 0.0, -1.0]))
    return layer


# j = [2, 3], [1, 1], [0, 0 (relu of -1)]
# c0: .5*2 = 1;      .5*1 + .5*1 = 1;              .5*1 = .5
# c1: .25*3 = .75;   .75*.75 + .25*1 = .8125;      .75*.8125 = .609375
C_EXPECTED = [[1.0, 0.75], [1.0, 0.8125], [0.5, 0.609375]]


@pytest.mark.parametrize("mode", ["step", "unroll"])
def test_grsn_soft_reset_trajectory(mode):
    layer = _grsn(None)
    assert layer.reset_mode == "soft" and layer.beta_learnable
    spikes, u, (c, uhat) = _run(layer, XS, mode)
    # neuron 0: u = .5, .5, .25 (reset to 0 after each spike); neuron 1: u = .375, .59375, .3515625
    expected_u = [[0.5, 0.375], [0.5, 0.59375], [0.25, 0.3515625]]
    assert torch.allclose(u, torch.tensor(expected_u, dtype=D), atol=1e-12)
    assert spikes.tolist() == [[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]
    assert torch.allclose(c, torch.tensor([C_EXPECTED[-1]], dtype=D), atol=1e-12)
    assert torch.allclose(uhat, torch.tensor([[0.25, 0.3515625]], dtype=D), atol=1e-12)


@pytest.mark.parametrize("mode", ["step", "unroll"])
def test_grsn_hard_reset_trajectory(mode):
    spikes, u, (c, uhat) = _run(_grsn("hard"), XS, mode)
    # neuron 1 spikes at t2 (u .59375) and is reset to 0, so u3 = .5*.609375 = .3046875
    expected_u = [[0.5, 0.375], [0.5, 0.59375], [0.25, 0.3046875]]
    assert torch.allclose(u, torch.tensor(expected_u, dtype=D), atol=1e-12)
    assert spikes.tolist() == [[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]
    assert torch.allclose(uhat, torch.tensor([[0.25, 0.3046875]], dtype=D), atol=1e-12)
