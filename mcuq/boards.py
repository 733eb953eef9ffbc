"""Boards: ``boards/<name>.toml`` -> ``Board`` (the flash/RAM fit check of a model is in ``mcuq.fit``).

Board file schema (one TOML file per board, the file stem is the board's name; unknown keys are errors):

  name         str   required; equals the file stem
  description  str   required; one line
  cpu          str   required; "host" for the machine mcuq runs on, else a GCC -mcpu value ("cortex-m4")
  emulated     bool  required; true when mcuq runs it in qemu-system-arm
  notes        str   optional; anything a user should know (memory banks, reserved areas)
  -- required for every board except the host (optional there):
  arch         str   architecture ("armv7e-m"); must match cpu for the CPUs in _ARCH
  cflags       [str] compiler flags selecting the CPU and ABI: -mcpu=<cpu> -mthumb [-mfpu=...] -mfloat-abi=...
  features     [str] subset of "fpu", "dsp", "mve"; "fpu" exactly when -mfloat-abi=hard
  flash_size   int   bytes of flash (code + constants) the model may use
  ram_size     int   bytes of RAM, the largest contiguous bank usable for the arena when there are several
  vendor       str   who sells it
  url          str   the datasheet or product page the sizes come from
  stack_size   int   optional; bytes reserved for the stack (default DEFAULT_STACK_SIZE)
  -- [qemu]: required when emulated, absent otherwise
  machine      str   qemu-system-arm -M value
  icount_step  float optional; guest instructions per SysTick count under -icount shift=0 (TOOLCHAIN.md)
  -- [memory]: required when emulated (the firmware's linker regions), optional otherwise
  flash = { origin = int, length = int }   length must equal flash_size
  ram   = { origin = int, length = int }   length must equal ram_size
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ._paths import BOARDS
from .errors import McuqError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pip install tomli
    import tomli as tomllib  # type: ignore[no-redef]

DEFAULT_BOARD = "mps2-an386"
HOST = "host"
FEATURES = ("dsp", "fpu", "mve")
DEFAULT_STACK_SIZE = 2048  # deepest runtime kernel frame is 280 B (-fstack-usage, M0+), invoke + main < 200 B


_ARCH = {
    "cortex-m0plus": "armv6-m", "cortex-m0": "armv6-m", "cortex-m3": "armv7-m", "cortex-m4": "armv7e-m",
    "cortex-m7": "armv7e-m", "cortex-m23": "armv8-m.base", "cortex-m33": "armv8-m.main",
    "cortex-m55": "armv8.1-m.main", "cortex-m85": "armv8.1-m.main",
}  # fmt: skip


class BoardError(McuqError):
    """A board name that does not exist, or a board file that does not follow the schema."""


@dataclass(frozen=True)
class Region:
    """A linker memory region: ``origin`` and ``length`` in bytes."""

    origin: int
    length: int

    @property
    def end(self) -> int:
        return self.origin + self.length


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    cpu: str
    emulated: bool
    arch: str = ""
    cflags: tuple[str, ...] = ()
    features: tuple[str, ...] = ()  # sorted subset of FEATURES
    flash_size: int | None = None  # None: no fit check (the host)
    ram_size: int | None = None
    vendor: str = ""
    url: str = ""
    notes: str = ""
    stack_size: int = DEFAULT_STACK_SIZE
    qemu_machine: str | None = None
    icount_step: float | None = None
    flash_region: Region | None = None
    ram_region: Region | None = None
    path: Path | None = field(default=None, compare=False)

    @property
    def is_host(self) -> bool:
        return self.cpu == HOST

    def has(self, feature: str) -> bool:
        return feature in self.features


# -- loading ---------------------------------------------------------------------------------------------------
_TOP = {"name": str, "description": str, "cpu": str, "emulated": bool, "notes": str, "arch": str, "cflags": list,
        "features": list, "flash_size": int, "ram_size": int, "vendor": str, "url": str, "stack_size": int,
        "qemu": dict, "memory": dict}  # fmt: skip
_NOT_HOST = ("arch", "cflags", "features", "flash_size", "ram_size", "vendor", "url")
_QEMU = {"machine": str, "icount_step": float}
_REGION = {"origin": int, "length": int}


def _check_table(where: str, table: dict[str, Any], schema: dict[str, type], required: tuple[str, ...]) -> None:
    for key in table:
        if key not in schema:
            raise BoardError(f"{where}: unknown key '{key}' (allowed: {', '.join(schema)})")
    for key in required:
        if key not in table:
            raise BoardError(f"{where}: missing key '{key}'")
    for key, value in table.items():
        want = schema[key]
        ok = isinstance(value, want) and not (want is int and isinstance(value, bool))
        if want is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok:
            raise BoardError(f"{where}: key '{key}' must be {want.__name__}, got {type(value).__name__} {value!r}")
        if want is int and value <= 0 and key != "origin":
            raise BoardError(f"{where}: key '{key}' must be positive, got {value}")
        if want is int and value < 0:
            raise BoardError(f"{where}: key '{key}' must not be negative, got {value}")
        if want is list and not all(isinstance(v, str) for v in value):
            raise BoardError(f"{where}: key '{key}' must be a list of strings")


def _region(where: str, memory: dict[str, Any], name: str) -> Region:
    table = memory[name]  # present and a table: checked by the caller
    _check_table(f"{where} [memory.{name}]", table, _REGION, tuple(_REGION))
    return Region(table["origin"], table["length"])


def parse_board(data: dict[str, Any], where: str, stem: str | None = None) -> Board:
    """Validate one board's TOML table (``where`` names the file in error messages)."""
    host = data.get("cpu") == HOST
    _check_table(where, data, _TOP, ("name", "description", "cpu", "emulated") + (() if host else _NOT_HOST))
    name, cpu, emulated = data["name"], data["cpu"], data["emulated"]
    if stem is not None and name != stem:
        raise BoardError(f"{where}: key 'name' is '{name}' but the file is {stem}.toml; make them equal")
    cflags = tuple(data.get("cflags", ()))
    features = tuple(data.get("features", ()))
    for f in features:
        if f not in FEATURES:
            raise BoardError(f"{where}: key 'features' has '{f}'; allowed: {', '.join(FEATURES)}")
    if len(set(features)) != len(features):
        raise BoardError(f"{where}: key 'features' lists a feature twice")
    if not host:
        if f"-mcpu={cpu}" not in cflags or "-mthumb" not in cflags:
            raise BoardError(f"{where}: key 'cflags' must contain -mcpu={cpu} and -mthumb")
        hard = "-mfloat-abi=hard" in cflags
        if hard != ("fpu" in features):
            raise BoardError(f"{where}: key 'features' must list 'fpu' exactly when cflags has -mfloat-abi=hard")
        if cpu in _ARCH and data["arch"] != _ARCH[cpu]:
            raise BoardError(f"{where}: key 'arch' is '{data['arch']}' but {cpu} is {_ARCH[cpu]}")
    if host and emulated:
        raise BoardError(f"{where}: key 'emulated' must be false for the host")
    if emulated != ("qemu" in data):
        raise BoardError(f"{where}: an emulated board needs a [qemu] table, and only an emulated board has one")
    if emulated and "memory" not in data:
        raise BoardError(f"{where}: missing table [memory] (flash and ram linker regions) for an emulated board")
    qemu = data.get("qemu", {})
    if qemu:
        _check_table(f"{where} [qemu]", qemu, _QEMU, ("machine",))
    flash_region = ram_region = None
    if "memory" in data:
        memory = data["memory"]
        _check_table(f"{where} [memory]", memory, {"flash": dict, "ram": dict}, ("flash", "ram"))
        flash_region, ram_region = _region(where, memory, "flash"), _region(where, memory, "ram")
        for key, region in (("flash_size", flash_region), ("ram_size", ram_region)):
            if data.get(key) != region.length:
                raise BoardError(
                    f"{where}: key '{key}' ({data.get(key)}) must equal the region's length ({region.length})"
                )
    step = qemu.get("icount_step")
    return Board(
        name=name,
        description=data["description"],
        cpu=cpu,
        emulated=emulated,
        arch=data.get("arch", ""),
        cflags=cflags,
        features=tuple(sorted(features)),
        flash_size=data.get("flash_size"),
        ram_size=data.get("ram_size"),
        vendor=data.get("vendor", ""),
        url=data.get("url", ""),
        notes=data.get("notes", ""),
        stack_size=data.get("stack_size", DEFAULT_STACK_SIZE),
        qemu_machine=qemu.get("machine"),
        icount_step=None if step is None else float(step),
        flash_region=flash_region,
        ram_region=ram_region,
    )


