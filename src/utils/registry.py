"""Lookup in the plain-dict registries with an error that lists the valid keys."""
from __future__ import annotations

from typing import Any, Mapping


class RegistryError(KeyError):
    """An unknown registry key; the message names the key and the valid choices."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly
        return str(self.args[0]) if self.args else ""


def lookup(registry: Mapping[str, Any], key: str, what: str) -> Any:
    """Return ``registry[key]`` or raise RegistryError naming ``key`` and the valid keys.

    ``what`` is the human name of the registry ("agent", "mixer", ...) used in the message.
    """
    if key not in registry:
        valid = ", ".join(sorted(registry))
        raise RegistryError(f"unknown {what} '{key}'. Valid {what} names: {valid}. "
                            f"Set e.g. `with {what}=<name>` to one of them.")
    return registry[key]


class MissingDependencyError(ImportError):
    """An optional dependency needed by a chosen registry entry is not installed."""
