"""Entry point: ``python src/main.py --config=ALG --env-config=ENV [with key=value ...]``.

Builds and validates the config (utils.config), checks at start-up what would otherwise fail late
(the results folders are writable, the run's folders stay inside ``local_results_path``), opens a
sacred run with a FileStorageObserver under ``results/sacred/<env>/<scenario>/<name>/<id>`` (and a
MongoObserver when ``mongo_url`` is set and the server answers; utils.mongo), stores the config
with mongo_url's password redacted, seeds everything from ``seed`` and hands over to the run loop
named by ``run``. A user's error (bad config, unwritable folder, full disk at a save, a diverged
loss) is one ``error:`` line; a stop by Ctrl-C / SIGTERM ends with the exact command that resumes
the run (or says that nothing was saved). No arguments: the usage, exit code 2.
"""
from __future__ import annotations

import datetime
import logging
import os
import signal
import sys
import traceback
import warnings
from types import SimpleNamespace
from typing import Any, Dict, List, Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)  # "no TPU found" noise
os.environ.setdefault("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")

from utils.config import (ConfigError, build_config, parse_command_line, project_specs,  # noqa: E402
                          results_group, validate_config)
from utils.mongo import MongoUnavailableError, mongo_observer, redact_url  # noqa: E402
from utils.registry import MissingDependencyError, RegistryError, lookup  # noqa: E402

# Errors that are the user's to fix: printed as one line, without a traceback wall.
USER_ERRORS = (ConfigError, RegistryError, MissingDependencyError, ValueError, FileNotFoundError,
               MongoUnavailableError, FloatingPointError)

USAGE = """usage: python src/main.py --config=ALG --env-config=ENV [with key=value ...]

  ALG  an algorithm file of config/algs/ (qmix, vdn, td3, sacd, td3_snn, td3_proxy, ...)
  ENV  an environment file of config/envs/ (smax, sc2, pomdp, mujoco)
  key=value  any key of config/default.yaml (documented there), e.g. agent=grsn
             env_args.map_name=3m t_max=200000 seed=2; dotted keys set env_args members.

examples:
  python src/main.py --config=qmix --env-config=smax with agent=grsn env_args.map_name=3m
  python src/main.py --config=td3 --env-config=pomdp with agent=grsn env_args.key=Pendulum-P
  python src/main.py --config=qmix --env-config=smax with checkpoint_path=results/models/<token>   # resume
  python src/main.py --config=qmix --env-config=smax with checkpoint_path=results/models/<token> evaluate=True

Ctrl-C / SIGTERM saves a last checkpoint and prints the command that resumes the run;
docs/faults.md lists what is checked at start-up and what happens on a fault."""

# A sacred record still RUNNING whose heartbeat (every 10 s) is older than this is of a killed run.
STALE_HEARTBEAT_S = 600.0


def run_variant(config: Dict[str, Any]) -> str:
    """The network that distinguishes runs: the agent, or the spiking actor's neuron on MuJoCo
    ("ann" for the ANN actor)."""
    if config.get("run") == "td3_mujoco":
        return str(config.get("actor_neuron")) if config.get("actor_type") == "snn" else "ann"
    return str(config.get("agent"))


def finalize_config(config: Dict[str, Any]) -> Dict[str, Any]:
    """Fill derived keys (run name, device, the SMAX compile cache) that depend on other keys.

    ``env_args.jax_cache_dir`` of SMAX: "" (the env file's value) becomes
    ``<local_results_path>/jax_cache``, so every run after the first skips most of JAX's
    compiling; ``off`` turns the cache off."""
    from utils.device import resolve_device

    if not config.get("name"):
        config["name"] = f"{config['config_name']}_{run_variant(config)}"
    config["device"] = resolve_device(config.get("device", "auto"))
    env_args = config.get("env_args")
    if isinstance(env_args, dict) and "jax_cache_dir" in env_args:
        cache = str(env_args.get("jax_cache_dir") or "")
        if cache.lower() in ("off", "false", "none", "no"):   # YAML reads a bare off as false
            env_args["jax_cache_dir"] = ""
        elif not cache:
            env_args["jax_cache_dir"] = os.path.join(str(config["local_results_path"]), "jax_cache")
    return config


