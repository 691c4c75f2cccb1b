from types import SimpleNamespace

import pytest
import torch

from modules.mixers import REGISTRY
from utils.registry import RegistryError, lookup


def _args(layers=2):
    return SimpleNamespace(mixing_embed_dim=8, hypernet_layers=layers, hypernet_embed=16)


@pytest.mark.parametrize("layers", [1, 2])
def test_qmix_shapes_and_monotonicity(layers):
    torch.manual_seed(0)
    mixer = REGISTRY["qmix"](3, 5, _args(layers))
    qs = torch.randn(4, 6, 3, requires_grad=True)
    states = torch.randn(4, 6, 5)
    out = mixer(qs, states)
    assert out.shape == (4, 6, 1)
    grads = torch.autograd.grad(out.sum(), qs)[0]
    assert (grads >= 0).all()
    # and the mixer is not trivially constant
    assert grads.abs().sum() > 0


def test_qmix_depends_on_state():
    torch.manual_seed(1)
    mixer = REGISTRY["qmix"](2, 4, _args())
    qs = torch.randn(1, 1, 2)
    a = mixer(qs, torch.zeros(1, 1, 4))
    b = mixer(qs, torch.ones(1, 1, 4))
    assert not torch.allclose(a, b)


def test_vdn_is_sum():
    qs = torch.randn(2, 3, 4)
    assert torch.allclose(REGISTRY["vdn"]()(qs, None).squeeze(-1), qs.sum(-1))


def test_unknown_mixer_lists_valid_names():
    with pytest.raises(RegistryError, match="unknown mixer 'qmx'. Valid mixer names: qmix, vdn"):
        lookup(REGISTRY, "qmx", "mixer")
