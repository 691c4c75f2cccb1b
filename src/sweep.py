"""Run a grid of experiments (agent x scenario x seed) as independent Ray tasks, then summarise.

    python src/sweep.py --config=qmix --env-config=smax --agents rnn,grsn --maps 3m,8m --seeds 5 \\
        [--address ADDR] [--cpus-per-run 1] [--gpus-per-run 0] [--dry-run] with t_max=200000

Each grid point runs ``python src/main.py --config=C --env-config=E with agent=A
env_args.map_name=M seed=S name=N <extra with-args>`` in a subprocess inside a Ray task that
requests ``--cpus-per-run`` CPUs and ``--gpus-per-run`` GPUs (fractions allowed). Ray starts
locally (``ray.init()``) unless ``--address`` names a running cluster (``ray start --head``);
the repository must then be at the same path on every node.

``N`` = ``<config>_<agent>_<8-hex hash of (config, env-config, extra with-args)>``, so runs
of one setting share a sacred folder ``results/sacred/<env>/<map>/<N>/<id>/``. Resume: a grid
point whose sacred record there has status COMPLETED with the same seed, agent and scenario
is skipped; any other (failed, interrupted, missing) is run again. Logs of each run go to
``results/sweeps/logs/``. At the end the results module prints the Table-2 style summary of
the sweep's runs and writes it under ``results/sweeps/<sweep hash>/``.

``--seeds 5`` means seeds 0..4 (``--seed-start`` shifts them); ``--seeds 1,7,9`` lists them.
For control tasks the scenario key is ``env_args.key`` (``--env-config=pomdp|mujoco``), e.g.
``--config=td3 --env-config=pomdp --agents gru,grsn --maps Pendulum-P,Pendulum-V``.
"""
from __future__ import annotations

import argparse
import dataclasses
import glob
import hashlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

from utils.config import split_with_args

RAY_PIN = "ray==2.60.0"
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONTROL_ENVS = ("pomdp", "mujoco")
# keys the grid itself sets; an extra with-arg may not set them too
RESERVED = ("seed", "name")


class SweepError(ValueError):
    """Bad sweep arguments; the message names the cause and the fix."""


@dataclass(frozen=True)
class RunSpec:
    """One grid point: everything that makes a run what it is."""

    config: str
    env_config: str
    agent: str
    scenario: str
    seed: int
    overrides: Tuple[str, ...] = ()
    agent_key: str = "agent"
    scenario_key: str = "env_args.map_name"
    plumbing: Tuple[str, ...] = ()  # with-args that do not change the experiment (results path)

    @property
    def setting_hash(self) -> str:
        """8 hex digits identifying (config, env-config, extra overrides), the same for every seed/agent/map."""
        blob = json.dumps([self.config, self.env_config, sorted(self.overrides),
                           self.agent_key, self.scenario_key])
        return hashlib.sha1(blob.encode()).hexdigest()[:8]

    @property
    def name(self) -> str:
        """The sacred ``name`` of this run (folder under results/sacred/<env>/<map>/)."""
        return f"{self.config}_{self.agent}_{self.setting_hash}"

    @property
    def label(self) -> str:
        return f"{self.name} {self.scenario} seed={self.seed}"

    def with_args(self) -> List[str]:
        return [f"{self.agent_key}={self.agent}", f"{self.scenario_key}={self.scenario}",
                f"seed={self.seed}", f"name={self.name}", *self.overrides, *self.plumbing]

    def command(self, python: str = sys.executable, main: str = "src/main.py") -> List[str]:
        """The argv that runs this grid point."""
        return [python, main, f"--config={self.config}", f"--env-config={self.env_config}",
                "with", *self.with_args()]


# --------------------------------------------------------------------------- parsing

