"""Population encoder and decoder: shapes, hand-computed spike trains and readouts, gradients."""
import math

import pytest
import torch

from modules.popsan.decoder import PopulationDecoder
from modules.popsan.encoder import PopulationEncoder


def test_encoder_shapes_and_means():
    enc = PopulationEncoder(obs_dim=3, pop=10, T=5)
    out = enc(torch.randn(4, 3))
    assert out.shape == (5, 4, 30)
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    assert enc.mean[0].tolist() == pytest.approx(torch.linspace(-1, 1, 10).tolist())


def test_encoder_regular_spike_trains_hand_computed():
    enc = PopulationEncoder(obs_dim=1, pop=2, T=5, mean_range=(0.0, 1.0), std=1.0, squash=False)
    with torch.no_grad():
        enc.std[0, 1] = 1.0 / math.sqrt(2 * math.log(2))   # activation of neuron 1 at x=0 is 0.5
    act = enc.activations(torch.zeros(1, 1))
    assert act[0].tolist() == pytest.approx([1.0, 0.5])
    spikes = enc(torch.zeros(1, 1))[:, 0, :]              # [T, 2]
    assert spikes[:, 0].tolist() == [1.0] * 5                       # a = 1 fires every step
    assert spikes[:, 1].tolist() == [0.0, 1.0, 0.0, 1.0, 0.0]       # a = 0.5 every second step


def test_encoder_squashes_with_tanh():
    enc = PopulationEncoder(obs_dim=1, pop=3, T=1)
    big = enc.activations(torch.tensor([[100.0]]))
    assert big[0].tolist() == pytest.approx(enc.activations(torch.tensor([[1e6]]))[0].tolist())
    assert big[0, 2].item() == pytest.approx(1.0)   # tanh(100) = 1 sits on the last mean


def test_encoder_gradients_reach_mean_and_std():
    enc = PopulationEncoder(obs_dim=2, pop=4, T=3)
    enc(torch.randn(5, 2)).sum().backward()
    assert enc.mean.grad.abs().sum() > 0 and enc.std.grad.abs().sum() > 0


def test_encoder_rejects_bad_input():
    with pytest.raises(ValueError, match="obs"):
        PopulationEncoder(obs_dim=3)(torch.zeros(2, 4))


def test_decoder_hand_computed():
    dec = PopulationDecoder(act_dim=2, pop=3)
    with torch.no_grad():
        dec.weight.copy_(torch.tensor([[1.0, 2.0, 3.0], [-1.0, 0.0, 1.0]]))
        dec.bias.copy_(torch.tensor([0.5, -0.5]))
    rates = torch.tensor([[0.2, 0.4, 0.6, 1.0, 0.0, 0.4]])
    out = dec(rates)
    assert out.shape == (1, 2)
    assert out[0].tolist() == pytest.approx([0.2 + 0.8 + 1.8 + 0.5, -1.0 + 0.4 - 0.5])
    with pytest.raises(ValueError, match="rates"):
        dec(torch.zeros(1, 5))
