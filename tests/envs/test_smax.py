"""Tests of the SMAX batch env adapter (src/envs/smax.py) and the BatchEnv action check.

JAX compiling is slow, so each map is built once per module; envs with other seeds or
runtime-only env_args (episode_limit, reward scale) share that compile (the env3m fixture
must come first: tests that build their own 3m envs reuse it).
"""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("jaxmarl")

from envs.batch_env import check_actions  # noqa: E402
from envs.smax import make_smax_batch, valid_map_names, _scenario  # noqa: E402

N_ENVS = 4
MARINE_RANGE = 5.0
STOP = 4


def _cache(request) -> str:
    """A persistent XLA compile cache under .pytest_cache: reruns skip most of the compiling."""
    return str(request.config.cache.mkdir("smax_jax_cache"))


@pytest.fixture(scope="module")
def env3m(request):
    env = make_smax_batch(N_ENVS, seed=1, map_name="3m", jax_cache_dir=_cache(request))
    yield env
    env.close()


@pytest.fixture(scope="module")
def env2s3z(request):
    return make_smax_batch(2, seed=0, map_name="2s3z", jax_cache_dir=_cache(request))


def random_actions(rng: np.random.Generator, avail: np.ndarray) -> np.ndarray:
    return (rng.random(avail.shape) * avail).argmax(-1)


def focus_fire(avail: np.ndarray) -> np.ndarray:
    """Every ally shoots the lowest-index enemy in range, otherwise walks east (action 1)."""
    att = avail[:, :, 5:]
    acts = np.where(att.any(-1), att.argmax(-1) + 5, 1)
    return np.where(avail[:, :, 1] == 1, acts, STOP)  # dead allies can only stop


def internal(env):
    """(unit_alive [n_envs, units], unit_positions [n_envs, units, 2], step [n_envs]) now."""
    s = env._carry[1].state
    return np.asarray(s.unit_alive), np.asarray(s.unit_positions), np.asarray(s.step)


def play(env, policy, rng=None, max_steps=200):
    """Play one episode in every env; return per-env return, length, won, limit, terminated."""
    out = env.reset()
    n = env.n_envs
    alive = np.ones(n, bool)
    ret, length = np.zeros(n), np.zeros(n, int)
    won, limit, term = np.zeros(n, bool), np.zeros(n, bool), np.zeros(n, bool)
    for _ in range(max_steps):
        acts = policy(out["avail_actions"]) if rng is None else random_actions(rng, out["avail_actions"])
        out, r, t, info = env.step(acts, alive)
        ret += r * alive
        length += alive
        ended = (t | info["episode_limit"]) & alive
        won |= info["battle_won"] & ended
        limit |= info["episode_limit"] & ended
        term |= t & ended
        alive &= ~ended
        if not alive.any():
            break
    return ret, length, won, limit, term


def test_env_info_and_shapes_3m(env3m):
    info = env3m.get_env_info()
    # obs: 13 features x (2 allies + 3 enemies) + 10 own features; state: 12 x 6 units + 3 x 8 last actions
    assert info == {"n_agents": 3, "n_actions": 8, "obs_shape": 75, "state_shape": 96,
                    "episode_limit": 100, "n_enemies": 3, "map_name": "3m", "fidelity": "jaxmarl"}
    out = env3m.reset()
    assert out["obs"].shape == (N_ENVS, 3, 75) and out["obs"].dtype == np.float32
    assert out["state"].shape == (N_ENVS, 96) and out["state"].dtype == np.float32
    assert out["avail_actions"].shape == (N_ENVS, 3, 8)
    # the teams start 16 apart: moves and stop available, no enemy in range
    assert (out["avail_actions"][:, :, :5] == 1).all() and (out["avail_actions"][:, :, 5:] == 0).all()
    assert np.all(out["state"][:, -24:] == 0)  # no last action yet
    assert np.abs(out["state"]).max() <= 1.0 + 1e-6  # normalised state


