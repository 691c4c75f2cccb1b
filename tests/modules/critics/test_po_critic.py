"""PO twin critic: the shortcut of [obs, action] (continuous) or obs (discrete), as wide as the core input."""
from types import SimpleNamespace

import pytest
import torch

from modules.critics.po_critic import POTwinCritic


def args(**over):
    d = dict(agent="mlp", po_obs_embed=4, po_action_embed=2, po_reward_embed=2, po_hidden_dim=6,
             po_head_layers=[5])
    d.update(over)
    return SimpleNamespace(**d)


def test_continuous_shortcut_embeds_obs_and_action():
    torch.manual_seed(0)
    critic = POTwinCritic(3, 2, False, args())
    assert (critic.shortcut.fc.in_features, critic.shortcut.fc.out_features) == (3 + 2, 4 + 2 + 2)
    assert critic.q1[0].in_features == 6 + 8 and critic.q1[-1].out_features == 1
    feat, obs, act = torch.randn(7, 6), torch.randn(7, 3), torch.randn(7, 2)
    q1, q2 = critic.q_values(feat, obs, act)
    with torch.no_grad():
        s = torch.relu(torch.cat([obs, act], -1) @ critic.shortcut.fc.weight.T + critic.shortcut.fc.bias)
        x = torch.cat([feat, s], -1)
    torch.testing.assert_close(q1, critic.q1(x))
    torch.testing.assert_close(q2, critic.q2(x))
    assert q1.shape == (7, 1)


def test_discrete_shortcut_embeds_obs_only():
    torch.manual_seed(0)
    critic = POTwinCritic(3, 2, True, args())
    assert (critic.shortcut.fc.in_features, critic.shortcut.fc.out_features) == (3, 8)
    feat, obs = torch.randn(7, 6), torch.randn(7, 3)
    q1, _ = critic.q_values(feat, obs)
    with torch.no_grad():
        want = critic.q1(torch.cat([feat, torch.relu(critic.shortcut.fc(obs))], -1))
    torch.testing.assert_close(q1, want)
    assert q1.shape == (7, 2)


def test_no_shortcut_heads_read_core_and_action_as_before():
    cont = POTwinCritic(3, 2, False, args(po_shortcut=False))
    disc = POTwinCritic(3, 2, True, args(po_shortcut=False))
    assert cont.shortcut is None and cont.q1[0].in_features == 6 + 2
    assert disc.shortcut is None and disc.q1[0].in_features == 6
    feat, obs, act = torch.randn(4, 6), torch.randn(4, 3), torch.randn(4, 2)
    torch.testing.assert_close(cont.q_values(feat, obs, act)[0], cont.q1(torch.cat([feat, act], -1)))


def test_continuous_critic_needs_the_action():
    critic = POTwinCritic(3, 2, False, args())
    with pytest.raises(ValueError, match="needs the action"):
        critic.q_values(torch.randn(4, 6), torch.randn(4, 3))


def test_authors_init_last_q_layer_within_3e_3():
    torch.manual_seed(0)
    critic = POTwinCritic(3, 2, False, args())
    for q in (critic.q1, critic.q2):
        assert torch.all(q[0].bias == 0.1)
        assert 1e-3 < q[-1].weight.abs().max() <= 3e-3


@pytest.mark.parametrize("shortcut", [True, False])
def test_const_feat_split_gives_the_same_q_and_action_gradient(shortcut):
    """The TD3 actor loss path (first layer split, feat constant) = the concatenated input, float64."""
    from utils.rl_utils import frozen
    torch.manual_seed(0)
    critic = POTwinCritic(3, 2, False, args(po_shortcut=shortcut)).double()
    feat = torch.randn(4, 5, critic.hidden_dim, dtype=torch.float64)
    obs = torch.randn(4, 5, 3, dtype=torch.float64)
    act = torch.rand(4, 5, 2, dtype=torch.float64, requires_grad=True)
    with frozen(critic):
        ref = critic.q_values(feat, obs, act)
        g_ref = torch.autograd.grad(sum(q.sum() for q in ref), act)[0]
        split = critic.q_values(feat, obs, act, const_feat=True)
        g_split = torch.autograd.grad(sum(q.sum() for q in split), act)[0]
    for a, b in zip(ref, split):
        assert torch.allclose(a, b, rtol=0, atol=1e-12)
    assert torch.allclose(g_ref, g_split, rtol=0, atol=1e-12) and g_ref.abs().sum() > 0


def test_const_feat_refuses_a_trainable_critic():
    critic = POTwinCritic(3, 2, False, args())
    with pytest.raises(ValueError, match="frozen critic"):
        critic.q_values(torch.randn(2, critic.hidden_dim), torch.randn(2, 3), torch.rand(2, 2), const_feat=True)
