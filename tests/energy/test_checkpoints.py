"""table_from_checkpoints on two tiny trained PO runs (gru and grsn, real configs and checkpoints)."""
import glob
import os

import pytest

from energy.checkpoints import aggregate, table_from_checkpoints

pytestmark = pytest.mark.slow   # trains four tiny runs (about 10 s on one core)

TINY = ["t_max=150", "test_interval=1000", "test_nepisode=1", "log_interval=1000", "save_model=True",
        "save_model_interval=1000", "po_obs_embed=8", "po_action_embed=4", "po_reward_embed=4", "po_hidden_dim=16",
        "po_head_layers=[16, 16]", "sampled_seq_len=16", "po_batch_size=4", "po_init_random_episodes=1",
        "env_args.max_episode_steps=50", "device=cpu", "torch_threads=1"]


def train(tmp_path, agent, seed):
    from main import args_from_config, finalize_config
    from run.po_rl import run_po_rl
    from utils.config import build_config
    from utils.logging import Logger

    over = TINY + [f"agent={agent}", f"seed={seed}", f"local_results_path={tmp_path}", "env_args.key=Pendulum-P"]
    args = args_from_config(finalize_config(build_config("td3", "pomdp", over)))
    run_po_rl(args, Logger())
    return os.path.join(str(tmp_path), "models", args.unique_token)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("energy_ckpt")
    return [train(root, agent, seed) for agent in ("gru", "grsn") for seed in (1, 2)]


def test_rows_per_checkpoint_and_network(runs):
    out = table_from_checkpoints(runs, decisions=60)
    rows = out["rows"]
    assert len(rows) == 2 * len(runs) and out["convention"] == "ours"
    assert {(r["agent"], r["seed"], r["network"]) for r in rows} == {
        (a, s, n) for a in ("gru", "grsn") for s in (1, 2) for n in ("actor + critic", "actor")}
    for r in rows:
        assert r["env"] == "Pendulum-P" and r["run"] == "po_rl" and r["decisions"] >= 60 and r["t_env"] > 0
        assert r["energy_mem_kpj"] > r["energy_kpj"] > 0 and r["mixer_k"] is None
        assert os.path.isdir(r["step_dir"]) and r["step_dir"].startswith(r["checkpoint"])
    gru = next(r for r in rows if r["agent"] == "gru" and r["network"] == "actor")
    assert gru["snn_k"] == 0 and gru["rnn_k"] > 0 and gru["firing_rate"] == 0
    # break-even per seed, network: compute-only and every memory model
    assert {(b["seed"], b["network"]) for b in out["break_even"]} == {(s, n) for s in (1, 2)
                                                                      for n in ("actor + critic", "actor")}
    assert set(out["break_even"][0]["break_even"]) == {"compute_only", "sram_8kb_45nm", "sram_1mb_45nm",
                                                       "spikingjelly_simple"}


def test_aggregate_gives_mean_and_spread_over_seeds(runs):
    rows = table_from_checkpoints(runs[2:], decisions=60, convention="paper")["rows"]   # the two grsn seeds
    agg = aggregate(rows)
    assert [(a["agent"], a["network"], a["convention"], a["seeds"]) for a in agg] == [
        ("grsn", "actor + critic", "paper", [1, 2]), ("grsn", "actor", "paper", [1, 2])]
    vals = [r["energy_kpj"] for r in rows if r["network"] == "actor"]
    assert agg[1]["energy_kpj_mean"] == pytest.approx(sum(vals) / 2)
    assert agg[1]["energy_kpj_std"] == pytest.approx(abs(vals[0] - vals[1]) / 2)


def test_bad_input_is_one_clear_error(tmp_path, runs):
    with pytest.raises(TypeError, match="list of checkpoint folders"):
        table_from_checkpoints(runs[0])
    with pytest.raises(ValueError, match="energy_convention must be one of"):
        table_from_checkpoints(runs, convention="theirs")
    step = sorted(glob.glob(os.path.join(runs[0], "*")))[0]
    bare = tmp_path / "bare" / "100"
    bare.mkdir(parents=True)
    for f in os.listdir(step):
        if f != "config.json":
            os.link(os.path.join(step, f), bare / f)
    with pytest.raises(FileNotFoundError, match="no usable config.json"):
        table_from_checkpoints([str(bare)])
