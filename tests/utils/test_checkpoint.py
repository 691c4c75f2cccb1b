import json
import os
import pickle
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
import torch

from utils.checkpoint import (CheckpointError, Checkpointer, DivergedError, StopRequest, config_hash,
                              find_checkpoint, incomplete_reason, load_checkpoint, load_part, loop_part,
                              restore_buffer, restore_loop, resume_config, save_checkpoint)

class Log:
    """A console stand-in that keeps every line."""

    def __init__(self):
        self.lines = []

    def info(self, m):
        self.lines.append(m)

    warning = error = info


SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "src")


def test_save_find_load_round_trip(tmp_path):
    net = torch.nn.Linear(3, 2)
    for t in (100, 250, 400):
        save_checkpoint(str(tmp_path), t, {"agent": net, "loop": {"episode": t // 10, "xs": [1.5, 2.5]}},
                        config={"lr": 0.1, "agent": "grsn"})
    assert find_checkpoint(str(tmp_path)) == (os.path.join(str(tmp_path), "400"), 400)
    assert find_checkpoint(str(tmp_path), load_step=230)[1] == 250
    assert find_checkpoint(os.path.join(str(tmp_path), "100"))[1] == 100
    step = os.path.join(str(tmp_path), "400")
    manifest = json.load(open(os.path.join(step, "manifest.json")))
    assert manifest["t_env"] == 400 and sorted(manifest["parts"]) == ["agent", "loop"]
    assert manifest["parts"]["agent"]["bytes"] == os.path.getsize(os.path.join(step, "agent.pt"))
    assert manifest["config_hash"] == config_hash({"lr": 0.1, "agent": "grsn"})
    assert json.load(open(os.path.join(step, "config.json"))) == {"lr": 0.1, "agent": "grsn"}
    assert load_part(os.path.join(step, "loop.pt")) == {"episode": 40, "xs": [1.5, 2.5]}
    other = torch.nn.Linear(3, 2)
    load_checkpoint(step, {"agent": other, "opt": object()}, required=("agent",))
    assert torch.equal(other.weight, net.weight)
    with pytest.raises(CheckpointError, match="critic.pt"):
        load_checkpoint(step, {"critic": other}, required=("critic",))
    assert not [d for d in os.listdir(str(tmp_path)) if d.startswith(".")]  # no temporary folders left


def test_find_checkpoint_errors_name_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        find_checkpoint(str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="save_model=True"):
        find_checkpoint(str(tmp_path))


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_a_pickled_command_is_not_run_and_the_error_names_the_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    save_checkpoint(str(tmp_path / "m"), 10, {"agent": torch.nn.Linear(2, 2)})
    path = tmp_path / "m" / "10" / "agent.pt"
    with open(path, "wb") as f:
        pickle.dump({"weight": _Evil()}, f, protocol=2)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(str(tmp_path / "m" / "10"), {"agent": torch.nn.Linear(2, 2)})
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 truncated"])
def test_a_damaged_file_is_one_line_naming_it(tmp_path, content):
    path = tmp_path / "agent.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="cannot load checkpoint file .*agent.pt") as info:
        load_part(str(path))
    assert "\n" not in str(info.value)


def test_a_state_of_other_sizes_is_one_clear_error(tmp_path):
    save_checkpoint(str(tmp_path), 5, {"agent": torch.nn.Linear(3, 8)})
    with pytest.raises(CheckpointError, match="agent.pt does not fit this run's 'agent'.*network sizes"):
        load_checkpoint(str(tmp_path / "5"), {"agent": torch.nn.Linear(3, 4)})


def test_incomplete_step_folders_are_skipped_and_reported(tmp_path):
    net = torch.nn.Linear(2, 2)
    save_checkpoint(str(tmp_path), 100, {"agent": net, "opt": {"step": 3}})
    save_checkpoint(str(tmp_path), 200, {"agent": net, "mixer": net})
    save_checkpoint(str(tmp_path), 300, {"agent": net, "mixer": net})
    os.remove(tmp_path / "300" / "mixer.pt")                        # a part missing
    with open(tmp_path / "200" / "agent.pt", "r+b") as f:            # a truncated part
        f.truncate(10)
    os.makedirs(tmp_path / "400")                                    # an old-style folder, no manifest
    torch.save(net.state_dict(), tmp_path / "400" / "agent.pt")
    warnings = []
    assert find_checkpoint(str(tmp_path), warn=warnings.append) == (str(tmp_path / "100"), 100)
    assert len(warnings) == 3
    assert "400" in warnings[0] and "manifest.json" in warnings[0]
    assert "part 'mixer'" in warnings[1] and "truncated" in warnings[2]
    with pytest.raises(CheckpointError, match="part 'mixer'"):
        find_checkpoint(str(tmp_path / "300"))
    os.remove(tmp_path / "100" / "manifest.json")
    with pytest.raises(CheckpointError, match="no complete checkpoint"):
        find_checkpoint(str(tmp_path))


def test_non_finite_weights_are_never_saved(tmp_path):
    net = torch.nn.Linear(2, 2)
    save_checkpoint(str(tmp_path), 100, {"agent": net})
    with torch.no_grad():
        net.weight[0, 1] = float("nan")
    with pytest.raises(DivergedError, match=r"'agent' holds NaN/inf \(weight\)"):
        save_checkpoint(str(tmp_path), 200, {"agent": net})
    assert sorted(os.listdir(str(tmp_path))) == ["100"]
    # parts outside check_finite (counters, stats) may hold NaN, e.g. a loss not yet computed
    save_checkpoint(str(tmp_path), 300, {"agent": torch.nn.Linear(2, 2), "loop": {"x": torch.tensor(float("nan"))}},
                    check_finite=["agent"])
    assert find_checkpoint(str(tmp_path))[1] == 300


def test_saving_a_step_again_replaces_it(tmp_path):
    save_checkpoint(str(tmp_path), 100, {"a": {"v": 1}})
    save_checkpoint(str(tmp_path), 100, {"a": {"v": 2}, "buffer": {"n": 3}})
    assert sorted(os.listdir(str(tmp_path))) == ["100"]
    assert load_part(str(tmp_path / "100" / "a.pt")) == {"v": 2}
    assert incomplete_reason(str(tmp_path / "100")) is None


def test_checkpointer_writes_buffers_as_save_buffer_says(tmp_path):
    """save_buffer: last (default: only the last checkpoint), all / True (every one), none / False (never)."""
    def args(**kw):
        d = dict(local_results_path=str(tmp_path), unique_token="run", save_model=True, save_model_interval=50,
                 save_buffer="last")
        d.update(kw)
        return SimpleNamespace(**d)

    ck = Checkpointer(args(), Log())
    net = torch.nn.Linear(2, 2)
    assert not ck.due(40, 0) and ck.due(50, 0)
    ck.save(50, {"agent": net}, {"loop": {}}, {"buffer": {"n": 1}}, last=False)
    ck.save(60, {"agent": net}, {"loop": {}}, {"buffer": {"n": 1}}, last=True)
    base = tmp_path / "models" / "run"
    assert not (base / "50" / "buffer.pt").exists() and (base / "60" / "buffer.pt").exists()
    for value in (True, "all"):
        Checkpointer(args(save_buffer=value), Log()).save(70, {"agent": net}, {}, {"buffer": {"n": 1}}, last=False)
        assert (base / "70" / "buffer.pt").exists()
    for value in (False, "none", "False"):
        Checkpointer(args(save_buffer=value), Log()).save(75, {"agent": net}, {}, {"buffer": {"n": 1}}, last=True)
        assert not (base / "75" / "buffer.pt").exists() and (base / "75" / "agent.pt").exists()
    Checkpointer(SimpleNamespace(**{k: v for k, v in vars(args()).items() if k != "save_buffer"}), Log()).save(
        76, {"agent": net}, {}, {"buffer": {"n": 1}}, last=True)          # no key: the default, last
    assert (base / "76" / "buffer.pt").exists()
    with pytest.raises(ValueError, match=r"save_buffer='sometimes' is not one of last \| all \| none"):
        Checkpointer(args(save_buffer="sometimes"), Log())
    with torch.no_grad():
        net.bias[0] = float("inf")
    log = Log()
    assert Checkpointer(args(), log).save(80, {"agent": net}, {}, {}, last=True) is None
    assert "diverged" in log.lines[-1] and not (base / "80").exists()
    assert Checkpointer(args(save_model=False), Log()).save(90, {"agent": torch.nn.Linear(2, 2)}, {}, {}, True) is None


def test_stop_request_defers_the_first_signal_and_not_the_second():
    before = signal.getsignal(signal.SIGINT)
    with StopRequest() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.01)
        assert stop.requested
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.01)
    assert signal.getsignal(signal.SIGINT) is before


