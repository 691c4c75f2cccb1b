"""This project's QMIX against JaxMARL's all-JAX QMIX on the same SMAX map, same machine, alternating.

Not a requirement of this project and not run in CI: JaxMARL's baselines are not on PyPI, so
this script takes a JaxMARL git checkout (``--jaxmarl``, e.g. ``git clone
https://github.com/FLAIROx/JaxMARL``) and the python of a separate virtual environment in which
that checkout's baseline runs (``--jaxmarl-python``: jaxmarl, flax, optax, flashbax, hydra-core,
omegaconf, wandb, safetensors). Nothing of JaxMARL is imported into this process.

For ``--pairs`` pairs, in alternating order (ours first in even pairs), it trains
    * this project: ``src/main.py --config=qmix --env-config=smax`` for ``--steps`` env steps
      (sacred metrics read back from a temporary results folder), and
    * JaxMARL: ``baselines/QLearning/qmix_rnn.py``'s ``make_train`` with its ``ql_rnn_smax``
      config, set to the same map, network sizes (GRU ``rnn_hidden_dim``, mixer
      ``mixing_embed_dim`` / ``hypernet_embed``), learning rate and env steps, jitted and
      compiled first (compile time reported apart), then run twice: timed with
      ``WANDB_MODE=disabled`` (newer baselines return no metrics from their training scan and
      otherwise report every update through a host callback to ``wandb.log``), then again with
      that callback recording the test curve (``run_s_with_metrics``).
Reported per run: env steps/s of the whole training loop (ours: from ``elapsed_s`` at the last
test, i.e. without start-up and compiling; JaxMARL: the compiled call, tests included) and the
test win rate over env steps; then the median over pairs of ours/JaxMARL and both win rates at
the env steps where both tested (linear interpolation). Ours tests ``test_nepisode`` episodes
every ``test_interval`` steps, JaxMARL ``TEST_NUM_ENVS`` envs every ``TEST_INTERVAL`` of its
updates; both costs are inside the timings.

    python benchmarks/jaxmarl_side_by_side.py --jaxmarl ~/src/JaxMARL --jaxmarl-python ~/venvs/jaxmarl/bin/python \
        --map 3m --steps 500000 --pairs 2        # ~2 x (35 + 10) min on 2 cores
    python benchmarks/jaxmarl_side_by_side.py --jaxmarl ... --jaxmarl-python ... --steps 20000 --pairs 1   # smoke

Writes ``benchmarks/results/jaxmarl_side_by_side_<map>.json`` and ``.md``.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "src"))

from utils.config import build_config  # noqa: E402
from jaxmarl_config import apply_sets, qmix_overrides  # noqa: E402  (benchmarks/jaxmarl_config.py)
from report import write_report  # noqa: E402  (benchmarks/report.py)

# Runs inside the JaxMARL venv (argv: checkout, json of overrides, output path). It only calls
# the baseline's public functions (env_from_config, make_train) and reads its metrics.
JAXMARL_DRIVER = r'''
import copy, json, os, sys, time
checkout, overrides, out_path = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
sys.path.insert(0, os.path.join(checkout, "baselines", "QLearning"))
sys.path.insert(0, checkout)
import jax, numpy as np
from omegaconf import OmegaConf
import qmix_rnn
cfg_dir = os.path.join(checkout, "baselines", "QLearning", "config")
config = OmegaConf.to_container(OmegaConf.load(os.path.join(cfg_dir, "config.yaml")))
config.update(OmegaConf.to_container(OmegaConf.load(os.path.join(cfg_dir, "alg", "ql_rnn_smax.yaml"))))
kwargs = overrides.pop("ENV_KWARGS", {})
config.update(overrides)
config["ENV_KWARGS"].update(kwargs)
records = []


class _Recorder:
    """Stands in for wandb inside qmix_rnn: newer baselines report their per-update metrics only
    through ``wandb.log`` (a host callback) and return none from the training scan."""

    def log(self, metrics):
        records.append({k: np.asarray(v) for k, v in metrics.items()})


record = bool(config.pop("_RECORD", True))
if record:   # the curve run; the timing run keeps WANDB_MODE=disabled (no host callback per update)
    qmix_rnn.wandb = _Recorder()
    config["WANDB_MODE"] = "record"   # any value but "disabled" makes make_train call wandb.log per update
env, env_name = qmix_rnn.env_from_config(copy.deepcopy(config))
rng = jax.random.PRNGKey(int(config["SEED"]))
t0 = time.perf_counter()
compiled = jax.jit(qmix_rnn.make_train(config, env)).lower(rng).compile()
compile_s = time.perf_counter() - t0
t0 = time.perf_counter()
out = jax.block_until_ready(compiled(rng))
run_s = time.perf_counter() - t0
if out.get("metrics") is not None:
    m = {k: np.asarray(v) for k, v in out["metrics"].items()}
elif records:
    m = {k: np.stack([r[k] for r in records]) for k in records[0]}
else:   # timing run of a baseline that returns no metrics: the step count from the config
    m = {"env_step": np.asarray([int(config["TOTAL_TIMESTEPS"])]), "update_steps": np.asarray([0])}
every = int(config["NUM_UPDATES"] * config["TEST_INTERVAL"])
tested = [i for i in range(len(m["update_steps"])) if int(m["update_steps"][i]) % max(every, 1) == 0]
won = m.get("test_returned_won_episode")
json.dump({"env_steps": int(m["env_step"][-1]), "compile_s": compile_s, "run_s": run_s,
           "jax": jax.__version__, "config": {k: v for k, v in config.items() if not callable(v)},
           "test_steps": [int(m["env_step"][i]) for i in tested],
           "test_win": [float(won[i]) for i in tested] if won is not None else []},
          open(out_path, "w"), default=str)
'''


def ours_run(a: argparse.Namespace, work: str, tag: str) -> Dict[str, Any]:
    """Train this project's QMIX for ``a.steps`` env steps; steps/s and the test win-rate curve."""
    results = os.path.join(work, tag)
    cmd = [sys.executable, os.path.join(ROOT, "src", "main.py"), "--config=qmix", "--env-config=smax", "with",
           f"env_args.map_name={a.map}", f"t_max={a.steps}", f"seed={a.seed}", "save_model=False",
           f"local_results_path={results}", f"test_interval={a.test_interval}", f"name=side_by_side_{tag}"]
    cmd += list(a.ours_set)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    found = glob.glob(os.path.join(results, "sacred", "**", "metrics.json"), recursive=True)
    if len(found) != 1:
        raise RuntimeError(f"expected one sacred metrics.json under {results}, found {found}")
    metrics = json.load(open(found[0]))
    el, won = metrics["elapsed_s"], metrics["test_battle_won_mean"]
    return {"env_steps": int(el["steps"][-1]), "loop_s": float(el["values"][-1]), "wall_s": wall,
            "steps_per_s": el["steps"][-1] / el["values"][-1],
            "test_steps": list(won["steps"]), "test_win": list(won["values"])}


