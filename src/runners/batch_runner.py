"""Runs whole episodes on a batch of environments and returns them as an EpisodeBatch.

The runner resets the controller's hidden state once per episode and threads it one step per
environment step (``mac.act``). Environments that finish early stop being stepped; the batch
ends when all have finished.
"""
from __future__ import annotations

from typing import Any, Dict, List

import numpy as np
import torch

from components.episode_buffer import EpisodeBatch
from envs import REGISTRY as ENV_REGISTRY
from utils.registry import lookup


class BatchRunner:
    """Steps ``n_envs`` environments together (``n_envs = 1`` is pymarl's episode runner)."""

    def __init__(self, args: Any, logger: Any, n_envs: int) -> None:
        self.args, self.logger, self.n_envs = args, logger, int(n_envs)
        make_env = lookup(ENV_REGISTRY, args.env, "env")
        self.env = make_env(n_envs=self.n_envs, seed=args.seed, **args.env_args)
        self.env_info: Dict[str, Any] = self.env.get_env_info()
        self.episode_limit = int(self.env_info["episode_limit"])
        self.t_env = 0
        self.mac: Any = None
        self.train_stats: Dict[str, List[float]] = {"return": [], "battle_won": [], "ep_length": []}
        self.test_stats: Dict[str, List[float]] = {"return": [], "battle_won": [], "ep_length": []}
        self.last_log_t = -args.runner_log_interval - 1

    def setup(self, mac: Any) -> None:
        self.mac = mac

    def close(self) -> None:
        self.env.close()

    def run(self, test_mode: bool = False) -> EpisodeBatch:
        """Play one episode in every env; training episodes advance ``t_env``."""
        info = self.env_info
        n, n_agents, n_actions = self.n_envs, info["n_agents"], info["n_actions"]
        batch = EpisodeBatch.zeros(n, self.episode_limit, n_agents, info["obs_shape"], info["state_shape"], n_actions)
        data = self.env.reset()
        self.mac.init_hidden(n)
        device = self.args.device
        active = np.ones(n, dtype=bool)
        returns = np.zeros(n, dtype=np.float64)
        lengths = np.zeros(n, dtype=np.int64)
        won = np.zeros(n, dtype=bool)
        last_onehot = torch.zeros(n, n_agents, n_actions, device=device)
        t = 0
        for t in range(self.episode_limit):
            self._write_slot(batch, t, data, active)
            # finished envs still go through the (batched) forward pass; give them a valid mask
            avail = torch.as_tensor(data["avail_actions"]).clone()
            avail[torch.as_tensor(~active)] = 1
            obs = torch.as_tensor(data["obs"], dtype=torch.float32)
            actions = self.mac.act(obs.to(device), last_onehot, avail.to(device), self.t_env, test_mode)
            actions_np = actions.cpu().numpy()
            data, reward, terminated, step_info = self.env.step(actions_np, active)
            act_t = torch.as_tensor(active)
            batch.actions[act_t, t] = actions.cpu()[act_t]
            batch.reward[act_t, t] = torch.as_tensor(reward, dtype=torch.float32)[act_t]
            batch.terminated[act_t, t] = torch.as_tensor(terminated, dtype=torch.float32)[act_t]
            batch.filled[act_t, t] = 1.0
            returns[active] += reward[active]
            lengths[active] += 1
            done = active & (terminated | step_info["episode_limit"] | (t + 1 >= self.episode_limit))
            won |= done & step_info["battle_won"]
            last_onehot = torch.nn.functional.one_hot(actions, n_actions).float()
            if done.any():
                self._write_slot(batch, t + 1, data, done)
            active = active & ~done
            if not active.any():
                break
        if not test_mode:
            self.t_env += int(lengths.sum())
        stats = self.test_stats if test_mode else self.train_stats
        stats["return"].extend(returns.tolist())
        stats["battle_won"].extend(won.astype(float).tolist())
        stats["ep_length"].extend(lengths.tolist())
        if not test_mode and self.t_env - self.last_log_t >= self.args.runner_log_interval:
            self.log_stats(self.train_stats, "")
            self.logger.log_stat("epsilon", self.mac.selector.epsilon, self.t_env)
            self.last_log_t = self.t_env
        return batch.truncate(max(int(lengths.max()), 1))

    @staticmethod
    def _write_slot(batch: EpisodeBatch, t: int, data: Dict[str, np.ndarray], rows: np.ndarray) -> None:
        """Store obs/state/avail of ``data`` at observation slot ``t`` for the ``rows`` envs."""
        idx = torch.as_tensor(rows)
        batch.obs[idx, t] = torch.as_tensor(data["obs"], dtype=torch.float32)[idx]
        batch.state[idx, t] = torch.as_tensor(data["state"], dtype=torch.float32)[idx]
        batch.avail_actions[idx, t] = torch.as_tensor(data["avail_actions"]).to(torch.uint8)[idx]

    def log_stats(self, stats: Dict[str, List[float]], prefix: str) -> None:
        """Log mean return/win/length (and return std) of the collected episodes, then clear."""
        if not stats["return"]:
            return
        self.logger.log_stat(prefix + "return_mean", float(np.mean(stats["return"])), self.t_env)
        self.logger.log_stat(prefix + "return_std", float(np.std(stats["return"])), self.t_env)
        self.logger.log_stat(prefix + "battle_won_mean", float(np.mean(stats["battle_won"])), self.t_env)
        self.logger.log_stat(prefix + "ep_length_mean", float(np.mean(stats["ep_length"])), self.t_env)
        for v in stats.values():
            v.clear()