def _guard(tmp_path, log):
    args = SimpleNamespace(local_results_path=str(tmp_path), unique_token="run", save_model=True,
                           save_model_interval=50, save_buffer=False)
    saves = []
    return Checkpointer(args, log).guard(saves.append, log.warning), saves


def test_training_guard_saves_the_last_checkpoint_once_on_a_normal_exit_or_a_break():
    log = Log()
    guard, saves = _guard("unused", log)
    before = signal.getsignal(signal.SIGTERM)
    with guard as g:
        for t in range(3):
            g.poll(t)
            if t == 1:
                break
    assert saves == [True] and signal.getsignal(signal.SIGTERM) is before


def test_training_guard_after_a_signal_saves_at_the_next_poll_and_stops():
    log = Log()
    guard, saves = _guard("unused", log)
    polled = []
    with pytest.raises(KeyboardInterrupt, match="stopped at t_env 7 \\(last checkpoint saved\\)"):
        with guard as g:
            for t in range(5, 10):
                g.poll(t)
                polled.append(t)
                if t == 6:
                    os.kill(os.getpid(), signal.SIGTERM)
                    time.sleep(0.01)
    assert polled == [5, 6] and saves == [True]


def test_training_guard_saves_nothing_when_the_loop_fails():
    log = Log()
    guard, saves = _guard("unused", log)
    with pytest.raises(FloatingPointError):
        with guard:
            raise FloatingPointError("loss is nan")
    assert saves == [] and "diverged (loss is nan)" in log.lines[-1]
    guard, saves = _guard("unused", log)
    with pytest.raises(RuntimeError):
        with guard:
            raise RuntimeError("env crashed")
    assert saves == []


