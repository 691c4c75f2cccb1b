"""StarCraft II facts for SMAX's ``sc2`` fidelity: unit stats, SMAC's timing and episode limits,
and the damage rule. Plain data plus one pure JAX function; no environment here.

Unit stats are StarCraft II Legacy of the Void (patch 4.x, the game SMAC runs: SC2.4.6.2 / 4.10)
at the "faster" game speed that SMAX and SMAC both use (1 real second = 1.4 game seconds at
"normal"; Liquipedia lists normal-speed cooldowns, divided here by 1.4). Sources, per unit, the
Liquipedia StarCraft 2 wiki pages "<Unit> (Legacy of the Void)":

    type       hp  shield armor damage        hits cooldown range speed sight radius attributes
    marine     45    0     0    6               1    0.61    5    3.15   9   0.375  light bio
    marauder  125    0     1   10 (+10 armd)    1    1.07    6    3.15  10   0.5625 armored bio, ground-only weapon
    stalker    80   80     1   13 (+5 armd)     1    1.34    6    4.13  10   0.625  armored mech
    zealot    100   50     1    8               2    0.86    0.1  3.15   9   0.5    light bio, melee
    zergling   35    0     0    5               1    0.497   0.1  4.13   8   0.375  light bio, melee
    hydralisk  90    0     0   12               1    0.59    5    3.15   9   0.625  light bio
    medivac   150    0     1   (heals)          -    -       4    3.5   11   0.75   armored mech, air

Notes on the sources: the marine, marauder and medivac rows are the figures of DESIGN.md
section 14 (Liquipedia); the hydralisk row was checked against a stored copy of Liquipedia's
"Hydralisk (Legacy of the Void)" page (90 hp, 12 damage, range 5, speed 3.15, sight 9; that page
shows the later cooldown 0.54, patch 4.x had 0.83 normal = 0.59 faster, SMAX's value); the
stalker's 13 (+5 armored) and 1.87 s normal cooldown are patch 4.0's (SMAX keeps 13 and the
normal-speed 1.87 s, here 1.87 / 1.4 = 1.34 s); zealot 8 x 2 every 1.2 s normal = 0.86 s;
zergling 0.696 s normal = 0.497 s. Radii are SMAX's (they are the SC2 unit radii). Speeds are
faster-speed values (SMAX's marauder 2.25 is the normal-speed value; SC2 faster is 3.15).
Shields are folded into health (``unit_type_health`` = hp + shields, as SMAX already does for
stalker 160 and zealot 150); a hit spends the shield first, without armor (shield armor 0),
and the part that passes the shield is reduced by the hull armor (Liquipedia "Shields",
"Armor"). Every hit does at least 0.5 damage (Liquipedia "Armor"). Zealots hit twice per attack,
armor applies to each hit. Shield regeneration (2 per game second after 10 s out of combat) is
not modelled: SMAC's battles rarely leave a unit 7 s out of combat.

Timing (SMAC, oxwhirl/smac starcraft2.py): an agent step is ``step_mul`` = 8 game loops; SC2 at
"faster" runs 22.4 game loops per real second (16 per game second at normal x 1.4), so a step is
8 / 22.4 = 0.357 s (SMAX: 8 world steps of 1/16 s = 0.5 s). The sc2 fidelity runs 8 world steps
of one game loop (1 / 22.4 s) each.

Episode limits: SMAC's smac_maps.py ("limit" per map), for every SMAX map that SMAC has.
"""
from __future__ import annotations

from typing import Any, Dict, Tuple

import numpy as np

UNIT_NAMES: Tuple[str, ...] = ("marine", "marauder", "stalker", "zealot", "zergling", "hydralisk", "medivac")
MARINE, MARAUDER, STALKER, ZEALOT, ZERGLING, HYDRALISK, MEDIVAC = range(7)

GAME_LOOPS_PER_SECOND = 22.4   # SC2 "faster" speed: 16 loops per game second x 1.4
SMAC_STEP_MUL = 8              # SMAC's default step_mul (game loops per agent step)
SC2_STEP_SECONDS = SMAC_STEP_MUL / GAME_LOOPS_PER_SECOND  # 0.357 s
MIN_DAMAGE = 0.5               # SC2: armor never reduces a hit below 0.5
SMAC_SHOOT_RANGE = 6.0         # SMAC unit_shoot_range: attack / heal actions are available within 6
SMAC_SIGHT_RANGE = 9.0         # SMAC unit_sight_range (not used for SMAX's observations, see docs)
SCAN_RANGE_MIN = 5.0           # Liquipedia "Automatic Targeting": scan range max(5, weapon range + 0.5)
SCAN_RANGE_EXTRA = 0.5

# SMAC's reward constants (oxwhirl/smac starcraft2.py defaults)
SMAC_REWARD_DEATH_VALUE = 10.0
SMAC_REWARD_WIN = 200.0

