"""Tests of the Medivac healer SMAX (src/envs/smax_medivac.py) and the MMM / MMM2 maps.

Mechanics are checked on a small hand-placed battle (6 vs 6, one jitted raw-env step per
test) with values computed by hand from the stats in the module docstring: one env step is
8 world steps of 1/16 s = 0.5 s, so a heal restores 12.6 * 0.5 = 6.3 health for 2.1 energy while
0.7875 * 0.5 energy regenerates. The batch tests build the MMM / MMM2 adapters (slow: compiling).
"""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("jaxmarl")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from envs.smax import _enable_compile_cache, make_smax_batch, valid_map_names  # noqa: E402
from envs.smax_medivac import (MEDIVAC, MedivacHeuristicEnemySMAX, MedivacSMAX,  # noqa: E402
                               Scenario)

STOP = 4
# allies: 0 medivac, 1-4 marines, 5 marauder; enemies: 6 medivac, 7 marine, 8 marauder, 9-11 marines
TYPES = [MEDIVAC, 0, 0, 0, 0, 1, MEDIVAC, 0, 1, 0, 0, 0]
POS = [(10, 16), (11, 16), (10, 17), (10, 10), (11, 15), (9, 16),
       (28, 16), (27, 16), (29, 18), (29, 14), (30, 16), (27, 19)]


def _cache(request) -> str:
    """A persistent XLA compile cache under .pytest_cache (shared with tests/envs/test_smax.py)."""
    return str(request.config.cache.mkdir("smax_jax_cache"))


@pytest.fixture(scope="module")
def env(request):
    _enable_compile_cache(_cache(request))
    scenario = Scenario(jnp.array(TYPES, dtype=jnp.uint8), 6, 6, False, False)
    e = MedivacSMAX(scenario=scenario, walls_cause_death=True)
    e.step_jit = jax.jit(e.step_env)
    e.avail_jit = jax.jit(e.get_avail_actions)
    e.start = e.reset(jax.random.PRNGKey(0))[1]
    return e


def battle(env, health=None, alive=None, pos=None, energy=None):
    """The hand-placed battle: every unit at full health and POS unless overridden per index."""
    s = env.start
    h = np.asarray(s.unit_health).copy()
    a = np.ones(12, bool)
    p = np.array(POS, dtype=np.float32)
    cd = np.asarray(s.unit_weapon_cooldowns).copy()
    for i, v in (health or {}).items():
        h[i] = v
    for i, v in (alive or {}).items():
        a[i] = v
    for i, v in (pos or {}).items():
        p[i] = v
    for i, v in (energy or {}).items():
        cd[i] = v
    return s.replace(unit_health=jnp.asarray(h), unit_alive=jnp.asarray(a), unit_positions=jnp.asarray(p),
                     unit_weapon_cooldowns=jnp.asarray(cd))


def step(env, state, acts=None):
    """One env step; every unit stops unless ``acts`` {unit index: action} says otherwise."""
    actions = {agent: jnp.int32(STOP) for agent in env.agents}
    for i, a in (acts or {}).items():
        actions[env.agents[i]] = jnp.int32(a)
    _, new, rewards, dones, _ = env.step_jit(jax.random.PRNGKey(1), state, actions)
    return new, rewards, dones


def test_reset_stats_and_energy(env):
    s = env.start
    np.testing.assert_allclose(np.asarray(s.unit_health)[[0, 1, 5]], [150.0, 45.0, 125.0])
    np.testing.assert_allclose(np.asarray(s.unit_weapon_cooldowns)[[0, 6]], [50.0, 50.0])  # start energy
    assert env.unit_type_bits == 7 and env.unit_type_names[MEDIVAC] == "medivac"


