"""The board file schema: what a ``boards/*.toml`` file may say, checked field by field.

A board file is data. Its strings reach Makefiles, CMake files, compiler command lines and the QEMU command
line, so nothing in it may be a command: every field has a type and a range, every string a syntax, and any
other key is refused. Each refusal is one line, ``<file>: key '<field>' <what is wrong>``.

Fields (see ``mcuq.boards`` for their meaning):

  name          1-64 of ``A-Z a-z 0-9 . _ -``, starting with a letter or digit; equals the file stem
  description   printable, one line, at most 200 characters;  vendor: 100;  url: 300
  notes         printable lines (tabs allowed), at most 4000 characters in all
  cpu           "host", or a Cortex-M name GCC knows: ``CPU_ARCH``
  arch          the cpu's architecture, ``CPU_ARCH[cpu]``
  emulated      true or false
  cflags        at most 32 flags, each ``-[A-Za-z0-9][A-Za-z0-9_=.,+-]*`` (no ``$``, spaces, quotes, ``;``,
                backticks, slashes or newlines), at most 64 characters, and one of (``FLAG_RULES``):
                  -mcpu=<cpu>   exactly once, the board's cpu
                  -mthumb       required
                  -mfpu=<fpu>   at most once, one of ``FPUS``
                  -mfloat-abi=  at most once, soft, softfp or hard
                  -m<option>[=<value>]   any other machine option (e.g. -mno-unaligned-access)
                  -O, -O0..-O3, -Os, -Og, -Oz, -Ofast
                  -D<NAME> or -D<NAME>=<number>   a C identifier, a decimal or hex number
                  -f<option>[=<value>]   except -fplugin (loads code into the compiler) and -fdump, -fprofile,
                                -fauto-profile (read or write files of their own)
                No flag may appear twice. The host board has no cflags, arch or features: it builds with $CC.
  features      a subset of dsp, fpu, mve, each once; fpu exactly when -mfloat-abi=hard; dsp and mve only
                where the cpu has them (``CPU_FEATURES``)
  flash_size, ram_size, stack_size   integers, 0 < n < 2^32
  [qemu] machine       one of ``QEMU_MACHINES``, whose CPU must be the board's cpu
  [qemu] icount_step   a finite number, 0 < x < 2^32
  [memory] flash, ram  ``{ origin = int, length = int }``: 0 <= origin, 0 < length, origin + length <= 2^32;
                       the two regions do not overlap, and their lengths equal flash_size and ram_size
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from .errors import McuqError

HOST = "host"
FEATURES = ("dsp", "fpu", "mve")
LIMIT = 2**32  # sizes, addresses and lengths are 32-bit quantities on a Cortex-M

CPU_ARCH = {
    "cortex-m0": "armv6-m", "cortex-m0plus": "armv6-m", "cortex-m3": "armv7-m", "cortex-m4": "armv7e-m",
    "cortex-m7": "armv7e-m", "cortex-m23": "armv8-m.base", "cortex-m33": "armv8-m.main",
    "cortex-m35p": "armv8-m.main", "cortex-m55": "armv8.1-m.main", "cortex-m85": "armv8.1-m.main",
}  # fmt: skip
# qemu-system-arm -M values mcuq accepts, with the CPU each emulates: the five of boards/ and the other
# Cortex-M machines ../shared/TOOLCHAIN.md names.
QEMU_MACHINES = {
    "mps2-an385": "cortex-m3", "mps2-an386": "cortex-m4", "mps2-an500": "cortex-m7", "mps2-an505": "cortex-m33",
    "mps3-an547": "cortex-m55", "lm3s6965evb": "cortex-m3", "netduino2": "cortex-m3", "microbit": "cortex-m0",
}  # fmt: skip
# The optional features each CPU may have (dsp: the Armv7E-M/Armv8-M DSP extension, SXTB16/SMLAD; mve: Helium).
# A board may list fewer (a core built without them); listing one its CPU lacks is an error. The kernels are
# correct either way: each variant falls back to plain C where the compiler does not target the feature.
CPU_FEATURES = {
    "cortex-m4": ("dsp",), "cortex-m7": ("dsp",), "cortex-m33": ("dsp",), "cortex-m35p": ("dsp",),
    "cortex-m55": ("dsp", "mve"), "cortex-m85": ("dsp", "mve"),
}  # fmt: skip
FPUS = ("auto", "fpv4-sp-d16", "fpv5-sp-d16", "fpv5-d16")
FLOAT_ABIS = ("soft", "softfp", "hard")
MAX_FLAGS = 32

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_FLAG = re.compile(r"-[A-Za-z0-9][A-Za-z0-9_=.,+-]{0,63}")
_VALUE = r"(=[A-Za-z0-9_.,+-]+)?"
_DENIED_F = ("-fplugin", "-fdump", "-fprofile", "-fauto-profile")
# (what a rule allows, its pattern): a flag must match one of these in full.
FLAG_RULES = (
    ("-mcpu=<cpu>", re.compile(r"-mcpu=[a-z0-9.+-]+")),
    ("-mfpu=<fpu>", re.compile(r"-mfpu=[a-z0-9-]+")),
    ("-mfloat-abi=<abi>", re.compile(r"-mfloat-abi=[a-z]+")),
    ("-m<option>[=<value>]", re.compile(r"-m[a-z0-9][a-z0-9-]*" + _VALUE)),
    ("-O<level>", re.compile(r"-O([0-3sgz]|fast)?")),
    ("-D<NAME>[=<number>]", re.compile(r"-D[A-Za-z_][A-Za-z0-9_]*(=-?(0[xX][0-9A-Fa-f]+|[0-9]+)[uUlL]*)?")),
    ("-f<option>[=<value>]", re.compile(r"-f[a-z0-9][a-z0-9-]*" + _VALUE)),
)


class BoardError(McuqError):
    """A board name that does not exist, or a board file that does not follow the schema."""


def show(value: Any, limit: int = 60) -> str:
    """A value for an error message: its repr (control characters escaped), cut to ``limit`` characters."""
    r = repr(value)
    return r if len(r) <= limit else r[: limit - 3] + "..."


# -- field checks: (where, key, value) -> None, raising BoardError -------------------------------------------
Check = Callable[[str, str, Any], None]


def _bad(where: str, key: str, what: str) -> BoardError:
    return BoardError(f"{where}: key '{key}' {what}")


def text(max_len: int, lines: bool = False) -> Check:
    """A printable string of at most ``max_len`` characters; one line unless ``lines``."""

    def check(where: str, key: str, v: str) -> None:
        if not v.strip():
            raise _bad(where, key, "must not be empty")
        if len(v) > max_len:
            raise _bad(where, key, f"is {len(v)} characters long; at most {max_len}")
        parts = v.replace("\t", " ").split("\n") if lines else [v]
        bad = next((c for part in parts for c in part if not c.isprintable()), None)
        if bad is not None:
            say = "a control or unprintable character" if lines else "a line break or unprintable character"
            raise _bad(where, key, f"has {say} ({bad!r}); it must be printable text")

    return check


def name(where: str, key: str, v: str) -> None:
    if not _NAME.fullmatch(v):
        raise _bad(
            where, key, f"is {show(v)}; use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )


def cpu(where: str, key: str, v: str) -> None:
    if v != HOST and v not in CPU_ARCH:
        raise _bad(where, key, f"is {show(v)}, not a Cortex-M CPU mcuq knows; one of: {HOST}, {', '.join(CPU_ARCH)}")


def size(where: str, key: str, v: int) -> None:
    if not 0 < v < LIMIT:
        raise _bad(where, key, f"must be positive and below 2^32, got {v}")


def origin(where: str, key: str, v: int) -> None:
    if not 0 <= v < LIMIT:
        raise _bad(where, key, f"must not be negative and must be below 2^32, got {v}")


def icount(where: str, key: str, v: float) -> None:
    if not (math.isfinite(v) and 0 < v < LIMIT):
        raise _bad(where, key, f"must be a finite positive number below 2^32, got {v}")


def features(where: str, key: str, v: list[Any]) -> None:
    for f in v:
        if f not in FEATURES:
            raise _bad(where, key, f"has {show(f)}; allowed: {', '.join(FEATURES)}")
    if len(set(v)) != len(v):
        raise _bad(where, key, "lists a feature twice")


def machine(where: str, key: str, v: str) -> None:
    if v not in QEMU_MACHINES:
        raise _bad(where, key, f"is {show(v)}, not a QEMU machine mcuq supports; one of: {', '.join(QEMU_MACHINES)}")


def flag_problem(flag: str) -> str | None:
    """Why ``flag`` may not be in a board's cflags (None: it may). The cpu-dependent checks are in ``cflags``."""
    if not _FLAG.fullmatch(flag):
        return (
            "is not a plain compiler flag (a '-', then at most 64 letters, digits or _=.,+- ; "
            "no spaces, quotes, '$', ';', '/', backticks or line breaks)"
        )
    if flag.startswith(_DENIED_F):
        return "is not allowed: -fplugin loads code into the compiler, -fdump/-fprofile read or write files"
    if flag.startswith("-mfpu=") and flag[6:] not in FPUS:
        return f"has an FPU mcuq does not know; -mfpu= one of: {', '.join(FPUS)}"
    if flag.startswith("-mfloat-abi=") and flag[12:] not in FLOAT_ABIS:
        return f"has an unknown float ABI; -mfloat-abi= one of: {', '.join(FLOAT_ABIS)}"
    if not any(rule.fullmatch(flag) for _, rule in FLAG_RULES):
        return f"is not an allowed flag; allowed: {', '.join(what for what, _ in FLAG_RULES)}"
    return None


