"""A runner without lockstep waste: every env steps every iteration, and an env whose episode
ended restarts at once (``runner=continuous``).

The lockstep runner (``runner=parallel``) plays one episode per env per ``run`` and steps only
the envs still playing, so in training most of the batch waits for its longest episode. Here
each loop iteration acts for all ``n_envs`` envs in one ``mac.act`` call and advances them with
one ``env.step_and_reset`` (SMAX: one jitted call that also restarts the envs whose episode just
ended, src/envs/smax.py). Episodes in flight, with their rows of the controller's hidden state,
live on between ``run`` calls.

Semantics kept from the lockstep runner (so the training loop is unchanged):
- ``run(test_mode=False)`` returns exactly ``n_envs`` finished episodes (an EpisodeBatch cut to
  the longest of them), the oldest first; episodes that finish beyond that wait for the next
  call. One learner update per ``batch_size_run`` episodes, as before.
- ``t_env`` counts the steps of the episodes returned (an episode's steps count when it is
  returned); the steps of the at most ``n_envs`` episodes in flight count later.
- Every env's hidden state rows and last action are reset when it starts an episode.
- Env ``i``'s ``k``-th episode is the battle env ``i`` plays at the lockstep runner's ``k``-th
  run (SMAX seeding), so with the same actions both runners collect the same episodes, in
  another order.
Differences: an episode in flight when the learner updates goes on with the new weights (and
the hidden state the old ones built), and epsilon follows ``t_env`` as above.

Test mode stays lockstep (the test episodes are counted exactly): ``run(test_mode=True)`` plays
one episode in each of ``n_envs`` separate test envs, envs ``n_envs .. 2 n_envs - 1`` of the
seed's stream (``first_env_index`` shifted by ``n_envs``), so the training envs' episodes in
flight are untouched; the controller's hidden state is restored afterwards.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

import numpy as np
import torch

from components.episode_buffer import EpisodeBatch
from runners.batch_runner import BatchRunner

OBS_SLOTS = ("obs", "state", "avail_actions")   # max_t + 1 slots
STEP_SLOTS = ("actions", "reward", "terminated")  # max_t slots


def reset_hidden_rows(hidden: Any, fresh: Any, rows: torch.Tensor) -> Any:
    """``hidden`` with the rows flagged in ``rows`` [batch * agents] (bool) taken from ``fresh``.

    ``hidden`` / ``fresh``: a tensor [batch * agents, ...] or a tuple of them (spiking agents)."""
    if isinstance(hidden, (tuple, list)):
        return type(hidden)(reset_hidden_rows(h, f, rows) for h, f in zip(hidden, fresh))
    mask = rows.reshape((-1,) + (1,) * (hidden.dim() - 1))
    return torch.where(mask, fresh, hidden)


def _tensors(value: Any) -> Any:
    """numpy arrays (in dicts/lists) -> torch tensors, for ``weights_only`` checkpoints."""
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy())
    if isinstance(value, dict):
        return {k: _tensors(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_tensors(v) for v in value)
    return value


def _arrays(value: Any) -> Any:
    """Inverse of ``_tensors``: torch tensors -> numpy arrays."""
    if isinstance(value, torch.Tensor):
        return value.cpu().numpy().copy()
    if isinstance(value, dict):
        return {k: _arrays(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_arrays(v) for v in value)
    return value


class ContinuousRunner(BatchRunner):
    """``n_envs`` envs that never wait for each other (see the module docstring)."""

    def __init__(self, args: Any, logger: Any, n_envs: int) -> None:
        super().__init__(args, logger, n_envs)
        if not getattr(self.env, "resets_single_envs", False):
            self.env.close()
            raise ValueError(f"runner=continuous needs envs that restart one by one, which the '{args.env}' env "
                             f"does not offer; use runner=parallel.")
        self.test_env: Any = None
        self.live: Optional[Dict[str, Any]] = None  # episodes in flight (``_start``)
        self.queue: List[Dict[str, Any]] = []       # finished episodes not yet returned
        self.last_origins: List[tuple] = []        # (env, episode number of that env) of the last batch

    def close(self) -> None:
        super().close()
        if self.test_env is not None:
            self.test_env.close()

    # ------------------------------------------------------------------ training
    def run(self, test_mode: bool = False) -> EpisodeBatch:
        """``n_envs`` finished training episodes (oldest first), or with ``test_mode`` one
        lockstep episode in each test env. Training episodes advance ``t_env``."""
        if test_mode:
            return self._run_test()
        if self.live is None:
            self._start()
        while len(self.queue) < self.n_envs:
            self._step()
        done, self.queue = self.queue[:self.n_envs], self.queue[self.n_envs:]
        self.last_origins = [ep["origin"] for ep in done]
        lengths = np.array([ep["length"] for ep in done], dtype=np.int64)
        info = self.env_info
        batch = EpisodeBatch.zeros(len(done), int(lengths.max()), info["n_agents"], info["obs_shape"],
                                   info["state_shape"], info["n_actions"])
        out = {k: v.numpy() for k, v in batch.as_dict().items()}
        for j, ep in enumerate(done):
            n = ep["length"]
            for k in OBS_SLOTS:
                out[k][j, :n + 1] = ep[k]
            for k in STEP_SLOTS:
                out[k][j, :n] = ep[k]
            out["filled"][j, :n] = 1.0
        self._record(np.array([ep["return"] for ep in done]), np.array([ep["won"] for ep in done]), lengths,
                     test_mode=False)
        return batch

    def _start(self) -> None:
        """Reset all envs and the controller's hidden state; open an episode in every env."""
        info, n = self.env_info, self.n_envs
        na, nact, limit = info["n_agents"], info["n_actions"], self.episode_limit
        buf = {"obs": np.zeros((n, limit + 1, na, info["obs_shape"]), np.float32),
               "state": np.zeros((n, limit + 1, info["state_shape"]), np.float32),
               "avail_actions": np.zeros((n, limit + 1, na, nact), np.uint8),
               "actions": np.zeros((n, limit, na), np.int64),
               "reward": np.zeros((n, limit), np.float32),
               "terminated": np.zeros((n, limit), np.float32)}
        self.live = {"buf": buf, "t": np.zeros(n, np.int64), "returns": np.zeros(n, np.float64),
                     "episode": np.zeros(n, np.int64)}
        self._now = self.env.reset()
        for k in OBS_SLOTS:
            buf[k][:, 0] = self._now[k]
        self.mac.init_hidden(n)
        self._init_acting()

    def _init_acting(self) -> None:
        """Per-step helpers: row indices, the fresh hidden state, the last actions one-hot."""
        n, na = self.n_envs, self.env_info["n_agents"]
        self._rows = np.arange(n)
        agent = getattr(self.mac, "agent", None)
        self._fresh = agent.init_hidden(n * na) if hasattr(agent, "init_hidden") else None
        t = self.live["t"]
        last = self.live["buf"]["actions"][self._rows, np.maximum(t - 1, 0)]
        onehot = torch.nn.functional.one_hot(torch.from_numpy(last), self.env_info["n_actions"]).float()
        onehot[torch.from_numpy(t == 0)] = 0.0  # an episode's first step has no last action
        self._last_onehot = onehot.to(self.args.device)

    def _step(self) -> None:
        """One step of every env; finished episodes go to the queue and their envs restart."""
        live, buf, rows, device = self.live, self.live["buf"], self._rows, self.args.device
        now = self._now
        actions = self.mac.act(torch.from_numpy(now["obs"]).to(device), self._last_onehot,
                               torch.from_numpy(now["avail_actions"]).to(device), self.t_env, False)
        acts = actions.cpu().numpy()
        nxt, reward, terminated, info, self._now = self.env.step_and_reset(acts)
        t = live["t"]
        buf["actions"][rows, t] = acts
        buf["reward"][rows, t] = reward
        buf["terminated"][rows, t] = terminated
        live["returns"] += reward
        t += 1
        for k in OBS_SLOTS:
            buf[k][rows, t] = nxt[k]
        self._last_onehot.zero_().scatter_(-1, actions.unsqueeze(-1), 1.0)  # mac.act keeps no reference
        done = terminated | info["episode_limit"]
        if not done.any():
            if int(t.max()) >= self.episode_limit:
                raise RuntimeError(f"an env ran past episode_limit={self.episode_limit} without ending its episode")
            return
        for i in np.flatnonzero(done):
            n = int(t[i])
            ep = {k: buf[k][i, :n + 1].copy() for k in OBS_SLOTS}
            ep.update({k: buf[k][i, :n].copy() for k in STEP_SLOTS})
            ep.update(length=n, won=bool(info["battle_won"][i]), origin=(int(i), int(live["episode"][i])),
                      **{"return": float(live["returns"][i])})
            self.queue.append(ep)
            for k in OBS_SLOTS:
                buf[k][i, 0] = self._now[k][i]
        t[done] = 0
        live["returns"][done] = 0.0
        live["episode"][done] += 1
        self._last_onehot[torch.from_numpy(done).to(self._last_onehot.device)] = 0.0
        if self._fresh is not None and getattr(self.mac, "hidden", None) is not None:
            rows_mask = torch.from_numpy(np.repeat(done, self.env_info["n_agents"]))
            self.mac.hidden = reset_hidden_rows(self.mac.hidden, self._fresh, rows_mask.to(device))

    # ------------------------------------------------------------------ testing
    def _run_test(self) -> EpisodeBatch:
        """Lockstep test episodes on the test envs; the training state is left as it was."""
        if self.test_env is None:
            self.test_env = self._make_env(env_index_offset=self.n_envs)
        saved = getattr(self.mac, "hidden", None)
        try:
            return self._play_lockstep(self.test_env, test_mode=True)
        finally:
            if saved is not None:
                self.mac.hidden = saved

    # ------------------------------------------------------------------ resume
    def state_dict(self) -> Dict[str, Any]:
        """``BatchRunner.state_dict`` (its ``env`` holds the envs' in-flight state) plus the
        episodes in flight (their rows so far, step counters, returns, episode numbers), the
        controller's hidden state, the finished episodes not yet returned and the test envs'
        state; numpy arrays become tensors (plain data for ``weights_only`` checkpoints)."""
        state = super().state_dict()
        live = None
        if self.live is not None:
            used = int(self.live["t"].max()) + 1
            buf = {k: v[:, :used + (1 if k in OBS_SLOTS else 0)] for k, v in self.live["buf"].items()}
            hidden = getattr(self.mac, "hidden", None)
            live = {"buf": buf, "t": self.live["t"], "returns": self.live["returns"],
                    "episode": self.live["episode"],
                    "hidden": ([h.clone() for h in hidden] if isinstance(hidden, (tuple, list))
                               else None if hidden is None else hidden.clone()),
                    "hidden_is_tuple": isinstance(hidden, (tuple, list))}
        state["live"] = _tensors(live)
        state["queue"] = _tensors([dict(ep, origin=list(ep["origin"])) for ep in self.queue])
        state["test_env"] = (self.test_env.state_dict()
                             if self.test_env is not None and hasattr(self.test_env, "state_dict") else None)
        return state

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore ``state_dict()``: the episodes in flight continue where they were."""
        super().load_state_dict(state)
        self.queue = [dict(ep, origin=tuple(ep["origin"])) for ep in _arrays(state.get("queue") or [])]
        if state.get("test_env") is not None:
            if self.test_env is None:
                self.test_env = self._make_env(env_index_offset=self.n_envs)
            self.test_env.load_state_dict(state["test_env"])
        saved = state.get("live")
        if saved is None:
            self.live = None
            return
        if state.get("env") is None:
            raise ValueError(f"the checkpoint holds episodes in flight but no '{self.args.env}' env state to "
                             f"continue them")
        hidden = saved.pop("hidden")
        is_tuple = bool(saved.pop("hidden_is_tuple"))
        saved = _arrays(saved)
        self._start_buffers_like(saved)
        if hidden is not None:
            hidden = [h.to(self.args.device) for h in hidden] if is_tuple else hidden.to(self.args.device)
            self.mac.hidden = tuple(hidden) if is_tuple else hidden
        self._init_acting()

    def _start_buffers_like(self, saved: Dict[str, Any]) -> None:
        """Rebuild the in-flight buffers from a saved (cut) copy; ``_now`` from their last slots."""
        info, n, limit = self.env_info, self.n_envs, self.episode_limit
        if saved["t"].shape != (n,):
            raise ValueError(f"the checkpoint's runner holds {saved['t'].shape[0]} envs, this run {n}: resume "
                             f"with the same batch_size_run.")
        shapes = {"obs": (info["n_agents"], info["obs_shape"]), "state": (info["state_shape"],),
                  "avail_actions": (info["n_agents"], info["n_actions"]), "actions": (info["n_agents"],),
                  "reward": (), "terminated": ()}
        buf = {}
        for k, tail in shapes.items():
            src = saved["buf"][k]
            buf[k] = np.zeros((n, limit + (1 if k in OBS_SLOTS else 0)) + tail, src.dtype)
            buf[k][:, :src.shape[1]] = src
        self.live = {"buf": buf, "t": saved["t"].astype(np.int64), "returns": saved["returns"].astype(np.float64),
                     "episode": saved["episode"].astype(np.int64)}
        rows, t = np.arange(n), self.live["t"]
        self._now = {k: buf[k][rows, t].copy() for k in OBS_SLOTS}
