"""Tiny end-to-end runs of the td3_mujoco loop (InvertedPendulum-v4, small nets, few steps)."""
import logging
import os
from types import SimpleNamespace

import numpy as np
import pytest

from run.td3_mujoco import _make_env, _Tester, evaluate, run_td3_mujoco
from utils.logging import Logger


def StubLogger() -> Logger:
    """The project's Logger without sacred or tensorboard: stats kept in ``.stats``."""
    return Logger(console=logging.getLogger("td3_mujoco_smoke"))


def make_args(tmp_path, mode, **kw):
    args = dict(
        seed=0, device="cpu", env="mujoco", env_args={"key": "InvertedPendulum-v4", "max_episode_steps": 60}, gamma=0.99,
        t_max=240, start_steps=100, batch_size_transitions=32, buffer_size_transitions=10000,
        test_interval=120, test_nepisode=2, log_interval=80, save_model=True, save_model_interval=120,
        checkpoint_path="", load_step=0, evaluate=False, unique_token=f"smoke_{mode}",
        local_results_path=str(tmp_path), actor_type="ann" if mode == "ann" else "snn",
        proxy_target=mode == "proxy", actor_neuron="lif", popsan_T=5, popsan_enc_pop=10,
        popsan_dec_pop=10, popsan_hidden=[32, 32], popsan_enc_mean_range=[-1.0, 1.0],
        popsan_enc_std=0.15, mujoco_actor_hidden=[32, 32], mujoco_critic_hidden=[32, 32],
        expl_noise=0.1, target_noise=0.2, target_noise_clip=0.5, tau=0.005, actor_lr=3e-4,
        critic_lr=3e-4, policy_delay=2, proxy_lr=1e-3, proxy_steps=3, proxy_hidden=[32, 32],
        target_shift_states=16, dn_theta_u_sign=1, energy=False, torch_threads=0)
    args.update(kw)
    return SimpleNamespace(**args)


@pytest.mark.parametrize("mode", ["ann", "snn", "proxy"])
def test_train_save_evaluate(tmp_path, mode):
    logger = StubLogger()
    run_td3_mujoco(make_args(tmp_path, mode), logger)
    s = logger.stats
    assert [t for t, _ in s["test_return_mean"]] == [0, 120, 240]
    for key in ("return_mean", "critic_loss", "actor_loss", "steps_per_sec", "test_return_best",
                "test_return_last5_mean", "target_shift"):
        assert key in s, key
    means = [v for _, v in s["test_return_mean"]]
    assert [v for _, v in s["test_return_best"]] == [max(means[:i + 1]) for i in range(len(means))]
    assert s["test_return_last5_mean"][-1][1] == pytest.approx(np.mean(means[-5:]))
    assert ("proxy_loss" in s) == (mode == "proxy")
    assert ("test_firing_rate" in s) == (mode != "ann")
    model_dir = tmp_path / "models" / f"smoke_{mode}"
    assert sorted(os.listdir(model_dir)) == ["120", "240"]
    assert sorted(os.listdir(model_dir / "240")) == ["actor.pt", "config.json", "loop.pt", "manifest.json",
                                                     "replay.pt", "rng.pt", "train_state.pt"]
    assert "replay.pt" not in os.listdir(model_dir / "120")  # periodic saves skip it (save_buffer=False)

    # evaluate mode loads only the deployable actor and logs one evaluation at the loaded step
    eval_logger = StubLogger()
    run_td3_mujoco(make_args(tmp_path, mode, evaluate=True, checkpoint_path=str(model_dir)), eval_logger)
    assert [t for t, _ in eval_logger.stats["test_return_mean"]] == [240]
    assert "critic_loss" not in eval_logger.stats


def test_resume_continues_from_checkpoint(tmp_path):
    run_td3_mujoco(make_args(tmp_path, "proxy", t_max=120, save_model_interval=120), StubLogger())
    logger = StubLogger()
    run_td3_mujoco(make_args(tmp_path, "proxy", t_max=200, unique_token="resumed",
                             checkpoint_path=str(tmp_path / "models" / "smoke_proxy")), logger)
    # a true resume: the evaluation at 120 is not repeated, the next one is at t_max
    assert [t for t, _ in logger.stats["test_return_mean"]] == [200]
    assert "proxy_loss" in logger.stats      # the replay came back with the last checkpoint


