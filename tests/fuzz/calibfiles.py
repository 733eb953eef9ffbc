"""The ``files`` family of the quantizer fuzzer: hostile calibration files, folders and paths for ``--calib``.

``files_case(src, seed, tmp)`` writes one calibration input under ``tmp`` and returns a ``QuantCase`` whose
calibration is its path (given to ``mcuq.quantize`` and, by the judge, to ``mcuq quantize --calib``):
  * a valid .npy (or .npz for a multi-input source) with bytes of its header or data overwritten, truncated or
    extended;
  * a .npy with a crafted header: a shape claiming 2^40 elements, negative, float or nested dimensions, object
    (pickled), string, complex, date, record, void, big-endian, float16 and float64 dtypes, Fortran order, missing
    or extra keys, an expression instead of a dict, a header longer than numpy's limit or than the file, unknown
    format versions;
  * a .npz made with zipfile: garbage, non-.npy or directory members, duplicate names, 2000 members, a deflate
    bomb, a member whose size lies, the encryption flag, names with newlines and escapes; or a valid .npz mutated;
  * a folder of samples with a symbolic link (to a valid sample, dangling, to /dev/zero), a FIFO, a subfolder
    named like a sample, ragged shapes, a whole set in one file, empty files, hostile file names; an empty folder;
  * a path that is missing, /dev/null, /dev/zero, a FIFO, or the model file itself.
Every outcome must be a quantized model or one line (exit 2 through the CLI); nothing may hang on a FIFO.
"""

from __future__ import annotations

import io
import os
import struct
import warnings
import zipfile
from pathlib import Path

import numpy as np

from mcuq.frontend import load

from .qmutate import QuantCase, _rng
from .qsources import Source

MAGIC = b"\x93NUMPY"
HEADER_DICTS = (
    "{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, %(rest)s), }",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (-1, %(rest)s), }",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (%(n)d.0, %(rest)s), }",
    "{'descr': '<f4', 'fortran_order': False, 'shape': ((%(n)d,), %(rest)s), }",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (True, %(rest)s), }",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (0, %(rest)s), }",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (), }",
    "{'descr': '<f4', 'fortran_order': True, 'shape': (%(n)d, %(rest)s), }",
    "{'descr': '>f4', 'fortran_order': False, 'shape': (%(n)d, %(rest)s), }",
    "{'descr': '<f2', 'fortran_order': False, 'shape': (%(n)d, %(rest)s), }",
    "{'descr': '<f8', 'fortran_order': False, 'shape': (%(n)d, %(rest)s), }",
    "{'descr': '|O', 'fortran_order': False, 'shape': (%(n)d, %(rest)s), }",
    "{'descr': '<U1', 'fortran_order': False, 'shape': (%(n)d, %(rest)s), }",
    "{'descr': '<c8', 'fortran_order': False, 'shape': (%(n)d, %(rest)s), }",
    "{'descr': '<M8[s]', 'fortran_order': False, 'shape': (%(n)d, %(rest)s), }",
    "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (%(n)d, %(rest)s), }",
    "{'descr': '|V4', 'fortran_order': False, 'shape': (%(n)d, %(rest)s), }",
    "{'descr': '<f4', 'shape': (%(n)d, %(rest)s), }",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (%(n)d, %(rest)s), 'extra': 1, }",
    "__import__('os').system('false')",
    "[1, 2, 3]",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (%(n)d, %(rest)s), " + " " * 20000 + "}",
)


def _npy_bytes(a: np.ndarray) -> bytes:
    f = io.BytesIO()
    np.save(f, a, allow_pickle=a.dtype.hasobject)
    return f.getvalue()


def _header_file(text: str, payload: bytes, version: tuple[int, int] = (1, 0)) -> bytes:
    body = (text + "\n").encode("latin1")
    pad = (-(len(MAGIC) + 2 + (2 if version[0] == 1 else 4) + len(body))) % 64
    body = body[:-1] + b" " * pad + b"\n"
    size = struct.pack("<H", len(body) & 0xFFFF) if version[0] == 1 else struct.pack("<I", len(body))
    return MAGIC + bytes(version) + size + body + payload


