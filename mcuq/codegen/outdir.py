"""Write a generated project into a folder in place, so that a user's file is never deleted and an interrupted
write leaves the previous complete set.

Invariants:

- Every file is written under a temporary name in its own directory, then renamed over the old one (a rename in
  one directory is atomic). All files are staged before the first rename, so a failure or an interrupt while
  writing leaves the folder as it was; the renames themselves run with SIGINT/SIGTERM deferred.
- ``.mcuq-manifest`` lists what mcuq wrote (relative path and SHA-256). A folder with a manifest, or with the
  marker file of earlier versions (``.mcuq-output``), is mcuq's. A later write removes a file only if the old
  manifest lists it, the new set does not, and its content is still what mcuq wrote; nothing else is deleted.
- A file the manifest does not list is the user's: it is left alone. A user's file where mcuq wants to write
  one is refused (McuqError), even with ``force``; a non-empty folder without a manifest is refused unless
  ``force``.
- ``build/`` is where the generated Makefiles and CMake build; it belongs to mcuq's folder and mcuq may clear it
  (:func:`clear_build`). A foreign ``build/`` is refused even with ``force`` (``make clean`` would remove it).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import signal
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ..errors import McuqError

MANIFEST = ".mcuq-manifest"
LEGACY_MARKER = ".mcuq-output"  # mcuq <= 0.2 replaced the whole folder and left this file in it
BUILD_DIR = "build"
FORMAT = "mcuq-manifest 1"
TMP_PREFIX = ".mcuq-tmp-"
_HEADER = (
    f"{FORMAT}\n# The files mcuq wrote here: `mcuq compile` replaces them and removes the ones it no longer writes.\n"
    "# Files not listed are left alone. build/ holds what the Makefile and CMake build; mcuq may clear it.\n"
)


@dataclass(frozen=True)
class Manifest:
    """What mcuq wrote into a folder: relative POSIX path -> SHA-256 of the content. ``legacy``: the folder has
    the marker file of an earlier version instead (no file list, so nothing is removed as stale)."""

    files: Mapping[str, str] = field(default_factory=dict)
    legacy: bool = False

    def text(self) -> str:
        return _HEADER + "".join(f"file {digest} {rel}\n" for rel, digest in sorted(self.files.items()))


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_rel(rel: str) -> str:
    """``rel`` if it is a plain relative path inside the folder (not the manifest, not under build/), else
    ValueError."""
    p = PurePosixPath(rel)
    bad = not rel or rel != str(p) or p.is_absolute() or any(part in ("", ".", "..") for part in p.parts)
    if bad or p.parts[0] in (BUILD_DIR, MANIFEST, LEGACY_MARKER) or any(ord(c) < 32 or c == "\x7f" for c in rel):
        raise ValueError(f"not a path mcuq writes into an output folder: {rel!r}")
    return rel


def parse_manifest(text: str, where: str) -> Manifest:
    """The manifest in ``text``; McuqError when it is not one of a known format. Entries that are not plain
    relative paths are ignored (they are never written or removed)."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != FORMAT:
        first = lines[0][:40] if lines else ""
        raise McuqError(
            f"{where}: not a manifest this mcuq can read (first line {first!r}, expected {FORMAT!r}); "
            "remove it or choose another -o"
        )
    files: dict[str, str] = {}
    for line in lines[1:]:
        kind, _, rest = line.partition(" ")
        if kind == "file":
            digest, _, rel = rest.partition(" ")
            with contextlib.suppress(ValueError):
                files[check_rel(rel)] = digest
    return Manifest(files)


def read_manifest(out: Path) -> Manifest | None:
    """The manifest of ``out``, a Manifest(legacy=True) for a folder of an earlier mcuq, or None."""
    m = out / MANIFEST
    if m.is_file():
        return parse_manifest(m.read_text(encoding="utf-8", errors="replace"), str(m))
    if (out / LEGACY_MARKER).is_file():
        return Manifest({}, legacy=True)
    return None


def clear_build(out: str | os.PathLike) -> bool:
    """Remove ``out/build`` if ``out`` is mcuq's folder; returns whether it did."""
    out = Path(out)
    build = out / BUILD_DIR
    if read_manifest(out) is None or build.is_symlink() or not build.is_dir():
        return False
    shutil.rmtree(build)
    return True


# -- writing -------------------------------------------------------------------------------------------------
def write_tree(files: Mapping[str, str], out_dir: str | os.PathLike, *, force: bool = False) -> Path:
    """Write ``files`` (relative POSIX path -> text) into ``out_dir`` in place, as the module docstring says;
    returns the folder. A missing folder (and its parents) is created. Paths that cannot be written raise
    McuqError with the path and the reason."""
    out = Path(out_dir)
    data = {check_rel(rel): text.encode("utf-8") for rel, text in files.items()}
    try:
        _write(out, data, force)
    except OSError as e:
        where = Path(e.filename) if e.filename else out
        what = "create or write the output folder" if where == out else f"write it (output folder {out})"
        raise McuqError(f"{where}: cannot {what}: {e.strerror or e}") from None
    return out


