"""pomdp env: observation masks per key, time-out = truncation, action rescaling, bad input."""
import numpy as np
import pytest

from envs import REGISTRY as ENV_REGISTRY
from envs.pomdp import VALID_KEYS, make_pomdp_env, observation_indices
from utils.registry import RegistryError

EXPECTED = {
    "Pendulum-F": [0, 1, 2], "Pendulum-P": [0, 1], "Pendulum-V": [2],      # [cos, sin, thdot]
    "CartPole-F": [0, 1, 2, 3], "CartPole-P": [0, 2], "CartPole-V": [1, 3],  # [x, xdot, th, thdot]
}


def test_valid_keys():
    assert sorted(VALID_KEYS) == sorted(EXPECTED)


@pytest.mark.parametrize("key", sorted(k for k in EXPECTED if not k.endswith("-F")))
def test_masked_obs_equals_full_obs_subset(key):
    task = key.split("-")[0]
    full = make_pomdp_env(seed=7, key=f"{task}-F")
    part = make_pomdp_env(seed=7, key=key)
    assert part.obs_dim == len(EXPECTED[key])
    assert part.observation_space.shape == (len(EXPECTED[key]),)
    of, _ = full.reset()
    op, _ = part.reset()
    np.testing.assert_array_equal(op, of[EXPECTED[key]])
    rng = np.random.default_rng(0)
    for _ in range(15):
        a = int(rng.integers(2)) if full.discrete else rng.uniform(-1, 1, size=1).astype(np.float32)
        of, rf, tf, trf, _ = full.step(a)
        op, rp, tp, trp, _ = part.step(a)
        np.testing.assert_array_equal(op, of[EXPECTED[key]])
        assert op.dtype == np.float32
        assert (rf, tf, trf) == (rp, tp, trp)
        if tf or trf:
            break


def test_observation_indices_match_design():
    for key, idx in EXPECTED.items():
        got = observation_indices(key)
        assert got == (None if key.endswith("-F") else idx)


def test_timeout_is_truncation_not_termination():
    env = make_pomdp_env(seed=0, key="Pendulum-V")
    env.reset()
    for t in range(200):
        _, _, terminated, truncated, _ = env.step(np.zeros(1, dtype=np.float32))
        assert not terminated
        assert truncated == (t == 199)
    short = make_pomdp_env(seed=0, key="CartPole-P", max_episode_steps=3)
    short.reset()
    flags = [short.step(t % 2)[2:4] for t in range(3)]
    assert flags[-1] == (False, True) and flags[0] == (False, False)


def test_cartpole_fall_is_termination():
    env = make_pomdp_env(seed=0, key="CartPole-V")
    env.reset()
    for t in range(200):
        _, r, terminated, truncated, _ = env.step(1)  # always push right: falls quickly
        assert r == 1.0
        if terminated:
            break
    assert terminated and not truncated and t < 100


def test_pendulum_action_rescaled_from_unit_box():
    env = make_pomdp_env(seed=0, key="Pendulum-P")
    assert env.action_space.low.tolist() == [-1.0] and env.action_space.high.tolist() == [1.0]
    for a, torque in [(-1.0, -2.0), (0.0, 0.0), (0.5, 1.0), (1.0, 2.0), (3.0, 2.0)]:
        np.testing.assert_allclose(env.rescale_action(np.array([a])), [torque])
    # the torque really reaches the dynamics: +1 and -1 give different next states
    e1, e2 = make_pomdp_env(seed=3, key="Pendulum-F"), make_pomdp_env(seed=3, key="Pendulum-F")
    e1.reset(), e2.reset()
    o1 = e1.step(np.array([1.0], dtype=np.float32))[0]
    o2 = e2.step(np.array([-1.0], dtype=np.float32))[0]
    assert o1[2] - o2[2] > 0.1


def test_cartpole_is_discrete_two_actions():
    env = make_pomdp_env(seed=0, key="CartPole-F")
    assert env.discrete and env.act_dim == 2
    env.reset()
    with pytest.raises(ValueError, match="out of range"):
        env.step(2)


def test_seed_makes_resets_reproducible():
    a, b = make_pomdp_env(seed=11, key="Pendulum-F"), make_pomdp_env(seed=11, key="Pendulum-F")
    for _ in range(3):
        np.testing.assert_array_equal(a.reset()[0], b.reset()[0])
    c = make_pomdp_env(seed=12, key="Pendulum-F")
    assert not np.array_equal(make_pomdp_env(seed=11, key="Pendulum-F").reset()[0], c.reset()[0])


def test_unknown_key_lists_valid_keys():
    with pytest.raises(RegistryError) as err:
        make_pomdp_env(seed=0, key="Pendulum-X")
    for k in EXPECTED:
        assert k in str(err.value)
    with pytest.raises(RegistryError):
        make_pomdp_env(seed=0, key="Acrobot-P")


def test_unknown_env_arg_is_an_error():
    with pytest.raises(TypeError, match="map_name"):
        make_pomdp_env(seed=0, key="Pendulum-P", map_name="3m")


def test_registry_entry_builds_it():
    env = ENV_REGISTRY["pomdp"](seed=0, key="CartPole-V")
    assert env.obs_dim == 2
