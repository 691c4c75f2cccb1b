import copy
from types import SimpleNamespace

import pytest
import torch

from components.episode_buffer import EpisodeBatch
from controllers.basic_controller import BasicMAC
from learners.q_learner import QLearner
from utils.logging import Logger

ENV_INFO = {"n_agents": 2, "n_actions": 3, "obs_shape": 4, "state_shape": 5, "episode_limit": 4}


def _args(mixer, agent="rnn", **kw):
    base = dict(agent=agent, rnn_hidden_dim=16, snn_hidden_dim=16, snn_threshold=1.0, snn_beta_init=0.5,
                snn_beta_learnable=None, surrogate_alpha=2.0, snn_reset=None, tap=True, snn_T=4,
                obs_agent_id=True, obs_last_action=True, action_selector="epsilon_greedy", epsilon_start=1.0,
                epsilon_finish=0.05, epsilon_anneal_time=100, n_actions=3, mixer=mixer, mixing_embed_dim=8,
                hypernet_layers=2, hypernet_embed=16, lr=0.01, optim_eps=1e-5, grad_norm_clip=10, gamma=0.9,
                td_lambda=0.6, double_q=True, target_update_interval=1000000, learner_log_interval=0)
    base.update(kw)
    return SimpleNamespace(**base)


def _batch():
    g = torch.Generator().manual_seed(0)
    b = EpisodeBatch.zeros(8, 4, 2, 4, 5, 3)
    b.obs.copy_(torch.randn(b.obs.shape, generator=g))
    b.state.copy_(torch.randn(b.state.shape, generator=g))
    b.avail_actions[:] = 1
    b.actions.copy_(torch.randint(0, 3, b.actions.shape, generator=g))
    b.reward.copy_((b.actions[..., 0] == 1).float())     # reward for agent 0 picking action 1
    b.filled[:, :3] = 1
    b.terminated[:, 2] = 1
    return b


@pytest.mark.parametrize("mixer,agent", [("qmix", "rnn"), ("vdn", "grsn"), (None, "lif")])
def test_loss_decreases_on_a_fixed_batch(mixer, agent):
    torch.manual_seed(0)
    args = _args(mixer, agent)
    mac = BasicMAC(ENV_INFO, args)
    logger = Logger()
    learner = QLearner(mac, ENV_INFO, args, logger)
    batch = _batch()
    losses = [learner.train(batch, t_env=i, episode=i)["loss"] for i in range(60)]
    assert losses[-1] < 0.5 * losses[0]
    assert logger.last("loss") == pytest.approx(losses[-1])


def test_target_network_is_frozen_until_update():
    torch.manual_seed(0)
    args = _args("qmix", target_update_interval=10)
    mac = BasicMAC(ENV_INFO, args)
    learner = QLearner(mac, ENV_INFO, args, Logger())
    before = [p.clone() for p in learner.target_mac.parameters()]
    learner.train(_batch(), t_env=0, episode=5)
    assert all(torch.equal(a, b) for a, b in zip(before, learner.target_mac.parameters()))
    learner.train(_batch(), t_env=1, episode=10)
    assert all(torch.equal(a, b) for a, b in zip(mac.parameters(), learner.target_mac.parameters()))


def test_nan_loss_is_a_clear_error():
    args = _args("vdn")
    mac = BasicMAC(ENV_INFO, args)
    learner = QLearner(mac, ENV_INFO, args, Logger())
    batch = _batch()
    batch.reward[0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match="TD loss at t_env=0 became nan"):
        learner.train(batch, t_env=0, episode=0)


# ---------------------------------------------------------------------------------------------
# Targets pinned by hand. The learner is trained once on a tiny batch whose online networks
# (agent and mixer) were moved away from the target copies taken at construction; the loss it
# reports must equal the loss recomputed here from the networks' outputs with the QMIX target
# written out independently: double-Q action choice from the online agent among available
# actions, its value from the target agent, mixed by the target mixer, the forward-view
# lambda-return (sum of n-step returns) with the configured gamma and td_lambda, and only the
# filled transitions counted.
# ---------------------------------------------------------------------------------------------