def _inside(path: str, root: str) -> bool:
    path, root = os.path.realpath(path), os.path.realpath(root)
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def unwritable_reason(folder: str) -> Optional[str]:
    """None when ``folder`` exists and takes files, or could be made: its nearest existing
    ancestor is a folder that takes files. Else why not. Creates no folder (a probe file is
    written and removed in the nearest existing one: permission bits alone do not tell, root
    ignores them and a read-only mount refuses root too)."""
    from utils.checkpoint import probe_writable

    path = os.path.abspath(folder)
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    if not os.path.isdir(path):
        return f"{path} is a file, not a folder"
    return probe_writable(path)


def check_start_up(config: Dict[str, Any]) -> None:
    """What would otherwise fail late, checked before anything runs (ConfigError, one line):
    the run's sacred and model folders lie inside ``local_results_path`` and files can be
    written there (the models folder only when the run saves). Makes no folder."""

    root = str(config["local_results_path"])
    env, scenario = results_group(config)
    folders = {"sacred": os.path.join(root, "sacred", env, scenario, str(config["name"]))}
    if config.get("save_model") and not config.get("evaluate"):
        folders["models"] = os.path.join(root, "models")
    for what, folder in folders.items():
        if not _inside(folder, root):
            raise ConfigError(f"the run's {what} folder {folder} lies outside local_results_path={root} "
                              f"(env_args or name hold '..' or '/'); use plain names.")
    for what, folder in folders.items():
        why = unwritable_reason(folder)
        if why:
            raise ConfigError(f"cannot write the run's {what} records to {folder}: {why}. Make it writable or set "
                              f"local_results_path=<a writable folder>"
                              + (" (or save_model=False)." if what == "models" else "."))


def mark_killed_runs(sacred_dir: str, now: Optional[datetime.datetime] = None,
                     stale_s: float = STALE_HEARTBEAT_S) -> List[str]:
    """Mark the sacred records under ``sacred_dir`` (one run name's folder) that are still
    RUNNING but whose heartbeat stopped more than ``stale_s`` ago as INTERRUPTED, with a
    ``stop_reason``: their process was killed (kill -9, out of memory, power loss) and could not
    close its record. Returns the marked run folders."""
    import json

    now = now or datetime.datetime.utcnow()
    marked = []
    if not os.path.isdir(sacred_dir):
        return marked
    for entry in sorted(os.listdir(sacred_dir)):
        path = os.path.join(sacred_dir, entry, "run.json")
        try:
            with open(path) as f:
                run = json.load(f)
        except (OSError, ValueError):
            continue
        if not isinstance(run, dict) or run.get("status") != "RUNNING":
            continue
        last = run.get("heartbeat") or run.get("start_time")
        try:
            last_t = datetime.datetime.fromisoformat(str(last))
        except ValueError:
            continue
        if (now - last_t).total_seconds() < stale_s:
            continue
        run.update(status="INTERRUPTED", stop_time=last_t.isoformat(),
                   stop_reason=f"killed: no heartbeat since {last_t.isoformat()} UTC (kill -9, out of memory or "
                               f"a power loss); marked by a later start at {now.isoformat()} UTC")
        tmp = f"{path}.{os.getpid()}.tmp"
        try:
            with open(tmp, "w") as f:
                json.dump(run, f, indent=2)
            os.replace(tmp, path)
        except OSError:
            continue
        marked.append(os.path.dirname(path))
    return marked


