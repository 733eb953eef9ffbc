"""Build firmware with make + arm-none-eabi-gcc and run it in qemu-system-arm: one build, one boot per batch.

Inputs and outputs travel through semihosting file I/O (main.c.j2): ``mcuq_in.bin`` is a little-endian uint32
record count followed by the records (``mcuq.records``: each the model's inputs in order, as for the host
runner); ``mcuq_out.bin`` gets each record's outputs in order.

Streaming the batch through per-record semihosting reads was measured on VWW (27 KB per record, mps2-an386): one
boot over 100 records with the invoke removed takes 0.042 s against 0.031 s for 1 record, ~0.1 ms of I/O per
record, while one VWW inference takes ~75 ms in QEMU. So inputs are streamed, not linked into the image: one
build and one boot per batch, whatever its size. Built images are cached by content hash (``build.cache_dir()``).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..boards import Board, load_board
from ..build import cache_dir
from ..codegen.outdir import clear_build
from ..codegen.project import BUILD_DIR, write_tree
from ..errors import BuildError
from ..fit import check_fit
from ..records import record_bytes, record_size, split_records
from .image import FirmwareImage, ImageLike, as_image
from .project import BoardInfo, board_info, linker_fit_error, qemu_machine_args, render_firmware_project

BUILD_TIMEOUT = 600  # seconds for make
EXIT_MESSAGES = {
    10: "an input/output file error",
    11: "the model's invoke returned an error status",
    12: "a fault (HardFault or another exception)",
    13: "a stack overflow",
}
DONE = re.compile(r"MCUQ_DONE n=(\d+)")
STACK = re.compile(r"MCUQ_STACK_USED (\d+)")
SETUP_HINT = "`make setup` installs it (apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm)"


BoardLike = str | Board | BoardInfo


class RunError(BuildError):
    """The firmware faulted, hung, exited non-zero or did not print its pass token in QEMU.

    ``output`` is the guest's console output (and QEMU's stderr)."""

    def __init__(self, message: str, output: str = "") -> None:
        self.summary = message
        self.output = output
        super().__init__(f"{message}\n--- guest output ---\n{output[-4000:]}" if output else message)


class ToolchainError(BuildError):
    """arm-none-eabi-gcc, make or qemu-system-arm is not installed."""


def require_tools(*tools: str) -> None:
    for tool in tools:
        if shutil.which(tool) is None:
            raise ToolchainError(f"'{tool}' is not on PATH: {SETUP_HINT}")


_GCC_VERSION: dict[str, str] = {}


def _gcc_version() -> str:
    if "v" not in _GCC_VERSION:
        proc = subprocess.run(["arm-none-eabi-gcc", "--version"], capture_output=True, text=True, timeout=30)
        _GCC_VERSION["v"] = proc.stdout.splitlines()[0] if proc.stdout else ""
    return _GCC_VERSION["v"]


def _clean_env() -> dict[str, str]:
    """The environment without make's own variables (a parent make's jobserver must not leak into ours)."""
    return {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}


@dataclass(frozen=True)
class BuildOptions:
    hooks: bool = False
    stack_size: int = 0
    extra_cflags: tuple[str, ...] = ()

    def make_args(self) -> list[str]:
        return [
            f"HOOKS={int(self.hooks)}",
            f"STACK_SIZE={self.stack_size}",
            f"EXTRA_CFLAGS={' '.join(self.extra_cflags)}",
        ]


def build_firmware(
    image: ImageLike,
    board: BoardLike,
    workdir: str | os.PathLike,
    hooks: bool = False,
    *,
    stack_size: int | None = None,
    extra_cflags: Sequence[str] = (),
) -> Path:
    """Write the firmware project for ``image`` (a FirmwareImage or a CompiledModel) into ``workdir`` and build it
    with make; returns the ELF's path (``workdir/build/<prefix>.elf``, where the generated Makefile builds).

    The ELF (and its .map) is cached by the hash of the project files, the make variables and the compiler
    version, so an unchanged model is linked once per machine. Raises FitError when the linker reports that the
    image overflows the board's flash or RAM, BuildError on any other failure."""
    require_tools("make", "arm-none-eabi-gcc")
    image = as_image(image)
    if isinstance(board, str):
        board = load_board(board)
    if isinstance(board, Board):
        check_fit(board, image.footprint, hooks)  # the estimate, with the numbers, before anything is built
    b = board_info(board)
    if not b.emulated:
        raise BuildError(
            f"board '{b.name}' is not emulated: build the folder from `mcuq compile --board {b.name}` "
            "inside your vendor project instead"
        )
    opts = BuildOptions(hooks, int(stack_size or b.stack_size), tuple(extra_cflags))
    files = render_firmware_project(image, b, opts.stack_size)
    h = hashlib.sha256(_gcc_version().encode())
    for arg in opts.make_args():
        h.update(arg.encode() + b"\0")
    for rel, text in files.items():
        h.update(rel.encode() + b"\0" + text.encode() + b"\0")
    key = h.hexdigest()[:24]
    out = write_tree(files, workdir)
    clear_build(out)  # objects of an earlier build with other make variables must not be reused
    elf = out / BUILD_DIR / f"{image.prefix}.elf"
    cached = cache_dir() / "firmware" / key / elf.name
    if cached.exists():
        elf.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(cached, elf)
        if cached.with_suffix(".map").exists():
            shutil.copyfile(cached.with_suffix(".map"), elf.with_suffix(".map"))
        return elf
    cmd = ["make", "-C", str(out), f"-j{min(os.cpu_count() or 2, 4)}", *opts.make_args()]
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=BUILD_TIMEOUT, env=_clean_env(), stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        raise BuildError(
            f"building the firmware for {b.name} timed out after {BUILD_TIMEOUT} s: {' '.join(cmd)}"
        ) from None
    log = proc.stdout + proc.stderr
    if proc.returncode != 0 or not elf.exists():
        fit = linker_fit_error(image.model, b, log)
        if fit is not None:
            raise fit
        raise BuildError(f"building the firmware for {b.name} failed: {' '.join(cmd)}\n{log[-4000:]}")
    cached.parent.mkdir(parents=True, exist_ok=True)
    for src in (elf, elf.with_suffix(".map")):
        if src.exists():
            tmp = cached.parent / f".{src.name}.{os.getpid()}"
            shutil.copyfile(src, tmp)
            os.replace(tmp, cached.parent / src.name)  # atomic: concurrent builders agree
    return elf


