"""Time to win: process CPU-seconds (and wall seconds) from process start until the test win rate
holds >= 0.8 (and >= 0.9) over three consecutive tests, this project's QMIX vs JaxMARL's qmix_rnn.

Per seed (``--seeds``), alternating which side runs first, one run each on ``--map`` (SMAX):

* ours: ``src/main.py --config=qmix --env-config=smax`` in a child process (one torch thread,
  ``test_nepisode`` >= 64 test episodes every ``--test-interval`` env steps, plus ``--ours-set``
  overrides). A small driver wraps the run: at every ``test_battle_won_mean`` it records the
  process's CPU-seconds (``getrusage`` self + children, all threads, from process start, imports
  and JAX compiling included), its wall seconds and ``t_env``; it ends the run once the
  highest threshold is reached or at ``--max-steps``.
* JaxMARL: ``baselines/QLearning/qmix_rnn.py``'s ``make_train`` (its ``ql_rnn_smax`` config at our
  network sizes, as in ``benchmarks/jaxmarl_side_by_side.py``) in the python of a separate venv
  (``--jaxmarl-python``) from a JaxMARL checkout (``--jaxmarl``, e.g. the ``fetch`` of
  github:FLAIROx/JaxMARL), ``TEST_NUM_ENVS`` >= 64. Its training is one compiled scan of
  ``--max-steps`` env steps; the per-update metrics reach the host through the baseline's
  ``wandb.log`` callback, where the driver records the same CPU and wall clocks (the callback's
  own cost is inside the numbers).

``first_sustained`` finds the first test that completes ``--consecutive`` tests in a row at or above a
threshold; the time to that threshold is that test's CPU / wall seconds. Reported: per run the
curve and the times; ``ratio_cpu_s_to_0.8`` = median over seeds of ours / JaxMARL (target <= 0.5),
likewise for wall seconds and 0.9. Writes ``benchmarks/results/time_to_win_<map>.json`` and ``.md``.

    nice -n 5 python benchmarks/time_to_win.py --jaxmarl /path/JaxMARL --jaxmarl-python /path/venv/bin/python
    python benchmarks/time_to_win.py --sides ours --seeds 1 --max-steps 300000     # ours only
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional, Sequence

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "src"))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

from jaxmarl_config import apply_sets, qmix_overrides  # noqa: E402  (benchmarks/jaxmarl_config.py)
from report import write_report  # noqa: E402

THRESHOLDS = (0.8, 0.9)
MIN_TEST_EPISODES = 64

# Child process of our run (argv: root, json of options, output jsonl). Patches Logger.log_stat to
# record the clocks at every test, then runs src/main.py as the command line would.
OURS_DRIVER = r'''
import json, os, resource, runpy, sys, time
T0 = time.time()
root, opts, out_path = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
sys.path.insert(0, os.path.join(root, "src"))
sys.path.insert(0, os.path.join(root, "benchmarks"))
from time_to_win import first_sustained
import utils.logging as logging_mod

out = open(out_path, "w")
wins = []
orig = logging_mod.Logger.log_stat


def cpu_s():
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def log_stat(self, key, value, t, *args, **kwargs):
    result = orig(self, key, value, t, *args, **kwargs)
    if key == "test_battle_won_mean":
        wins.append(float(value))
        out.write(json.dumps({"t_env": int(t), "win": float(value), "cpu_s": cpu_s(),
                              "wall_s": time.time() - T0}) + "\n")
        out.flush()
        if first_sustained(wins, opts["stop_at"], opts["consecutive"]) is not None:
            out.close()
            os._exit(0)
    return result


logging_mod.Logger.log_stat = log_stat
sys.argv = [os.path.join(root, "src", "main.py")] + opts["argv"]
runpy.run_path(sys.argv[0], run_name="__main__")
out.close()
'''

# Runs inside the JaxMARL venv (argv: checkout, json of overrides, output jsonl, this repo's root,
# json of stop options). Records the clocks at every update's metrics callback; ends the process
# once the highest threshold is held (the compiled scan cannot stop itself).
JAXMARL_DRIVER = r'''
import copy, json, os, resource, sys, time
T0 = time.time()
checkout, overrides, out_path, root, stop = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], sys.argv[4], json.loads(sys.argv[5])
sys.path.insert(0, os.path.join(checkout, "baselines", "QLearning"))
sys.path.insert(0, checkout)
sys.path.insert(0, os.path.join(root, "benchmarks"))
from time_to_win import first_sustained
import jax, numpy as np
from omegaconf import OmegaConf
import qmix_rnn
cfg_dir = os.path.join(checkout, "baselines", "QLearning", "config")
config = OmegaConf.to_container(OmegaConf.load(os.path.join(cfg_dir, "config.yaml")))
config.update(OmegaConf.to_container(OmegaConf.load(os.path.join(cfg_dir, "alg", "ql_rnn_smax.yaml"))))
kwargs = overrides.pop("ENV_KWARGS", {})
config.update(overrides)
config["ENV_KWARGS"].update(kwargs)
out = open(out_path, "w")
wins = []
state = {"every": 1}


def cpu_s():
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


class _Recorder:
    """Stands in for wandb: the baseline reports each update's metrics through wandb.log."""

    def log(self, metrics):
        m = {k: np.asarray(v).tolist() for k, v in metrics.items()
             if k in ("env_step", "update_steps", "test_returned_won_episode")}
        m.update(cpu_s=cpu_s(), wall_s=time.time() - T0)
        out.write(json.dumps(m) + "\n")
        if int(m["update_steps"]) % state["every"] == 0 and "test_returned_won_episode" in m:
            wins.append(float(m["test_returned_won_episode"]))
            if first_sustained(wins, stop["stop_at"], stop["consecutive"]) is not None:
                out.write(json.dumps({"stopped": True}) + "\n")
                out.close()
                os._exit(0)