def resume_hint(alg: str, env: str, overrides: List[str], model_dir: Optional[str],
                checkpoint_path: str) -> str:
    """After a stop: the exact command that resumes the run from its newest complete checkpoint
    (this command's run-control overrides kept), or why there is none."""
    import shlex

    from utils.checkpoint import RUN_CONTROL_KEYS, CheckpointError, find_checkpoint

    target = None
    for candidate in (model_dir, checkpoint_path):
        if not candidate:
            continue
        try:
            find_checkpoint(candidate)
        except (OSError, CheckpointError):
            continue
        target = candidate
        break
    if target is None:
        return ("nothing was saved (no complete checkpoint" + (f" in {model_dir}" if model_dir else "")
                + "): run the same command again to start over")
    keep = [o for o in overrides if "=" in o and o.split("=", 1)[0].split(".")[0] in RUN_CONTROL_KEYS
            and o.split("=", 1)[0] not in ("checkpoint_path", "load_step", "evaluate", "energy")]
    cmd = ["python", "src/main.py", f"--config={alg}", f"--env-config={env}", "with",
           f"checkpoint_path={target}", *keep]
    return "resume with: " + " ".join(shlex.quote(c) for c in cmd)


def args_from_config(config: Dict[str, Any], run_id: Any = "norun") -> SimpleNamespace:
    """A SimpleNamespace of the (plain-dict) config, plus the run's unique token: name, env, map,
    seed, start time, the sacred run id and a random suffix, so no two runs share a model folder."""
    from utils.checkpoint import unique_suffix

    args = SimpleNamespace(**config)
    env, scenario = results_group(config)
    stamp = datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    args.unique_token = f"{args.name}_{env}_{scenario}_seed{args.seed}_{stamp}_{unique_suffix(run_id)}"
    return args


def _plain(obj: Any) -> Any:
    """Sacred hands back ReadOnlyDict/ReadOnlyList; turn them into dicts and lists."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def make_experiment(config: Dict[str, Any]):
    """A sacred Experiment holding ``config`` (mongo_url's password redacted) with its observers
    attached; an unreachable MongoDB raises MongoUnavailableError unless ``mongo_optional``."""
    from sacred import Experiment, SETTINGS
    from sacred.observers import FileStorageObserver
    from sacred.utils import apply_backspaces_and_linefeeds

    SETTINGS["CAPTURE_MODE"] = "sys"
    ex = Experiment("spikemarl", save_git_info=False)
    ex.captured_out_filter = apply_backspaces_and_linefeeds
    ex.add_config(dict(config, mongo_url=redact_url(config.get("mongo_url"))))
    env, scenario = results_group(config)
    sacred_dir = os.path.join(config["local_results_path"], "sacred", env, scenario, config["name"])
    ex.observers.append(FileStorageObserver(sacred_dir))
    if config.get("mongo_url"):
        from utils.logging import get_console_logger

        observer = mongo_observer(config["mongo_url"], config["mongo_db"], bool(config.get("mongo_optional")),
                                  get_console_logger())
        if observer is not None:
            ex.observers.append(observer)
    return ex


def remove_failed_start(run_dir: str) -> None:
    """Delete the sacred folder of a run that failed before logging anything (a typo in a map),
    and its name folder's ``_sources`` and the empty parents when no other run is left there."""
    import shutil

    shutil.rmtree(run_dir, ignore_errors=True)
    parent = os.path.dirname(run_dir)
    if os.path.isdir(parent) and set(os.listdir(parent)) <= {"_sources"}:
        shutil.rmtree(parent, ignore_errors=True)
        parent = os.path.dirname(parent)
        for _ in range(2):  # <scenario>/ and <env>/ folders left empty
            if os.path.isdir(parent) and not os.listdir(parent):
                os.rmdir(parent)
                parent = os.path.dirname(parent)


def _raise_keyboard_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"stopped by signal {signum}")


