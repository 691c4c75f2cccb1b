"""SAC-discrete on episode windows: soft target, actor and temperature losses by hand."""
import math
import numpy as np
import pytest
import torch

from learners.sacd_po import (SACDPOLearner, categorical, sacd_actor_loss, sacd_alpha_loss,
                              sacd_target)
from modules.agents.po_actor import POActor
from modules.critics.po_critic import POTwinCritic
from po_learner_setup import discrete_windows, sacd_args, sacd_learner


def test_sacd_target_by_hand():
    rew = torch.tensor([[[1.0]], [[2.0]]])
    term = torch.tensor([[[0.0]], [[1.0]]])
    p = torch.tensor([[[0.25, 0.75]], [[0.5, 0.5]]])
    logp = p.log()
    q1 = torch.tensor([[[4.0, 1.0]], [[9.0, 9.0]]])
    q2 = torch.tensor([[[3.0, 2.0]], [[9.0, 9.0]]])
    y = sacd_target(rew, term, p, logp, q1, q2, alpha=0.5, gamma=0.9)
    v = 0.25 * (3.0 - 0.5 * math.log(0.25)) + 0.75 * (1.0 - 0.5 * math.log(0.75))
    assert y.flatten().tolist() == pytest.approx([1.0 + 0.9 * v, 2.0])


def test_sacd_actor_loss_by_hand():
    p = torch.tensor([[[0.2, 0.8]], [[0.6, 0.4]]])
    q1 = torch.tensor([[[1.0, 5.0]], [[2.0, 0.0]]])
    q2 = torch.tensor([[[2.0, 3.0]], [[1.0, 4.0]]])
    mask = torch.tensor([[[1.0]], [[0.0]]])  # second step is padding
    loss = sacd_actor_loss(p, p.log(), q1, q2, alpha=0.1, mask=mask)
    want = 0.2 * (0.1 * math.log(0.2) - 1.0) + 0.8 * (0.1 * math.log(0.8) - 3.0)
    assert loss.item() == pytest.approx(want)


def test_alpha_grows_when_entropy_below_target_and_shrinks_above():
    for entropy, direction in [(0.1, +1), (0.69, -1)]:
        log_alpha = torch.tensor(0.0, requires_grad=True)
        loss = sacd_alpha_loss(log_alpha, torch.full((3, 2, 1), entropy), 0.7 * math.log(2),
                               torch.ones(3, 2, 1))
        loss.backward()
        assert -log_alpha.grad.item() * direction > 0  # a gradient step moves log_alpha this way


def test_categorical_is_normalised():
    probs, logp = categorical(torch.tensor([[1.0, 2.0, 3.0]]))
    assert probs.sum().item() == pytest.approx(1.0)
    torch.testing.assert_close(probs.log(), logp)


@pytest.mark.parametrize("agent", ["gru", "lif"])
def test_learner_targets_match_stepwise_hand_computation(agent):
    learner = sacd_learner(agent)
    actor = learner.actor
    b = discrete_windows()
    got = learner.compute_targets(b)
    L, B = b["act"].shape[:2]
    alpha = learner.log_alpha.alpha().item()
    assert alpha == pytest.approx(0.1)
    tc = learner.target_critic
    checked = 0
    for i in range(B):
        sa, sc = actor.init_state(1), tc.init_state(1)
        for t in range(L + 1):
            o, pa, pr = b["obs"][t, i:i + 1], b["prev_act"][t, i:i + 1], b["prev_rew"][t, i:i + 1]
            logits, sa = actor.step(o, pa, pr, sa)
            h, sc = tc.step_features(o, pa, pr, sc)
            if t == 0 or b["mask"][t - 1, i, 0] == 0:
                continue
            p = torch.softmax(logits, -1)[0]
            q1, q2 = tc.q_values(h, o)
            v = (p * (torch.min(q1, q2)[0] - alpha * p.log())).sum()
            want = b["rew"][t - 1, i, 0] + 0.99 * (1 - b["term"][t - 1, i, 0]) * v
            assert got[t - 1, i, 0].item() == pytest.approx(want.item(), rel=1e-5, abs=1e-5)
            checked += 1
    assert checked == int(b["mask"].sum().item())
    assert b["term"].sum() == 1  # one window reaches the terminal step of episode 0


def test_train_step_updates_all_parts():
    learner = sacd_learner("grsn")
    actor, critic = learner.actor, learner.critic
    b = discrete_windows()
    a0 = [p.detach().clone() for p in actor.parameters()]
    c0 = [p.detach().clone() for p in critic.parameters()]
    la0 = learner.log_alpha.log_alpha.item()
    stats = learner.train(b)
    assert all(np.isfinite(v) for v in stats.values())
    assert set(stats) >= {"critic_loss", "actor_loss", "alpha", "entropy", "q_taken_mean", "target_mean"}
    assert any(not torch.equal(p, q) for p, q in zip(a0, actor.parameters()))
    assert any(not torch.equal(p, q) for p, q in zip(c0, critic.parameters()))
    assert learner.log_alpha.log_alpha.item() != la0
    assert learner.target_entropy == pytest.approx(0.7 * math.log(2))
    assert set(learner.parts()) >= {"actor", "critic", "target_critic", "log_alpha"}


def test_action_selection():
    args = sacd_args("mlp")
    learner = SACDPOLearner(POActor(2, 3, True, args), POTwinCritic(2, 3, True, args), args)
    logits = torch.tensor([[0.0, 5.0, 1.0], [9.0, 0.0, 0.0]])
    assert learner.select_action(logits, explore=False).tolist() == [1, 0]
    torch.manual_seed(0)
    samples = torch.stack([learner.select_action(torch.zeros(1, 3), explore=True) for _ in range(300)])
    assert set(samples.flatten().tolist()) == {0, 1, 2}


@pytest.mark.parametrize("agent", ["mlp", "gru", "lif", "grsn"])
def test_fast_update_learns_exactly_like_reference(agent):
    """po_update_impl=fast = reference in float64: same losses, alpha and parameters over 3 updates."""
    from po_learner_setup import SACD_ALGO_ARGS, assert_same_learning, double_learner, run_updates
    fast = double_learner(SACDPOLearner, agent, True, SACD_ALGO_ARGS, po_update_impl="fast")
    ref = double_learner(SACDPOLearner, agent, True, SACD_ALGO_ARGS, po_update_impl="reference")
    fast.log_alpha.double()
    ref.log_alpha.double()
    batch = discrete_windows()
    assert_same_learning(fast, ref, run_updates(fast, batch, 3), run_updates(ref, batch, 3))
