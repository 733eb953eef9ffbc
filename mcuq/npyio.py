"""The .npy and .npz files of ``mcuq run``, ``mcuq bench`` and ``--calib``: read without trusting the header, write
without losing a file.

``load_npy`` reads the header with ``numpy.lib.format`` and checks it against the file before allocating: a
header that claims more data than the file holds (2^40 elements in a 200-byte file) is refused with the numbers,
and so is anything that would need unpickling (object arrays are never loaded). ``load_npz`` reads a .npz the
same way, member by member from its zip stream (a header is checked against the member's uncompressed size, the
member count and the total size are bounded before anything is read). ``check_output`` refuses an
output path in a missing folder or onto a folder before any work is done; ``save_npy`` writes the exact path
given (no ``.npy`` appended) through a temporary file beside it, so an interrupted write leaves the old file.
Every problem is a one-line ``McuqError`` naming the path.
"""

from __future__ import annotations

import errno
import math
import os
import secrets
import stat
import struct
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO

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
            header = npy_format.read_array_header_1_0(f, max_header_size=MAX_HEADER_BYTES)
        elif version == (2, 0):
            header = npy_format.read_array_header_2_0(f, max_header_size=MAX_HEADER_BYTES)
        else:
            read = getattr(npy_format, "_read_array_header", None)  # format 3.0 has no public reader
            if read is None:
                raise ValueError(f"format version {version[0]}.{version[1]} is not supported")
            header = read(f, version, max_header_size=MAX_HEADER_BYTES)
    except zipfile.BadZipFile:  # a .npz member that fails its CRC: load_npz says so
        raise
    except Exception as e:  # numpy's header parser raises what its tokenizer and literal_eval raise
        raise McuqError(f"{path}: not a readable .npy file ({_header_reason(e)})") from None
    return _valid_header(header, path)


def _header_reason(e: BaseException) -> str:
    """A short reason that quotes nothing of the file (numpy's messages may hold raw header bytes, object reprs
    with addresses, or advice to allow pickle)."""
    text = _reason(e)
    if "max_header_size" in text or "too large" in text.lower():
        return f"its header is longer than {MAX_HEADER_BYTES:,} bytes"
    if isinstance(e, (EOFError, OSError)) or "magic" in text or "format version" in text:
        return text.splitlines()[0] if text else type(e).__name__
    return "its header is not a valid .npy header"