def split_list(text: str, what: str) -> List[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise SweepError(f"--{what} is empty; give a comma-separated list, e.g. --{what} a,b")
    if len(set(items)) != len(items):
        raise SweepError(f"--{what} lists an entry twice: {text}")
    return items


def parse_seeds(text: str, start: int = 0) -> List[int]:
    """``"5"`` -> [start .. start+4]; ``"1,7,9"`` -> [1, 7, 9]."""
    try:
        if "," in text:
            return [int(s) for s in split_list(text, "seeds")]
        n = int(text)
    except ValueError as exc:
        raise SweepError(f"--seeds must be a count (5) or a list (1,7,9), got '{text}'") from exc
    if n < 1:
        raise SweepError(f"--seeds must be >= 1, got {n}")
    return list(range(start, start + n))


def check_overrides(overrides: Sequence[str], reserved_keys: Sequence[str]) -> Tuple[str, ...]:
    """Validate extra ``key=value`` with-args: well-formed and not setting a grid key."""
    seen = set()
    for item in overrides:
        key, eq, _ = item.partition("=")
        if not eq or not key:
            raise SweepError(f"with-argument '{item}' is not key=value (e.g. t_max=200000)")
        if key in reserved_keys:
            raise SweepError(f"with-argument '{item}' sets '{key}', which the sweep grid sets; "
                             f"use --agents/--maps/--seeds instead")
        if key in seen:
            raise SweepError(f"with-argument key '{key}' is given twice")
        seen.add(key)
    return tuple(overrides)


def expand_grid(config: str, env_config: str, agents: Sequence[str], scenarios: Sequence[str],
                seeds: Sequence[int], overrides: Sequence[str] = (), agent_key: str = "agent",
                scenario_key: Optional[str] = None) -> List[RunSpec]:
    """Every (agent, scenario, seed) combination as a RunSpec, ordered seed-major so that an
    interrupted sweep has a few seeds of everything rather than all seeds of one cell."""
    if scenario_key is None:
        scenario_key = default_scenario_key(env_config)
    extra = check_overrides(overrides, (*RESERVED, agent_key, scenario_key))
    return [RunSpec(config, env_config, a, m, int(s), extra, agent_key, scenario_key)
            for s in seeds for m in scenarios for a in agents]


def default_scenario_key(env_config: str) -> str:
    return "env_args.key" if env_config in CONTROL_ENVS else "env_args.map_name"


# --------------------------------------------------------------------------- resume

def _dotted(config: Dict[str, Any], key: str) -> Any:
    cur: Any = config
    for part in key.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def find_completed(spec: RunSpec, sacred_root: str) -> Optional[str]:
    """The run folder of a COMPLETED sacred run of ``spec`` under ``sacred_root``, else None.

    Looks in ``<sacred_root>/*/<scenario>/<name>/*/`` and checks run.json's status and
    config.json's seed, agent, scenario and name.
    """
    pattern = os.path.join(glob.escape(sacred_root), "*", glob.escape(spec.scenario),
                           glob.escape(spec.name), "*", "run.json")
    for run_json in sorted(glob.glob(pattern)):
        run_dir = os.path.dirname(run_json)
        try:
            with open(run_json) as fh:
                status = json.load(fh).get("status")
            with open(os.path.join(run_dir, "config.json")) as fh:
                cfg = json.load(fh)
        except (OSError, ValueError):
            continue
        if (status == "COMPLETED" and cfg.get("seed") == spec.seed and cfg.get("name") == spec.name
                and str(_dotted(cfg, spec.agent_key)) == spec.agent
                and str(_dotted(cfg, spec.scenario_key)) == spec.scenario):
            return run_dir
    return None


def plan(specs: Sequence[RunSpec], sacred_root: str) -> Tuple[List[RunSpec], List[Tuple[RunSpec, str]]]:
    """Split the grid into ``(to_run, done)``; ``done`` pairs each finished spec with its folder."""
    to_run, done = [], []
    for spec in specs:
        found = find_completed(spec, sacred_root)
        if found is None:
            to_run.append(spec)
        else:
            done.append((spec, found))
    return to_run, done


def log_path(spec: RunSpec, log_dir: str) -> str:
    return os.path.join(log_dir, f"{spec.name}__{spec.scenario}__seed{spec.seed}.log")


# --------------------------------------------------------------------------- execution

def run_command(cmd: List[str], cwd: str, log_file: str) -> Dict[str, Any]:
    """Run ``cmd`` in ``cwd``, output to ``log_file``; returns returncode, seconds, log path.
    This is the body of each Ray task (Ray sets CUDA_VISIBLE_DEVICES for GPU requests)."""
    os.makedirs(os.path.dirname(log_file), exist_ok=True)
    start = time.time()
    with open(log_file, "w") as fh:
        fh.write("$ " + " ".join(cmd) + "\n")
        fh.flush()
        proc = subprocess.run(cmd, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT)
    return {"returncode": proc.returncode, "seconds": time.time() - start, "log": log_file,
            "host": os.uname().nodename}


def import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise SweepError(f"the sweep runs its grid on Ray, which is not installed ({exc}): "
                         f"`pip install {RAY_PIN}` (or use --dry-run to only print the plan)") from exc
    return ray


def execute(specs: Sequence[RunSpec], *, address: Optional[str], cpus_per_run: float,
            gpus_per_run: float, cwd: str, log_dir: str, main: str, python: str,
            num_cpus: Optional[int] = None) -> List[Tuple[RunSpec, Dict[str, Any]]]:
    """Run every spec as one Ray task; returns (spec, result) in completion order."""
    ray = import_ray()
    init_kw: Dict[str, Any] = {"include_dashboard": False, "log_to_driver": True}
    if address:
        init_kw["address"] = address
    elif num_cpus is not None:
        init_kw["num_cpus"] = num_cpus
    ray.init(**init_kw)
    try:
        cluster = ray.cluster_resources()
        if cpus_per_run > cluster.get("CPU", 0) or gpus_per_run > cluster.get("GPU", 0):
            raise SweepError(f"each run asks for {cpus_per_run} CPU / {gpus_per_run} GPU but the Ray "
                             f"cluster has {cluster.get('CPU', 0)} CPU / {cluster.get('GPU', 0)} GPU; "
                             f"lower --cpus-per-run/--gpus-per-run or add nodes")
        # ship run_command by value: Ray workers cannot import this module (src/ is not on their path)
        module = sys.modules[run_command.__module__]
        if module.__name__ != "__main__":
            from ray import cloudpickle
            cloudpickle.register_pickle_by_value(module)
        task = ray.remote(run_command).options(num_cpus=cpus_per_run, num_gpus=gpus_per_run,
                                               max_retries=0)
        pending = {task.remote(spec.command(python, main), cwd, log_path(spec, log_dir)): spec
                   for spec in specs}
        results = []
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            spec = pending.pop(ready[0])
            try:
                res = ray.get(ready[0])
            except Exception as exc:  # noqa: BLE001 - a task (worker) failure, not the run's
                res = {"returncode": -1, "seconds": 0.0, "log": log_path(spec, log_dir), "error": repr(exc)}
            state = "ok" if res["returncode"] == 0 else f"FAILED (exit {res['returncode']})"
            print(f"[sweep] {state}: {spec.label} ({res['seconds']:.0f} s, log {res['log']})", flush=True)
            results.append((spec, res))
        return results
    finally:
        ray.shutdown()


# --------------------------------------------------------------------------- CLI

def parse_args(argv: Sequence[str]) -> Tuple[argparse.Namespace, List[str]]:
    """Split at ``with``: options before it, extra with-args after it."""
    argv, extra = split_with_args(argv)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Extra sacred overrides follow `with`, e.g. `with t_max=200000`.")
    p.add_argument("--config", default="qmix", help="algorithm config (config/algs/X.yaml)")
    p.add_argument("--env-config", default="smax", help="environment config (config/envs/X.yaml)")
    p.add_argument("--agents", required=True, help="comma list, e.g. rnn,grsn")
    p.add_argument("--maps", required=True, help="comma list of scenarios (map names or env keys)")
    p.add_argument("--seeds", default="5", help="count (5 -> seeds 0..4) or list (1,7,9)")
    p.add_argument("--seed-start", type=int, default=0, help="first seed when --seeds is a count")
    p.add_argument("--agent-key", default="agent", help="config key the agent goes to (default agent)")
    p.add_argument("--map-key", default=None,
                   help="config key the scenario goes to (default env_args.map_name; env_args.key for pomdp/mujoco)")
    p.add_argument("--address", default=None, help="Ray cluster address (default: start Ray locally)")
    p.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local Ray instance (default: all)")
    p.add_argument("--cpus-per-run", type=float, default=1.0)
    p.add_argument("--gpus-per-run", type=float, default=0.0)
    p.add_argument("--results", default="results", help="local_results_path of the runs (default results)")
    p.add_argument("--metric", default="test_battle_won_mean", help="win-rate metric of the summary")
    p.add_argument("--main", default="src/main.py", help=argparse.SUPPRESS)  # tests swap in a stub
    p.add_argument("--dry-run", action="store_true", help="print the plan and commands, run nothing")
    return p.parse_args(argv), extra


def main(argv: Optional[Sequence[str]] = None) -> int:
    args, extra = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        specs = expand_grid(args.config, args.env_config, split_list(args.agents, "agents"),
                            split_list(args.maps, "maps"), parse_seeds(args.seeds, args.seed_start),
                            extra, args.agent_key, args.map_key)
        if any(o.startswith("local_results_path=") for o in extra):
            raise SweepError("set the results folder with --results, not local_results_path=")
        results_dir = os.path.abspath(args.results)
        if os.path.realpath(results_dir) != os.path.realpath(os.path.join(REPO_ROOT, "results")):
            specs = [dataclasses.replace(s, plumbing=(f"local_results_path={results_dir}",)) for s in specs]
        sacred_root = os.path.join(results_dir, "sacred")
        to_run, done = plan(specs, sacred_root)
        print(f"[sweep] {len(specs)} runs in the grid: {len(done)} already COMPLETED (skipped), "
              f"{len(to_run)} to run", flush=True)
        for spec, where in done:
            print(f"[sweep] skip {spec.label}: {where}")
        sweep_id = specs[0].setting_hash
        log_dir = os.path.join(results_dir, "sweeps", "logs")
        if args.dry_run:
            for spec in to_run:
                print(" ".join(spec.command(sys.executable, args.main)))
            return 0
        failed = []
        if to_run:
            outcomes = execute(to_run, address=args.address, cpus_per_run=args.cpus_per_run,
                               gpus_per_run=args.gpus_per_run, cwd=REPO_ROOT, log_dir=log_dir,
                               main=args.main, python=sys.executable, num_cpus=args.num_cpus)
            failed = [(s, r) for s, r in outcomes if r["returncode"] != 0]
    except SweepError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    import results as results_mod

    out_dir = os.path.join(results_dir, "sweeps", sweep_id)
    names = sorted({s.name for s in specs})
    if os.path.isdir(sacred_root):
        md, _ = results_mod.summarize([sacred_root], out_dir, metric=args.metric, names=names)
        print(md, end="")
        print(f"[sweep] summary written to {out_dir}")
    for spec, res in failed:
        print(f"[sweep] FAILED {spec.label}: exit {res['returncode']}, see {res['log']}"
              + (f" ({res['error']})" if "error" in res else ""), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
