"""TD3 for MuJoCo control with an ANN or a spiking (PopSAN-style) actor, and the proxy target.

Three modes (``resolve_mode``):

* ``"ann"``   (``actor_type: ann``): standard TD3, MLP actor, soft-updated target actor.
* ``"snn"``   (``actor_type: snn``, ``proxy_target: False``): vanilla spiking TD3; the target
  actor is a soft-updated copy of the spiking actor.
* ``"proxy"`` (``actor_type: snn``, ``proxy_target: True``): the Proxy Target framework. An ANN
  proxy (``proxy_hidden``, default 512-512 ReLU + tanh, on the raw state) is fitted after every
  training step with ``proxy_steps`` (K) Adam steps (lr ``proxy_lr``), step k on its own freshly
  sampled replay batch ``s_k``, minimising ``mean ||proxy(s_k) - SNN(s_k)||^2`` (``F.mse_loss``),
  as the authors' released code does; it alone produces the target actions of the critic update.
  There is no target copy of the spiking actor. The critic targets still soft-update (``tau``).
  The SNN's actions for the K batches are one no-grad forward over all ``K * batch`` states (the
  SNN does not change during the fit), so no SNN graph is kept alive.

One ``train_step`` = one critic update; every ``policy_delay``-th one also updates the actor
(``-Q1(s, actor(s))``) and soft-updates the targets; in proxy mode the proxy is fitted last,
so it follows the freshly updated spiking actor.

Mechanism check (``target_shift_states`` > 0): on the first ``target_shift_states`` next-states
of each critic batch, ``target_shift`` = RMS over states and action dims of the change of the
target policy's (noise-free) action over this ``train_step``, in units of ``max_action``:
the soft-updated SNN copy in snn mode (it moves only on actor steps), the proxy in proxy mode.
"""
from __future__ import annotations

import copy
from typing import Any, Callable, Dict, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from modules.agents.ann_actor import ANNActor, make_proxy_actor
from modules.critics.mujoco_critic import TwinQCritic
from modules.popsan.actor import SpikingActor
from utils.malloc import keep_freed_memory
from utils.optim import gradient_step
from utils.rl_utils import frozen, soft_update

MODES = ("ann", "snn", "proxy")


def resolve_mode(actor_type: str, proxy_target: bool) -> str:
    """Map the config keys ``actor_type`` ("ann" | "snn") and ``proxy_target`` to a mode."""
    if actor_type not in ("ann", "snn"):
        raise ValueError(f"unknown actor_type '{actor_type}'. Valid: ann, snn "
                         f"(use --config=td3, td3_snn or td3_proxy).")
    if proxy_target and actor_type != "snn":
        raise ValueError("proxy_target=True needs actor_type=snn (the proxy stands in for a "
                         "spiking actor); use --config=td3_proxy.")
    if actor_type == "ann":
        return "ann"
    return "proxy" if proxy_target else "snn"


def adam(params: Any, lr: float, device: torch.device) -> torch.optim.Optimizer:
    """Adam with PyTorch's fused kernel where the device has one (CPU, CUDA): the same update
    rule in one op per step instead of several per parameter (about 25% off a proxy step on CPU)."""
    return torch.optim.Adam(params, lr=lr, fused=device.type in ("cpu", "cuda"))


def compute_target_actions(target_policy: Callable[[Tensor], Tensor], next_obs: Tensor,
                           max_action: Tensor, noise_std: float, noise_clip: float,
                           generator: Optional[torch.Generator] = None) -> Tensor:
    """TD3 target-policy smoothing: ``clip(pi'(s') + clip(eps, -c, c), -max_a, max_a)``.

    ``next_obs [batch, obs_dim]``; ``max_action [act_dim]``; ``eps ~ N(0, (noise_std * max_a)^2)``
    and ``c = noise_clip * max_a`` per dimension. Returns ``[batch, act_dim]`` (no gradient).
    """
    with torch.no_grad():
        return smooth_target_actions(target_policy(next_obs), max_action, noise_std, noise_clip, generator)


