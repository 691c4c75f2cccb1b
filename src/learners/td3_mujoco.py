"""TD3 for MuJoCo control with an ANN or a spiking (PopSAN-style) actor, and the proxy target.

Three modes (``resolve_mode``):

* ``"ann"``   (``actor_type: ann``): standard TD3, MLP actor, soft-updated target actor.
* ``"snn"``   (``actor_type: snn``, ``proxy_target: False``): vanilla spiking TD3; the target
  actor is a soft-updated copy of the spiking actor.
* ``"proxy"`` (``actor_type: snn``, ``proxy_target: True``): the Proxy Target framework. An ANN
  proxy (``proxy_hidden``, default 512-512 ReLU + tanh, on the raw state) is fitted after every
  training step with ``proxy_steps`` Adam steps on ``mean ||proxy(s) - SNN(s)||^2`` (``F.mse_loss``)
  over the sampled replay states, and it alone produces the target actions of the critic update.
  There is no target copy of the spiking actor. The critic targets still soft-update (``tau``).

One ``train_step`` = one critic update; every ``policy_delay``-th one also updates the actor
(``-Q1(s, actor(s))``) and soft-updates the targets; in proxy mode the proxy is fitted last,
so it follows the freshly updated spiking actor.
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


def default_proxy_lr(neuron: str) -> float:
    """The paper's proxy learning rate: 1e-3 for LIF, 3e-3 for CLIF and DN."""
    return 1e-3 if neuron == "lif" else 3e-3


def compute_target_actions(target_policy: Callable[[Tensor], Tensor], next_obs: Tensor,
                           max_action: Tensor, noise_std: float, noise_clip: float,
                           generator: Optional[torch.Generator] = None) -> Tensor:
    """TD3 target-policy smoothing: ``clip(pi'(s') + clip(eps, -c, c), -max_a, max_a)``.

    ``next_obs [batch, obs_dim]``; ``max_action [act_dim]``; ``eps ~ N(0, (noise_std * max_a)^2)``
    and ``c = noise_clip * max_a`` per dimension. Returns ``[batch, act_dim]`` (no gradient).
    """
    with torch.no_grad():
        act = target_policy(next_obs)
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
    return SpikingActor(obs_dim, act_dim, max_action, neuron=args.actor_neuron, T=args.popsan_T,
                        enc_pop=args.popsan_enc_pop, dec_pop=args.popsan_dec_pop,
                        hidden=args.popsan_hidden, enc_mean_range=args.popsan_enc_mean_range,
                        enc_std=args.popsan_enc_std)


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
        self.actor_optim = torch.optim.Adam(self.actor.parameters(), lr=float(args.actor_lr))
        self.critic_optim = torch.optim.Adam(self.critic.parameters(), lr=float(args.critic_lr))

        self.actor_target: Optional[nn.Module] = None
        self.proxy: Optional[nn.Module] = None
        self.proxy_optim: Optional[torch.optim.Optimizer] = None
        if self.mode == "proxy":
            self.proxy = make_proxy_actor(obs_dim, act_dim, max_action, args.proxy_hidden).to(self.device)
            lr = args.proxy_lr if args.proxy_lr is not None else default_proxy_lr(args.actor_neuron)
            self.proxy_lr = float(lr)
            self.proxy_steps = int(args.proxy_steps)
            if self.proxy_steps < 1:
                raise ValueError(f"proxy_steps must be >= 1, got {self.proxy_steps}")
            self.proxy_optim = torch.optim.Adam(self.proxy.parameters(), lr=self.proxy_lr)
        else:
            self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.n_updates = 0

    # ------------------------------------------------------------------ acting
    @property
    def target_policy(self) -> nn.Module:
        """The network that produces target actions: the proxy, or the soft-updated actor copy."""
        return self.proxy if self.mode == "proxy" else self.actor_target

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Deterministic action of the (spiking or ANN) actor for one ``obs [obs_dim]`` -> ``[act_dim]``."""
        with torch.no_grad():
            o = torch.as_tensor(obs, dtype=torch.float32, device=self.device).unsqueeze(0)
            return self.actor(o)[0].cpu().numpy()

    def target_actions(self, next_obs: Tensor) -> Tensor:
        """Smoothed target actions ``[batch, act_dim]`` from ``target_policy``."""
        return compute_target_actions(self.target_policy, next_obs, self.max_action,
                                      self.target_noise, self.target_noise_clip)

    # ---------------------------------------------------------------- training
    def update_critic(self, batch: Dict[str, Tensor]) -> Dict[str, float]:
        """One critic step on ``batch`` (see ``TransitionReplay.sample``); returns stats."""
        next_act = self.target_actions(batch["next_obs"])
        with torch.no_grad():
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

    def update_proxy(self, obs: Tensor) -> Dict[str, float]:
        """``proxy_steps`` Adam steps of ``mse(proxy(s), SNN(s))`` on states ``obs [batch, obs_dim]``."""
        assert self.proxy is not None and self.proxy_optim is not None
        with torch.no_grad():
            snn_act = self.actor(obs)
        first = last = 0.0
        for k in range(self.proxy_steps):
            loss = F.mse_loss(self.proxy(obs), snn_act)
            gradient_step(self.proxy_optim, loss, "the proxy loss", "Lower proxy_lr.")
            if k == 0:
                first = loss.item()
            last = loss.item()
        return {"proxy_loss": last, "proxy_loss_first": first}

    def soft_update_targets(self) -> None:
        """Polyak-average the critic target (and the actor target, outside proxy mode)."""
        soft_update(self.critic_target, self.critic, self.tau)
        if self.actor_target is not None:
            soft_update(self.actor_target, self.actor, self.tau)

    def train_step(self, batch: Dict[str, Tensor]) -> Dict[str, float]:
        """Critic update; every ``policy_delay``-th call also the actor and target updates;
        in proxy mode then the proxy fit. Returns the stats of the updates done."""
        stats = self.update_critic(batch)
        self.n_updates += 1
        if self.n_updates % self.policy_delay == 0:
            stats.update(self.update_actor(batch["obs"]))
            self.soft_update_targets()
        if self.mode == "proxy":
            stats.update(self.update_proxy(batch["obs"]))
        return stats

    # ------------------------------------------------------------ checkpoints
    def deploy_parts(self) -> Dict[str, Any]:
        """What deployment needs: the actor alone (the spiking actor in snn/proxy modes)."""
        return {"actor": self.actor}

    def train_parts(self) -> Dict[str, Any]:
        """What resuming training needs beyond the actor, as one part ``train_state``."""
        return {"train_state": _TrainState(self)}
