"""Run generated C on the host: build it once into a runner executable, then feed it batches of records.

Executables are cached in the process by the content of the program (its files, prefix, sanitizer flag and C
compiler), in temporary directories: the ``CACHED`` most recently built are kept, and all are removed at exit.
Each run gets its own directory for its input and output files, so runs of one program may overlap.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import subprocess
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .build import build_host_runner, host_cc
from .errors import BuildError
from .ir import Tensor
from .records import record_bytes, split_records

RUN_TIMEOUT = 600  # seconds
CACHED = 64  # runner executables kept (about 100 KB each)


@dataclass(frozen=True)
class HostProgram:
    """The C of one runner: ``files`` by name (``<prefix>.c``, ``<prefix>.h`` and ``runner.c``, whose ``main``
    takes ``IN OUT N [LAYERS]``), built with the sanitizers when ``sanitize``."""

    prefix: str
    files: tuple[tuple[str, str], ...]
    sanitize: bool = False

    @classmethod
    def of(cls, prefix: str, files: Mapping[str, str], sanitize: bool = False) -> HostProgram:
        return cls(prefix, tuple(sorted(files.items())), sanitize)

    def key(self, cc: str) -> str:
        h = hashlib.sha256(f"{self.prefix}\0{int(self.sanitize)}\0{cc}\0".encode())
        for name, text in self.files:
            h.update(name.encode() + b"\0" + text.encode() + b"\0")
        return h.hexdigest()


_LOCK = threading.Lock()
_BUILT: OrderedDict[str, tuple[Path, tempfile.TemporaryDirectory]] = OrderedDict()


@atexit.register
def _cleanup() -> None:
    while _BUILT:
        _BUILT.popitem()[1][1].cleanup()


def runner_executable(program: HostProgram) -> Path:
    """The program built against the runtime (once per process and content)."""
    key = program.key(host_cc())
    with _LOCK:
        if key in _BUILT and _BUILT[key][0].exists():
            _BUILT.move_to_end(key)
            return _BUILT[key][0]
    tmp = tempfile.TemporaryDirectory(prefix=f"mcuq-{program.prefix}-")
    try:
        d = Path(tmp.name)
        for name, text in program.files:
            (d / name).write_text(text)
        exe = build_host_runner(d, program.prefix, program.sanitize)
    except BaseException:
        tmp.cleanup()
        raise
    with _LOCK:
        if key in _BUILT and _BUILT[key][0].exists():  # another thread built it meanwhile: keep one
            tmp.cleanup()
            return _BUILT[key][0]
        _BUILT[key] = (exe, tmp)
        while len(_BUILT) > CACHED:
            _BUILT.popitem(last=False)[1][1].cleanup()
    return exe


def run_host(
    program: HostProgram,
    arrays: Sequence[np.ndarray],
    n: int,
    outputs: Sequence[Tensor],
    layer_outputs: Sequence[Tensor] | None = None,
) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
    """Run ``n`` records (``arrays``: one per model input, leading axis ``n``) through ``program``.

    Returns one array per tensor of ``outputs`` (leading axis ``n``) and, when ``layer_outputs`` is given (the
    output tensor of each layer, in order), one array per layer likewise. A failed or hung run raises
    BuildError with the runner's stderr."""
    exe = runner_executable(program)
    with tempfile.TemporaryDirectory(prefix=f"mcuq-run-{program.prefix}-") as tmp:
        d = Path(tmp)
        inp, outp, lay = d / "in.bin", d / "out.bin", d / "layers.bin"
        with open(inp, "wb") as f:
            f.writelines(record_bytes(arrays, n))
        cmd = [str(exe), str(inp), str(outp), str(n)] + ([str(lay)] if layer_outputs is not None else [])
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0", UBSAN_OPTIONS="print_stacktrace=1")
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT, env=env)
        except subprocess.TimeoutExpired:
            raise BuildError(f"{program.prefix}: the host run timed out after {RUN_TIMEOUT} s") from None
        if proc.returncode != 0:
            raise BuildError(f"{program.prefix}: the host run failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
        outs = split_records(outp.read_bytes(), outputs, n)
        if layer_outputs is None:
            return outs, None
        return outs, split_records(lay.read_bytes(), layer_outputs, n)
