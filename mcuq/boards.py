"""Boards: ``boards/<name>.toml`` -> ``Board`` (the flash/RAM fit check of a model is in ``mcuq.fit``).

One TOML file per board; the file stem is the board's name. The fields (types, ranges and the syntax of every
string: ``mcuq.board_schema``, which refuses anything else, since a board file's strings reach Makefiles and
command lines):

  name         required; equals the file stem
  description  required; one line
  cpu          required; "host" for the machine mcuq runs on, else a GCC -mcpu value ("cortex-m4")
  emulated     required; true when mcuq runs it in qemu-system-arm
  notes        optional; anything a user should know (memory banks, reserved areas)
  -- required for every board except the host (arch, cflags and features are absent there):
  arch         architecture ("armv7e-m"); must match cpu
  cflags       compiler flags selecting the CPU and ABI: -mcpu=<cpu> -mthumb [-mfpu=...] -mfloat-abi=...
  features     subset of "fpu", "dsp", "mve"; "fpu" exactly when -mfloat-abi=hard
  flash_size   bytes of flash (code + constants) the model may use
  ram_size     bytes of RAM, the largest contiguous bank usable for the arena when there are several
  vendor       who sells it
  url          the datasheet or product page the sizes come from
  stack_size   optional; bytes reserved for the stack (default DEFAULT_STACK_SIZE)
  -- [qemu]: required when emulated, absent otherwise
  machine      qemu-system-arm -M value, one that emulates the board's cpu
  icount_step  optional; guest instructions per SysTick count under -icount shift=0 (TOOLCHAIN.md)
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

from . import board_schema as schema
from ._paths import BOARDS
from .board_schema import FEATURES, HOST, BoardError

__all__ = ["DEFAULT_BOARD", "FEATURES", "HOST", "Board", "BoardError", "Region", "board_names", "describe_boards",
           "list_boards", "load_board", "load_board_file", "parse_board"]  # fmt: skip

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pip install tomli
    import tomli as tomllib  # type: ignore[no-redef]

DEFAULT_BOARD = "mps2-an386"
DEFAULT_STACK_SIZE = 2048  # deepest runtime kernel frame is 280 B (-fstack-usage, M0+), invoke + main < 200 B
MAX_FILE_BYTES = 64 * 1024  # a board file is a few hundred bytes; refuse to read a device or a huge file


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
def _region(where: str, memory: dict[str, Any], name: str) -> Region:
    table = memory[name]  # present and a table: checked by the caller
    schema.check_table(f"{where} [memory.{name}]", table, schema.REGION, tuple(schema.REGION))
    region = Region(table["origin"], table["length"])
    if region.end > schema.LIMIT:
        raise BoardError(f"{where} [memory.{name}]: origin + length ({region.end:#x}) must not exceed 2^32")
    return region


def _memory(where: str, data: dict[str, Any]) -> tuple[Region | None, Region | None]:
    if "memory" not in data:
        return None, None
    memory = data["memory"]
    schema.check_table(f"{where} [memory]", memory, schema.MEMORY, ("flash", "ram"))
    flash, ram = _region(where, memory, "flash"), _region(where, memory, "ram")
    if flash.origin < ram.end and ram.origin < flash.end:
        raise BoardError(f"{where} [memory]: the flash and ram regions overlap")
    for key, region in (("flash_size", flash), ("ram_size", ram)):
        if data.get(key) != region.length:
            raise BoardError(f"{where}: key '{key}' ({data.get(key)}) must equal the region's length ({region.length})")
    return flash, ram


def _check_cpu(where: str, data: dict[str, Any]) -> None:
    """The keys that depend on the cpu: arch, cflags, features and the QEMU machine."""
    cpu, emulated = data["cpu"], data["emulated"]
    if cpu == HOST:
        for key in schema.HOST_ONLY_ABSENT:
            if key in data:
                raise BoardError(f"{where}: key '{key}' is for Cortex-M boards; the host board builds with $CC")
        if emulated:
            raise BoardError(f"{where}: key 'emulated' must be false for the host")
        return
    schema.cflags(where, "cflags", data["cflags"], cpu)
    if data["arch"] != schema.CPU_ARCH[cpu]:
        raise BoardError(f"{where}: key 'arch' is {schema.show(data['arch'])} but {cpu} is {schema.CPU_ARCH[cpu]}")
    if ("-mfloat-abi=hard" in data["cflags"]) != ("fpu" in data["features"]):
        raise BoardError(f"{where}: key 'features' must list 'fpu' exactly when cflags has -mfloat-abi=hard")
    allowed = schema.CPU_FEATURES.get(cpu, ())
    for f in data["features"]:
        if f != "fpu" and f not in allowed:
            has = ", ".join(allowed) or "neither dsp nor mve"
            raise BoardError(f"{where}: key 'features' lists '{f}', which a {cpu} does not have (it has {has})")
    machine = data.get("qemu", {}).get("machine")
    if machine is not None and schema.QEMU_MACHINES[machine] != cpu:
        raise BoardError(
            f"{where} [qemu]: key 'machine' {machine} emulates a {schema.QEMU_MACHINES[machine]}, the board's cpu is {cpu}"
        )


def parse_board(data: dict[str, Any], where: str, stem: str | None = None) -> Board:
    """Validate one board's TOML table against ``mcuq.board_schema`` (``where`` names the file in errors)."""
    host = data.get("cpu") == HOST
    required = ("name", "description", "cpu", "emulated") + (() if host else schema.NOT_HOST)
    schema.check_table(where, data, schema.TOP, required)
    name, emulated = data["name"], data["emulated"]
    if stem is not None and name != stem:
        raise BoardError(f"{where}: key 'name' is '{name}' but the file is {stem}.toml; make them equal")
    if emulated != ("qemu" in data):
        raise BoardError(f"{where}: an emulated board needs a [qemu] table, and only an emulated board has one")
    qemu = data.get("qemu", {})
    if emulated:
        schema.check_table(f"{where} [qemu]", qemu, schema.QEMU, ("machine",))
        if "memory" not in data:
            raise BoardError(f"{where}: missing table [memory] (flash and ram linker regions) for an emulated board")
    _check_cpu(where, data)
    flash_region, ram_region = _memory(where, data)
    step = qemu.get("icount_step")
    return Board(
        name=name,
        description=data["description"],
        cpu=data["cpu"],
        emulated=emulated,
        arch=data.get("arch", ""),
        cflags=tuple(data.get("cflags", ())),
        features=tuple(sorted(data.get("features", ()))),
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
    """Load and validate one board file (any path; its stem must equal its ``name``). Every problem, an unreadable,
    binary or non-UTF-8 file included, is a one-line ``BoardError`` naming the file."""
    p = Path(path)
    try:
        with open(p, "rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except (OSError, ValueError) as e:  # ValueError: a NUL byte in the path
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise BoardError(f"{p}: cannot read the board file ({reason})") from None
    if len(raw) > MAX_FILE_BYTES:
        raise BoardError(f"{p}: not a board file (larger than {MAX_FILE_BYTES:,} bytes)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BoardError(
            f"{p}: not a board file: not UTF-8 text (byte {raw[e.start]:#04x} at offset {e.start})"
        ) from None
    if "\0" in text:
        raise BoardError(f"{p}: not a board file: it holds a NUL byte (binary data)")
    try:
        data = tomllib.loads(text)
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
    if not isinstance(name, (str, os.PathLike)):
        raise BoardError(f"board must be a board name or a path to a .toml file, got {type(name).__name__}")
    s = os.fspath(name)
    if not isinstance(s, str):
        raise BoardError(f"board must be a board name or a path to a .toml file, got {schema.show(s)}")
    if s.endswith(".toml") or os.sep in s or "/" in s:
        return load_board_file(s)
    if s not in board_names():
        raise BoardError(
            f"unknown board {schema.show(s)}; available boards: {', '.join(board_names())} (or a path to a .toml)"
        )
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
