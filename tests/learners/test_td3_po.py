"""TD3 on episode windows: target maths by hand, time alignment of h_{t+1}, delayed actor."""
import pytest
import torch

from learners.td3_po import TD3POLearner, masked_mean, smooth_target_action, td3_target
from modules.agents.po_actor import POActor
from modules.critics.po_critic import POTwinCritic
from po_learner_setup import continuous_windows, td3_args, td3_learner


def test_td3_target_by_hand():
    rew = torch.tensor([[[1.0]], [[-2.0]], [[0.5]]])
    term = torch.tensor([[[0.0]], [[0.0]], [[1.0]]])
    q1 = torch.tensor([[[3.0]], [[-1.0]], [[7.0]]])
    q2 = torch.tensor([[[2.0]], [[4.0]], [[-9.0]]])
    y = td3_target(rew, term, q1, q2, gamma=0.9)
    # 1 + 0.9 * min(3, 2); -2 + 0.9 * min(-1, 4); terminal: 0.5 only
    assert y.flatten().tolist() == pytest.approx([1 + 0.9 * 2, -2 - 0.9, 0.5])


def test_target_smoothing_clips_noise_then_action():
    a = torch.tensor([0.0, 0.9, -0.2, 0.3])
    noise = torch.tensor([0.7, 0.3, -0.1, -2.0])
    out = smooth_target_action(a, noise, noise_clip=0.5)
    assert out.tolist() == pytest.approx([0.5, 1.0, -0.3, -0.2])


def test_masked_mean_ignores_padding():
    x = torch.tensor([[[1.0]], [[3.0]], [[100.0]]])
    m = torch.tensor([[[1.0]], [[1.0]], [[0.0]]])
    assert masked_mean(x, m).item() == pytest.approx(2.0)


@pytest.mark.parametrize("agent", ["gru", "grsn"])
def test_learner_targets_match_stepwise_hand_computation(agent):
    learner = td3_learner(agent, target_noise=0.0)
    b = continuous_windows()
    got = learner.compute_targets(b)
    L, B = b["act"].shape[:2]
    ta, tc = learner.target_actor, learner.target_critic
    for i in range(B):
        sa, sc = ta.init_state(1), tc.init_state(1)
        for t in range(L + 1):  # walk the window one step at a time, as when acting
            o, pa, pr = b["obs"][t, i:i + 1], b["prev_act"][t, i:i + 1], b["prev_rew"][t, i:i + 1]
            mu, sa = ta.step(o, pa, pr, sa)
            hc, sc = tc.step_features(o, pa, pr, sc)
            if t == 0:
                continue
            q1, q2 = tc.q_values(hc, o, mu)
            want = b["rew"][t - 1, i] + 0.9 * torch.min(q1, q2)[0]
            if b["mask"][t - 1, i, 0] > 0:
                torch.testing.assert_close(got[t - 1, i], want, atol=1e-5, rtol=1e-5)


def test_terminal_step_does_not_bootstrap_but_timeout_does():
    torch.manual_seed(0)
    args = td3_args("mlp", target_noise=0.0)
    learner = TD3POLearner(POActor(2, 1, False, args), POTwinCritic(2, 1, False, args), args)
    b = continuous_windows()
    y_timeout = learner.compute_targets(b)
    b_term = dict(b)
    b_term["term"] = torch.ones_like(b["term"])
    y_term = learner.compute_targets(b_term)
    torch.testing.assert_close(y_term, b["rew"])
    assert not torch.allclose(y_timeout, b["rew"])


def test_actor_updates_every_policy_delay_and_critic_every_step():
    learner = td3_learner("gru", policy_delay=2)
    actor, critic = learner.actor, learner.critic
    b = continuous_windows()
    a0 = [p.detach().clone() for p in actor.parameters()]
    c0 = [p.detach().clone() for p in critic.parameters()]
    t0 = [p.detach().clone() for p in learner.target_critic.parameters()]
    stats = learner.train(b)
    assert all(torch.equal(p, q) for p, q in zip(a0, actor.parameters()))
    assert any(not torch.equal(p, q) for p, q in zip(c0, critic.parameters()))
    assert all(torch.equal(p, q) for p, q in zip(t0, learner.target_critic.parameters()))
    assert stats["critic_loss"] > 0
    c1 = [p.detach().clone() for p in critic.parameters()]
    stats = learner.train(b)
    assert any(not torch.equal(p, q) for p, q in zip(a0, actor.parameters()))
    assert any(not torch.equal(p, q) for p, q in zip(t0, learner.target_critic.parameters()))
    assert torch.isfinite(torch.tensor(stats["actor_loss"]))
    # the actor step leaves no gradient in the critic and all critic params stay trainable
    assert all(p.requires_grad for p in critic.parameters())
    assert any(not torch.equal(p, q) for p, q in zip(c1, critic.parameters()))


def test_critic_loss_is_the_masked_twin_mse_to_the_target():
    learner = td3_learner("grsn", target_noise=0.0)
    critic = learner.critic
    b = continuous_windows()
    y = learner.compute_targets(b)
    with torch.no_grad():
        feat, _ = critic.features(b["obs"], b["prev_act"], b["prev_rew"], critic.init_state(3))
        q1, q2 = critic.q_values(feat[:-1], b["obs"][:-1], b["act"])
    m = b["mask"]
    want = (((q1 - y) ** 2 * m).sum() + ((q2 - y) ** 2 * m).sum()) / m.sum()
    assert m.sum() < m.numel()  # the batch has padding that must be ignored
    assert learner.train(b)["critic_loss"] == pytest.approx(want.item(), rel=1e-5)


@pytest.mark.parametrize("agent", ["mlp", "gru", "lif", "grsn"])
def test_fast_update_learns_exactly_like_reference(agent):
    """po_update_impl=fast (fused Adam, shorter unrolls) = reference in float64: same losses,
    targets and parameters over 4 updates (2 of them with the delayed actor step)."""
    from po_learner_setup import TD3_ALGO_ARGS, assert_same_learning, double_learner, run_updates
    fast = double_learner(TD3POLearner, agent, False, TD3_ALGO_ARGS, po_update_impl="fast")
    ref = double_learner(TD3POLearner, agent, False, TD3_ALGO_ARGS, po_update_impl="reference")
    assert fast.actor_opt.param_groups[0]["fused"] and not ref.actor_opt.param_groups[0]["fused"]
    batch = continuous_windows()
    assert_same_learning(fast, ref, run_updates(fast, batch, 4), run_updates(ref, batch, 4))


def test_optimiser_state_from_the_other_impl_keeps_this_kernel():
    fast = td3_learner("mlp", po_update_impl="fast")
    ref = td3_learner("mlp", po_update_impl="reference")
    ref.train(continuous_windows())
    fast.critic_opt.load_state_dict(ref.critic_opt.state_dict())
    ref.critic_opt.load_state_dict(fast.critic_opt.state_dict())
    assert fast.critic_opt.param_groups[0]["fused"] is True
    assert ref.critic_opt.param_groups[0]["fused"] is None
    assert fast.critic_opt.state_dict()["state"][0]["step"].item() == 1.0


def test_unknown_update_impl_is_named():
    with pytest.raises(ValueError, match="po_update_impl must be one of"):
        td3_learner("mlp", po_update_impl="turbo")