def test_rejects_other_envs(tmp_path):
    with pytest.raises(ValueError, match="--env-config=mujoco"):
        run_td3_mujoco(make_args(tmp_path, "snn", env="pomdp"), StubLogger())


def test_evaluations_start_from_the_same_states_and_batch_episodes(tmp_path):
    """evaluate() resets env i with seeds[i] every time: two evaluations of the same policy give the
    same returns; the batched episodes equal one-env evaluations; other seeds give other starts."""
    args = make_args(tmp_path, "ann")
    envs = [_make_env(args, s) for s in (5, 6, 7)]
    policy = lambda obs: np.tanh(obs[:, :1] * 3.0)  # noqa: E731  deterministic, state-dependent
    r1, l1, states = evaluate(policy, envs, [5, 6, 7])
    r2, l2, _ = evaluate(policy, envs, [5, 6, 7])
    assert r1 == r2 and l1 == l2 and len(states) == sum(l1)
    single = [evaluate(policy, [envs[0]], [s])[0][0] for s in (5, 6, 7)]
    assert single == pytest.approx(r1)
    assert evaluate(policy, envs, [8, 9, 10])[0] != r1
    with pytest.raises(ValueError, match="3 envs but 2 seeds"):
        evaluate(policy, envs, [1, 2])


def test_tester_state_roundtrip_and_own_firing_rate_env(tmp_path):
    from learners.td3_mujoco import TD3MujocoLearner

    args = make_args(tmp_path, "snn", test_nepisode=2)
    learner = TD3MujocoLearner(4, 1, 3.0, args)
    tester = _Tester(args, learner, StubLogger())
    assert tester.seeds == [100, 101] and tester.rate_seed == 102 and tester.rate_env not in tester.envs
    first = tester(0)
    assert tester(10) == first              # same start states, same (untrained) actor
    state = tester.state_dict()
    other = _Tester(args, learner, StubLogger())
    other.load_state_dict(state)
    assert other.best == tester.best and other.history == [[0, first], [10, first]]
    other(20)
    assert other.logger.stats["test_return_last5_mean"][-1][1] == pytest.approx(first)
    tester.close()
    other.close()


@pytest.mark.parametrize("mode", ["snn", "ann"])
def test_evaluate_with_energy(tmp_path, mode):
    run_td3_mujoco(make_args(tmp_path, mode, t_max=120, save_model_interval=120, test_interval=120), StubLogger())
    logger = StubLogger()
    run_td3_mujoco(make_args(tmp_path, mode, evaluate=True, energy=True,
                             checkpoint_path=str(tmp_path / "models" / f"smoke_{mode}")), logger)
    s = logger.stats
    assert s["energy_kpj"][0][1] > 0
    if mode == "snn":    # spiking synapses are ACs, the encoder and readout MACs
        assert s["energy_snn_kops"][0][1] > 0 and 0 < s["energy_firing_rate"][0][1] < 1
        assert s["energy_firing_rate"][0][1] == pytest.approx(s["test_firing_rate"][0][1], abs=0.2)
    else:
        assert s["energy_snn_kops"][0][1] == 0 and s["energy_mlp_kops"][0][1] > 0


def test_check_args_holds_the_loop_keys_to_their_declared_ranges():
    from run.td3_mujoco import CHECKED_KEYS, check_args
    from utils.config import ConfigError
    good = dict(env="mujoco", actor_type="ann", proxy_target=False, t_max=10, start_steps=0,
                batch_size_transitions=4, buffer_size_transitions=10, test_interval=5, test_nepisode=1,
                log_interval=5)
    assert set(CHECKED_KEYS) <= set(good) and check_args(SimpleNamespace(**good)) == "ann"
    with pytest.raises(ConfigError, match="batch_size_transitions=0 .* allowed batch_size_transitions >= 1"):
        check_args(SimpleNamespace(**{**good, "batch_size_transitions": 0}))
