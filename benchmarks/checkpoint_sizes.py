"""How big the replay buffer makes a checkpoint, for typical configs (README "Stopping and resuming").

For each config the run loop's replay, full at its default capacity: the bytes of the part it
writes (``buffer.pt`` / ``replay.pt``; measured on a 10-slot replay and scaled, since the state is
linear in the slots). Where the buffer is small enough (``--write-limit-mb``) the full replay is
also built and written with ``torch.save`` and the file measured, which checks that the byte
count is what lands on disk. The networks' parts
of the same checkpoints are measured by saving them for real.

    python benchmarks/checkpoint_sizes.py            # ~2 min on 2 cores (compiles three SMAX maps)

Writes benchmarks/results/checkpoint_sizes.json and .md.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from types import SimpleNamespace
from typing import Any, Dict, List

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "src"))

import torch  # noqa: E402

from utils.checkpoint import save_checkpoint  # noqa: E402
from utils.config import build_config  # noqa: E402

MB = 1024 ** 2


def _tensor_bytes(obj: Any) -> int:
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(_tensor_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_tensor_bytes(v) for v in obj)
    return 0


def _measure(name: str, make: Any, capacity: int, fill: Any, models: Dict[str, Any],
             write_limit: float) -> Dict[str, Any]:
    """``make(capacity)`` builds the replay, ``fill`` marks it full. The full size is measured on
    a 10-slot replay and scaled (the state is linear in the slots), so huge buffers are never
    allocated; up to ``write_limit`` MB the full replay is also built, written and its file measured."""
    small = make(10)
    fill(small)
    per_slot = _tensor_bytes(small.state_dict()) / 10
    row: Dict[str, Any] = {"config": name, "buffer_mb": per_slot * capacity / MB, "buffer_file_mb": None}
    with tempfile.TemporaryDirectory() as tmp:
        step = save_checkpoint(tmp, 1, models)
        row["networks_mb"] = sum(os.path.getsize(os.path.join(step, f)) for f in os.listdir(step)
                                 if f.endswith(".pt")) / MB
        if row["buffer_mb"] <= write_limit:
            full = make(capacity)
            fill(full)
            path = os.path.join(tmp, "buffer.pt")
            torch.save(full.state_dict(), path)
            row["buffer_file_mb"] = os.path.getsize(path) / MB
            del full
    print(f"{name:<48} buffer {row['buffer_mb']:>10.1f} MB"
          + (f" (file {row['buffer_file_mb']:.1f} MB)" if row["buffer_file_mb"] is not None else "")
          + f" | networks + optimisers {row['networks_mb']:.2f} MB", flush=True)
    return row


def marl_rows(maps: List[str], write_limit: float) -> List[Dict[str, Any]]:
    from run.marl import build_marl
    from components.episode_buffer import ReplayBuffer
    from utils.logging import Logger

    rows = []
    for map_name in maps:
        cfg = build_config("qmix", "smax", [f"env_args.map_name={map_name}", "batch_size_run=1", "agent=grsn"])
        cfg.update(device="cpu", local_results_path=tempfile.gettempdir(), unique_token="sizes")
        args = SimpleNamespace(**cfg)
        runner, _, learner = build_marl(args, Logger())
        info = runner.env_info
        def make(cap: int) -> Any:
            return ReplayBuffer(cap, runner.episode_limit, info["n_agents"], info["obs_shape"],
                                info["state_shape"], info["n_actions"])

        def fill(b: Any) -> None:
            b.size = b.capacity

        name = (f"qmix grsn smax {map_name}: {args.buffer_size} episodes x {runner.episode_limit} steps "
                f"(obs {info['obs_shape']}, state {info['state_shape']}, {info['n_agents']} agents)")
        rows.append(_measure(name, make, int(args.buffer_size), fill, learner.checkpoint_parts(), write_limit))
        runner.close()
    return rows


def po_rows(keys: List[str], write_limit: float) -> List[Dict[str, Any]]:
    from components.episode_replay import EpisodeReplay
    from run.po_rl import build, make_env

    rows = []
    for key, alg in keys:
        cfg = build_config(alg, "pomdp", [f"env_args.key={key}", "agent=grsn"])
        cfg.update(device="cpu")
        args = SimpleNamespace(**cfg)
        env = make_env(args, 0)
        _, _, learner = build(args, env, torch.device("cpu"))
        def make(cap: int) -> Any:
            return EpisodeReplay(cap, env.obs_dim, env.act_dim, env.max_episode_steps, discrete=env.discrete)

        def fill(r: Any) -> None:
            r.n_episodes = r.capacity
            r.lengths[:] = r.max_episode_len

        name = f"{alg} grsn pomdp {key}: {args.po_buffer_episodes} episodes x {env.max_episode_steps} steps"
        rows.append(_measure(name, make, int(args.po_buffer_episodes), fill, learner.parts(), write_limit))
    return rows


def mujoco_rows(keys: List[str], write_limit: float) -> List[Dict[str, Any]]:
    import numpy as np
    from components.transition_replay import TransitionReplay
    from learners.td3_mujoco import TD3MujocoLearner
    from run.td3_mujoco import _make_env

    rows = []
    for key in keys:
        cfg = build_config("td3_proxy", "mujoco", [f"env_args.key={key}"])
        cfg.update(device="cpu")
        args = SimpleNamespace(**cfg)
        env = _make_env(args, 0)
        obs_dim = int(np.prod(env.observation_space.shape))
        act_dim = int(np.prod(env.action_space.shape))
        cap = min(int(args.buffer_size_transitions), int(args.t_max))
        def make(c: int) -> Any:
            return TransitionReplay(obs_dim, act_dim, c)
        learner = TD3MujocoLearner(obs_dim, act_dim, env.action_space.high.astype(np.float32), args)

        def fill(r: Any) -> None:
            r.size = r.capacity

        name = f"td3_proxy lif mujoco {key}: {cap} transitions (obs {obs_dim}, act {act_dim})"
        rows.append(_measure(name, make, cap, fill, {**learner.deploy_parts(), **learner.train_parts()}, write_limit))
        env.close()
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--maps", default="3m,8m,27m_vs_30m")
    p.add_argument("--mujoco", default="Hopper-v4,Ant-v4,HalfCheetah-v4")
    p.add_argument("--write-limit-mb", type=float, default=1500.0,
                   help="also write buffers up to this size and measure the file")
    p.add_argument("--out-name", default="checkpoint_sizes")
    a = p.parse_args()
    torch.set_num_threads(1)
    rows = marl_rows([m for m in a.maps.split(",") if m], a.write_limit_mb)
    rows += po_rows([("Pendulum-P", "td3"), ("CartPole-V", "sacd")], a.write_limit_mb)
    rows += mujoco_rows([k for k in a.mujoco.split(",") if k], a.write_limit_mb)
    out = os.path.join(ROOT, "benchmarks", "results", a.out_name)
    with open(out + ".json", "w") as f:
        json.dump({"command": "python benchmarks/checkpoint_sizes.py " + " ".join(sys.argv[1:]), "rows": rows}, f,
                  indent=1)
    lines = ["| config | replay buffer (MB) | written file (MB) | networks + optimisers (MB) |", "|---|---|---|---|"]
    for r in rows:
        file_mb = f"{r['buffer_file_mb']:.1f}" if r["buffer_file_mb"] is not None else "-"
        lines.append(f"| {r['config']} | {r['buffer_mb']:.1f} | {file_mb} | {r['networks_mb']:.2f} |")
    with open(out + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {out}.json and .md")


if __name__ == "__main__":
    main()
