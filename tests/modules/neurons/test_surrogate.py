import math

import pytest
import torch

from modules.neurons.surrogate import SURROGATES, atan_grad, rect_grad, spike, surrogate_grad
from utils.registry import RegistryError


def _autograd_slope(kind, v, alpha=None):
    v = v.clone().requires_grad_()
    out = spike(v, kind, alpha)
    (g,) = torch.autograd.grad(out.sum(), v)
    return out.detach(), g


def test_forward_is_heaviside_with_one_at_zero():
    v = torch.tensor([-1.0, -1e-6, 0.0, 1e-6, 3.0])
    for kind in SURROGATES:
        out, _ = _autograd_slope(kind, v)
        assert out.tolist() == [0.0, 0.0, 1.0, 1.0, 1.0]


@pytest.mark.parametrize("alpha", [2.0, 4.0, 0.5])
def test_atan_gradient_matches_paper_formula(alpha):
    pts = [-2.0, -0.5, -0.1, 0.0, 0.1, 0.5, 2.0]
    v = torch.tensor(pts, dtype=torch.float64)
    _, g = _autograd_slope("atan", v, alpha)
    expected = [alpha / (2 * (1 + (math.pi / 2 * alpha * x) ** 2)) for x in pts]
    assert torch.allclose(g, torch.tensor(expected, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(atan_grad(v, alpha), g, atol=1e-12)


def test_atan_default_alpha_is_two():
    _, g = _autograd_slope("atan", torch.tensor([0.0, 0.5], dtype=torch.float64))
    # alpha = 2: slope alpha/2 = 1 at 0; 1 / (1 + (pi/2)^2) at 0.5
    assert g[0].item() == pytest.approx(1.0)
    assert g[1].item() == pytest.approx(1.0 / (1.0 + (math.pi / 2) ** 2))


def test_rect_gradient_is_box_of_height_one_over_width():
    pts = torch.tensor([-0.6, -0.49, 0.0, 0.3, 0.49, 0.5, 0.6], dtype=torch.float64)
    _, g = _autograd_slope("rect", pts)  # default width 1
    assert g.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0]
    _, g2 = _autograd_slope("rect", pts, 2.0)  # width 2: 0.5 inside |v| < 1
    assert g2.tolist() == [0.5] * 7
    assert torch.equal(rect_grad(pts, 2.0), g2)
    assert torch.equal(surrogate_grad(pts, "rect"), g)


def test_unknown_surrogate_lists_valid_names():
    with pytest.raises(RegistryError) as exc:
        spike(torch.zeros(2), "sigmoid")
    assert "atan" in str(exc.value) and "rect" in str(exc.value)


def test_no_grad_path_gives_same_spikes():
    v = torch.tensor([-0.3, 0.0, 0.7])
    for kind in SURROGATES:
        with torch.no_grad():
            assert spike(v.clone().requires_grad_(), kind).tolist() == [0.0, 1.0, 1.0]


def test_spike_functions_are_torchscript_compatible():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            scripted = torch.jit.script(SURROGATES["atan"])
        except Exception as exc:  # TorchScript removed in this torch build
            pytest.skip(f"TorchScript unavailable: {exc}")
    v = torch.tensor([-0.4, 0.0, 0.25], dtype=torch.float64, requires_grad=True)
    out = scripted(v, 2.0)
    (g,) = torch.autograd.grad(out.sum(), v)
    assert out.tolist() == [0.0, 1.0, 1.0]
    assert torch.allclose(g, atan_grad(v.detach(), 2.0))
