"""No lower layer imports the energy package (or anything above it); layers in docs/energy.md."""
import ast
import os

import pytest

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "src")
# what src/utils, src/components and src/modules may not import: energy and every layer above them
ABOVE_MODULES = {"energy", "run", "runners", "learners", "controllers", "main", "experiments", "sweep", "results"}
# and what is above each lower package besides (utils imports none of the others; components not modules/envs)
FORBIDDEN = {"utils": ABOVE_MODULES | {"modules", "components", "envs"},
             "components": ABOVE_MODULES | {"modules", "envs"}, "modules": ABOVE_MODULES}
# what energy's modules other than energy.checkpoints may not import (they are called by run)
ABOVE_ENERGY = {"run", "main", "experiments", "sweep", "results"}


def imported_packages(path):
    """Top-level package names of every import in the file (module-level and inside functions)."""
    tree = ast.parse(open(path).read(), filename=path)
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def python_files(package):
    for root, _, files in os.walk(os.path.join(SRC, package)):
        for f in files:
            if f.endswith(".py"):
                yield os.path.join(root, f)


def test_imported_packages_sees_function_level_imports(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("import torch\nfrom .x import y\ndef g():\n    from energy.counting import OpCounter\n"
                 "    import run.marl\n")
    assert imported_packages(str(f)) == {"torch", "energy", "run"}


@pytest.mark.parametrize("package", ["utils", "components", "modules"])
def test_lower_layers_do_not_import_energy_or_above(package):
    bad = {os.path.relpath(p, SRC): sorted(imported_packages(p) & FORBIDDEN[package]) for p in python_files(package)}
    bad = {k: v for k, v in bad.items() if v}
    assert not bad, f"upward imports (main -> run -> energy -> modules -> components/utils, docs/energy.md): {bad}"


def test_the_old_utils_energy_import_would_fail(tmp_path):
    """The check catches what issue 49 found: utils importing modules (inside a function)."""
    f = tmp_path / "energy.py"
    f.write_text("def f():\n    from modules.neurons.recording import SpikeRecorder\n")
    assert imported_packages(str(f)) & FORBIDDEN["utils"] == {"modules"}


def test_energy_below_run_except_the_checkpoint_table():
    files = [p for p in python_files("energy") if os.path.basename(p) != "checkpoints.py"]
    assert len(files) >= 6
    bad = {os.path.relpath(p, SRC): sorted(imported_packages(p) & ABOVE_ENERGY) for p in files}
    assert not {k: v for k, v in bad.items() if v}, bad


def test_run_loops_call_energy_through_one_entry():
    for loop in ("marl", "po_rl", "td3_mujoco"):
        text = open(os.path.join(SRC, "run", f"{loop}.py")).read()
        calls = [line.strip() for line in text.splitlines() if "energy." in line and "import" in line]
        assert all(c in ("from energy.evaluate import report_energy", "from energy.recording import SpikeRecorder")
                   for c in calls), calls
        assert f'report_energy("{loop}"' in text
