"""runtime_c and generated C: strict C99, integer-only (no FPU registers), and clean for arm-none-eabi-gcc."""

from __future__ import annotations

import platform
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import mcuq
from mcuq._paths import RUNTIME_C
from mcuq.build import WARNINGS, runtime_sources

ROOT = Path(__file__).resolve().parents[2]
STRICT = [*WARNINGS, "-pedantic", "-O2"]


def _sources(tmp_path) -> list[str]:
    """All runtime sources plus a generated model that uses several op families."""
    cm = mcuq.compile_model(ROOT / "examples" / "digits_cnn.tflite", prefix="tiny")
    (tmp_path / "proj").mkdir()
    for name, text in cm.files.items():
        (tmp_path / "proj" / name).write_text(text)
    return [str(p) for p in runtime_sources()] + [str(tmp_path / "proj" / "tiny.c")]


def _compile_all(cc: str, flags: list[str], tmp_path) -> None:
    for src in _sources(tmp_path):
        r = subprocess.run(
            [
                cc,
                *flags,
                "-I",
                str(RUNTIME_C / "include"),
                "-I",
                str(tmp_path / "proj"),
                "-c",
                src,
                "-o",
                str(tmp_path / "x.o"),
            ],
            capture_output=True,
            text=True,
        )
        assert r.returncode == 0, f"{src}:\n{r.stderr}"


def test_runtime_sources_exist():
    names = {p.stem for p in runtime_sources()}
    assert {"mcuq_conv2d_s8", "mcuq_depthwise_conv2d_s8", "mcuq_fully_connected_s8"} <= names
    assert len(names) >= 12


@pytest.mark.skipif(platform.machine() not in ("x86_64", "aarch64"), reason="-mgeneral-regs-only needs x86-64/arm64")
def test_integer_only_host(tmp_path):
    """-mgeneral-regs-only makes any float or double use a compile error: proves the runtime is integer-only."""
    _compile_all("cc", [*STRICT, "-mgeneral-regs-only"], tmp_path)


def test_no_malloc_or_stdio_in_runtime():
    banned = ("malloc(", "calloc(", "free(", "printf(", "<stdio.h>", "<stdlib.h>", "float", "double")
    for src in [*runtime_sources(), *(RUNTIME_C / "include").glob("*.h")]:
        text = re.sub(r"/\*.*?\*/|//[^\n]*", "", src.read_text(), flags=re.S)  # code only, not comments
        for b in banned:
            assert b not in text, f"{src.name} uses {b}"


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc not installed (make setup)")
@pytest.mark.parametrize("cpu", ["cortex-m0plus", "cortex-m4", "cortex-m55"])
def test_arm_none_eabi_strict(cpu, tmp_path):
    _compile_all("arm-none-eabi-gcc", [*STRICT, f"-mcpu={cpu}", "-mthumb", "-ffreestanding"], tmp_path)
