"""Where every benchmark's results go: ``<out_dir>/<name>.json`` and ``<name>.md``, table printed."""
from __future__ import annotations

import json
import os
from typing import Any


def write_report(out_dir: str, name: str, data: Any, markdown: str) -> None:
    """Write ``data`` as JSON and ``markdown`` beside it, then print the markdown."""
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, f"{name}.json"), "w") as f:
        json.dump(data, f, indent=1, default=float)
    with open(os.path.join(out_dir, f"{name}.md"), "w") as f:
        f.write(markdown if markdown.endswith("\n") else markdown + "\n")
    print(markdown)

