"""The batch interface every multi-agent environment adapter (smax, sc2) offers the runner.

A ``BatchEnv`` holds ``n_envs`` independent copies of one cooperative multi-agent task
and steps them together. All arrays are numpy, first dim ``n_envs``:

    reset() -> {"obs":           float32 [n_envs, n_agents, obs_dim],
                "state":         float32 [n_envs, state_dim],
                "avail_actions": uint8   [n_envs, n_agents, n_actions]}   (1 = available)

    step(actions int [n_envs, n_agents], active bool [n_envs] | None)
        -> (next: dict as above,
            reward:     float32 [n_envs]   team reward, already scaled,
            terminated: bool    [n_envs]   the episode ended for real (win, loss, draw),
            info: {"battle_won":    bool [n_envs],
                   "episode_limit": bool [n_envs]})

``episode_limit`` is True when the episode ended only because the time limit was reached;
such a step is *not* terminal for bootstrapping, so ``terminated`` is False there. The
episode is over when ``terminated | info["episode_limit"]``.

Envs whose ``active`` entry is False may or may not be stepped; their outputs are
meaningless and must be ignored by the caller (they never raise). ``active=None`` means
all envs are active. ``reset()`` restarts all envs.

Envs that can restart single envs (``resets_single_envs = True``) also offer

    step_and_reset(actions int [n_envs, n_agents])
        -> (next, reward, terminated, info as step's, for all envs,
            now: dict as reset's)

which steps every env and at once restarts those whose episode ended on this step: ``next``
holds their final observations (the episode's last observation slot), ``now`` what to act on
next (the new episode's first observations there, ``next``'s rows elsewhere).

An action that is not available raises ``ValueError`` naming the env, the agent and the
action (see ``check_actions``).
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import numpy as np

StepOut = Tuple[Dict[str, np.ndarray], np.ndarray, np.ndarray, Dict[str, np.ndarray]]
ResetStepOut = Tuple[Dict[str, np.ndarray], np.ndarray, np.ndarray, Dict[str, np.ndarray], Dict[str, np.ndarray]]


class BatchEnv:
    """Base class of the batch environments (see the module docstring for the contract)."""

    n_envs: int
    #: True when ``step`` validates actions against ``avail_actions`` (see ``check_actions``).
    checks_actions: bool = True
    #: True when ``step_and_reset`` restarts single envs (what runner=continuous needs).
    resets_single_envs: bool = False

    def get_env_info(self) -> Dict[str, Any]:
        """Return at least ``n_agents, n_actions, obs_shape, state_shape, episode_limit, n_enemies``
        (all int; shapes are the per-agent obs length and the state length)."""
        raise NotImplementedError

    def reset(self) -> Dict[str, np.ndarray]:
        """Restart every env; return ``{"obs", "state", "avail_actions"}`` (shapes above)."""
        raise NotImplementedError

    def step(self, actions: np.ndarray, active: Optional[np.ndarray] = None) -> StepOut:
        """Apply ``actions [n_envs, n_agents]`` to the envs flagged in ``active [n_envs]``."""
        raise NotImplementedError

    def step_and_reset(self, actions: np.ndarray) -> ResetStepOut:
        """Step all envs with ``actions [n_envs, n_agents]`` and restart the ended ones (see above)."""
        raise NotImplementedError(f"{type(self).__name__} cannot restart single envs, which runner=continuous "
                                  f"needs; use runner=parallel")

    def get_stats(self) -> Dict[str, float]:
        """Cumulative statistics of the episodes played so far (may be empty)."""
        return {}

    def close(self) -> None:
        """Release resources (processes, game clients). Safe to call twice."""


def check_actions(actions: np.ndarray, avail: np.ndarray, active: Optional[np.ndarray]) -> np.ndarray:
    """Validate ``actions [n_envs, n_agents]`` against ``avail [n_envs, n_agents, n_actions]``.

    Only envs with ``active [n_envs]`` True (all when None) are checked. Returns the actions
    as an int32 array. Raises ``ValueError`` naming the first offending env, agent and action.
    """
    n_envs, n_agents, n_actions = avail.shape
    acts = np.asarray(actions)
    if acts.shape != (n_envs, n_agents):
        raise ValueError(f"actions must have shape [n_envs, n_agents] = [{n_envs}, {n_agents}], "
                         f"got {list(acts.shape)}")
    if not np.issubdtype(acts.dtype, np.integer):
        # inf == round(inf), so finiteness is checked too (an inf would wrap to some action)
        if (np.issubdtype(acts.dtype, np.floating) and np.all(np.isfinite(acts))
                and np.all(acts == np.round(acts))):
            acts = acts.astype(np.int64)
        else:
            raise ValueError(f"actions must be integers, got dtype {acts.dtype}")
    # range-check in 64 bits before narrowing: int32(2**32 + a) would wrap to a valid a
    acts = acts.astype(np.int64, copy=False)
    if active is None and acts.size and 0 <= acts.min() and acts.max() < n_actions:  # fast path: all valid?
        acts = acts.astype(np.int32)
        if avail.reshape(-1, n_actions)[np.arange(acts.size), acts.reshape(-1)].all():
            return acts
    in_range = (acts >= 0) & (acts < n_actions)
    picked = np.take_along_axis(avail, np.clip(acts, 0, n_actions - 1)[..., None], axis=-1)[..., 0]
    bad = ~(in_range & (picked != 0))
    if active is not None:
        bad &= np.asarray(active, dtype=bool)[:, None]
    if bad.any():
        e, a = (int(i) for i in np.argwhere(bad)[0])
        act = int(acts[e, a])
        if not in_range[e, a]:
            raise ValueError(f"env {e}, agent {a}: action {act} is out of range [0, {n_actions})")
        valid = np.flatnonzero(avail[e, a]).tolist()
        raise ValueError(f"env {e}, agent {a}: action {act} is not available (available: {valid}). "
                         f"Mask the action choice with avail_actions.")
    return acts.astype(np.int32)


class LoopedBatchEnv(BatchEnv):
    """``n_envs`` single-env ``BatchEnv`` s stepped one after another in a Python loop.

    The unvectorised baseline (what stepping one env per worker amounts to on a small machine):
    same contract and, for SMAX, the same battles as the vectorised batch of the same seed,
    because env ``i`` is built with ``first_env_index + i``. Inactive envs are not stepped; their
    rows repeat the env's last outputs (with zero reward and False flags).
    """

    def __init__(self, envs: "list[BatchEnv]", checks_actions: Optional[bool] = None) -> None:
        """``checks_actions``: validate the whole batch's actions here (default: as the sub-envs
        do). Build the sub-envs without their own check to validate each action only once."""
        if not envs or any(e.n_envs != 1 for e in envs):
            raise ValueError("LoopedBatchEnv needs a non-empty list of single-env BatchEnvs (n_envs == 1).")
        self.envs = list(envs)
        self.n_envs = len(self.envs)
        self.checks_actions = self.envs[0].checks_actions if checks_actions is None else bool(checks_actions)
        self.resets_single_envs = True  # each sub-env resets on its own
        self._last: Optional[Dict[str, np.ndarray]] = None

    def get_env_info(self) -> Dict[str, Any]:
        return self.envs[0].get_env_info()

    @staticmethod
    def _stack(parts: "list[Dict[str, np.ndarray]]") -> Dict[str, np.ndarray]:
        return {k: np.concatenate([p[k] for p in parts], axis=0) for k in parts[0]}

    def reset(self) -> Dict[str, np.ndarray]:
        self._last = self._stack([e.reset() for e in self.envs])
        return {k: v.copy() for k, v in self._last.items()}

    def step(self, actions: np.ndarray, active: Optional[np.ndarray] = None) -> StepOut:
        if self._last is None:
            raise RuntimeError("LoopedBatchEnv.step() called before reset()")
        acts = np.asarray(actions)
        if acts.shape[:1] != (self.n_envs,):
            raise ValueError(f"actions must have shape [n_envs={self.n_envs}, n_agents], got {list(acts.shape)}")
        active = np.ones((self.n_envs,), dtype=bool) if active is None else np.asarray(active, dtype=bool)
        if self.checks_actions:  # check the whole batch first, so errors name the batch's env index
            acts = check_actions(acts, self._last["avail_actions"], active)
        reward = np.zeros((self.n_envs,), dtype=np.float32)
        terminated = np.zeros((self.n_envs,), dtype=bool)
        won = np.zeros((self.n_envs,), dtype=bool)
        limit = np.zeros((self.n_envs,), dtype=bool)
        for i, env in enumerate(self.envs):
            if not active[i]:
                continue
            nxt, r, term, info = env.step(acts[i:i + 1])
            for k, v in nxt.items():
                self._last[k][i] = v[0]
            reward[i], terminated[i] = r[0], term[0]
            won[i], limit[i] = info["battle_won"][0], info["episode_limit"][0]
        nxt = {k: v.copy() for k, v in self._last.items()}
        return nxt, reward, terminated, {"battle_won": won, "episode_limit": limit}

    def step_and_reset(self, actions: np.ndarray) -> ResetStepOut:
        """Step all sub-envs, then ``reset()`` each one whose episode ended (its own next reset:
        the same battles as ``SMAXBatchEnv.step_and_reset``)."""
        nxt, reward, terminated, info = self.step(actions)
        assert self._last is not None
        for i in np.flatnonzero(terminated | info["episode_limit"]):
            for k, v in self.envs[i].reset().items():
                self._last[k][i] = v[0]
        return nxt, reward, terminated, info, {k: v.copy() for k, v in self._last.items()}

    def get_stats(self) -> Dict[str, float]:
        total: Dict[str, float] = {}
        for env in self.envs:
            for k, v in env.get_stats().items():
                if k != "win_rate":
                    total[k] = total.get(k, 0) + v
        if "battles_game" in total:
            total["win_rate"] = total["battles_won"] / total["battles_game"] if total["battles_game"] else 0.0
        return total

    def state_dict(self) -> Dict[str, Any]:
        """The sub-envs' states (see ``SMAXBatchEnv.state_dict``), for checkpoints."""
        return {"envs": [e.state_dict() for e in self.envs]}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        for env, sub in zip(self.envs, state["envs"]):
            env.load_state_dict(sub)

    def close(self) -> None:
        for env in self.envs:
            env.close()
