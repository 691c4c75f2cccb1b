"""Value-decomposition Q-learning (QMIX, VDN, IQL) with TD(lambda) targets and double Q.

The learner never looks at the agent type: it asks the controller for Q-values of whole
episodes (``mac.unroll``) and mixes them.
"""
from __future__ import annotations

import copy
from typing import Any, Dict, Optional

import torch

from components.episode_buffer import EpisodeBatch
from components.packing import Packing
from modules.mixers import REGISTRY as MIXER_REGISTRY
from utils.device import torch_threads
from utils.malloc import keep_freed_memory
from utils.optim import gradient_step
from utils.registry import lookup
from utils.rl_utils import td_lambda_targets

PACKING_MODES = ("auto", "packed", "padded")


class QLearner:
    """Trains ``mac`` (and the mixer named by ``args.mixer``) on sampled episode batches."""

    def __init__(self, mac: Any, env_info: Dict[str, Any], args: Any, logger: Any) -> None:
        self.args, self.mac, self.logger = args, mac, logger
        self.mixer: Optional[torch.nn.Module] = None
        if args.mixer:
            mixer_cls = lookup(MIXER_REGISTRY, args.mixer, "mixer")
            self.mixer = mixer_cls(mac.n_agents, int(env_info["state_shape"]), args)
        self.params = list(mac.parameters()) + (list(self.mixer.parameters()) if self.mixer else [])
        self.optimiser = torch.optim.Adam(self.params, lr=args.lr, eps=args.optim_eps)
        self.target_mac = copy.deepcopy(mac)
        self.target_mixer = copy.deepcopy(self.mixer)
        self.last_target_update_episode = 0
        self.last_log_t = -args.learner_log_interval - 1
        self.packing = str(getattr(args, "learner_packing", "auto"))
        if self.packing not in PACKING_MODES:
            raise ValueError(f"learner_packing must be one of {list(PACKING_MODES)}, got '{self.packing}'.")
        if self.packing == "auto":   # packed pays on CPU; on a GPU its per-step loop loses to cuDNN / one kernel
            self.packing = "padded" if str(getattr(args, "device", "cpu")).startswith("cuda") else "packed"
        self.threads = int(getattr(args, "learner_threads", 0) or 0)
        if self.threads < 0:
            raise ValueError(f"learner_threads must be >= 0 (0 = torch_threads), got {self.threads}.")
        if bool(getattr(args, "learner_keep_heap", True)):
            keep_freed_memory()   # large temporaries reused without page faults (utils/malloc.py)

    def _mix(self, mixer: Optional[torch.nn.Module], qs: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
        """[..., agents] with states [..., state_dim] -> [..., 1] (or the agents' values unmixed for IQL)."""
        return mixer(qs, states) if mixer is not None else qs

    def _targets(self, batch: EpisodeBatch, target_tot: torch.Tensor) -> torch.Tensor:
        """TD(lambda) targets ``[B, T, k]`` from the mixed target values ``target_tot`` [B, T+1, k]."""
        args, k = self.args, target_tot.shape[-1]

        def per_column(x: torch.Tensor) -> torch.Tensor:               # [B, T] -> [B*k, T]
            return x.unsqueeze(-1).expand(-1, -1, k).transpose(1, 2).reshape(-1, x.shape[1])

        return td_lambda_targets(
            per_column(batch.reward), per_column(batch.terminated), per_column(batch.mask()),
            target_tot.transpose(1, 2).reshape(-1, batch.max_t + 1), args.gamma, args.td_lambda,
        ).reshape(batch.batch_size, k, batch.max_t).transpose(1, 2)

    def _greedy_target(self, q: torch.Tensor, target_q: torch.Tensor, avail: torch.Tensor) -> torch.Tensor:
        """Target value of each agent's next action ``[..., agents]`` from ``[..., agents, n]`` Q-values:
        double Q (online argmax, target value) or the target max, over available actions."""
        target_q = target_q.masked_fill(~avail, -1e9)
        if self.args.double_q:
            best = q.detach().masked_fill(~avail, -1e9).argmax(dim=-1, keepdim=True)
            return target_q.gather(-1, best).squeeze(-1)
        return target_q.max(dim=-1).values

    def _padded_td(self, batch: EpisodeBatch):
        """``learner_packing=padded``: every network runs on all [B, T+1] slots, padding included.
        Returns ``(chosen_tot, targets, mask)``, each ``[B, T, k]`` (mask ``[B, T, 1]``)."""
        q = self.mac.unroll(batch)                                    # [B, T+1, agents, n]
        chosen = q[:, :-1].gather(-1, batch.actions.unsqueeze(-1)).squeeze(-1)   # [B, T, agents]
        with torch.no_grad():
            target_max = self._greedy_target(q, self.target_mac.unroll(batch), batch.avail_actions.bool())
            targets = self._targets(batch, self._mix(self.target_mixer, target_max, batch.state))
        return self._mix(self.mixer, chosen, batch.state[:, :-1]), targets, batch.mask().unsqueeze(-1)

    def _packed_td(self, batch: EpisodeBatch):
        """``learner_packing=packed``: the agents and mixers run on real slots only (see
        ``components.packing``); the scalar TD(lambda) recursion runs on the padded [B, T] grid.
        Returns ``(chosen_tot, targets, mask)``, each ``[rows, k]`` over the real transitions."""
        slots = Packing.from_mask(batch.mask(), extra=1)              # obs slots 0..len of each episode
        steps = Packing.from_mask(batch.mask())                       # transitions 0..len-1
        step_rows = slots.rows_in(steps)
        inputs = self.mac.packed_inputs(batch, slots)                 # built once for both networks
        q = self.mac.unroll_packed(batch, slots, inputs)              # [slot rows, agents, n]
        q_step = q[step_rows]
        chosen = q_step.gather(-1, steps.pack(batch.actions).unsqueeze(-1)).squeeze(-1)   # [rows, agents]
        with torch.no_grad():
            avail = slots.pack(batch.avail_actions).bool()
            target_max = self._greedy_target(q, self.target_mac.unroll_packed(batch, slots, inputs), avail)
            target_tot = self._mix(self.target_mixer, target_max, slots.pack(batch.state))
            targets = steps.pack(self._targets(batch, slots.unpack(target_tot)))
        chosen_tot = self._mix(self.mixer, chosen, steps.pack(batch.state))
        return chosen_tot, targets, torch.ones_like(targets[:, :1])

    def train(self, batch: EpisodeBatch, t_env: int, episode: int) -> Dict[str, float]:
        """One gradient step on ``batch`` (with ``learner_threads`` torch threads); returns the logged statistics."""
        with torch_threads(self.threads):
            return self._train(batch, t_env, episode)

    def _train(self, batch: EpisodeBatch, t_env: int, episode: int) -> Dict[str, float]:
        args = self.args
        if self.packing == "packed":
            chosen_tot, targets, mask = self._packed_td(batch)
        else:
            chosen_tot, targets, mask = self._padded_td(batch)
        k = targets.shape[-1]
        td_error = (chosen_tot - targets) * mask
        loss = (td_error ** 2).sum() / (mask.sum() * k)
        grad_norm = gradient_step(
            self.optimiser, loss, f"the TD loss at t_env={t_env}",
            f"Lower lr (now {args.lr}) or grad_norm_clip (now {args.grad_norm_clip}), or check the env's "
            f"rewards for NaN.", params=self.params, clip=args.grad_norm_clip)

        if (episode - self.last_target_update_episode) / args.target_update_interval >= 1.0:
            self.update_targets()
            self.last_target_update_episode = episode

        with torch.no_grad():   # one host sync for all statistics
            sums = torch.stack([mask.sum() * k, loss.detach(), td_error.abs().sum(), (chosen_tot * mask).sum(),
                                (targets * mask).sum()]).tolist()
        mask_elems = sums[0]
        stats = {
            "loss": sums[1],
            "grad_norm": float(grad_norm),
            "td_error_abs": sums[2] / mask_elems,
            "q_taken_mean": sums[3] / mask_elems,
            "target_mean": sums[4] / mask_elems,
        }
        if t_env - self.last_log_t >= args.learner_log_interval:
            for key, value in stats.items():
                self.logger.log_stat(key, value, t_env)
            self.last_log_t = t_env
        return stats

    def update_targets(self) -> None:
        """Hard copy of the online networks into the target networks."""
        self.target_mac.load_state(self.mac)
        if self.mixer is not None:
            self.target_mixer.load_state_dict(self.mixer.state_dict())

    def to(self, device: str) -> "QLearner":
        for part in (self.mac, self.target_mac, self.mixer, self.target_mixer):
            if part is not None:
                part.to(device)
        return self

    def checkpoint_parts(self) -> Dict[str, Any]:
        """What a checkpoint holds: agent and mixer (all evaluation needs), their targets, the
        optimiser state and the learner's counters (``learner``: target-update and log timers)."""
        parts: Dict[str, Any] = {"agent": self.mac.agent, "target_agent": self.target_mac.agent,
                                 "opt": self.optimiser, "learner": self}
        if self.mixer is not None:
            parts["mixer"] = self.mixer
            parts["target_mixer"] = self.target_mixer
        return parts

    def state_dict(self) -> Dict[str, Any]:
        """The learner's own counters (its networks are separate checkpoint parts)."""
        return {"last_target_update_episode": int(self.last_target_update_episode),
                "last_log_t": int(self.last_log_t)}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.last_target_update_episode = int(state["last_target_update_episode"])
        self.last_log_t = int(state["last_log_t"])

    def load(self, step_dir: str, resume: bool = False) -> None:
        """Load a checkpoint saved from ``checkpoint_parts``. For evaluation (``resume=False``)
        only agent and mixer are needed and the targets are synced to them; ``resume=True``
        restores every part (targets, optimiser, counters) as it was."""
        from utils.checkpoint import load_checkpoint

        parts = self.checkpoint_parts()
        if not resume:
            parts = {k: v for k, v in parts.items() if k in ("agent", "mixer")}
        load_checkpoint(step_dir, parts, map_location=self.args.device, required=tuple(parts))
        if not resume:
            self.update_targets()