def _mutate_bytes(rng: np.random.Generator, data: bytes, head: int) -> tuple[bytes, str]:
    """1-4 edits mostly in the first ``head`` bytes; or a truncation; or junk appended."""
    buf = bytearray(data)
    r = rng.random()
    if r < 0.15:
        cut = int(rng.integers(0, len(buf)))
        return bytes(buf[:cut]), f"truncated at {cut}"
    if r < 0.2:
        return bytes(buf) + bytes(rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8)), "junk appended"
    edits = []
    for _ in range(int(rng.integers(1, 5))):
        limit = min(len(buf), head) if rng.random() < 0.8 else len(buf)
        pos = int(rng.integers(0, limit))
        v = (0, 0xFF, 0x7F, ord("("), ord(")"), ord(","), ord("9"), ord(" "), ord("'"), 10)[int(rng.integers(10))]
        v = v if rng.random() < 0.7 else int(rng.integers(256))
        buf[pos] = v
        edits.append(f"byte@{pos}={v:#x}")
    return bytes(buf), " ".join(edits)


def _valid_set(src: Source, names: tuple[str, ...]) -> tuple[bytes, str]:
    """The source's calibration as a .npy (one input) or a .npz keyed by name: (bytes, suffix)."""
    if len(src.calib) == 1:
        return _npy_bytes(src.calib[0]), ".npy"
    f = io.BytesIO()
    np.savez(f, **dict(zip(names, src.calib)))
    return f.getvalue(), ".npz"


def _zip(members: list[tuple[str | zipfile.ZipInfo, bytes]], compress: bool = False) -> bytes:
    f = io.BytesIO()
    with (
        warnings.catch_warnings(),
        zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED) as z,
    ):
        warnings.simplefilter("ignore")  # duplicate names are the point
        for name, data in members:
            z.writestr(name, data)
    return f.getvalue()


