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
