"""benchmarks/proxy_loop_speed.py on a tiny MuJoCo run: both loops really train, ratios are consistent."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks"))
import proxy_loop_speed as pls  # noqa: E402
pytest.importorskip("mujoco")

SMALL = {"mujoco_actor_hidden": [8, 8], "mujoco_critic_hidden": [8, 8], "popsan_hidden": [8, 8],
         "proxy_hidden": [8, 8], "batch_size_transitions": 4}


def test_loop_steps_train_once_per_env_step_with_k_fresh_proxy_batches():
    loop = pls.Loop("td3_proxy", "InvertedPendulum-v4", seed=1, capacity=64, extra=SMALL)
    loop.random_steps(10)
    assert len(loop.replay) == 10 and loop.learner.n_updates == 0
    batch, proxy_obs = loop.sample()
    assert batch["obs"].shape == (4, loop.obs_dim) and proxy_obs.shape == (3, 4, loop.obs_dim)
    loop.train_steps(5)
    assert len(loop.replay) == 15 and loop.learner.n_updates == 5


def test_run_interleaves_both_loops_and_forms_consistent_ratios():
    res = pls.run("InvertedPendulum-v4", seed=1, start_steps=8, rounds=2, block=3, extra=SMALL, split_reps=1)
    assert set(res["loops"]) == {"td3", "td3_proxy"}
    assert res["loops"]["td3_proxy"]["mode"] == "proxy" and res["loops"]["td3"]["mode"] == "ann"
    assert len(res["ratio_all"]) == 2
    a, p = res["loops"]["td3"], res["loops"]["td3_proxy"]
    assert len(a["env_steps_per_cpu_s_all"]) == len(p["env_steps_per_cpu_s_all"]) == 2
    want = sorted(x / y for x, y in zip(p["env_steps_per_cpu_s_all"], a["env_steps_per_cpu_s_all"]))
    assert res["ratio_proxy_over_ann"] == pytest.approx(sum(want) / 2)          # median of two rounds
    assert res["flop_bound_ratio"] == pytest.approx(1 / res["flop_ratio_proxy_over_ann"])
    assert p["train_step_matmul_flops"] > a["train_step_matmul_flops"] > 0
    assert set(res["proxy_split_ms"]) == {"critic", "actor", "proxy_fit"}
