"""Batch adapter for the real StarCraft II SMAC (oxwhirl ``smac.env.StarCraft2Env``).

``make_sc2_batch(n_envs, seed, **env_args)`` returns a ``BatchEnv`` whose arrays are
stacked over environments:

    reset() -> {"obs": float32 [n_envs, n_agents, obs_dim],
                "state": float32 [n_envs, state_dim],
                "avail_actions": uint8 [n_envs, n_agents, n_actions]}
    step(actions int [n_envs, n_agents], active bool [n_envs])
        -> (same dict, reward float32 [n_envs], terminated bool [n_envs],
            {"battle_won": bool [n_envs], "episode_limit": bool [n_envs]})

``terminated`` is True only for a real end of the battle (win, loss, draw); an
episode cut by the time limit has ``terminated=False`` and ``episode_limit=True``
(so the learner bootstraps from it). Inactive envs are not stepped; their rows are
zeros. An unavailable action raises ValueError (``envs.batch_env.check_actions``).

One env runs in this process. More envs run one per worker process (``spawn``),
talking over pipes; a worker that raises or dies makes the main process raise a
``RuntimeError`` naming the env index and the worker's error, never hang.

SMAC itself is imported lazily here, so the rest of the project works without it.
"""
from __future__ import annotations

import importlib
import importlib.util
import multiprocessing as mp
import os
import signal
import sys
import time
import traceback
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from utils.registry import MissingDependencyError

from envs.batch_env import BatchEnv, check_actions

INSTALL_HINT = (
    "The 'sc2' env needs StarCraft II (Linux 4.10) and oxwhirl SMAC (not on PyPI; "
    "PyPI's 'smac' is an unrelated AutoML package: `pip uninstall smac` if you have it). "
    "Install both with `bash install_sc2.sh` (StarCraft II into $SC2PATH, default "
    "~/StarCraftII, SMAC maps, and SMAC from git), or use the docker image: "
    "`bash docker/build.sh` then `bash run.sh 0 python src/main.py --config=qmix "
    "--env-config=sc2 with agent=grsn`. The embedded default `--env-config=smax` "
    "needs none of this."
)


# --------------------------------------------------------------------------- import

def _import_starcraft2env() -> Any:
    """Return oxwhirl SMAC's ``StarCraft2Env`` class or raise MissingDependencyError."""
    try:
        smac = importlib.import_module("smac")
    except ImportError as exc:
        raise MissingDependencyError(f"oxwhirl SMAC is not installed ({exc}). {INSTALL_HINT}") from exc
    try:
        has_env = importlib.util.find_spec("smac.env") is not None
    except (ImportError, ValueError):
        has_env = False
    if not has_env:
        where = getattr(smac, "__file__", None) or "?"
        raise MissingDependencyError(
            f"the installed 'smac' package ({where}) has no 'smac.env' module: it is PyPI's "
            f"AutoML 'smac', not oxwhirl's StarCraft Multi-Agent Challenge. {INSTALL_HINT}")
    try:
        env_mod = importlib.import_module("smac.env")
    except ImportError as exc:
        raise MissingDependencyError(
            f"oxwhirl SMAC is installed but 'smac.env' failed to import ({exc}); its dependencies "
            f"(pysc2, s2clientprotocol, protobuf) may be missing or incompatible. {INSTALL_HINT}"
        ) from exc
    if not hasattr(env_mod, "StarCraft2Env"):
        raise MissingDependencyError(f"'smac.env' has no StarCraft2Env. {INSTALL_HINT}")
    return env_mod.StarCraft2Env


def _check_game_files(map_name: Optional[str]) -> None:
    """On Linux, fail early (with the install hint) when StarCraft II or the map is absent."""
    if not sys.platform.startswith("linux"):
        return  # pysc2 finds Battle.net installs on macOS/Windows itself
    sc2_path = os.path.expanduser(os.environ.get("SC2PATH", "~/StarCraftII"))
    if not os.path.isdir(sc2_path):
        raise MissingDependencyError(
            f"StarCraft II not found at '{sc2_path}' (set SC2PATH to the game folder). {INSTALL_HINT}")
    if map_name:
        map_file = os.path.join(sc2_path, "Maps", "SMAC_Maps", f"{map_name}.SC2Map")
        if not os.path.isfile(map_file):
            raise MissingDependencyError(
                f"SMAC map '{map_name}' not found at '{map_file}'. Check env_args.map_name "
                f"(e.g. 3m, 8m, 2s3z, MMM2) and install the SMAC maps. {INSTALL_HINT}")


