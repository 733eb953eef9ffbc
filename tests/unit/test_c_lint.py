"""The runtime is written in one C dialect (.clang-format) and is clean under cppcheck: `make lint-c` in a test.

Skips when clang-format or cppcheck is missing (`make test` installs both with apt-get when it may)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from mcuq._paths import RUNTIME_C
from tests.conftest import ROOT

SOURCES = sorted(
    [*(RUNTIME_C / "include").glob("*.h"), *(RUNTIME_C / "src").glob("*/*.c"), *(RUNTIME_C / "src").glob("*/*.h")]
)


@pytest.mark.skipif(shutil.which("clang-format") is None, reason="clang-format is not installed")
def test_runtime_is_clang_formatted() -> None:
    style = f"--style=file:{ROOT / '.clang-format'}"
    proc = subprocess.run(
        ["clang-format", style, "--dry-run", "--Werror", *map(str, SOURCES)], capture_output=True, text=True
    )
    assert proc.returncode == 0, f"run `make format-c`:\n{proc.stderr[:3000]}"


@pytest.mark.skipif(shutil.which("cppcheck") is None, reason="cppcheck is not installed")
def test_runtime_is_cppcheck_clean() -> None:
    proc = subprocess.run(
        ["cppcheck", "--std=c99", "--enable=warning,style,portability", "--error-exitcode=1", "--quiet"]
        + ["--inline-suppr", "--suppress=shiftNegativeLHS", f"-I{RUNTIME_C / 'include'}", str(RUNTIME_C / "src")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[:3000]
