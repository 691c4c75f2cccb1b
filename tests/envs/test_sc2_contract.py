"""Contract tests of the SMAC batch adapter (src/envs/sc2.py) against a FAKE ``smac.env``.

The fake StarCraft2Env plays a tiny deterministic battle: 2 agents, 2 enemies with 2 hit
points each; action 6 + e attacks enemy e (1 damage per attacking agent), action 1 is stop.
Reward = damage dealt (+10 for the win). The episode limit is 4 steps. Like SMAC, the
time limit ends the episode as ``terminated`` and only sets info["episode_limit"] when
``continuing_episode=True``. Test hooks: ``crash_seed``/``die_seed``/``hang_seed`` make the
env with that seed raise / exit the process / hang on its first step.
"""
from __future__ import annotations

import sys
import textwrap
import time

import numpy as np
import pytest

from utils.registry import MissingDependencyError

FAKE_SMAC_ENV = textwrap.dedent('''
    import os, time
    import numpy as np

    class StarCraft2Env:
        def __init__(self, map_name="fake", seed=None, continuing_episode=False,
                     crash_seed=None, die_seed=None, hang_seed=None):
            self.map_name, self.seed_ = map_name, seed
            self.continuing_episode = continuing_episode
            self.crash_seed, self.die_seed, self.hang_seed = crash_seed, die_seed, hang_seed
            self.n_agents, self.n_enemies, self.episode_limit = 2, 2, 4
            self.n_actions = 6 + self.n_enemies
            self.won = self.games = self.timeouts = 0
            self.closed = False

        def get_env_info(self):
            return {"n_agents": 2, "n_actions": self.n_actions, "obs_shape": 4,
                    "state_shape": 3, "episode_limit": self.episode_limit}

        def reset(self):
            self.t, self.hp = 0, np.array([2.0, 2.0])
            return self.get_obs(), self.get_state()

        def get_obs(self):
            return [np.array([i, self.seed_, self.hp[0], self.hp[1]], dtype=np.float64)
                    for i in range(2)]

        def get_state(self):
            return np.array([self.t, self.hp[0], self.hp[1]])

        def get_avail_actions(self):
            av = [0, 1, 0, 0, 0, 0] + [int(h > 0) for h in self.hp]
            return [list(av) for _ in range(2)]

        def step(self, actions):
            if self.seed_ == self.crash_seed:
                raise ValueError(f"boom in env with seed {self.seed_}")
            if self.seed_ == self.die_seed:
                os._exit(3)
            if self.seed_ == self.hang_seed:
                time.sleep(60)
            self.t += 1
            before = self.hp.sum()
            for a in actions:
                assert self.get_avail_actions()[0][a] == 1, f"action {a} not available"
                if a >= 6:
                    self.hp[a - 6] = max(0.0, self.hp[a - 6] - 1)
            reward = float(before - self.hp.sum())
            info = {"battle_won": False, "dead_allies": 0,
                    "dead_enemies": int((self.hp == 0).sum())}
            terminated = False
            if (self.hp == 0).all():
                terminated, info["battle_won"] = True, True
                reward += 10.0
                self.won += 1
                self.games += 1
            elif self.t >= self.episode_limit:
                terminated = True
                if self.continuing_episode:
                    info["episode_limit"] = True
                self.games += 1
                self.timeouts += 1
            return reward, terminated, info

        def get_stats(self):
            return {"battles_won": self.won, "battles_game": self.games,
                    "timeouts": self.timeouts, "win_rate": self.won / max(self.games, 1)}

        def close(self):
            self.closed = True
''')


def _drop_smac_modules() -> None:
    for name in [m for m in sys.modules if m == "smac" or m.startswith("smac.")]:
        del sys.modules[name]


@pytest.fixture
def clean_smac():
    _drop_smac_modules()
    yield
    _drop_smac_modules()


