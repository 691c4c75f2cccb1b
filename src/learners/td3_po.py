"""TD3 on sampled episode windows with recurrent (or spiking) actor and twin critic.

The pure functions (``masked_mean``, ``smooth_target_action``, ``td3_target``) hold the maths
so tests can check them by hand. Shapes: time-major windows ``[L, B, ...]`` with ``mask [L, B, 1]``;
sequence inputs (obs, prev_act, prev_rew) have ``L + 1`` steps so that the features of the
next observation ``h_{t+1}`` come out of the same unroll as ``h_t``.
"""
from __future__ import annotations

import copy
from typing import Any, Dict, Tuple

import torch
from torch import Tensor, nn
from torch.profiler import record_function

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


#: ``po_update_impl`` values: ``fast`` (fused Adam, unrolls only over the steps a loss reads, the
#: TD3 actor loss backpropagates through the critic's first layers only into the action part) or
#: ``reference`` (the earlier update: per-parameter Adam loop, every unroll over all L + 1 steps).
#: Both compute the same losses and gradients (up to float rounding).
UPDATE_IMPLS = ("fast", "reference")


def update_impl(args: Any) -> str:
    """``args.po_update_impl`` (default ``fast``), checked against UPDATE_IMPLS."""
    impl = str(getattr(args, "po_update_impl", "fast"))
    if impl not in UPDATE_IMPLS:
        raise ValueError(f"po_update_impl must be one of {list(UPDATE_IMPLS)}, got {impl!r}.")
    return impl


def make_adam(params: Any, lr: float, impl: str) -> torch.optim.Adam:
    """Adam over ``params``; ``impl == "fast"``: PyTorch's fused kernel (one call per step for
    all tensors; same update rule). Loading an optimiser state saved by the other impl keeps
    this one's kernel choice (the saved ``fused`` flag is overridden after loading)."""
    fused = True if impl == "fast" else None
    opt = torch.optim.Adam(params, lr=lr, fused=fused)

    def keep_kernel(optimiser: torch.optim.Optimizer) -> None:
        for group in optimiser.param_groups:
            group["fused"], group["foreach"] = fused, None

    opt.register_load_state_dict_post_hook(keep_kernel)
    return opt


#: What to do when a PO-control loss becomes NaN/inf (shared by TD3 and SAC-discrete).
PO_DIVERGENCE_HINT = ("Lower actor_lr/critic_lr, check the reward scale, or try another seed; "
                      "the last checkpoint is under results/models/.")


def history(batch: Dict[str, Tensor], L: int, impl: str) -> Tuple[Tensor, Tensor, Tensor]:
    """The sequence inputs ``(obs, prev_act, prev_rew)`` an unroll needs when only its first ``L``
    outputs are read: the first ``L`` steps (``fast``; the cores are causal, so those outputs are
    unchanged) or all ``L + 1`` (``reference``). Each ``[L or L+1, B, ...]``."""
    n = L if impl == "fast" else L + 1
    return batch["obs"][:n], batch["prev_act"][:n], batch["prev_rew"][:n]


class TD3POLearner:
    """TD3 (Fujimoto et al. 2018) over windows: clipped double Q, target smoothing, delayed actor.

    Keys read from ``args``: gamma, tau, actor_lr, critic_lr, target_noise, target_noise_clip,
    policy_delay, expl_noise, po_update_impl.
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
        self.impl = update_impl(args)
        self.actor_opt = make_adam(actor.parameters(), float(args.actor_lr), self.impl)
        self.critic_opt = make_adam(critic.parameters(), float(args.critic_lr), self.impl)
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
        act, mask = batch["act"], batch["mask"]
        L, B = act.shape[0], act.shape[1]
        obs, pa, pr = history(batch, L, self.impl)  # the losses below read steps 0..L-1 only
        with record_function("po_target"):
            target = self.compute_targets(batch)
        with record_function("po_critic_forward"):
            feat, _ = self.critic.features(obs, pa, pr, self.critic.init_state(B))
            q1, q2 = self.critic.q_values(feat[:L], obs[:L], act)
            critic_loss = masked_mean((q1 - target) ** 2, mask) + masked_mean((q2 - target) ** 2, mask)
        with record_function("po_critic_backward_adam"):
            gradient_step(self.critic_opt, critic_loss, f"TD3 critic_loss at update {self.n_updates}",
                          PO_DIVERGENCE_HINT)
        self.n_updates += 1

        if self.n_updates % self.policy_delay == 0:
            with frozen(self.critic):  # the actor loss only trains the actor
                with record_function("po_actor_forward"):
                    mu, _ = self.actor(obs, pa, pr, self.actor.init_state(B))
                    with torch.no_grad():
                        feat_c, _ = self.critic.features(obs, pa, pr, self.critic.init_state(B))
                    q1_pi, q2_pi = self.critic.q_values(feat_c[:L], obs[:L], mu[:L],
                                                        const_feat=self.impl == "fast")
                    actor_loss = -masked_mean(torch.min(q1_pi, q2_pi), mask)
                with record_function("po_actor_backward_adam"):
                    gradient_step(self.actor_opt, actor_loss, f"TD3 actor_loss at update {self.n_updates}",
                                  PO_DIVERGENCE_HINT)
            with record_function("po_soft_update"):
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
