"""Run an experiment's points on Ray, each a ``src/main.py`` process that resumes exactly.

    python src/experiment.py run SPEC [--results DIR] [--records DIR] [--address ADDR]
                                      [--deadline DURATION] [--max-parallel N]

* Each point trains in its own folder ``<results>/<experiment>/<point id>/`` (sacred records,
  checkpoints, console log). Checkpoints hold the replay (``save_buffer=True``) every
  ``checkpoint_interval`` steps, so that a point always resumes exactly from its newest complete
  checkpoint (``checkpoint_path=``); replays of older checkpoints are pruned, and a finished point
  keeps only its networks.
* A point whose record exists is done and never runs again. When training has finished the final
  checkpoint is re-evaluated on ``protocol.absolute_episodes`` episodes and the record is written
  (atomically) to ``<records>/<experiment>/<point id>.json``.
* Stopping: SIGTERM / Ctrl-C to the launcher, or the ``--deadline``, makes every running point's
  process save a last checkpoint and stop (SIGTERM to main.py; killed after ``STOP_GRACE_S``); no
  new point starts. The same command continues the grid. A point's process also gets SIGTERM when
  its Ray worker dies (Linux parent-death signal), and a lock file keeps a retried point from
  starting before the old process has saved and exited.
* Failures: a point whose process fails, or whose worker or node dies, is retried up to
  ``spec.retries`` times by Ray; each retry resumes from the newest checkpoint.
* Ray: local by default (``ray.init`` with ``--max-parallel`` CPUs), a running cluster with
  ``--address``; the repository and the results folder must be at the same path on every node.
"""
from __future__ import annotations

import ctypes
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from typing import Any, Dict, List, Optional, Tuple

from experiments.records import Record, load_records, record_path, write_record
from experiments.sacred_runs import SacredRun, find_runs, join_segments
from experiments.spec import Point, Spec

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(SRC)
STOP_GRACE_S = 300.0
POLL_S = 0.5
STOP_FILE = "STOP"
REPLAY_PARTS = ("buffer", "replay")


class LauncherError(RuntimeError):
    """A grid that cannot run as asked; the message names the cause and the fix."""


# --------------------------------------------------------------------------- one point (runs in a Ray worker)

def point_dir(results: str, point: Point) -> str:
    return os.path.join(results, point.experiment, point.id)


def newest_checkpoint(workdir: str) -> Optional[Tuple[str, int]]:
    """``(model dir, t_env)`` of the newest complete checkpoint of any training part of a point."""
    from utils.checkpoint import CheckpointError, find_checkpoint

    models = os.path.join(workdir, "models")
    best: Optional[Tuple[str, int]] = None
    if not os.path.isdir(models):
        return None
    for token in sorted(os.listdir(models)):
        path = os.path.join(models, token)
        if not os.path.isdir(path) or token.startswith("."):
            continue
        try:
            _, step = find_checkpoint(path)
        except (CheckpointError, FileNotFoundError, OSError, ValueError):
            continue
        if best is None or step > best[1]:
            best = (path, step)
    return best


def prune_replays(workdir: str, keep: Optional[str]) -> int:
    """Drop the replay parts of every complete checkpoint step of a point except the step folder
    ``keep`` (the resume point); returns the bytes freed."""
    from utils.checkpoint import drop_part, incomplete_reason

    freed = 0
    models = os.path.join(workdir, "models")
    if not os.path.isdir(models):
        return 0
    for token in os.listdir(models):
        tdir = os.path.join(models, token)
        if not os.path.isdir(tdir):
            continue
        for step in os.listdir(tdir):
            sdir = os.path.join(tdir, step)
            if not step.isdigit() or os.path.realpath(sdir) == (os.path.realpath(keep) if keep else None):
                continue
            if incomplete_reason(sdir) is None:
                for part in REPLAY_PARTS:
                    freed += drop_part(sdir, part)
    return freed


def training_runs(workdir: str) -> Tuple[List[SacredRun], List[Any]]:
    runs, skipped = find_runs(os.path.join(workdir, "sacred"))
    return [r for r in runs if not r.config.get("evaluate")], skipped


def finished(runs: List[SacredRun], t_max: int) -> bool:
    """A point is trained when its newest training part completed (it ran to its t_max)."""
    if not runs:
        return False
    last = max(runs, key=lambda r: (r.start_time, r.path))
    return last.status == "COMPLETED" and int(last.config.get("t_max", -1)) == t_max


