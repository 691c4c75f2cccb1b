"""Multi-agent controller registry."""
from typing import Any, Dict

from controllers.basic_controller import BasicMAC

REGISTRY: Dict[str, Any] = {}
REGISTRY["basic_mac"] = BasicMAC
