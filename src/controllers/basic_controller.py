"""The multi-agent controller: one shared agent network for all agents.

It builds each agent's input (observation, optionally last action and agent id), threads the
agent's hidden state one step per environment step while acting, and unrolls the agent over
whole episodes for the learner (``unroll``: the one place that loop lives).
"""
from __future__ import annotations

from typing import Any, Dict, Iterator, Optional

import torch

from components.action_selectors import REGISTRY as SELECTOR_REGISTRY
from components.episode_buffer import EpisodeBatch
from components.packing import Packing
from modules.agents import REGISTRY as AGENT_REGISTRY
from utils.registry import lookup

UNROLL_MODES = ("sequence", "stepwise")


class BasicMAC:
    """Shared-parameter controller over ``n_agents`` agents with ``n_actions`` actions."""

    def __init__(self, env_info: Dict[str, Any], args: Any) -> None:
        self.args = args
        self.n_agents = int(env_info["n_agents"])
        self.n_actions = int(env_info["n_actions"])
        self.obs_dim = int(env_info["obs_shape"])
        self.input_shape = self.obs_dim
        if args.obs_last_action:
            self.input_shape += self.n_actions
        if args.obs_agent_id:
            self.input_shape += self.n_agents
        agent_cls = lookup(AGENT_REGISTRY, args.agent, "agent")
        self.agent = agent_cls(self.input_shape, args)
        self.selector = lookup(SELECTOR_REGISTRY, args.action_selector, "action_selector")(args)
        self.unroll_mode = str(getattr(args, "mac_unroll", "sequence"))
        if self.unroll_mode not in UNROLL_MODES:
            raise ValueError(f"mac_unroll must be one of {list(UNROLL_MODES)}, got '{self.unroll_mode}'.")
        self.hidden: Any = None

    # ------------------------------------------------------------------ inputs
    def build_inputs(self, obs: torch.Tensor, last_actions_onehot: torch.Tensor) -> torch.Tensor:
        """``obs`` [..., agents, obs_dim], ``last_actions_onehot`` [..., agents, n_actions]
        -> agent inputs [..., agents, input_shape]."""
        parts = [obs]
        if self.args.obs_last_action:
            parts.append(last_actions_onehot)
        if self.args.obs_agent_id:
            eye = torch.eye(self.n_agents, device=obs.device, dtype=obs.dtype)
            parts.append(eye.expand(*obs.shape[:-2], self.n_agents, self.n_agents))
        return torch.cat(parts, dim=-1)

    # ------------------------------------------------------------------ acting
    def init_hidden(self, batch_size: int) -> None:
        """Reset the hidden state for ``batch_size`` environments (start of an episode)."""
        self.hidden = self.agent.init_hidden(batch_size * self.n_agents)

    @torch.no_grad()
    def act(self, obs: torch.Tensor, last_actions_onehot: torch.Tensor, avail: torch.Tensor,
            t_env: int, test_mode: bool = False) -> torch.Tensor:
        """One environment step for a batch of envs: ``obs`` [b, agents, obs_dim],
        ``avail`` [b, agents, n_actions] -> actions [b, agents]. Advances the hidden state."""
        q, self.hidden = self.agent(self.build_inputs(obs, last_actions_onehot), self.hidden)
        return self.selector.select(q, avail, t_env, test_mode)

    # ------------------------------------------------------------------ training
    def unroll(self, batch: EpisodeBatch) -> torch.Tensor:
        """Q-values for every observation slot of ``batch``: [batch, T + 1, agents, n_actions].

        Starts from a fresh hidden state and feeds slot t the action taken at t - 1, exactly as
        the runner did while acting. ``mac_unroll=sequence`` makes one ``forward_seq`` call for
        all steps; ``stepwise`` calls the acting-time ``forward`` once per step (pymarl2's loop).
        """
        onehot = batch.actions_onehot(self.n_actions).transpose(0, 1)          # [T, B, agents, n]
        last = torch.cat([torch.zeros_like(onehot[:1]), onehot], dim=0)
        inputs = self.build_inputs(batch.obs.transpose(0, 1), last)            # [T+1, B, agents, e]
        hidden = self.agent.init_hidden(batch.batch_size * self.n_agents)
        if self.unroll_mode == "sequence":
            q, _ = self.agent.forward_seq(inputs, hidden)
        else:
            steps = []
            for t in range(inputs.shape[0]):
                q_t, hidden = self.agent(inputs[t], hidden)
                steps.append(q_t)
            q = torch.stack(steps, dim=0)
        return q.transpose(0, 1)

    def packed_inputs(self, batch: EpisodeBatch, packing: Packing) -> torch.Tensor:
        """The agent inputs of the real observation slots of ``batch``: ``[packing.n_rows, agents, input_shape]``
        (the same for every controller of this shape: the learner builds them once for the online and
        the target network)."""
        obs = packing.pack(batch.obs)                                           # [rows, agents, obs]
        prev = torch.cat([torch.zeros_like(batch.actions[:, :1]), batch.actions], dim=1)   # [B, T+1, agents]
        first = (packing.t_idx == 0).to(obs.device)
        last = torch.nn.functional.one_hot(packing.pack(prev), self.n_actions).to(obs.dtype)
        last = last.masked_fill(first.view(-1, 1, 1), 0.0)                    # slot 0: no previous action
        return self.build_inputs(obs, last)                                     # [rows, agents, e]

    def unroll_packed(self, batch: EpisodeBatch, packing: Packing,
                      inputs: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Q-values for the real observation slots of ``batch`` only: ``[packing.n_rows, agents, n_actions]``.

        ``packing`` covers slots ``0 .. len`` of each episode (``Packing.from_mask(mask, extra=1)``).
        Same values as ``unroll`` on those slots. ``sequence`` calls ``agent.forward_packed``;
        ``stepwise`` calls ``forward`` once per step on the episodes still running at that step.
        ``inputs``: ``packed_inputs(batch, packing)`` if already built.
        """
        if inputs is None:
            inputs = self.packed_inputs(batch, packing)
        if self.unroll_mode == "sequence":
            return self.agent.forward_packed(inputs, packing)
        hidden = self.agent.init_hidden(packing.batch * self.n_agents)
        steps = []
        for n, inputs_t in zip(packing.bs_list, inputs.split(packing.bs_list)):
            if n == 0:
                break
            rows = n * self.n_agents
            hidden = tuple(h[:rows] for h in hidden) if isinstance(hidden, tuple) else hidden[:rows]
            q_t, hidden = self.agent(inputs_t, hidden)
            steps.append(q_t)
        return torch.cat(steps, dim=0)

    # ------------------------------------------------------------------ plumbing
    def parameters(self) -> Iterator[torch.nn.Parameter]:
        return self.agent.parameters()

    def load_state(self, other: "BasicMAC") -> None:
        self.agent.load_state_dict(other.agent.state_dict())

    def to(self, device: str) -> "BasicMAC":
        self.agent.to(device)
        return self