def test_loop_part_round_trip_restores_the_logger_and_buffer_absence_is_reported(tmp_path):
    class FakeLogger:
        def __init__(self, state):
            self.state = state

        def state_dict(self):
            return dict(self.state)

        def load_state_dict(self, state):
            self.state = state

    class Buffer:
        def __init__(self):
            self.state = None

        def state_dict(self):
            return {"n": torch.tensor([3])}

        def load_state_dict(self, state):
            self.state = state

    step = save_checkpoint(str(tmp_path), 10, {"loop": loop_part({"episode": 4}, FakeLogger({"t": [1, 2]})),
                                                "replay": Buffer()})
    logger, buffer = FakeLogger({}), Buffer()
    assert restore_loop(step, logger) == {"episode": 4} and logger.state == {"t": [1, 2]}
    assert restore_buffer(step, "replay", buffer) and buffer.state["n"].tolist() == [3]
    assert not restore_buffer(step, "buffer", Buffer())
    bare = save_checkpoint(str(tmp_path), 20, {"actor": torch.nn.Linear(2, 2)})
    with pytest.raises(CheckpointError, match="holds no 'loop.pt': it is a deployable model"):
        restore_loop(bare, logger)


def test_resume_config_takes_the_checkpoint_and_rejects_conflicts():
    saved = {"config_name": "qmix", "env": "smax", "agent": "grsn", "rnn_hidden_dim": 64, "lr": 0.0005,
             "t_max": 1000, "env_args": {"map_name": "8m", "seed_offset": 2}, "device": "cuda", "n_agents": 8}
    fresh = {"config_name": "qmix", "env": "smax", "agent": "rnn", "rnn_hidden_dim": 64, "lr": 0.001,
             "t_max": 500, "env_args": {"map_name": "3m", "seed_offset": 0}, "device": "cpu",
             "checkpoint_path": "x"}
    out, notes = resume_config(fresh, ["t_max=2000", "checkpoint_path=x"], saved)
    assert out["agent"] == "grsn" and out["env_args"] == {"map_name": "8m", "seed_offset": 2}
    assert out["lr"] == 0.0005 and out["device"] == "cpu" and "n_agents" not in out
    assert notes == ["t_max=500 (checkpoint: 1000)"]  # the override stays (fresh holds it already)
    with pytest.raises(CheckpointError, match="agent=rnn conflicts with the checkpoint.*agent=grsn"):
        resume_config(fresh, ["agent=rnn"], saved)
    with pytest.raises(CheckpointError, match="env_args.map_name=3m conflicts.*env_args.map_name=8m"):
        resume_config(fresh, ["env_args.map_name=3m"], saved)
    with pytest.raises(CheckpointError, match="--config=vdn conflicts.*config_name=qmix"):
        resume_config({**fresh, "config_name": "vdn"}, [], saved)