@pytest.mark.slow  # a second map: one more JAX compile (~5-10 s cold)
def test_shapes_2s3z(env2s3z):
    info = env2s3z.get_env_info()
    assert (info["n_agents"], info["n_enemies"], info["n_actions"]) == (5, 5, 10)
    assert (info["obs_shape"], info["state_shape"]) == (127, 12 * 10 + 5 * 10)
    out = env2s3z.reset()
    rng = np.random.default_rng(0)
    for _ in range(3):
        acts = random_actions(rng, out["avail_actions"])
        out, r, t, info_ = env2s3z.step(acts)
        assert out["obs"].shape == (2, 5, 127) and out["state"].shape == (2, 170)
        assert out["avail_actions"].shape == (2, 5, 10)
        assert r.shape == (2,) and r.dtype == np.float32 and t.dtype == bool
        assert info_["battle_won"].shape == (2,) and info_["episode_limit"].dtype == bool
        # last actions one-hot at the end of the state
        np.testing.assert_array_equal(out["state"][:, -50:].reshape(2, 5, 10).argmax(-1), acts)


def test_avail_actions_follow_state(env3m):
    rng = np.random.default_rng(3)
    out = env3m.reset()
    seen_dead = seen_attack = False
    for _ in range(60):
        out, _, t, info = env3m.step(random_actions(rng, out["avail_actions"]))
        alive, pos, _ = internal(env3m)
        av = out["avail_actions"]
        for e in range(N_ENVS):
            for a in range(3):
                if not alive[e, a]:
                    seen_dead = True
                    assert av[e, a].tolist() == [0, 0, 0, 0, 1, 0, 0, 0]  # only stop
                    assert np.all(out["obs"][e, a] == 0)
                    continue
                assert av[e, a, :5].tolist() == [1] * 5
                dist = np.linalg.norm(pos[e, 3:] - pos[e, a], axis=-1)
                expect = (dist < MARINE_RANGE) & alive[e, 3:]
                np.testing.assert_array_equal(av[e, a, 5:], expect.astype(np.uint8))
                seen_attack |= bool(expect.any())
        if (t | info["episode_limit"]).all():
            break
    assert seen_dead and seen_attack


def test_reward_scale_and_battle_won(env3m):
    # random play: returns in [0, 20], a lost battle returns at most 10
    ret, length, won, limit, term = play(env3m, None, rng=np.random.default_rng(0))
    assert np.all(ret >= 0) and np.all(ret <= 20 + 1e-4)
    assert np.all(ret[~won] <= 10 + 1e-4)
    # focus fire wins some battles on 3m; a won battle returns exactly 20
    total_won = 0
    for _ in range(2):
        ret, length, won, limit, term = play(env3m, focus_fire)
        alive, _, _ = internal(env3m)
        assert np.all(term) and not limit.any()
        np.testing.assert_array_equal(won, ~alive[:, 3:].any(-1) & alive[:, :3].any(-1))
        np.testing.assert_allclose(ret[won], 20.0, atol=1e-3)
        assert np.all(ret[~won] < 10 + 1e-4)
        total_won += int(won.sum())
    assert total_won > 0
    stats = env3m.get_stats()
    assert stats["battles_game"] >= 3 * N_ENVS and 0 < stats["win_rate"] < 1


def test_unscaled_reward():
    env = make_smax_batch(N_ENVS, seed=1, map_name="3m", reward_scale=False)  # shares the compile
    ret, _, won, _, _ = play(env, focus_fire)
    assert won.any()
    np.testing.assert_allclose(ret[won], 2.0, atol=1e-4)  # SMAX raw: 1 (all health) + 1 (win bonus)


def test_episode_limit_is_not_terminal():
    env = make_smax_batch(N_ENVS, seed=2, map_name="3m", episode_limit=3)
    assert env.get_env_info()["episode_limit"] == 3
    env.reset()
    stop = np.full((N_ENVS, 3), STOP)
    for step in range(1, 4):
        _, r, t, info = env.step(stop)
        assert not t.any() and not info["battle_won"].any()
        assert info["episode_limit"].all() if step == 3 else not info["episode_limit"].any()
    assert env.get_stats()["timeouts"] == N_ENVS


