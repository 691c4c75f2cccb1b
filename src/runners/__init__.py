"""Runner registry: ``REGISTRY[name](args, logger)``.

``parallel`` steps ``batch_size_run`` environments together in lockstep (one vmapped SMAX batch
or StarCraft II worker processes; each run plays one episode per env); ``episode`` steps a single
environment; ``continuous`` steps ``batch_size_run`` envs that restart one by one as their
episodes end, so no env waits (SMAX only; src/runners/continuous_runner.py).
"""
from typing import Any, Callable, Dict

from runners.batch_runner import BatchRunner
from runners.continuous_runner import ContinuousRunner


def _parallel(args: Any, logger: Any) -> BatchRunner:
    return BatchRunner(args, logger, n_envs=args.batch_size_run)


def _episode(args: Any, logger: Any) -> BatchRunner:
    return BatchRunner(args, logger, n_envs=1)


def _continuous(args: Any, logger: Any) -> BatchRunner:
    return ContinuousRunner(args, logger, n_envs=args.batch_size_run)


REGISTRY: Dict[str, Callable[[Any, Any], BatchRunner]] = {}
REGISTRY["parallel"] = _parallel
REGISTRY["episode"] = _episode
REGISTRY["continuous"] = _continuous