KILL_SCRIPT = """
import sys, torch
sys.path.insert(0, {src!r})
from utils.checkpoint import save_checkpoint
big = {{"w": torch.randn(500_000)}}
t = 0
while True:
    t += 1
    save_checkpoint({model_dir!r}, t, {{"agent": big, "opt": big, "buffer": big}})
    print(t, flush=True)
"""


def test_kill_9_during_saves_leaves_a_loadable_newest_checkpoint(tmp_path):
    model_dir = str(tmp_path / "m")
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT.format(src=SRC, model_dir=model_dir)],
                            stdout=subprocess.PIPE, text=True)
    try:
        for _ in range(3):                  # let a few saves complete, then kill it mid-way
            assert proc.stdout.readline()
        time.sleep(0.05)
        proc.kill()
    finally:
        proc.wait(timeout=30)
    step_dir, t = find_checkpoint(model_dir)
    assert t >= 3
    assert load_part(os.path.join(step_dir, "buffer.pt"))["w"].shape == (500_000,)


def test_config_for_checkpoint_reads_the_saved_config_of_the_step_it_loads(tmp_path):
    from utils.checkpoint import config_for_checkpoint
    from utils.config import build_config

    saved = build_config("qmix", "smax", ["agent=grsn", "env_args.map_name=8m", "lr=0.0005"])
    save_checkpoint(str(tmp_path), 10, {"agent": torch.nn.Linear(2, 2)}, config=saved)
    fresh = build_config("qmix", "smax", [f"checkpoint_path={tmp_path}", "evaluate=True"])
    warnings = []
    out = config_for_checkpoint(fresh, [f"checkpoint_path={tmp_path}", "evaluate=True"], warnings.append)
    assert (out["agent"], out["env_args"]["map_name"], out["lr"]) == ("grsn", "8m", 0.0005)
    assert out["evaluate"] is True and out["checkpoint_path"] == str(tmp_path) and warnings == []
    assert config_for_checkpoint(build_config("qmix", "smax"), [], warnings.append) == build_config("qmix", "smax")


def test_drop_part_frees_the_replay_and_keeps_the_step_complete(tmp_path):
    from utils.checkpoint import drop_part, has_part, incomplete_reason

    net = torch.nn.Linear(3, 2)
    step = save_checkpoint(str(tmp_path), 50, {"agent": net, "buffer": {"x": torch.zeros(1000)}})
    size = os.path.getsize(os.path.join(step, "buffer.pt"))
    assert drop_part(step, "buffer") == size and size > 4000  # 1000 float32 + the pickle frame
    assert not has_part(step, "buffer") and incomplete_reason(step) is None
    assert sorted(json.load(open(os.path.join(step, "manifest.json")))["parts"]) == ["agent"]
    assert drop_part(step, "buffer") == 0
    assert find_checkpoint(str(tmp_path)) == (step, 50)


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="needs Linux /proc")
def test_loading_to_the_cpu_maps_the_file_copy_on_write(tmp_path):
    """A resumed replay is copied into a buffer already allocated: the loaded part is
    memory-mapped, so it adds page cache rather than a second anonymous copy; writes to it stay
    private (the checkpoint on disk is never changed)."""
    step = save_checkpoint(str(tmp_path / "m"), 5, {"buffer": {"w": torch.arange(4096.0)}})
    path = os.path.realpath(os.path.join(step, "buffer.pt"))
    state = load_part(path)
    with open("/proc/self/maps") as fh:
        assert path in fh.read()
    state["w"][0] = -1.0
    assert load_part(path)["w"][0] == 0.0
    del state
    assert load_part(path, map_location="meta")["w"].device.type == "meta"  # not mapped: other devices load as before