def hand_lambda_return(rewards, terminal, q_next, gamma, lam):
    """Forward-view lambda-return of one episode of N = len(rewards) transitions.

    ``q_next[t]`` is the target value of the state after transition t; ``terminal`` says whether
    the episode ended for real at its last transition (else it was cut by the time limit and the
    last n-step return bootstraps from ``q_next[N - 1]``).
        G_t = (1 - lam) * sum_{n=1}^{M-1} lam^(n-1) G_t^(n) + lam^(M-1) G_t^(M),   M = N - t
    """
    n_steps = len(rewards)
    out = []
    for t in range(n_steps):
        m = n_steps - t
        rets = []
        for n in range(1, m + 1):
            g = sum(gamma ** k * rewards[t + k] for k in range(n))
            last = t + n - 1
            if not (terminal and last == n_steps - 1):
                g += gamma ** n * q_next[last]
            rets.append(g)
        out.append(sum((1 - lam) * lam ** (n - 1) * rets[n - 1] for n in range(1, m)) + lam ** (m - 1) * rets[-1])
    return out


def test_hand_lambda_return_on_numbers_worked_out_on_paper():
    """The reference itself: rewards [1, 0, 2], next-state values [10, 20, 30], gamma = lambda = 0.5.
    Terminal: G_2 = 2; G_1 = .5 * (0 + .5 * 10) ... = .5 * 10 + .5 * 1 = 5.5; G_0 = .5 * 6 + .25 * 6
    + .25 * 1.5 = 4.875. Time-out: G_2 = 2 + .5 * 30 = 17, G_1 = 9.25, G_0 = 5.8125."""
    assert hand_lambda_return([1, 0, 2], True, [10, 20, 30], 0.5, 0.5) == pytest.approx([4.875, 5.5, 2.0])
    assert hand_lambda_return([1, 0, 2], False, [10, 20, 30], 0.5, 0.5) == pytest.approx([5.8125, 9.25, 17.0])
    # lambda = 0 is the one-step target, lambda = 1 the Monte-Carlo return
    assert hand_lambda_return([1, 0, 2], True, [10, 20, 30], 0.5, 0.0) == pytest.approx([6.0, 10.0, 2.0])
    assert hand_lambda_return([1, 0, 2], True, [10, 20, 30], 0.5, 1.0) == pytest.approx([1.5, 1.0, 2.0])


# episode lengths (filled transitions) and whether each ended for real: a time-out filling the
# whole buffer, two terminal episodes of different lengths, a time-out shorter than the buffer
EPISODES = [(5, False), (3, True), (2, True), (4, False)]


def _pin_batch():
    """4 episodes x 5 slots, 2 agents, 3 actions; random availability (>= 1 action each),
    taken actions available, and garbage in the padding (rewards, actions, terminal flags) that
    masking must ignore."""
    g = torch.Generator().manual_seed(7)
    b = EpisodeBatch.zeros(len(EPISODES), 5, 2, 4, 5, 3)
    b.obs.copy_(torch.randn(b.obs.shape, generator=g))
    b.state.copy_(torch.randn(b.state.shape, generator=g))
    avail = (torch.rand(b.avail_actions.shape, generator=g) < 0.6)
    avail[..., 0] |= ~avail.any(-1)
    b.avail_actions.copy_(avail.to(torch.uint8))
    scores = torch.rand(b.actions.shape + (3,), generator=g) + avail[:, :-1].float()
    b.actions.copy_(scores.argmax(-1))
    b.reward.copy_(torch.randn(b.reward.shape, generator=g))
    b.terminated.fill_(1.0)                      # padding garbage, overwritten below for real steps
    for i, (n, terminal) in enumerate(EPISODES):
        b.filled[i, :n] = 1
        b.terminated[i, :n] = 0
        b.terminated[i, n - 1] = float(terminal)
    return b


def _learner_with_moved_online_nets(mixer, double_q, td_lambda=0.6, gamma=0.9, packing="padded"):
    """A learner whose online agent and mixer differ from its targets; returns the learner and
    frozen copies of what its targets must be (the networks as they were at construction)."""
    torch.manual_seed(3)
    args = _args(mixer, double_q=double_q, td_lambda=td_lambda, gamma=gamma, learner_packing=packing)
    mac = BasicMAC(ENV_INFO, args)
    learner = QLearner(mac, ENV_INFO, args, Logger())
    target_mac, target_mixer = copy.deepcopy(mac), copy.deepcopy(learner.mixer)
    g = torch.Generator().manual_seed(11)
    with torch.no_grad():
        online = list(mac.parameters()) + (list(learner.mixer.parameters()) if learner.mixer else [])
        for p in online:
            p.add_(0.5 * torch.randn(p.shape, generator=g))
    return learner, args, target_mac, target_mixer


