"""Triton scan kernels (``triton_scan.py``) against the reference step loop and the torch kernels.

On CPU the kernels run under Triton's interpreter (``set_triton_mode("always")``); with a CUDA
device the compiled kernels are checked too. Skipped when Triton is not installed (optional).
"""
import numpy as np
import pytest
import torch

triton = pytest.importorskip("triton", reason="Triton is optional (GPU kernels); pip install -r requirements-gpu.txt")

from modules.neurons import REGISTRY, scan, triton_scan  # noqa: E402

ATOL, RTOL = 2e-5, 1e-4          # float32: the kernels and autograd sum in different orders


def _interpreter_problem():
    """Reason the installed Triton's interpreter cannot run kernels here, else None. Only the known
    incompatibility counts (Triton 3.6's interpreter with numpy >= 2.4: scalar arguments arrive as
    1-element arrays that ``range`` cannot take); any other error is the kernels' and fails."""
    try:
        triton_scan.membrane_scan(torch.ones(2, 1, 1), torch.zeros(1, 1), torch.full((1,), 0.5), 1.0, True)
    except Exception as exc:  # triton.runtime.errors.InterpreterError
        if "0-dimensional arrays can be converted" in str(exc):
            return (f"Triton {triton.__version__}'s interpreter does not run with numpy {np.__version__} "
                    f"({exc}); requirements-gpu.txt's Triton 3.9 does")
        raise
    return None


INTERPRETER_PROBLEM = _interpreter_problem()


@pytest.fixture
def triton_always():
    if INTERPRETER_PROBLEM:
        pytest.skip(INTERPRETER_PROBLEM)
    old = scan.set_triton_mode("always")
    yield
    scan.set_triton_mode(old)


def _layer(name, H, IN, **kw):
    torch.manual_seed(0)
    return REGISTRY[name](IN, H, **kw)


def _run(layer, x, state, mode, weights):
    """Spikes, final state and grads of a fixed loss w.r.t. params, x and the initial state."""
    x = x.clone().requires_grad_()
    state = tuple(s.clone().requires_grad_() for s in state)
    if mode == "step":
        outs, s = [], state
        for xt in x.unbind(0):
            o, s = layer.step(xt, s)
            outs.append(o)
        out = torch.stack(outs) if outs else x.new_zeros(0, x.shape[1], layer.hidden_dim)
    else:
        out, s = layer.unroll(x, state)
    loss = (out * weights).sum() + sum((si * (k + 1.5)).sum() for k, si in enumerate(s))
    params = list(layer.parameters())
    grads = torch.autograd.grad(loss, params + [x] + list(state), allow_unused=True)
    grads = [torch.zeros_like(p) if g is None else g for g, p in zip(grads, params + [x] + list(state))]
    return out.detach(), [si.detach() for si in s], grads


def _compare(layer, T, B, IN, device="cpu", seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(T, B, IN, generator=g) * 2.0
    state = tuple(torch.rand(B, layer.hidden_dim, generator=g) * 0.8 for _ in layer.state_names)
    w = torch.randn(T, B, layer.hidden_dim, generator=g)
    ref = _run(layer, x, state, "step", w)                       # reference on CPU
    dev = torch.device(device)
    layer_d = layer.to(dev)
    got = _run(layer_d, x.to(dev), tuple(s.to(dev) for s in state), "unroll", w.to(dev))
    layer.to("cpu")
    o1, s1, g1 = ref
    o2, s2, g2 = [got[0].cpu(), [s.cpu() for s in got[1]], [gg.cpu() for gg in got[2]]]
    assert torch.equal(o1, o2), f"spikes differ at {(o1 != o2).nonzero()[:5].tolist()}"
    for a, b in zip(s1, s2):
        torch.testing.assert_close(b, a, atol=ATOL, rtol=RTOL)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(b, a, atol=ATOL, rtol=RTOL)
    return o1, g1


# (T, B, H, IN): odd sizes, one step, several blocks of 128 neurons with a ragged tail
SIZES = [(7, 3, 5, 4), (1, 2, 3, 2), (4, 45, 7, 3)]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: "T{}B{}H{}".format(*s[:3]))
@pytest.mark.parametrize("reset", ["soft", "hard"])
@pytest.mark.parametrize("name", ["lif", "grsn"])
def test_triton_unroll_equals_step_loop(triton_always, name, reset, size):
    T, B, H, IN = size
    layer = _layer(name, H, IN, reset=reset, beta_learnable=True, threshold=0.4)
    spikes, grads = _compare(layer, T, B, IN)
    if T * B * H > 50:
        assert 0.05 < spikes.mean().item() < 0.95, "test needs both spikes and silence"
    assert all(g.abs().sum() > 0 for g in grads), "every gradient must be exercised"


@pytest.mark.parametrize("name", ["lif", "grsn"])
def test_triton_rect_surrogate_and_fixed_beta(triton_always, name):
    layer = _layer(name, 6, 3, surrogate="rect", surrogate_alpha=1.5, beta_learnable=False, threshold=0.4)
    _compare(layer, 5, 3, 3)


