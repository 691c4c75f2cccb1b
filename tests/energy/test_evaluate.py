"""The run loops' energy entry end to end: po_rl with evaluate=True energy=True on a tiny network."""
from types import SimpleNamespace

import pytest
import torch

from energy.counting import linear_macs
from run.po_rl import run_po_rl
from utils.logging import Logger


def po_args(tmp_path, **kw) -> SimpleNamespace:
    d = dict(seed=1, device="cpu", env="pomdp", env_args={"key": "Pendulum-P", "max_episode_steps": 50},
             agent="grsn", po_learner="td3", gamma=0.9, tau=0.005, actor_lr=3e-4, critic_lr=3e-4,
             expl_noise=0.1, target_noise=0.2, target_noise_clip=0.5, policy_delay=2,
             alpha_lr=3e-4, alpha_init=0.1, target_entropy_ratio=0.7,
             t_max=200, test_interval=100, test_nepisode=2, log_interval=100, runner_log_interval=100,
             learner_log_interval=100, save_model=False, save_model_interval=100, checkpoint_path="",
             load_step=0, evaluate=True, unique_token="energy", local_results_path=str(tmp_path),
             energy=True, sampled_seq_len=16, po_batch_size=4, po_buffer_episodes=20,
             po_init_random_episodes=1, po_updates_per_step=0.1, po_obs_embed=8, po_action_embed=4,
             po_reward_embed=4, po_hidden_dim=16, po_head_layers=[16, 16], tap=True, snn_T=4,
             snn_threshold=None, snn_beta_init=None, snn_beta_learnable=None, surrogate_alpha=None,
             snn_reset=None, po_shortcut=False)
    d.update(kw)
    return SimpleNamespace(**d)


@pytest.mark.parametrize("convention", ["ours", "paper"])
def test_po_rl_evaluate_energy_logs_compute_and_memory_energy(tmp_path, convention):
    torch.manual_seed(0)
    logger = Logger()
    run_po_rl(po_args(tmp_path, energy_convention=convention), logger)
    stats = {k: v[-1][1] for k, v in logger.stats.items() if k.startswith("energy_")}
    # actor: embeddings (2 -> 8, 1 -> 4, 1 -> 4), GRSN gates 16 -> 2 x 16, head 16 -> 16 -> 16 -> 1
    embeds = linear_macs(2, 8) + linear_macs(1, 4) + linear_macs(1, 4)
    gates = linear_macs(16, 32, bias=convention == "ours")
    rest = linear_macs(16, 16) + linear_macs(16, 1)
    # head.0 reads only spikes: AC (its bias a constant current) in ours, a dense layer in the paper's
    head0 = linear_macs(16, 16) if convention == "paper" else 0
    assert stats["energy_mlp_kops"] * 1e3 == pytest.approx(embeds + gates + rest + head0)
    assert stats["energy_mem_kpj"] > stats["energy_kpj"] > 0


def test_po_rl_evaluate_energy_rejects_a_bad_convention_before_playing(tmp_path):
    with pytest.raises(ValueError, match="energy_convention must be one of ours | paper"):
        run_po_rl(po_args(tmp_path, energy_convention="Paper"), Logger())