def test_same_seed_same_episodes():
    a = make_smax_batch(N_ENVS, seed=7, map_name="3m")
    b = make_smax_batch(N_ENVS, seed=7, map_name="3m")
    c = make_smax_batch(N_ENVS, seed=8, map_name="3m")
    oa, ob, oc = a.reset(), b.reset(), c.reset()
    first = oa["obs"].copy()
    np.testing.assert_array_equal(oa["obs"], ob["obs"])
    assert not np.array_equal(oa["obs"], oc["obs"])
    assert not np.array_equal(oa["obs"][0], oa["obs"][1])  # envs of a batch differ
    ra, rb = np.random.default_rng(1), np.random.default_rng(1)
    for _ in range(25):
        oa, rew_a, ta, _ = a.step(random_actions(ra, oa["avail_actions"]))
        ob, rew_b, tb, _ = b.step(random_actions(rb, ob["avail_actions"]))
        np.testing.assert_array_equal(oa["obs"], ob["obs"])
        np.testing.assert_array_equal(rew_a, rew_b)
        np.testing.assert_array_equal(ta, tb)
    second = a.reset()["obs"]
    assert not np.array_equal(second, first)  # the next reset starts new battles ...
    np.testing.assert_array_equal(b.reset()["obs"], second)  # ... the same ones for the same seed


def test_inactive_envs_are_frozen(env3m):
    env3m.reset()
    _, pos_before, step_before = internal(env3m)
    active = np.array([True, False, True, False])
    acts = np.full((N_ENVS, 3), 1)  # walk east
    acts[1] = 7  # unavailable, but env 1 is inactive: no error
    _, r, t, info = env3m.step(acts, active)
    _, pos_after, step_after = internal(env3m)
    np.testing.assert_array_equal(step_after, step_before + active)
    np.testing.assert_array_equal(pos_after[~active], pos_before[~active])
    assert not np.array_equal(pos_after[active], pos_before[active])
    assert np.all(r[~active] == 0) and not t[~active].any()


def test_invalid_action_raises(env3m):
    env3m.reset()
    acts = np.full((N_ENVS, 3), STOP)
    acts[2, 1] = 6  # attack enemy 1: out of range at the start
    with pytest.raises(ValueError, match=r"env 2, agent 1: action 6 is not available"):
        env3m.step(acts)
    acts[2, 1] = 8
    with pytest.raises(ValueError, match=r"out of range"):
        env3m.step(acts)
    with pytest.raises(ValueError, match=r"shape"):
        env3m.step(np.zeros((N_ENVS, 2), dtype=int))


def test_looped_env_names_the_batch_env_in_action_errors():
    env = make_smax_batch(3, 0, "3m", vectorized=False)
    try:
        assert env.checks_actions and not any(e.checks_actions for e in env.envs)  # checked once, by the batch
        env.reset()
        acts = np.full((3, 3), STOP)
        acts[2, 1] = 6  # attack enemy 1: out of range at the start
        with pytest.raises(ValueError, match=r"env 2, agent 1: action 6 is not available"):
            env.step(acts)
        env.step(acts, np.array([True, True, False]))  # the bad env is inactive: no error
    finally:
        env.close()
    unchecked = make_smax_batch(2, 0, "3m", vectorized=False, check_actions=False)
    try:
        assert not unchecked.checks_actions
    finally:
        unchecked.close()


def test_check_actions_helper():
    avail = np.zeros((2, 2, 3), dtype=np.uint8)
    avail[..., 0] = 1
    avail[1, 0, 2] = 1
    out = check_actions(np.array([[0, 0], [2, 0]]), avail, None)
    assert out.dtype == np.int32
    check_actions(np.array([[0.0, 0.0], [2.0, 0.0]]), avail, None)  # integral floats are fine
    with pytest.raises(ValueError, match=r"env 0, agent 1: action 2"):
        check_actions(np.array([[0, 2], [0, 0]]), avail, None)
    check_actions(np.array([[0, 2], [0, 0]]), avail, np.array([False, True]))  # inactive env 0
    with pytest.raises(ValueError, match="integers"):
        check_actions(np.array([[0.5, 0], [0, 0]]), avail, None)


def test_map_errors_and_registry():
    with pytest.raises(ValueError, match=r"(?s)unknown SMAX map 'corridor'.*--env-config=sc2"):
        make_smax_batch(1, 0, "corridor")  # a SMAC map SMAX lacks (MMM/MMM2: tests/envs/test_smax_medivac.py)
    with pytest.raises(ValueError, match=r"unknown SMAX map 'nope'.*3m"):
        make_smax_batch(1, 0, "nope")
    with pytest.raises(ValueError, match=r"unknown smax env_args \['difficulty'\]"):
        make_smax_batch(1, 0, "3m", difficulty="7")
    names = valid_map_names()
    for name in ("3m", "8m", "2s3z", "3s_vs_5z", "27m_vs_30m", "5m_vs_6m", "8m_vs_9m", "MMM", "MMM2"):
        assert name in names
    sc = _scenario("8m_vs_9m")
    assert (sc.num_allies, sc.num_enemies, int(np.asarray(sc.unit_types).sum())) == (8, 9, 0)


