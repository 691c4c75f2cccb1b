"""Shared pieces of the fault-injection suite (tests/faults): tiny runs of src/main.py in a
subprocess, and real faults - a private mount namespace (``unshare -m``) for a tiny tmpfs (a full
disk) or a read-only bind mount, ``RLIMIT_FSIZE`` for a file-size limit, ``kill -9``."""
from __future__ import annotations

import glob
import json
import os
import shlex
import shutil
import subprocess
import sys
from typing import Dict, List, Optional, Sequence

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAIN = os.path.join(ROOT, "src", "main.py")
PO_CONFIG = ["--config=sacd", "--env-config=pomdp"]
# a SAC-discrete GRU on CartPole-V with 20-step episodes: a few seconds per run
TINY_PO = ["env_args.key=CartPole-V", "env_args.max_episode_steps=20", "test_interval=40", "test_nepisode=2",
           "log_interval=40", "runner_log_interval=40", "learner_log_interval=40", "po_init_random_episodes=1",
           "po_batch_size=2", "sampled_seq_len=8", "po_updates_per_step=0.2", "po_hidden_dim=16",
           "po_obs_embed=8", "po_head_layers=[16,16]"]
ENV = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")


def main_cmd(*with_args: str) -> List[str]:
    """``python src/main.py --config=sacd --env-config=pomdp with TINY_PO <with_args>``."""
    return [sys.executable, MAIN, *PO_CONFIG, "with", *TINY_PO, *with_args]


def run(cmd: Sequence[str], timeout: float = 180, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=ENV, **kw)


def error_lines(stderr: str) -> List[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def model_dirs(results: str) -> List[str]:
    return sorted(glob.glob(os.path.join(results, "models", "*")))


def sacred_records(results: str) -> List[str]:
    """The run folders under ``results/sacred`` in run-id order."""
    found = glob.glob(os.path.join(results, "sacred", "*", "*", "*", "*", "run.json"))
    return sorted((os.path.dirname(p) for p in found), key=lambda d: int(os.path.basename(d)))


def recorded_tests(record: str) -> Dict[str, List]:
    """``{key: [(step, value), ...]}`` of every ``test_*`` metric of a sacred record."""
    with open(os.path.join(record, "metrics.json")) as f:
        metrics = json.load(f)
    return {k: list(zip(v["steps"], v["values"])) for k, v in metrics.items() if k.startswith("test_")}


def namespace_ok() -> Optional[str]:
    """None when ``unshare -m`` can mount here (root, or a user namespace); else why not."""
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        return "no unshare/mount command"
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt 2>&1 || "
                            "mount -t tmpfs -o size=64k tmpfs /tmp 2>&1"], capture_output=True, text=True)
    return None if probe.returncode == 0 else f"cannot mount in a private namespace: {probe.stdout.strip()[:200]}"


def in_namespace(script: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run a shell ``script`` in a private mount namespace (its mounts vanish with it)."""
    return subprocess.run(["unshare", "-m", "sh", "-ec", script], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=ENV)


def sh(cmd: Sequence[str]) -> str:
    return " ".join(shlex.quote(c) for c in cmd)
