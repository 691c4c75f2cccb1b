"""Static checks of the shell scripts and the Dockerfile (no docker engine or downloads here),
plus run.sh / docker/build.sh driven against a fake `docker` that records its arguments."""
from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ["install_sc2.sh", "run.sh", "docker/build.sh"]
DOCKERFILE = ROOT / "docker" / "Dockerfile"
KEYWORDS = {"FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME",
            "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL", "MAINTAINER"}


@pytest.mark.parametrize("script", SCRIPTS)
def test_bash_syntax_and_strict_mode(script):
    path = ROOT / script
    text = path.read_text()
    assert text.startswith("#!/usr/bin/env bash"), f"{script}: needs a bash shebang"
    assert "set -euo pipefail" in text, f"{script}: needs `set -euo pipefail`"
    res = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


@pytest.mark.parametrize("script", SCRIPTS)
def test_shellcheck(script):
    exe = shutil.which("shellcheck")
    if exe is None:
        pytest.skip("shellcheck not installed (apt-get install -y shellcheck)")
    res = subprocess.run([exe, "-x", str(ROOT / script)], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stdout + res.stderr


def _instructions(text: str) -> list[tuple[str, str]]:
    """Logical Dockerfile instructions (keyword, arguments), joining `\\` continuations."""
    out, buf = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if buf and line.startswith("#"):
            continue  # comment inside a continued instruction
        buf += (" " if buf else "") + line
        if buf.endswith("\\"):
            buf = buf[:-1].rstrip()
            continue
        word, _, rest = buf.partition(" ")
        out.append((word, rest.strip()))
        buf = ""
    assert not buf, "Dockerfile ends inside a line continuation"
    return out


def test_dockerfile_parses():
    ins = _instructions(DOCKERFILE.read_text())
    words = [w for w, _ in ins]
    unknown = [w for w in words if w.upper() not in KEYWORDS]
    assert not unknown, f"unknown Dockerfile instructions: {unknown}"
    assert all(w == w.upper() for w in words), "instructions should be upper case"
    first = next(i for i, w in enumerate(words) if w != "ARG")
    assert words[first] == "FROM", "the first instruction after ARGs must be FROM"
    assert re.match(r"nvidia/cuda:\S+runtime", ins[first][1]), "base must be a CUDA runtime image"
    for w, args in ins:
        assert args, f"{w} has no arguments"
        if w in ("COPY", "ADD"):
            src = args.split()[0]
            assert (ROOT / src).exists(), f"{w} source {src} is not in the repository (build context)"
    body = " ".join(a for _, a in ins)
    assert "python3.11" in body and "requirements.txt" in body and "install_sc2.sh" in body
    assert "SC2PATH" in body
    # every COPY source must survive the context filter
    ignore = (ROOT / "docker" / "Dockerfile.dockerignore").read_text().split()
    allowed = {p[1:] for p in ignore if p.startswith("!")}
    for w, args in ins:
        if w == "COPY":
            assert args.split()[0] in allowed, f"{args.split()[0]} is excluded by the .dockerignore"


def test_dockerfile_parser_rejects_bad_input(tmp_path):
    bad = "RUN echo hi\nFROM x\nFROOM y\n"
    words = [w for w, _ in _instructions(bad)]
    assert words == ["RUN", "FROM", "FROOM"]  # so the checks above would flag order and keyword


def _fake_docker(tmp_path: Path) -> tuple[dict, Path]:
    """A `docker` on PATH that writes its argv (one per line) to a log file."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "docker_args.txt"
    exe = bindir / "docker"
    exe.write_text(f'#!/usr/bin/env bash\nprintf "%s\\n" "$@" > "{log}"\n')
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    env = dict(os.environ, PATH=f"{bindir}:{os.environ['PATH']}", RESULTS_DIR=str(tmp_path / "res"))
    return env, log


def test_run_sh_builds_docker_command(tmp_path):
    env, log = _fake_docker(tmp_path)
    cmd = ["bash", str(ROOT / "run.sh"), "1", "python", "src/main.py", "--config=qmix",
           "--env-config=sc2", "with", "agent=grsn"]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert res.returncode == 0, res.stderr
    args = log.read_text().splitlines()
    assert args[0] == "run"
    assert args[args.index("--gpus") + 1] == '"device=1"'
    assert f"{ROOT}:/pymarl" in args
    assert f"{tmp_path / 'res'}:/pymarl/results" in args and (tmp_path / "res").is_dir()
    assert args[-6:] == ["python", "src/main.py", "--config=qmix", "--env-config=sc2", "with", "agent=grsn"]
    assert args[-7] == "grsn-marl:latest"

    res = subprocess.run(["bash", str(ROOT / "run.sh"), "cpu", "true"], env=env,
                         capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert res.returncode == 0 and "--gpus" not in log.read_text().splitlines()


def test_run_sh_usage_error():
    res = subprocess.run(["bash", str(ROOT / "run.sh")], capture_output=True, text=True)
    assert res.returncode == 2 and "usage" in res.stderr


def test_build_sh_command(tmp_path):
    env, log = _fake_docker(tmp_path)
    res = subprocess.run(["bash", str(ROOT / "docker" / "build.sh"), "me/img:1"], env=env,
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    args = log.read_text().splitlines()
    assert args[0] == "build" and args[args.index("-t") + 1] == "me/img:1"
    assert args[args.index("-f") + 1] == str(ROOT / "docker" / "Dockerfile") and args[-1] == str(ROOT)