# --------------------------------------------------------------------------- one env

class _SingleSC2:
    """One SMAC env with numpy outputs and time-limit detection. Runs in a worker or in-process."""

    def __init__(self, env_cls: Any, seed: int, env_args: Dict[str, Any]) -> None:
        self.env = env_cls(seed=seed, **env_args)
        info = dict(self.env.get_env_info())
        info.setdefault("n_enemies", int(getattr(self.env, "n_enemies", 0)))
        self.info = info
        self.n_agents = int(info["n_agents"])
        self.n_enemies = int(info["n_enemies"])
        self.episode_limit = int(info["episode_limit"])
        self.t = 0

    def _observe(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        obs = np.asarray(self.env.get_obs(), dtype=np.float32)
        state = np.asarray(self.env.get_state(), dtype=np.float32)
        avail = np.asarray(self.env.get_avail_actions(), dtype=np.uint8)
        return obs, state, avail

    def reset(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        self.env.reset()
        self.t = 0
        return self._observe()

    def step(self, actions: np.ndarray) -> Tuple[Any, ...]:
        reward, terminated, info = self.env.step([int(a) for a in actions])
        self.t += 1
        info = info or {}
        battle_won = bool(info.get("battle_won", False))
        # SMAC flags the time limit only with continuing_episode=True; otherwise it ends the
        # episode as terminated. A time-out is an end at the limit without a decided battle.
        decided = (battle_won
                   or info.get("dead_allies", 0) >= self.n_agents
                   or info.get("dead_enemies", 0) >= self.n_enemies)
        time_limit = bool(info.get("episode_limit", False)) or (
            bool(terminated) and self.t >= self.episode_limit and not decided and "dead_allies" in info)
        obs, state, avail = self._observe()
        return (obs, state, avail, float(reward), bool(terminated) and not time_limit,
                battle_won, time_limit)

    def get_stats(self) -> Dict[str, Any]:
        return dict(self.env.get_stats())

    def close(self) -> None:
        self.env.close()


def _worker(conn: Any, index: int, seed: int, env_args: Dict[str, Any]) -> None:
    """Worker process loop: build the env, then serve (cmd, data) requests until 'close'."""
    env: Optional[_SingleSC2] = None
    # terminate() from the parent -> SystemExit here, so the finally block closes StarCraft II
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the parent, which closes us
    try:
        try:
            env = _SingleSC2(_import_starcraft2env(), seed, env_args)
            conn.send(("ok", env.info))
        except Exception:  # noqa: BLE001 - report every error to the parent
            conn.send(("error", traceback.format_exc()))
            return
        while True:
            try:
                cmd, data = conn.recv()
            except (EOFError, OSError):  # parent gone
                break
            try:
                if cmd == "reset":
                    out: Any = env.reset()
                elif cmd == "step":
                    out = env.step(data)
                elif cmd == "get_stats":
                    out = env.get_stats()
                elif cmd == "close":
                    env.close()
                    env = None
                    conn.send(("ok", None))
                    break
                else:
                    raise ValueError(f"unknown worker command {cmd!r}")
                conn.send(("ok", out))
            except Exception:  # noqa: BLE001 - SystemExit (terminate) still ends the loop
                conn.send(("error", traceback.format_exc()))
    except (BrokenPipeError, EOFError, OSError, KeyboardInterrupt):
        pass
    finally:
        if env is not None:
            try:
                env.close()
            except BaseException:  # noqa: BLE001
                pass
        conn.close()


class _LocalSlot:
    """In-process env with the same request/response shape as a worker."""

    def __init__(self, index: int, seed: int, env_args: Dict[str, Any]) -> None:
        self.index = index
        self.env = _SingleSC2(_import_starcraft2env(), seed, env_args)
        self.info = self.env.info

    def send(self, cmd: str, data: Any = None) -> None:
        self._pending = (cmd, data)

    def recv(self) -> Any:
        cmd, data = self._pending
        if cmd == "reset":
            return self.env.reset()
        if cmd == "step":
            return self.env.step(data)
        if cmd == "get_stats":
            return self.env.get_stats()
        if cmd == "close":
            return self.env.close()
        raise ValueError(f"unknown command {cmd!r}")

    def shutdown(self) -> None:
        self.env.close()


class _WorkerSlot:
    """One env in a worker process; every receive polls with a timeout and checks liveness."""

    def __init__(self, ctx: Any, index: int, seed: int, env_args: Dict[str, Any], timeout: float) -> None:
        self.index = index
        self.timeout = timeout
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker, args=(child, index, seed, env_args),
                                name=f"sc2-env-{index}", daemon=True)
        self.proc.start()
        child.close()
        self.info: Dict[str, Any] = {}

    def send(self, cmd: str, data: Any = None) -> None:
        try:
            self.conn.send((cmd, data))
        except (BrokenPipeError, OSError) as exc:
            raise RuntimeError(self._dead_message(f"could not send '{cmd}' ({exc})")) from exc

    def _dead_message(self, what: str) -> str:
        self.proc.join(timeout=1.0)
        code = self.proc.exitcode
        return (f"sc2 env worker {self.index} (pid {self.proc.pid}) died: {what}; exit code {code}. "
                f"Check StarCraft II ($SC2PATH) and the worker's output above.")

    def recv(self) -> Any:
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                ready = self.conn.poll(0.2)
            except (EOFError, OSError):
                ready = True
            if ready:
                try:
                    status, payload = self.conn.recv()
                except (EOFError, OSError) as exc:
                    raise RuntimeError(self._dead_message(f"its pipe closed ({exc!r})")) from exc
                if status == "error":
                    raise RuntimeError(f"sc2 env worker {self.index} raised an error:\n{payload}")
                return payload
            if not self.proc.is_alive():
                raise RuntimeError(self._dead_message("it exited without answering"))
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"sc2 env worker {self.index} (pid {self.proc.pid}) did not answer within "
                    f"{self.timeout:g} s (StarCraft II hung?). Raise worker_timeout if the game "
                    f"is just slow to start.")

    def shutdown(self, grace: float = 10.0) -> None:
        """Ask the worker to close its game; terminate it if it does not within ``grace`` s."""
        if self.proc.is_alive() and grace > 0:
            try:
                self.conn.send(("close", None))
                if self.conn.poll(grace):
                    self.conn.recv()
                    self.proc.join(timeout=grace)
            except (BrokenPipeError, EOFError, OSError):
                pass
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(timeout=5.0)
        if self.proc.is_alive():  # pragma: no cover - stubborn process
            self.proc.kill()
            self.proc.join(timeout=grace)
        self.conn.close()