def test_heal_at_rate_and_energy_cost(env):
    s, _, _ = step(env, battle(env, health={1: 20.0}), {0: 5 + 1})  # heal[ally 1]
    np.testing.assert_allclose(float(s.unit_health[1]), 20.0 + 6.3, rtol=1e-6)
    np.testing.assert_allclose(float(s.unit_weapon_cooldowns[0]), 50.0 - 2.1 + 0.39375, rtol=1e-6)
    # the obs shows energy / 200 in the cooldown feature (SMAC's convention)
    own = np.asarray(env.get_obs(s)[env.agents[0]])[-(4 + 7):]
    np.testing.assert_allclose(own[3], (50.0 - 2.1 + 0.39375) / 200.0, rtol=1e-6)


def test_heal_never_above_max(env):
    s, _, _ = step(env, battle(env, health={1: 44.0}), {0: 5 + 1})
    assert float(s.unit_health[1]) == 45.0
    np.testing.assert_allclose(float(s.unit_weapon_cooldowns[0]), 50.0 - 1.0 / 3.0 + 0.39375, rtol=1e-6)


def test_heal_limited_by_energy(env):
    """No energy: the first world step heals nothing, each later one 3 x the regenerated 0.7875/16."""
    s, _, _ = step(env, battle(env, health={1: 20.0}, energy={0: 0.0}), {0: 5 + 1})
    np.testing.assert_allclose(float(s.unit_health[1]), 20.0 + 7 * 3 * 0.7875 / 16, rtol=1e-5)


def test_heal_of_invalid_targets_does_nothing(env):
    health = {2: 45.0, 3: 20.0, 4: 0.0}
    base = battle(env, health=health, alive={4: False})
    for target in (0, 2, 3, 4):  # itself, full health, out of range, dead
        s, _, _ = step(env, base, {0: 5 + target})
        np.testing.assert_array_equal(np.asarray(s.unit_health), np.asarray(base.unit_health))


def test_heal_masks(env):
    """heal[ally k] only for living, damaged, non-medivac allies in range, never itself; a
    marauder cannot target the enemy medivac, a marine in range can."""
    s = battle(env, health={0: 100.0, 1: 20.0, 3: 20.0, 4: 0.0, 5: 100.0}, alive={4: False},
               pos={6: (13.0, 16.0)})  # enemy medivac 4 from the marauder, 2 from marine 1
    avail = {k: np.asarray(v) for k, v in env.avail_jit(s).items()}
    np.testing.assert_array_equal(avail["ally_0"], [1, 1, 1, 1, 1] + [0, 1, 0, 0, 0, 1])
    assert avail["ally_5"][5] == 0 and avail["ally_1"][5] == 1  # slot 0 = enemy unit 6 (medivac)
    far = battle(env, health={1: 20.0}, pos={1: (10.0, 20.1)})  # 4.1 away: out of the heal range 4
    assert np.asarray(env.avail_jit(far)["ally_0"])[5 + 1] == 0


def test_medivac_deals_no_damage(env):
    """Enemies next to the ally medivac keep full health whatever slot it picks."""
    base = battle(env, pos={7: (11.0, 17.5), 9: (9.0, 17.5)})
    for slot in range(6):
        s, r, _ = step(env, base, {0: 5 + slot})
        np.testing.assert_array_equal(np.asarray(s.unit_health)[6:], np.asarray(base.unit_health)[6:])
        assert float(r["ally_1"]) == 0.0


def test_enemy_healing_is_not_rewarded(env):
    """The enemy medivac heals its marine (slot k = unit 11 - k): the allies get no reward
    (SMAX's abs() of the health change would pay them for it)."""
    s, r, _ = step(env, battle(env, health={7: 20.0}), {6: 5 + (11 - 7)})
    np.testing.assert_allclose(float(s.unit_health[7]), 26.3, rtol=1e-6)
    assert float(r["ally_0"]) == 0.0


