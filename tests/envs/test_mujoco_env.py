"""MuJoCo env factory: -v4/-v5 tasks build and are seeded; clear errors for bad keys / missing mujoco."""
import sys

import numpy as np
import pytest

from envs.mujoco import SUPPORTED_KEYS, make_mujoco_env
from utils.registry import MissingDependencyError


def rollout(env, n=20):
    obs, _ = env.reset()
    out = [obs]
    for _ in range(n):
        obs, *_ = env.step(env.action_space.sample())
        out.append(obs)
    return np.stack(out)


@pytest.mark.parametrize("key", ["Hopper-v4", "Hopper-v5", "InvertedDoublePendulum-v4"])
def test_builds_and_is_seeded(key):
    a, b = make_mujoco_env(seed=3, key=key), make_mujoco_env(seed=3, key=key)
    assert a.observation_space.shape == (11,)
    assert np.array_equal(rollout(a), rollout(b))
    assert (a.action_space.low == -a.action_space.high).all()
    c = make_mujoco_env(seed=4, key=key)
    assert not np.array_equal(rollout(make_mujoco_env(seed=3, key=key)), rollout(c))


def test_registry_entry_builds_env():
    from envs import REGISTRY
    env = REGISTRY["mujoco"](seed=0, key="InvertedPendulum-v4")
    assert env.action_space.shape == (1,) and float(env.action_space.high[0]) == 3.0


def test_unknown_key_lists_supported():
    with pytest.raises(ValueError, match="Supported: .*Hopper-v4.*Walker2d-v5"):
        make_mujoco_env(seed=0, key="Humanoid-v4")
    assert "Ant-v4" in SUPPORTED_KEYS and "HalfCheetah-v5" in SUPPORTED_KEYS


def test_missing_mujoco_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "mujoco", None)   # makes `import mujoco` raise ImportError
    with pytest.raises(MissingDependencyError, match=r'pip install "gymnasium\[mujoco\]==1.4.0"'):
        make_mujoco_env(seed=0, key="Hopper-v4")
