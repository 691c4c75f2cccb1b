"""SMAX with a Medivac healer: the SMAC maps MMM and MMM2 without StarCraft II.

``MedivacSMAX`` subclasses JaxMARL 0.2.0's ``SMAX`` and appends a seventh unit type,
``medivac`` (index ``MEDIVAC`` = 6, after SMAX's marine, marauder, stalker, zealot, zergling,
hydralisk); ``MedivacHeuristicEnemySMAX`` is JaxMARL's heuristic-enemy wrapper around it whose
medivacs heal. Everything stays pure JAX, so ``envs.smax`` jits and vmaps it like plain SMAX.

Unit stats (StarCraft II, Legacy of the Void, "faster" game speed: the convention of SMAX's own
numbers, e.g. marine speed 3.15 and cooldown 0.61 s). Sources: Liquipedia "Medivac (Legacy of
the Void)" (health 150, energy 50 / 200, sight 11, speed 3.5) and "Heal" (9 health per 3
energy per game second at normal speed = 12.6 health per real second at faster speed, i.e.
3 health per energy; biological targets only); heal range 4 and energy regeneration
0.5625 per game second = 0.7875 per real second are the standard SC2 values. SMAC
(oxwhirl/smac starcraft2.py) for the game rules: a medivac's attack slots heal allies, it
cannot heal itself or another medivac, its observed "cooldown" feature is energy / 200, and a
team whose only living units are medivacs has lost (``only_medivac_left``).

    health 150, speed 3.5, sight 11, radius 0.75, heal range 4, heal 12.6 health / s,
    energy: starts at 50, max 200, +0.7875 / s, 1 energy per 3 health healed.

Mechanics (each of SMAX's 8 world steps of 1/16 s within an env step):
- Actions: as SMAX, 0-3 move, 4 stop, 5 + k is the unit's k-th target slot. For a medivac of
  the allies, slot k means heal[ally k] (SMAC's convention); for an enemy medivac, slot k is the
  enemy team in SMAX's reversed order (unit ``num_agents - 1 - k``, how enemies see their team).
- Heal: a living medivac whose action heals a living, damaged, non-medivac teammate other than
  itself within the heal range restores ``min(12.6 / 16, missing health, 3 * energy)`` and pays
  a third of it in energy. Heals are applied before the world step's damage (so a heal never
  revives a unit killed in the same world step), and health never exceeds the unit's maximum.
- Availability (allies): heal[ally k] only when ally k is alive, damaged, not a medivac, not the
  medivac itself, and within the heal range; slots past the last ally are never available.
  Energy does not enter the mask (an empty medivac heals at its regeneration rate, 3 x 0.7875/s).
- A medivac deals no damage; marauders cannot shoot air units (SC2: ground-only weapon), so a
  marauder never has the enemy medivac available and the heuristic enemy's marauders ignore it.
- Medivacs fly: they take no part in SMAX's unit collisions (``_push_units_away``). They still
  die touching the map edge when ``walls_cause_death`` (SMAX's rule for every unit).
- Energy is kept in SMAX's ``unit_weapon_cooldowns`` slot of a medivac (it has no weapon), with
  its type's weapon cooldown set to the maximum energy, so observations and the world state
  show energy / 200 in the cooldown feature, as SMAC does.
- A team whose living units are all medivacs has lost: its medivacs are removed (health 0) in
  the same world step, so SMAX's and the adapter's all-dead rules end the battle (their remaining
  health counts as lost in the reward, as if destroyed).
- Reward: SMAX's formula, except that the health lost by the other team is net of its healing
  and floored at 0 per env step (SMAX's ``abs`` would pay the allies for the enemy's healing).
  Healed health can be lost again, so a won battle can return more than ``reward_scale_rate``.

Simplified: no armor (SMAX has none for any unit), no 5-energy minimum to start healing, no
Ignite Afterburners, no transport; a heal targets one unit per world step (as SC2's Heal); the
enemy medivac's target slots run past the enemy action space (MMM2: 12 teammates, 10 slots)
because the heuristic enemy never samples from that space.
"""
from __future__ import annotations

import sys
from typing import Any, Dict, Tuple

import jax
import jax.numpy as jnp

