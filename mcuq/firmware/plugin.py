"""The instruction-counting QEMU plugin: build it with the host C compiler (cached) and read what it writes.

The plugin (plugin/mcuq_insn_count.c) counts every executed guest instruction with an inline add and records
the count each time the guest enters a marker function. An event's count is the number of instructions executed
*before* the marker's first instruction (QEMU 7.2 runs exec callbacks before the instruction's inline add), so
the difference of two events counts exactly the instructions from one marker's entry to the next's.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..build import cache_dir, host_cc
from ..errors import BuildError

PLUGIN_DIR = Path(__file__).resolve().parent / "plugin"
PLUGIN_SOURCES = ("mcuq_insn_count.c", "qemu-plugin.h")
PLUGIN_FLAGS = [
    "-std=c99",
    "-D_POSIX_C_SOURCE=200809L",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-O2",
    "-fPIC",
    "-shared",
    "-fvisibility=hidden",
]
MAX_MARKS = 16
BUILD_TIMEOUT = 120


def plugin_library(cc: str | None = None) -> Path:
    """Compile the plugin into a shared library, cached by compiler, flags and source content."""
    cc = cc or host_cc()
    h = hashlib.sha256(" ".join([cc, *PLUGIN_FLAGS]).encode())
    for name in PLUGIN_SOURCES:
        h.update(name.encode())
        h.update((PLUGIN_DIR / name).read_bytes())
    lib = cache_dir() / f"qemu-plugin-{h.hexdigest()[:20]}" / "libmcuq_insn_count.so"
    if lib.exists():
        return lib
    lib.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mcuq-plugin-", dir=lib.parent) as tmp:
        staged = Path(tmp) / lib.name
        cmd = [cc, *PLUGIN_FLAGS, "-I", str(PLUGIN_DIR), str(PLUGIN_DIR / "mcuq_insn_count.c"), "-o", str(staged)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=BUILD_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise BuildError(f"building the QEMU plugin timed out after {BUILD_TIMEOUT} s: {' '.join(cmd)}") from None
        if proc.returncode != 0:
            raise BuildError(
                f"building the QEMU plugin failed (install gcc, or set CC):\n{' '.join(cmd)}\n"
                f"{(proc.stdout + proc.stderr)[-4000:]}"
            )
        os.replace(staged, lib)  # atomic: concurrent builders agree
    return lib


def _escape(value: str) -> str:
    """QEMU option values double a comma to mean a literal one."""
    return value.replace(",", ",,")


def plugin_args(out: Path, marks: dict[int, int], lib: Path | None = None) -> list[str]:
    """The qemu-system-arm arguments that load the plugin: ``marks`` maps marker ids (0..15) to addresses."""
    lib = lib or plugin_library()
    opts = [f"file={_escape(str(lib))}", f"out={_escape(str(out))}"]
    for mark, addr in sorted(marks.items()):
        if not 0 <= mark < MAX_MARKS:
            raise ValueError(f"marker id {mark} out of range 0..{MAX_MARKS - 1}")
        opts.append(f"mark{mark}={addr & ~1:#x}")
    return ["-plugin", ",".join(opts)]


@dataclass(frozen=True)
class Events:
    """What the plugin wrote: (marker id, instructions executed before it) in order, and the run's total."""

    events: tuple[tuple[int, int], ...]
    total: int


def read_events(path: Path) -> Events:
    """Parse the plugin's output file; a missing or truncated file means QEMU did not exit normally."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        raise BuildError(f"the QEMU plugin wrote no events to {path}: did QEMU exit normally?") from None
    if not lines or lines[0] != "mcuq-insn-count 1":
        raise BuildError(f"{path}: not an mcuq instruction-count file")
    events: list[tuple[int, int]] = []
    total = None
    for line in lines[1:]:
        kind, *rest = line.split()
        if kind == "event":
            events.append((int(rest[0]), int(rest[1])))
        elif kind == "total":
            total = int(rest[0])
        elif kind == "error":
            raise BuildError(f"the QEMU plugin: {' '.join(rest)}")
    if total is None:
        raise BuildError(f"{path}: truncated (no total): did QEMU exit normally?")
    return Events(tuple(events), total)
