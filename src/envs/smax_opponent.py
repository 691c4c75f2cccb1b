"""The ``sc2`` fidelity's opponent: StarCraft II's built-in AI as SMAC meets it, in pure JAX.

SMAC's enemy units are run by the game's built-in AI (difficulty "7"), which sends them on an
attack-move towards the allies; from then on each unit's own tactical AI picks targets. This module
models that per unit from the SMAX state (no learning, no randomness):

- **Automatic targeting** (Liquipedia "Automatic Targeting", LotV): a unit considers the valid
  targets within its scan range, ``max(5, weapon range + 0.5)`` measured edge to edge, and prefers,
  in this order, (1) threats (targets whose weapon can hit it: a medivac is never one, a marauder is
  none to a medivac), (2) higher Attack Target Priority (20 for every SMAX unit, so never decides),
  (3) the closest. It keeps its target until the target dies, leaves its weapon range, or a target of
  higher priority (a threat, while it shoots a non-threat) enters its weapon range.
- **Attack-move**: a unit without a target moves towards the centre of the living allies (the
  attack-move point; SMAC's map triggers send the enemy at the allies); a unit whose target is out
  of weapon range (but within scan range) chases it (the world step moves it into range).
- **Medivac autocast Heal** (Liquipedia "Heal": autocast, biological targets): heal the most
  injured (lowest health fraction) damaged biological teammate within heal range, keep healing it
  while it is damaged and in range; otherwise fly to the centre of the living non-medivac
  teammates (it follows its army).

All functions take [n_units, n_units] matrices built once per world step by ``envs.smax_sc2``.
"""
from __future__ import annotations

from typing import Any, Tuple

import jax
import jax.numpy as jnp

_NONE = -1
_THREAT_WEIGHT = 1000.0  # a threat beats any distance difference on a 32 x 32 map


def pick_fighter_targets(hittable: jax.Array, threat: jax.Array, edge: jax.Array, reach: jax.Array,
                         scan: jax.Array, current: jax.Array) -> jax.Array:
    """Automatic targeting for every unit, int32 [n] unit index or -1.

    hittable [n, n]: unit i can attack unit j now (opponents, alive, weapon fits the layer);
    threat [n, n]: unit j can attack unit i; edge [n, n]: edge-to-edge distance; reach [n]: weapon
    range; scan [n]: scan range; current [n]: the unit's present target or -1. The current target
    is kept while it is hittable, within weapon range and no threat is within weapon range while it
    is not one; otherwise the best target in scan range (threat first, then the closest)."""
    n = hittable.shape[0]
    idx = jnp.arange(n)
    cur = jnp.clip(current, 0, n - 1)
    in_weapon = hittable & (edge <= reach[:, None])
    cur_ok = (current >= 0) & in_weapon[idx, cur]
    threat_in_weapon = jnp.any(in_weapon & threat, axis=1)
    cur_ok = cur_ok & (threat[idx, cur] | ~threat_in_weapon)
    candidates = hittable & (edge <= scan[:, None])
    score = jnp.where(candidates, threat * _THREAT_WEIGHT - edge, -jnp.inf)
    best = jnp.where(jnp.any(candidates, axis=1), jnp.argmax(score, axis=1), _NONE)
    return jnp.where(cur_ok, current, best).astype(jnp.int32)


def pick_heal_targets(healable: jax.Array, health_frac: jax.Array, edge: jax.Array, heal_range: float,
                      current: jax.Array) -> jax.Array:
    """Autocast Heal for every unit, int32 [n] unit index or -1. healable [n, n]: i (a living
    medivac) may heal j (a damaged living biological teammate); health_frac [n]: health / max.
    Keeps the current target while healable and in range, else the lowest health fraction in range."""
    n = healable.shape[0]
    idx = jnp.arange(n)
    in_range = healable & (edge <= heal_range)
    cur = jnp.clip(current, 0, n - 1)
    cur_ok = (current >= 0) & in_range[idx, cur]
    score = jnp.where(in_range, -health_frac[None, :], -jnp.inf)
    best = jnp.where(jnp.any(in_range, axis=1), jnp.argmax(score, axis=1), _NONE)
    return jnp.where(cur_ok, current, best).astype(jnp.int32)


def unit_direction(frm: jax.Array, to: jax.Array, min_dist: float = 0.5) -> jax.Array:
    """Unit vectors [n, 2] from positions ``frm`` [n, 2] to ``to`` [n, 2] (0 when closer than min_dist)."""
    d = to - frm
    norm = jnp.linalg.norm(d, axis=-1, keepdims=True)
    return jnp.where(norm > min_dist, d / jnp.maximum(norm, 1e-6), 0.0)


def centre(pos: jax.Array, mask: jax.Array) -> Tuple[jax.Array, jax.Array]:
    """Mean position [2] of the units in ``mask`` [n] and whether there is any."""
    count = jnp.sum(mask)
    c = jnp.sum(jnp.where(mask[:, None], pos, 0.0), axis=0) / jnp.maximum(count, 1)
    return c, count > 0


def attack_move_orders(env: Any, state: Any, targets: jax.Array,
                       shoots: bool) -> Tuple[jax.Array, jax.Array, jax.Array]:
    """The enemy team's orders for one env step: (move vectors float32 [n_enemies, 2], SMAX attack
    actions int32 [n_enemies] (0 = none), new targets int32 [n_enemies], unit index or -1).

    ``env`` is the sc2-fidelity SMAX (``envs.smax_sc2``) that provides ``relations(state)``;
    ``targets`` the enemies' targets from the previous step (unit indices, -1 = none)."""
    rel = env.relations(state)
    na, n = env.num_allies, env.num_agents
    current = jnp.full((n,), _NONE, jnp.int32).at[na:].set(targets)
    fight = pick_fighter_targets(rel["hittable"], rel["threat"], rel["edge"], rel["reach"], rel["scan"], current)
    if not shoots:
        fight = jnp.full_like(fight, _NONE)
    heal = pick_heal_targets(rel["healable"], rel["health_frac"], rel["edge"], env.heal_range, current)
    healer = rel["healer"]
    target = jnp.where(healer, heal, fight)[na:]
    pos = state.unit_positions
    allies_alive = state.unit_alive[:na]
    goal, any_ally = centre(pos[:na], allies_alive)
    own_army = state.unit_alive & ~healer & ~env.is_ally
    army, any_army = centre(pos, own_army)
    to_allies = unit_direction(pos[na:], jnp.broadcast_to(goal, (n - na, 2)), 0.0)
    to_army = unit_direction(pos[na:], jnp.broadcast_to(army, (n - na, 2)), 1.0)
    move = jnp.where(healer[na:, None], jnp.where(any_army, to_army, 0.0), jnp.where(any_ally, to_allies, 0.0))
    move = jnp.where((target >= 0)[:, None] | ~state.unit_alive[na:, None], 0.0, move)
    # SMAX's enemy action encoding: fighters' slot k = ally na-1-k; healers' slot k = unit n-1-k
    slot = jnp.where(healer[na:], n - 1 - target, na - 1 - target)
    attack = jnp.where(target >= 0, slot + env.num_movement_actions, 0).astype(jnp.int32)
    return move.astype(jnp.float32), attack, target
