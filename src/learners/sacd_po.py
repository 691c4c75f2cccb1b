"""SAC-discrete (Christodoulou 2019) on sampled episode windows, recurrent actor and twin critic.

The maths lives in pure functions (``sacd_target``, ``sacd_actor_loss``, ``sacd_alpha_loss``)
that tests check by hand. Shapes as in learners.td3_po: windows ``[L, B, ...]``, ``mask [L, B, 1]``,
sequence inputs with ``L + 1`` steps; Q and policy tensors ``[L, B, n_actions]``.
"""
from __future__ import annotations

import copy
import math
from typing import Any, Dict, Tuple

import torch
from torch import Tensor, nn
from torch.profiler import record_function

from learners.td3_po import PO_DIVERGENCE_HINT, history, make_adam, masked_mean, update_impl
from utils.optim import gradient_step
from utils.rl_utils import soft_update


def categorical(logits: Tensor) -> Tuple[Tensor, Tensor]:
    """``logits [..., n]`` -> ``(probs, log_probs)``, both ``[..., n]`` (numerically stable)."""
    log_probs = torch.log_softmax(logits, dim=-1)
    return log_probs.exp(), log_probs


def sacd_target(rew: Tensor, term: Tensor, probs_next: Tensor, log_probs_next: Tensor,
                q1_next: Tensor, q2_next: Tensor, alpha: float | Tensor, gamma: float) -> Tensor:
    """Soft target ``r + gamma (1 - term) sum_a pi(a|h') [min(Q1', Q2')(h', a) - alpha log pi(a|h')]``.

    ``rew``, ``term``: ``[L, B, 1]``; policy and Q tensors ``[L, B, n]``; returns ``[L, B, 1]``.
    """
    v_next = (probs_next * (torch.min(q1_next, q2_next) - alpha * log_probs_next)).sum(-1, keepdim=True)
    return rew + gamma * (1.0 - term) * v_next


def sacd_actor_loss(probs: Tensor, log_probs: Tensor, q1: Tensor, q2: Tensor,
                    alpha: float | Tensor, mask: Tensor) -> Tensor:
    """Masked mean over steps of ``sum_a pi(a|h) [alpha log pi(a|h) - min(Q1, Q2)(h, a)]``."""
    per_step = (probs * (alpha * log_probs - torch.min(q1, q2))).sum(-1, keepdim=True)
    return masked_mean(per_step, mask)


def sacd_alpha_loss(log_alpha: Tensor, entropy: Tensor, target_entropy: float, mask: Tensor) -> Tensor:
    """``log_alpha * (H(pi) - H_target)`` averaged over real steps: alpha grows while the policy's
    entropy ``entropy [L, B, 1]`` (no gradient) is below the target, and shrinks above it."""
    return masked_mean(log_alpha * (entropy.detach() - target_entropy), mask)


class LogAlpha(nn.Module):
    """The learnable temperature as ``log alpha`` (a module so checkpoints carry it)."""

    def __init__(self, alpha_init: float) -> None:
        super().__init__()
        if alpha_init <= 0:
            raise ValueError(f"alpha_init must be > 0, got {alpha_init}.")
        self.log_alpha = nn.Parameter(torch.tensor(math.log(alpha_init), dtype=torch.float32))

    def alpha(self) -> Tensor:
        return self.log_alpha.exp()


