"""TD3 learner: modes, target actions (proxy vs soft-updated SNN copy), proxy fit, checkpoints."""
import copy
from types import SimpleNamespace

import pytest
import torch

from learners.td3_mujoco import TD3MujocoLearner, compute_target_actions, resolve_mode

OBS, ACT = 6, 2


def make_args(**kw):
    args = dict(actor_type="snn", proxy_target=False, device="cpu", gamma=0.99, tau=0.005,
                policy_delay=2, target_noise=0.2, target_noise_clip=0.5, actor_neuron="lif",
                popsan_T=5, popsan_enc_pop=10, popsan_dec_pop=10, popsan_hidden=[32, 32],
                popsan_enc_mean_range=[-1.0, 1.0], popsan_enc_std=0.15,
                mujoco_actor_hidden=[32, 32], mujoco_critic_hidden=[32, 32], actor_lr=3e-4,
                critic_lr=3e-4, proxy_lr=1e-3, proxy_steps=3, proxy_hidden=[64, 64],
                target_shift_states=0)
    args.update(kw)
    return SimpleNamespace(**args)


def proxy_obs(k=3, n=32, seed=1):
    return torch.randn(k, n, OBS, generator=torch.Generator().manual_seed(seed))


def make_batch(n=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"obs": torch.randn(n, OBS, generator=g), "actions": torch.rand(n, ACT, generator=g) * 2 - 1,
            "rewards": torch.randn(n, 1, generator=g), "next_obs": torch.randn(n, OBS, generator=g),
            "terminated": (torch.rand(n, 1, generator=g) < 0.1).float()}


def test_resolve_mode():
    assert resolve_mode("ann", False) == "ann"
    assert resolve_mode("snn", False) == "snn"
    assert resolve_mode("snn", True) == "proxy"
    with pytest.raises(ValueError, match="actor_type=snn"):
        resolve_mode("ann", True)
    with pytest.raises(ValueError, match="Valid: ann, snn"):
        resolve_mode("rnn", False)


def test_compute_target_actions_smoothing_is_clipped():
    max_a = torch.tensor([1.0, 2.0])
    policy = lambda o: torch.zeros(o.shape[0], 2)  # noqa: E731
    acts = compute_target_actions(policy, torch.zeros(5000, 3), max_a, noise_std=10.0, noise_clip=0.5)
    assert (acts[:, 0].abs() <= 0.5 + 1e-6).all() and (acts[:, 1].abs() <= 1.0 + 1e-6).all()
    assert acts[:, 1].abs().max() > 0.99                      # the clip is reached, per dimension
    near_edge = lambda o: torch.full((o.shape[0], 2), 1.9)  # noqa: E731
    acts = compute_target_actions(near_edge, torch.zeros(100, 3), max_a, 10.0, 0.5)
    assert (acts[:, 0] <= 1.0).all() and (acts[:, 1] <= 2.0).all()
    assert not acts.requires_grad


def test_proxy_mode_target_actions_come_from_proxy_only():
    torch.manual_seed(0)
    ln = TD3MujocoLearner(OBS, ACT, 1.0, make_args(proxy_target=True, target_noise=0.0))
    assert ln.mode == "proxy" and ln.actor_target is None and ln.target_policy is ln.proxy
    x = torch.randn(8, OBS)
    assert torch.allclose(ln.target_actions(x), ln.proxy(x))
    assert not torch.allclose(ln.target_actions(x), ln.actor(x))

    def boom(*a, **k):
        raise AssertionError("the spiking actor must not produce target actions")
    ln.actor.forward = boom
    ln.update_critic(make_batch())          # succeeds without ever calling the spiking actor


def test_snn_mode_target_is_soft_updated_copy_of_the_spiking_actor():
    torch.manual_seed(0)
    ln = TD3MujocoLearner(OBS, ACT, 1.0, make_args(target_noise=0.0))
    assert ln.mode == "snn" and ln.proxy is None and ln.target_policy is ln.actor_target
    assert type(ln.actor_target) is type(ln.actor)
    x = torch.randn(8, OBS)
    assert torch.allclose(ln.target_actions(x), ln.actor_target(x))
    old_target = copy.deepcopy(ln.actor_target)
    batch = make_batch()
    ln.train_step(batch)                    # critic only (delay 2): target unchanged
    for a, b in zip(old_target.parameters(), ln.actor_target.parameters()):
        assert torch.equal(a, b)
    ln.train_step(batch)                    # actor update, then polyak with tau
    changed = False
    for old, new, src in zip(old_target.parameters(), ln.actor_target.parameters(), ln.actor.parameters()):
        assert torch.allclose(new, 0.995 * old + 0.005 * src, atol=1e-6)
        changed |= not torch.equal(old, new)
    assert changed


def test_proxy_loss_decreases_towards_the_spiking_actor():
    torch.manual_seed(0)
    ln = TD3MujocoLearner(OBS, ACT, 1.0, make_args(proxy_target=True, proxy_hidden=[128, 128]))
    obs = torch.randn(3, 256, OBS)
    first = ln.update_proxy(obs)["proxy_loss_first"]
    for _ in range(60):
        stats = ln.update_proxy(obs)
    assert stats["proxy_loss"] < 0.2 * first
    with torch.no_grad():
        err = (ln.proxy(obs[2]) - ln.actor(obs[2])).pow(2).mean().item()
    assert err == pytest.approx(stats["proxy_loss"], rel=0.5)
    with pytest.raises(ValueError, match=r"\[proxy_steps=3, batch, obs_dim\]"):
        ln.update_proxy(obs[0])