def test_medivac_flies_over_ground_units(env):
    """Overlapping a marine, the medivac is not pushed (two ground units would be)."""
    s, _, _ = step(env, battle(env, pos={0: (11.2, 16.0)}))
    np.testing.assert_array_equal(np.asarray(s.unit_positions)[[0, 1]], np.float32([[11.2, 16.0], [11.0, 16.0]]))
    s2, _, _ = step(env, battle(env, pos={2: (11.2, 16.0)}))
    assert not np.allclose(np.asarray(s2.unit_positions)[1], [11.0, 16.0])


def test_team_with_only_medivacs_left_has_lost(env):
    dead = {i: False for i in range(1, 6)}
    s, r, dones = step(env, battle(env, health={i: 0.0 for i in range(1, 6)}, alive=dead))
    assert not bool(s.unit_alive[0]) and bool(dones["__all__"])
    assert float(r["enemy_0"]) == pytest.approx(1.0 + 150.0 / 150.0 / 6)  # win bonus + the medivac's health


def test_heuristic_enemy_medivac_heals_and_marauders_ignore_air(env):
    wrapped = MedivacHeuristicEnemySMAX(scenario=Scenario(jnp.array(TYPES, dtype=jnp.uint8), 6, 6, False, False))
    assert isinstance(wrapped._env, MedivacSMAX) and wrapped.obs_size == env.obs_size
    s = battle(env, health={7: 20.0}, pos={0: (23.5, 16.0)})  # ally medivac 5.5 from the marauder
    obs = env.get_obs_unit_list(s)
    enemy_obs = jnp.stack([obs[a] for a in wrapped.enemy_agents])
    policy_state = wrapped.get_enemy_policy_initial_state(jax.random.PRNGKey(0))
    acts, _ = jax.jit(wrapped.get_enemy_actions)(jax.random.PRNGKey(2), policy_state, enemy_obs)
    assert int(acts["enemy_0"]) == 5 + (11 - 7)          # the medivac heals its damaged marine
    assert int(acts["enemy_2"]) < 5                       # the marauder does not shoot the medivac
    assert int(acts["enemy_1"]) == 5 + (5 - 0)            # a marine in range does (slot 5 = ally 0)
    s2, _, _ = step(env, s, {6: int(acts["enemy_0"])})
    np.testing.assert_allclose(float(s2.unit_health[7]), 26.3, rtol=1e-6)


def test_an_ally_medivac_needs_a_slot_per_ally():
    sc = Scenario(jnp.array([MEDIVAC, 0, 0, 0], dtype=jnp.uint8), 3, 1, False, False)
    with pytest.raises(ValueError, match="one action slot per ally"):
        MedivacSMAX(scenario=sc)


# ----- MMM / MMM2 through the batch adapter (compiles: slow) -------------------------------

def random_actions(rng: np.random.Generator, avail: np.ndarray) -> np.ndarray:
    return (rng.random(avail.shape) * avail).argmax(-1)


N_FEAT = 14  # SMAX unit features with 7 unit types


def focus_fire(obs: np.ndarray, avail: np.ndarray) -> np.ndarray:
    """Fighters shoot the weakest enemy in range (observed health, ties: lowest index), else walk
    east; the medivac (agent 0 on MMM) heals the weakest healable ally, else flies towards the
    centre of the allies it sees. obs [n_envs, agents, obs_dim], avail [n_envs, agents, actions]."""
    n, n_agents, n_actions = avail.shape
    n_enemies = n_actions - 5
    att = avail[:, :, 5:].astype(bool)
    units = obs[:, :, :(n_agents - 1 + n_enemies) * N_FEAT].reshape(n, n_agents, -1, N_FEAT)
    enemy_health = units[:, :, n_agents - 1:, 0] + 1e-3 * np.arange(n_enemies)
    acts = np.where(att.any(-1), np.where(att, enemy_health, np.inf).argmin(-1) + 5, 1)
    mates = units[:, 0, :n_agents - 1]  # the medivac's view of allies 1..n_agents-1
    seen = mates[:, :, 0] > 0
    dx = np.where(seen, mates[:, :, 1], 0.0).sum(1) / np.maximum(seen.sum(1), 1)
    follow = np.where(dx > 0.05, 1, np.where(dx < -0.05, 3, STOP))
    weakest = np.where(att[:, 0, 1:n_agents], mates[:, :, 0], np.inf).argmin(-1) + 1
    acts[:, 0] = np.where(att[:, 0].any(-1), weakest + 5, follow)
    return np.where(avail[:, :, 1] == 1, acts, STOP)  # dead agents can only stop