def record(env, n_episodes: int, action_seed: int = 0, first_env_index: int = 0):
    """Play ``n_episodes`` resets with random actions drawn per env (env j of the seed stream
    always uses rng(action_seed, j)); return per env a list of episodes, each a list of
    (obs, state, avail, reward, terminated, time_out) per step, the reset obs first."""
    n = env.n_envs
    rngs = [np.random.default_rng([action_seed, first_env_index + j]) for j in range(n)]
    trajs = [[] for _ in range(n)]
    for _ in range(n_episodes):
        out = env.reset()
        eps = [[(out["obs"][j], out["state"][j], out["avail_actions"][j])] for j in range(n)]
        alive = np.ones(n, bool)
        while alive.any():
            acts = np.full((n, env.n_agents), STOP)
            for j in np.flatnonzero(alive):  # draw only for running envs: the draws match any batch size
                acts[j] = random_actions(rngs[j], out["avail_actions"][j:j + 1])[0]
            out, r, t, info = env.step(acts, alive)
            for j in np.flatnonzero(alive):
                eps[j].append((out["obs"][j], out["state"][j], out["avail_actions"][j], r[j], t[j],
                               info["episode_limit"][j]))
            alive &= ~(t | info["episode_limit"])
        for j in range(n):
            trajs[j].append(eps[j])
    return trajs


def assert_same_episodes(a, b) -> None:
    assert len(a) == len(b)
    for ep_a, ep_b in zip(a, b):
        assert len(ep_a) == len(ep_b)
        for step_a, step_b in zip(ep_a, ep_b):
            for x, y in zip(step_a, step_b):
                np.testing.assert_array_equal(x, y)


def test_env_i_plays_the_same_battles_in_any_batch_size(env3m, request):
    """Env i of a batch of 4 == env 0 of a batch of 1 with first_env_index=i, bit for bit,
    over two resets (the reset counter is part of the key); other seeds/indices differ."""
    batch = make_smax_batch(N_ENVS, seed=5, map_name="3m", episode_limit=30)  # shares env3m's compile
    single0 = make_smax_batch(1, seed=5, map_name="3m", episode_limit=30, jax_cache_dir=_cache(request))
    single2 = make_smax_batch(1, seed=5, map_name="3m", episode_limit=30, first_env_index=2)
    other = make_smax_batch(1, seed=6, map_name="3m", episode_limit=30)
    in_batch = record(batch, 2)
    assert_same_episodes(record(single0, 2)[0], in_batch[0])
    assert_same_episodes(record(single2, 2, first_env_index=2)[0], in_batch[2])
    assert not np.array_equal(in_batch[0][0][0][0], in_batch[2][0][0][0])   # envs of a batch differ
    assert not np.array_equal(in_batch[0][0][0][0], in_batch[0][1][0][0])   # next reset: new battles
    assert not np.array_equal(other.reset()["obs"][0], in_batch[0][0][0][0])  # another seed differs
    with pytest.raises(ValueError, match="first_env_index"):
        make_smax_batch(1, seed=5, map_name="3m", first_env_index=-1)


def record_continuous(env, n_episodes: int, action_seed: int = 0):
    """As ``record``, but with ``step_and_reset``: every env steps every time and restarts as
    soon as its episode ends, until each env finished ``n_episodes`` (later ones are dropped).
    Env j draws its actions from rng(action_seed, j), one draw per step, as in ``record``."""
    n = env.n_envs
    rngs = [np.random.default_rng([action_seed, j]) for j in range(n)]
    trajs = [[] for _ in range(n)]
    now = env.reset()
    eps = [[(now["obs"][j], now["state"][j], now["avail_actions"][j])] for j in range(n)]
    while min(len(t) for t in trajs) < n_episodes:
        acts = np.stack([random_actions(rngs[j], now["avail_actions"][j:j + 1])[0] for j in range(n)])
        out, r, t, info, now = env.step_and_reset(acts)
        for j in range(n):
            eps[j].append((out["obs"][j], out["state"][j], out["avail_actions"][j], r[j], t[j],
                           info["episode_limit"][j]))
            if t[j] or info["episode_limit"][j]:
                trajs[j].append(eps[j])
                eps[j] = [(now["obs"][j], now["state"][j], now["avail_actions"][j])]
            else:  # envs that go on act on their step's observations
                np.testing.assert_array_equal(now["obs"][j], out["obs"][j])
    return [tr[:n_episodes] for tr in trajs]


