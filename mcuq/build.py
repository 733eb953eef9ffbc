"""Build generated C on the host: the runtime once per flag set (cached), then the model and a runner."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ._paths import RUNTIME_C
from .errors import BuildError

log = logging.getLogger(__name__)

WARNINGS = ["-std=c99", "-Wall", "-Wextra", "-Werror"]
HOST_FLAGS = [*WARNINGS, "-O2"]
SANITIZE_FLAGS = [
    *WARNINGS,
    "-O1",
    "-g",
    "-fno-omit-frame-pointer",
    "-fsanitize=address,undefined",
    "-fno-sanitize-recover=all",
]


def host_cc() -> str:
    cc = os.environ.get("CC", "cc")
    if shutil.which(cc) is None:
        raise BuildError(f"no host C compiler: '{cc}' is not on PATH (install gcc, or set CC)")
    return cc


def runtime_sources() -> list[Path]:
    return sorted((RUNTIME_C / "src").glob("*/*.c"))


def runtime_headers() -> list[Path]:
    """The public headers (include/) and the runtime's internal ones (src/<dir>/*.h)."""
    return sorted((RUNTIME_C / "include").glob("*.h")) + sorted((RUNTIME_C / "src").glob("*/*.h"))


def cache_dir() -> Path:
    base = os.environ.get("MCUQ_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "mcuq"
    )
    p = Path(base)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError:
        p = Path(tempfile.gettempdir()) / "mcuq-cache"
        p.mkdir(parents=True, exist_ok=True)
    return p


def _run(cmd: list[str], what: str, cwd: Path | None = None) -> None:
    log.debug("%s", " ".join(cmd))
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
    if proc.returncode != 0:
        raise BuildError(f"{what} failed:\n{' '.join(cmd)}\n{(proc.stdout + proc.stderr)[-4000:]}")


def runtime_library(flags: list[str], cc: str | None = None) -> Path:
    """Compile runtime_c/src/**.c with ``flags`` into a static library, cached by content and flags."""
    cc = cc or host_cc()
    h = hashlib.sha256()
    h.update(" ".join([cc, *flags]).encode())
    for f in runtime_headers() + runtime_sources():
        h.update(f.name.encode())
        h.update(f.read_bytes())
    lib = cache_dir() / f"runtime-{h.hexdigest()[:20]}" / "libmcuq_runtime.a"
    if lib.exists():
        return lib
    with tempfile.TemporaryDirectory(prefix="mcuq-rt-", dir=cache_dir()) as tmp:
        objs = []

        def compile_one(src: Path) -> Path:
            obj = Path(tmp) / f"{src.parent.name}_{src.stem}.o"
            _run(
                [cc, *flags, "-I", str(RUNTIME_C / "include"), "-c", str(src), "-o", str(obj)], f"compiling {src.name}"
            )
            return obj

        with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as ex:
            objs = list(ex.map(compile_one, runtime_sources()))
        staged = Path(tmp) / "libmcuq_runtime.a"
        _run(["ar", "rcs", str(staged), *map(str, objs)], "archiving the runtime")
        lib.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged, lib)  # atomic: concurrent builders agree
    return lib


def build_host_runner(src_dir: Path, prefix: str, sanitize: bool) -> Path:
    """Compile ``<prefix>.c`` and ``runner.c`` in ``src_dir`` against the runtime into ``src_dir/runner``."""
    cc = host_cc()
    flags = SANITIZE_FLAGS if sanitize else HOST_FLAGS
    lib = runtime_library(flags, cc)
    exe = src_dir / "runner"
    _run(
        [
            cc,
            *flags,
            "-DMCUQ_LAYER_HOOKS",
            "-I",
            str(RUNTIME_C / "include"),
            "-I",
            str(src_dir),
            str(src_dir / f"{prefix}.c"),
            str(src_dir / "runner.c"),
            str(lib),
            "-o",
            str(exe),
        ],
        f"compiling the generated C for '{prefix}'",
    )
    return exe
