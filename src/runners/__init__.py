"""Runner registry: ``REGISTRY[name](args, logger)``.

``parallel`` steps ``batch_size_run`` environments together (one vmapped SMAX batch or
StarCraft II worker processes); ``episode`` steps a single environment.
"""
from typing import Any, Callable, Dict

from runners.batch_runner import BatchRunner


def _parallel(args: Any, logger: Any) -> BatchRunner:
    return BatchRunner(args, logger, n_envs=args.batch_size_run)


def _episode(args: Any, logger: Any) -> BatchRunner:
    return BatchRunner(args, logger, n_envs=1)


REGISTRY: Dict[str, Callable[[Any, Any], BatchRunner]] = {}
REGISTRY["parallel"] = _parallel
REGISTRY["episode"] = _episode