class SACDPOLearner:
    """SAC-discrete with automatic temperature: target entropy ``target_entropy_ratio * log n``.

    Keys read from ``args``: gamma, tau, actor_lr, critic_lr, alpha_lr, alpha_init,
    target_entropy_ratio, po_update_impl.
    """

    def __init__(self, actor: nn.Module, critic: nn.Module, args: Any) -> None:
        if not actor.discrete:
            raise ValueError("SAC-discrete needs discrete actions (CartPole-*); use --config=td3 for Pendulum-*.")
        self.actor, self.critic = actor, critic
        self.target_critic = copy.deepcopy(critic).requires_grad_(False)
        self.gamma = float(args.gamma)
        self.tau = float(args.tau)
        dev = next(actor.parameters()).device
        self.log_alpha = LogAlpha(float(args.alpha_init)).to(dev)
        self.target_entropy = float(args.target_entropy_ratio) * math.log(actor.act_dim)
        self.impl = update_impl(args)
        self.actor_opt = make_adam(actor.parameters(), float(args.actor_lr), self.impl)
        self.critic_opt = make_adam(critic.parameters(), float(args.critic_lr), self.impl)
        self.alpha_opt = make_adam(self.log_alpha.parameters(), float(args.alpha_lr), self.impl)
        self.n_updates = 0

    def select_action(self, out: Tensor, explore: bool) -> Tensor:
        """Logits ``[B, n]`` -> action indices ``[B]``: sampled when exploring, else argmax."""
        if not explore:
            return out.argmax(-1)
        return torch.distributions.Categorical(logits=out).sample()

    @torch.no_grad()
    def _targets(self, batch: Dict[str, Tensor], probs_next: Tensor, log_probs_next: Tensor,
                 alpha: Tensor) -> Tensor:
        obs, pa, pr = batch["obs"], batch["prev_act"], batch["prev_rew"]
        feat_t, _ = self.target_critic.features(obs, pa, pr, self.target_critic.init_state(obs.shape[1]))
        q1n, q2n = self.target_critic.q_values(feat_t[1:], obs[1:])
        return sacd_target(batch["rew"], batch["term"], probs_next, log_probs_next, q1n, q2n,
                           alpha, self.gamma)

    @torch.no_grad()
    def compute_targets(self, batch: Dict[str, Tensor]) -> Tensor:
        """Soft TD targets ``[L, B, 1]``: the online actor's policy and the target critic at
        ``h_{t+1}`` (both unrolled from a zero state over the ``L + 1`` observations)."""
        obs, pa, pr = batch["obs"], batch["prev_act"], batch["prev_rew"]
        logits, _ = self.actor(obs, pa, pr, self.actor.init_state(obs.shape[1]))
        probs, log_probs = categorical(logits[1:])
        return self._targets(batch, probs, log_probs, self.log_alpha.alpha())

    def train(self, batch: Dict[str, Tensor]) -> Dict[str, float]:
        """One update on a window batch (see EpisodeReplay.get_windows); returns scalar stats."""
        obs, pa, pr = batch["obs"], batch["prev_act"], batch["prev_rew"]
        act, mask = batch["act"], batch["mask"]
        B = obs.shape[1]
        alpha = self.log_alpha.alpha().detach()
        with record_function("po_actor_forward"):
            logits, _ = self.actor(obs, pa, pr, self.actor.init_state(B))  # [L+1, B, n]
            probs, log_probs = categorical(logits)
        with record_function("po_target"):
            target = self._targets(batch, probs[1:].detach(), log_probs[1:].detach(), alpha)
        L = act.shape[0]
        obs_c, pa_c, pr_c = history(batch, L, self.impl)  # the critic's outputs are read at 0..L-1
        with record_function("po_critic_forward"):
            feat, _ = self.critic.features(obs_c, pa_c, pr_c, self.critic.init_state(B))
            q1_all, q2_all = self.critic.q_values(feat[:L], obs[:L])
            idx = act.long()
            q1, q2 = q1_all.gather(-1, idx), q2_all.gather(-1, idx)
            critic_loss = masked_mean((q1 - target) ** 2, mask) + masked_mean((q2 - target) ** 2, mask)
        with record_function("po_critic_backward_adam"):
            gradient_step(self.critic_opt, critic_loss, f"SAC-discrete critic_loss at update {self.n_updates}",
                          PO_DIVERGENCE_HINT)

        with record_function("po_actor_forward"), torch.no_grad():
            feat_c, _ = self.critic.features(obs_c, pa_c, pr_c, self.critic.init_state(B))
            q1_pi, q2_pi = self.critic.q_values(feat_c[:L], obs[:L])
        actor_loss = sacd_actor_loss(probs[:-1], log_probs[:-1], q1_pi, q2_pi, alpha, mask)
        with record_function("po_actor_backward_adam"):
            gradient_step(self.actor_opt, actor_loss, f"SAC-discrete actor_loss at update {self.n_updates}",
                          PO_DIVERGENCE_HINT)

        entropy = -(probs[:-1] * log_probs[:-1]).sum(-1, keepdim=True).detach()
        alpha_loss = sacd_alpha_loss(self.log_alpha.log_alpha, entropy, self.target_entropy, mask)
        gradient_step(self.alpha_opt, alpha_loss, f"SAC-discrete alpha_loss at update {self.n_updates}",
                      PO_DIVERGENCE_HINT)

        with record_function("po_soft_update"):
            soft_update(self.target_critic, self.critic, self.tau)
        self.n_updates += 1
        return {"critic_loss": float(critic_loss.item()), "actor_loss": float(actor_loss.item()),
                "alpha": float(alpha.item()), "entropy": float(masked_mean(entropy, mask).item()),
                "q_taken_mean": float(masked_mean(q1.detach(), mask).item()),
                "target_mean": float(masked_mean(target, mask).item())}

    def parts(self) -> Dict[str, Any]:
        """Everything a checkpoint holds (each has state_dict/load_state_dict)."""
        return {"actor": self.actor, "critic": self.critic, "target_critic": self.target_critic,
                "log_alpha": self.log_alpha, "actor_opt": self.actor_opt,
                "critic_opt": self.critic_opt, "alpha_opt": self.alpha_opt, "learner": self}

    def state_dict(self) -> Dict[str, Any]:
        """The learner's own counters (its networks are the other parts)."""
        return {"n_updates": int(self.n_updates)}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.n_updates = int(state["n_updates"])