qmix_rnn.wandb = _Recorder()
config["WANDB_MODE"] = "record"   # any value but "disabled" makes make_train call wandb.log per update
env, env_name = qmix_rnn.env_from_config(copy.deepcopy(config))
rng = jax.random.PRNGKey(int(config["SEED"]))
train = qmix_rnn.make_train(config, env)          # sets config["NUM_UPDATES"]
state["every"] = max(int(config["NUM_UPDATES"] * config["TEST_INTERVAL"]), 1)
out.write(json.dumps({"header": True, "every": state["every"], "jax": jax.__version__}) + "\n")
compiled = jax.jit(train).lower(rng).compile()
jax.block_until_ready(compiled(rng))
out.write(json.dumps({"done": True, "cpu_s": cpu_s(), "wall_s": time.time() - T0}) + "\n")
out.close()
'''


def first_sustained(wins: Sequence[float], threshold: float, consecutive: int = 3) -> Optional[int]:
    """Index of the first test that completes ``consecutive`` tests in a row with win rate >= ``threshold``
    (None if none does). ``wins`` in test order."""
    if consecutive < 1:
        raise ValueError(f"consecutive must be >= 1, got {consecutive}")
    run = 0
    for i, w in enumerate(wins):
        run = run + 1 if w >= threshold else 0
        if run >= consecutive:
            return i
    return None


def time_to(tests: List[Dict[str, Any]], threshold: float, consecutive: int) -> Optional[Dict[str, float]]:
    """``{"t_env", "cpu_s", "wall_s"}`` of the test where ``threshold`` is first held ``consecutive`` times."""
    i = first_sustained([t["win"] for t in tests], threshold, consecutive)
    if i is None:
        return None
    return {"t_env": tests[i]["t_env"], "cpu_s": tests[i]["cpu_s"], "wall_s": tests[i]["wall_s"]}


def jaxmarl_tests(lines: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The test records of a JaxMARL run: updates whose index is a multiple of its test period
    (from the run's header record; the run ends with a ``done`` or ``stopped`` record)."""
    header = [ln for ln in lines if ln.get("header")]
    if not header or not (lines[-1].get("done") or lines[-1].get("stopped")):
        raise RuntimeError("the JaxMARL run did not finish (no header or no 'done' / 'stopped' record)")
    every = max(int(header[0]["every"]), 1)
    return [{"t_env": int(ln["env_step"]), "win": float(ln["test_returned_won_episode"]), "cpu_s": ln["cpu_s"],
             "wall_s": ln["wall_s"]}
            for ln in lines if "update_steps" in ln and "test_returned_won_episode" in ln
            and int(ln["update_steps"]) % every == 0]


def read_jsonl(path: str) -> List[Dict[str, Any]]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def ours_run(a: argparse.Namespace, seed: int, work: str) -> Dict[str, Any]:
    """Our QMIX in a child process until the highest threshold is held or ``--max-steps``."""
    results = os.path.join(work, f"ours_{seed}")
    argv = ["--config=qmix", "--env-config=smax", "with", f"env_args.map_name={a.map}", f"t_max={a.ours_max_steps or a.max_steps}",
            f"seed={seed}", "save_model=False", f"local_results_path={results}", f"test_interval={a.test_interval}",
            f"test_nepisode={a.test_nepisode}", "torch_threads=1", f"name=time_to_win_{seed}"] + list(a.ours_set)
    out_path = os.path.join(work, f"ours_{seed}.jsonl")
    driver = os.path.join(work, "ours_driver.py")
    with open(driver, "w") as f:
        f.write(OURS_DRIVER)
    opts = {"argv": argv, "stop_at": a.stop_at, "consecutive": a.consecutive}
    env = dict(os.environ, OMP_NUM_THREADS="1")
    subprocess.run([sys.executable, driver, ROOT, json.dumps(opts), out_path], check=True, cwd=ROOT, env=env,
                   stdout=subprocess.DEVNULL)
    return {"tests": read_jsonl(out_path), "argv": argv}


def jaxmarl_run(a: argparse.Namespace, seed: int, work: str) -> Dict[str, Any]:
    """JaxMARL's qmix_rnn for ``--max-steps`` env steps in its own venv, clocks at every update."""
    from utils.config import build_config

    ours = build_config("qmix", "smax")
    overrides = qmix_overrides(ours, a.map, a.max_steps, a.jaxmarl_envs, seed, a.jaxmarl_lr)
    overrides.update({"TEST_NUM_ENVS": a.test_nepisode, "TEST_INTERVAL": a.jaxmarl_test_interval})
    apply_sets(overrides, a.jaxmarl_set)
    driver = os.path.join(work, "jaxmarl_driver.py")
    with open(driver, "w") as f:
        f.write(JAXMARL_DRIVER)
    out_path = os.path.join(work, f"jaxmarl_{seed}.jsonl")
    stop = {"stop_at": a.stop_at, "consecutive": a.consecutive}
    subprocess.run([a.jaxmarl_python, driver, os.path.abspath(a.jaxmarl), json.dumps(overrides), out_path, ROOT,
                    json.dumps(stop)], check=True, cwd=a.jaxmarl, stdout=subprocess.DEVNULL)
    lines = read_jsonl(out_path)
    return {"tests": jaxmarl_tests(lines), "overrides": overrides, "end": lines[-1]}


def summarise(runs: Dict[str, Dict[int, Dict[str, Any]]], consecutive: int) -> Dict[str, Any]:
    """Times to each threshold per run, and the medians over seeds of ours / JaxMARL."""
    out: Dict[str, Any] = {}
    for side, by_seed in runs.items():
        for seed, run in by_seed.items():
            run["time_to"] = {str(th): time_to(run["tests"], th, consecutive) for th in THRESHOLDS}
    for th in THRESHOLDS:
        for clock in ("cpu_s", "wall_s"):
            ratios = []
            for seed in sorted(set(runs.get("ours", {})) & set(runs.get("jaxmarl", {}))):
                o, j = runs["ours"][seed]["time_to"][str(th)], runs["jaxmarl"][seed]["time_to"][str(th)]
                if o is not None and j is not None:
                    ratios.append(o[clock] / j[clock])
            out[f"ratio_{clock}_to_{th}"] = statistics.median(ratios) if ratios else None
            out[f"ratio_{clock}_to_{th}_per_seed"] = ratios
    return out


def markdown(res: Dict[str, Any]) -> str:
    m = res["meta"]
    lines = [f"# Time to win on SMAX {m['map']} ({m['date']})", "",
             f"Process CPU-seconds and wall seconds from process start to the first test that completes "
             f"{m['consecutive']} consecutive tests at or above the win rate, >= {m['test_nepisode']} test episodes per "
             f"test. Seeds {m['seeds']}, sides alternating. `{m['command']}`", "",
             "| side | seed | CPU-s to 0.8 | wall-s to 0.8 | env steps to 0.8 | CPU-s per 10k env steps | "
             "CPU-s to 0.9 | env steps to 0.9 |",
             "|---|---|---|---|---|---|---|---|"]
    fmt = lambda d, k: "-" if d is None else (f"{d[k]:.0f}")  # noqa: E731
    for side, by_seed in res["runs"].items():
        for seed, run in sorted(by_seed.items()):
            a, b = run["time_to"]["0.8"], run["time_to"]["0.9"]
            per = "-" if a is None else f"{1e4 * a['cpu_s'] / a['t_env']:.1f}"
            lines.append(f"| {side} | {seed} | {fmt(a, 'cpu_s')} | {fmt(a, 'wall_s')} | {fmt(a, 't_env')} | {per} | "
                         f"{fmt(b, 'cpu_s')} | {fmt(b, 't_env')} |")
    s = res["summary"]
    r = s.get("ratio_cpu_s_to_0.8")
    lines += ["", f"- ours / JaxMARL CPU-s to 0.8, median over seeds: **{'-' if r is None else f'{r:.2f}'}** (target <= 0.5)"]
    w = s.get("ratio_wall_s_to_0.8")
    lines.append(f"- ours / JaxMARL wall-s to 0.8: {'-' if w is None else f'{w:.2f}'} (wall time depends on the "
                 f"other jobs of the machine; CPU-s do far less)")
    stop = m.get("stop_at")
    if stop is not None and stop < max(THRESHOLDS):
        lines.append(f"- Runs ended once {stop} was held, so '-' under 0.9 means not measured, not never reached.")
    lines.append("- CPU-s per 10k env steps = CPU-s to 0.8 / env steps to 0.8 (start-up, JAX compiling and the "
                 "tests included).")
    return "\n".join(lines) + "\n"


def doc_section(res: Optional[Dict[str, Any]]) -> str:
    """The docs/performance.md section: the time-to-win table from the JSON record (if any)."""
    if res is None:
        return ("_Not run at full scale yet: no `benchmarks/results/time_to_win_<map>.json` (the command is "
                "above)._")
    return markdown(res).split("\n", 2)[2]


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--map", default="3m")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--sides", nargs="+", choices=("ours", "jaxmarl"), default=["ours", "jaxmarl"])
    p.add_argument("--max-steps", type=int, default=1_000_000, help="env step budget of every run")
    p.add_argument("--ours-max-steps", type=int, default=0, help="ours: env step budget (0 = --max-steps)")
    p.add_argument("--consecutive", type=int, default=3)
    p.add_argument("--stop-at", type=float, default=max(THRESHOLDS),
                   help="end a run once this win rate is held (0.8 saves time; 0.9 is then reported only if "
                   "reached by then)")
    p.add_argument("--test-interval", type=int, default=10000, help="ours: env steps between tests")
    p.add_argument("--test-nepisode", type=int, default=MIN_TEST_EPISODES, help="test episodes per test (both sides)")
    p.add_argument("--ours-set", nargs="*", default=[], help="extra `with` overrides for src/main.py")
    p.add_argument("--jaxmarl", default="", help="JaxMARL checkout (has baselines/QLearning/qmix_rnn.py)")
    p.add_argument("--jaxmarl-python", default="", help="python of a venv where that checkout's baselines run")
    p.add_argument("--jaxmarl-envs", type=int, default=16)
    p.add_argument("--jaxmarl-lr", type=float, default=0.005)
    p.add_argument("--jaxmarl-test-interval", type=float, default=0.01, help="JaxMARL TEST_INTERVAL (fraction of updates)")
    p.add_argument("--jaxmarl-set", nargs="*", default=[])
    p.add_argument("--out-dir", default=os.path.join(ROOT, "benchmarks", "results"))
    p.add_argument("--doc", action="store_true", help="only rewrite the time_to_win section of "
                   "docs/performance.md from time_to_win_<map>.json")
    a = p.parse_args(argv)
    if a.doc:
        from doc_section import load, update_page
        update_page("time_to_win", doc_section(load(f"time_to_win_{a.map}", a.out_dir)))
        return 0
    if a.test_nepisode < MIN_TEST_EPISODES:
        raise SystemExit(f"--test-nepisode must be >= {MIN_TEST_EPISODES} (the issue's test size), got {a.test_nepisode}")
    if "jaxmarl" in a.sides:
        if not os.path.isfile(os.path.join(a.jaxmarl, "baselines", "QLearning", "qmix_rnn.py")):
            raise SystemExit(f"--jaxmarl '{a.jaxmarl}': no baselines/QLearning/qmix_rnn.py there; pass a JaxMARL "
                             f"checkout or --sides ours")
        if not os.access(a.jaxmarl_python, os.X_OK):
            raise SystemExit(f"--jaxmarl-python '{a.jaxmarl_python}' is not an executable python")
    runs: Dict[str, Dict[int, Dict[str, Any]]] = {side: {} for side in a.sides}
    with tempfile.TemporaryDirectory(prefix="time_to_win_") as work:
        for i, seed in enumerate(a.seeds):
            for side in (a.sides if i % 2 == 0 else a.sides[::-1]):
                t0 = time.perf_counter()
                runs[side][seed] = (ours_run if side == "ours" else jaxmarl_run)(a, seed, work)
                print(f"[seed {seed}] {side}: {len(runs[side][seed]['tests'])} tests, "
                      f"{time.perf_counter() - t0:.0f} s", flush=True)
    summary = summarise(runs, a.consecutive)
    meta = {"date": time.strftime("%Y-%m-%d %H:%M"), "map": a.map, "seeds": a.seeds, "max_steps": a.max_steps,
            "ours_max_steps": a.ours_max_steps or a.max_steps,
            "consecutive": a.consecutive, "stop_at": a.stop_at, "test_nepisode": a.test_nepisode, "cpu_count": os.cpu_count(),
            "command": "python benchmarks/time_to_win.py " + " ".join(sys.argv[1:] if argv is None else argv)}
    res = {"meta": meta, "runs": runs, "summary": summary}
    write_report(a.out_dir, f"time_to_win_{a.map}", res, markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
