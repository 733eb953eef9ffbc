"""The .npy files of ``mcuq run`` and ``mcuq bench``: read without trusting the header, write without losing a file.

``load_npy`` reads the header with ``numpy.lib.format`` and checks it against the file before allocating: a
header that claims more data than the file holds (2^40 elements in a 200-byte file) is refused with the numbers,
and so is anything that would need unpickling (object arrays are never loaded). ``check_output`` refuses an
output path in a missing folder or onto a folder before any work is done; ``save_npy`` writes the exact path
given (no ``.npy`` appended) through a temporary file beside it, so an interrupted write leaves the old file.
Every problem is a one-line ``McuqError`` naming the path.
"""

from __future__ import annotations

import math
import os
import secrets
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

from .errors import McuqError

MAX_HEADER_BYTES = 10_000  # numpy's own default limit for a header


def _reason(e: BaseException) -> str:
    return (e.strerror if isinstance(e, OSError) and e.strerror else str(e)) or type(e).__name__


def _header(f, path: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    try:
        version = npy_format.read_magic(f)
        if version == (1, 0):
            return npy_format.read_array_header_1_0(f, max_header_size=MAX_HEADER_BYTES)
        if version == (2, 0):
            return npy_format.read_array_header_2_0(f, max_header_size=MAX_HEADER_BYTES)
        read = getattr(npy_format, "_read_array_header", None)  # format 3.0 (utf-8 field names) has no public reader
        if read is None:
            raise ValueError(f"format version {version[0]}.{version[1]} is not supported")
        return read(f, version, max_header_size=MAX_HEADER_BYTES)
    except (ValueError, EOFError, OSError, SyntaxError, TypeError) as e:
        raise McuqError(f"{path}: not a readable .npy file ({_reason(e)})") from None


def load_npy(path: str | os.PathLike) -> np.ndarray:
    """The array in the .npy file ``path``; McuqError (one line, naming the file) for anything else."""
    shown = os.fspath(path)
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise McuqError(f"{shown}: no such file") from None
    except IsADirectoryError:
        raise McuqError(f"{shown}: is a folder, not a .npy file") from None
    except (OSError, ValueError) as e:
        raise McuqError(f"{shown}: cannot read ({_reason(e)})") from None
    with f:
        shape, fortran, dtype = _header(f, shown)
        if dtype.hasobject:
            raise McuqError(
                f"{shown}: holds Python objects (dtype {dtype}); mcuq reads numeric arrays and never unpickles"
            )
        if any(d < 0 for d in shape):
            raise McuqError(f"{shown}: not a readable .npy file (negative dimension in shape {list(shape)})")
        count = math.prod(int(d) for d in shape)
        need = count * dtype.itemsize
        have = max(os.fstat(f.fileno()).st_size - f.tell(), 0)
        if need > have:
            raise McuqError(
                f"{shown}: the header says shape {list(shape)} ({count:,} elements of {dtype}, {need:,} bytes) but the "
                f"file holds {have:,} bytes of data"
            )
        buf = bytearray(need)
        try:
            got = f.readinto(buf)
        except OSError as e:
            raise McuqError(f"{shown}: cannot read ({_reason(e)})") from None
        if got != need:
            raise McuqError(f"{shown}: the file ended after {got:,} of {need:,} bytes of data")
    return np.frombuffer(buf, dtype=dtype, count=count).reshape(shape, order="F" if fortran else "C")


def check_output(path: str | os.PathLike) -> Path:
    """``path`` as an output file: its folder exists and is writable, and it is not itself a folder."""
    p = Path(path)
    shown = os.fspath(path)
    if p.is_dir():
        raise McuqError(f"{shown}: is a folder; give a file name for the output, such as {p / 'out.npy'}")
    folder = p.parent
    if not folder.exists():
        raise McuqError(f"{shown}: the folder {folder} does not exist")
    if not folder.is_dir():
        raise McuqError(f"{shown}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise McuqError(f"{shown}: cannot write into the folder {folder} (permission denied)")
    return p


def save_npy(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write ``array`` to exactly ``path`` (through a temporary file beside it, renamed over the old one)."""
    p = check_output(path)
    tmp = p.with_name(f".{p.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as for any new file
        with os.fdopen(fd, "wb") as f:
            np.save(f, np.asarray(array), allow_pickle=False)
        os.replace(tmp, p)
    except OSError as e:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise McuqError(f"{os.fspath(path)}: cannot write ({_reason(e)})") from None
    return p
