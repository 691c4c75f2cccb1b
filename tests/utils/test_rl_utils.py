import torch

from utils.rl_utils import td_lambda_targets


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