def jaxmarl_run(a: argparse.Namespace, work: str, tag: str) -> Dict[str, Any]:
    """JaxMARL's qmix_rnn at the same sizes in its own venv (compile timed apart)."""
    ours = build_config("qmix", "smax")
    env_args = ours["env_args"]
    overrides = qmix_overrides(ours, a.map, a.steps, a.jaxmarl_envs, a.seed, a.jaxmarl_lr)
    overrides["WANDB_MODE"] = "disabled"
    apply_sets(overrides, a.jaxmarl_set)
    driver = os.path.join(work, "jaxmarl_driver.py")
    with open(driver, "w") as f:
        f.write(JAXMARL_DRIVER)
    t0 = time.perf_counter()
    runs = {}
    # two runs: timed without metrics (newer baselines return none from the scan and would otherwise
    # report each update through a host callback), then the same run recording the test curve
    for kind, record in (("timed", False), ("curve", True)):
        out_path = os.path.join(work, f"{tag}_{kind}.json")
        subprocess.run([a.jaxmarl_python, driver, os.path.abspath(a.jaxmarl),
                        json.dumps(dict(overrides, _RECORD=record)), out_path], check=True, cwd=a.jaxmarl)
        runs[kind] = json.load(open(out_path))
    res = dict(runs["curve"])
    res.update(wall_s=time.perf_counter() - t0, run_s=runs["timed"]["run_s"], compile_s=runs["timed"]["compile_s"],
               run_s_with_metrics=runs["curve"]["run_s"],
               steps_per_s=runs["curve"]["env_steps"] / runs["timed"]["run_s"])
    return res


def interp(steps: Sequence[float], values: Sequence[float], at: float) -> Optional[float]:
    """Linear interpolation of a test curve at ``at`` (None outside the tested range)."""
    pts = sorted(zip(steps, values))
    for (s0, v0), (s1, v1) in zip(pts, pts[1:]):
        if s0 <= at <= s1:
            return v0 if s1 == s0 else v0 + (v1 - v0) * (at - s0) / (s1 - s0)
    return pts[0][1] if pts and pts[0][0] == at else None


