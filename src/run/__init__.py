"""Run-loop registry: ``REGISTRY[name](args, logger) -> None``.

Loops are imported lazily so that, e.g., the MARL loop does not import MuJoCo.
"""
from __future__ import annotations

from typing import Any, Callable, Dict


def _marl(args: Any, logger: Any) -> None:
    from run.marl import run_marl
    run_marl(args, logger)


def _po_rl(args: Any, logger: Any) -> None:
    from run.po_rl import run_po_rl
    run_po_rl(args, logger)


def _td3_mujoco(args: Any, logger: Any) -> None:
    from run.td3_mujoco import run_td3_mujoco
    run_td3_mujoco(args, logger)


REGISTRY: Dict[str, Callable[[Any, Any], None]] = {}
REGISTRY["marl"] = _marl
REGISTRY["po_rl"] = _po_rl
REGISTRY["td3_mujoco"] = _td3_mujoco
