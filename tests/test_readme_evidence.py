"""Every number in README's results tables is in the stored file that the table cites.

Convention (README, section "Benchmarks and results", and any table elsewhere with a source):
a results table is preceded, after its section heading, by a line

    Source: benchmarks/results/<file>.json[, benchmarks/results/<other>.json ...]

naming the files written by the command shown above it (a table of settings, not measurements,
says ``Source: none`` and is not checked). Each number in the table's cells must
appear in one of those files after rounding to the digits README shows (values are also tried
x100, for fractions shown in %, and /1000, for K-counts; ``11k`` means 11000). Exempt: the first
column (row labels such as ``3m (3 x 75/96/8)``), and rows whose label or columns whose header
says ``paper`` (the papers' figures, cited from the papers). A cited markdown file (written beside
the JSON by the same command) counts with the numbers in its text.
"""
from __future__ import annotations

import json
import math
import os
import re
from typing import Dict, List, Set, Tuple

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
RESULTS_SECTION = "## Benchmarks and results"
NUMBER = re.compile(r"(?<![\w.])[-+]?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?k?(?![\w])")
SCALES = (1.0, 100.0, 0.001)


def parse_tables(text: str) -> List[Dict[str, object]]:
    """Markdown tables of ``text`` with their section, cited sources and first line number."""
    tables: List[Dict[str, object]] = []
    section, sources, in_code = "", [], False
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            if line.startswith("## "):
                section = line.strip()
            sources = []
        elif not in_code and line.startswith("Source:"):
            sources = [s.strip().strip("`") for s in line[len("Source:"):].split(",") if s.strip()]
        elif not in_code and line.startswith("|"):
            start = i
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                rows.append([c.strip() for c in lines[i].strip().strip("|").split("|")])
                i += 1
            tables.append({"section": section, "sources": list(sources), "line": start + 1,
                           "header": rows[0], "rows": rows[2:]})
            continue
        i += 1
    return tables


def _numbers_in(obj: object, out: Set[float]) -> None:
    if isinstance(obj, bool):
        return
    if isinstance(obj, (int, float)):
        if math.isfinite(obj):
            out.add(float(obj))
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _numbers_in(k, out)
            _numbers_in(v, out)
    elif isinstance(obj, list):
        for v in obj:
            _numbers_in(v, out)
    elif isinstance(obj, str):
        for m in NUMBER.findall(obj):
            value = _to_float(m)
            if value is not None:
                out.add(value)


def _to_float(token: str) -> float | None:
    try:
        scale = 1000.0 if token.endswith("k") else 1.0
        return float(token.rstrip("k").replace(",", "")) * scale
    except ValueError:
        return None


def stored_numbers(path: str) -> Set[float]:
    """Every number in a stored file: a JSON file's values, keys and numbers inside strings; the
    numbers in the text of any other file (a benchmark's markdown table)."""
    with open(path) as fh:
        text = fh.read()
    out: Set[float] = set()
    _numbers_in(json.loads(text) if path.endswith(".json") else text, out)
    return out


def decimals(token: str) -> int:
    body = token.rstrip("k").split("e")[0].split("E")[0]
    return len(body.split(".")[1]) if "." in body else 0


def found(token: str, stored: Set[float]) -> bool:
    """``token`` (as README shows it) equals a stored number rounded to the shown digits."""
    value = _to_float(token)
    if value is None:
        return False
    tol = 0.5 * 10.0 ** -decimals(token) * (1000.0 if token.endswith("k") else 1.0) + 1e-9
    return any(abs(abs(v * s) - abs(value)) <= tol for v in stored for s in SCALES)


def cited_cells(table: Dict[str, object]) -> List[Tuple[str, str]]:
    """``(column header, cell)`` of every checked cell: not the first column, no paper row or column."""
    header = table["header"]
    cells = []
    for row in table["rows"]:
        if "paper" in row[0].lower():
            continue
        for j, cell in enumerate(row[1:], start=1):
            col = header[j] if j < len(header) else ""
            if "paper" not in col.lower():
                cells.append((col, cell))
    return cells


def test_parser_and_matcher_on_a_small_example(tmp_path):
    """The checker itself: a number present after rounding passes, a missing one is reported."""
    stored = tmp_path / "r.json"
    stored.write_text(json.dumps({"a": 0.90625, "b": [18.916667, "230887.5 steps"], "t_max": 11000,
                                  "ratio": 0.4505}))
    text = ("## Benchmarks and results\n\nSource: " + str(stored) + "\n\n"
            "| row 3m | win % | return | steps | budget | paper |\n|---|---|---|---|---|---|\n"
            "| x 400k | 90.6 | 18.92 | 230,888 | 11k | 99.4 |\n| paper | 1.5 | 2.5 | 3.5 | 4.5 | 5.5 |\n")
    table, = parse_tables(text)
    assert table["sources"] == [str(stored)] and table["line"] == 5
    numbers = stored_numbers(str(stored))
    assert [found(c, numbers) for _, cell in cited_cells(table) for c in NUMBER.findall(cell)] == [True] * 4
    assert found("45", numbers) and not found("44", numbers)  # 0.4505 shown in %: 45, never 44
    assert not found("18.93", numbers) and not found("12k", numbers)


def test_every_results_table_cites_stored_files_holding_its_numbers():
    with open(README) as fh:
        tables = [t for t in parse_tables(fh.read()) if t["section"] == RESULTS_SECTION or t["sources"]]
    assert tables, f"no tables found under '{RESULTS_SECTION}' in README.md"
    problems = []
    for t in tables:
        if t["sources"][:1] and t["sources"][0].lower().startswith("none"):
            continue
        where = f"README.md:{t['line']}"
        if not t["sources"]:
            problems.append(f"{where}: table without a 'Source: benchmarks/results/<file>.json' line before it")
            continue
        numbers: Set[float] = set()
        for src in t["sources"]:
            path = os.path.join(ROOT, src)
            if not src.startswith("benchmarks/results/") or not os.path.isfile(path):
                problems.append(f"{where}: cited source '{src}' is not a file under benchmarks/results/")
                continue
            numbers |= stored_numbers(path)
        for col, cell in cited_cells(t):
            for token in NUMBER.findall(cell):
                if not found(token, numbers):
                    problems.append(f"{where}: '{token}' (column '{col}', cell '{cell}') is not in "
                                    f"{', '.join(t['sources'])}")
    if problems:
        pytest.fail("README numbers without a stored source:\n" + "\n".join(problems))
