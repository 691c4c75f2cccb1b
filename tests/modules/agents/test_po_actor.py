"""PO actor: the shortcut branch (po_shortcut) and the authors' head initialisation (po_head_init)."""
import math
from types import SimpleNamespace

import pytest
import torch

from modules.agents.po_actor import POActor


def args(**over):
    d = dict(agent="mlp", po_obs_embed=4, po_action_embed=2, po_reward_embed=2, po_hidden_dim=6,
             po_head_layers=[5])
    d.update(over)
    return SimpleNamespace(**d)


def test_shortcut_head_reads_core_output_then_relu_of_current_obs():
    torch.manual_seed(0)
    actor = POActor(3, 2, False, args())
    assert actor.shortcut.fc.in_features == 3 and actor.shortcut.fc.out_features == 4  # po_obs_embed
    assert actor.head[0].in_features == 6 + 4
    obs, pa, pr = torch.randn(5, 2, 3), torch.randn(5, 2, 2), torch.randn(5, 2, 1)
    out, _ = actor(obs, pa, pr, actor.init_state(2))
    with torch.no_grad():
        h = torch.relu(actor.core.fc(actor.embedder(obs, pa, pr)))        # mlp core
        s = torch.relu(obs @ actor.shortcut.fc.weight.T + actor.shortcut.fc.bias)
        want = torch.tanh(actor.head(torch.cat([h, s], -1)))
    torch.testing.assert_close(out, want)


def test_shortcut_carries_the_current_obs_when_the_core_output_is_fixed():
    torch.manual_seed(0)
    actor = POActor(3, 1, False, args(po_head_init="torch"))
    feat = torch.zeros(4, 6)
    obs = torch.randn(4, 3)
    a = actor.head_out(feat, obs)
    b = actor.head_out(feat, obs + 1.0)
    assert not torch.allclose(a, b)
    off = POActor(3, 1, False, args(po_shortcut=False))
    torch.testing.assert_close(off.head_out(feat, obs), off.head_out(feat, obs + 1.0))


def test_no_shortcut_gives_the_earlier_network():
    actor = POActor(3, 2, True, args(po_shortcut=False))
    assert actor.shortcut is None and actor.head[0].in_features == 6
    n_params = sum(p.numel() for p in actor.parameters())
    # embedders (3+1)*4 + (2+1)*2 + (1+1)*2, mlp core (8+1)*6, head (6+1)*5 + (5+1)*2
    assert n_params == 16 + 6 + 4 + 54 + 35 + 12


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_shortcut_flag_must_be_bool(value):
    with pytest.raises(ValueError, match="po_shortcut"):
        POActor(3, 1, False, args(po_shortcut=value))


def test_authors_head_init_bounds_and_bias():
    torch.manual_seed(0)
    actor = POActor(3, 1, False, args(po_head_layers=[64, 64]))  # default po_head_init = authors
    first, second, last = actor.head[0], actor.head[2], actor.head[4]
    for lin in (first, second):
        assert torch.all(lin.bias == 0.1)
        bound = 1.0 / math.sqrt(lin.in_features)  # fan-in = input width (10, then 64)
        assert lin.weight.abs().max() <= bound and lin.weight.abs().max() > 0.8 * bound
    assert last.weight.abs().max() <= 1e-3 and last.bias.abs().max() <= 1e-3
    assert last.weight.abs().max() > 0


def test_torch_head_init_keeps_the_default_and_bad_names_fail():
    torch.manual_seed(0)
    actor = POActor(3, 1, False, args(po_head_init="torch"))
    assert not torch.all(actor.head[0].bias == 0.1)
    assert actor.head[2].weight.abs().max() > 1e-3
    with pytest.raises(ValueError, match="po_head_init"):
        POActor(3, 1, False, args(po_head_init="xavier"))
