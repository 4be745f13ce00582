"""Which Python `make` builds with: the newest supported one found, said plainly, and a stale venv rebuilt."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

PYTHONS = ROOT / "tools" / "pythons"
THIS = os.path.realpath(sys._base_executable)  # the interpreter this venv was made with


def pythons(*args, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([str(PYTHONS), *args], capture_output=True, text=True, env=env, timeout=60)


def test_the_interpreter_running_the_tests_is_found_and_the_newest_comes_first():
    found = pythons().stdout.split()
    assert THIS in found
    versions = [subprocess.check_output([p, "-c", "import sys; print(sys.version_info[1])"]) for p in found]
    minors = [int(v) for v in versions]
    assert minors == sorted(minors, reverse=True) and set(minors) <= {11, 12, 13}


def test_check_names_the_path_of_a_usable_interpreter_and_refuses_others():
    assert pythons("--check", sys.executable).stdout.strip() == THIS
    missing = pythons("--check", "/nonexistent/python3.13")
    assert missing.returncode == 1 and "does not run" in missing.stderr


def test_with_no_supported_python_it_says_what_to_install(tmp_path):
    bin_dir = tmp_path / "bin"  # the tools the script needs, and no python at all
    bin_dir.mkdir()
    for tool in ("sh", "ls", "sort", "tail"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    result = pythons(
        "--explain", env={"PATH": str(bin_dir), "PYENV_ROOT": str(tmp_path), "HOME": str(tmp_path)}
    )
    assert result.returncode == 1 and result.stdout == ""
    assert "No supported Python found" in result.stderr and "python3.13-venv python3.13-dev" in result.stderr


def make_dry_run(venv: Path) -> str:
    """What `make install` would do for this venv (make -n: nothing is run)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHON", "MAKEFLAGS", "MAKELEVEL")}
    run = subprocess.run(
        ["make", "-n", "install", f"VENV={venv}", f"PYTHON={THIS}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    return run.stdout


ANOTHER = os.path.realpath(shutil.which("sh"))  # any other executable: make compares paths, runs nothing


@pytest.mark.parametrize(
    ("made_with", "rebuilt"), [(ANOTHER, True), (THIS, False)], ids=["another", "the same"]
)
def test_a_venv_made_by_another_interpreter_is_rebuilt(tmp_path, made_with, rebuilt):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(made_with)
    (venv / "pyvenv.cfg").write_text(f"home = {Path(made_with).parent}\nexecutable = {made_with}\n")
    (venv / ".installed").touch()
    plan = make_dry_run(venv)
    assert (f"rm -rf {venv}" in plan) is rebuilt
    assert (f"{venv} was made with {made_with}: rebuilding it with {THIS}" in plan) is rebuilt


def test_the_readme_installs_durable_rules_as_make_does():
    """One build of durable-rules for every path: make, CI (which runs make) and a plain pip install."""
    makefile, readme = (ROOT / "Makefile").read_text(), (ROOT / "README.md").read_text()
    build = 'CC="gcc -DPyEval_CallObject=PyObject_CallObject"'
    assert f"PIP_INSTALL := {build} $(BIN)/pip install -q --no-binary durable-rules" in makefile
    assert f"{build} pip install --no-binary durable-rules '.[test]'" in readme