def main(argv: Optional[List[str]] = None) -> int:
    """Run one experiment; returns the process exit code."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print(USAGE, file=sys.stderr)
        return 2
    if argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    try:
        alg, env, overrides = parse_command_line(argv)
        config = build_config(alg, env, overrides)
        from utils.checkpoint import config_for_checkpoint
        # resume / evaluate: the checkpoint's config, this command's `with` overrides on top
        config = finalize_config(config_for_checkpoint(
            config, overrides, warn=lambda msg: print(f"warning: {msg}", file=sys.stderr)))
        if config.get("checkpoint_path"):  # the checkpoint's values under this command's overrides, checked again
            config = validate_config(config, project_specs(),
                                     default_source="the checkpoint's config.json or an override")
        from run import REGISTRY as RUN_REGISTRY
        run_fn = lookup(RUN_REGISTRY, config["run"], "run")
        check_start_up(config)
        env_name, scenario = results_group(config)
        for killed in mark_killed_runs(os.path.join(config["local_results_path"], "sacred", env_name, scenario,
                                                    config["name"])):
            print(f"warning: the sacred record {killed} was still RUNNING without a heartbeat (its process was "
                  f"killed); marked INTERRUPTED", file=sys.stderr)
        ex = make_experiment(config)
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    loggers: List[Any] = []  # the run's Logger, to tell a failed start (nothing logged) apart
    model_dirs: List[str] = []  # where the run saves its checkpoints, for the resume hint

    @ex.main
    def sacred_main(_run: Any, _config: Dict[str, Any]) -> None:
        from utils.checkpoint import model_dir_for
        from utils.logging import Logger
        from utils.seeding import set_seed

        import torch

        args = args_from_config(_plain(_config), _run._id)
        _run.info["model_dir"] = model_dir_for(args)  # where this run's checkpoints go
        model_dirs.append(model_dir_for(args))
        set_seed(args.seed)
        if args.torch_threads > 0:
            torch.set_num_threads(args.torch_threads)
        logger = Logger()
        loggers.append(logger)
        logger.setup_sacred(_run)
        if args.use_tensorboard:
            logger.setup_tensorboard(os.path.join(args.local_results_path, "tb_logs", args.unique_token))
        if args.use_csv:
            logger.setup_csv(os.path.join(args.local_results_path, "csv", f"{args.unique_token}.csv"))
        if args.use_wandb:
            logger.setup_wandb(args.wandb_project, args.wandb_mode, args.unique_token, _plain(_config),
                               os.path.join(args.local_results_path, "wandb"))
        logger.console.info(f"run '{args.run}' | {alg} on {env} | token {args.unique_token}")
        try:
            run_fn(args, logger)
        finally:
            logger.close()

    # `kill` (SIGTERM) stops a run like Ctrl-C: the sacred record is closed as INTERRUPTED and
    # the run loop saves a last checkpoint
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        ex.run()
    except USER_ERRORS as exc:
        if os.environ.get("SPIKEMARL_DEBUG"):
            traceback.print_exc()
        run_dir = ex.observers[0].dir
        if run_dir and not (loggers and loggers[0].logged_anything()):
            remove_failed_start(run_dir)
            print(f"error: {exc}\n(the run failed before logging anything; its sacred folder was removed)",
                  file=sys.stderr)
        else:
            print(f"error: {exc}\n(the run's record, with the full traceback, is in "
                  f"{run_dir or 'results/sacred'}; set SPIKEMARL_DEBUG=1 to print it)", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:  # Ctrl-C / SIGTERM: the loop saved its last checkpoint (or says why not)
        for sig in (signal.SIGINT, signal.SIGTERM):  # shutting down: a further signal must not break the
            signal.signal(sig, signal.SIG_IGN)       # exit handlers (JAX's atexit printed a KeyboardInterrupt)
        hint = "nothing to resume (evaluate=True)" if config.get("evaluate") else resume_hint(
            alg, env, overrides, model_dirs[0] if model_dirs and config.get("save_model") else None,
            str(config.get("checkpoint_path") or ""))
        print(f"interrupted: {exc or 'KeyboardInterrupt'} (the sacred record is marked INTERRUPTED); {hint}",
              file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