def _valid_header(header, path: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    shape, fortran, dtype = header
    if not isinstance(shape, tuple) or any(type(d) is not int for d in shape):  # bool is an int to isinstance
        raise McuqError(f"{path}: not a readable .npy file (its shape is not a tuple of integers)")
    return shape, bool(fortran), dtype


def _open_regular(path: str | os.PathLike, shown: str, kind: str, nofollow: bool) -> BinaryIO:
    """``path`` opened for reading, refused unless it is a regular file. O_NONBLOCK keeps a FIFO from hanging the
    open; with ``nofollow`` a symbolic link is refused by the kernel itself (O_NOFOLLOW), so that a link swapped
    in after a folder was listed is not followed either."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    if nofollow:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise McuqError(f"{shown}: no such file") from None
    except IsADirectoryError:
        raise McuqError(f"{shown}: is a folder, not a {kind} file") from None
    except OSError as e:
        if nofollow and e.errno == errno.ELOOP:
            raise McuqError(f"{shown}: is a symbolic link; mcuq reads only regular files from the folder") from None
        raise McuqError(f"{shown}: cannot read ({_reason(e)})") from None
    except ValueError as e:  # a NUL byte in the path
        raise McuqError(f"{shown}: cannot read ({_reason(e)})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        what = "is a folder" if stat.S_ISDIR(mode) else "is not a regular file"
        raise McuqError(f"{shown}: {what}, not a {kind} file")
    return os.fdopen(fd, "rb")


def _checked_count(shape: tuple[int, ...], dtype: np.dtype, shown: str, kind: str) -> int:
    """The element count of a header's shape; McuqError for object dtypes (pickles) and negative dimensions."""
    if dtype.hasobject:
        raise McuqError(f"{shown}: holds Python objects (dtype {dtype}); mcuq reads numeric arrays and never unpickles")
    if any(d < 0 for d in shape):
        raise McuqError(f"{shown}: not a readable {kind} file (negative dimension in shape {list(shape)})")
    return math.prod(int(d) for d in shape)


def _claim(shown: str, shape: tuple[int, ...], count: int, dtype: np.dtype, need: int, have: int, where: str) -> str:
    return (
        f"{shown}: the header says shape {list(shape)} ({count:,} elements of {dtype}, {need:,} bytes) but the "
        f"{where} holds {have:,} bytes of data"
    )


def load_npy(path: str | os.PathLike, *, nofollow: bool = False) -> np.ndarray:
    """The array in the .npy file ``path``; McuqError (one line, naming the file) for anything else. ``nofollow``
    refuses a symbolic link (a calibration folder's files)."""
    shown = os.fspath(path)
    with _open_regular(path, shown, ".npy", nofollow) as f:
        shape, fortran, dtype = _header(f, shown)
        count = _checked_count(shape, dtype, shown, ".npy")
        need = count * dtype.itemsize
        have = max(os.fstat(f.fileno()).st_size - f.tell(), 0)
        if need > have:
            raise McuqError(_claim(shown, shape, count, dtype, need, have, "file"))
        buf = bytearray(need)
        try:
            got = f.readinto(buf)
        except OSError as e:
            raise McuqError(f"{shown}: cannot read ({_reason(e)})") from None
        if got != need:
            raise McuqError(f"{shown}: the file ended after {got:,} of {need:,} bytes of data")
    return np.frombuffer(buf, dtype=dtype, count=count).reshape(shape, order="F" if fortran else "C")


MAX_NPZ_MEMBERS = 1024  # arrays in one .npz: a calibration file holds one per model input
MAX_NPZ_BYTES = 2**31  # uncompressed bytes of all members together, unless the caller gives its own limit
_CD_ENTRY_ALLOWANCE = 4096  # central-directory bytes allowed per member (46 fixed + name + extras)
_EOCD = struct.Struct("<4s4H2LH")  # zip's end-of-central-directory record
_CHUNK = 1 << 20


def _zip_bounds(f: BinaryIO, shown: str, max_members: int) -> None:
    """Refuse, from the end record alone, a zip whose central directory is too big to parse: ``zipfile`` reads and
    parses all of it before any member can be counted. A missing end record is left to ``zipfile`` to report."""
    size = os.fstat(f.fileno()).st_size
    tail = min(size, _EOCD.size + 65535)
    f.seek(size - tail)
    data = f.read(tail)
    at = data.rfind(b"PK\x05\x06")
    if at < 0 or at + _EOCD.size > len(data):
        return
    fields = _EOCD.unpack_from(data, at)
    members, cd_size = fields[4], fields[5]
    if members == 0xFFFF or cd_size == 0xFFFFFFFF or members > max_members:
        raise McuqError(f"{shown}: holds more than {max_members:,} arrays; mcuq reads at most that many")
    if cd_size > max_members * _CD_ENTRY_ALLOWANCE:
        raise McuqError(f"{shown}: its zip directory takes {cd_size:,} bytes; not a .npz file mcuq reads")


def _members(zf: zipfile.ZipFile, shown: str, max_members: int, max_bytes: int) -> list[tuple[str, zipfile.ZipInfo]]:
    """(key, member) in file order, after checking names, count, encryption and the total uncompressed size."""
    infos = zf.infolist()
    if len(infos) > max_members:
        raise McuqError(f"{shown}: holds {len(infos):,} arrays; mcuq reads at most {max_members:,}")
    out: list[tuple[str, zipfile.ZipInfo]] = []
    seen: set[str] = set()
    for info in infos:
        if not info.filename.endswith(".npy") or info.is_dir():
            raise McuqError(f"{shown}: member '{info.filename}' is not a .npy array; a .npz holds only .npy arrays")
        key = info.filename[: -len(".npy")]
        if key in seen:
            raise McuqError(f"{shown}: holds two arrays named '{key}'")
        if info.flag_bits & 0x1:
            raise McuqError(f"{shown}: array '{key}' is encrypted")
        seen.add(key)
        out.append((key, info))
    total = sum(info.file_size for _, info in out)
    if total > max_bytes:
        raise McuqError(
            f"{shown}: its arrays take {total:,} bytes uncompressed, more than the limit of {max_bytes:,} bytes"
        )
    return out


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, shown: str) -> np.ndarray:
    """One member's array: its header read from the member stream and checked against the member's uncompressed
    size (``ZipInfo.file_size``, which also bounds what the decompressor may produce) before allocating."""
    with zf.open(info) as m:
        shape, fortran, dtype = _header(m, shown)
        count = _checked_count(shape, dtype, shown, ".npy")
        need = count * dtype.itemsize
        have = max(info.file_size - m.tell(), 0)
        if need > have:
            raise McuqError(_claim(shown, shape, count, dtype, need, have, "member"))
        buf = bytearray(need)
        view = memoryview(buf)
        pos = 0
        while pos < need:
            chunk = m.read(min(_CHUNK, need - pos))
            if not chunk:
                raise McuqError(f"{shown}: the member ended after {pos:,} of {need:,} bytes of data")
            view[pos : pos + len(chunk)] = chunk
            pos += len(chunk)
        while m.read(_CHUNK):  # to the end, so that zipfile checks the CRC of every byte
            pass
    return np.frombuffer(buf, dtype=dtype, count=count).reshape(shape, order="F" if fortran else "C")