def _crafted_npz(rng: np.random.Generator, src: Source, names: tuple[str, ...]) -> tuple[bytes, str]:
    arrays = [_npy_bytes(a) for a in src.calib]
    named = [(f"{n}.npy", a) for n, a in zip(names, arrays)]
    kinds = {
        "garbage member": lambda: _zip([(f"{names[0]}.npy", b"\x93NUMPY garbage")]),
        "non-npy member": lambda: _zip([*named, ("readme.txt", b"hello")]),
        "directory member": lambda: _zip([*named, ("d/", b"")]),
        "duplicate names": lambda: _zip([named[0], *named]),
        "2000 members": lambda: _zip([(f"m{i}.npy", arrays[0][:128]) for i in range(2000)]),
        "deflate bomb": lambda: _zip([(f"{names[0]}.npy", _header_file(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (5000000,), }", bytes(20_000_000)))], True),
        "escape in name": lambda: _zip([(f"{names[0]}\n\x1b[31m.npy", arrays[0])]),
        "empty zip": lambda: _zip([]),
        "nested npz": lambda: _zip([(f"{names[0]}.npy", _zip(named))]),
    }  # fmt: skip
    r = rng.random()
    if r < 0.25:
        data = _zip(named)
        size_at = data.find(b"PK\x01\x02")  # the central directory's first entry
        if size_at >= 0:
            buf = bytearray(data)
            field = (20, 24)[int(rng.integers(2))]  # its compressed or uncompressed size
            buf[size_at + field : size_at + field + 4] = struct.pack(
                "<I", (0, 1, 2**31, 2**32 - 1)[int(rng.integers(4))]
            )
            return bytes(buf), f"npz: size field {field} of the first member lies"
    if r < 0.35:
        data = bytearray(_zip(named))
        at = data.find(b"PK\x01\x02")
        data[at + 8] |= 1  # the central directory's "encrypted" flag
        return bytes(data), "npz: encryption flag"
    key = list(kinds)[int(rng.integers(len(kinds)))]
    return kinds[key](), f"npz: {key}"


def _folder(rng: np.random.Generator, src: Source, names: tuple[str, ...], d: Path) -> str:
    """A folder of samples (one .npy per sample, or .npz for several inputs) with one hostile entry."""
    d.mkdir()
    kind = ("symlink in", "symlink dangling", "symlink /dev/zero", "fifo", "subfolder", "ragged", "whole set",
            "empty file", "hostile name", "empty folder", "hidden only", "bad npz keys")[int(rng.integers(12))]  # fmt: skip
    if kind in ("empty folder",):
        return kind
    n = min(4, len(src.calib[0]))
    for i in range(n):
        sample = [a[i] for a in src.calib]
        if len(sample) == 1:
            (d / f"s{i:03d}.npy").write_bytes(_npy_bytes(sample[0]))
        else:
            np.savez(d / f"s{i:03d}.npz", **dict(zip(names, sample)))
    first = sorted(d.iterdir())[0]
    if kind == "symlink in":
        outside = d.parent / "outside.npy"
        outside.write_bytes(first.read_bytes())
        os.symlink(outside, d / "s900.npy")
    elif kind == "symlink dangling":
        os.symlink(d.parent / "missing.npy", d / "s900.npy")
    elif kind == "symlink /dev/zero":
        os.symlink("/dev/zero", d / "s900.npy")
    elif kind == "fifo":
        os.mkfifo(d / "s900.npy")
    elif kind == "subfolder":
        (d / "s900.npy").mkdir()
    elif kind == "ragged":
        (d / "s900.npy").write_bytes(_npy_bytes(np.zeros((3, 5), np.float32)))
    elif kind == "whole set":
        (d / "s900.npy").write_bytes(_npy_bytes(src.calib[0]))
    elif kind == "empty file":
        (d / "s900.npy").write_bytes(b"")
    elif kind == "hostile name":
        (d / "s9\n\x1b[31m\t.npy").write_bytes(b"\x93NUMPY\x01\x00")
    elif kind == "hidden only":
        for p in list(d.iterdir()):
            p.rename(d / f".{p.name}")
    else:
        np.savez(d / "s900.npz", wrong=src.calib[0][0])
    return f"folder: {kind}"


def files_case(src: Source, seed: int, tmp: Path) -> QuantCase:
    """The source model with one hostile calibration file, folder or path written under ``tmp``."""
    rng = _rng("files", seed)
    names = tuple(load(src.model).inputs)
    model = tmp / "model.tflite"
    model.write_bytes(src.model)
    valid, suffix = _valid_set(src, names)
    path = tmp / f"calib{suffix}"
    r = rng.random()
    if r < 0.35:
        data, desc = _mutate_bytes(rng, valid, 128 if suffix == ".npy" else len(valid))
        path.write_bytes(data)
    elif r < 0.55:
        rest = ", ".join(str(d) for d in src.calib[0].shape[1:])
        text = HEADER_DICTS[int(rng.integers(len(HEADER_DICTS)))] % {"n": len(src.calib[0]), "rest": rest}
        version = ((1, 0), (1, 0), (2, 0), (3, 0), (9, 9))[int(rng.integers(5))]
        payload = src.calib[0].tobytes()[: int(rng.integers(0, src.calib[0].nbytes + 1))]
        path = tmp / "calib.npy"
        path.write_bytes(_header_file(text, payload, version))
        desc = f"header v{version[0]}.{version[1]} {text[:70]!r}, {len(payload)} payload bytes"
    elif r < 0.72:
        data, desc = _crafted_npz(rng, src, names)
        path = tmp / "calib.npz"
        path.write_bytes(data)
    elif r < 0.92:
        path = tmp / "samples"
        desc = _folder(rng, src, names, path)
    else:
        special = ("missing", "/dev/null", "/dev/zero", "fifo", "the model")[int(rng.integers(5))]
        path = {"missing": tmp / "missing.npy", "/dev/null": Path("/dev/null"), "/dev/zero": Path("/dev/zero"),
                "fifo": tmp / "fifo.npy", "the model": model}[special]  # fmt: skip
        if special == "fifo":
            os.mkfifo(path)
        desc = f"path: {special}"
    shown = str(path)
    return QuantCase(src.model, lambda: shown, desc, None, path=shown, user_text=True)
