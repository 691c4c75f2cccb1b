"""End-to-end po_rl loop on tiny budgets: train, log, checkpoint, evaluate from the checkpoint."""
import os
from types import SimpleNamespace

import pytest
import torch

from run.po_rl import run_po_rl
from utils.logging import Logger


def po_args(tmp_path, **kw) -> SimpleNamespace:
    d = dict(seed=1, device="cpu", env="pomdp", env_args={"key": "Pendulum-P", "max_episode_steps": 50},
             agent="gru", po_learner="td3", gamma=0.9, tau=0.005, actor_lr=3e-4, critic_lr=3e-4,
             expl_noise=0.1, target_noise=0.2, target_noise_clip=0.5, policy_delay=2,
             alpha_lr=3e-4, alpha_init=0.1, target_entropy_ratio=0.7,
             t_max=200, test_interval=100, test_nepisode=2, log_interval=100, runner_log_interval=100,
             learner_log_interval=100, save_model=True, save_model_interval=100, checkpoint_path="",
             load_step=0, evaluate=False, unique_token="smoke", local_results_path=str(tmp_path),
             energy=False, sampled_seq_len=16, po_batch_size=4, po_buffer_episodes=20,
             po_init_random_episodes=1, po_updates_per_step=0.1, po_obs_embed=8, po_action_embed=4,
             po_reward_embed=4, po_hidden_dim=16, po_head_layers=[16, 16], tap=True, snn_T=4,
             snn_threshold=None, snn_beta_init=None, snn_beta_learnable=None, surrogate_alpha=None,
             snn_reset=None)
    d.update(kw)
    return SimpleNamespace(**d)


def _series(logger, key):
    return [t for t, _ in logger.stats[key]]


@pytest.mark.parametrize("agent,key,learner", [("grsn", "Pendulum-P", "td3"), ("gru", "CartPole-V", "sacd")])
def test_train_then_evaluate_checkpoint(tmp_path, agent, key, learner):
    torch.manual_seed(0)
    args = po_args(tmp_path, agent=agent, po_learner=learner,
                   env_args={"key": key, "max_episode_steps": 50},
                   gamma=0.99 if learner == "sacd" else 0.9)
    logger = Logger()
    run_po_rl(args, logger)
    # tests at t=0, every 100 steps and at the end; train stats and learner stats logged
    tests = _series(logger, "test_return_mean")
    assert tests[0] == 0 and tests[-1] >= 200 and len(tests) >= 3
    for k in ("return_mean", "ep_length_mean", "critic_loss", "actor_loss", "q_taken_mean",
              "test_ep_length_mean", "episode"):
        assert logger.stats[k], f"{k} was not logged"
    if learner == "sacd":
        assert logger.stats["alpha"] and logger.stats["entropy"]
    lengths = [v for _, v in logger.stats["test_ep_length_mean"]]
    assert all(1 <= v <= 50 for v in lengths)
    model_dir = os.path.join(str(tmp_path), "models", "smoke")
    steps = sorted(int(d) for d in os.listdir(model_dir))
    assert steps[-1] >= 200 and len(steps) >= 2
    assert os.path.exists(os.path.join(model_dir, str(steps[-1]), "actor.pt"))

    eval_args = po_args(tmp_path, agent=agent, po_learner=learner, evaluate=True,
                        checkpoint_path=model_dir, test_nepisode=3,
                        env_args={"key": key, "max_episode_steps": 50})
    eval_logger = Logger()
    run_po_rl(eval_args, eval_logger)
    assert _series(eval_logger, "test_return_mean") == [steps[-1]]
    assert "critic_loss" not in eval_logger.stats


def test_evaluate_without_checkpoint_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="checkpoint_path"):
        run_po_rl(po_args(tmp_path, evaluate=True), Logger())


def test_wrong_learner_for_action_space_is_an_error(tmp_path):
    args = po_args(tmp_path, env_args={"key": "CartPole-P"}, po_learner="td3")
    with pytest.raises(ValueError, match="sacd"):
        run_po_rl(args, Logger())


def test_unknown_core_lists_valid_names(tmp_path):
    with pytest.raises(KeyError, match="grsn"):
        run_po_rl(po_args(tmp_path, agent="rnn"), Logger())


def test_resume_continues_from_the_checkpoint_step(tmp_path):
    torch.manual_seed(0)
    run_po_rl(po_args(tmp_path, t_max=150), Logger())
    model_dir = os.path.join(str(tmp_path), "models", "smoke")
    first = max(int(d) for d in os.listdir(model_dir))
    logger = Logger()
    run_po_rl(po_args(tmp_path, t_max=first + 100, checkpoint_path=model_dir), logger)
    tests = _series(logger, "test_return_mean")
    assert tests[0] > first and tests[-1] >= first + 100  # a true resume: no repeated test at `first`
    assert max(int(d) for d in os.listdir(model_dir)) >= first + 100


def test_spiking_core_without_tap_runs(tmp_path):
    torch.manual_seed(0)
    logger = Logger()
    run_po_rl(po_args(tmp_path, agent="lif", tap=False, snn_T=3, t_max=120, save_model=False), logger)
    assert logger.stats["critic_loss"] and logger.stats["test_return_mean"]


def test_whole_episode_training_runs(tmp_path):
    torch.manual_seed(0)
    logger = Logger()
    run_po_rl(po_args(tmp_path, agent="grsn", sampled_seq_len=-1, t_max=120, save_model=False), logger)
    assert logger.stats["critic_loss"] and logger.stats["test_return_mean"]


@pytest.mark.parametrize("seq_len", [0, -3])
def test_a_bad_window_length_names_the_key_and_its_declared_range(tmp_path, seq_len):
    with pytest.raises(ValueError, match=rf"sampled_seq_len={seq_len} .* allowed sampled_seq_len = -1 or "
                                         r"sampled_seq_len >= 1 \(declared in config/default.yaml\)"):
        run_po_rl(po_args(tmp_path, sampled_seq_len=seq_len), Logger())


def test_prev_action_input_is_one_hot_for_discrete_and_the_action_for_continuous():
    from run.po_rl import prev_action_input
    assert prev_action_input(2, 3, discrete=True).tolist() == [[0.0, 0.0, 1.0]]
    assert prev_action_input([0.5, -0.25], 2, discrete=False).tolist() == [[0.5, -0.25]]