from envs.smax import _import_jax

_, _, HeuristicEnemySMAX, Scenario, _smax_mod = _import_jax()
_enemy_mod = sys.modules[HeuristicEnemySMAX.__module__]
SMAX = _smax_mod.SMAX

MARINE, MARAUDER, MEDIVAC = 0, 1, 6
N_MOVE_ACTIONS = 5

MEDIVAC_STATS: Dict[str, float] = {
    "health": 150.0,
    "speed": 3.5,
    "sight_range": 11.0,
    "radius": 0.75,
    "heal_range": 4.0,
    "heal_per_s": 12.6,
    "start_energy": 50.0,
    "max_energy": 200.0,
    "energy_regen_per_s": 0.7875,
    "heal_per_energy": 3.0,
}

# map -> (ally unit types, enemy unit types, SMAC episode limit); SMAC smac_maps.py
_M, _MM, _V = MARINE, MARAUDER, MEDIVAC
MEDIVAC_MAPS: Dict[str, Tuple[Tuple[int, ...], Tuple[int, ...], int]] = {
    "MMM": ((_V,) + (_MM,) * 2 + (_M,) * 7, (_V,) + (_MM,) * 2 + (_M,) * 7, 150),
    "MMM2": ((_V,) + (_MM,) * 2 + (_M,) * 7, (_V,) + (_MM,) * 3 + (_M,) * 8, 180),
}


def medivac_scenario(map_name: str) -> Any:
    """JaxMARL ``Scenario`` of MMM / MMM2 (unit types: allies then enemies)."""
    allies, enemies, _ = MEDIVAC_MAPS[map_name]
    types = jnp.array(allies + enemies, dtype=jnp.uint8)
    return Scenario(types, len(allies), len(enemies), False, False)


def _append(values: Any, extra: float) -> Any:
    return jnp.concatenate([jnp.asarray(values, dtype=jnp.float32), jnp.array([extra], jnp.float32)])