# ------------------------------------------------------------------ issue 48: damaged manifests, parts, config
def _two_steps(tmp_path):
    net = torch.nn.Linear(2, 2)
    save_checkpoint(str(tmp_path), 100, {"agent": net, "loop": {"episode": 1}})
    save_checkpoint(str(tmp_path), 200, {"agent": net, "loop": {"episode": 2}})
    return tmp_path / "200" / "manifest.json"


@pytest.mark.parametrize("manifest,why", [
    ({"format": 1, "t_env": 200, "parts": {}}, "lists no parts"),
    ([], "not a checkpoint manifest"),
    ({"format": 1, "parts": {"agent": {"file": "agent.pt"}}}, "entry of part 'agent'"),
    ({"format": 1, "parts": {"agent": "agent.pt"}}, "entry of part 'agent'"),
    ({"format": 1, "parts": {"agent": {"file": "agent.pt", "bytes": "12"}}}, "entry of part 'agent'"),
    ({"format": 1, "parts": {"agent": {"file": "../100/agent.pt", "bytes": 1}}}, "outside its folder"),
    ({"format": 1, "parts": []}, "lists no parts"),
    ("just a string", "not a checkpoint manifest"),
])
def test_a_manifest_of_the_wrong_shape_is_skipped_with_a_warning(tmp_path, manifest, why):
    """Issue 48: `"parts": {}` counted as complete and `[]` / a part without `bytes` was a traceback."""
    path = _two_steps(tmp_path)
    path.write_text(json.dumps(manifest))
    warnings = []
    assert find_checkpoint(str(tmp_path), warn=warnings.append) == (str(tmp_path / "100"), 100)
    assert len(warnings) == 1 and why in warnings[0] and "200" in warnings[0]
    with pytest.raises(CheckpointError, match=why):
        find_checkpoint(str(tmp_path / "200"))


def test_a_part_that_does_not_fit_names_the_missing_unexpected_keys_and_shapes(tmp_path):
    """Issue 48: the message was cut to "Error(s) in loading state_dict for RNNAgent:."."""
    save_checkpoint(str(tmp_path), 5, {"agent": torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Linear(8, 2))})
    step = str(tmp_path / "5")
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(step, {"agent": torch.nn.Sequential(torch.nn.Linear(3, 4))})
    msg = str(info.value)
    assert "unexpected keys 1.weight, 1.bias" in msg and "\n" not in msg
    assert "other shapes (checkpoint vs this run) 0.weight [8, 3] vs [4, 3], 0.bias [8] vs [4]" in msg
    with pytest.raises(CheckpointError, match=r"missing keys 2\.weight, 2\.bias"):
        load_checkpoint(step, {"agent": torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Linear(8, 2),
                                                            torch.nn.Linear(2, 2))})


def test_the_config_hash_is_checked_network_keys_error_others_warn(tmp_path):
    """Issue 48: the manifest's config hash was written but never checked."""
    from utils.checkpoint import saved_config

    save_checkpoint(str(tmp_path), 5, {"agent": torch.nn.Linear(2, 2)},
                    config={"agent": "grsn", "rnn_hidden_dim": 64, "t_max": 100, "lr": 0.1})
    step = str(tmp_path / "5")
    path = tmp_path / "5" / "config.json"
    warnings = []
    assert saved_config(step, warnings.append)["t_max"] == 100 and warnings == []
    cfg = json.loads(path.read_text())
    path.write_text(json.dumps(dict(cfg, t_max=500)))          # a budget edited on purpose: used, with a warning
    assert saved_config(step, warnings.append)["t_max"] == 500
    assert len(warnings) == 1 and "edited after the save" in warnings[0]
    path.write_text(json.dumps(dict(cfg, rnn_hidden_dim=32)))  # no longer the saved networks: refused
    with pytest.raises(CheckpointError, match=r"rnn_hidden_dim=32 \(trained with 64\)"):
        saved_config(step, warnings.append)
    path.write_text("[1, 2]")
    with pytest.raises(CheckpointError, match="not a config object"):
        saved_config(step)


