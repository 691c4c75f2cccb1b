import torch

from utils.rl_utils import frozen, soft_update, td_lambda_targets


def _hand_lambda(r, d, m, q, gamma, lam):
    """Forward-view lambda-return by direct summation of n-step returns (independent of the
    recursion in the implementation)."""
    T = len(r)
    L = int(sum(m))
    out = []
    for t in range(T):
        if not m[t]:
            out.append(0.0)
            continue
        # n-step returns G^(n), n = 1 .. L - t (the last one bootstraps from q[L] or stops at a terminal)
        rets = []
        for n in range(1, L - t + 1):
            g, disc, ended = 0.0, 1.0, False
            for k in range(t, t + n):
                g += disc * r[k]
                disc *= gamma
                if d[k]:
                    ended = True
                    break
            if not ended:
                g += disc * q[t + n]
            rets.append(g)
        n_max = len(rets)
        val = sum((1 - lam) * lam ** (n - 1) * rets[n - 1] for n in range(1, n_max)) + lam ** (n_max - 1) * rets[-1]
        out.append(val)
    return out


def test_td_lambda_matches_forward_view_terminal_and_truncated():
    gamma, lam = 0.9, 0.6
    cases = [
        # terminated episode of 3 steps in a buffer of 4
        ([1.0, 0.5, 2.0, 0.0], [0, 0, 1, 0], [1, 1, 1, 0], [0.3, 1.2, -0.7, 2.5, 9.0]),
        # time-limit episode filling all 4 steps: bootstraps from q[4]
        ([0.2, -1.0, 0.4, 1.5], [0, 0, 0, 0], [1, 1, 1, 1], [0.1, 0.8, 1.1, -0.2, 3.0]),
    ]
    r = torch.tensor([c[0] for c in cases])
    d = torch.tensor([c[1] for c in cases], dtype=torch.float32)
    m = torch.tensor([c[2] for c in cases], dtype=torch.float32)
    q = torch.tensor([c[3] for c in cases])
    got = td_lambda_targets(r, d, m, q, gamma, lam)
    for i, c in enumerate(cases):
        want = _hand_lambda(*c, gamma, lam)
        assert torch.allclose(got[i], torch.tensor(want), atol=1e-5), (i, got[i], want)


def test_td_lambda_zero_is_one_step_td():
    r = torch.tensor([[1.0, 2.0]])
    d = torch.tensor([[0.0, 1.0]])
    m = torch.ones(1, 2)
    q = torch.tensor([[5.0, 3.0, 7.0]])
    got = td_lambda_targets(r, d, m, q, gamma=0.5, td_lambda=0.0)
    assert torch.allclose(got, torch.tensor([[1.0 + 0.5 * 3.0, 2.0]]))


def test_soft_update_is_polyak():
    src, tgt = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    before = tgt.weight.detach().clone()
    soft_update(tgt, src, 0.25)
    torch.testing.assert_close(tgt.weight, 0.75 * before + 0.25 * src.weight.detach())
    bn_src, bn_tgt = torch.nn.BatchNorm1d(2), torch.nn.BatchNorm1d(2)
    bn_src.running_mean.fill_(4.0)
    bn_src.num_batches_tracked.fill_(7)
    soft_update(bn_tgt, bn_src, 0.5)
    assert bn_tgt.running_mean.tolist() == [2.0, 2.0]  # float buffers are averaged too
    assert int(bn_tgt.num_batches_tracked) == 7  # integer buffers are copied


def test_frozen_stops_gradients_and_restores_the_flags():
    net = torch.nn.Linear(2, 1)
    net.bias.requires_grad_(False)  # already frozen: must stay so afterwards
    with frozen(net):
        assert not any(p.requires_grad for p in net.parameters())
    assert net.weight.requires_grad and not net.bias.requires_grad
    try:
        with frozen(net):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert net.weight.requires_grad


def test_td_lambda_scan_equals_the_step_recursion_in_float64():
    """The doubling scan and the step-by-step recursion agree on random episodes of every length
    (terminated, cut by the time limit, empty), T from 1 to 70 (powers of two and not)."""
    from utils.rl_utils import td_lambda_targets_loop

    g = torch.Generator().manual_seed(3)
    for T in (1, 2, 3, 8, 33, 70):
        B = 9
        lengths = torch.randint(0, T + 1, (B,), generator=g)
        lengths[0] = T
        mask = (torch.arange(T).unsqueeze(0) < lengths.unsqueeze(1)).double()
        term = torch.zeros(B, T, dtype=torch.float64)
        for b in range(B):
            if lengths[b] > 0 and b % 2 == 0:
                term[b, lengths[b] - 1] = 1.0
        r = torch.randn(B, T, generator=g, dtype=torch.float64)
        q = torch.randn(B, T + 1, generator=g, dtype=torch.float64)
        for gamma, lam in ((0.99, 0.6), (0.5, 0.0), (1.0, 1.0)):
            got = td_lambda_targets(r, term, mask, q, gamma, lam)
            want = td_lambda_targets_loop(r, term, mask, q, gamma, lam)
            torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
            assert bool((got[mask == 0] == 0).all())
