"""TD3 on sampled episode windows with recurrent (or spiking) actor and twin critic.

The pure functions (``masked_mean``, ``smooth_target_action``, ``td3_target``) hold the maths
so tests can check them by hand. Shapes: time-major windows ``[L, B, ...]`` with ``mask [L, B, 1]``;
sequence inputs (obs, prev_act, prev_rew) have ``L + 1`` steps so that the features of the
next observation ``h_{t+1}`` come out of the same unroll as ``h_t``.
"""
from __future__ import annotations

import copy
from typing import Any, Dict

import torch
from torch import Tensor, nn

from utils.optim import gradient_step
from utils.rl_utils import frozen, soft_update


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``x`` over entries where ``mask`` is 1 (``mask`` broadcasts to ``x``)."""
    mask = mask.expand_as(x)
    return (x * mask).sum() / mask.sum().clamp(min=1.0)


def smooth_target_action(action: Tensor, noise: Tensor, noise_clip: float) -> Tensor:
    """TD3 target policy smoothing: ``clip(action + clip(noise, -c, c), -1, 1)``."""
    return (action + noise.clamp(-noise_clip, noise_clip)).clamp(-1.0, 1.0)


def td3_target(rew: Tensor, term: Tensor, q1_next: Tensor, q2_next: Tensor, gamma: float) -> Tensor:
    """Clipped double-Q target ``r + gamma * (1 - term) * min(q1', q2')`` (all ``[L, B, 1]``).

    ``term`` marks true terminations only; a time-out bootstraps like any other step.
    """
    return rew + gamma * (1.0 - term) * torch.min(q1_next, q2_next)


#: What to do when a PO-control loss becomes NaN/inf (shared by TD3 and SAC-discrete).
PO_DIVERGENCE_HINT = ("Lower actor_lr/critic_lr, check the reward scale, or try another seed; "
                      "the last checkpoint is under results/models/.")


class TD3POLearner:
    """TD3 (Fujimoto et al. 2018) over windows: clipped double Q, target smoothing, delayed actor.

    Keys read from ``args``: gamma, tau, actor_lr, critic_lr, target_noise, target_noise_clip,
    policy_delay, expl_noise.
    """

    def __init__(self, actor: nn.Module, critic: nn.Module, args: Any) -> None:
        if actor.discrete:
            raise ValueError("TD3 needs continuous actions (Pendulum-*); use --config=sacd for CartPole-*.")
        self.actor, self.critic = actor, critic
        self.target_actor = copy.deepcopy(actor).requires_grad_(False)
        self.target_critic = copy.deepcopy(critic).requires_grad_(False)
        self.gamma = float(args.gamma)
        self.tau = float(args.tau)
        self.target_noise = float(args.target_noise)
        self.target_noise_clip = float(args.target_noise_clip)
        self.policy_delay = max(1, int(args.policy_delay))
        self.expl_noise = float(args.expl_noise)
        self.actor_opt = torch.optim.Adam(actor.parameters(), lr=float(args.actor_lr))
        self.critic_opt = torch.optim.Adam(critic.parameters(), lr=float(args.critic_lr))
        self.n_updates = 0
        self._last_actor_loss = float("nan")

    def select_action(self, out: Tensor, explore: bool) -> Tensor:
        """Actor output ``[B, act_dim]`` in [-1, 1] -> action; exploration adds N(0, expl_noise)."""
        if not explore:
            return out
        return (out + self.expl_noise * torch.randn_like(out)).clamp(-1.0, 1.0)

    @torch.no_grad()
    def compute_targets(self, batch: Dict[str, Tensor]) -> Tensor:
        """TD targets ``[L, B, 1]`` for the window batch: target actor and target critic unrolled
        from a zero state over the ``L + 1`` observations; step ``t`` bootstraps from ``h_{t+1}``."""
        obs, pa, pr = batch["obs"], batch["prev_act"], batch["prev_rew"]
        B = obs.shape[1]
        mu_next, _ = self.target_actor(obs, pa, pr, self.target_actor.init_state(B))
        noise = self.target_noise * torch.randn_like(mu_next[1:])
        a_next = smooth_target_action(mu_next[1:], noise, self.target_noise_clip)
        feat_t, _ = self.target_critic.features(obs, pa, pr, self.target_critic.init_state(B))
        q1n, q2n = self.target_critic.q_values(feat_t[1:], obs[1:], a_next)
        return td3_target(batch["rew"], batch["term"], q1n, q2n, self.gamma)

    def train(self, batch: Dict[str, Tensor]) -> Dict[str, float]:
        """One update on a window batch (see EpisodeReplay.get_windows); returns scalar stats."""
        obs, pa, pr = batch["obs"], batch["prev_act"], batch["prev_rew"]
        act, mask = batch["act"], batch["mask"]
        B = obs.shape[1]
        target = self.compute_targets(batch)
        feat, _ = self.critic.features(obs, pa, pr, self.critic.init_state(B))
        q1, q2 = self.critic.q_values(feat[:-1], obs[:-1], act)
        critic_loss = masked_mean((q1 - target) ** 2, mask) + masked_mean((q2 - target) ** 2, mask)
        gradient_step(self.critic_opt, critic_loss, f"TD3 critic_loss at update {self.n_updates}",
                      PO_DIVERGENCE_HINT)
        self.n_updates += 1

        if self.n_updates % self.policy_delay == 0:
            mu, _ = self.actor(obs, pa, pr, self.actor.init_state(B))
            with torch.no_grad():
                feat_c, _ = self.critic.features(obs, pa, pr, self.critic.init_state(B))
            with frozen(self.critic):  # the actor loss only trains the actor
                q1_pi, q2_pi = self.critic.q_values(feat_c[:-1], obs[:-1], mu[:-1])
                actor_loss = -masked_mean(torch.min(q1_pi, q2_pi), mask)
                gradient_step(self.actor_opt, actor_loss, f"TD3 actor_loss at update {self.n_updates}",
                              PO_DIVERGENCE_HINT)
            soft_update(self.target_actor, self.actor, self.tau)
            soft_update(self.target_critic, self.critic, self.tau)
            self._last_actor_loss = float(actor_loss.item())
        return {"critic_loss": float(critic_loss.item()), "actor_loss": self._last_actor_loss,
                "q_taken_mean": float(masked_mean(q1.detach(), mask).item()),
                "target_mean": float(masked_mean(target, mask).item())}

    def parts(self) -> Dict[str, Any]:
        """Everything a checkpoint holds (each has state_dict/load_state_dict)."""
        return {"actor": self.actor, "critic": self.critic, "target_actor": self.target_actor,
                "target_critic": self.target_critic, "actor_opt": self.actor_opt,
                "critic_opt": self.critic_opt, "learner": self}

    def state_dict(self) -> Dict[str, Any]:
        """The learner's own counters (its networks are the other parts): the update count
        (policy delay) and the actor loss last reported."""
        return {"n_updates": int(self.n_updates), "last_actor_loss": float(self._last_actor_loss)}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.n_updates = int(state["n_updates"])
        self._last_actor_loss = float(state["last_actor_loss"])
