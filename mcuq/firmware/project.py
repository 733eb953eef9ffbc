"""Write a self-contained firmware folder for a board: the model, the runtime it needs and, for emulated boards,
start-up code, a linker script, a batch-running main, a Makefile and a CMakeLists.txt (templates/firmware/).

For a real board the folder is the library a user drops into a vendor project: the model, the runtime, a
DWT-based profiling file, a Makefile/CMakeLists.txt that build a static library, and a README saying how.

What is common to every project folder (runtime selection, template rendering, the safe write) lives in
``mcuq.codegen.project``; this module adds what only a board knows.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .. import __version__
from ..boards import DEFAULT_STACK_SIZE, Board, Region, load_board
from ..codegen.buildfiles import unsafe_word
from ..codegen.names import c_comment
from ..codegen.project import model_files, render_templates, write_tree
from ..errors import FitError, McuqError
from .image import ImageLike, as_image

if TYPE_CHECKING:
    from ..codegen.emit import Model

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


def linker_fit_error(m: Model, b: BoardInfo, log: str) -> FitError | None:
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

    biggest = max(m.arrays, key=nbytes, default=None)
    detail = f"weights {m.weight_bytes:,} B, arena {m.arena_size:,} B, stack {b.stack_size:,} B"
    if biggest is not None:
        detail += f"; largest weight array '{biggest.name}' {nbytes(biggest):,} B ({biggest.comment})"
    return FitError(
        f"{m.prefix}: does not fit {b.name} (linker): {'; '.join(parts)}; {detail}. Choose a board with more memory "
        "(`mcuq boards`) or a smaller model."
    )


# -- rendering -----------------------------------------------------------------------------------------------
def render_firmware_project(
    image: ImageLike, board: str | Board | BoardInfo, stack_size: int | None = None
) -> dict[str, str]:
    """Every file of the firmware folder for ``image`` (a FirmwareImage or a CompiledModel) on ``board``, by
    relative path (deterministic)."""
    b = board_info(board)
    image = as_image(image)
    m = image.model
    files = model_files(m, image.files)
    _check_build_values(b)
    qemu_argv = qemu_machine_args(b) if b.emulated else []
    qemu_args = shlex.join(qemu_argv)
    ctx = dict(
        m=m,
        prefix=m.prefix,
        board_name=c_comment(b.name),  # these three reach comments (C, linker script, Makefile) and the README
        board_desc=c_comment(b.description),
        cpu=c_comment(b.cpu),
        cpu_flags=" ".join(b.cflags),
        cpu_flag_list=tuple(b.cflags),  # the build files quote each one (mcuq.codegen.buildfiles)
        qemu_argv=tuple(qemu_argv),
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
        in_bytes=sum(t.nbytes for t in image.inputs),
        out_bytes=sum(t.nbytes for t in image.outputs),
        flash_origin=b.flash_origin,
        flash_length=b.flash_length,
        ram_origin=b.ram_origin,
        ram_length=b.ram_length,
        qemu_args=qemu_args,
        qemu_example=f"qemu-system-arm {qemu_args} -kernel build/{m.prefix}.elf </dev/null   # or: make run",
    )
    files.update(render_templates("firmware", EMULATED_FILES if b.emulated else REAL_FILES, ctx))
    return files


def write_firmware_project(
    image: ImageLike,
    board: str | Board | BoardInfo,
    out_dir: str | os.PathLike,
    stack_size: int | None = None,
    *,
    force: bool = False,
) -> Path:
    """Write the firmware folder for ``image`` (a FirmwareImage or a CompiledModel) on ``board`` into ``out_dir``
    (``mcuq.codegen.outdir.write_tree``: in place, a user's file is never deleted; ``force`` writes into a
    non-empty folder mcuq did not write); returns it.

    ``make -C out_dir`` then builds ``build/<prefix>.elf`` (emulated boards) or ``build/lib<prefix>.a`` (real
    boards) with arm-none-eabi-gcc, without mcuq installed."""
    return write_tree(render_firmware_project(image, board, stack_size), out_dir, force=force)


def _check_build_values(b: BoardInfo) -> None:
    """McuqError naming the board and the field when a value cannot be written into the Makefile or the
    CMakeLists.txt as one quoted word (the quoting filters refuse it too; this says which board and field)."""
    for what, words, cmake in (("cflags", b.cflags, True), ("qemu machine", (b.machine,), False)):
        bad = unsafe_word(words, cmake)
        if bad is not None:
            raise McuqError(
                f"board {b.name!r}: {what} value {str(bad)[:60]!r} cannot be written into a build file as one word "
                "(a control character" + (", ';', '\\', '[' or ']')" if cmake else ")")
            )