def test_a_part_the_manifest_does_not_list_is_not_loaded(tmp_path):
    """Issue 48: a buffer.pt copied into a step folder was loaded although the manifest lists none."""
    from utils.checkpoint import has_part, restore_plain

    save_checkpoint(str(tmp_path), 5, {"agent": torch.nn.Linear(2, 2), "loop": {"episode": 3}})
    torch.save({"storage": {}, "size": 7}, tmp_path / "5" / "buffer.pt")
    step = str(tmp_path / "5")
    assert incomplete_reason(step) is None
    assert not has_part(step, "buffer") and restore_plain(step, "buffer") is None
    assert not restore_buffer(step, "buffer", object())
    with pytest.raises(CheckpointError, match="not listed"):
        load_checkpoint(step, {"buffer": torch.nn.Linear(2, 2)}, required=("buffer",))
    assert restore_plain(step, "loop") == {"episode": 3}


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_unfinished_saves_of_killed_runs_are_removed_at_the_next_save(tmp_path):
    """Issue 48: `.tmp-*` folders of killed saves (GBs each with a replay) were never cleaned."""
    from utils.checkpoint import _host

    model_dir = tmp_path / "m"
    old_style = model_dir / ".tmp-50-k2j3h4g5"                       # from mkdtemp, before this version
    dead = model_dir / f".tmp-60-{_dead_pid()}@{_host()}-abcdef"
    live = model_dir / f".tmp-70-{os.getppid()}@{_host()}-abcdef"    # a save in progress: kept
    other_host = model_dir / ".tmp-80-1@elsewhere-abcdef"              # young, of another machine: kept
    for d in (old_style, dead, live, other_host):
        os.makedirs(d)
        (d / "buffer.pt").write_bytes(b"x" * 100)
    save_checkpoint(str(model_dir), 100, {"agent": torch.nn.Linear(2, 2)})
    assert sorted(os.listdir(model_dir)) == sorted(["100", live.name, other_host.name])


def test_step_folders_get_the_umask_permissions(tmp_path):
    """Issue 48: step folders were created drwx------ (mkdtemp's 0o700)."""
    import stat
    before = os.umask(0o022)
    try:
        save_checkpoint(str(tmp_path), 5, {"agent": torch.nn.Linear(2, 2)})
        os.umask(0o077)
        save_checkpoint(str(tmp_path), 6, {"agent": torch.nn.Linear(2, 2)})
    finally:
        os.umask(before)
    assert stat.S_IMODE(os.stat(tmp_path / "5").st_mode) == 0o755
    assert stat.S_IMODE(os.stat(tmp_path / "6").st_mode) == 0o700


def test_a_view_of_a_larger_storage_is_saved_at_its_own_size(tmp_path):
    """Issue 48: a replay's filled part (storage[:size]) was saved with the whole pre-allocated storage."""
    from utils.checkpoint import compact

    big = torch.arange(100_000, dtype=torch.float32)
    save_checkpoint(str(tmp_path), 5, {"replay": {"obs": big[:10], "n": 10}}, check_finite=[])
    assert os.path.getsize(tmp_path / "5" / "replay.pt") < 5_000          # 10 floats, not 400 kB
    assert torch.equal(load_part(str(tmp_path / "5" / "replay.pt"))["obs"], big[:10])
    whole = torch.zeros(4)
    assert compact({"a": [whole]})["a"][0] is whole                       # no copy when nothing is gained


def test_a_partly_filled_episode_replay_saves_small_and_resumes_equal(tmp_path):
    """Issue 48: 678 MB for a 3m run that filled 1,192 of 5,000 episodes. Saved at its filled size now, and
    the loaded buffer equals the saved one (contents, write index, sampling generator)."""
    import numpy as np
    from components.episode_buffer import EpisodeBatch, ReplayBuffer

    def batch(n, start):
        b = EpisodeBatch.zeros(n, 20, 3, 30, 40, 6)
        b.filled[:, :10] = 1
        b.obs[:] = start + torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1)
        return b

    full = ReplayBuffer(400, 20, 3, 30, 40, 6, rng=np.random.default_rng(0))
    full.insert(batch(400, 0.0))
    save_checkpoint(str(tmp_path / "full"), 1, {"buffer": full}, check_finite=[])
    buf = ReplayBuffer(400, 20, 3, 30, 40, 6, rng=np.random.default_rng(0))
    for i in range(3):
        buf.insert(batch(8, 10.0 * i))
    save_checkpoint(str(tmp_path / "part"), 1, {"buffer": buf}, check_finite=[])
    full_bytes = os.path.getsize(tmp_path / "full" / "1" / "buffer.pt")
    part_bytes = os.path.getsize(tmp_path / "part" / "1" / "buffer.pt")
    assert part_bytes < full_bytes * 24 / 400 * 1.1 + 10_000             # 24 of 400 episodes
    other = ReplayBuffer(400, 20, 3, 30, 40, 6, rng=np.random.default_rng(99))
    assert restore_buffer(str(tmp_path / "part" / "1"), "buffer", other)
    for k, v in buf.storage.as_dict().items():
        assert torch.equal(other.storage.as_dict()[k], v), k
    assert (other.index, other.size) == (buf.index, buf.size) == (24, 24)
    assert other.rng.integers(10 ** 9) == buf.rng.integers(10 ** 9)


