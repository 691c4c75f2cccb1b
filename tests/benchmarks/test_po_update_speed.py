"""benchmarks/po_update_speed.py: the run-time projection by hand and the update breakdown."""
import os
import sys
from types import SimpleNamespace

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                "benchmarks"))
import po_update_speed  # noqa: E402
from components.episode_replay import EpisodeReplay  # noqa: E402
from learners.td3_po import TD3POLearner  # noqa: E402
from modules.agents.po_actor import POActor  # noqa: E402
from modules.critics.po_critic import POTwinCritic  # noqa: E402


def tiny_td3() -> TD3POLearner:
    args = SimpleNamespace(agent="gru", po_obs_embed=8, po_action_embed=4, po_reward_embed=4, po_hidden_dim=16,
                           po_head_layers=[16], tau=0.005, actor_lr=1e-3, critic_lr=1e-3, gamma=0.9,
                           expl_noise=0.1, target_noise=0.2, target_noise_clip=0.5, policy_delay=2)
    return TD3POLearner(POActor(2, 1, False, args), POTwinCritic(2, 1, False, args), args)


def test_projected_minutes_by_hand():
    args = SimpleNamespace(t_max=1000, test_interval=500, test_nepisode=2, po_updates_per_step=0.5)
    # 1000 steps x (10 ms x 0.5 + 1 ms acting) + 3 evaluations x 2 episodes x 200 steps x 1 ms
    got = po_update_speed.projected_minutes(args, update_ms=10.0, act_ms=1.0, episode_limit=200)
    assert got == pytest.approx((1000 * 6.0 + 1200 * 1.0) / 60_000)


def test_breakdown_times_every_section_of_a_td3_update():
    learner = tiny_td3()
    rng = np.random.default_rng(0)
    replay = EpisodeReplay(4, 2, 1, 20, seed=0)
    for _ in range(2):
        replay.add_episode(rng.normal(size=(13, 2)), rng.uniform(-1, 1, size=(12, 1)), rng.normal(size=12),
                           np.zeros(12))
    batches = [replay.sample(3, 5) for _ in range(2)]  # 2 updates: the second one trains the actor
    out = po_update_speed.breakdown(learner, replay, batches)
    for name in po_update_speed.SECTIONS:
        assert out[name] > 0, name
    assert out["adam_steps"] > 0 and out["replay_sample"] > 0
    assert sum(out[n] for n in po_update_speed.SECTIONS) + out["other"] >= out["total"] * 0.999
