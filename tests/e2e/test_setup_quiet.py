"""Set-up is quiet: the package builds without setuptools warnings, the Makefile's set-up steps hold back the tools'
output unless a step fails, and every test session opens with one line about the shared models."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# What a wheel is built from (pyproject.toml's package-dir and readme).
_SOURCES = ("pyproject.toml", "README.md", "mcuq", "templates", "runtime_c", "boards")

# Builds a wheel and an editable wheel and prints the first line of every warning setuptools emits, except its
# note on every editable install of a package-dir layout (the Makefile filters that one by its message).
_BUILD = """
import sys, warnings
from setuptools import build_meta
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    build_meta.build_wheel(sys.argv[1])
    build_meta.build_editable(sys.argv[2])
for w in caught:
    text = str(w.message)
    if not text.startswith("Editable installation"):
        print("WARNING", w.category.__name__, text.splitlines()[0])
"""


def test_package_builds_without_deprecation_or_packaging_warnings(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in _SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(path, src / name)
    r = subprocess.run(
        [sys.executable, "-c", _BUILD, str(tmp_path / "whl"), str(tmp_path / "editable")],
        capture_output=True,
        text=True,
        cwd=src,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    warnings_seen = [line for line in r.stdout.splitlines() if line.startswith("WARNING")]
    # a data folder missing from pyproject.toml's `packages` shows up here as "... is absent from the `packages`"
    assert warnings_seen == []
    assert len(list((tmp_path / "whl").glob("mcuq-*.whl"))) == 1


def _make_probe(recipe: str) -> subprocess.CompletedProcess:
    """Runs one recipe line against the project's Makefile (its variables and macros), without any of its targets."""
    return subprocess.run(
        ["make", "-s", "--no-print-directory", "-f", str(ROOT / "Makefile"), "--eval", f"probe:\n\t@{recipe}", "probe"],
        capture_output=True,
        text=True,
    )


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_setup_step_is_silent_when_it_succeeds_apart_from_error_lines() -> None:
    r = _make_probe("$(call quietly,echo chatter; echo ERROR: a broken dependency set; echo more >&2)")
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    assert r.stderr == "ERROR: a broken dependency set\n"


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_setup_step_shows_its_output_and_fails_when_it_fails() -> None:
    r = _make_probe("$(call quietly,echo what went wrong; exit 3)")
    assert r.returncode != 0
    assert "what went wrong" in r.stderr
    assert "mcuq: set-up step failed (status 3)" in r.stderr


_TESTS = """
import pytest

@pytest.fixture
def through_another_fixture(shared_models):
    return shared_models

def test_direct(shared_models):
    assert shared_models.is_dir()

def test_indirect(through_another_fixture):
    assert through_another_fixture.is_dir()

def test_without_models():
    pass
"""


def _session(tmp_path: Path, models: Path) -> subprocess.CompletedProcess:
    """A pytest session over three small tests with the project's conftest as a plugin and MCUQ_MODELS=models."""
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_needs_models.py").write_text(_TESTS)
    env = {**os.environ, "MCUQ_MODELS": str(models), "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "tests.conftest",
            "test_needs_models.py",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    )


def test_session_says_how_many_tests_skip_without_shared_models_and_how_to_point_at_them(tmp_path: Path) -> None:
    empty = tmp_path / "no_models"
    empty.mkdir()
    r = _session(tmp_path, empty)
    assert r.returncode == 0, r.stdout + r.stderr
    first = r.stdout.splitlines()[0]
    assert first == (
        f"shared models: not found at {empty} (MCUQ_MODELS): 2 test(s) will skip; "
        "set MCUQ_MODELS=/path/to/shared/models to run them"
    )
    assert sum("shared models" in line for line in r.stdout.splitlines()) == 1
    assert "1 passed, 2 skipped" in r.stdout


def test_session_says_where_shared_models_are_when_found(tmp_path: Path) -> None:
    models = tmp_path / "models"
    (models / "mlperf_tiny").mkdir(parents=True)
    r = _session(tmp_path, models)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.splitlines()[0] == f"shared models: {models} (MCUQ_MODELS)"
    assert "3 passed" in r.stdout
