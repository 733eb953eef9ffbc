"""Golden snapshot of the demo model's generated C: tests/golden/digits_cnn/ holds the .c and .h that
``mcuq.compile_model("examples/digits_cnn.tflite").files`` produced when they were last accepted, each stored as
``<name>.golden`` (digits_cnn.c.golden, digits_cnn.h.golden): a snapshot is data, not source, so compilers,
C linters and duplicate-code checks that glob for *.c and *.h leave it alone.

Any change to the generated C, intended or not, fails this test with a unified diff. An intended change is
accepted by regenerating the files with ``pytest tests/e2e/test_golden.py --update-golden`` and committing them:
golden changes are reviewed in the commit's diff, so a reviewer sees exactly what the generated C now looks like.
The output is reproducible (no timestamps, no hash order), so the comparison is byte for byte.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

import mcuq

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "examples" / "digits_cnn.tflite"
GOLDEN = ROOT / "tests" / "golden" / "digits_cnn"
FILES = ("digits_cnn.c", "digits_cnn.h")
MAX_DIFF_LINES = 80


@pytest.fixture(scope="module")
def generated() -> dict[str, str]:
    return mcuq.compile_model(MODEL).files


def test_files_are_the_golden_set(generated: dict[str, str]) -> None:
    """The model's generated files are exactly those kept under tests/golden/ (a new or renamed file needs one)."""
    assert sorted(generated) == sorted(FILES)


def _diff(want: str, got: str, name: str) -> str:
    lines = list(
        difflib.unified_diff(want.splitlines(True), got.splitlines(True), f"golden/{name}", f"generated/{name}")
    )
    more = len(lines) - MAX_DIFF_LINES
    return "".join(lines[:MAX_DIFF_LINES]) + (f"\n... {more} more diff lines" if more > 0 else "")


@pytest.mark.parametrize("name", FILES)
def test_generated_c_matches_golden(name: str, generated: dict[str, str], update_golden: bool) -> None:
    path = GOLDEN / f"{name}.golden"
    got = generated[name]
    if update_golden:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(got.encode())
        return
    assert path.exists(), f"{path} is missing: create it with `pytest tests/e2e/test_golden.py --update-golden`"
    want = path.read_bytes()
    if got.encode() != want:
        pytest.fail(
            f"the generated {name} differs from tests/golden/digits_cnn/{path.name}; if the change is intended, run "
            f"`pytest tests/e2e/test_golden.py --update-golden` and commit the files (review the diff):\n"
            f"{_diff(want.decode(errors='replace'), got, name)}",
            pytrace=False,
        )
