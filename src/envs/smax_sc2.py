"""SMAX at StarCraft II fidelity (``env_args.fidelity: sc2``): SC2 unit stats, SMAC's timing,
attack orders, reward and avail actions, and the built-in-AI opponent of ``envs.smax_opponent``.

``SC2SMAX`` (maps without healers) and ``SC2MedivacSMAX`` (MMM, MMM2) are JaxMARL 0.2.0's ``SMAX``
and the project's ``MedivacSMAX`` with ``_SC2Mechanics`` mixed in; ``SC2OpponentSMAX`` is the
single-team wrapper (allies learn, the enemy is the built-in AI). Everything is pure JAX, so
``envs.smax`` jits and vmaps it exactly like the ``jaxmarl`` fidelity. Observation and state
layouts are SMAX's (same shapes as the ``jaxmarl`` fidelity of the same map, so a checkpoint
trained under one fidelity runs under the other).

Rules, each with its source (unit numbers: ``envs.smax_units``):
- Stats: SC2 LotV at "faster" speed (Liquipedia unit pages), shields folded into health, armor,
  bonus damage vs armored, two hits per zealot attack, 0.5 minimum damage (``smax_units.hit_damage``).
- Time: 8 world steps of one game loop (1/22.4 s) per env step = 0.357 s (SMAC: step_mul 8 at
  22.4 loops/s). Weapon cooldown jitter as SMAX (uniform in [-dt, 2 dt], after pysc2's note on
  random attack delays) with the sc2 dt.
- Attack orders (SMAC ``get_avail_agent_actions``, SC2 orders): an ally's attack[j] is available
  when enemy j is alive, its weapon can hit j's layer (marauders cannot target the air medivac,
  which SMAC leaves to the game to refuse) and j is within SMAC's shoot range 6 (centre to centre),
  whatever the unit's weapon range; the ordered unit then walks towards j until j is within its
  weapon range (SC2 ranges are edge to edge: range + both radii between centres) and fires when its
  weapon is ready, chasing j as long as the order stands (SC2's Attack Target order). A medivac's
  slot k orders Heal on ally k (SMAC: available for every living non-medivac ally within 6); Heal
  on a unit at full health is refused by the game (the medivac idles).
- Idle units fire back: after ``stop`` (SC2 Stop leaves the unit idle) or an order that became
  void (its target died), a unit auto-targets (Liquipedia "Automatic Targeting": threats first,
  then the closest) within its weapon range without moving, and an idle medivac autocasts Heal
  on the most injured biological ally within heal range. Moving units do not fire (SC2 Move).
- Walls do not kill (SC2 units stop at the map edge): ``walls_cause_death`` defaults to False here.
- Reward (SMAC ``reward_battle``, defaults reward_only_positive, reward_death_value 10,
  reward_win 200): per step ``|enemy hp + shield lost + 10 per enemy killed|`` (+200 on a win),
  divided by ``max_reward = 10 * n_enemies + 200 + sum of the enemies' hp + shield`` and multiplied
  by ``1 + won_battle_bonus`` so that the adapter's scaling (``reward_scale_rate / (1 +
  won_battle_bonus)``) gives SMAC's scaled reward: a won battle returns 20 (more if an enemy
  medivac healed: SMAC's ``abs`` pays for the enemy's healing too).

Not modelled (docs/smax_fidelity.md): shield regeneration, pathing and unit facing/turning,
projectile travel time, overkill avoidance, the built-in AI's retreats, SMAC's observation features
(SMAX's unit-list observation and unit sight ranges are kept).
"""
from __future__ import annotations

import sys
from typing import Any, Dict, Tuple

import jax
import jax.numpy as jnp

from envs import smax_units as U
from envs.smax import _import_jax
from envs.smax_medivac import MedivacSMAX
from envs.smax_opponent import attack_move_orders, pick_fighter_targets, pick_heal_targets, unit_direction

_, _, _HeuristicEnemySMAX, _Scenario, _smax_mod = _import_jax()
SMAX = _smax_mod.SMAX
EnemySMAX = sys.modules[_HeuristicEnemySMAX.__module__].EnemySMAX
N_MOVE_ACTIONS = 5
HEAL_RANGE = 4.0