@pytest.mark.parametrize("name", ["lif", "grsn"])
def test_triton_zero_length_sequence_passes_state_through(triton_always, name):
    layer = _layer(name, 5, 3)
    state = tuple((torch.rand(2, 5) + 0.1).requires_grad_() for _ in layer.state_names)
    out, new = layer.unroll(torch.zeros(0, 2, 3), state)
    assert out.shape == (0, 2, 5)
    for a, b in zip(state, new):
        assert torch.equal(a.detach(), b.detach())
    loss = sum((s * (k + 2.0)).sum() for k, s in enumerate(new))
    grads = torch.autograd.grad(loss, list(state))
    for k, g in enumerate(grads):           # d(state_end)/d(state_0) = identity when T = 0
        assert torch.equal(g, torch.full_like(g, k + 2.0))


def test_triton_empty_batch(triton_always):
    layer = _layer("grsn", 4, 3)
    out, (c, uh) = layer.unroll(torch.zeros(3, 0, 3), layer.init_state(0))
    assert out.shape == (3, 0, 4) and c.shape == (0, 4) and uh.shape == (0, 4)


def test_membrane_kernel_hand_values(triton_always):
    """LIF soft reset, beta 0.5, theta 1, one neuron: currents 3, 0, 2 from uhat 0.
    u1 = 1.5 -> spike, uhat 0.5; u2 = 0.25 -> no spike; u3 = 0.125 + 1 = 1.125 -> spike, uhat 0.125."""
    cur = torch.tensor([3.0, 0.0, 2.0]).view(3, 1, 1)
    O, uhT, U = triton_scan.membrane_scan(cur, torch.zeros(1, 1), torch.full((1,), 0.5), 1.0, True)
    assert O.flatten().tolist() == [1.0, 0.0, 1.0]
    assert U.flatten().tolist() == [1.5, 0.25, 1.125]
    assert uhT.item() == 0.125


def test_gated_kernel_hand_values(triton_always):
    """f = sigmoid(0) = 0.5, j = relu(.): c1 = 0.5 * 1 + 0.5 * 3 = 2, c2 = 0.5 * 2 + 0.5 * 0 = 1."""
    pre = torch.tensor([[0.0, 3.0], [0.0, -4.0]]).view(2, 1, 2)
    C = triton_scan.gated_scan(pre, torch.ones(1, 1))
    assert C.flatten().tolist() == [2.0, 1.0]


@pytest.mark.parametrize("soft", [True, False])
def test_triton_functions_equal_torch_kernels(triton_always, soft):
    """Function level, float64, non-contiguous inputs, loss on spikes only: Triton == torch loops."""
    g = torch.Generator().manual_seed(5)
    T, B, H = 6, 4, 3
    pre = (torch.randn(B, T, 2 * H, generator=g, dtype=torch.float64) * 2).transpose(0, 1)
    c0, uh0 = torch.rand(2, B, H, generator=g, dtype=torch.float64)
    raw = torch.randn(H, generator=g, dtype=torch.float64)
    w = torch.randn(T, B, H, generator=g, dtype=torch.float64)
    results = []
    for mode in ("off", "always"):
        old = scan.set_triton_mode(mode)
        try:
            leaves = [t.clone().requires_grad_() for t in (pre, c0, uh0, raw)]
            p, c, u, r = leaves
            C = scan.gated_scan(p, c)
            O, _, U = scan.membrane_scan(C * 2.0, u, torch.sigmoid(r), 0.7, soft)
            grads = torch.autograd.grad((O * w).sum(), leaves)
        finally:
            scan.set_triton_mode(old)
        results.append((C.detach(), O, U, grads))
    assert 0.1 < results[0][1].mean().item() < 0.9
    for a, b in zip(results[0][:3], results[1][:3]):
        torch.testing.assert_close(b, a, atol=1e-12, rtol=1e-12)
    for a, b in zip(results[0][3], results[1][3]):
        assert a.abs().sum() > 0
        torch.testing.assert_close(b, a, atol=1e-12, rtol=1e-12)


def test_triton_mode_checks():
    with pytest.raises(ValueError, match="auto"):
        scan.set_triton_mode("gpu")
    old = scan.set_triton_mode("always")
    try:
        with pytest.raises(RuntimeError, match="float16"):
            scan.gated_scan(torch.zeros(2, 1, 4, dtype=torch.float16), torch.zeros(1, 2, dtype=torch.float16))
    finally:
        scan.set_triton_mode(old)


def test_auto_mode_keeps_cpu_tensors_on_torch_loops(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("Triton called for CPU tensors in auto mode")
    monkeypatch.setattr(triton_scan, "gated_scan", boom)
    monkeypatch.setattr(triton_scan, "membrane_scan", boom)
    layer = _layer("grsn", 4, 3)
    layer.unroll(torch.randn(3, 2, 3), layer.init_state(2))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (compiled Triton kernels)")
@pytest.mark.parametrize("reset", ["soft", "hard"])
@pytest.mark.parametrize("name", ["lif", "grsn"])
def test_compiled_kernels_on_cuda_equal_step_loop(name, reset):
    """Auto mode on CUDA tensors: compiled kernels vs the CPU step loop (the GPU check script runs this)."""
    assert scan._use_triton(torch.zeros(1, device="cuda"))
    layer = _layer(name, 70, 9, reset=reset, beta_learnable=True, threshold=0.4)
    _compare(layer, 13, 5, 9, device="cuda")