def _write(out: Path, data: dict[str, bytes], force: bool) -> None:
    created = _ensure_dir(out)
    old = read_manifest(out)
    if old is None:
        others = sorted(e for e in os.listdir(out) if not e.startswith(TMP_PREFIX))
        if others and not force:
            raise McuqError(
                f"{out}: a non-empty folder that mcuq did not write ({len(others)} "
                f"entr{'y' if len(others) == 1 else 'ies'}, e.g. {others[0]!r}); "
                "refusing to write into it: choose another -o, or add --force to add mcuq's files beside them "
                "(nothing of yours is deleted or overwritten)"
            )
        if os.path.lexists(out / BUILD_DIR):
            raise McuqError(
                f"{out / BUILD_DIR}: exists and is not mcuq's, but the generated Makefile builds there (and "
                "`make clean` removes it); move it away or choose another -o"
            )
        old = Manifest()
    _refuse_conflicts(out, data, old)
    new = {rel: _sha(b) for rel, b in data.items()}
    changed = {rel: b for rel, b in data.items() if not _holds(out / rel, b)}
    staged: dict[str, Path] = {}
    made: list[Path] = []
    try:
        for rel, b in changed.items():
            staged[rel] = _stage(out / rel, b, made)
        with _signals_deferred():
            # The union first: after a crash between the renames, every file present is still listed.
            _put(out / MANIFEST, Manifest({**old.files, **new}).text().encode(), made)
            for rel in list(staged):
                os.replace(staged.pop(rel), out / rel)
            _put(out / MANIFEST, Manifest(new).text().encode(), made)
            if old.legacy:
                (out / LEGACY_MARKER).unlink(missing_ok=True)
    except BaseException:
        for tmp in staged.values():
            tmp.unlink(missing_ok=True)
        for d in reversed(made):
            with contextlib.suppress(OSError):
                d.rmdir()  # only if still empty
        if created:
            with contextlib.suppress(OSError):
                out.rmdir()
        raise
    _remove_stale(out, {rel: d for rel, d in old.files.items() if rel not in new})


def _ensure_dir(out: Path) -> bool:
    """Make ``out`` a folder; True if it was created here."""
    if out.is_dir():
        return False
    if os.path.lexists(out):
        raise McuqError(f"{out}: exists and is not a folder; choose another -o")
    out.mkdir(parents=True)
    return True


def _holds(p: Path, b: bytes) -> bool:
    """``p`` is a regular file (not a link) whose content is ``b``."""
    try:
        return not p.is_symlink() and p.is_file() and p.stat().st_size == len(b) and p.read_bytes() == b
    except OSError:
        return False


def _refuse_conflicts(out: Path, data: Mapping[str, bytes], old: Manifest) -> None:
    """McuqError if a path mcuq is about to write holds something of the user's (not listed, different)."""
    for rel, b in data.items():
        p = out / rel
        for parent in PurePosixPath(rel).parents:
            q = out / parent
            if str(parent) != "." and os.path.lexists(q) and (q.is_symlink() or not q.is_dir()):
                raise McuqError(f"{q}: exists and is not a folder, but mcuq writes {rel} there; move it away")
        if not os.path.lexists(p) or _holds(p, b):
            continue
        mine = (rel in old.files or old.legacy) and p.is_file() and not p.is_symlink()
        if not mine:
            raise McuqError(
                f"{p}: exists and was not written by mcuq, and mcuq writes a file of that name; "
                "move it away or choose another -o"
            )


def _stage(final: Path, b: bytes, made: list[Path]) -> Path:
    """``b`` written to a new temporary file beside ``final`` (directories created are appended to ``made``)."""
    _mkdirs(final.parent, made)
    tmp = final.parent / f"{TMP_PREFIX}{secrets.token_hex(8)}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as e:
        raise OSError(e.errno, e.strerror, str(final)) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(b)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise OSError(e.errno, e.strerror, str(final)) from None
        raise
    return tmp


def _put(final: Path, b: bytes, made: list[Path]) -> None:
    os.replace(_stage(final, b, made), final)


def _mkdirs(d: Path, made: list[Path]) -> None:
    missing = []
    while not d.is_dir():
        missing.append(d)
        d = d.parent
    for m in reversed(missing):
        m.mkdir()
        made.append(m)


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """SIGINT and SIGTERM wait until the block ends (main thread on POSIX; elsewhere a no-op)."""
    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _remove_stale(out: Path, stale: Mapping[str, str]) -> None:
    """Remove each listed file that still holds what mcuq wrote (and folders it leaves empty)."""
    root = out.resolve()
    for rel, digest in sorted(stale.items()):
        p = out / rel
        try:
            if p.is_symlink() or not p.is_file() or not p.resolve().is_relative_to(root):
                continue
            if _sha(p.read_bytes()) != digest:
                continue  # edited since: the user's now
            p.unlink()
        except OSError:
            continue  # a stale file that cannot be removed is left; the new set is complete
        d = p.parent
        while d != out and d != d.parent:
            try:
                d.rmdir()
            except OSError:
                break
            d = d.parent