def cflags(where: str, key: str, v: list[str], board_cpu: str) -> None:
    if len(v) > MAX_FLAGS:
        raise _bad(where, key, f"has {len(v)} flags; at most {MAX_FLAGS}")
    for flag in v:
        why = flag_problem(flag)
        if why:
            raise _bad(where, key, f"flag {show(flag)} {why}")
    if len(set(v)) != len(v):
        raise _bad(where, key, f"lists a flag twice: {show(next(f for f in v if v.count(f) > 1))}")
    for opt in ("-mcpu=", "-mfpu=", "-mfloat-abi="):
        if sum(f.startswith(opt) for f in v) > 1:
            raise _bad(where, key, f"has more than one {opt} flag")
    if f"-mcpu={board_cpu}" not in v or "-mthumb" not in v:
        raise _bad(where, key, f"must contain -mcpu={board_cpu} and -mthumb")


# -- tables ------------------------------------------------------------------------------------------------------
_TYPE_NAMES = {str: "a string", int: "an integer", bool: "true or false", float: "a number", list: "an array",
               dict: "a table"}  # fmt: skip
Schema = dict[str, tuple[type, Check | None]]

TOP: Schema = {
    "name": (str, name), "description": (str, text(200)), "cpu": (str, cpu), "emulated": (bool, None),
    "notes": (str, text(4000, lines=True)), "arch": (str, None), "cflags": (list, None), "features": (list, features),
    "flash_size": (int, size), "ram_size": (int, size), "vendor": (str, text(100)), "url": (str, text(300)),
    "stack_size": (int, size), "qemu": (dict, None), "memory": (dict, None),
}  # fmt: skip
NOT_HOST = ("arch", "cflags", "features", "flash_size", "ram_size", "vendor", "url")  # required unless the host
HOST_ONLY_ABSENT = ("arch", "cflags", "features")
QEMU: Schema = {"machine": (str, machine), "icount_step": (float, icount)}
MEMORY: Schema = {"flash": (dict, None), "ram": (dict, None)}
REGION: Schema = {"origin": (int, origin), "length": (int, size)}


def _type_ok(value: Any, want: type) -> bool:
    if want is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if want is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, want)


def check_table(where: str, table: dict[str, Any], schema: Schema, required: tuple[str, ...]) -> None:
    """Keys known, required keys present, each value of its type and passing its check."""
    for key in table:
        if key not in schema:
            raise BoardError(f"{where}: unknown key {show(key)} (allowed: {', '.join(schema)})")
    for key in required:
        if key not in table:
            raise BoardError(f"{where}: missing key '{key}'")
    for key, value in table.items():
        want, check = schema[key]
        if not _type_ok(value, want):
            got = "true/false" if isinstance(value, bool) else type(value).__name__
            raise _bad(where, key, f"must be {_TYPE_NAMES[want]}, got {got} {show(value)}")
        if want is list and not all(isinstance(v, str) for v in value):
            raise _bad(where, key, "must be an array of strings")
        if check is not None:
            check(where, key, value)