class _SC2Mechanics:
    """SC2 stats, timing, orders, avail actions and reward for a SMAX class (module docstring)."""

    num_agents: int
    num_allies: int
    num_enemies: int
    unit_type_bits: int
    map_width: int
    map_height: int
    time_per_step: float
    world_steps_per_env_step: int
    num_movement_actions: int

    def __init__(self, enemy_shoots: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)  # type: ignore[call-arg]
        s = U.unit_stats(self.unit_type_bits)
        self.sc2 = {k: jnp.asarray(v) for k, v in s.items()}
        cooldowns = jnp.where(self.sc2["healer"], U.MAX_ENERGY, self.sc2["cooldown"])  # medivac: energy / 200
        self.unit_type_velocities = self.sc2["speed"]
        self.unit_type_attacks = self.sc2["damage"]
        self.unit_type_attack_ranges = jnp.where(self.sc2["healer"], HEAL_RANGE, self.sc2["range"])
        self.unit_type_sight_ranges = self.sc2["sight"]
        self.unit_type_radiuses = self.sc2["radius"]
        self.unit_type_health = self.sc2["health"]
        self.unit_type_weapon_cooldowns = cooldowns.astype(jnp.float32)
        self.world_steps_per_env_step = U.SMAC_STEP_MUL
        self.time_per_step = 1.0 / U.GAME_LOOPS_PER_SECOND
        self.heal_range = HEAL_RANGE
        self.enemy_fires = bool(enemy_shoots)
        self.is_ally = jnp.arange(self.num_agents) < self.num_allies

    # ----- geometry and relations -----------------------------------------------------------
    def relations(self, state: Any) -> Dict[str, jax.Array]:
        """Pairwise facts of ``state`` for targeting ([n, n] unless noted; row i acts on column j):
        ``edge`` edge-to-edge distance, ``dist`` centre distance, ``hittable`` i can attack j now,
        ``threat`` j can attack i, ``healable`` i (a medivac) can heal j now; [n]: ``healer``,
        ``reach`` weapon range, ``scan`` scan range, ``health_frac``."""
        s = self.sc2
        t = state.unit_types
        pos = state.unit_positions
        alive = state.unit_alive
        n = self.num_agents
        dist = jnp.linalg.norm(pos[None, :, :] - pos[:, None, :], axis=-1)
        radius = s["radius"][t]
        edge = dist - radius[:, None] - radius[None, :]
        ally = self.is_ally
        opponents = ally[:, None] != ally[None, :]
        both_alive = alive[:, None] & alive[None, :]
        healer = s["healer"][t]
        layer_ok = jnp.where(s["air"][t][None, :], s["hits_air"][t][:, None], True) & ~healer[:, None]
        hittable = opponents & both_alive & layer_ok
        damaged = state.unit_health < s["hp"][t]
        healable = (healer[:, None] & ~opponents & both_alive & ~jnp.eye(n, dtype=bool)
                    & (s["biological"][t] & ~healer & damaged)[None, :])
        reach = s["range"][t]
        return {"edge": edge, "dist": dist, "hittable": hittable, "threat": hittable.T, "healable": healable,
                "healer": healer, "reach": reach,
                "scan": jnp.maximum(U.SCAN_RANGE_MIN, reach + U.SCAN_RANGE_EXTRA),
                "health_frac": state.unit_health / s["health"][t]}

    def _order_targets(self, attack: jax.Array, healer: jax.Array) -> jax.Array:
        """Unit index [n] each unit's SMAX attack action names (clipped; validity checked apart):
        allies' slot k = enemy na + k (a medivac's: ally k); enemies' slot k = ally na - 1 - k (a
        medivac's: unit n - 1 - k, how enemies see their own team)."""
        na, n = self.num_allies, self.num_agents
        k = attack - N_MOVE_ACTIONS
        idx = jnp.where(self.is_ally, jnp.where(healer, k, na + k), jnp.where(healer, n - 1 - k, na - 1 - k))
        return jnp.clip(idx, 0, n - 1)

    # ----- SMAX overrides -------------------------------------------------------------------
    def _world_step(self, key: jax.Array, state: Any, actions: Tuple[jax.Array, jax.Array]) -> Any:
        """One game loop (1/22.4 s): orders, auto-targeting, movement, heals and attacks."""
        move, attack = actions
        s = self.sc2
        dt = self.time_per_step
        n = self.num_agents
        idx = jnp.arange(n)
        t = state.unit_types
        alive = state.unit_alive
        rel = self.relations(state)
        healer = rel["healer"]
        ordered = self._order_targets(attack, healer)
        order_ok = (attack >= N_MOVE_ACTIONS) & jnp.where(healer, rel["healable"][idx, ordered],
                                                          rel["hittable"][idx, ordered])
        moving = jnp.linalg.norm(move, axis=-1) > 0
        none = jnp.full((n,), -1, jnp.int32)
        scan_now = jnp.where(self.is_ally, rel["reach"], rel["scan"])  # idle allies: no chasing
        auto_fight = pick_fighter_targets(rel["hittable"], rel["threat"], rel["edge"], rel["reach"], scan_now, none)
        auto_heal = pick_heal_targets(rel["healable"], rel["health_frac"], rel["edge"], HEAL_RANGE, none)
        auto = jnp.where(healer, auto_heal, auto_fight)
        may_auto = alive & ~order_ok & jnp.where(self.is_ally, ~moving, self.enemy_fires | healer)
        target = jnp.where(order_ok, ordered, jnp.where(may_auto, auto, -1))
        has = (target >= 0) & alive
        tt = jnp.clip(target, 0, n - 1)
        reach = jnp.where(healer, HEAL_RANGE, rel["reach"])
        in_reach = has & (rel["edge"][idx, tt] <= reach)
        chase = has & ~in_reach

        pos = state.unit_positions
        towards = unit_direction(pos, pos[tt], 0.0)
        vel = jnp.where(chase[:, None], towards, jnp.where(has[:, None], 0.0, move))
        new_pos = jnp.clip(pos + vel * s["speed"][t][:, None] * dt, 0.0,
                           jnp.array([self.map_width, self.map_height], dtype=jnp.float32))
        new_pos = jnp.where(alive[:, None], new_pos, pos)

        cooldown = state.unit_weapon_cooldowns
        health = state.unit_health
        tt_type = t[tt]
        fire = in_reach & ~healer & (cooldown <= 0.0)
        per_hit = s["damage"][t] + s["bonus_armored"][t] * s["armored"][tt_type]
        dmg = U.hit_damage(jnp, health[tt], s["hp"][tt_type], s["armor"][tt_type], per_hit, s["hits"][t])
        dmg = jnp.where(fire, dmg, 0.0)
        heals = in_reach & healer
        energy = jnp.maximum(cooldown, 0.0)
        missing = s["hp"][tt_type] - health[tt]
        heal_amt = jnp.minimum(jnp.minimum(U.HEAL_PER_S * dt, missing), U.HEAL_PER_ENERGY * energy)
        heal_amt = jnp.where(heals, jnp.maximum(heal_amt, 0.0), 0.0)
        new_health = health.at[tt].add(heal_amt - dmg)
        new_health = jnp.clip(new_health, 0.0, s["health"][t])

        jitter = jax.random.uniform(key, (n,), minval=-dt, maxval=2 * dt)
        weapon_cd = jnp.where(fire, s["cooldown"][t] + jitter, cooldown - dt)
        new_energy = jnp.clip(energy - heal_amt / U.HEAL_PER_ENERGY + U.ENERGY_REGEN_PER_S * dt, 0.0, U.MAX_ENERGY)
        new_energy = jnp.where(alive, new_energy, cooldown)
        new_cd = jnp.where(healer, new_energy, weapon_cd)
        return state.replace(unit_positions=new_pos, unit_health=new_health, unit_weapon_cooldowns=new_cd)

    def get_avail_actions(self, state: Any) -> Dict[str, jax.Array]:
        """SMAX's move / stop masks; attack and heal slots as SMAC (module docstring: Attack orders)."""
        base = SMAX.get_avail_actions(self, state)
        rel = self.relations(state)
        na, ne, n = self.num_allies, self.num_enemies, self.num_agents
        t = state.unit_types
        s = self.sc2
        near = rel["dist"] <= U.SMAC_SHOOT_RANGE
        alive = state.unit_alive
        healer = rel["healer"]
        attack_ok = (rel["hittable"] & near)[:na, na:]                       # [na, ne]
        heal_ok = (alive[:, None] & alive[None, :] & ~healer[None, :] & s["biological"][t][None, :]
                   & ~jnp.eye(n, dtype=bool) & near)[:na, :na]                   # [na, na]
        heal_slots = jnp.zeros((na, ne), bool).at[:, :min(na, ne)].set(heal_ok[:, :min(na, ne)])
        slots = jnp.where(healer[:na, None], heal_slots & healer[:na, None], attack_ok)
        out = dict(base)
        for i, agent in enumerate(self.agents[:na]):  # type: ignore[attr-defined]
            out[agent] = base[agent].at[N_MOVE_ACTIONS:].set(slots[i].astype(base[agent].dtype))
        return out

    def compute_reward(self, state: Any, health_before: jax.Array, health_after: jax.Array) -> Dict[str, jax.Array]:
        """SMAC's positive reward (module docstring), the same value for every agent."""
        s = self.sc2
        enemy = ~self.is_ally
        was_alive = health_before > 0
        died = enemy & was_alive & (health_after <= 0)
        lost = jnp.where(enemy & was_alive, health_before - health_after, 0.0)
        raw = jnp.abs(jnp.sum(lost) + U.SMAC_REWARD_DEATH_VALUE * jnp.sum(died))
        enemies_dead = ~jnp.any(state.unit_alive & enemy)
        allies_dead = ~jnp.any(state.unit_alive & self.is_ally)
        raw = raw + jnp.where(enemies_dead & ~allies_dead, U.SMAC_REWARD_WIN, 0.0)
        max_reward = (U.SMAC_REWARD_DEATH_VALUE * self.num_enemies + U.SMAC_REWARD_WIN
                      + jnp.sum(jnp.where(enemy, s["health"][state.unit_types], 0.0)))
        r = raw / max_reward * (1.0 + self.won_battle_bonus)  # type: ignore[attr-defined]
        return {agent: r for agent in self.agents}  # type: ignore[attr-defined]