def play(env, policy, n_resets: int, rng=None) -> float:
    """Win rate over ``n_resets`` x n_envs episodes of ``policy``."""
    env._stats = {k: 0 for k in env._stats}
    for _ in range(n_resets):
        out = env.reset()
        running = np.ones(env.n_envs, bool)
        while running.any():
            avail = out["avail_actions"]
            acts = policy(out["obs"], avail) if rng is None else random_actions(rng, avail)
            out, _, term, info = env.step(acts, running)
            running &= ~(term | info["episode_limit"])
    return env.get_stats()["win_rate"]


@pytest.fixture(scope="module")
def mmm(request):
    return make_smax_batch(4, seed=0, map_name="MMM", jax_cache_dir=_cache(request))


@pytest.mark.slow
def test_mmm_maps_shapes_and_limits(mmm):
    assert {"MMM", "MMM2"} <= set(valid_map_names())
    info = mmm.get_env_info()
    # obs: 19 other units x 14 features + own 4 + 7 type bits; actions 5 + 10 enemies
    assert (info["n_agents"], info["n_enemies"], info["n_actions"], info["obs_shape"], info["episode_limit"]) == \
        (10, 10, 15, 19 * 14 + 11, 150)
    out = mmm.reset()
    own_type = out["obs"][0, :, -7:].argmax(-1)
    np.testing.assert_array_equal(own_type, [MEDIVAC, 1, 1] + [0] * 7)  # obs carry the unit type
    assert make_smax_batch(1, seed=0, map_name="MMM", episode_limit=60).episode_limit == 60


@pytest.mark.slow
def test_vmapped_batch_equals_single_envs(mmm, request):  # noqa: ARG001 - mmm: compiled once
    """Env 2 of the batch of 4 plays, bit for bit, the battle of a single env with first_env_index=2."""
    batch = make_smax_batch(4, seed=0, map_name="MMM")  # a fresh reset counter; shares mmm's compile
    single = make_smax_batch(1, seed=0, map_name="MMM", first_env_index=2, jax_cache_dir=_cache(request))
    out_b, out_s = batch.reset(), single.reset()
    rng = np.random.default_rng(0)
    running = np.ones(4, bool)
    for _ in range(150):
        np.testing.assert_array_equal(out_b["obs"][2], out_s["obs"][0])
        np.testing.assert_array_equal(out_b["state"][2], out_s["state"][0])
        np.testing.assert_array_equal(out_b["avail_actions"][2], out_s["avail_actions"][0])
        acts = random_actions(rng, out_b["avail_actions"])
        out_b, r_b, t_b, i_b = batch.step(acts, running)
        out_s, r_s, t_s, i_s = single.step(acts[2:3])
        assert r_b[2] == r_s[0] and t_b[2] == t_s[0]
        running &= ~(t_b | i_b["episode_limit"])
        if not running[2]:
            break
    assert not running[2]


@pytest.mark.slow
def test_mmm2_random_loses_and_focus_fire_wins_mmm(mmm, request):
    mmm2 = make_smax_batch(4, seed=0, map_name="MMM2", jax_cache_dir=_cache(request))
    assert mmm2.get_env_info()["episode_limit"] == 180 and mmm2.n_actions == 5 + 12
    random_mmm2 = play(mmm2, None, 4, rng=np.random.default_rng(0))
    scripted_mmm = play(mmm, focus_fire, 4)
    assert random_mmm2 <= 0.05
    assert scripted_mmm >= random_mmm2 + 0.15