def _set_parent_death_signal() -> None:
    """In the child: get SIGTERM when the Ray worker that started us dies (Linux)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _plumbing(workdir: str, spec_interval: int) -> List[str]:
    """`with` arguments that place a point's files and make it resumable; they do not change what is trained."""
    return [f"local_results_path={workdir}", "save_model=True", f"save_model_interval={spec_interval}",
            "save_buffer=True", "torch_threads=1"]


def _jax_cache(results: str, point: Point) -> List[str]:
    return [f"env_args.jax_cache_dir={os.path.join(results, 'jax_cache')}"] if point.env_config == "smax" else []


def _run_main(args: List[str], log_path: str, stop: "StopSignal", lock_fd: int) -> Tuple[int, bool]:
    """Run ``python src/main.py args`` until it exits; on a stop request send SIGTERM, wait up to
    STOP_GRACE_S for its last checkpoint, then kill. Returns ``(exit code, stopped)``."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    with open(log_path, "a") as log:
        log.write(f"\n$ python src/main.py {' '.join(args)}\n")
        log.flush()
        proc = subprocess.Popen([sys.executable, os.path.join(SRC, "main.py")] + args, cwd=REPO, stdout=log,
                                stderr=subprocess.STDOUT, env=env, pass_fds=(lock_fd,),
                                preexec_fn=_set_parent_death_signal)
        stopped_at: Optional[float] = None
        while True:
            try:
                code = proc.wait(timeout=POLL_S)
                return code, stopped_at is not None
            except subprocess.TimeoutExpired:
                pass
            if stopped_at is None and stop.requested():
                proc.send_signal(signal.SIGTERM)
                stopped_at = time.time()
            elif stopped_at is not None and time.time() - stopped_at > STOP_GRACE_S:
                proc.kill()


class StopSignal:
    """A stop request for running points: the experiment's STOP file, or the deadline (epoch seconds)."""

    def __init__(self, stop_file: str, deadline_at: Optional[float]):
        self.stop_file, self.deadline_at = stop_file, deadline_at

    def requested(self) -> bool:
        return os.path.exists(self.stop_file) or (self.deadline_at is not None and time.time() >= self.deadline_at)


def _acquire(lock_path: str, stop: StopSignal) -> Optional[int]:
    """An exclusive lock on a point's folder (None when a stop came first): a retried point waits
    here until an earlier process of the same point has saved and exited."""
    fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o644)
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if stop.requested():
                os.close(fd)
                return None
            time.sleep(POLL_S)


def evaluate_final(point: Point, workdir: str, model_dir: str, episodes: int, results: str,
                   stop: StopSignal, lock_fd: int) -> Optional[Dict[str, Any]]:
    """Final metric 2: the final checkpoint on ``episodes`` test episodes (its own sacred record)."""
    eval_dir = os.path.join(workdir, "eval")
    runs, _ = find_runs(os.path.join(eval_dir, "sacred"))
    done = [r for r in runs if r.status == "COMPLETED"]
    if not done:
        args = [f"--config={point.config}", f"--env-config={point.env_config}", "with", "evaluate=True",
                f"checkpoint_path={model_dir}", f"test_nepisode={episodes}", f"local_results_path={eval_dir}",
                "save_model=False", "torch_threads=1"] + _jax_cache(results, point)
        code, stopped = _run_main(args, os.path.join(workdir, "eval.log"), stop, lock_fd)
        if stopped:
            return None
        if code != 0:
            raise RuntimeError(f"evaluating {point.id} failed (exit {code}); see {workdir}/eval.log")
        runs, _ = find_runs(os.path.join(eval_dir, "sacred"))
        done = [r for r in runs if r.status == "COMPLETED"]
    run = max(done, key=lambda r: (r.start_time, r.path))
    metric = "test_battle_won_mean" if point.env_config in ("smax", "sc2") else "test_return_mean"
    steps, values = run.curves.get(metric, ([], []))
    if not values:
        raise RuntimeError(f"the evaluation of {point.id} logged no {metric} ({run.path})")
    return {"episodes": episodes, "value": float(values[-1]), "checkpoint": os.path.relpath(model_dir, workdir)}


ENERGY_KEYS = ("env", "agent", "seed", "t_env", "network", "convention", "decisions", "mlp_k", "rnn_k", "snn_k",
               "mixer_k", "energy_kpj", "energy_mem_kpj", "firing_rate", "mac_ops", "ac_ops", "weight_reads")