# --------------------------------------------------------------------------- batch

class SC2BatchEnv(BatchEnv):
    """``n_envs`` SMAC envs behind the BatchEnv interface (see module docstring for shapes)."""

    def __init__(self, n_envs: int, seed: int, env_args: Dict[str, Any], worker_timeout: float = 600.0) -> None:
        if int(n_envs) < 1:
            raise ValueError(f"n_envs must be >= 1, got {n_envs}")
        self.n_envs = int(n_envs)
        self._closed = False
        self._slots: List[Any] = []
        current = -1
        try:
            if self.n_envs == 1:
                self._slots.append(_LocalSlot(0, seed, env_args))
            else:
                ctx = mp.get_context("spawn")
                for i in range(self.n_envs):
                    self._slots.append(_WorkerSlot(ctx, i, seed + i, env_args, worker_timeout))
                for current, slot in enumerate(self._slots):
                    slot.info = slot.recv()
        except BaseException:
            self.close(failed=current)
            raise
        info = dict(self._slots[0].info)
        self._info = {
            "n_agents": int(info["n_agents"]),
            "n_actions": int(info["n_actions"]),
            "obs_shape": int(info["obs_shape"]),
            "state_shape": int(info["state_shape"]),
            "episode_limit": int(info["episode_limit"]),
            "n_enemies": int(info["n_enemies"]),
        }
        self._avail: Optional[np.ndarray] = None  # last avail_actions, to validate actions

    # -- interface ---------------------------------------------------------
    def get_env_info(self) -> Dict[str, int]:
        """n_agents, n_actions, obs_shape, state_shape, episode_limit, n_enemies."""
        return dict(self._info)

    def _zeros(self) -> Dict[str, np.ndarray]:
        i, n = self._info, self.n_envs
        return {"obs": np.zeros((n, i["n_agents"], i["obs_shape"]), np.float32),
                "state": np.zeros((n, i["state_shape"]), np.float32),
                "avail_actions": np.zeros((n, i["n_agents"], i["n_actions"]), np.uint8)}

    def _call_all(self, cmd: str, data: Optional[List[Any]] = None, which: Optional[List[int]] = None) -> Dict[int, Any]:
        idx = list(range(self.n_envs)) if which is None else which
        self._check_open()
        current = -1
        try:
            for k, i in enumerate(idx):
                current = i
                self._slots[i].send(cmd, None if data is None else data[k])
            results = {}
            for i in idx:
                current = i
                results[i] = self._slots[i].recv()
            return results
        except RuntimeError:
            self.close(failed=current)
            raise

    def reset(self) -> Dict[str, np.ndarray]:
        """Reset every env. Returns obs [n_envs, n_agents, obs_dim], state, avail_actions."""
        out = self._zeros()
        for i, (obs, state, avail) in self._call_all("reset").items():
            out["obs"][i], out["state"][i], out["avail_actions"][i] = obs, state, avail
        self._avail = out["avail_actions"].copy()
        return out

    def step(self, actions: Any, active: Any = None) -> Tuple[Dict[str, np.ndarray], np.ndarray, np.ndarray, Dict[str, np.ndarray]]:
        """Step active envs with ``actions`` int [n_envs, n_agents]; inactive rows are zeros."""
        n = self.n_envs
        if self._avail is None:
            raise RuntimeError("call reset() before step()")
        active_arr = np.ones(n, bool) if active is None else np.asarray(active, dtype=bool).reshape(n)
        actions = check_actions(actions, self._avail, active_arr)
        which = [i for i in range(n) if active_arr[i]]
        out = self._zeros()
        reward = np.zeros(n, np.float32)
        terminated = np.zeros(n, bool)
        won = np.zeros(n, bool)
        limit = np.zeros(n, bool)
        if which:
            res = self._call_all("step", [actions[i].astype(np.int64) for i in which], which)
            for i, (obs, state, avail, r, term, bw, lim) in res.items():
                out["obs"][i], out["state"][i], out["avail_actions"][i] = obs, state, avail
                reward[i], terminated[i], won[i], limit[i] = r, term, bw, lim
                self._avail[i] = avail
        return out, reward, terminated, {"battle_won": won, "episode_limit": limit}

    def get_stats(self) -> Dict[str, Any]:
        """Summed SMAC statistics over envs (battles_won, battles_game, timeouts, ...) and win_rate."""
        per_env = self._call_all("get_stats")
        total: Dict[str, Any] = {}
        for stats in per_env.values():
            for k, v in stats.items():
                if k == "win_rate" or not isinstance(v, (int, float, np.number)):
                    continue
                total[k] = total.get(k, 0) + v
        games = total.get("battles_game", 0)
        total["win_rate"] = float(total.get("battles_won", 0)) / games if games else 0.0
        return total

    def close(self, failed: int = -1) -> None:
        """Close every env and stop the workers (idempotent). Worker ``failed`` is terminated at once."""
        if self._closed:
            return
        self._closed = True
        for i, slot in enumerate(self._slots):
            try:
                if isinstance(slot, _WorkerSlot):
                    slot.shutdown(grace=0.0 if i == failed else 10.0)
                else:
                    slot.shutdown()
            except BaseException:  # noqa: BLE001 - best effort on the way out
                pass

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this sc2 batch env is closed (a worker failed earlier or close() was called)")

    def __del__(self) -> None:  # pragma: no cover - GC timing
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass


def make_sc2_batch(n_envs: int, seed: int, worker_timeout: float = 600.0, **env_args: Any) -> SC2BatchEnv:
    """Build ``n_envs`` SMAC StarCraft2Env instances (env i seeded ``seed + i``).

    ``env_args`` go to ``StarCraft2Env`` (map_name, difficulty, step_mul, reward_*, ...).
    ``worker_timeout``: seconds a worker may take to answer one request (game start included).
    Raises MissingDependencyError (with install instructions) without SMAC/StarCraft II.
    """
    _import_starcraft2env()  # fail fast and clearly in the main process
    env_args = dict(env_args)
    env_args.pop("seed", None)  # the per-env seed is derived from ``seed``
    _check_game_files(env_args.get("map_name", "8m"))
    return SC2BatchEnv(n_envs, seed, env_args, worker_timeout=worker_timeout)