def _text(x: object) -> str:
    if x is None:
        return ""
    return x.decode(errors="replace") if isinstance(x, bytes) else str(x)


def run_qemu(
    board: BoardLike,
    elf: str | os.PathLike,
    workdir: str | os.PathLike,
    timeout: float = 60.0,
    extra_args: Sequence[str] = (),
) -> tuple[str, str, int]:
    """Boot ``elf`` on ``board`` in qemu-system-arm with ``workdir`` as the working directory (semihosting
    paths are relative to it); returns (stdout, stderr, exit status). The guest's console is stdout.

    ``extra_args`` go before ``-kernel`` (e.g. ``-plugin lib.so,arg=... -d plugin -D log``). A guest still
    running after ``timeout`` seconds is killed and RunError is raised with what it printed."""
    require_tools("qemu-system-arm")
    b = board_info(board)
    cmd = ["qemu-system-arm", *qemu_machine_args(b), *extra_args, "-kernel", str(Path(elf).resolve())]
    try:
        proc = subprocess.run(cmd, cwd=str(workdir), capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        out = _text(e.stdout) + _text(e.stderr)
        raise RunError(
            f"{Path(elf).name} on {b.name}: QEMU timed out after {timeout:g} s (the guest hangs or is "
            "too slow for this batch); it was killed",
            out,
        ) from None
    return _text(proc.stdout), _text(proc.stderr), proc.returncode


CFSR_BITS = {0: "IACCVIOL instruction access violation", 1: "DACCVIOL data access violation",
             3: "MUNSTKERR", 4: "MSTKERR", 5: "MLSPERR", 8: "IBUSERR instruction bus error",
             9: "PRECISERR data bus error at BFAR", 10: "IMPRECISERR imprecise data bus error", 11: "UNSTKERR",
             12: "STKERR", 13: "LSPERR", 16: "UNDEFINSTR undefined instruction", 17: "INVSTATE invalid state",
             18: "INVPC invalid EXC_RETURN", 19: "NOCP FPU/MVE not enabled", 20: "STKOF stack overflow",
             24: "UNALIGNED unaligned access", 25: "DIVBYZERO division by zero"}  # fmt: skip


def describe_cfsr(line: str) -> str:
    """ " (STKOF stack overflow)" for a fault line with CFSR=0x100000; "" when there is no CFSR."""
    m = re.search(r"CFSR=0x([0-9a-fA-F]+)", line)
    if m is None:
        return ""
    v = int(m.group(1), 16)
    names = [name for bit, name in CFSR_BITS.items() if v >> bit & 1]
    return f" ({'; '.join(names)})" if names else ""


def check_guest(what: str, stdout: str, stderr: str, rc: int, count: int | None = None) -> None:
    """Raise RunError unless the guest exited 0 and printed ``MCUQ_DONE n=<count>``."""
    out = stdout + (f"\n[qemu stderr]\n{stderr}" if stderr.strip() else "")
    fault = re.search(r"MCUQ_FAULT[^\n]*", stdout)
    if fault:
        raise RunError(f"{what}: the guest faulted: {fault.group(0)}{describe_cfsr(fault.group(0))}", out)
    lockup = re.search(r"qemu: fatal: Lockup[^\n]*", stderr)
    if lockup:
        raise RunError(
            f"{what}: the guest locked up (a fault while handling a fault, e.g. a stack overflow): {lockup.group(0)}",
            out,
        )
    if rc != 0:
        err = re.search(r"MCUQ_ERROR[^\n]*", stdout)
        reason = err.group(0) if err else EXIT_MESSAGES.get(rc, "QEMU or the guest failed")
        raise RunError(f"{what}: the guest exited with status {rc}: {reason}", out)
    done = DONE.search(stdout)
    if done is None:
        raise RunError(f"{what}: the guest exited 0 without printing its pass token MCUQ_DONE", out)
    if count is not None and int(done.group(1)) != count:
        raise RunError(f"{what}: the guest ran {done.group(1)} records, {count} were sent", out)


def default_timeout(image: FirmwareImage, n: int) -> float:
    """Seconds allowed for ``n`` records: 30 s plus, per record, 20 instructions per MAC at 10^8 instructions/s
    (QEMU runs 10^8-10^9 guest instructions/s here; the kernels take 0.25-5 per MAC) and 0.2 s."""
    return 30.0 + n * (0.2 + 20.0 * image.macs / 1e8)


@dataclass
class GuestRun:
    """One boot of the firmware over a batch: outputs (one array per model output, leading axis n)."""

    outputs: list[np.ndarray]
    stack_used: int | None
    stdout: str
    stderr: str


def run_batch_info(
    image: ImageLike,
    board: BoardLike,
    arrays: Sequence[np.ndarray],
    n: int,
    *,
    timeout: float | None = None,
    hooks: bool = False,
    stack_size: int | None = None,
    extra_cflags: Sequence[str] = (),
    extra_args: Sequence[str] = (),
    keep_dir: str | os.PathLike | None = None,
) -> GuestRun:
    """Run ``n`` records through the firmware of ``image`` (a FirmwareImage or a CompiledModel) in one boot.
    ``arrays``: one per model input, leading axis n."""
    b = board_info(board)
    image = as_image(image)
    with tempfile.TemporaryDirectory(prefix=f"mcuq-qemu-{image.prefix}-") as tmp:
        base = Path(keep_dir) if keep_dir is not None else Path(tmp)
        elf = build_firmware(image, b, base / "firmware", hooks, stack_size=stack_size, extra_cflags=extra_cflags)
        rundir = base / "run"
        rundir.mkdir(parents=True, exist_ok=True)
        with open(rundir / "mcuq_in.bin", "wb") as f:
            f.write(struct.pack("<I", n))
            f.writelines(record_bytes(arrays, n))
        (rundir / "mcuq_out.bin").unlink(missing_ok=True)
        limit = timeout if timeout is not None else default_timeout(image, n)
        stdout, stderr, rc = run_qemu(b, elf, rundir, limit, extra_args)
        check_guest(f"{image.prefix} on {b.name}", stdout, stderr, rc, n)
        want = record_size(image.outputs) * n
        raw = (rundir / "mcuq_out.bin").read_bytes()
        if len(raw) != want:
            raise RunError(f"{image.prefix} on {b.name}: mcuq_out.bin has {len(raw)} bytes, expected {want}", stdout)
        outs = split_records(raw, image.outputs, n)
        stack = STACK.search(stdout)
        return GuestRun(outs, int(stack.group(1)) if stack else None, stdout, stderr)


def run_batch(
    image: ImageLike, board: BoardLike, arrays: Sequence[np.ndarray], n: int, timeout: float | None = None
) -> list[np.ndarray]:
    """Outputs of ``n`` records run in QEMU on ``board``: one array per model output with leading axis ``n``.

    Same layout as the host runner's; ``arrays`` are the normalised inputs (``mcuq.records.normalise_inputs``,
    leading axis n)."""
    return run_batch_info(image, board, arrays, n, timeout=timeout).outputs