def load_npz(
    path: str | os.PathLike,
    *,
    max_bytes: int = MAX_NPZ_BYTES,
    max_members: int = MAX_NPZ_MEMBERS,
    nofollow: bool = False,
) -> dict[str, np.ndarray]:
    """The arrays of the .npz file ``path`` by name (the member name without ``.npy``), in file order, read as
    ``load_npy`` reads a file: never unpickled, each header checked against its member's size before allocating,
    at most ``max_members`` members of at most ``max_bytes`` uncompressed bytes in all. McuqError for the rest."""
    shown = os.fspath(path)
    with _open_regular(path, shown, ".npz", nofollow) as f:
        try:
            _zip_bounds(f, shown, max_members)
            with zipfile.ZipFile(f) as zf:
                members = _members(zf, shown, max_members, max_bytes)
                return {key: _read_member(zf, info, f"{shown}[{key}]") for key, info in members}
        except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, NotImplementedError, RuntimeError) as e:
            raise McuqError(f"{shown}: not a readable .npz file ({_reason(e)})") from None
        except (OSError, EOFError, ValueError) as e:
            raise McuqError(f"{shown}: not a readable .npz file ({_reason(e)})") from None


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
    return _save(path, lambda f: np.save(f, np.asarray(array), allow_pickle=False))


def save_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to exactly ``path`` the same way (a .tflite, a JSON report)."""
    return _save(path, lambda f: f.write(data))


def _save(path: str | os.PathLike, fill) -> Path:
    """A regular file (or none yet) is replaced atomically; a symbolic link is followed, so the link stays and its
    target is what gets replaced; a device or a pipe (/dev/null, /dev/stdout) is written into, never replaced."""
    p = check_output(path)
    real = Path(os.path.realpath(p))
    if real.exists() and not real.is_file():
        if real.is_dir():
            raise McuqError(f"{os.fspath(path)}: is a folder; give a file name for the output")
        try:
            with open(real, "wb") as f:
                fill(f)
        except OSError as e:
            raise McuqError(f"{os.fspath(path)}: cannot write ({_reason(e)})") from None
        return p
    p = check_output(real) if real != p else p
    tmp = p.with_name(f".{p.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as for any new file
        with os.fdopen(fd, "wb") as f:
            fill(f)
        os.replace(tmp, p)
    except OSError as e:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise McuqError(f"{os.fspath(path)}: cannot write ({_reason(e)})") from None
    return p