def _hand_loss(learner, args, target_mac, target_mixer, batch, *, lam=None, double_q=None, online_mixer_targets=False):
    """The TD loss and mean target recomputed from the networks' outputs. The keyword
    arguments compute deliberately wrong variants, to show that the test can tell them apart."""
    lam = args.td_lambda if lam is None else lam
    double_q = args.double_q if double_q is None else double_q
    avail = batch.avail_actions.bool()
    with torch.no_grad():
        q_online = learner.mac.unroll(batch)                         # [B, T+1, agents, n]
        q_target = target_mac.unroll(batch)
        chooser = q_online if double_q else q_target
        best = chooser.masked_fill(~avail, float("-inf")).argmax(-1, keepdim=True)
        v_agents = q_target.gather(-1, best).squeeze(-1)             # [B, T+1, agents]
        mixer_for_targets = learner.mixer if online_mixer_targets else target_mixer
        v = mixer_for_targets(v_agents, batch.state) if mixer_for_targets is not None else v_agents
        chosen = q_online[:, :-1].gather(-1, batch.actions.unsqueeze(-1)).squeeze(-1)
        q_taken = learner.mixer(chosen, batch.state[:, :-1]) if learner.mixer is not None else chosen
    sq, tsum, count = 0.0, 0.0, 0
    for i, (n, terminal) in enumerate(EPISODES):
        for col in range(v.shape[-1]):
            rewards = batch.reward[i, :n].tolist()
            targets = hand_lambda_return(rewards, terminal, v[i, 1:n + 1, col].tolist(), args.gamma, lam)
            for t, target in enumerate(targets):
                sq += (q_taken[i, t, col].item() - target) ** 2
                tsum += target
                count += 1
    return sq / count, tsum / count


@pytest.mark.parametrize("packing", ["padded", "packed"])
@pytest.mark.parametrize("mixer,double_q", [("qmix", True), ("qmix", False), ("vdn", True), (None, True)])
def test_td_loss_equals_hand_computed_targets(mixer, double_q, packing):
    """Catches: lambda=0 (or any other value) passed instead of ``td_lambda``; double Q disabled
    (max over the target agent's values) or forced; the online mixer used for the targets; the
    online agent used for target values; padded steps counted in the loss; unavailable actions
    chosen for the bootstrap. Each of these variants is computed below and must differ from the
    right one on this batch, so the comparison with the learner's loss can tell them apart."""
    learner, args, target_mac, target_mixer = _learner_with_moved_online_nets(mixer, double_q, packing=packing)
    batch = _pin_batch()
    want_loss, want_target_mean = _hand_loss(learner, args, target_mac, target_mixer, batch)
    # the batch and networks are discriminating: each wrong formula gives another loss
    wrong = {"lambda=0": dict(lam=0.0), "double_q flipped": dict(double_q=not double_q)}
    if mixer == "qmix":
        wrong["online mixer for targets"] = dict(online_mixer_targets=True)
    for name, kw in wrong.items():
        bad_loss, _ = _hand_loss(learner, args, target_mac, target_mixer, batch, **kw)
        assert abs(bad_loss - want_loss) > 1e-3 * want_loss, name

    stats = learner.train(batch, t_env=0, episode=0)
    assert stats["loss"] == pytest.approx(want_loss, rel=1e-5)
    assert stats["target_mean"] == pytest.approx(want_target_mean, rel=1e-5, abs=1e-6)
    assert learner.logger.last("loss") == pytest.approx(want_loss, rel=1e-5)


@pytest.mark.parametrize("packing", ["padded", "packed"])
@pytest.mark.parametrize("td_lambda", [0.0, 1.0])
def test_td_lambda_extremes_follow_the_config(td_lambda, packing):
    """Catches a learner that ignores ``td_lambda`` (hard-coded 0.6 or 0): lambda = 0 must give
    one-step targets and lambda = 1 Monte-Carlo returns with a bootstrap only at a time-out."""
    learner, args, target_mac, target_mixer = _learner_with_moved_online_nets("qmix", True, td_lambda=td_lambda,
                                                                              packing=packing)
    batch = _pin_batch()
    want_loss, _ = _hand_loss(learner, args, target_mac, target_mixer, batch)
    assert learner.train(batch, t_env=0, episode=0)["loss"] == pytest.approx(want_loss, rel=1e-5)
