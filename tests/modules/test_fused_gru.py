"""modules.fused_gru: values and gradients equal autograd through nn.GRU's equations (float64)."""
import pytest
import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import PackedSequence

from modules.fused_gru import fused_gru


def _reference(x, sizes, w_ih, b_ih, w_hh, b_hh):
    """The GRU cell's equations in a Python loop under autograd (PyTorch gate order r, z, n)."""
    gi = F.linear(x, w_ih, b_ih)
    h = x.new_zeros(sizes[0], w_hh.shape[1])
    outs = []
    for n, gi_t in zip(sizes, gi.split(sizes)):
        h_prev = h[:n]
        i_r, i_z, i_n = gi_t.chunk(3, 1)
        h_r, h_z, h_n = F.linear(h_prev, w_hh, b_hh).chunk(3, 1)
        r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
        cand = torch.tanh(i_n + r * h_n)
        h = (1 - z) * cand + z * h_prev
        outs.append(h)
    return torch.cat(outs)


def _params(I, H, seed=0):
    g = torch.Generator().manual_seed(seed)
    shapes = [(3 * H, I), (3 * H,), (3 * H, H), (3 * H,)]
    return [torch.randn(*s, generator=g, dtype=torch.float64).mul_(0.5).requires_grad_() for s in shapes]


@pytest.mark.parametrize("sizes", [[4, 4, 4], [5, 5, 4, 2, 2, 1], [1]])
def test_values_and_all_gradients_equal_autograd_in_float64(sizes):
    I, H = 7, 6
    g = torch.Generator().manual_seed(1)
    x = torch.randn(sum(sizes), I, generator=g, dtype=torch.float64, requires_grad=True)
    params = _params(I, H)
    gy = torch.randn(sum(sizes), H, generator=g, dtype=torch.float64)
    want = _reference(x, sizes, *params)
    got = fused_gru(x, sizes, *params)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-13)
    g_want = torch.autograd.grad(want, [x] + params, gy)
    g_got = torch.autograd.grad(got, [x] + params, gy)
    for a, b in zip(g_got, g_want):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_equals_nn_gru_on_a_packed_sequence():
    gru = torch.nn.GRU(5, 4).double()
    sizes = [3, 2, 2, 1]
    x = torch.randn(sum(sizes), 5, dtype=torch.float64)
    with torch.no_grad():
        want, _ = gru(PackedSequence(x, torch.tensor(sizes)))
        got = fused_gru(x, sizes, gru.weight_ih_l0, gru.bias_ih_l0, gru.weight_hh_l0, gru.bias_hh_l0)
    torch.testing.assert_close(got, want.data, rtol=0, atol=1e-13)


def test_bad_sizes_are_one_clear_error():
    params = _params(3, 2)
    with pytest.raises(ValueError, match="non-increasing and sum to"):
        fused_gru(torch.zeros(5, 3, dtype=torch.float64), [2, 3], *params)
    with pytest.raises(ValueError, match="non-increasing and sum to"):
        fused_gru(torch.zeros(5, 3, dtype=torch.float64), [2, 2], *params)