@pytest.fixture
def fake_smac(tmp_path, monkeypatch, clean_smac):
    """Put a fake oxwhirl ``smac.env`` on sys.path (and PYTHONPATH for worker processes)
    and a fake StarCraft II folder with the map file in SC2PATH."""
    root = tmp_path / "fake_site"
    (root / "smac" / "env").mkdir(parents=True)
    (root / "smac" / "__init__.py").write_text("")
    (root / "smac" / "env" / "__init__.py").write_text(FAKE_SMAC_ENV)
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setenv("PYTHONPATH", str(root) + ":" + ":".join(p for p in sys.path if p))
    sc2 = tmp_path / "StarCraftII"
    (sc2 / "Maps" / "SMAC_Maps").mkdir(parents=True)
    (sc2 / "Maps" / "SMAC_Maps" / "fake.SC2Map").write_text("")
    monkeypatch.setenv("SC2PATH", str(sc2))
    return root


def _make(n_envs, seed=10, **kw):
    from envs.sc2 import make_sc2_batch
    kw.setdefault("map_name", "fake")
    return make_sc2_batch(n_envs=n_envs, seed=seed, **kw)


ATTACK0, ATTACK1, STOP = 6, 7, 1


def test_single_env_shapes_reward_and_win(fake_smac):
    env = _make(1, seed=10)
    try:
        info = env.get_env_info()
        assert info == {"n_agents": 2, "n_actions": 8, "obs_shape": 4, "state_shape": 3,
                        "episode_limit": 4, "n_enemies": 2}
        out = env.reset()
        assert out["obs"].shape == (1, 2, 4) and out["obs"].dtype == np.float32
        assert out["state"].shape == (1, 3) and out["state"].dtype == np.float32
        assert out["avail_actions"].shape == (1, 2, 8) and out["avail_actions"].dtype == np.uint8
        assert out["avail_actions"][0, 0].tolist() == [0, 1, 0, 0, 0, 0, 1, 1]
        assert out["obs"][0, :, 1].tolist() == [10.0, 10.0]  # env 0 seeded with `seed`

        # both agents attack enemy 0: 2 damage, enemy 0 dead -> not available any more
        out, r, term, inf = env.step(np.array([[ATTACK0, ATTACK0]]), np.array([True]))
        assert r.dtype == np.float32 and r.tolist() == [2.0]
        assert term.tolist() == [False] and inf["battle_won"].tolist() == [False]
        assert out["avail_actions"][0, 1].tolist() == [0, 1, 0, 0, 0, 0, 0, 1]
        assert out["state"][0].tolist() == [1.0, 0.0, 2.0]
        with pytest.raises(ValueError, match="env 0, agent 1: action 6 is not available"):
            env.step(np.array([[ATTACK1, ATTACK0]]), np.array([True]))

        out, r, term, inf = env.step(np.array([[ATTACK1, ATTACK1]]), np.array([True]))
        assert r.tolist() == [12.0]  # 2 damage + 10 win bonus
        assert term.dtype == bool and term.tolist() == [True]
        assert inf["battle_won"].tolist() == [True] and inf["episode_limit"].tolist() == [False]
        stats = env.get_stats()
        assert stats["battles_won"] == 1 and stats["win_rate"] == 1.0
    finally:
        env.close()


@pytest.mark.parametrize("continuing", [False, True])
def test_time_limit_is_not_terminal(fake_smac, continuing):
    env = _make(1, continuing_episode=continuing)
    try:
        env.reset()
        for t in range(4):
            out, r, term, inf = env.step(np.full((1, 2), STOP), np.array([True]))
            assert r.tolist() == [0.0]
            if t < 3:
                assert not term[0] and not inf["episode_limit"][0]
        assert term.tolist() == [False], "a time-out must not be reported as terminal"
        assert inf["episode_limit"].tolist() == [True]
        assert inf["battle_won"].tolist() == [False]
        assert env.get_stats()["timeouts"] == 1
    finally:
        env.close()