def load_board_file(path: str | os.PathLike) -> Board:
    """Load and validate one board file (any path; its stem must equal its ``name``)."""
    p = Path(path)
    try:
        with open(p, "rb") as f:
            data = tomllib.load(f)
    except OSError as e:
        raise BoardError(f"{p}: cannot read the board file ({e.strerror or e})") from None
    except tomllib.TOMLDecodeError as e:
        raise BoardError(f"{p}: not valid TOML ({e})") from None
    return replace(parse_board(data, str(p), p.stem), path=p)


def board_names() -> list[str]:
    return sorted(p.stem for p in BOARDS.glob("*.toml"))


@functools.cache
def _load_builtin(name: str) -> Board:
    return load_board_file(BOARDS / f"{name}.toml")


def load_board(name: str | os.PathLike) -> Board:
    """A board by name (``boards/<name>.toml``), or from a path to a board .toml file of your own."""
    s = os.fspath(name)
    if s.endswith(".toml") or os.sep in s or "/" in s:
        return load_board_file(s)
    if s not in board_names():
        raise BoardError(f"unknown board '{s}'; available boards: {', '.join(board_names())} (or a path to a .toml)")
    return _load_builtin(s)


def list_boards() -> list[Board]:
    """Every board shipped with mcuq, sorted by name."""
    return [_load_builtin(n) for n in board_names()]


def describe_boards(boards: list[Board] | None = None) -> list[str]:
    """A table for ``mcuq boards``: name, CPU, features, flash and RAM in KiB, where it runs, description."""
    rows = [("board", "cpu", "features", "flash", "RAM", "runs in", "description")]
    for b in list_boards() if boards is None else boards:
        kib = ["-" if n is None else f"{n / 1024:g}K" for n in (b.flash_size, b.ram_size)]
        where = f"QEMU {b.qemu_machine}" if b.emulated else ("host cc" if b.is_host else "compile, fit check")
        default = " (default)" if b.name == DEFAULT_BOARD else ""
        rows.append((b.name, b.cpu, ",".join(b.features) or "-", *kib, where, b.description + default))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1] for r in rows]
