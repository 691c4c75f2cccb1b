"""MARL learner registry: ``REGISTRY[name](mac, env_info, args, logger)``."""
from typing import Any, Dict

from learners.q_learner import QLearner

REGISTRY: Dict[str, Any] = {}
REGISTRY["q_learner"] = QLearner
