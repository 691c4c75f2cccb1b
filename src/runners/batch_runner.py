"""Runs whole episodes on a batch of environments and returns them as an EpisodeBatch.

The runner resets the controller's hidden state once per episode and threads it one step per
environment step (``mac.act``). Environments that finish early stop being stepped; the batch
ends when all have finished (lockstep: ``runner=parallel`` / ``episode``; ``runner=continuous``,
src/runners/continuous_runner.py, restarts finished envs at once instead).
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

import numpy as np
import torch

from components.episode_buffer import EpisodeBatch
from envs import REGISTRY as ENV_REGISTRY
from utils.registry import lookup


class BatchRunner:
    """Steps ``n_envs`` environments together (``n_envs = 1`` is pymarl's episode runner)."""

    def __init__(self, args: Any, logger: Any, n_envs: int) -> None:
        self.args, self.logger, self.n_envs = args, logger, int(n_envs)
        self.env = self._make_env()
        self.env_info: Dict[str, Any] = self.env.get_env_info()
        self.episode_limit = int(self.env_info["episode_limit"])
        self.t_env = 0
        self.mac: Any = None
        self.train_stats: Dict[str, List[float]] = {"return": [], "battle_won": [], "ep_length": []}
        self.test_stats: Dict[str, List[float]] = {"return": [], "battle_won": [], "ep_length": []}
        self.last_log_t = -args.runner_log_interval - 1

    def _make_env(self, env_index_offset: int = 0) -> Any:
        """Build ``n_envs`` envs of ``args.env``; ``env_index_offset`` > 0 shifts their place in
        the seed's stream (``first_env_index``: other battles from the same seed)."""
        make_env = lookup(ENV_REGISTRY, self.args.env, "env")
        env_args = dict(self.args.env_args)
        if env_index_offset:
            env_args["first_env_index"] = int(env_args.get("first_env_index", 0)) + int(env_index_offset)
        return make_env(n_envs=self.n_envs, seed=self.args.seed, **env_args)

    def setup(self, mac: Any) -> None:
        self.mac = mac

    def close(self) -> None:
        self.env.close()

    def run(self, test_mode: bool = False) -> EpisodeBatch:
        """Play one episode in every env; training episodes advance ``t_env``."""
        return self._play_lockstep(self.env, test_mode)

    def _play_lockstep(self, env: Any, test_mode: bool) -> EpisodeBatch:
        """One episode in every env of ``env``, all starting together (``run``'s body)."""
        info = self.env_info
        n, n_agents, n_actions = self.n_envs, info["n_agents"], info["n_actions"]
        batch = EpisodeBatch.zeros(n, self.episode_limit, n_agents, info["obs_shape"], info["state_shape"], n_actions)
        # numpy views of the batch's CPU tensors: per-step writes stay cheap numpy indexing
        buf = {k: v.numpy() for k, v in batch.as_dict().items()}
        data = env.reset()
        self.mac.init_hidden(n)
        device = self.args.device
        active = np.ones(n, dtype=bool)
        returns = np.zeros(n, dtype=np.float64)
        won = np.zeros(n, dtype=bool)
        last_onehot = torch.zeros(n, n_agents, n_actions, device=device)
        for t in range(self.episode_limit):
            self._write_slot(buf, t, data, active)
            # finished envs still go through the (batched) forward pass; give them a valid mask
            avail = np.array(data["avail_actions"], dtype=np.uint8)
            avail[~active] = 1
            obs = torch.from_numpy(np.asarray(data["obs"], dtype=np.float32))
            actions = self.mac.act(obs.to(device), last_onehot, torch.from_numpy(avail).to(device),
                                   self.t_env, test_mode)
            actions_np = actions.cpu().numpy()
            data, reward, terminated, step_info = env.step(actions_np, active)
            buf["actions"][active, t] = actions_np[active]
            buf["reward"][active, t] = reward[active]
            buf["terminated"][active, t] = terminated[active]
            buf["filled"][active, t] = 1.0
            returns[active] += reward[active]
            done = active & (terminated | step_info["episode_limit"] | (t + 1 >= self.episode_limit))
            won |= done & step_info["battle_won"]
            last_onehot = torch.nn.functional.one_hot(actions, n_actions).float()
            if done.any():
                self._write_slot(buf, t + 1, data, done)
            active = active & ~done
            if not active.any():
                break
        lengths = buf["filled"].sum(axis=1).astype(np.int64)
        self._record(returns, won, lengths, test_mode)
        return batch.truncate(max(int(lengths.max()), 1))

    def _record(self, returns: np.ndarray, won: np.ndarray, lengths: np.ndarray, test_mode: bool) -> None:
        """Count the finished episodes' steps into ``t_env`` (training only), keep their return,
        win and length [episodes] for the next log, and log when ``runner_log_interval`` is due."""
        if not test_mode:
            self.t_env += int(lengths.sum())
        stats = self.test_stats if test_mode else self.train_stats
        stats["return"].extend(np.asarray(returns, dtype=np.float64).tolist())
        stats["battle_won"].extend(np.asarray(won).astype(float).tolist())
        stats["ep_length"].extend(np.asarray(lengths).astype(np.int64).tolist())
        if not test_mode and self.t_env - self.last_log_t >= self.args.runner_log_interval:
            self.log_stats(self.train_stats, "")
            self.logger.log_stat("epsilon", self.mac.selector.epsilon, self.t_env)
            self.last_log_t = self.t_env

    def state_dict(self) -> Dict[str, Any]:
        """What resuming needs between ``run`` calls: ``t_env``, the log timer, the not yet
        logged episode stats and the envs' state (``env.state_dict()``; None when the env
        cannot save it, e.g. sc2). Kept by the run loop's checkpoints (src/run/marl.py)."""
        env_state = self.env.state_dict() if hasattr(self.env, "state_dict") else None
        return {"t_env": int(self.t_env), "last_log_t": int(self.last_log_t),
                "train_stats": {k: list(v) for k, v in self.train_stats.items()},
                "test_stats": {k: list(v) for k, v in self.test_stats.items()}, "env": env_state}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore ``state_dict()``; an env without saved state keeps its fresh state (warned)."""
        self.t_env, self.last_log_t = int(state["t_env"]), int(state["last_log_t"])
        for mine, saved in ((self.train_stats, state["train_stats"]), (self.test_stats, state["test_stats"])):
            for k in mine:
                mine[k] = list(saved.get(k, []))
        if state.get("env") is not None and hasattr(self.env, "load_state_dict"):
            self.env.load_state_dict(state["env"])
        else:
            self.logger.console.warning(f"the '{self.args.env}' environments cannot restore their random "
                                        f"state: the resumed run plays other episodes than an uninterrupted one")

    @staticmethod
    def _write_slot(buf: Dict[str, np.ndarray], t: int, data: Dict[str, np.ndarray], rows: np.ndarray) -> None:
        """Store obs/state/avail of ``data`` at observation slot ``t`` for the ``rows`` envs."""
        buf["obs"][rows, t] = data["obs"][rows]
        buf["state"][rows, t] = data["state"][rows]
        buf["avail_actions"][rows, t] = data["avail_actions"][rows]

    def log_stats(self, stats: Dict[str, List[float]], prefix: str) -> Optional[float]:
        """Log mean return/win/length (and return std) of the collected episodes, then clear.

        Returns the mean win rate of those episodes (None when there were none)."""
        if not stats["return"]:
            return None
        won = float(np.mean(stats["battle_won"]))
        self.logger.log_stat(prefix + "return_mean", float(np.mean(stats["return"])), self.t_env)
        self.logger.log_stat(prefix + "return_std", float(np.std(stats["return"])), self.t_env)
        self.logger.log_stat(prefix + "battle_won_mean", won, self.t_env)
        self.logger.log_stat(prefix + "ep_length_mean", float(np.mean(stats["ep_length"])), self.t_env)
        for v in stats.values():
            v.clear()
        return won
