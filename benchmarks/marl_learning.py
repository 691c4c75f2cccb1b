"""Learning benchmark: QMIX test win rate over env steps for several agents, maps and seeds.

Runs ``src/main.py`` once per (agent, map, seed) as independent processes (``--parallel`` at a
time), then reads each run's sacred records (the parts of a resumed run joined) and writes
``benchmarks/results/<tag>.json`` and ``<tag>.md``:

    python benchmarks/marl_learning.py --agents rnn,grsn --maps 3m --seeds 1,2,3 --t-max 200000

``--variant NAME KEY=VALUE ...`` (repeatable) runs every (agent, map, seed) once per variant
with those extra overrides, side by side; e.g. the training-speed before/after comparison
(pymarl2-style per-step unroll and per-env stepping vs the sequence unroll and vmapped SMAX),
stopping each run when it first reaches the level:

    python benchmarks/marl_learning.py --agents rnn --seeds 1 --t-max 400000 --tag speed_to_win_3m \
        --variant before mac_unroll=stepwise env_args.vectorized=False --variant after \
        --stop-at-level

**Resumable grids** (``--resume``). Each (agent, map, seed[, variant]) trains under its own folder
``<work>/<tag>/<map>_<label>_s<seed>`` (sacred records and models). Every run saves checkpoints
(``save_model=True``, ``save_model_interval`` = ``--save-model-interval``, default t_max: only the
last one). ``--deadline-s`` sends SIGTERM: the run saves a last checkpoint with its replay buffer at
the next safe point and stops (``--stop-grace-s`` later it is killed). Given again with ``--resume``,
the same command reuses finished runs (COMPLETED record with the same config), continues an
unfinished run from its newest complete checkpoint holding the replay (``checkpoint_path=``, an
exact resume) and starts the rest from step 0. A finished run whose folder is not on this machine
(a new machine starts without ``--work``) is reused from its record in ``<out>/<tag>.json`` when
the command that made it (rebuilt from the arguments stored there) has the same config, so a grid
split over sessions on fresh machines neither trains it again nor drops it from the report. The records of all parts of a run are joined into
one curve by ``src/results.py`` (``join_resumed``). Replays are removed from checkpoints once no
longer needed (a finished run keeps its networks for the energy table; ``--keep-final-buffer``
keeps its replay). ``--buffer-sizes MAP=N,...`` sets ``buffer_size`` per map (memory; see
``benchmarks/grsn_tables.py memory``). A grid run in parts (other ``--seeds`` or ``--agents`` per
call) writes the tag's report for each call's runs only; ``--collect`` with the whole grid's
arguments starts nothing and writes the report of every run on disk.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
from report import write_report  # noqa: E402  (benchmarks/report.py)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(ROOT, "src")
if SRC not in sys.path:
    sys.path.insert(0, SRC)
from utils.config import split_with_args  # noqa: E402

# the curves stored per run in <tag>.json (grsn_tables.py reads them)
CURVE_KEYS = ("test_battle_won_mean", "test_return_mean", "test_ep_length_mean", "spike_rate_mean", "elapsed_s")


def steps_to_reach(ts: List[int], values: List[float], level: float) -> Optional[int]:
    """First env step at which ``values`` reaches ``level`` (None if never)."""
    for t, v in zip(ts, values):
        if v >= level:
            return int(t)
    return None


def read_experiment(root: str) -> Optional[Any]:
    """The newest training run under ``root`` with the runs that resumed it, joined into one
    curve by ``results.join_resumed`` (a ``results.Experiment``); None when there is none."""
    import datetime

    import results

    if not os.path.isdir(root):
        return None
    runs = [r for r in results.load_runs([root]) if not r.failed_start and not r.evaluate_only]
    if not runs:
        return None
    return max(results.join_resumed(runs),
               key=lambda e: max((s.start_time or datetime.datetime.min, s.path) for s in e.segments))


def info_of(experiment: Any) -> Dict[str, List[float]]:
    """The joined curves as an info.json-like dict: ``{key: values, key + "_T": steps}``."""
    info: Dict[str, List[float]] = {}
    for key, (steps, values) in experiment.curves.items():
        info[key] = [float(v) for v in values]
        info[key + "_T"] = [int(t) for t in steps]
    return info


def expected_config(cmd: List[str]) -> Dict[str, Any]:
    """The config ``src/main.py`` builds from ``cmd`` (``[python, main.py, --config=..., ...]``)."""
    from main import finalize_config
    from utils.config import build_config, parse_command_line

    alg, env, overrides = parse_command_line(cmd[2:])
    return finalize_config(build_config(alg, env, overrides))


def config_differences(stored: Dict[str, Any], wanted: Dict[str, Any]) -> List[str]:
    """``key: stored -> wanted`` for every training key (``results.identity``: bookkeeping keys
    left out) set in both configs with different values. Keys present in one config only (a key
    added to the project after the run) are not differences."""
    import results

    a, b = results.identity(stored), results.identity(wanted)
    return [f"{k}: {a[k]} -> {b[k]}" for k in sorted(set(a) & set(b)) if a[k] != b[k]]


def model_dir_of(segment: Any) -> Optional[str]:
    """The model folder a sacred run saved its checkpoints into (None if unknown)."""
    root = segment.config.get("local_results_path")
    return os.path.join(root, "models", segment.model_token) if root and segment.model_token else None


def resumable(model_dir: Optional[str]) -> Optional[str]:
    """The newest complete step folder under ``model_dir`` if it holds the replay buffer (an
    exact resume), else None."""
    from utils.checkpoint import CheckpointError, find_checkpoint, has_part

    if not model_dir or not os.path.isdir(model_dir):
        return None
    try:
        step_dir, _ = find_checkpoint(model_dir)
    except (FileNotFoundError, CheckpointError):
        return None
    return step_dir if has_part(step_dir, "buffer") else None


def resume_point(exp: Any) -> Optional[str]:
    """The model folder an unfinished run continues from: that of its newest part whose newest
    checkpoint holds the replay. A part that died before saving one (e.g. killed while it loaded
    the replay) is passed over for the part it resumed from. None when no part has one."""
    for seg in reversed(exp.segments):
        model_dir = model_dir_of(seg)
        if resumable(model_dir):
            return model_dir
    return None


def plan_job(job: Dict[str, Any], resume: bool, stored: Optional[Dict[str, Any]] = None) -> None:
    """Decide how ``job`` runs: ``job["plan"]`` = ``reuse`` (a COMPLETED run with the same config
    is there, or, when none is, ``stored``: its record in ``<tag>.json`` (``stored_finished_runs``),
    made by a command with the same config: ``job["stored"]``), ``resume`` (``--resume`` and an
    unfinished run with the same config left a checkpoint holding its replay: ``job["resume_from"]``
    = its model folder; also a finished run whose last checkpoint kept its replay, when only
    ``t_max`` grew) or ``fresh``."""
    job["plan"], job["resume_from"] = "fresh", None
    job.pop("stored", None)
    exp = read_experiment(job["root"])
    if exp is None and stored is None:
        return
    wanted = expected_config(job["cmd"])
    if stored is not None and (exp is None or exp.status != "COMPLETED"):
        diff = config_differences(expected_config(stored["cmd"]), wanted)
        if not diff:
            job["plan"], job["stored"] = "reuse", stored
            job["note"] = f"its record in {os.path.basename(stored['source'])}"
            return
        job["note"] = f"its record in {os.path.basename(stored['source'])} has another config ({'; '.join(diff[:4])})"
    if exp is None:
        return
    diff = config_differences(exp.config, wanted)
    longer = diff == [d for d in diff if d.startswith("t_max:")] and diff and int(wanted["t_max"]) > int(
        exp.config["t_max"])
    if longer and resume and exp.status == "COMPLETED" and resumable(model_dir_of(exp.segments[-1])):
        # a finished run kept with its replay (--keep-final-buffer) trains on to the larger t_max
        job["plan"], job["resume_from"] = "resume", model_dir_of(exp.segments[-1])
        job["note"] = f"extending t_max {exp.config['t_max']} -> {wanted['t_max']}"
    elif diff:
        job["note"] = f"the stored run has another config ({'; '.join(diff[:4])}): starting again"
    elif exp.status == "COMPLETED":
        job["plan"] = "reuse"
    elif resume:
        model_dir = resume_point(exp)
        if model_dir:
            job["plan"], job["resume_from"] = "resume", model_dir
        else:
            job["note"] = f"unfinished ({exp.status}) without a checkpoint holding its replay: starting again"


def drop_spent_buffers(root: str, keep_final: bool = False) -> int:
    """Remove the replay from checkpoints no longer needed to resume: every one but that of the
    run's ``resume_point`` (the newest part that saved a replay), and (unless ``keep_final``) that
    too once the run finished. A part that died before saving a checkpoint leaves the replay it
    resumed from in place, so a retry can still resume exactly. Returns bytes freed."""
    from utils.checkpoint import drop_part

    exp = read_experiment(root)
    if exp is None:
        return 0
    if exp.status != "COMPLETED":
        keep = resume_point(exp)
    else:
        keep = model_dir_of(exp.segments[-1]) if keep_final else None
    freed = 0
    for seg in exp.segments:
        model_dir = model_dir_of(seg)
        if not model_dir or model_dir == keep or not os.path.isdir(model_dir):
            continue
        for step in os.listdir(model_dir):
            step_dir = os.path.join(model_dir, step)
            if step.isdigit() and os.path.exists(os.path.join(step_dir, "manifest.json")):
                freed += drop_part(step_dir, "buffer")
    return freed


def run_record(job: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """One run's joined record for the report: its info-like curves, status, training wall time
    (``wall_time_s`` of a finished run, else ``elapsed_s`` at its last test), segments and the
    model folder of its last part (trained checkpoint for the energy table)."""
    exp = read_experiment(job["root"])
    if exp is None:
        return None
    info = info_of(exp)
    if not info.get("test_battle_won_mean"):
        return None
    if exp.status == "COMPLETED" and info.get("wall_time_s"):
        wall = info["wall_time_s"][-1]
    elif info.get("elapsed_s"):
        wall = info["elapsed_s"][-1]
    else:
        wall = float(job.get("wall_time_s", float("nan")))
    return {"info": info, "status": exp.status, "truncated": exp.status != "COMPLETED", "wall_time_s": wall,
            "seed": job["seed"], "segments": [seg.path for seg in exp.segments],
            "model_dir": model_dir_of(exp.segments[-1]), "t_max": exp.config.get("t_max"),
            "buffer_size": exp.config.get("buffer_size")}


def wall_time_to_reach(info: Dict[str, Any], level: float) -> Optional[float]:
    """Seconds of training (tests included) until the first test win rate >= ``level``, read
    from the ``elapsed_s`` stat logged at every test (None if never reached or not logged)."""
    t_reach = steps_to_reach(info["test_battle_won_mean_T"], info["test_battle_won_mean"], level)
    if t_reach is None or "elapsed_s" not in info:
        return None
    return float(dict(zip(info["elapsed_s_T"], info["elapsed_s"])).get(t_reach, float("nan")))


def summarise(runs: List[Dict[str, Any]], level: float) -> Dict[str, Any]:
    """Mean/std of final test win rate and return, steps and wall time to ``level`` win rate."""
    finals_win = [r["info"]["test_battle_won_mean"][-1] for r in runs]
    finals_ret = [r["info"]["test_return_mean"][-1] for r in runs]
    reach = [steps_to_reach(r["info"]["test_battle_won_mean_T"], r["info"]["test_battle_won_mean"], level)
             for r in runs]
    walls = [r["wall_time_s"] for r in runs]
    reached = [s for s in reach if s is not None]
    wall_reach = [wall_time_to_reach(r["info"], level) for r in runs]
    per_10k = [1e4 * r["info"]["elapsed_s"][-1] / max(r["info"]["elapsed_s_T"][-1], 1)
               for r in runs if r["info"].get("elapsed_s")]
    reached_wall = [w for w in wall_reach if w is not None]
    return {
        "n_seeds": len(runs),
        "final_test_win_mean": float(np.mean(finals_win)), "final_test_win_std": float(np.std(finals_win)),
        "final_test_return_mean": float(np.mean(finals_ret)), "final_test_return_std": float(np.std(finals_ret)),
        "steps_to_level": reach, "seeds_reaching_level": len(reached),
        "median_steps_to_level": float(np.median(reached)) if reached else None,
        "wall_s_to_level": wall_reach,
        "median_wall_s_to_level": float(np.median(reached_wall)) if reached_wall else None,
        "wall_s_per_10k_steps": per_10k,
        "median_wall_s_per_10k_steps": float(np.median(per_10k)) if per_10k else None,
        "wall_time_s_mean": float(np.mean(walls)),
        "final_T": [int(r["info"]["test_battle_won_mean_T"][-1]) for r in runs],
        "truncated_runs": sum(bool(r.get("truncated")) for r in runs),
    }


RESUMED_LINE = "resumed at t_env"  # src/run/marl.py logs it once the checkpoint, replay included, is loaded


def still_loading(job: Dict[str, Any]) -> bool:
    """Whether a resumed run is still loading its checkpoint. No other run starts until it has
    logged ``RESUMED_LINE`` (or exited): while it loads, its memory-mapped replay part fills the
    page cache beside the allocated buffer, and before checkpoints were memory-mapped
    (``utils.checkpoint.load_part``) two MMM2 runs resuming at once were OOM-killed (~24 GiB)."""
    if job.get("plan") != "resume" or job.get("loaded") or job["proc"].poll() is not None:
        return False
    try:
        with open(os.path.join(job["root"], "stdout.log"), errors="replace") as fh:
            fh.seek(job.get("log_offset", 0))
            job["loaded"] = RESUMED_LINE in fh.read()
    except OSError:
        return True
    return not job["loaded"]


def parse_buffer_sizes(text: str) -> Dict[str, int]:
    """``"8m=5000,MMM2=2000"`` -> ``{"8m": 5000, "MMM2": 2000}`` (ValueError naming the bad item)."""
    out: Dict[str, int] = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        name, _, value = item.partition("=")
        if not name or not value.isdigit() or int(value) < 1:
            raise ValueError(f"--buffer-sizes takes MAP=EPISODES items (e.g. 8m=5000,MMM2=2000), got '{item}'")
        out[name] = int(value)
    return out


FIXED_KEYS = {"save_model", "save_model_interval", "local_results_path", "checkpoint_path", "seed", "agent",
              "t_max", "test_interval"}   # set per run by build_jobs


def job_inputs(a: argparse.Namespace) -> Tuple[List[Tuple[str, List[str]]], List[str], Dict[str, int]]:
    """``(variants, extra overrides of every run, buffer sizes per map)`` from the benchmark's
    arguments (``a.variant``, ``a.with_args`` + ``a.with_overrides``, ``a.buffer_sizes``,
    ``a.stop_at_level``); ValueError naming a bad variant, buffer size or fixed key."""
    variants = [(v[0], list(v[1:])) for v in a.variant] if a.variant else [("", [])]
    for name, overrides in variants:
        bad = [o for o in overrides if "=" not in o]
        if "=" in name or bad:
            raise ValueError(f"--variant takes a name then KEY=VALUE overrides, got {[name] + overrides}")
    buffer_sizes = parse_buffer_sizes(a.buffer_sizes)
    extra = list(a.with_args) + list(getattr(a, "with_overrides", None) or [])
    clash = [w for w in extra + [o for _, ov in variants for o in ov] if w.split("=", 1)[0] in FIXED_KEYS]
    if clash:
        raise ValueError(f"{clash} are set by the benchmark itself (use --t-max, --seeds, --agents, "
                         f"--save-model-interval, ...); drop them")
    if a.stop_at_level:
        extra.append(f"stop_at_test_win_rate={a.level}")
    return variants, extra, buffer_sizes


def stored_finished_runs(out_dir: str, tag: str) -> Dict[Tuple[str, str, int], Dict[str, Any]]:
    """The finished runs recorded in ``<out_dir>/<tag>.json``, keyed ``(map, label, seed)``: each
    ``{"run", "curve", "cmd", "source"}`` with the command that made it, rebuilt from the stored
    benchmark arguments (``with`` overrides are stored since they are kept as ``with_overrides``;
    an older file counts as having none). A new machine has none of the runs' folders, so
    ``--resume`` reuses these records instead of training the runs again."""
    import json

    path = os.path.join(out_dir, f"{tag}.json")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        data = json.load(f)
    try:
        a = argparse.Namespace(**dict({"with_args": [], "variant": None, "buffer_sizes": "",
                                       "stop_at_level": False, "level": 0.9, "save_model_interval": 0},
                                      **data["config"]))
        jobs, _ = build_jobs(a, *job_inputs(a))
    except (KeyError, TypeError, ValueError) as exc:
        print(f"{path}: its stored arguments do not rebuild the runs' commands ({exc}); its runs are not "
              f"reused", file=sys.stderr)
        return {}
    cmds = {(j["map"], j["agent"], j["seed"]): j["cmd"] for j in jobs}
    found = {}
    for key, group in data.get("groups", {}).items():
        m, label = key.split("/", 1)
        for run, curve in zip(group.get("runs", []), group.get("curves", [])):
            k = (m, label, int(run["seed"]))
            if run.get("status") == "COMPLETED" and k in cmds:
                found[k] = {"run": run, "curve": curve, "cmd": cmds[k], "source": path}
    return found


def outside_runs(stored: Dict[Tuple[str, str, int], Dict[str, Any]], jobs: List[Dict[str, Any]], work: str,
                 tag: str) -> List[str]:
    """The stored finished runs (``stored_finished_runs``) that are not among ``jobs`` and have no
    COMPLETED run in their folder under ``work``: a report of ``jobs`` only would lose them."""
    mine = {(j["map"], j["agent"], j["seed"]) for j in jobs}
    lost = []
    for (m, label, seed) in sorted(stored):
        if (m, label, seed) in mine:
            continue
        exp = read_experiment(run_root(work, tag, m, label, seed))
        if exp is None or exp.status != "COMPLETED":
            lost.append(f"{m} {label} seed {seed}")
    return lost


def stored_record(entry: Dict[str, Any]) -> Dict[str, Any]:
    """A ``run_record``-like record of a stored finished run (``stored_finished_runs``)."""
    curve = entry["curve"]
    info = {k: list(curve[k]) for k in curve if k != "seed" and k != "T"}
    info.setdefault("test_battle_won_mean_T", list(curve["T"]))
    return dict(entry["run"], info=info, truncated=False)


def run_root(work: str, tag: str, m: str, label: str, seed: Any) -> str:
    """The folder of one grid run: ``<work>/<tag>/<map>_<label>_s<seed>`` (``/`` in a label -> ``_``)."""
    return os.path.join(work, tag, f"{m}_{label.replace('/', '_')}_s{seed}")


def build_jobs(a: argparse.Namespace, variants: List[Any], extra: List[str],
               buffer_sizes: Dict[str, int]) -> Tuple[List[Dict[str, Any]], List[Tuple[str, str]]]:
    """One job per (map, agent, variant, seed): its folder and its ``src/main.py`` command; and the
    (map, label) groups in table order (label = agent or agent/variant)."""
    save_interval = a.save_model_interval if a.save_model_interval > 0 else a.t_max
    jobs, groups = [], []
    for m in a.maps.split(","):
        for agent in a.agents.split(","):
            for vname, overrides in variants:
                label = f"{agent}/{vname}" if vname else agent
                groups.append((m, label))
                for seed in a.seeds.split(","):
                    root = run_root(a.work, a.tag, m, label, seed)
                    cmd = [sys.executable, os.path.join(ROOT, "src", "main.py"), f"--config={a.config}",
                           "--env-config=smax", "with", f"agent={agent}", f"env_args.map_name={m}",
                           f"seed={seed}", f"t_max={a.t_max}", f"test_interval={a.test_interval}",
                           f"log_interval={a.test_interval * 5}", "save_model=True",
                           f"save_model_interval={save_interval}", f"local_results_path={root}",
                           *([f"buffer_size={buffer_sizes[m]}"] if m in buffer_sizes else []), *extra, *overrides]
                    jobs.append({"map": m, "agent": label, "seed": int(seed), "root": root, "cmd": cmd})
    return jobs, groups


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="qmix")
    p.add_argument("--agents", default="rnn,grsn")
    p.add_argument("--maps", default="3m")
    p.add_argument("--seeds", default="1,2,3")
    p.add_argument("--t-max", type=int, default=200000)
    p.add_argument("--test-interval", type=int, default=10000)
    p.add_argument("--parallel", type=int, default=2, help="runs at a time")
    p.add_argument("--deadline-s", type=float, default=0.0,
                   help="> 0: after this many seconds send SIGTERM to the runs still going (each saves a last "
                        "checkpoint with its replay and stops; marked truncated), start no more runs")
    p.add_argument("--stop-grace-s", type=float, default=900.0,
                   help="seconds a run may take to save and exit after the deadline's SIGTERM before it is killed")
    p.add_argument("--resume", action="store_true",
                   help="continue unfinished runs from their newest checkpoint holding the replay (finished runs "
                        "with the same config are always reused)")
    p.add_argument("--save-model-interval", type=int, default=0,
                   help="env steps between periodic checkpoints (networks only); 0: t_max (only the last one)")
    p.add_argument("--keep-final-buffer", action="store_true",
                   help="keep the replay in a finished run's last checkpoint (default: removed to save disk)")
    p.add_argument("--buffer-sizes", default="", metavar="MAP=N,...",
                   help="buffer_size (episodes) per map, e.g. MMM2=2000 (others: the config's)")
    p.add_argument("--level", type=float, default=0.9, help="win rate whose first crossing is reported")
    p.add_argument("--tag", default="marl_learning")
    p.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results"))
    p.add_argument("--work", default=os.path.join(ROOT, "results", "bench"))
    p.add_argument("--variant", nargs="+", action="append", default=None, metavar="NAME_THEN_KEY=VALUE",
                   help="a named set of extra overrides (repeatable): every run is done once per variant")
    p.add_argument("--stop-at-level", action="store_true",
                   help="stop each run at its first test reaching --level (stop_at_test_win_rate)")
    p.add_argument("--dry-run", action="store_true", help="print each run's plan (reuse/resume/fresh) and stop")
    p.add_argument("--collect", action="store_true",
                   help="start no run: write <tag>.json/.md from the runs already under --work (unfinished "
                        "ones marked truncated), e.g. after a grid was run in parts")
    p.add_argument("with_args", nargs="*", help="extra key=value overrides for every run")
    options, after_with = split_with_args(sys.argv[1:] if argv is None else argv)
    a = p.parse_args(options)
    a.with_overrides = list(after_with)     # stored in <tag>.json, so that its runs' commands can be rebuilt
    try:
        variants, extra, buffer_sizes = job_inputs(a)
    except ValueError as exc:
        p.error(str(exc))
    a.work = os.path.abspath(a.work)

    jobs, groups = build_jobs(a, variants, extra, buffer_sizes)
    stored = stored_finished_runs(a.out, a.tag)
    only_stored = outside_runs(stored, jobs, a.work, a.tag)
    if only_stored and not a.dry_run:
        p.error(f"{a.tag}.json records finished runs outside this call's grid that are not on this machine "
                f"({', '.join(only_stored)}); this call's report would drop them. Give the whole grid's "
                f"--maps/--agents/--seeds/--variant (those runs print 'reuse'), or another --tag")
    pending = []
    for job in jobs:
        plan_job(job, a.resume, stored.get((job["map"], job["agent"], job["seed"])))
        if job["plan"] == "resume":
            job["cmd"] = job["cmd"] + [f"checkpoint_path={job['resume_from']}"]
        if job["plan"] != "reuse":
            pending.append(job)
        print(f"{job['map']} {job['agent']} seed {job['seed']}: {job['plan']}"
              + (f" from {job['resume_from']}" if job["resume_from"] else "")
              + (f" ({job['note']})" if job.get("note") else ""), flush=True)
    if a.dry_run:
        return 0
    if a.collect:
        pending = []
    running: List[Dict[str, Any]] = []
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    t0 = time.time()
    while pending or running:
        if a.deadline_s > 0 and time.time() - t0 > a.deadline_s:
            pending.clear()
            for job in running:
                if job["proc"].poll() is not None:
                    continue
                if not job.get("interrupted"):  # SIGTERM: save a last checkpoint (with the replay), stop
                    job["proc"].send_signal(signal.SIGTERM)
                    job["interrupted"] = time.time()
                    print(f"deadline: SIGTERM to {job['map']} {job['agent']} seed {job['seed']}", flush=True)
                elif time.time() - job["interrupted"] > a.stop_grace_s and not job.get("killed"):
                    job["proc"].kill()
                    job["killed"] = True
                    print(f"run {job['map']} {job['agent']} seed {job['seed']} did not stop within "
                          f"{a.stop_grace_s:.0f} s of SIGTERM: killed (it resumes from its newest complete "
                          f"checkpoint, if that holds a replay)", file=sys.stderr, flush=True)
        while pending and len(running) < a.parallel and not any(still_loading(j) for j in running):
            job = pending.pop(0)
            os.makedirs(job["root"], exist_ok=True)
            log_path = os.path.join(job["root"], "stdout.log")
            job["log_offset"] = os.path.getsize(log_path) if os.path.exists(log_path) else 0
            job["log"] = open(log_path, "a")
            job["start"] = time.time()
            # a background shell starts children with SIGINT ignored; restore it so Ctrl-C reaches them
            job["proc"] = subprocess.Popen(job["cmd"], stdout=job["log"], stderr=subprocess.STDOUT, env=env,
                                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
            running.append(job)
        time.sleep(2)
        for job in list(running):
            if job["proc"].poll() is not None:
                job["wall_time_s"] = time.time() - job["start"]
                job["log"].close()
                running.remove(job)
                freed = drop_spent_buffers(job["root"], a.keep_final_buffer)
                print(f"done {job['map']} {job['agent']} seed {job['seed']} rc={job['proc'].returncode} "
                      f"in {job['wall_time_s']:.0f}s" + (f" (freed {freed / 2**20:.0f} MiB of replay)" if freed
                                                         else ""), flush=True)

    results: Dict[str, Any] = {"config": vars(a), "groups": {}}
    lines = [f"| map | agent | seeds | final test win % | final test return | seeds reaching {a.level:.0%} | "
             f"median steps to {a.level:.0%} | median wall time to {a.level:.0%} (s) | env steps reached | "
             f"training wall time / run (s) | training s per 10k env steps | unfinished runs |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for m, agent in groups:
        runs = []
        for j in (j for j in jobs if j["map"] == m and j["agent"] == agent):
            if "proc" in j and j["proc"].returncode != 0 and not j.get("interrupted"):
                print(f"run failed: {' '.join(j['cmd'])} (see {j['root']}/stdout.log)", file=sys.stderr)
            run = stored_record(j["stored"]) if j.get("stored") else run_record(j)
            if run is not None:
                runs.append(run)
        if not runs:
            continue
        s = summarise(runs, a.level)
        s["runs"] = [{k: r[k] for k in ("seed", "status", "segments", "model_dir", "t_max", "buffer_size",
                                        "wall_time_s")} for r in runs]
        s["curves"] = [dict({"seed": r["seed"], "T": r["info"]["test_battle_won_mean_T"]},
                            **{k: r["info"][k] for k in CURVE_KEYS if k in r["info"]},
                            **{k + "_T": r["info"][k + "_T"] for k in CURVE_KEYS if k in r["info"]})
                       for r in runs]
        results["groups"][f"{m}/{agent}"] = s
        med = "-" if s["median_steps_to_level"] is None else f"{s['median_steps_to_level']:.0f}"
        med_wall = "-" if s["median_wall_s_to_level"] is None else f"{s['median_wall_s_to_level']:.0f}"
        per_10k = "-" if s["median_wall_s_per_10k_steps"] is None else f"{s['median_wall_s_per_10k_steps']:.1f}"
        lines.append(f"| {m} | {agent} | {s['n_seeds']} | {100 * s['final_test_win_mean']:.1f} ± "
                     f"{100 * s['final_test_win_std']:.1f} | {s['final_test_return_mean']:.2f} ± "
                     f"{s['final_test_return_std']:.2f} | {s['seeds_reaching_level']}/{s['n_seeds']} | {med} | {med_wall} | "
                     f"{min(s['final_T'])}-{max(s['final_T'])} | {s['wall_time_s_mean']:.0f} | {per_10k} | "
                     f"{s['truncated_runs']} |")
    write_report(a.out, a.tag, results, "\n".join(lines))
    return 0 if all(j.get("interrupted") or j["proc"].returncode == 0 for j in jobs if "proc" in j) else 1


if __name__ == "__main__":
    sys.exit(main())