def test_proxy_fit_uses_each_fresh_batch_once_in_order():
    """Adam step k fits fresh batch k (recorded proxy inputs); the SNN runs once, without grad."""
    torch.manual_seed(0)
    ln = TD3MujocoLearner(OBS, ACT, 1.0, make_args(proxy_target=True))
    seen = []
    forward = ln.proxy.forward
    ln.proxy.forward = lambda o: (seen.append(o.clone()), forward(o))[1]
    snn_calls = []
    actor_forward = ln.actor.forward
    ln.actor.forward = lambda o: (snn_calls.append(o.shape[0]), actor_forward(o))[1]
    obs = proxy_obs(n=8)
    stats = ln.update_proxy(obs)
    assert len(seen) == 3 and all(torch.equal(seen[k], obs[k]) for k in range(3))
    assert snn_calls == [24]                  # one no-grad SNN forward over the 3 x 8 states
    assert stats["proxy_loss_first"] > 0
    with pytest.raises(ValueError, match="needs proxy_obs"):
        ln.train_step(make_batch())


def test_ann_mode_and_train_step_stats():
    torch.manual_seed(0)
    ln = TD3MujocoLearner(OBS, ACT, [1.0, 3.0], make_args(actor_type="ann"))
    assert ln.mode == "ann" and ln.proxy is None
    s1 = ln.train_step(make_batch())
    s2 = ln.train_step(make_batch())
    assert "actor_loss" not in s1 and "actor_loss" in s2
    assert "proxy_loss" not in s2 and s2["critic_loss"] >= 0


def test_proxy_train_step_updates_proxy_every_step():
    torch.manual_seed(0)
    ln = TD3MujocoLearner(OBS, ACT, 1.0, make_args(proxy_target=True))
    before = copy.deepcopy(ln.proxy.state_dict())
    stats = ln.train_step(make_batch(), proxy_obs())
    assert "proxy_loss" in stats and "actor_loss" not in stats
    assert any(not torch.equal(before[k], v) for k, v in ln.proxy.state_dict().items())
    assert ln.proxy_optim.param_groups[0]["lr"] == 1e-3


def test_train_state_roundtrip_and_mode_check():
    torch.manual_seed(0)
    a = TD3MujocoLearner(OBS, ACT, 1.0, make_args(proxy_target=True))
    a.train_step(make_batch(), proxy_obs())
    state = a.train_parts()["train_state"].state_dict()
    b = TD3MujocoLearner(OBS, ACT, 1.0, make_args(proxy_target=True, actor_neuron="clif"))
    b.train_parts()["train_state"].load_state_dict(copy.deepcopy(state))
    assert b.n_updates == 1
    for k, v in a.proxy.state_dict().items():
        assert torch.equal(v, b.proxy.state_dict()[k])
    assert set(a.deploy_parts()) == {"actor"}
    c = TD3MujocoLearner(OBS, ACT, 1.0, make_args())
    with pytest.raises(ValueError, match="mode 'proxy'"):
        c.train_parts()["train_state"].load_state_dict(state)


@pytest.mark.parametrize("proxy", [False, True])
def test_target_shift_measures_the_change_of_target_actions(proxy):
    """target_shift = RMS((pi'_after - pi'_before) / max_action) on the first n next-states: the
    SNN copy moves only on actor steps (by tau of the way), the proxy on every step."""
    torch.manual_seed(0)
    ln = TD3MujocoLearner(OBS, ACT, 2.0, make_args(proxy_target=proxy, target_shift_states=8))
    batch = make_batch()
    before = copy.deepcopy(ln.target_policy)
    s1 = ln.train_step(batch, proxy_obs() if proxy else None)
    with torch.no_grad():
        expected = ((ln.target_policy(batch["next_obs"][:8]) - before(batch["next_obs"][:8])) / 2.0
                    ).pow(2).mean().sqrt().item()
    assert s1["target_shift"] == pytest.approx(expected, rel=1e-5, abs=1e-9)
    if proxy:
        assert s1["target_shift"] > 0
    else:
        assert s1["target_shift"] == 0.0         # critic-only step: the SNN copy did not move
    s0 = TD3MujocoLearner(OBS, ACT, 2.0, make_args(proxy_target=proxy)).train_step(
        batch, proxy_obs() if proxy else None)
    assert "target_shift" not in s0


def test_dn_sign_and_proxy_lr_reach_the_networks():
    ln = TD3MujocoLearner(OBS, ACT, 1.0, make_args(proxy_target=True, actor_neuron="dn",
                                                   dn_theta_u_sign=-1, proxy_lr=3e-3))
    assert all(layer.neuron.theta_u_sign == -1 for layer in ln.actor.layers)
    assert ln.proxy_optim.param_groups[0]["lr"] == 3e-3
    with pytest.raises(ValueError, match="proxy_lr must be > 0"):
        TD3MujocoLearner(OBS, ACT, 1.0, make_args(proxy_target=True, proxy_lr=0.0))