class SC2SMAX(_SC2Mechanics, SMAX):
    """SMAX (six unit types) at sc2 fidelity. Arguments: SMAX's, plus ``enemy_shoots``."""


class SC2MedivacSMAX(_SC2Mechanics, MedivacSMAX):
    """The medivac SMAX (seven unit types: MMM, MMM2) at sc2 fidelity; keeps MedivacSMAX's reset
    (50 energy), flying medivacs and its rule that a team of only medivacs has lost."""


class SC2OpponentSMAX(EnemySMAX):
    """The allies play; the enemy is the built-in AI of ``envs.smax_opponent`` (attack-move,
    automatic targeting, autocast Heal). ``attack_mode`` is accepted for the jaxmarl fidelity's
    signature and ignored. The policy state is each enemy's target (unit index or -1)."""

    def __init__(self, enemy_shoots: bool = True, attack_mode: str = "closest", **env_kwargs: Any) -> None:
        super().__init__(**env_kwargs)
        scenario = env_kwargs.get("scenario")
        types = jnp.asarray(scenario.unit_types) if scenario is not None else jnp.zeros((1,), jnp.uint8)
        cls = SC2MedivacSMAX if bool(jnp.any(types == U.MEDIVAC)) else SC2SMAX
        self._env = cls(enemy_shoots=enemy_shoots, **env_kwargs)
        self.enemy_shoots = bool(enemy_shoots)
        self.attack_mode = attack_mode
        self.observation_spaces = {a: self._env.observation_spaces[a] for a in self.agents}
        self.action_spaces = {a: self._env.action_spaces[a] for a in self.agents}

    def get_enemy_policy_initial_state(self, key: jax.Array) -> jax.Array:
        return jnp.full((self.num_enemies,), -1, dtype=jnp.int32)

    def step_env(self, key: jax.Array, state: Any, actions: Dict[str, jax.Array],
                 get_state_sequence: bool = False) -> Any:
        """Allies' discrete actions plus the built-in AI's orders, then SMAX's 8 world steps."""
        env = self._env
        inner = state.state
        acts = jnp.array([actions[a] for a in self.agents])
        ally_move, ally_attack = env._decode_discrete_actions(acts)
        enemy_move, enemy_attack, targets = attack_move_orders(env, inner, state.enemy_policy_state,
                                                               self.enemy_shoots)
        decoded = (jnp.concatenate([ally_move, enemy_move], axis=0),
                   jnp.concatenate([ally_attack, enemy_attack], axis=0))
        if get_state_sequence:
            return env.step_env_no_decode(key, inner, decoded, get_state_sequence=True)
        obs, inner, rewards, dones, infos = env.step_env_no_decode(key, inner, decoded)
        new_obs = {a: obs[a] for a in self.agents}
        new_obs["world_state"] = obs["world_state"]
        all_done = dones["__all__"]
        dones = {a: dones[a] for a in self.agents}
        dones["__all__"] = all_done
        return (new_obs, state.replace(state=inner, enemy_policy_state=targets),
                {a: rewards[a] for a in self.agents}, dones, infos)