def compare(pairs: List[Dict[str, Any]]) -> Dict[str, Any]:
    ratios = [p["ours"]["steps_per_s"] / p["jaxmarl"]["steps_per_s"] for p in pairs]
    ours, theirs = pairs[0]["ours"], pairs[0]["jaxmarl"]
    common = [s for s in ours["test_steps"] if theirs["test_steps"] and theirs["test_steps"][0] <= s
              <= theirs["test_steps"][-1]]
    return {"ours_over_jaxmarl_steps_per_s_median": statistics.median(ratios), "ratios": ratios,
            "win_at_equal_steps_pair1": [{"env_steps": s, "ours": interp(ours["test_steps"], ours["test_win"], s),
                                          "jaxmarl": interp(theirs["test_steps"], theirs["test_win"], s)}
                                         for s in common]}


def markdown(res: Dict[str, Any]) -> str:
    m, c = res["meta"], res["comparison"]
    lines = [f"# This project's QMIX vs JaxMARL qmix_rnn, SMAX {m['map']} ({m['date']})", "",
             f"`{m['command']}`", "", m["note"], "",
             "| pair | ours env steps/s | JaxMARL env steps/s | ours / JaxMARL | JaxMARL compile s |",
             "|---|---|---|---|---|"]
    for i, p in enumerate(res["pairs"]):
        lines.append(f"| {i + 1} | {p['ours']['steps_per_s']:.0f} | {p['jaxmarl']['steps_per_s']:.0f} "
                     f"| {p['ours']['steps_per_s'] / p['jaxmarl']['steps_per_s']:.2f} | {p['jaxmarl']['compile_s']:.0f} |")
    lines += ["", f"Median ours / JaxMARL: {c['ours_over_jaxmarl_steps_per_s_median']:.2f}", "",
              "| env steps | ours test win | JaxMARL test win |", "|---|---|---|"]
    for row in c["win_at_equal_steps_pair1"]:
        fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
        lines.append(f"| {row['env_steps']} | {fmt(row['ours'])} | {fmt(row['jaxmarl'])} |")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--jaxmarl", required=True, help="path of a JaxMARL git checkout (has baselines/QLearning)")
    p.add_argument("--jaxmarl-python", required=True, help="python of a venv where that checkout's baselines run")
    p.add_argument("--map", default="3m")
    p.add_argument("--steps", type=int, default=500000, help="env steps each run trains for")
    p.add_argument("--pairs", type=int, default=2, help="alternating (ours, JaxMARL) pairs")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--test-interval", type=int, default=25000, help="ours: env steps between tests")
    p.add_argument("--jaxmarl-envs", type=int, default=16, help="JaxMARL NUM_ENVS")
    p.add_argument("--jaxmarl-lr", type=float, default=0.005, help="JaxMARL LR (its ql_rnn_smax default is 5e-5)")
    p.add_argument("--ours-set", nargs="*", default=[], help="extra `with` overrides for src/main.py")
    p.add_argument("--jaxmarl-set", nargs="*", default=[], help="extra KEY=value overrides of JaxMARL's config")
    p.add_argument("--out-dir", default=os.path.join(ROOT, "benchmarks", "results"))
    a = p.parse_args(argv)
    qdir = os.path.join(a.jaxmarl, "baselines", "QLearning")
    if not os.path.isfile(os.path.join(qdir, "qmix_rnn.py")):
        raise SystemExit(f"--jaxmarl {a.jaxmarl}: no baselines/QLearning/qmix_rnn.py there; pass a JaxMARL checkout")
    if not os.access(a.jaxmarl_python, os.X_OK):
        raise SystemExit(f"--jaxmarl-python {a.jaxmarl_python} is not an executable python")
    pairs: List[Dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="side_by_side_") as work:
        for i in range(a.pairs):
            runs: Tuple[str, ...] = ("ours", "jaxmarl") if i % 2 == 0 else ("jaxmarl", "ours")
            pair: Dict[str, Any] = {"order": list(runs)}
            for which in runs:
                fn = ours_run if which == "ours" else jaxmarl_run
                pair[which] = fn(a, work, f"{which}_{i}")
                print(f"[pair {i + 1}] {which}: {pair[which]['steps_per_s']:.0f} env steps/s", flush=True)
            pairs.append(pair)
    meta = {"date": time.strftime("%Y-%m-%d %H:%M"), "map": a.map, "steps": a.steps, "seed": a.seed,
            "command": "python benchmarks/jaxmarl_side_by_side.py " + " ".join(sys.argv[1:] if argv is None else argv),
            "cpu_count": os.cpu_count(), "loadavg_end": [round(x, 2) for x in os.getloadavg()],
            "note": ("Same machine, runs alternating. Ours: env steps/s of the training loop from elapsed_s at the "
                     "last test (start-up and XLA compiling excluded); JaxMARL: the compiled make_train call (its "
                     "compile time is listed apart). Both include their own test episodes.")}
    res = {"meta": meta, "pairs": pairs, "comparison": compare(pairs)}
    write_report(a.out_dir, f"jaxmarl_side_by_side_{a.map}", res, markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