def smooth_target_actions(act: Tensor, max_action: Tensor, noise_std: float, noise_clip: float,
                          generator: Optional[torch.Generator] = None) -> Tensor:
    """The smoothing of ``compute_target_actions`` applied to given actions ``act [batch, act_dim]``."""
    with torch.no_grad():
        if noise_std > 0:
            eps = torch.randn(act.shape, generator=generator, device=act.device, dtype=act.dtype)
            eps = eps * (noise_std * max_action)
            lim = noise_clip * max_action
            act = act + torch.maximum(torch.minimum(eps, lim), -lim)
        return torch.maximum(torch.minimum(act, max_action), -max_action)


def build_actor(mode: str, obs_dim: int, act_dim: int, max_action: Union[float, Sequence[float]],
                args: Any) -> nn.Module:
    """The behaviour/deployment actor: an ``ANNActor`` for "ann", a ``SpikingActor`` otherwise."""
    if mode == "ann":
        return ANNActor(obs_dim, act_dim, max_action, args.mujoco_actor_hidden)
    kwargs = {"theta_u_sign": int(getattr(args, "dn_theta_u_sign", 1))} if args.actor_neuron == "dn" else {}
    return SpikingActor(obs_dim, act_dim, max_action, neuron=args.actor_neuron, T=args.popsan_T,
                        enc_pop=args.popsan_enc_pop, dec_pop=args.popsan_dec_pop,
                        hidden=args.popsan_hidden, enc_mean_range=args.popsan_enc_mean_range,
                        enc_std=float(args.popsan_enc_std), neuron_kwargs=kwargs,
                        unroll=str(getattr(args, "popsan_unroll", "fused")))


class _TrainState:
    """Everything beyond the deployable actor that resuming training needs, as one state_dict."""

    def __init__(self, learner: "TD3MujocoLearner") -> None:
        self.learner = learner

    def _parts(self) -> Dict[str, Any]:
        ln = self.learner
        parts: Dict[str, Any] = {"critic": ln.critic, "critic_target": ln.critic_target,
                                 "critic_optim": ln.critic_optim, "actor_optim": ln.actor_optim}
        if ln.actor_target is not None:
            parts["actor_target"] = ln.actor_target
        if ln.proxy is not None:
            parts["proxy"] = ln.proxy
            parts["proxy_optim"] = ln.proxy_optim
        return parts

    def state_dict(self) -> Dict[str, Any]:
        out = {name: part.state_dict() for name, part in self._parts().items()}
        out["mode"] = self.learner.mode
        out["n_updates"] = self.learner.n_updates
        return out

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        if state.get("mode") != self.learner.mode:
            raise ValueError(f"checkpoint was trained in mode '{state.get('mode')}' but this run is "
                             f"'{self.learner.mode}'; use the matching --config.")
        for name, part in self._parts().items():
            part.load_state_dict(state[name])
        self.learner.n_updates = int(state.get("n_updates", 0))