# per unit type (index as UNIT_NAMES): see the module docstring's table
_STATS: Dict[str, Tuple[float, ...]] = {
    #            hp     shield armor dmg  bonus_armd hits cooldown  range speed sight radius
    "marine":    (45.0,  0.0, 0.0,  6.0,  0.0, 1.0, 0.61,  5.0, 3.15,  9.0, 0.375),
    "marauder":  (125.0, 0.0, 1.0, 10.0, 10.0, 1.0, 1.07,  6.0, 3.15, 10.0, 0.5625),
    "stalker":   (80.0, 80.0, 1.0, 13.0,  5.0, 1.0, 1.34,  6.0, 4.13, 10.0, 0.625),
    "zealot":    (100.0, 50.0, 1.0, 8.0,  0.0, 2.0, 0.86,  0.1, 3.15,  9.0, 0.5),
    "zergling":  (35.0,  0.0, 0.0,  5.0,  0.0, 1.0, 0.497, 0.1, 4.13,  8.0, 0.375),
    "hydralisk": (90.0,  0.0, 0.0, 12.0,  0.0, 1.0, 0.59,  5.0, 3.15,  9.0, 0.625),
    "medivac":   (150.0, 0.0, 1.0,  0.0,  0.0, 0.0, 0.0,   4.0, 3.5,  11.0, 0.75),
}
_FIELDS = ("hp", "shield", "armor", "damage", "bonus_armored", "hits", "cooldown", "range", "speed", "sight",
           "radius")
ARMORED = {"marauder", "stalker", "medivac"}      # Liquipedia attributes
AIR = {"medivac"}
HITS_AIR = {"marine", "stalker", "hydralisk"}     # weapons that target air (marauder, melee: ground only)
BIOLOGICAL = {"marine", "marauder", "zealot", "zergling", "hydralisk"}  # Heal's valid targets

# SMAC smac_maps.py episode limits of the maps SMAX has
SMAC_EPISODE_LIMITS: Dict[str, int] = {
    "3m": 60, "8m": 120, "25m": 150, "5m_vs_6m": 70, "8m_vs_9m": 120, "10m_vs_11m": 150, "27m_vs_30m": 180,
    "MMM": 150, "MMM2": 180, "2s3z": 120, "3s5z": 150, "3s5z_vs_3s6z": 170, "3s_vs_5z": 250, "6h_vs_8z": 150,
}

# the medivac's heal (Liquipedia "Medivac (Legacy of the Void)", "Heal"; envs/smax_medivac.py)
HEAL_PER_S = 12.6
HEAL_PER_ENERGY = 3.0
ENERGY_REGEN_PER_S = 0.7875
MAX_ENERGY = 200.0


def unit_stats(n_types: int) -> Dict[str, np.ndarray]:
    """The sc2 stats of the first ``n_types`` unit types (6: SMAX's, 7: with the medivac) as
    float32 arrays [n_types] keyed by field (``_FIELDS``), plus bool arrays ``armored``, ``air``,
    ``hits_air``, ``hits_ground``, ``biological``, ``healer`` and ``health`` (= hp + shield)."""
    names = UNIT_NAMES[:n_types]
    out: Dict[str, np.ndarray] = {}
    for k, field in enumerate(_FIELDS):
        out[field] = np.array([_STATS[n][k] for n in names], dtype=np.float32)
    out["health"] = out["hp"] + out["shield"]
    out["armored"] = np.array([n in ARMORED for n in names])
    out["air"] = np.array([n in AIR for n in names])
    out["healer"] = np.array([n == "medivac" for n in names])
    out["hits_air"] = np.array([n in HITS_AIR for n in names])
    out["hits_ground"] = ~out["healer"]
    out["biological"] = np.array([n in BIOLOGICAL for n in names])
    return out


def hit_damage(jnp: Any, health: Any, hp_max: Any, armor: Any, damage: Any, hits: Any) -> Any:
    """Health (hp + shield) a target loses to one attack, elementwise over any shape.

    health: the target's hp + shield now; hp_max: its maximum hp (without shield), so its shield
    is ``max(health - hp_max, 0)``; armor: its hull armor; damage: the attack's damage per hit
    including any bonus; hits: hits per attack (0, 1 or 2). Each hit: the shield absorbs what it
    can without armor; the rest loses ``armor`` and does at least 0.5 (if any of it reached the
    hull). E.g. marine (6) on marine: 6; on marauder (armor 1): 5; zealot (8 x 2) on a full
    stalker: 16 (all on the shield); marauder (10 + 10) on a stalker with 3 shield left:
    3 + (17 - 1) = 19."""
    lost = jnp.zeros_like(health)
    h = health
    for k in range(2):  # at most two hits per attack (zealot)
        shield = jnp.maximum(h - hp_max, 0.0)
        through = damage - shield
        loss = jnp.where(through <= 0.0, damage, shield + jnp.maximum(through - armor, MIN_DAMAGE))
        loss = jnp.minimum(jnp.where(hits > k, loss, 0.0), h)
        h = h - loss
        lost = lost + loss
    return lost


def smac_episode_limit(map_name: str, default: int) -> int:
    """SMAC's episode limit of ``map_name`` (``default`` for maps SMAC does not have)."""
    return SMAC_EPISODE_LIMITS.get(map_name, default)
