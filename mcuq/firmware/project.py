"""Write a self-contained firmware folder for a board: the model, the runtime it needs and, for emulated boards,
start-up code, a linker script, a batch-running main, a Makefile and a CMakeLists.txt (templates/firmware/).

For a real board the folder is the library a user drops into a vendor project: the model, the runtime, a
DWT-based profiling file, a Makefile/CMakeLists.txt that build a static library, and a README saying how.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import jinja2

from .. import __version__
from .._paths import RUNTIME_C, TEMPLATES
from ..boards import DEFAULT_STACK_SIZE, Board, Region, load_board
from ..errors import FitError, McuqError

MARKER = ".mcuq-output"
EMULATED_FILES = ("main.c", "startup.c", "mcuq_firmware.h", "linker.ld", "Makefile", "CMakeLists.txt", "README.md")
REAL_FILES = ("mcuq_profile_dwt.c", "Makefile", "CMakeLists.txt", "README.md")


@dataclass(frozen=True)
class BoardInfo:
    """What the firmware templates need from a board (from a ``mcuq.boards.Board`` by :func:`board_info`; tests
    may build one directly, e.g. a board with a tiny flash)."""

    name: str
    description: str
    cpu: str
    cflags: tuple[str, ...]
    emulated: bool
    machine: str  # QEMU -M machine ("" when not emulated)
    flash_origin: int
    flash_length: int
    ram_origin: int
    ram_length: int
    stack_size: int = DEFAULT_STACK_SIZE


def board_info(board: str | Board | BoardInfo) -> BoardInfo:
    """Normalise a board (a name, a ``mcuq.boards.Board`` or a BoardInfo) into what the templates need."""
    if isinstance(board, BoardInfo):
        return board
    if isinstance(board, str):
        board = load_board(board)
    flash = board.flash_region or Region(0, board.flash_size or 0)
    ram = board.ram_region or Region(0, board.ram_size or 0)
    if board.emulated and not (board.qemu_machine and board.flash_region and board.ram_region):
        raise McuqError(f"board '{board.name}': an emulated board needs [qemu] machine and [memory] regions")
    return BoardInfo(
        name=board.name,
        description=board.description,
        cpu=board.cpu,
        cflags=tuple(board.cflags),
        emulated=board.emulated,
        machine=board.qemu_machine or "",
        flash_origin=flash.origin,
        flash_length=flash.length,
        ram_origin=ram.origin,
        ram_length=ram.length,
        stack_size=board.stack_size,
    )


def qemu_machine_args(b: BoardInfo) -> list[str]:
    """QEMU options for running an image on ``b``: no display, semihosting with its console on stdout."""
    return [
        "-M",
        b.machine,
        "-display",
        "none",
        "-serial",
        "null",
        "-monitor",
        "none",
        "-chardev",
        "stdio,id=c0",
        "-semihosting-config",
        "enable=on,target=native,chardev=c0",
    ]


def linker_fit_error(cm, b: BoardInfo, log: str) -> FitError | None:
    """The linker's "region `FLASH' overflowed by N bytes" as a FitError with the numbers."""
    over = dict(re.findall(r"region [`'](\w+)' overflowed by (\d+) bytes", log))
    if not over:
        return None
    sizes = {"FLASH": ("flash", b.flash_length), "RAM": ("RAM", b.ram_length)}
    parts = []
    for region, n in over.items():
        what, have = sizes.get(region, (region, 0))
        parts.append(f"needs {have + int(n):,} B of {what}, has {have:,} B ({int(n):,} B over)")
    width = {"int8_t": 1, "uint8_t": 1, "int16_t": 2, "int32_t": 4, "uint32_t": 4}

    def nbytes(a) -> int:
        return a.size * width.get(a.ctype, 4)

    biggest = max(cm.model.arrays, key=nbytes, default=None)
    detail = f"weights {cm.model.weight_bytes:,} B, arena {cm.model.arena_size:,} B, stack {b.stack_size:,} B"
    if biggest is not None:
        detail += f"; largest weight array '{biggest.name}' {nbytes(biggest):,} B ({biggest.comment})"
    return FitError(
        f"{cm.prefix}: does not fit {b.name} (linker): {'; '.join(parts)}; {detail}. Choose a board with more memory "
        "(`mcuq boards`) or a smaller model."
    )