class TD3MujocoLearner:
    """TD3 learner; ``args`` needs the TD3, network and proxy keys of config/algs/td3_*.yaml."""

    def __init__(self, obs_dim: int, act_dim: int, max_action: Union[float, Sequence[float]],
                 args: Any) -> None:
        self.mode = resolve_mode(args.actor_type, bool(getattr(args, "proxy_target", False)))
        self.device = torch.device(getattr(args, "device", "cpu"))
        self.gamma = float(args.gamma)
        self.tau = float(args.tau)
        self.policy_delay = int(args.policy_delay)
        self.target_noise = float(args.target_noise)
        self.target_noise_clip = float(args.target_noise_clip)

        self.actor = build_actor(self.mode, obs_dim, act_dim, max_action, args).to(self.device)
        self.max_action = self.actor.max_action
        self.critic = TwinQCritic(obs_dim, act_dim, args.mujoco_critic_hidden).to(self.device)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_optim = adam(self.actor.parameters(), float(args.actor_lr), self.device)
        self.critic_optim = adam(self.critic.parameters(), float(args.critic_lr), self.device)

        self.actor_target: Optional[nn.Module] = None
        self.proxy: Optional[nn.Module] = None
        self.proxy_optim: Optional[torch.optim.Optimizer] = None
        if self.mode == "proxy":
            self.proxy = make_proxy_actor(obs_dim, act_dim, max_action, args.proxy_hidden).to(self.device)
            self.proxy_lr = float(args.proxy_lr)
            if not self.proxy_lr > 0:
                raise ValueError(f"proxy_lr must be > 0, got {args.proxy_lr} (the released default is 0.001)")
            self.proxy_steps = int(args.proxy_steps)
            if self.proxy_steps < 1:
                raise ValueError(f"proxy_steps must be >= 1, got {self.proxy_steps}")
            self.proxy_optim = adam(self.proxy.parameters(), self.proxy_lr, self.device)
        else:
            self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.target_shift_states = int(getattr(args, "target_shift_states", 0))
        if self.target_shift_states < 0:
            raise ValueError(f"target_shift_states must be >= 0, got {self.target_shift_states}")
        self.n_updates = 0
        if bool(getattr(args, "learner_keep_heap", True)):
            keep_freed_memory()   # the proxy fit's large temporaries reused without page faults (utils/malloc.py)

    # ------------------------------------------------------------------ acting
    @property
    def target_policy(self) -> nn.Module:
        """The network that produces target actions: the proxy, or the soft-updated actor copy."""
        return self.proxy if self.mode == "proxy" else self.actor_target

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Deterministic action of the (spiking or ANN) actor: ``obs [obs_dim]`` -> ``[act_dim]``,
        or a batch ``[n, obs_dim]`` -> ``[n, act_dim]``."""
        with torch.no_grad():
            o = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
            if o.dim() == 1:
                return self.actor(o.unsqueeze(0))[0].cpu().numpy()
            return self.actor(o).cpu().numpy()

    @property
    def proxy_states_needed(self) -> int:
        """Replay states ``train_step`` needs for the proxy fit: ``proxy_steps`` batches (0 outside proxy mode)."""
        return self.proxy_steps if self.mode == "proxy" else 0

    def target_actions(self, next_obs: Tensor) -> Tensor:
        """Smoothed target actions ``[batch, act_dim]`` from ``target_policy``."""
        return compute_target_actions(self.target_policy, next_obs, self.max_action,
                                      self.target_noise, self.target_noise_clip)

    # ---------------------------------------------------------------- training
    def update_critic(self, batch: Dict[str, Tensor], clean_target: Optional[Tensor] = None
                      ) -> Dict[str, float]:
        """One critic step on ``batch`` (see ``TransitionReplay.sample``); returns stats.
        ``clean_target``: the target policy's noise-free actions on ``batch["next_obs"]`` if
        already computed."""
        with torch.no_grad():
            if clean_target is None:
                clean_target = self.target_policy(batch["next_obs"])
            next_act = smooth_target_actions(clean_target, self.max_action, self.target_noise,
                                             self.target_noise_clip)
            tq1, tq2 = self.critic_target(batch["next_obs"], next_act)
            target = batch["rewards"] + self.gamma * (1.0 - batch["terminated"]) * torch.min(tq1, tq2)
        q1, q2 = self.critic(batch["obs"], batch["actions"])
        loss = F.mse_loss(q1, target) + F.mse_loss(q2, target)
        gradient_step(self.critic_optim, loss, f"the critic loss after {self.n_updates} updates (mode {self.mode})",
                      "Lower critic_lr/actor_lr or check the environment's rewards.")
        return {"critic_loss": loss.item(), "q_taken_mean": q1.mean().item(),
                "target_mean": target.mean().item()}

    def update_actor(self, obs: Tensor) -> Dict[str, float]:
        """One actor step maximising ``Q1(s, actor(s))``; returns stats."""
        with frozen(self.critic):  # the actor loss only trains the actor
            loss = -self.critic.q1(obs, self.actor(obs)).mean()
            gradient_step(self.actor_optim, loss, f"the actor loss after {self.n_updates} updates (mode {self.mode})",
                          "Lower actor_lr or check the critic's values.")
        return {"actor_loss": loss.item()}

    def update_proxy(self, obs_batches: Tensor) -> Dict[str, float]:
        """K Adam steps of ``mse(proxy(s_k), SNN(s_k))``, step k on ``obs_batches[k]``.

        ``obs_batches [K, batch, obs_dim]`` (K = ``proxy_steps``; fresh replay samples). Returns
        ``proxy_loss`` (the K-th step's loss) and ``proxy_loss_first`` (the first step's, before
        any fit this train step: how far the SNN has moved from the proxy).
        """
        assert self.proxy is not None and self.proxy_optim is not None
        if obs_batches.dim() != 3 or obs_batches.shape[0] != self.proxy_steps:
            raise ValueError(f"update_proxy expects [proxy_steps={self.proxy_steps}, batch, obs_dim] "
                             f"states, got {tuple(obs_batches.shape)}")
        k, b = obs_batches.shape[:2]
        with torch.no_grad():   # one SNN forward for all K batches; no SNN graph is kept
            snn_act = self.actor(obs_batches.reshape(k * b, -1)).reshape(k, b, -1)
        losses = []
        for i in range(k):
            loss = F.mse_loss(self.proxy(obs_batches[i]), snn_act[i])
            gradient_step(self.proxy_optim, loss, f"the proxy loss after {self.n_updates} updates",
                          "Lower proxy_lr.")
            losses.append(loss.item())
        return {"proxy_loss": losses[-1], "proxy_loss_first": losses[0]}

    def soft_update_targets(self) -> None:
        """Polyak-average the critic target (and the actor target, outside proxy mode)."""
        soft_update(self.critic_target, self.critic, self.tau)
        if self.actor_target is not None:
            soft_update(self.actor_target, self.actor, self.tau)

    def train_step(self, batch: Dict[str, Tensor], proxy_obs: Optional[Tensor] = None) -> Dict[str, float]:
        """Critic update; every ``policy_delay``-th call also the actor and target updates;
        in proxy mode then the proxy fit on ``proxy_obs [proxy_steps, batch, obs_dim]`` (fresh
        replay states, see ``proxy_states_needed``). Returns the stats of the updates done."""
        if self.mode == "proxy" and proxy_obs is None:
            raise ValueError("proxy mode: train_step needs proxy_obs, proxy_steps freshly sampled "
                             "replay batches of states [proxy_steps, batch, obs_dim]")
        with torch.no_grad():
            clean = self.target_policy(batch["next_obs"])
        stats = self.update_critic(batch, clean)
        self.n_updates += 1
        if self.n_updates % self.policy_delay == 0:
            stats.update(self.update_actor(batch["obs"]))
            self.soft_update_targets()
        if self.mode == "proxy":
            stats.update(self.update_proxy(proxy_obs))
        if self.target_shift_states > 0:
            n = self.target_shift_states
            with torch.no_grad():
                after = self.target_policy(batch["next_obs"][:n])
                shift = ((after - clean[:n]) / self.max_action).pow(2).mean().sqrt()
            stats["target_shift"] = shift.item()
        return stats

    # ------------------------------------------------------------ checkpoints
    def deploy_parts(self) -> Dict[str, Any]:
        """What deployment needs: the actor alone (the spiking actor in snn/proxy modes)."""
        return {"actor": self.actor}

    def train_parts(self) -> Dict[str, Any]:
        """What resuming training needs beyond the actor, as one part ``train_state``."""
        return {"train_state": _TrainState(self)}
