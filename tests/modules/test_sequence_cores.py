"""Sequence cores: unroll == repeated step, and the actor's act-time state threading equals the
training unroll of the same stored episode (zero initial state, window from the episode start)."""
from types import SimpleNamespace

import pytest
import torch

from components.episode_replay import EpisodeReplay
from envs.pomdp import make_pomdp_env
from learners.sacd_po import SACDPOLearner
from learners.td3_po import TD3POLearner
from modules.agents.po_actor import POActor
from modules.critics.po_critic import POTwinCritic
from modules.sequence_cores import CORES, build_core
from run.po_rl import EpisodeRunner
from utils.registry import RegistryError

ALL = ["mlp", "gru", "lif", "grsn"]


def _args(agent: str, **kw) -> SimpleNamespace:
    d = dict(agent=agent, po_obs_embed=8, po_action_embed=4, po_reward_embed=4, po_hidden_dim=16,
             po_head_layers=[16], tap=True, snn_T=4, snn_threshold=None, snn_beta_init=None,
             snn_beta_learnable=None, surrogate_alpha=None, snn_reset=None,
             gamma=0.9, tau=0.005, actor_lr=3e-4, critic_lr=3e-4, expl_noise=0.1, target_noise=0.2,
             target_noise_clip=0.5, policy_delay=2, alpha_lr=3e-4, alpha_init=0.1,
             target_entropy_ratio=0.7)
    d.update(kw)
    return SimpleNamespace(**d)


def test_registry_has_the_four_cores_and_rejects_others():
    assert set(CORES) == set(ALL)
    with pytest.raises(RegistryError, match="grsn"):
        build_core("lstm", 4, 8, _args("lstm"))


@pytest.mark.parametrize("name", ALL)
def test_unroll_equals_repeated_step(name):
    torch.manual_seed(0)
    core = build_core(name, 6, 16, _args(name))
    x = torch.randn(9, 3, 6) * 3.0
    outs, state_u = core.unroll(x, core.init_state(3))
    state = core.init_state(3)
    steps = []
    for t in range(9):
        o, state = core.step(x[t], state)
        steps.append(o)
    torch.testing.assert_close(outs, torch.stack(steps), atol=1e-5, rtol=1e-5)
    assert len(state) == len(state_u)
    for a, b in zip(state, state_u):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    if name in ("lif", "grsn"):
        assert set(outs.unique().tolist()) <= {0.0, 1.0}
        assert outs.sum() > 0, "input too weak: the test would not see any spikes"


@pytest.mark.parametrize("name", ALL)
def test_history_changes_later_outputs_only_for_recurrent_cores(name):
    torch.manual_seed(1)
    core = build_core(name, 6, 16, _args(name))
    x = torch.randn(6, 4, 6) * 3.0
    x2 = x.clone()
    x2[0] = torch.randn(4, 6) * 3.0  # change only the first step
    a, _ = core.unroll(x, core.init_state(4))
    b, _ = core.unroll(x2, core.init_state(4))
    later_differs = not torch.equal(a[1:], b[1:])
    assert later_differs == (name != "mlp")


@pytest.mark.parametrize("name", ["lif", "grsn"])
def test_no_tap_is_stateless_rate_coding(name):
    torch.manual_seed(2)
    core = build_core(name, 6, 16, _args(name, tap=False, snn_T=4))
    assert core.init_state(5) == ()
    x = torch.randn(7, 5, 6) * 3.0
    outs, state = core.unroll(x, ())
    assert state == ()
    # rate over 4 steps: multiples of 1/4, and each step independent of the history
    assert torch.allclose(outs * 4, (outs * 4).round())
    o3, _ = core.step(x[3], ())
    torch.testing.assert_close(outs[3], o3)
    # reference: explicit reset + repeat through the neuron layer
    ref, _ = core.layer.unroll(x[3].unsqueeze(0).repeat(4, 1, 1), core.layer.init_state(5))
    torch.testing.assert_close(o3, ref.mean(0))


def _play_and_check(name: str, key: str, learner_cls) -> None:
    torch.manual_seed(3)
    env = make_pomdp_env(seed=4, key=key, max_episode_steps=40)
    args = _args(name)
    actor = POActor(env.obs_dim, env.act_dim, env.discrete, args)
    critic = POTwinCritic(env.obs_dim, env.act_dim, env.discrete, args)
    learner = learner_cls(actor, critic, args)
    # record what the actor outputs at act time while it threads its state
    outs, states = [], []
    orig_step = actor.step

    def recording_step(obs, pa, pr, state):
        out, new_state = orig_step(obs, pa, pr, state)
        outs.append(out.clone())
        states.append(tuple(s.clone() for s in new_state))
        return out, new_state

    actor.step = recording_step
    ep = EpisodeRunner(env, actor, learner, torch.device("cpu")).run("explore")
    n = ep["rew"].shape[0]
    assert len(outs) == n and n >= 5
    replay = EpisodeReplay(4, env.obs_dim, env.act_dim, 40, discrete=env.discrete)
    replay.add_episode(ep["obs"], ep["act"], ep["rew"], ep["term"])
    b = replay.get_windows([0], [0], seq_len=n)
    with torch.no_grad():
        train_out, train_state = POActor.forward(actor, b["obs"][:n], b["prev_act"][:n], b["prev_rew"][:n],
                                                 actor.init_state(1))
    torch.testing.assert_close(train_out[:, 0], torch.cat(outs), atol=1e-5, rtol=1e-5)
    for a, s in zip(train_state, states[-1]):
        torch.testing.assert_close(a, s, atol=1e-5, rtol=1e-5)
    if name != "mlp":
        assert len(train_state) >= 1


@pytest.mark.parametrize("name", ALL)
def test_act_time_threading_equals_training_unroll_continuous(name):
    _play_and_check(name, "Pendulum-P", TD3POLearner)


@pytest.mark.parametrize("name", ["gru", "grsn"])
def test_act_time_threading_equals_training_unroll_discrete(name):
    _play_and_check(name, "CartPole-V", SACDPOLearner)


def test_spiking_core_refuses_snn_T_zero_instead_of_using_4():
    """snn_T=0 used to become 4 silently (`or 4`); it must be the error that names snn_T."""
    from types import SimpleNamespace

    with pytest.raises(ValueError, match="snn_T must be >= 1, got 0"):
        build_core("grsn", 6, 8, SimpleNamespace(tap=False, snn_T=0))
