from types import SimpleNamespace

import pytest
import torch

from components.episode_buffer import EpisodeBatch
from controllers.basic_controller import BasicMAC


def _args(agent, **kw):
    base = dict(agent=agent, rnn_hidden_dim=16, snn_hidden_dim=16, snn_threshold=1.0, snn_beta_init=0.5,
                snn_beta_learnable=None, surrogate_alpha=2.0, snn_reset=None, tap=True, snn_T=4,
                obs_agent_id=True, obs_last_action=True, action_selector="epsilon_greedy",
                epsilon_start=1.0, epsilon_finish=0.05, epsilon_anneal_time=100, n_actions=5)
    base.update(kw)
    return SimpleNamespace(**base)


ENV_INFO = {"n_agents": 3, "n_actions": 5, "obs_shape": 7, "state_shape": 4, "episode_limit": 6}


@pytest.mark.parametrize("agent,tap", [("rnn", True), ("lif", True), ("grsn", True), ("grsn", False)])
def test_acting_step_by_step_equals_training_unroll(agent, tap):
    """The Q-values the runner sees while acting equal those the learner computes by unrolling."""
    torch.manual_seed(0)
    mac = BasicMAC(ENV_INFO, _args(agent, tap=tap))
    # make spiking layers fire: scale the encoder up
    with torch.no_grad():
        for p in mac.agent.parameters():
            p.mul_(3.0)
    B, T = 2, 6
    batch = EpisodeBatch.zeros(B, T, 3, 7, 4, 5)
    batch.obs.normal_()
    batch.actions.random_(0, 5)
    batch.filled[:] = 1
    q_unroll = mac.unroll(batch)                       # [B, T+1, agents, n]
    mac.init_hidden(B)
    last = torch.zeros(B, 3, 5)
    for t in range(T + 1):
        inputs = mac.build_inputs(batch.obs[:, t], last)
        q_t, mac.hidden = mac.agent(inputs, mac.hidden)
        assert torch.allclose(q_t, q_unroll[:, t], atol=1e-5), (agent, t)
        if t < T:
            last = torch.nn.functional.one_hot(batch.actions[:, t], 5).float()
    if agent != "rnn" and tap:
        # with TAP, state carried across steps matters: a reset-every-step unroll differs
        fresh = torch.stack([mac.agent(mac.build_inputs(batch.obs[:, t], torch.zeros(B, 3, 5) if t == 0 else
                             torch.nn.functional.one_hot(batch.actions[:, t - 1], 5).float()),
                             mac.agent.init_hidden(B * 3))[0] for t in range(T + 1)], 1)
        assert not torch.allclose(fresh, q_unroll, atol=1e-4)


def test_build_inputs_layout():
    mac = BasicMAC(ENV_INFO, _args("rnn"))
    obs = torch.randn(2, 3, 7)
    last = torch.zeros(2, 3, 5)
    last[:, :, 2] = 1
    x = mac.build_inputs(obs, last)
    assert x.shape == (2, 3, 7 + 5 + 3) and mac.input_shape == 15
    assert torch.equal(x[..., :7], obs) and torch.equal(x[..., 7:12], last)
    assert torch.equal(x[0, :, 12:], torch.eye(3))


def test_greedy_actions_respect_availability():
    mac = BasicMAC(ENV_INFO, _args("rnn"))
    mac.init_hidden(4)
    avail = torch.zeros(4, 3, 5)
    avail[..., 3] = 1
    acts = mac.act(torch.randn(4, 3, 7), torch.zeros(4, 3, 5), avail, t_env=0, test_mode=False)
    assert (acts == 3).all()
    mac.init_hidden(4)
    acts = mac.act(torch.randn(4, 3, 7), torch.zeros(4, 3, 5), avail, t_env=0, test_mode=True)
    assert (acts == 3).all()


@pytest.mark.parametrize("agent", ["rnn", "lif", "grsn"])
def test_stepwise_unroll_equals_sequence_unroll(agent):
    """``mac_unroll=stepwise`` (pymarl2's per-step loop, the speed baseline) gives the values and
    gradients of the default one-call ``sequence`` unroll."""
    batch = EpisodeBatch.zeros(2, 5, 3, 7, 4, 5)
    torch.manual_seed(1)
    batch.obs.normal_()
    batch.actions.random_(0, 5)
    batch.filled[:] = 1
    grads, qs = [], []
    for mode in ("sequence", "stepwise"):
        torch.manual_seed(0)
        mac = BasicMAC(ENV_INFO, _args(agent, mac_unroll=mode))
        with torch.no_grad():
            for p in mac.agent.parameters():
                p.mul_(3.0)
        q = mac.unroll(batch)
        (q ** 2).sum().backward()
        qs.append(q.detach())
        grads.append(torch.cat([p.grad.reshape(-1) for p in mac.parameters()]))
    assert torch.allclose(qs[0], qs[1], atol=1e-5)
    assert torch.allclose(grads[0], grads[1], rtol=1e-4, atol=1e-4)


def test_unknown_unroll_mode_is_a_clear_error():
    with pytest.raises(ValueError, match="mac_unroll must be one of"):
        BasicMAC(ENV_INFO, _args("rnn", mac_unroll="fast"))
