"""Regenerate one benchmark's section of a docs page from its stored JSON.

A section is the text between ``<!-- <name>:begin -->`` and ``<!-- <name>:end -->``; ``splice`` replaces
it (markers kept), so every number in that part of the page comes from the JSON the benchmark wrote.
"""
from __future__ import annotations

import json
import os
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PERFORMANCE_DOC = os.path.join(ROOT, "docs", "performance.md")


def load(name: str, results_dir: str = os.path.join(ROOT, "benchmarks", "results")) -> Any:
    """``benchmarks/results/<name>.json`` (None when it is missing)."""
    path = os.path.join(results_dir, f"{name}.json")
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def splice(text: str, name: str, body: str) -> str:
    """``text`` with the section ``name`` replaced by ``body``; a clear error if its markers are missing."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    i, j = text.find(begin), text.find(end)
    if i < 0 or j < i:
        raise ValueError(f"no section '{name}' ({begin} ... {end}) in the page; add both markers first")
    return text[:i + len(begin)] + "\n" + body.strip("\n") + "\n" + text[j:]


def update_page(name: str, body: str, path: str = PERFORMANCE_DOC) -> None:
    """Rewrite section ``name`` of the page at ``path`` in place."""
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(splice(text, name, body))