def final_energy(model_dir: str) -> List[Dict[str, Any]]:
    """Energy rows of a point's final networks (``energy.checkpoints``), without the per-layer detail."""
    from energy.checkpoints import table_from_checkpoints

    rows = table_from_checkpoints([model_dir])["rows"]
    return [{k: row.get(k) for k in ENERGY_KEYS} for row in rows]


def build_record(spec: Spec, point: Point, runs: List[SacredRun], absolute: Optional[Dict[str, Any]],
                 wall_s: float) -> Record:
    curves = join_segments(runs)
    tests = {k: {"T": list(s), "value": list(v)} for k, (s, v) in curves.items() if k.startswith("test_")}
    steps = [s[-1] for s, _ in curves.values() if s]
    return Record(experiment=spec.name, point=point.id, scenario=point.scenario, method=point.method,
                  agent=point.agent, variant=point.variant, seed=point.seed, command=point.command(),
                  t_max=point.t_max, t_env=max(steps) if steps else 0, status="COMPLETED",
                  metric=spec.protocol.metric, curves=tests, absolute=absolute, wall_s=round(wall_s, 1),
                  segments=len(runs), source="launcher")


def run_point(spec_path: str, point_id: str, results: str, records: str, deadline_at: Optional[float]
              ) -> Dict[str, Any]:
    """Train (or continue) one point, re-evaluate its final checkpoint and write its record.
    Returns ``{"point", "status": done | stopped | not started, ...}``; raises on a failure (Ray retries)."""
    from experiments.spec import load_spec

    spec = load_spec(spec_path, validate_points=False)
    point = spec.point(point_id)
    stop = StopSignal(os.path.join(results, spec.name, STOP_FILE), deadline_at)
    if os.path.exists(record_path(records, spec.name, point.id)):
        return {"point": point.id, "status": "done", "note": "record exists"}
    if stop.requested():
        return {"point": point.id, "status": "not started"}
    workdir = point_dir(results, point)
    os.makedirs(workdir, exist_ok=True)
    lock_fd = _acquire(os.path.join(workdir, ".lock"), stop)
    if lock_fd is None:
        return {"point": point.id, "status": "not started"}
    try:
        start = time.time()
        runs, _ = training_runs(workdir)
        while not finished(runs, point.t_max):
            resume = newest_checkpoint(workdir)
            if resume is not None:
                from utils.checkpoint import find_checkpoint
                prune_replays(workdir, keep=find_checkpoint(resume[0])[0])
            args = point.command() + _plumbing(workdir, spec.checkpoint_interval) + _jax_cache(results, point)
            if resume is not None:
                args.append(f"checkpoint_path={resume[0]}")
            code, stopped = _run_main(args, os.path.join(workdir, "train.log"), stop, lock_fd)
            runs, _ = training_runs(workdir)
            if stopped:
                got = newest_checkpoint(workdir)
                return {"point": point.id, "status": "stopped", "t_env": got[1] if got else 0}
            if code != 0:
                raise RuntimeError(f"point {point.id}: main.py exited with {code}; see {workdir}/train.log")
            if not finished(runs, point.t_max):
                raise RuntimeError(f"point {point.id}: main.py exited 0 but its record is not COMPLETED at "
                                   f"t_max={point.t_max}; see {workdir}/train.log")
        final = newest_checkpoint(workdir)
        absolute = None
        if spec.protocol.absolute_episodes > 0:
            if final is None:
                raise RuntimeError(f"point {point.id} finished without a checkpoint to re-evaluate")
            absolute = evaluate_final(point, workdir, final[0], spec.protocol.absolute_episodes, results, stop,
                                      lock_fd)
            if absolute is None:
                return {"point": point.id, "status": "stopped", "t_env": final[1]}
        energy = final_energy(final[0]) if spec.protocol.energy and final is not None else None
        record = build_record(spec, point, runs, absolute, _wall(runs, time.time() - start))
        record.energy = energy
        write_record(records, record)
        prune_replays(workdir, keep=None)
        return {"point": point.id, "status": "done", "t_env": record.t_env}
    finally:
        os.close(lock_fd)


def _wall(runs: List[SacredRun], fallback: float) -> float:
    total = 0.0
    for r in runs:
        steps, values = r.curves.get("elapsed_s", ([], []))
        total += values[-1] if values else 0.0
    return total or fallback


# --------------------------------------------------------------------------- the grid (driver)

