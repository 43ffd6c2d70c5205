"""scripts/setup_env.sh reinstalls only when an input of the installed package changed.

The script runs on a small copy of the project's layout whose .venv holds a stand-in ``python``
that records its arguments instead of installing anything. The stamp is checked against a hash
computed here independently (sha256 of the ``sha256sum`` listing of the inputs, sorted by path).
"""
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
INPUTS = ["pyproject.toml", "CMakeLists.txt", "cpp/mlbs/core.hpp", "mlbs_core/bindings.cpp",
          "python/mlbs/__init__.py", "python/mlbs/data/bundled/yeast.xml"]

pytestmark = pytest.mark.skipif(shutil.which("sha256sum") is None or shutil.which("bash") is None,
                                reason="needs bash and sha256sum")


def expected_hash(root: Path) -> str:
    files = sorted(p.relative_to(root).as_posix() for d in ("pyproject.toml", "CMakeLists.txt",
                                                             "scripts/setup_env.sh", "cpp", "mlbs_core", "python/mlbs")
                   for p in ([root / d] if (root / d).is_file() else (root / d).rglob("*"))
                   if p.is_file() and "__pycache__" not in p.parts and not p.name.endswith(".pyc")
                   and not p.name.startswith("_core") and not any(part.startswith(".") for part in
                                                                   p.relative_to(root).parts))
    listing = "".join(f"{hashlib.sha256((root / f).read_bytes()).hexdigest()}  {f}\n" for f in files)
    return hashlib.sha256(listing.encode()).hexdigest()


@pytest.fixture
def project(tmp_path):
    for name in INPUTS:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(f"contents of {name}\n")
    (tmp_path / "python/mlbs/_core.cpython-311-x86_64-linux-gnu.so").write_text("built in place\n")
    (tmp_path / "python/mlbs/__pycache__").mkdir()
    (tmp_path / "python/mlbs/__pycache__/x.pyc").write_text("bytecode\n")
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts/setup_env.sh", tmp_path / "scripts/setup_env.sh")
    bin_dir = tmp_path / ".venv/bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "activate").write_text(f'PATH="{bin_dir}:$PATH"\n')
    fake = bin_dir / "python"
    fake.write_text(f'#!/usr/bin/env bash\necho "$@" >> "{tmp_path}/calls.log"\n')
    fake.chmod(0o755)
    (bin_dir / "mlbs").write_text("#!/bin/sh\n")
    (bin_dir / "mlbs").chmod(0o755)
    return tmp_path


def run_setup(root: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k != "PYTHON"}
    out = subprocess.run(["bash", str(root / "scripts/setup_env.sh")], capture_output=True, text=True, env=env,
                         check=True)
    return out.stdout


def calls(root: Path) -> list[str]:
    log = root / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


def test_installs_then_does_nothing_until_an_input_changes(project):
    assert "installed" in run_setup(project)  # no stamp yet: install
    assert any("--no-build-isolation" in c and ".[experiments,cluster,test]" in c for c in calls(project))
    stamp = project / ".venv/.mlbs-stamp"
    assert stamp.read_text().strip() == expected_hash(project)
    n = len(calls(project))

    assert "up to date" in run_setup(project)  # nothing changed
    (project / "python/mlbs/_core.cpython-311-x86_64-linux-gnu.so").write_text("rebuilt\n")  # not an input
    (project / "python/mlbs/__pycache__/x.pyc").write_text("other bytecode\n")
    assert "up to date" in run_setup(project)
    assert len(calls(project)) == n

    for name in ("cpp/mlbs/core.hpp", "python/mlbs/__init__.py", "pyproject.toml"):
        (project / name).write_text("changed\n")
        assert "installed" in run_setup(project), name
        assert stamp.read_text().strip() == expected_hash(project)
        assert len(calls(project)) > n
        n = len(calls(project))
