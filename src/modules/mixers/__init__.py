"""Mixer registry: ``REGISTRY[name](n_agents, state_dim, args)``."""
from typing import Any, Dict

from modules.mixers.qmix import QMixer
from modules.mixers.vdn import VDNMixer

REGISTRY: Dict[str, Any] = {}
REGISTRY["qmix"] = QMixer
REGISTRY["vdn"] = VDNMixer