def parse_duration(text: Optional[str]) -> Optional[float]:
    """``90``, ``90s``, ``45m``, ``2h``, ``1h30m`` -> seconds; None for None."""
    if text is None:
        return None
    import re

    m = re.fullmatch(r"\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s?)?\s*", text)
    if not m or not any(m.groups()):
        raise LauncherError(f"--deadline {text!r}: give a duration like 90s, 45m, 2h or 1h30m")
    h, mi, s = (float(g) if g else 0.0 for g in m.groups())
    return h * 3600 + mi * 60 + s


def point_state(spec: Spec, point: Point, results: str, records: str) -> Tuple[str, int]:
    """``(done | partial | left, t_env reached)`` of a point, from its record and checkpoints."""
    if os.path.exists(record_path(records, spec.name, point.id)):
        return "done", point.t_max
    workdir = point_dir(results, point)
    got = newest_checkpoint(workdir) if os.path.isdir(workdir) else None
    return ("partial", got[1]) if got else ("left", 0)


def status_lines(spec: Spec, results: str, records: str) -> List[str]:
    states = [(p, *point_state(spec, p, results, records)) for p in spec.points]
    recs, skipped = load_records(records, spec.name)
    done = sum(1 for _, s, _ in states if s == "done")
    partial = [(p, t) for p, s, t in states if s == "partial"]
    steps_total = sum(p.t_max for p in spec.points)
    steps_done = sum(t for _, _, t in states)
    lines = [f"{spec.name}: {done} done, {len(partial)} partly trained, "
             f"{len(spec.points) - done - len(partial)} not started, of {len(spec.points)} points "
             f"({100.0 * steps_done / max(steps_total, 1):.1f} % of {steps_total:,} env steps)"]
    lines += [f"  partial {p.id}: {t:,} / {p.t_max:,}" for p, t in partial]
    lines += [f"  skipped record {os.path.basename(s.path)}: {s.reason}" for s in skipped]
    rates = [r.wall_s / max(r.t_env, 1) for r in recs if r.wall_s and r.source == "launcher"]
    if rates:
        left = steps_total - steps_done
        lines.append(f"  ETA at one point at a time: {sum(rates) / len(rates) * left / 3600:.1f} h "
                     f"(measured {1e4 * sum(rates) / len(rates):.1f} s per 10k steps)")
    return lines