def test_step_and_reset_restarts_each_env_with_its_next_battle(env3m):
    """Env i's k-th episode is the same battle whether the envs restart together (reset) or one
    by one (step_and_reset): same obs, state, avail, rewards and flags; the ended episode's
    final observation comes in ``next``, the new episode's first in ``now``."""
    lock = make_smax_batch(N_ENVS, seed=5, map_name="3m", episode_limit=30)  # share env3m's compile
    cont = make_smax_batch(N_ENVS, seed=5, map_name="3m", episode_limit=30)
    expected, got = record(lock, 3), record_continuous(cont, 3)
    for j in range(N_ENVS):
        assert_same_episodes(expected[j], got[j])
    assert len({len(ep) for tr in got for ep in tr}) > 1  # episodes of different lengths
    assert cont.get_stats()["battles_game"] >= 3 * N_ENVS
    assert min(cont.state_dict()["n_resets"]) >= 4  # per-env counters: 1 reset() + 3 restarts at least


def test_state_dict_continues_episodes_in_flight(env3m):
    """A fresh env restored (through a weights_only save) from a mid-episode ``state_dict``
    steps exactly as the original: keys, SMAX states, avail actions, reset counters."""
    import io

    import torch
    a = make_smax_batch(N_ENVS, seed=8, map_name="3m", episode_limit=20)
    b = make_smax_batch(N_ENVS, seed=8, map_name="3m", episode_limit=20)
    rng = np.random.default_rng(0)
    now = a.reset()
    for _ in range(13):  # mid-episode in every env (and some restarted: limit 20 after the next steps)
        now = a.step_and_reset(random_actions(rng, now["avail_actions"]))[4]
    blob = io.BytesIO()
    torch.save(a.state_dict(), blob)
    blob.seek(0)
    b.load_state_dict(torch.load(blob, weights_only=True))
    for _ in range(30):
        acts = random_actions(rng, now["avail_actions"])
        out_a, out_b = a.step_and_reset(acts), b.step_and_reset(acts)
        for x, y in zip(out_a, out_b):
            if isinstance(x, dict):
                for k in x:
                    np.testing.assert_array_equal(x[k], y[k])
            else:
                np.testing.assert_array_equal(x, y)
        now = out_a[4]
    assert a.get_stats() == b.get_stats() and a.state_dict()["n_resets"] == b.state_dict()["n_resets"]
    state = a.state_dict()
    state["n_resets"] = state["n_resets"][:2]
    with pytest.raises(ValueError, match="batch_size_run"):
        b.load_state_dict(state)


def test_check_actions_refuses_inf_and_int64_that_wrap_in_int32():
    """Issue 48 item 2: ``inf == round(inf)`` passed the float check and was played as action 0, and
    an int64 ``2**32 + a`` wrapped to ``a`` in the int32 cast before the range check."""
    avail = np.ones((1, 2, 6), dtype=np.uint8)
    with pytest.raises(ValueError, match="integers"):
        check_actions(np.array([[np.inf, 0.0]]), avail, None)
    with pytest.raises(ValueError, match="integers"):
        check_actions(np.array([[-np.inf, 0.0]]), avail, None)
    with pytest.raises(ValueError, match=r"env 0, agent 0: action 4294967297 is out of range \[0, 6\)"):
        check_actions(np.array([[2 ** 32 + 1, 0]], dtype=np.int64), avail, None)
    with pytest.raises(ValueError, match=r"env 0, agent 1: action -4294967295 is out of range"):
        check_actions(np.array([[0, -(2 ** 32) + 1]], dtype=np.int64), avail, np.array([True]))
    np.testing.assert_array_equal(check_actions(np.array([[5, 1]], dtype=np.int64), avail, None), [[5, 1]])