class MedivacSMAX(SMAX):
    """SMAX with the ``medivac`` unit type (module docstring). Constructor arguments: SMAX's."""

    def __init__(self, **kwargs: Any) -> None:
        defaults = _smax_type_defaults()
        s = MEDIVAC_STATS
        per_type = {
            "unit_type_names": list(defaults["unit_type_names"]) + ["medivac"],
            "unit_type_shorthands": list(defaults["unit_type_shorthands"]) + ["V"],
            "unit_type_velocities": _append(defaults["unit_type_velocities"], s["speed"]),
            "unit_type_attacks": _append(defaults["unit_type_attacks"], 0.0),
            "unit_type_attack_ranges": _append(defaults["unit_type_attack_ranges"], s["heal_range"]),
            "unit_type_sight_ranges": _append(defaults["unit_type_sight_ranges"], s["sight_range"]),
            "unit_type_radiuses": _append(defaults["unit_type_radiuses"], s["radius"]),
            "unit_type_health": _append(defaults["unit_type_health"], s["health"]),
            "unit_type_weapon_cooldowns": _append(defaults["unit_type_weapon_cooldowns"], s["max_energy"]),
        }
        clash = sorted(set(per_type) & set(kwargs))
        if clash:
            raise ValueError(f"MedivacSMAX sets the per-unit-type arrays itself; do not pass {clash}")
        if kwargs.get("use_self_play_reward") or kwargs.get("action_type", "discrete") != "discrete":
            raise ValueError("MedivacSMAX supports only discrete actions without the self-play reward")
        super().__init__(**kwargs, **per_type)
        if self.scenario is not None:
            ally_types = jnp.asarray(self.scenario)[: self.num_allies]
            if bool(jnp.any(ally_types == MEDIVAC)) and self.num_allies > self.num_enemies:
                raise ValueError(f"an ally medivac needs one action slot per ally: {self.num_allies} allies, "
                                 f"but only {self.num_enemies} target slots (one per enemy)")
        self.is_ally = jnp.arange(self.num_agents) < self.num_allies

    # ----- helpers --------------------------------------------------------------------------
    def _heal_target(self, attack: jax.Array) -> jax.Array:
        """Unit index [n_units] each unit's target slot would heal (slot k: ally k for allies,
        unit num_agents-1-k for enemies), clipped into range (validity is checked separately)."""
        k = attack - N_MOVE_ACTIONS
        idx = jnp.where(self.is_ally, k, self.num_agents - 1 - k)
        return jnp.clip(idx, 0, self.num_agents - 1)

    def can_heal(self, state: Any) -> jax.Array:
        """bool [n_units, n_units]: unit i (a living medivac) may heal unit j now: j a living,
        damaged, non-medivac teammate other than i within the heal range."""
        types = state.unit_types
        medivac = types == MEDIVAC
        alive = state.unit_alive
        dist = jnp.linalg.norm(state.unit_positions[:, None] - state.unit_positions[None, :], axis=-1)
        damaged = state.unit_health < self.unit_type_health[types]
        same_team = state.unit_teams[:, None] == state.unit_teams[None, :]
        target_ok = alive & damaged & ~medivac
        return ((medivac & alive)[:, None] & target_ok[None, :] & same_team
                & ~jnp.eye(self.num_agents, dtype=bool) & (dist < MEDIVAC_STATS["heal_range"]))

    def can_target(self, state: Any) -> jax.Array:
        """bool [n_units, n_units]: unit j's type may be attacked by unit i's type (marauders
        cannot shoot medivacs; medivacs shoot nothing)."""
        t = state.unit_types
        air = t == MEDIVAC
        return ~((t == MARAUDER)[:, None] & air[None, :]) & ~air[:, None]

    # ----- SMAX overrides -------------------------------------------------------------------
    def reset(self, key: jax.Array) -> Tuple[Dict[str, jax.Array], Any]:
        """SMAX's reset, medivacs starting with 50 energy (in their cooldown slot)."""
        _, state = super().reset(key)
        energy = jnp.where(state.unit_types == MEDIVAC, MEDIVAC_STATS["start_energy"], state.unit_weapon_cooldowns)
        state = state.replace(unit_weapon_cooldowns=energy)
        obs = self.get_obs(state)
        obs["world_state"] = jax.lax.stop_gradient(self.get_world_state(state))
        return obs, state

    def _world_step(self, key: jax.Array, state: Any, actions: Tuple[jax.Array, jax.Array]) -> Any:
        """Heal (from the state before this world step), then SMAX's move/attack with the
        medivacs' and ground-only units' impossible attacks removed, then energy bookkeeping."""
        move, attack = actions
        s = MEDIVAC_STATS
        dt = self.time_per_step
        medivac = state.unit_types == MEDIVAC
        is_target_action = attack >= N_MOVE_ACTIONS
        target = self._heal_target(attack)
        heals = medivac & is_target_action & self.can_heal(state)[jnp.arange(self.num_agents), target]
        energy = state.unit_weapon_cooldowns
        max_health = self.unit_type_health[state.unit_types]
        amount = jnp.minimum(jnp.minimum(s["heal_per_s"] * dt, max_health[target] - state.unit_health[target]),
                             s["heal_per_energy"] * jnp.maximum(energy, 0.0))
        amount = jnp.where(heals, amount, 0.0)
        health = jnp.minimum(state.unit_health.at[target].add(amount), max_health)
        new_energy = jnp.clip(energy - amount / s["heal_per_energy"] + s["energy_regen_per_s"] * dt,
                              0.0, s["max_energy"])

        # SMAX's attack decoding: allies' slot k -> enemy num_allies + k, enemies' -> ally num_allies-1-k
        k = attack - N_MOVE_ACTIONS
        shot = jnp.clip(jnp.where(self.is_ally, self.num_allies + k, self.num_allies - 1 - k), 0, self.num_agents - 1)
        allowed = self.can_target(state)[jnp.arange(self.num_agents), shot]
        attack = jnp.where(is_target_action & ~allowed, 0, attack)

        state = super()._world_step(key, state.replace(unit_health=health), (move, attack))
        alive_energy = jnp.where(state.unit_alive, new_energy, energy)
        return state.replace(unit_weapon_cooldowns=jnp.where(medivac, alive_energy, state.unit_weapon_cooldowns))

    def _update_dead_agents(self, state: Any) -> Any:
        """A team left with only medivacs has lost: remove them, then SMAX's alive = health > 0."""
        fighter = (state.unit_health > 0) & (state.unit_types != MEDIVAC)
        allies_fight = jnp.any(fighter & self.is_ally)
        enemies_fight = jnp.any(fighter & ~self.is_ally)
        team_fights = jnp.where(self.is_ally, allies_fight, enemies_fight)
        health = jnp.where((state.unit_types == MEDIVAC) & ~team_fights, 0.0, state.unit_health)
        return super()._update_dead_agents(state.replace(unit_health=health))

    def _push_units_away(self, state: Any, firmness: float = 1.0) -> Any:
        """SMAX's collisions among ground units only: medivacs fly over them."""
        ground = state.replace(unit_alive=state.unit_alive & (state.unit_types != MEDIVAC))
        return state.replace(unit_positions=super()._push_units_away(ground, firmness).unit_positions)

    def compute_reward(self, state: Any, health_before: jax.Array, health_after: jax.Array) -> Dict[str, jax.Array]:
        """Per team: (other team's health fraction lost net of healing, floored at 0) / its size,
        + won_battle_bonus when the other team is all dead and this team is not."""
        frac = (health_after - health_before) / self.unit_type_health[state.unit_types]
        lost = [jnp.maximum(-jnp.sum(jnp.where(self.is_ally, frac, 0.0)), 0.0) / self.num_allies,
                jnp.maximum(-jnp.sum(jnp.where(self.is_ally, 0.0, frac)), 0.0) / self.num_enemies]
        dead = [~jnp.any(state.unit_alive & self.is_ally), ~jnp.any(state.unit_alive & ~self.is_ally)]
        team_reward = [lost[1] + jnp.where(dead[1] & ~dead[0], self.won_battle_bonus, 0.0),
                       lost[0] + jnp.where(dead[0] & ~dead[1], self.won_battle_bonus, 0.0)]
        return {agent: team_reward[int(self.agent_ids[agent] >= self.num_allies)] for agent in self.agents}

    def get_avail_actions(self, state: Any) -> Dict[str, jax.Array]:
        """SMAX's masks, with a medivac's target slots = heal[teammate] (``can_heal``) and
        ground-only units' slots of air enemies removed."""
        base = super().get_avail_actions(state)
        medivac = state.unit_types == MEDIVAC
        heal = self.can_heal(state)
        target = self.can_target(state)
        out = {}
        for i, agent in enumerate(self.agents):
            mask = base[agent]
            n_slots = mask.shape[0] - N_MOVE_ACTIONS
            if i < self.num_allies:
                own = jnp.zeros((n_slots,), bool).at[: self.num_allies].set(heal[i, : self.num_allies])
                other = target[i, self.num_allies: self.num_allies + n_slots]
            else:
                own = heal[i, ::-1][:n_slots]
                other = target[i, : self.num_allies][::-1][:n_slots]
            slots = jnp.where(medivac[i], own, mask[N_MOVE_ACTIONS:].astype(bool) & other)
            out[agent] = mask.at[N_MOVE_ACTIONS:].set(slots.astype(mask.dtype))
        return out