def run_grid(spec: Spec, results: str, records: str, address: Optional[str] = None,
             deadline_s: Optional[float] = None, max_parallel: Optional[int] = None,
             only: Optional[List[str]] = None, log=print) -> int:
    """Run every point of ``spec`` without a record on Ray; returns an exit code (0: grid complete,
    3: stopped or deadline with points left, 1: points failed after their retries)."""
    import ray

    results, records = os.path.abspath(results), os.path.abspath(records)
    stop_file = os.path.join(results, spec.name, STOP_FILE)
    os.makedirs(os.path.dirname(stop_file), exist_ok=True)
    if os.path.exists(stop_file):
        os.remove(stop_file)
    deadline_at = time.time() + deadline_s if deadline_s is not None else None
    todo = [p for p in spec.points if not os.path.exists(record_path(records, spec.name, p.id))
            and (only is None or p.id in only)]
    if not todo:
        log(f"{spec.name}: every point has its record in {records}/{spec.name}; nothing to run")
        return 0
    parallel = max_parallel or max(1, int((os.cpu_count() or 1) // max(spec.resources["cpus"], 1)))
    env_vars = {"PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""),
                "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python"}
    init_kwargs: Dict[str, Any] = dict(runtime_env={"env_vars": env_vars}, include_dashboard=False,
                                       log_to_driver=False, logging_level="ERROR", configure_logging=True)
    if address:
        init_kwargs["address"] = address
        _check_reachable(address)
    else:   # always a new local instance, even when a cluster started by `ray start` runs on this machine
        init_kwargs["address"] = "local"
        init_kwargs["num_cpus"] = parallel * max(spec.resources["cpus"], 1)
    stopping = {"why": None}

    def on_signal(signum: int, frame: Any) -> None:
        if stopping["why"] is None:
            stopping["why"] = f"signal {signum}"
            open(stop_file, "w").close()
            log(f"{spec.name}: stopping ({stopping['why']}): every running point saves a last checkpoint "
                f"(up to {STOP_GRACE_S:.0f} s); the same command continues the grid")

    try:
        ray.init(**init_kwargs)
    except Exception as exc:   # ConnectionError, or Ray's AuthenticationError (a RayError)
        if not address:
            raise
        hint = ("the cluster uses token authentication (`ray start --head` turns it on): export "
                "RAY_AUTH_MODE=token on this machine, with the cluster's token in ~/.ray/auth_token or "
                "RAY_AUTH_TOKEN" if "auth" in str(exc).lower() else "start it with `ray start --head` and check "
                "the address (host:port) it printed")
        raise LauncherError(f"cannot connect to the Ray cluster at {address}: {_one_line(exc)}. Fix: {hint}") from None
    # after ray.init: Ray's core worker installs its own fatal-signal handler (a C++ stack dump)
    old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        options: Dict[str, Any] = dict(num_cpus=spec.resources["cpus"], num_gpus=spec.resources["gpus"],
                                       max_retries=spec.retries, retry_exceptions=True)
        if address:   # a cluster schedules by memory too; locally the CPU count is the limit
            options["memory"] = int(spec.resources["memory_gb"] * 2 ** 30)
        task = ray.remote(run_point).options(**options)
        pending = list(todo)
        running: Dict[Any, Point] = {}
        outcome: Dict[str, Dict[str, Any]] = {}
        t0, last_print = time.time(), 0.0
        started: Dict[str, float] = {}
        durations: List[float] = []
        while pending or running:
            while pending and len(running) < parallel and stopping["why"] is None \
                    and not (deadline_at and time.time() >= deadline_at):
                p = pending.pop(0)
                started[p.id] = time.time()
                running[task.remote(spec.path, p.id, results, records, deadline_at)] = p
            if not running:
                break
            ready, _ = ray.wait(list(running), num_returns=1, timeout=POLL_S)
            for ref in ready:
                p = running.pop(ref)
                try:
                    outcome[p.id] = ray.get(ref)
                except Exception as exc:   # the point failed after its retries
                    outcome[p.id] = {"point": p.id, "status": "failed", "error": _one_line(exc)}
                    log(f"  {p.id}: FAILED after {spec.retries} retries: {outcome[p.id]['error']}")
                else:
                    if outcome[p.id]["status"] == "done" and "t_env" in outcome[p.id]:
                        durations.append(time.time() - started[p.id])
                    log(f"  {p.id}: {outcome[p.id]['status']}" + (f" at t_env {outcome[p.id].get('t_env'):,}"
                                                                  if outcome[p.id].get("t_env") else ""))
            if time.time() - last_print > 60 or ready:
                last_print = time.time()
                done = sum(1 for o in outcome.values() if o["status"] == "done")
                log(f"[{spec.name}] {done} done, {len(running)} running, {len(pending)} waiting, "
                    f"{sum(1 for o in outcome.values() if o['status'] == 'failed')} failed "
                    f"({time.time() - t0:.0f} s{eta(durations, len(running) + len(pending), parallel)})")
            if (stopping["why"] or (deadline_at and time.time() >= deadline_at)) and pending:
                for p in pending:
                    outcome[p.id] = {"point": p.id, "status": "not started"}
                pending = []
    finally:
        ray.shutdown()
        for s, h in old.items():
            signal.signal(s, h)
        if os.path.exists(stop_file):
            os.remove(stop_file)
    failed = [o for o in outcome.values() if o["status"] == "failed"]
    left = [o for o in outcome.values() if o["status"] in ("stopped", "not started")]
    log(f"{spec.name}: {sum(1 for o in outcome.values() if o['status'] == 'done')} done this call, "
        f"{len(left)} stopped or not started, {len(failed)} failed")
    if failed:
        return 1
    return 3 if left else 0


def eta(durations: List[float], left: int, parallel: int) -> str:
    """``, ETA ~1.5 h`` from the points finished in this call (empty before the first one)."""
    if not durations or not left:
        return ""
    seconds = sum(durations) / len(durations) * left / max(parallel, 1)
    return f", ETA ~{seconds / 3600:.1f} h" if seconds >= 3600 else f", ETA ~{seconds / 60:.0f} min"


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail at once, in one line, when nothing listens at ``host:port`` (Ray itself would wait a minute)."""
    import socket

    host, _, port = address.replace("ray://", "").rpartition(":")
    if not port.isdigit():
        raise LauncherError(f"--address {address!r}: give host:port, as `ray start --head` printed it")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise LauncherError(f"cannot connect to the Ray cluster at {address}: {exc.strerror or exc}. Fix: start it "
                            f"with `ray start --head` and check the address (host:port) it printed") from None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    for line in reversed(text):   # Ray wraps the task's exception; its own message is the last line
        if line.strip():
            return line.strip()[:400]
    return type(exc).__name__
