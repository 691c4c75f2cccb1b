"""Entry point: ``python src/main.py --config=ALG --env-config=ENV [with key=value ...]``.

Builds and validates the config (utils.config), opens a sacred run with a FileStorageObserver under
``results/sacred/<env>/<scenario>/<name>/<id>`` (and a MongoObserver when ``mongo_url`` is set and
the server answers; utils.mongo), stores the config with mongo_url's password redacted,
seeds everything from ``seed`` and hands over to the run loop named by ``run``.
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
               MongoUnavailableError)


def run_variant(config: Dict[str, Any]) -> str:
    """The network that distinguishes runs: the agent, or the spiking actor's neuron on MuJoCo
    ("ann" for the ANN actor). Also used by src/results.py to label runs."""
    if config.get("run") == "td3_mujoco":
        return str(config.get("actor_neuron")) if config.get("actor_type") == "snn" else "ann"
    return str(config.get("agent"))


def finalize_config(config: Dict[str, Any]) -> Dict[str, Any]:
    """Fill derived keys (run name, device) that depend on other keys."""
    from utils.device import resolve_device

    if not config.get("name"):
        config["name"] = f"{config['config_name']}_{run_variant(config)}"
    config["device"] = resolve_device(config.get("device", "auto"))
    return config


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
        ex = make_experiment(config)
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    loggers: List[Any] = []  # the run's Logger, to tell a failed start (nothing logged) apart

    @ex.main
    def sacred_main(_run: Any, _config: Dict[str, Any]) -> None:
        from utils.checkpoint import model_dir_for
        from utils.logging import Logger
        from utils.seeding import set_seed

        import torch

        args = args_from_config(_plain(_config), _run._id)
        _run.info["model_dir"] = model_dir_for(args)  # where this run's checkpoints go
        set_seed(args.seed)
        if args.torch_threads > 0:
            torch.set_num_threads(args.torch_threads)
        logger = Logger()
        loggers.append(logger)
        logger.setup_sacred(_run)
        if args.use_tensorboard:
            logger.setup_tensorboard(os.path.join(args.local_results_path, "tb_logs", args.unique_token))
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
        if run_dir and not (loggers and loggers[0].stats):
            remove_failed_start(run_dir)
            print(f"error: {exc}\n(the run failed before logging anything; its sacred folder was removed)",
                  file=sys.stderr)
        else:
            print(f"error: {exc}\n(the run's record, with the full traceback, is in "
                  f"{run_dir or 'results/sacred'}; set SPIKEMARL_DEBUG=1 to print it)", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:  # Ctrl-C / SIGTERM: the loop saved its last checkpoint (or says why not)
        print(f"interrupted: {exc or 'KeyboardInterrupt'} (the sacred record is marked INTERRUPTED; resume with "
              f"checkpoint_path=<the run's model dir>)", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
