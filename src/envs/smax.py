"""SMAX (JaxMARL 0.2.0) as a ``BatchEnv``: the SMAC analog that runs anywhere, on CPU.

The allies are the learning agents; the enemies follow JaxMARL's heuristic policy
(``HeuristicEnemySMAX``). All ``n_envs`` envs live in one process and are advanced by a
single jitted, vmapped function that returns everything the runner needs (obs, state,
avail actions, reward, terminated, won, time-out) in one call; the per-env PRNG keys stay
inside JAX. ``step_env`` is used, so ``step`` never auto-resets; ``reset()`` restarts all
envs, and ``step_and_reset`` steps them and restarts, in the same jitted call, the envs whose
episode just ended (the continuous runner's step, src/runners/continuous_runner.py).

Facts of SMAX 0.2.0 this adapter relies on (checked against the installed code):
- Ally actions: 0-3 move (north, east, south, west), 4 stop, 5 + j attack enemy j.
  There is no no-op: a dead agent has only "stop" available. Attack j is available when
  enemy j is alive and within the agent's attack range.
- Per-step raw team reward = (enemy health fraction lost this step, summed) / n_enemies,
  + ``won_battle_bonus`` (1) on the step that kills the last enemy while an ally lives.
  A complete win therefore collects exactly 1 + won_battle_bonus over the episode.
- SMAX's ``done`` also fires at its time limit (``max_steps``, 100 for every map by default)
  and says nothing about who won, so terminated / battle_won / episode_limit are computed
  here from the unit_alive flags and the step counter (``episode_limit`` env arg).

Reward scaling (``reward_scale: True``, like SMAC's ``reward_scale``):
    reward = raw_reward * reward_scale_rate / (1 + won_battle_bonus)
so a won episode returns exactly ``reward_scale_rate`` (20), a lost one less than 10.

State: SMAX's ``world_state`` per unit (alive flag-masked health fraction, x, y, weapon
cooldown, unit-type one-hot), then every unit's team and type. With ``state_normalize``
positions are divided by the map size, cooldowns by the unit's weapon cooldown (clipped
to [0, 1]; SMAX's raw cooldown drifts negative without bound) and types by the number of
types - 1. ``state_last_action`` appends the allies' last actions one-hot (SMAC default),
``state_timestep_number`` appends step / episode_limit.

Seeding (the same battles whatever the batch size): env ``i`` of a batch gets, at its
``k``-th reset after construction (a ``reset()`` of all envs, or its own restart inside
``step_and_reset``), the PRNG key
    fold_in(fold_in(PRNGKey(seed), k), first_env_index + i)
and from then on splits its own key once per step; envs never share randomness. So env
``i`` of ``make_smax_batch(n_envs=N, seed=s)`` plays exactly the battles (obs, state,
rewards, bit for bit, given the same actions) of env 0 of
``make_smax_batch(n_envs=1, seed=s, first_env_index=i)``, and of env ``i`` of any other
batch with the same seed (``first_env_index`` = 0 is the default). In particular a batch of 1
equals env 0 of a batch of 8, and env ``i``'s ``k``-th episode is the same battle whether the
envs restart together (``reset``) or one by one (``step_and_reset``).
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from envs.batch_env import BatchEnv, LoopedBatchEnv, ResetStepOut, StepOut, check_actions

# env_args accepted by make_smax_batch (besides map_name), with defaults.
DEFAULT_ENV_ARGS: Dict[str, Any] = {
    "episode_limit": None,         # None: the map's (100, SMAX's max_steps; MMM 150, MMM2 180 as SMAC)
    "reward_scale": True,          # scale so a full win returns reward_scale_rate
    "reward_scale_rate": 20.0,
    "won_battle_bonus": 1.0,       # SMAX raw bonus on a won step
    "state_normalize": True,
    "state_last_action": True,
    "state_timestep_number": False,
    "obs_instead_of_state": False,
    "enemy_shoots": True,
    "enemy_attack_mode": "closest",  # "closest" | "random"
    "see_enemy_actions": True,
    "walls_cause_death": None,     # None: the fidelity's rule (jaxmarl: touching the map edge kills; sc2: it does not)
    "check_actions": True,         # raise ValueError on unavailable actions
    "fidelity": "jaxmarl",         # "jaxmarl" (JaxMARL's SMAX) | "sc2" (StarCraft II stats/timing/AI: envs/smax_sc2.py)
    "random_start": False,         # SMACv2-style random start positions (JaxMARL's surround-and-reflect generator)
    "jax_cache_dir": "",           # persistent XLA compile cache dir ("" = off); saves ~5-10 s per start
    "vectorized": True,            # False: one jitted single-env step per env in a Python loop (baseline)
}

# Maps the project adds to JaxMARL's map_name_to_scenario: name -> (n_allies, n_enemies, unit type)
_EXTRA_MAPS: Dict[str, Tuple[int, int, int]] = {}
_EXTRA_MAPS["8m_vs_9m"] = (8, 9, 0)  # 8 marines vs 9 marines

# SMAC maps with a Medivac healer: SMAX plus the medivac unit type of envs/smax_medivac.py
_HEALER_MAPS = ("MMM", "MMM2")
_DEFAULT_EPISODE_LIMIT = 100  # SMAX's max_steps, every JaxMARL map

N_MOVE_ACTIONS = 5  # 4 moves + stop
_NO_LIMIT = 2 ** 30  # SMAX's own max_steps; the adapter applies episode_limit itself


_JAXMARL_MODS: Dict[str, Any] = {}


def _load_smax_modules() -> Tuple[Any, Any]:
    """Import JaxMARL's SMAX modules without running ``jaxmarl/__init__`` (which imports every
    JaxMARL env and costs ~5-10 s). Falls back to the plain import if that fails."""
    import importlib
    import importlib.util
    import os
    import sys
    import types

    if "jaxmarl" not in sys.modules:
        stubs: Dict[str, str] = {}
        try:
            spec = importlib.util.find_spec("jaxmarl")
            if spec is not None and spec.origin:
                root = os.path.dirname(spec.origin)
                stubs = {"jaxmarl": root,
                         "jaxmarl.environments": os.path.join(root, "environments"),
                         "jaxmarl.environments.smax": os.path.join(root, "environments", "smax")}
                for name, path in stubs.items():
                    mod = types.ModuleType(name)
                    mod.__path__ = [path]
                    sys.modules[name] = mod
                smax_mod = importlib.import_module("jaxmarl.environments.smax.smax_env")
                enemy_mod = importlib.import_module("jaxmarl.environments.smax.heuristic_enemy_smax_env")
                return smax_mod, enemy_mod
        except Exception:  # noqa: BLE001 - any problem: use the ordinary import below
            for name in list(sys.modules):
                if name.startswith("jaxmarl"):
                    del sys.modules[name]
        finally:
            for name in stubs:  # a later `import jaxmarl` then runs the real package __init__
                sys.modules.pop(name, None)
    from jaxmarl.environments.smax import heuristic_enemy_smax_env as enemy_mod
    from jaxmarl.environments.smax import smax_env as smax_mod
    return smax_mod, enemy_mod


def _import_jax():
    """Return ``jax, jax.numpy, HeuristicEnemySMAX, Scenario, smax_env module`` (imported once)."""
    if not _JAXMARL_MODS:
        try:
            import jax
            import jax.numpy as jnp
            smax_mod, enemy_mod = _load_smax_modules()
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ImportError(f"the smax env needs jax and jaxmarl ({exc}). "
                              f"Install them with `pip install jaxmarl==0.2.0`.") from exc
        _JAXMARL_MODS.update(jax=jax, jnp=jnp, smax=smax_mod, enemy=enemy_mod)
    m = _JAXMARL_MODS
    return m["jax"], m["jnp"], m["enemy"].HeuristicEnemySMAX, m["smax"].Scenario, m["smax"]


def valid_map_names() -> List[str]:
    """All map names ``make_smax_batch`` accepts (JaxMARL's plus the project's)."""
    _, _, _, _, smax_mod = _import_jax()
    return sorted(set(smax_mod.MAP_NAME_TO_SCENARIO) | set(_EXTRA_MAPS) | set(_HEALER_MAPS))


FIDELITIES = ("jaxmarl", "sc2")


def default_episode_limit(map_name: str, fidelity: str = "jaxmarl") -> int:
    """The map's time limit when ``episode_limit`` is None. ``jaxmarl``: SMAC's for the healer maps,
    else SMAX's 100. ``sc2``: SMAC's limit of the map (smac_maps.py), 100 for maps SMAC lacks."""
    if fidelity == "sc2":
        from envs.smax_units import smac_episode_limit
        return smac_episode_limit(map_name, _DEFAULT_EPISODE_LIMIT)
    if map_name in _HEALER_MAPS:
        from envs.smax_medivac import MEDIVAC_MAPS
        return MEDIVAC_MAPS[map_name][2]
    return _DEFAULT_EPISODE_LIMIT


def _scenario(map_name: str, random_start: bool = False) -> Any:
    """JaxMARL Scenario of ``map_name`` (healer maps: envs/smax_medivac.py); ValueError for unknown
    names. ``random_start``: with SMACv2-style position generation (JaxMARL's surround-and-reflect)."""
    base = _base_scenario(map_name)
    if random_start and not base.smacv2_position_generation:
        return base.replace(smacv2_position_generation=True)
    return base


def _base_scenario(map_name: str) -> Any:
    _, jnp, _, Scenario, smax_mod = _import_jax()
    if map_name in _HEALER_MAPS:
        from envs.smax_medivac import medivac_scenario
        return medivac_scenario(map_name)
    if map_name in _EXTRA_MAPS:
        n_allies, n_enemies, unit_type = _EXTRA_MAPS[map_name]
        types = jnp.full((n_allies + n_enemies,), unit_type, dtype=jnp.uint8)
        return Scenario(types, n_allies, n_enemies, False, False)
    if map_name not in smax_mod.MAP_NAME_TO_SCENARIO:
        raise ValueError(f"unknown SMAX map '{map_name}'. Valid maps: {', '.join(valid_map_names())}. "
                         f"Other SMAC maps need --env-config=sc2 (StarCraft II).")
    return smax_mod.MAP_NAME_TO_SCENARIO[map_name]


def _check_env_args(env_args: Dict[str, Any]) -> Dict[str, Any]:
    unknown = sorted(set(env_args) - set(DEFAULT_ENV_ARGS))
    if unknown:
        raise ValueError(f"unknown smax env_args {unknown}. Valid keys: map_name, "
                         f"{', '.join(sorted(DEFAULT_ENV_ARGS))} (documented in config/envs/smax.yaml).")
    cfg = dict(DEFAULT_ENV_ARGS)
    cfg.update(env_args)
    if cfg["episode_limit"] is not None and not 1 <= int(cfg["episode_limit"]) < _NO_LIMIT:
        raise ValueError(f"env_args.episode_limit must be a positive int, got {cfg['episode_limit']}")
    if cfg["fidelity"] not in FIDELITIES:
        raise ValueError(f"env_args.fidelity must be one of {', '.join(FIDELITIES)}, got {cfg['fidelity']!r} "
                         f"(jaxmarl: JaxMARL's SMAX; sc2: StarCraft II stats, timing and built-in AI)")
    for key in ("random_start",):
        if not isinstance(cfg[key], (bool, np.bool_)):
            raise ValueError(f"env_args.{key} must be true or false, got {cfg[key]!r}")
    if cfg["walls_cause_death"] is not None and not isinstance(cfg["walls_cause_death"], (bool, np.bool_)):
        raise ValueError(f"env_args.walls_cause_death must be true, false or null, got {cfg['walls_cause_death']!r}")
    if cfg["enemy_attack_mode"] not in ("closest", "random"):
        raise ValueError(f"env_args.enemy_attack_mode must be 'closest' or 'random', "
                         f"got {cfg['enemy_attack_mode']!r}")
    return cfg


class _Compiled:
    """The SMAX env and its jitted batch functions for one (map, env_args, n_envs); shared by
    every SMAXBatchEnv built with the same arguments in this process (compiling is slow)."""

    def __init__(self, map_name: str, cfg: Dict[str, Any], n_envs: int) -> None:
        jax, jnp, HeuristicEnemySMAX, _, _ = _import_jax()
        scenario = _scenario(map_name, bool(cfg["random_start"]))
        sc2 = cfg["fidelity"] == "sc2"
        walls = cfg["walls_cause_death"]
        walls = (not sc2) if walls is None else bool(walls)
        if sc2:
            from envs.smax_sc2 import SC2OpponentSMAX as HeuristicEnemySMAX
        elif map_name in _HEALER_MAPS:
            from envs.smax_medivac import MedivacHeuristicEnemySMAX as HeuristicEnemySMAX
        # The time limit and the reward factor are arguments of the jitted functions (one
        # compile serves every value); SMAX's own max_steps is set out of reach and unused.
        env = HeuristicEnemySMAX(
            enemy_shoots=bool(cfg["enemy_shoots"]), attack_mode=cfg["enemy_attack_mode"],
            scenario=scenario, max_steps=_NO_LIMIT,
            won_battle_bonus=float(cfg["won_battle_bonus"]),
            see_enemy_actions=bool(cfg["see_enemy_actions"]),
            walls_cause_death=walls)
        _skip_unused_generators(env._env, jnp)
        self.env = env
        self.n_agents = n_allies = env.num_allies
        self.n_enemies = env.num_enemies
        self.n_actions = n_actions = env.num_ally_actions
        self.obs_dim = env.obs_size
        state_dim = n_allies * self.obs_dim if cfg["obs_instead_of_state"] else env.state_size
        state_dim += n_allies * n_actions if cfg["state_last_action"] else 0
        state_dim += 1 if cfg["state_timestep_number"] else 0
        self.state_dim = state_dim

        agents = env.agents
        n_units = n_allies + self.n_enemies
        n_types = env.unit_type_bits
        feat = len(env.own_features)  # health, x, y, cooldown, unit-type one-hot
        map_wh = jnp.array([env.map_width, env.map_height], dtype=jnp.float32)
        type_cd = jnp.asarray(env.unit_type_weapon_cooldowns, dtype=jnp.float32)

        def make_state(obs, obs_arr, smax_state, last_actions, limit):
            if cfg["obs_instead_of_state"]:
                parts = [obs_arr.reshape(-1)]
            else:
                ws = obs["world_state"]
                if cfg["state_normalize"]:
                    units = ws[: feat * n_units].reshape(n_units, feat)
                    cd = jnp.clip(units[:, 3] / type_cd[smax_state.unit_types], 0.0, 1.0)
                    units = units.at[:, 1:3].set(units[:, 1:3] / map_wh).at[:, 3].set(cd)
                    teams = ws[feat * n_units: (feat + 1) * n_units]
                    types = ws[(feat + 1) * n_units:] / max(n_types - 1, 1)
                    ws = jnp.concatenate([units.reshape(-1), teams, types])
                parts = [ws]
            if cfg["state_last_action"]:
                parts.append(jax.nn.one_hot(last_actions, n_actions, dtype=jnp.float32).reshape(-1))
            if cfg["state_timestep_number"]:
                parts.append((smax_state.step / limit).astype(jnp.float32)[None])
            return jnp.concatenate(parts).astype(jnp.float32)

        def packed_outputs(obs, env_state, last_actions, limit, extra):
            """One float32 row per env: obs, state, avail, *extra (a single host copy)."""
            obs_arr = jnp.stack([obs[a] for a in agents]).astype(jnp.float32)
            avail_d = env.get_avail_actions(env_state)
            avail = jnp.stack([avail_d[a] for a in agents]).astype(jnp.float32)
            state = make_state(obs, obs_arr, env_state.state, last_actions, limit)
            return jnp.concatenate([obs_arr.reshape(-1), state, avail.reshape(-1)]
                                   + [e.astype(jnp.float32).reshape(-1) for e in extra])

        def strong(x):  # drop weak types, so reset's and step's carries share one compile
            return jax.lax.convert_element_type(x, x.dtype)

        def reset_one(key, limit):
            key, reset_key = jax.random.split(key)
            obs, env_state = env.reset(reset_key)
            env_state = jax.tree_util.tree_map(strong, env_state)
            no_action = jnp.full((n_allies,), -1, jnp.int32)  # one_hot(-1) = zeros: no last action
            packed = packed_outputs(obs, env_state, no_action, limit, [])
            return (key, env_state), packed

        def step_core(carry, actions, active, limit, reward_factor):
            """One env step -> (new carry, packed row, episode over)."""
            key, env_state = carry
            new_key, step_key = jax.random.split(key)
            act = {a: actions[i] for i, a in enumerate(agents)}
            obs, new_state, rewards, _, _ = env.step_env(step_key, env_state, act)
            new_state = jax.tree_util.tree_map(strong, new_state)
            alive = new_state.state.unit_alive
            allies_dead = ~jnp.any(alive[:n_allies])
            enemies_dead = ~jnp.any(alive[n_allies:])
            terminated = allies_dead | enemies_dead
            won = enemies_dead & ~allies_dead
            time_out = (new_state.state.step >= limit) & ~terminated
            draw = allies_dead & enemies_dead
            reward = rewards[agents[0]] * reward_factor * active
            flags = jnp.stack([terminated, won, time_out, draw]) & active
            packed = packed_outputs(obs, new_state, actions, limit, [reward, flags])
            # inactive envs keep their state (their outputs are ignored by the caller)
            new_state = jax.tree_util.tree_map(lambda n, o: jnp.where(active, n, o), new_state, env_state)
            return (new_key, new_state), packed, (terminated | time_out) & active

        def step_one(carry, actions, active, limit, reward_factor):
            carry, packed, _ = step_core(carry, actions, active, limit, reward_factor)
            return carry, packed

        n_restart = min(n_envs, max(2, n_envs // 8))  # restarts done on their own per step (more: all envs)

        def step_reset_batch(carry, actions, limit, reward_factor, root, n_resets, env_ids):
            """Step all envs; restart those whose episode ended, env i with its key of reset
            ``n_resets[i]``. Packed rows: the step's row (obs after the step, state, avail, reward,
            flags), then obs/state/avail to act on next (the new episode's first where it ended).
            The restarts are computed only for the envs that ended: up to ``n_restart`` of them
            gathered, more at once by one reset of all envs (the same values either way)."""
            stepped, packed, done = jax.vmap(step_core, in_axes=(0, 0, None, None, None))(
                carry, actions, True, limit, reward_factor)
            head = packed[:, :packed.shape[1] - 5]   # obs, state, avail (without reward and flags)

            def fresh_for(idx):
                keys = jax.vmap(lambda c, i: jax.random.fold_in(jax.random.fold_in(root, c), i))(
                    n_resets[idx], env_ids[idx])
                return jax.vmap(reset_one, in_axes=(0, None))(keys, limit)

            def restart_none(_):
                return stepped, head

            def restart_some(_):
                idx = jnp.nonzero(done, size=n_restart, fill_value=n_envs)[0]  # n_envs = no env (dropped)
                fresh, first = fresh_for(jnp.minimum(idx, n_envs - 1))
                new = jax.tree_util.tree_map(lambda c, f: c.at[idx].set(f, mode="drop"), stepped, fresh)
                return new, head.at[idx].set(first, mode="drop")

            def restart_all(_):
                fresh, first = fresh_for(jnp.arange(n_envs))
                pick = jax.vmap(lambda d, f, s: jnp.where(d, f, s))
                return (jax.tree_util.tree_map(lambda f, s: pick(done, f, s), fresh, stepped),
                        pick(done, first, head))

            count = jnp.sum(done)
            branch = jnp.where(count == 0, 0, jnp.where(count <= n_restart, 1, 2))
            new_carry, now = jax.lax.switch(branch, [restart_none, restart_some, restart_all], None)
            return new_carry, jnp.concatenate([packed, now], axis=1)

        self.cpu = jax.devices("cpu")[0]
        self.reset_fn = jax.jit(jax.vmap(reset_one, in_axes=(0, None)))
        self.step_fn = jax.jit(jax.vmap(step_one, in_axes=(0, 0, 0, None, None)), donate_argnums=(0,))
        # compiled on its first call (only the continuous runner uses it)
        self.step_reset_fn = jax.jit(step_reset_batch, donate_argnums=(0,))
        # warm up: compile reset and step now, so the first real calls are fast
        keys = jax.device_put(jax.random.split(jax.random.PRNGKey(0), n_envs), self.cpu)
        limit, factor = np.int32(100), np.float32(1.0)
        carry, _ = self.reset_fn(keys, limit)
        acts = np.full((n_envs, n_allies), N_MOVE_ACTIONS - 1, dtype=np.int32)
        for _ in range(2):
            carry, out = self.step_fn(carry, acts, np.ones((n_envs,), dtype=bool), limit, factor)
        jax.block_until_ready(out)


def _skip_unused_generators(smax_env: Any, jnp: Any) -> None:
    """SMAX's reset always evaluates the SMACv2 position/unit-type generators and discards them
    unless the scenario asks for them; give such scenarios constant stand-ins (same shapes and
    dtypes, so the result is identical) to cut the reset compile time."""
    n = smax_env.num_agents

    class _Const:
        def __init__(self, value: Any) -> None:
            self.value = value

        def generate(self, key: Any) -> Any:
            return self.value

    if not smax_env.smacv2_position_generation:
        smax_env.position_generator = _Const(jnp.zeros((n, 2), dtype=jnp.float32))
    if not smax_env.smacv2_unit_type_generation:
        smax_env.unit_type_generator = _Const(jnp.zeros((n,), dtype=jnp.uint8))


_COMPILED: Dict[Tuple[Any, ...], _Compiled] = {}
_KEYS_FN: Dict[str, Any] = {}


def _env_keys(root: Any, n_resets: np.ndarray, env_ids: np.ndarray) -> Any:
    """Per-env keys ``fold_in(fold_in(root, n_resets[i]), env_ids[i])``, both uint32 [n_envs] (jitted)."""
    if "fn" not in _KEYS_FN:
        jax = _import_jax()[0]

        def keys(root_key, counters, ids):
            return jax.vmap(lambda c, i: jax.random.fold_in(jax.random.fold_in(root_key, c), i))(counters, ids)

        _KEYS_FN["fn"] = jax.jit(keys)
    return _KEYS_FN["fn"](root, np.asarray(n_resets, dtype=np.uint32), env_ids)


def _enable_compile_cache(path: str) -> None:
    """Turn on JAX's persistent compilation cache (process-wide) in ``path``."""
    import os

    jax = _import_jax()[0]
    path = os.path.abspath(os.path.expanduser(path))
    os.makedirs(path, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)

# env_args that are runtime values (not baked into the compiled functions)
_RUNTIME_KEYS = ("episode_limit", "reward_scale", "reward_scale_rate", "check_actions", "jax_cache_dir",
                 "vectorized")


class SMAXBatchEnv(BatchEnv):
    """``n_envs`` SMAX battles against the heuristic enemy (contract: ``envs.batch_env``)."""

    resets_single_envs = True

    def __init__(self, n_envs: int, seed: int, map_name: str = "3m", first_env_index: int = 0,
                 **env_args: Any) -> None:
        if int(n_envs) < 1:
            raise ValueError(f"n_envs must be >= 1, got {n_envs}")
        if int(first_env_index) < 0:
            raise ValueError(f"first_env_index must be >= 0, got {first_env_index}")
        cfg = _check_env_args(env_args)
        _scenario(map_name)  # bad map -> clear error before any compiling
        self.n_envs = int(n_envs)
        self.seed = int(seed)
        self.map_name = map_name
        self.cfg = cfg
        key = (map_name, self.n_envs) + tuple(sorted((k, v) for k, v in cfg.items() if k not in _RUNTIME_KEYS))
        if key not in _COMPILED:
            if cfg["jax_cache_dir"]:
                _enable_compile_cache(str(cfg["jax_cache_dir"]))
            _COMPILED[key] = _Compiled(map_name, cfg, self.n_envs)
        c = self._c = _COMPILED[key]
        self._jax = _import_jax()[0]
        self.n_agents, self.n_enemies, self.n_actions = c.n_agents, c.n_enemies, c.n_actions
        self.obs_dim, self.state_dim = c.obs_dim, c.state_dim
        if cfg["episode_limit"] is None:
            cfg["episode_limit"] = default_episode_limit(map_name, cfg["fidelity"])
        self.episode_limit = int(cfg["episode_limit"])
        self.reward_factor = (float(cfg["reward_scale_rate"]) / (1.0 + float(cfg["won_battle_bonus"]))
                              if cfg["reward_scale"] else 1.0)
        self._limit = np.int32(self.episode_limit)
        self._factor = np.float32(self.reward_factor)
        self.checks_actions = bool(cfg["check_actions"])
        self._n_resets = np.zeros((self.n_envs,), dtype=np.uint32)  # resets so far, per env
        self.first_env_index = int(first_env_index)
        self._env_ids = np.arange(self.first_env_index, self.first_env_index + self.n_envs, dtype=np.uint32)
        self._root_key = self._jax.random.PRNGKey(self.seed)
        self._carry = None
        self._avail: Optional[np.ndarray] = None
        self._ended = np.zeros((self.n_envs,), dtype=bool)
        self._stats = {"battles_won": 0, "battles_game": 0, "battles_draw": 0, "timeouts": 0}

    def get_env_info(self) -> Dict[str, Any]:
        """``obs_shape`` is the per-agent obs length, ``state_shape`` the global state length."""
        return {"n_agents": self.n_agents, "n_actions": self.n_actions, "obs_shape": self.obs_dim,
                "state_shape": self.state_dim, "episode_limit": self.episode_limit,
                "n_enemies": self.n_enemies, "map_name": self.map_name, "fidelity": self.cfg["fidelity"]}

    def reset(self) -> Dict[str, np.ndarray]:
        """Restart all envs: obs [n_envs, n_agents, obs_dim], state [n_envs, state_dim],
        avail_actions uint8 [n_envs, n_agents, n_actions]. The k-th reset after construction
        with a given seed always gives the same battles; the envs of a batch differ, and env i
        plays the same battles in a batch of any size (module docstring: Seeding)."""
        jax = self._jax
        keys = jax.device_put(_env_keys(self._root_key, self._n_resets, self._env_ids), self._c.cpu)
        self._n_resets = self._n_resets + 1
        self._carry, packed = self._c.reset_fn(keys, self._limit)
        obs, state, avail, _ = self._unpack(np.asarray(packed))
        self._avail = avail
        self._ended[:] = False
        return {"obs": obs, "state": state, "avail_actions": avail}

    def step(self, actions: np.ndarray, active: Optional[np.ndarray] = None) -> StepOut:
        """Step the envs flagged in ``active`` [n_envs] (None: all) with ``actions`` int
        [n_envs, n_agents]; inactive envs are left unchanged. Returns (next obs/state/avail,
        reward float32 [n_envs], terminated bool [n_envs], {"battle_won", "episode_limit"})."""
        if self._carry is None:
            raise RuntimeError("SMAXBatchEnv.step() called before reset() (or after close())")
        if active is None:
            active = np.ones((self.n_envs,), dtype=bool)
        else:
            active = np.asarray(active, dtype=bool)
            if active.shape != (self.n_envs,):
                raise ValueError(f"active must have shape [{self.n_envs}], got {list(active.shape)}")
        if self.checks_actions:
            acts = check_actions(actions, self._avail, active)
        else:
            acts = np.asarray(actions, dtype=np.int32)
        self._carry, packed = self._c.step_fn(self._carry, acts, active, self._limit, self._factor)
        obs, state, avail, rest = self._unpack(np.asarray(packed))
        reward = rest[:, 0].copy()
        flags = rest[:, 1:5] > 0.5
        terminated, won, time_out = flags[:, 0], flags[:, 1], flags[:, 2]
        self._avail = avail
        newly = (terminated | time_out) & ~self._ended
        if newly.any():
            self._stats["battles_game"] += int(newly.sum())
            self._stats["battles_won"] += int((won & newly).sum())
            self._stats["battles_draw"] += int((flags[:, 3] & newly).sum())
            self._stats["timeouts"] += int((time_out & newly).sum())
            self._ended |= newly
        info = {"battle_won": won, "episode_limit": time_out}
        return {"obs": obs, "state": state, "avail_actions": avail}, reward, terminated, info

    def step_and_reset(self, actions: np.ndarray) -> ResetStepOut:
        """Step every env and restart, in the same jitted call, those whose episode ended
        (``terminated | episode_limit``) with their next reset key (module docstring: Seeding).
        Returns ``step``'s outputs (``next`` holds the ended episodes' final observations) and
        ``now``: obs/state/avail to act on next, the new episodes' first ones where one ended."""
        if self._carry is None:
            raise RuntimeError("SMAXBatchEnv.step_and_reset() called before reset() (or after close())")
        if self.checks_actions:
            acts = check_actions(actions, self._avail, None)
        else:
            acts = np.asarray(actions, dtype=np.int32)
        self._carry, packed = self._c.step_reset_fn(self._carry, acts, self._limit, self._factor, self._root_key,
                                                     self._n_resets, self._env_ids)
        packed = np.asarray(packed)
        split = packed.shape[1] - (self.n_agents * (self.obs_dim + self.n_actions) + self.state_dim)
        obs, state, avail, rest = self._unpack(packed[:, :split])
        now_obs, now_state, now_avail, _ = self._unpack(packed[:, split:])
        reward = rest[:, 0].copy()
        flags = rest[:, 1:5] > 0.5
        terminated, won, time_out = flags[:, 0], flags[:, 1], flags[:, 2]
        done = terminated | time_out
        self._n_resets = self._n_resets + done.astype(np.uint32)
        self._avail = now_avail
        newly = done & ~self._ended
        self._stats["battles_game"] += int(newly.sum())
        self._stats["battles_won"] += int((won & newly).sum())
        self._stats["battles_draw"] += int((flags[:, 3] & newly).sum())
        self._stats["timeouts"] += int((time_out & newly).sum())
        self._ended[:] = False  # every env now plays an episode
        info = {"battle_won": won, "episode_limit": time_out}
        now = {"obs": now_obs, "state": now_state, "avail_actions": now_avail}
        return {"obs": obs, "state": state, "avail_actions": avail}, reward, terminated, info, now

    def _unpack(self, packed: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Split packed float32 rows [n_envs, row] into obs, state, avail (uint8) and the rest."""
        n, na = self.n_envs, self.n_agents
        o1 = na * self.obs_dim
        o2 = o1 + self.state_dim
        o3 = o2 + na * self.n_actions
        obs = packed[:, :o1].reshape(n, na, self.obs_dim).copy()
        state = packed[:, o1:o2].copy()
        avail = packed[:, o2:o3].reshape(n, na, self.n_actions).astype(np.uint8)
        return obs, state, avail, packed[:, o3:]

    def get_stats(self) -> Dict[str, float]:
        """Counts over all episodes ended so far: battles_won, battles_game, battles_draw
        (both teams died on the same step), timeouts, and win_rate."""
        s: Dict[str, float] = dict(self._stats)
        s["win_rate"] = s["battles_won"] / s["battles_game"] if s["battles_game"] else 0.0
        return s

    def state_dict(self) -> Dict[str, Any]:
        """For checkpoints (plain data and tensors; the compiled functions are rebuilt): the
        per-env reset counters (``n_resets`` int list [n_envs]: between episodes the battles to
        come depend only on them), the episode counts, and for episodes in flight (the
        continuous runner's) the JAX carry (per-env keys and SMAX states, as tensors) with the
        avail actions to check the next actions against; ``carry`` is None before any reset."""
        carry = None
        if self._carry is not None:
            carry = [_to_tensor(np.asarray(leaf)) for leaf in self._jax.tree_util.tree_leaves(self._carry)]
        return {"n_resets": [int(k) for k in self._n_resets], "stats": dict(self._stats), "carry": carry,
                "avail": None if self._avail is None else _to_tensor(self._avail),
                "ended": _to_tensor(self._ended.copy())}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore ``state_dict()``: the next ``reset()`` plays the battles it would have played,
        and episodes in flight continue where they were (an int ``n_resets``, as older
        checkpoints hold, applies to every env)."""
        n_resets = state["n_resets"]
        if isinstance(n_resets, int):
            n_resets = [n_resets] * self.n_envs
        if len(n_resets) != self.n_envs:
            raise ValueError(f"the saved SMAX state holds {len(n_resets)} envs, this batch {self.n_envs}: "
                             f"resume with the same batch_size_run.")
        self._n_resets = np.asarray(n_resets, dtype=np.uint32)
        self._stats = {k: int(v) for k, v in state["stats"].items()}
        if state.get("carry") is not None:
            jax = self._jax
            keys = jax.device_put(_env_keys(self._root_key, self._n_resets, self._env_ids), self._c.cpu)
            template, _ = self._c.reset_fn(keys, self._limit)  # the carry's structure, shapes and dtypes
            leaves, treedef = jax.tree_util.tree_flatten(template)
            saved = [_from_tensor(t) for t in state["carry"]]
            if len(saved) != len(leaves) or any(a.shape != np.shape(b) for a, b in zip(saved, leaves)):
                raise ValueError("the saved SMAX state does not fit this env (another map, env_args or "
                                 "batch_size_run): resume with the checkpoint's settings.")
            self._carry = jax.device_put(jax.tree_util.tree_unflatten(
                treedef, [a.astype(np.asarray(b).dtype) for a, b in zip(saved, leaves)]), self._c.cpu)
            self._avail = _from_tensor(state["avail"]) if state.get("avail") is not None else None
            if state.get("ended") is not None:
                self._ended = _from_tensor(state["ended"]).astype(bool)

    def close(self) -> None:
        self._carry = None


def _to_tensor(a: np.ndarray) -> Any:
    """A numpy array as a torch tensor for ``weights_only`` checkpoints (uint32 -> int64)."""
    import torch
    a = np.ascontiguousarray(a)
    if a.dtype == np.uint32:
        a = a.astype(np.int64)
    return torch.from_numpy(a.copy())


def _from_tensor(t: Any) -> np.ndarray:
    return t.detach().cpu().numpy()


def make_smax_batch(n_envs: int, seed: int, map_name: str = "3m", first_env_index: int = 0,
                    **env_args: Any) -> BatchEnv:
    """Build ``n_envs`` SMAX battles on ``map_name``; ``env_args`` keys: see DEFAULT_ENV_ARGS.

    Env ``i`` of the batch plays the battles of env ``first_env_index + i`` of the seed's
    stream, whatever ``n_envs`` is (module docstring: Seeding). ``vectorized=False`` gives the
    same battles from ``n_envs`` single-env batches stepped in a Python loop (the slow baseline
    of benchmarks/marl_learning.py's before/after comparison)."""
    if not env_args.get("vectorized", True):
        if int(n_envs) < 1:
            raise ValueError(f"n_envs must be >= 1, got {n_envs}")
        sub_args = {**env_args, "check_actions": False}  # the looped env checks the whole batch once
        return LoopedBatchEnv([SMAXBatchEnv(n_envs=1, seed=seed, map_name=map_name,
                                            first_env_index=int(first_env_index) + i, **sub_args)
                               for i in range(int(n_envs))],
                              checks_actions=env_args.get("check_actions", DEFAULT_ENV_ARGS["check_actions"]))
    return SMAXBatchEnv(n_envs=n_envs, seed=seed, map_name=map_name, first_env_index=first_env_index,
                        **env_args)