# ------------------------------------------------------------------ issue 48: the resume chain
def test_the_resume_chain_finds_the_newest_step_from_any_of_its_folders(tmp_path):
    from utils.checkpoint import link_resume

    net = torch.nn.Linear(2, 2)
    a, b, c = tmp_path / "models" / "a", tmp_path / "models" / "b", tmp_path / "models" / "c"
    save_checkpoint(str(a), 100, {"agent": net})
    save_checkpoint(str(a), 200, {"agent": net})
    link_resume(str(a / "200"), str(b))                       # b resumed from a/200 and was killed before a save
    os.makedirs(b / ".tmp-300-1@elsewhere-abcdef")
    warnings = []
    assert find_checkpoint(str(a), warn=warnings.append) == (str(a / "200"), 200) and warnings == []
    assert find_checkpoint(str(b), warn=warnings.append) == (str(a / "200"), 200)
    assert "stopped before its first save" in warnings[-1]
    save_checkpoint(str(b), 300, {"agent": net})               # b saved: pointing at a finds it
    assert find_checkpoint(str(a), warn=warnings.append) == (str(b / "300"), 300)
    assert "following the resume chain" in warnings[-1] and str(b) in warnings[-1]
    assert find_checkpoint(str(a), load_step=150)[1] in (100, 200)
    link_resume(str(b / "300"), str(c))
    save_checkpoint(str(c), 400, {"agent": net})
    assert find_checkpoint(str(a)) == (str(c / "400"), 400)
    moved = tmp_path / "moved"                                 # links are relative: a moved results folder works
    os.rename(tmp_path / "models", moved)
    assert find_checkpoint(str(moved / "a")) == (str(moved / "c" / "400"), 400)
    assert find_checkpoint(str(moved / "a" / "200")) == (str(moved / "a" / "200"), 200)  # a step folder: itself


def test_the_checkpointer_of_a_resumed_run_links_the_chain_and_checks_its_folder(tmp_path):
    from utils.checkpoint import CheckpointWriteError, read_chain

    def args(**kw):
        return SimpleNamespace(**dict(dict(local_results_path=str(tmp_path), unique_token="second", save_model=True,
                                           save_model_interval=50), **kw))

    save_checkpoint(str(tmp_path / "models" / "first"), 10, {"agent": torch.nn.Linear(2, 2)})
    Checkpointer(args(), Log(), resume_from=str(tmp_path / "models" / "first" / "10"))
    assert read_chain(str(tmp_path / "models" / "first"))["continued_in"] == [str(tmp_path / "models" / "second")]
    assert read_chain(str(tmp_path / "models" / "second"))["resumed_from"] == str(tmp_path / "models" / "first" / "10")
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(CheckpointWriteError, match="cannot write checkpoints to .*file/models/x"):
        Checkpointer(args(local_results_path=str(tmp_path / "file"), unique_token="x"), Log())


def test_drop_part_refuses_a_damaged_manifest_in_one_line(tmp_path):
    from utils.checkpoint import drop_part

    save_checkpoint(str(tmp_path), 5, {"agent": torch.nn.Linear(2, 2), "buffer": {"n": 1}})
    (tmp_path / "5" / "manifest.json").write_text(json.dumps({"format": 1, "parts": ["agent.pt"]}))
    with pytest.raises(CheckpointError, match="cannot drop part 'buffer': .*lists no parts"):
        drop_part(str(tmp_path / "5"), "buffer")
    assert (tmp_path / "5" / "buffer.pt").exists()
