"""Damaged and hostile checkpoint files in a real run's model folder: a damaged newest step is
skipped with a warning and the run resumes from the step before it; a file the manifest does not
list is never loaded; a pickle that would run code, in any part, runs nothing and is one error
line naming the file."""
import json
import os
import pickle
import shutil
from types import SimpleNamespace

import pytest

from run.po_rl import run_po_rl
from utils.checkpoint import CheckpointError, find_checkpoint, listed_parts
from utils.config import build_config
from utils.logging import Logger
from utils.seeding import set_seed


class Console:
    def __init__(self):
        self.lines = []

    def info(self, msg):
        self.lines.append(msg)

    warning = error = info


def po_args(root, token, **kw):
    cfg = build_config("sacd", "pomdp", ["env_args.key=CartPole-V", "env_args.max_episode_steps=20", "t_max=130",
                                         "test_interval=40", "test_nepisode=1", "log_interval=40",
                                         "runner_log_interval=40", "learner_log_interval=40",
                                         "po_init_random_episodes=1", "po_batch_size=2", "sampled_seq_len=8",
                                         "po_updates_per_step=0.1", "po_hidden_dim=8", "po_obs_embed=8",
                                         "po_head_layers=[8]", "save_model_interval=40", "device=cpu"])
    cfg.update(local_results_path=str(root), unique_token=token, **kw)
    return SimpleNamespace(**cfg)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A run's model folder with periodic steps (no replay) and a last step (with the replay)."""
    root = tmp_path_factory.mktemp("trained")
    set_seed(1)
    run_po_rl(po_args(root, "run"), Logger(console=Console()))
    model = root / "models" / "run"
    steps = sorted(int(d) for d in os.listdir(model) if d.isdigit())
    assert len(steps) >= 3 and "replay" in listed_parts(str(model / str(steps[-1])))
    return model, steps


def resume(root, checkpoint_path, **kw):
    console = Console()
    set_seed(1)
    run_po_rl(po_args(root, "resumed", checkpoint_path=str(checkpoint_path), **kw), Logger(console=console))
    return console.lines


def _copy(trained, tmp_path):
    model, steps = trained
    copy = tmp_path / "copy"
    shutil.copytree(model, copy)
    return copy, steps


def _set_manifest(step_dir, manifest):
    (step_dir / "manifest.json").write_text(json.dumps(manifest))


DAMAGE = {
    "parts {}": lambda d, m: _set_manifest(d, dict(m, parts={})),
    "manifest []": lambda d, m: _set_manifest(d, []),
    "no bytes": lambda d, m: _set_manifest(d, dict(m, parts={k: {"file": v["file"]} for k, v in m["parts"].items()})),
    "file outside": lambda d, m: _set_manifest(d, dict(m, parts=dict(m["parts"], loop={"file": "../40/loop.pt",
                                                                                       "bytes": 1}))),
    "truncated part": lambda d, m: open(d / "critic.pt", "r+b").truncate(100),
    "not json": lambda d, m: (d / "manifest.json").write_text("{\"format\": 1, \"parts\": "),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_newest_step_is_skipped_and_the_run_resumes_from_the_one_before(trained, tmp_path, damage):
    copy, steps = _copy(trained, tmp_path)
    newest = copy / str(steps[-1])
    DAMAGE[damage](newest, json.loads((newest / "manifest.json").read_text()))
    lines = resume(tmp_path, copy, t_max=200)
    skipped = [line for line in lines if line.startswith("skipping incomplete checkpoint")]
    assert len(skipped) == 1 and str(newest) in skipped[0]
    assert any(line.startswith(f"resumed at t_env {steps[-2]},") for line in lines)
    # the periodic step before it holds no replay: said, not silently trained on an empty one
    assert any("holds no replay" in line for line in lines)


def test_a_replay_file_the_manifest_does_not_list_is_not_loaded(trained, tmp_path):
    """A periodic step (no replay) with the last step's replay.pt copied in resumes without a replay,
    and says so; the foreign file would have been loaded before issue 48."""
    copy, steps = _copy(trained, tmp_path)
    shutil.copy(copy / str(steps[-1]) / "replay.pt", copy / str(steps[-2]) / "replay.pt")
    lines = resume(tmp_path, copy / str(steps[-2]), t_max=200)
    assert any(line.startswith(f"resumed at t_env {steps[-2]}, episode") and line.endswith(
        "0 episodes in the replay") for line in lines)
    assert any("holds no replay" in line for line in lines)


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_a_hostile_pickle_in_any_part_runs_nothing_and_is_one_line(trained, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model, steps = trained
    last = str(steps[-1])
    parts = listed_parts(str(model / last))
    assert {"actor", "critic", "loop", "rng", "replay", "learner", "actor_opt"} <= set(parts)
    for name, file in sorted(parts.items()):
        copy = tmp_path / f"copy_{name}"
        shutil.copytree(model, copy)
        path = copy / last / file
        with open(path, "wb") as f:
            pickle.dump({"state": _Evil()}, f, protocol=2)
        manifest = json.loads((copy / last / "manifest.json").read_text())
        manifest["parts"][name]["bytes"] = os.path.getsize(path)   # "complete": only the content is hostile
        (copy / last / "manifest.json").write_text(json.dumps(manifest))
        assert find_checkpoint(str(copy))[0] == str(copy / last)
        with pytest.raises(CheckpointError) as info:
            resume(tmp_path, copy, t_max=200)
        assert str(path) in str(info.value) and "\n" not in str(info.value), name
        assert not (tmp_path / "PWNED").exists(), name
