"""Tests of SMAX's two fidelities (src/envs/smax_sc2.py, smax_units.py, smax_opponent.py).

Small hand-placed scenes, one jitted raw-env step each, with values computed by hand from the
tables in src/envs/smax_units.py. sc2 fidelity: one env step is 8 game loops of 1/22.4 s =
0.357 s, shorter than every weapon cooldown (marine 0.61 s), so a unit that starts ready fires
exactly once in the first step. jaxmarl fidelity: one step is 8 x 1/16 s = 0.5 s with SMAX's stats
(marine damage 9, no armor). The batch tests build the adapters (slow: compiling).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("jaxmarl")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from envs import smax_units as U  # noqa: E402
from envs.smax import _enable_compile_cache, _import_jax, default_episode_limit, make_smax_batch  # noqa: E402
from envs.smax_opponent import attack_move_orders  # noqa: E402
from envs.smax_sc2 import SC2OpponentSMAX  # noqa: E402

_, _, HeuristicEnemySMAX, Scenario, _ = _import_jax()
M, MM, S, Z, V = U.MARINE, U.MARAUDER, U.STALKER, U.ZEALOT, U.MEDIVAC
STOP, EAST = 4, 1
STEP_S = 8 / 22.4


def _cache(request) -> str:
    return str(request.config.cache.mkdir("smax_jax_cache"))


class Scene:
    """A raw env (sc2: ``SC2OpponentSMAX``; jaxmarl: ``HeuristicEnemySMAX``) with hand-placed units."""

    def __init__(self, cls, types, n_allies, **kwargs):
        scenario = Scenario(jnp.array(types, dtype=jnp.uint8), n_allies, len(types) - n_allies, False, False)
        self.env = cls(scenario=scenario, **kwargs)
        self.step_jit = jax.jit(self.env.step_env)
        self.avail_jit = jax.jit(self.env.get_avail_actions)
        self.start = self.env.reset(jax.random.PRNGKey(0))[1]
        self.n = len(types)

    def state(self, pos, health=None, alive=None, targets=None):
        s = self.start
        inner = s.state
        h = np.asarray(inner.unit_health).copy()
        a = np.ones(self.n, bool)
        for i, v in (health or {}).items():
            h[i] = v
        for i, v in (alive or {}).items():
            a[i] = v
        h = np.where(a, h, 0.0)
        inner = inner.replace(unit_positions=jnp.asarray(np.array(pos, np.float32)), unit_health=jnp.asarray(h),
                              unit_alive=jnp.asarray(a))
        policy = s.enemy_policy_state
        if targets is not None:
            policy = jnp.asarray(np.array(targets, np.int32))
        return s.replace(state=inner, enemy_policy_state=policy)

    def step(self, state, acts=None):
        actions = {a: jnp.int32(STOP) for a in self.env.agents}
        for i, a in (acts or {}).items():
            actions[self.env.agents[i]] = jnp.int32(a)
        _, new, rewards, dones, _ = self.step_jit(jax.random.PRNGKey(3), state, actions)
        return new, rewards


# ------------------------------------------------------------------ unit table and damage rule
def test_unit_table_matches_sc2_lotv():
    s = U.unit_stats(7)
    np.testing.assert_allclose(s["health"], [45, 125, 160, 150, 35, 90, 150])
    np.testing.assert_allclose(s["armor"], [0, 1, 1, 1, 0, 0, 1])
    np.testing.assert_allclose(s["damage"], [6, 10, 13, 8, 5, 12, 0])
    np.testing.assert_allclose(s["bonus_armored"], [0, 10, 5, 0, 0, 0, 0])
    np.testing.assert_allclose(s["speed"], [3.15, 3.15, 4.13, 3.15, 4.13, 3.15, 3.5])
    np.testing.assert_allclose(s["cooldown"][:6], [0.61, 1.07, 1.34, 0.86, 0.497, 0.59])
    assert list(s["armored"]) == [False, True, True, False, False, False, True]
    assert U.SC2_STEP_SECONDS == pytest.approx(0.35714, abs=1e-5)


@pytest.mark.parametrize("health,hp_max,armor,damage,hits,lost", [
    (45.0, 45.0, 0.0, 6.0, 1, 6.0),       # marine on marine
    (125.0, 125.0, 1.0, 6.0, 1, 5.0),     # marine on marauder: 6 - 1
    (125.0, 125.0, 1.0, 20.0, 1, 19.0),   # marauder (10 + 10 vs armored) on marauder
    (150.0, 100.0, 1.0, 13.0, 1, 13.0),   # stalker on a full zealot: all on the shield, no armor
    (160.0, 80.0, 1.0, 8.0, 2, 16.0),     # zealot (8 x 2) on a full stalker
    (83.0, 80.0, 1.0, 18.0, 1, 17.0),     # stalker (13 + 5) on a stalker with 3 shield: 3 + (15 - 1)
    (100.0, 100.0, 1.0, 1.0, 1, 0.5),     # minimum damage 0.5
    (4.0, 45.0, 0.0, 6.0, 1, 4.0),        # never more than the health left
])
def test_hit_damage_by_hand(health, hp_max, armor, damage, hits, lost):
    got = U.hit_damage(jnp, jnp.float32(health), jnp.float32(hp_max), jnp.float32(armor), jnp.float32(damage),
                       jnp.float32(hits))
    assert float(got) == pytest.approx(lost)


def test_marine_kills_a_marine_in_eight_shots():
    shots, h = 0, jnp.float32(45.0)
    while h > 0:
        h = h - U.hit_damage(jnp, h, jnp.float32(45.0), jnp.float32(0.0), jnp.float32(6.0), jnp.float32(1.0))
        shots += 1
    assert shots == math.ceil(45 / 6) == 8


# ------------------------------------------------------------------ limits
@pytest.mark.parametrize("name,sc2,jaxmarl", [("3m", 60, 100), ("8m", 120, 100), ("2s3z", 120, 100),
                                               ("3s_vs_5z", 250, 100), ("8m_vs_9m", 120, 100),
                                               ("27m_vs_30m", 180, 100), ("5m_vs_6m", 70, 100),
                                               ("MMM", 150, 150), ("MMM2", 180, 180),
                                               ("smacv2_5_units", 100, 100)])
def test_episode_limits(name, sc2, jaxmarl):
    assert default_episode_limit(name, "sc2") == sc2
    assert default_episode_limit(name, "jaxmarl") == jaxmarl


# ------------------------------------------------------------------ sc2 scenes: stats and timing
# allies 0-5 each attack enemy i + 6 (pairs 5 apart in y); enemies hold fire
DUEL_TYPES = [M, M, MM, MM, S, Z, M, MM, MM, M, Z, S]
DUEL_POS = [(10, 4 + 5 * i) for i in range(6)] + [(14, 4), (14, 9), (14, 14), (14, 19), (14, 24), (11.2, 29)]


@pytest.fixture(scope="module")
def duel(request):
    _enable_compile_cache(_cache(request))
    return Scene(SC2OpponentSMAX, DUEL_TYPES, 6, enemy_shoots=False, walls_cause_death=False)


def test_one_step_of_each_attack(duel):
    s = duel.state(DUEL_POS)
    new, rewards = duel.step(s, {i: 5 + i for i in range(6)})
    h = np.asarray(new.state.unit_health)[6:]
    # marine->marine 45-6, marine->marauder 125-5, marauder->marauder 125-19, marauder->marine 45-10,
    # stalker->zealot 150-13 (shield), zealot->stalker 160-16 (shield)
    np.testing.assert_allclose(h, [39, 120, 106, 35, 137, 144])
    # SMAC reward: 69 damage / (10 * 6 + 200 + 650), times (1 + won_battle_bonus) = 2 for the adapter
    assert float(rewards["ally_0"]) == pytest.approx(69 / 910 * 2, rel=1e-5)


def test_step_length_and_speed(duel):
    s = duel.state(DUEL_POS)
    new, _ = duel.step(s, {0: EAST})
    x0 = float(np.asarray(new.state.unit_positions)[0, 0])
    assert x0 - 10 == pytest.approx(3.15 * STEP_S, rel=1e-4)  # 1.125 per step (jaxmarl: 1.575)


def test_ordered_attack_walks_into_range(duel):
    pos = list(DUEL_POS)
    pos[6] = (15.9, 4)   # centre 5.9 (SMAC shoot range 6: available), edge 5.15 > marine range 5
    pos[11] = (15.0, 29)  # the zealot's target 5 away: it walks, no hit in 0.357 s
    s = duel.state(pos)
    avail = np.asarray(duel.avail_jit(s)["ally_0"])
    assert avail[5 + 0] == 1
    new, _ = duel.step(s, {0: 5, 5: 5 + 5})
    h = np.asarray(new.state.unit_health)
    p = np.asarray(new.state.unit_positions)
    assert h[6] == pytest.approx(39.0)            # walked 0.15, then fired once
    assert 10.1 < p[0, 0] < 10.3
    assert h[11] == pytest.approx(160.0)          # zealot still walking
    assert np.linalg.norm(p[5] - [10, 29]) == pytest.approx(3.15 * STEP_S, abs=0.05)  # chased all step


def test_sc2_avail_uses_smac_shoot_range(duel):
    pos = list(DUEL_POS)
    pos[6] = (16.1, 4)
    avail = np.asarray(duel.avail_jit(duel.state(pos))["ally_0"])
    assert avail[5] == 0
    dead = np.asarray(duel.avail_jit(duel.state(DUEL_POS, alive={0: False}))["ally_0"])
    assert dead.tolist() == [0, 0, 0, 0, 1] + [0] * 6


def test_idle_unit_fires_back_moving_unit_does_not(duel):
    s = duel.state(DUEL_POS)
    new, _ = duel.step(s, {0: STOP, 1: 0, 2: 0, 3: 0, 4: 0, 5: 0})  # 1-5 move north
    h = np.asarray(new.state.unit_health)[6:]
    assert h[0] == pytest.approx(39.0)             # stop = idle: auto-attacks the marine in range
    np.testing.assert_allclose(h[1:], [125, 125, 45, 150, 160])


def test_walls_do_not_kill_in_sc2(duel):
    pos = list(DUEL_POS)
    pos[0] = (0.5, 4)
    new, _ = duel.step(duel.state(pos), {0: 3})  # west into the edge
    assert bool(np.asarray(new.state.unit_alive)[0])
    assert float(np.asarray(new.state.unit_positions)[0, 0]) == 0.0


# ------------------------------------------------------------------ sc2 scenes: the built-in AI
# allies: 0 medivac, 1-2 marines; enemies: 3 medivac, 4 marine, 5 marine
AI_TYPES = [V, M, M, V, M, M]


@pytest.fixture(scope="module")
def ai(request):
    _enable_compile_cache(_cache(request))
    sc = Scene(SC2OpponentSMAX, AI_TYPES, 3)
    sc.orders = jax.jit(lambda st, tg: attack_move_orders(sc.env._env, st, tg, True))
    return sc


def targets_of(ai, state):
    _, attack, target = ai.orders(state.state, state.enemy_policy_state)
    return np.asarray(target), np.asarray(attack)


FAR = (2, 30)  # a unit parked out of everyone's way


def test_ai_prefers_a_threat_over_a_closer_medivac(ai):
    s = ai.state([(20, 19), (15, 16), (10, 5), FAR, (20, 16), (28, 2)])  # medivac 3 away, marine 5
    target, attack = targets_of(ai, s)
    assert target[1] == 1                                 # enemy marine 4 targets ally marine 1
    assert attack[1] == 5 + (3 - 1 - 1)                   # SMAX enemy slot k = ally na-1-k
    new, _ = ai.step(s)
    h = np.asarray(new.state.unit_health)
    assert h[1] == pytest.approx(39.0) and h[0] == pytest.approx(150.0)


def test_ai_picks_the_closest_and_keeps_its_target(ai):
    s = ai.state([FAR, (16.5, 16), (16, 18), (30, 30), (20, 16), (28, 2)])  # marine 1 at 3.5, marine 2 at 4.5
    target, _ = targets_of(ai, s)
    assert target[1] == 1
    kept = ai.state([FAR, (16.5, 16), (16, 18), (30, 30), (20, 16), (28, 2)], targets=[-1, 2, -1])
    assert targets_of(ai, kept)[0][1] == 2                 # still in weapon range: kept


def test_ai_retargets_when_the_target_dies_or_leaves_range(ai):
    pos = [FAR, (16.5, 16), (16, 18), (30, 30), (20, 16), (28, 2)]
    dead = ai.state(pos, alive={2: False}, targets=[-1, 2, -1])
    assert targets_of(ai, dead)[0][1] == 1
    pos_left = [FAR, (16.5, 16), (13, 16), (30, 30), (20, 16), (28, 2)]  # marine 2 at 7 (edge 6.25 > 5)
    left = ai.state(pos_left, targets=[-1, 2, -1])
    assert targets_of(ai, left)[0][1] == 1
    alone = ai.state([FAR, (5, 5), (14, 16), (30, 30), (20, 16), (28, 2)], targets=[-1, 2, -1])
    assert targets_of(ai, alone)[0][1] == 2                # out of weapon range, in scan range: chase it


def test_ai_switches_to_a_threat_entering_weapon_range(ai):
    s = ai.state([(17, 16), (14, 16), (5, 5), (30, 30), (20, 16), (28, 2)], targets=[-1, 0, -1])
    assert targets_of(ai, s)[0][1] == 0                    # shooting the medivac, marine 1 at 6: out of range
    s2 = ai.state([(17, 16), (15.5, 16), (5, 5), (30, 30), (20, 16), (28, 2)], targets=[-1, 0, -1])
    assert targets_of(ai, s2)[0][1] == 1                   # marine 1 at 4.5: a threat in range wins


def test_ai_advances_on_the_allies(ai):
    s = ai.state([(5, 16), (5, 17), (5, 15), (28, 16), (27, 16), (27, 20)])
    target, attack = targets_of(ai, s)
    assert (target == -1).all() and (attack == 0).all()
    new, _ = ai.step(s)
    p = np.asarray(new.state.unit_positions)
    assert p[4, 0] == pytest.approx(27 - 3.15 * STEP_S, abs=1e-3)   # straight at the allies' centre (5, 16)
    assert p[5, 0] < 27 and p[5, 1] < 20                             # towards it from above


def test_ai_medivac_heals_the_most_injured_in_range(ai):
    s = ai.state([FAR, (2, 2), (2, 4), (20, 16), (21, 16), (20, 18)], health={4: 30.0, 5: 20.0})
    target, attack = targets_of(ai, s)
    assert target[0] == 5 and attack[0] == 5 + (6 - 1 - 5)
    new, _ = ai.step(s)
    h = np.asarray(new.state.unit_health)
    assert h[5] == pytest.approx(20 + 12.6 * STEP_S, rel=1e-4) and h[4] == pytest.approx(30.0)


def test_sc2_medivac_heal_masks_follow_smac(ai):
    s = ai.state([(10, 16), (12, 16), (10, 21), (30, 30), (28, 2), (28, 6)])
    avail = np.asarray(ai.avail_jit(s)["ally_0"])
    assert avail[5:].tolist() == [0, 1, 1]  # marines within 6 (full health too, as SMAC); never itself


# ------------------------------------------------------------------ jaxmarl fidelity scenes
@pytest.fixture(scope="module")
def jm(request):
    _enable_compile_cache(_cache(request))
    return Scene(HeuristicEnemySMAX, [M, M, M], 2, enemy_shoots=True, attack_mode="closest")


def test_jaxmarl_enemy_shoots_the_closest_and_keeps_it(jm):
    s = jm.state([(16.5, 16), (16, 18), (20, 16)])        # ally 0 at 3.5, ally 1 at 4.5
    new, _ = jm.step(s)
    h = np.asarray(new.state.unit_health)
    assert h[0] == pytest.approx(36.0) and h[1] == pytest.approx(45.0)   # SMAX marine damage 9
    moved = new.replace(state=new.state.replace(unit_positions=jnp.asarray(
        np.array([(16.2, 16), (18, 17), (20, 16)], np.float32))))
    new2, _ = jm.step(moved)                               # ally 1 now closer: the enemy keeps ally 0
    assert float(np.asarray(new2.state.unit_health)[1]) == pytest.approx(45.0)


def test_jaxmarl_step_length_and_walls(jm):
    s = jm.state([(10, 16), (0.5, 3), (28, 28)])
    new, _ = jm.step(s, {0: EAST, 1: 3})
    p = np.asarray(new.state.unit_positions)
    assert p[0, 0] - 10 == pytest.approx(3.15 * 0.5, rel=1e-4)
    assert not bool(np.asarray(new.state.unit_alive)[1])   # SMAX: touching the edge kills


# ------------------------------------------------------------------ the batch adapter
@pytest.mark.slow
def test_batch_sc2_fidelity_shapes_limits_and_seeding(request):
    cache = _cache(request)
    a = make_smax_batch(3, seed=5, map_name="3m", fidelity="sc2", jax_cache_dir=cache)
    b = make_smax_batch(3, seed=5, map_name="3m", jax_cache_dir=cache)
    ia, ib = a.get_env_info(), b.get_env_info()
    assert ia["episode_limit"] == 60 and ib["episode_limit"] == 100
    for k in ("obs_shape", "state_shape", "n_actions"):
        assert ia[k] == ib[k]
    assert ia["fidelity"] == "sc2" and ib["fidelity"] == "jaxmarl"
    single = make_smax_batch(1, seed=5, map_name="3m", fidelity="sc2", first_env_index=2, jax_cache_dir=cache)
    oa, os_ = a.reset(), single.reset()
    np.testing.assert_array_equal(oa["obs"][2], os_["obs"][0])
    rng = np.random.default_rng(0)
    for _ in range(20):
        av = oa["avail_actions"]
        acts = (rng.random(av.shape) * av).argmax(-1)
        oa, ra, _, _ = a.step(acts)
        os_, rs, _, _ = single.step(acts[2:3])
        np.testing.assert_array_equal(oa["obs"][2], os_["obs"][0])
        assert ra[2] == rs[0]
    # the continuous runner's step: episodes end (won, lost or timed out at 60) and restart in place
    now = a.reset()
    ended = 0
    for _ in range(70):
        av = now["avail_actions"]
        _, _, term, info, now = a.step_and_reset((rng.random(av.shape) * av).argmax(-1))
        ended += int((term | info["episode_limit"]).sum())
    assert ended >= 3 and a.get_stats()["battles_game"] >= ended


@pytest.mark.slow
@pytest.mark.parametrize("fidelity", ["jaxmarl", "sc2"])
def test_random_start_option(request, fidelity):
    cache = _cache(request)
    env = make_smax_batch(8, seed=0, map_name="3m", fidelity=fidelity, random_start=True, jax_cache_dir=cache)
    env.reset()
    pos = np.asarray(env._carry[1].state.unit_positions)
    fixed = make_smax_batch(8, seed=0, map_name="3m", fidelity=fidelity, jax_cache_dir=cache)
    fixed.reset()
    fpos = np.asarray(fixed._carry[1].state.unit_positions)
    # fixed starts: allies within 2 (+ push) of (8, 16); random starts spread over the map
    assert np.abs(fpos[:, :3] - [8, 16]).max() < 3
    assert np.abs(pos[:, :3] - [8, 16]).max() > 5


def test_bad_fidelity_and_random_start_are_refused():
    with pytest.raises(ValueError, match=r"env_args.fidelity must be one of jaxmarl, sc2, got 'sc3'"):
        make_smax_batch(1, 0, "3m", fidelity="sc3")
    with pytest.raises(ValueError, match=r"env_args.random_start must be true or false"):
        make_smax_batch(1, 0, "3m", random_start="yes")