# -- runtime selection ---------------------------------------------------------------------------------------
def runtime_files(kernels: set[str]) -> list[Path]:
    """The runtime .c files that define ``kernels`` (file stem == kernel name), plus those they call in turn.

    Falls back to every runtime source when a kernel has no file of its name."""
    sources = sorted((RUNTIME_C / "src").glob("*/*.c"))
    by_stem = {p.stem: p for p in sources}
    if not kernels.issubset(by_stem):
        return sources
    chosen, todo = set(), sorted(kernels)
    while todo:
        stem = todo.pop()
        if stem in chosen:
            continue
        chosen.add(stem)
        text = by_stem[stem].read_text()
        todo.extend(s for s in by_stem if s not in chosen and re.search(rf"\b{re.escape(s)}\s*\(", text))
    return [by_stem[s] for s in sorted(chosen)]


def runtime_sources_for(cm) -> dict[str, str]:
    """The runtime headers and the kernel sources ``cm`` calls, by relative path under mcuq_runtime/."""
    files = {f"mcuq_runtime/include/{p.name}": p.read_text() for p in sorted((RUNTIME_C / "include").glob("*.h"))}
    kernels = {layer.kernel for layer in cm.layers if layer.kernel}
    for p in runtime_files(kernels):
        files[f"mcuq_runtime/src/{p.parent.name}/{p.name}"] = p.read_text()
    return files


# -- rendering -----------------------------------------------------------------------------------------------
def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES / "firmware")),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _io_bytes(cm, ports) -> int:
    return sum(cm.graph.tensors[p.tensor].nbytes for p in ports)


def render_firmware_project(cm, board: str | Board | BoardInfo, stack_size: int | None = None) -> dict[str, str]:
    """Every file of the firmware folder for ``cm`` on ``board``, by relative path (deterministic)."""
    b = board_info(board)
    m = cm.model
    files = dict(sorted(cm.files.items()))
    files.update(runtime_sources_for(cm))
    qemu_args = " ".join(qemu_machine_args(b))
    ctx = dict(
        m=m,
        prefix=m.prefix,
        board_name=b.name,
        board_desc=b.description,
        cpu=b.cpu,
        cpu_flags=" ".join(b.cflags),
        emulated=b.emulated,
        stack_size=int(stack_size or b.stack_size),
        version=__version__,
        source=m.source,
        num_layers=len(m.calls),
        weight_bytes=m.weight_bytes,
        const_bytes=m.const_bytes,
        arena_size=m.arena_size,
        inputs=m.inputs,
        outputs=m.outputs,
        in_bytes=_io_bytes(cm, m.inputs),
        out_bytes=_io_bytes(cm, m.outputs),
        flash_origin=b.flash_origin,
        flash_length=b.flash_length,
        ram_origin=b.ram_origin,
        ram_length=b.ram_length,
        qemu_args=qemu_args,
        qemu_example=f"qemu-system-arm {qemu_args} -kernel {m.prefix}.elf </dev/null   # or: make run",
    )
    env = _env()
    for name in EMULATED_FILES if b.emulated else REAL_FILES:
        files[name] = env.get_template(f"{name}.j2").render(**ctx)
    return files


def write_tree(files: dict[str, str], out_dir: str | os.PathLike) -> Path:
    """Write ``files`` into ``out_dir`` through a staging sibling, replacing a directory mcuq wrote before.

    Refuses a non-empty directory without mcuq's marker file, so a user's folder is never overwritten."""
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists() and not (out / MARKER).exists() and any(out.iterdir()):
        raise McuqError(f"{out}: exists and was not written by mcuq; refusing to overwrite it (choose another -o)")
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for rel, text in files.items():
            p = stage / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)
        (stage / MARKER).write_text("written by mcuq; `mcuq compile` replaces this directory\n")
        if out.exists():
            shutil.rmtree(out)
        os.replace(stage, out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return out


def write_firmware_project(
    cm, board: str | Board | BoardInfo, out_dir: str | os.PathLike, stack_size: int | None = None
) -> Path:
    """Write the firmware folder for ``cm`` (a CompiledModel) on ``board`` into ``out_dir``; returns it.

    ``make -C out_dir`` then builds ``<prefix>.elf`` (emulated boards) or ``lib<prefix>.a`` (real boards) with
    arm-none-eabi-gcc, without mcuq installed."""
    return write_tree(render_firmware_project(cm, board, stack_size), out_dir)