def test_workers_batch_and_inactive_envs(fake_smac):
    env = _make(3, seed=20)
    try:
        out = env.reset()
        assert out["obs"].shape == (3, 2, 4)
        assert out["obs"][:, 0, 1].tolist() == [20.0, 21.0, 22.0]  # env i seeded seed + i
        actions = np.array([[ATTACK0, ATTACK1], [STOP, STOP], [ATTACK0, ATTACK0]])
        active = np.array([True, False, True])
        out, r, term, inf = env.step(actions, active)
        assert r.tolist() == [2.0, 0.0, 2.0]
        assert out["state"][0].tolist() == [1.0, 1.0, 1.0]
        assert out["state"][2].tolist() == [1.0, 0.0, 2.0]
        # inactive env: not stepped, all zeros
        assert not out["obs"][1].any() and not out["state"][1].any() and not out["avail_actions"][1].any()
        assert not term[1] and not inf["battle_won"][1] and not inf["episode_limit"][1]
        # env 1 was not stepped: its first real step sees t == 1
        out, r, term, inf = env.step(actions, np.array([False, True, False]))
        assert out["state"][1].tolist() == [1.0, 2.0, 2.0] and r.tolist() == [0.0, 0.0, 0.0]
        with pytest.raises(ValueError, match="shape"):
            env.step(np.zeros((2, 2), int), active)
    finally:
        env.close()


@pytest.mark.parametrize("hook,expect", [("crash_seed", "boom in env with seed 31"),
                                         ("die_seed", "died")])
def test_worker_failure_raises_quickly(fake_smac, hook, expect):
    env = _make(2, seed=30, **{hook: 31})
    env.reset()
    start = time.monotonic()
    with pytest.raises(RuntimeError) as err:
        env.step(np.full((2, 2), STOP), np.array([True, True]))
    assert time.monotonic() - start < 10
    msg = str(err.value)
    assert "worker 1" in msg and expect in msg
    with pytest.raises(RuntimeError, match="closed"):
        env.reset()
    env.close()  # idempotent


def test_hung_worker_times_out(fake_smac):
    env = _make(2, seed=40, hang_seed=40, worker_timeout=60.0)  # start-up may be slow on a loaded machine
    env.reset()
    for slot in env._slots:
        slot.timeout = 1.5  # only the hanging step is timed
    start = time.monotonic()
    with pytest.raises(RuntimeError, match="worker 0 .*did not answer"):
        env.step(np.full((2, 2), STOP), np.array([True, True]))
    assert time.monotonic() - start < 15


def test_bad_env_arg_in_worker_names_env(fake_smac):
    with pytest.raises(RuntimeError, match=r"(?s)worker 0 raised.*no_such_option"):
        _make(2, no_such_option=1)


def test_missing_smac_gives_install_hint(monkeypatch, clean_smac):
    monkeypatch.setitem(sys.modules, "smac", None)  # import smac -> ImportError
    with pytest.raises(MissingDependencyError) as err:
        _make(1)
    msg = str(err.value)
    assert "install_sc2.sh" in msg and "docker/build.sh" in msg and "run.sh" in msg
    assert "AutoML" in msg


def test_pypi_automl_smac_is_detected(tmp_path, monkeypatch, clean_smac):
    root = tmp_path / "automl"
    (root / "smac").mkdir(parents=True)
    (root / "smac" / "__init__.py").write_text("version = '2.0'\n")
    monkeypatch.syspath_prepend(str(root))
    with pytest.raises(MissingDependencyError, match="no 'smac.env' module.*AutoML"):
        _make(1)


def test_missing_game_or_map(fake_smac, tmp_path, monkeypatch):
    with pytest.raises(MissingDependencyError, match="SMAC map 'nomap' not found"):
        _make(1, map_name="nomap")
    monkeypatch.setenv("SC2PATH", str(tmp_path / "nowhere"))
    with pytest.raises(MissingDependencyError, match="StarCraft II not found"):
        _make(1)


def test_registry_entry_builds_sc2(fake_smac):
    from envs import REGISTRY
    env = REGISTRY["sc2"](n_envs=1, seed=0, map_name="fake")
    try:
        assert env.n_envs == 1 and env.reset()["obs"].shape == (1, 2, 4)
    finally:
        env.close()