def _smax_type_defaults() -> Dict[str, Any]:
    """SMAX.__init__'s default per-unit-type arguments (the six SMAX unit types)."""
    import inspect

    params = inspect.signature(SMAX.__init__).parameters
    names = ("unit_type_names", "unit_type_shorthands", "unit_type_velocities", "unit_type_attacks",
             "unit_type_attack_ranges", "unit_type_sight_ranges", "unit_type_radiuses", "unit_type_health",
             "unit_type_weapon_cooldowns")
    return {n: params[n].default for n in names}


class MedivacHeuristicEnemySMAX(HeuristicEnemySMAX):
    """JaxMARL's heuristic enemy on ``MedivacSMAX``: fighters as in JaxMARL (marauders blind to
    air units), medivacs heal the most damaged teammate in range, else fly to the nearest damaged
    teammate they see, else to the centre of the teammates they see, else stop."""

    def __init__(self, enemy_shoots: bool = True, attack_mode: str = "closest", **env_kwargs: Any) -> None:
        super().__init__(enemy_shoots=enemy_shoots, attack_mode=attack_mode, **env_kwargs)
        self._env = MedivacSMAX(**env_kwargs)  # replaces the plain SMAX the parent built
        self.observation_spaces = {a: self._env.observation_spaces[a] for a in self.agents}
        self.action_spaces = {a: self._env.action_spaces[a] for a in self.agents}
        self.heuristic_policy = _enemy_mod.create_heuristic_policy(
            self._env, 1, shoot=self.enemy_shoots, attack_mode=self.attack_mode)

    def get_enemy_actions(self, key: jax.Array, policy_state: Any,
                          enemy_obs: jax.Array) -> Tuple[Dict[str, jax.Array], Any]:
        """enemy_obs [n_enemies, obs_dim] (SMAX unit-list obs) -> actions per enemy agent."""
        env = self._env
        n_feat = len(env.unit_features)
        type_at = 7  # unit_features: health, x, y, move x, move y, last target, cooldown, type bits
        own_type = jnp.argmax(enemy_obs[:, -env.unit_type_bits:], axis=-1)
        first_other, end = (self.num_enemies - 1) * n_feat, (env.num_agents - 1) * n_feat
        others = enemy_obs[:, first_other:end].reshape(self.num_enemies, -1, n_feat)
        other_air = others[:, :, type_at + MEDIVAC] > 0
        blind = (own_type == MARAUDER)[:, None] & other_air  # marauders do not see air targets
        others = jnp.where(blind[:, :, None], 0.0, others)
        fighter_obs = enemy_obs.at[:, first_other:end].set(others.reshape(self.num_enemies, -1))
        actions, policy_state = jax.vmap(self.heuristic_policy)(
            jax.random.split(key, self.num_enemies), policy_state, fighter_obs)
        heal_actions = jax.vmap(self._medivac_action)(enemy_obs, jnp.arange(self.num_enemies))
        actions = jnp.where(own_type == MEDIVAC, heal_actions, actions)
        return {agent: actions[i] for i, agent in enumerate(self.enemy_agents)}, policy_state

    def _medivac_action(self, obs: jax.Array, enemy_index: jax.Array) -> jax.Array:
        """Heal / move action of enemy ``enemy_index`` if it is a medivac, from its obs [obs_dim]."""
        env = self._env
        n_feat = len(env.unit_features)
        mates = obs[: (self.num_enemies - 1) * n_feat].reshape(self.num_enemies - 1, n_feat)
        health = mates[:, 0]
        rel = mates[:, 1:3] * MEDIVAC_STATS["sight_range"]  # relative positions, world units
        seen = (health > 0) & (mates[:, 7 + MEDIVAC] == 0)
        damaged = seen & (health < 1)
        in_range = damaged & (jnp.linalg.norm(rel, axis=-1) < MEDIVAC_STATS["heal_range"])
        # obs slot s of enemy i shows unit j = N-1-s (skipping i); heal slot k shows unit N-1-k
        i = env.num_allies + enemy_index
        s = jnp.arange(self.num_enemies - 1)
        j = env.num_agents - 1 - s
        unit = jnp.where(j > i, j, j - 1)
        heal_slot = env.num_agents - 1 - unit
        heal = N_MOVE_ACTIONS + heal_slot[jnp.argmin(jnp.where(in_range, health, 2.0))]
        dist = jnp.linalg.norm(rel, axis=-1)
        nearest_damaged = rel[jnp.argmin(jnp.where(damaged, dist, jnp.inf))]
        centre = jnp.sum(jnp.where(seen[:, None], rel, 0.0), axis=0) / jnp.maximum(jnp.sum(seen), 1)
        goal = jnp.where(jnp.any(damaged), nearest_damaged, centre)
        directions = jnp.array([[0.0, 1.0], [1.0, 0.0], [0.0, -1.0], [-1.0, 0.0]])  # actions 0-3
        move = jnp.argmax(directions @ goal)
        move = jnp.where(jnp.any(seen) & (jnp.linalg.norm(goal) > 1.0), move, N_MOVE_ACTIONS - 1)
        return jnp.where(jnp.any(in_range), heal, move).astype(jnp.int32)
