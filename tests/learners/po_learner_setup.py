"""Small actors, critics, learners and window batches shared by the PO learner tests
(TD3 on 1 continuous action, SAC-discrete on 2 discrete actions; obs_dim 2 for both)."""
from types import SimpleNamespace
from typing import Dict

import numpy as np
import torch

from components.episode_replay import EpisodeReplay
from learners.sacd_po import SACDPOLearner
from learners.td3_po import TD3POLearner
from modules.agents.po_actor import POActor
from modules.critics.po_critic import POTwinCritic

# tiny networks: embedders 8/4/4 -> core 16 -> head [16]
PO_NET_ARGS = dict(po_obs_embed=8, po_action_embed=4, po_reward_embed=4, po_hidden_dim=16,
                   po_head_layers=[16], tap=True, snn_T=4, tau=0.005, actor_lr=1e-3, critic_lr=1e-3)
TD3_ALGO_ARGS = dict(gamma=0.9, expl_noise=0.1, target_noise=0.2, target_noise_clip=0.5, policy_delay=2)
SACD_ALGO_ARGS = dict(gamma=0.99, alpha_lr=1e-2, alpha_init=0.1, target_entropy_ratio=0.7)


def po_args(agent: str, algo_args: dict, **overrides) -> SimpleNamespace:
    """Args for a PO learner: the shared network settings, then ``algo_args``, then ``overrides``."""
    return SimpleNamespace(**{"agent": agent, **PO_NET_ARGS, **algo_args, **overrides})


def td3_args(agent: str = "gru", **overrides) -> SimpleNamespace:
    return po_args(agent, TD3_ALGO_ARGS, **overrides)


def sacd_args(agent: str = "gru", **overrides) -> SimpleNamespace:
    return po_args(agent, SACD_ALGO_ARGS, **overrides)


def td3_learner(agent: str = "gru", **overrides) -> TD3POLearner:
    """A seeded TD3 learner on obs_dim 2 with 1 continuous action."""
    torch.manual_seed(0)
    args = td3_args(agent, **overrides)
    return TD3POLearner(POActor(2, 1, False, args), POTwinCritic(2, 1, False, args), args)


def sacd_learner(agent: str = "gru", **overrides) -> SACDPOLearner:
    """A seeded SAC-discrete learner on obs_dim 2 with 2 discrete actions."""
    torch.manual_seed(0)
    args = sacd_args(agent, **overrides)
    return SACDPOLearner(POActor(2, 2, True, args), POTwinCritic(2, 2, True, args), args)


def continuous_windows(n: int = 12, L: int = 6, seed: int = 0) -> Dict[str, torch.Tensor]:
    """3 windows of length ``L`` from 2 episodes of ``n`` steps (1 action in [-1, 1], no
    terminals); the last window runs past its episode's end, so its mask has padding."""
    g = torch.Generator().manual_seed(seed)
    rb = EpisodeReplay(4, 2, 1, 20, seed=seed)
    for _ in range(2):
        obs = torch.randn(n + 1, 2, generator=g).numpy()
        act = torch.rand(n, 1, generator=g).numpy() * 2 - 1
        rew = torch.randn(n, generator=g).numpy()
        rb.add_episode(obs, act, rew, torch.zeros(n).numpy())
    return rb.get_windows([0, 1, 1], [0, 3, n - 4], seq_len=L)


def discrete_windows(n: int = 10, L: int = 6, seed: int = 0) -> Dict[str, torch.Tensor]:
    """3 windows of length ``L`` from 2 episodes of ``n`` steps (2 actions); the first episode
    ends in a terminal, the second in a time-out; the last window has padding."""
    rng = np.random.default_rng(seed)
    rb = EpisodeReplay(4, 2, 2, 20, discrete=True, seed=seed)
    for ep in range(2):
        term = np.zeros(n)
        term[-1] = float(ep == 0)
        rb.add_episode(rng.normal(size=(n + 1, 2)), rng.integers(0, 2, size=n), rng.normal(size=n), term)
    return rb.get_windows([0, 1, 0], [0, 2, n - 3], seq_len=L)


def double_learner(cls, agent: str, discrete: bool, algo_args: dict, **overrides):
    """A float64 learner of class ``cls`` (seeded the same for every call), obs_dim 2,
    1 continuous action or 2 discrete ones."""
    torch.manual_seed(0)
    args = po_args(agent, algo_args, **overrides)
    act_dim = 2 if discrete else 1
    actor = POActor(2, act_dim, discrete, args).double()
    critic = POTwinCritic(2, act_dim, discrete, args).double()
    return cls(actor, critic, args)


def run_updates(learner, batch: Dict[str, torch.Tensor], n: int) -> list:
    """``n`` updates on ``batch`` (float64), reseeding the global RNG before each so two learners
    draw the same noise; returns every update's stats."""
    batch = {k: v.double() for k, v in batch.items()}
    stats = []
    for i in range(n):
        torch.manual_seed(100 + i)
        stats.append(learner.train(batch))
    return stats


def assert_same_learning(a, b, stats_a: list, stats_b: list, tol: float = 1e-9) -> None:
    """Same stats at every update and the same parameters in every part after them."""
    for sa, sb in zip(stats_a, stats_b):
        for k in sa:
            assert abs(sa[k] - sb[k]) <= tol * (1 + abs(sa[k])) or (sa[k] != sa[k] and sb[k] != sb[k]), k
    for name, part in a.parts().items():
        if isinstance(part, torch.nn.Module):
            for (pn, pa), pb in zip(part.named_parameters(), b.parts()[name].parameters()):
                assert torch.allclose(pa, pb, rtol=0, atol=tol), f"{name}.{pn}"
