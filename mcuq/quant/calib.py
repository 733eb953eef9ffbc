"""Calibration data: whatever form the user holds it in, checked and turned into one float32 array per model input.

Accepted forms (``load_calibration``):

* a ``.npy`` file, or a numpy array: one array with a leading sample axis, for a single-input model;
* a ``.npz`` file, or a dict: one array per model input, each with a leading sample axis. Keys are matched to
  inputs by one of two rules, never a mixture: when every key is an input name, by name (all inputs needed);
  when no key is an input name, by position: exactly one array per input, in input order, which is numpy's
  ``arr_0, arr_1, ...`` order when the keys are those names (``np.savez(path, a, b)``) and file (or insertion)
  order otherwise. Some keys naming inputs and others not is refused, naming the unknown keys: a typo must not
  silently reorder inputs;
* a folder: every ``*.npy`` file directly inside it is one sample of a single-input model, every ``*.npz`` file
  one sample keyed as above (the form for a multi-input model); samples are taken in the order of their file
  names (Python's string order, so ``s10`` before ``s2``: name them ``s002`` for a meaningful order). Other files,
  hidden files (names starting with ``.``) and subfolders are ignored; subfolders are not entered. A sample file
  that is a symbolic link is refused, naming it, wherever it points: only the folder's own files are read
  (opened with O_NOFOLLOW, so a link swapped in after the listing is refused too);
* from Python, an iterable of samples, as TFLite's ``representative_dataset`` yields them (or the function that
  returns it): each sample one array (single-input model), a list/tuple of arrays in input order, or a dict.
  Exceptions raised by the user's iterable are the user's and pass through unchanged.

Shapes (the issue's rule): for an input of shape S, an array of shape (N, *S) holds N samples, and when
S[0] == 1 so does one of shape (N, *S[1:]): a sample may omit the batch dimension of 1. One sample on its own (a
folder's file, an iterable's item) has shape S, or S[1:] when S[0] == 1. Float and integer data become float32;
bool, complex, strings, objects and dates are refused, as are NaN and inf (naming the first bad sample) and an
empty set.

Safety: files are data. .npy and .npz load through ``mcuq.npyio`` (never unpickled, every header checked against
the bytes that are there before allocating), and the whole set is held to ``MCUQ_CALIB_MAX_BYTES`` (2 GiB by
default), checked on the file sizes before anything is read and on the float32 result before it is allocated.
Every problem is one line (McuqError): ``what`` (``--calib`` on the command line), the file or ``<array>``,
``<dict>``, ``<iterable>``, the input and what is wrong.
"""

from __future__ import annotations

import logging
import math
import os
import re
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import McuqError
from ..ir import Graph
from ..npyio import load_npy, load_npz
from ..progress import progress

MAX_BYTES_ENV = "MCUQ_CALIB_MAX_BYTES"
DEFAULT_MAX_BYTES = 2 << 30
SAMPLE_SUFFIXES = (".npy", ".npz")
_FINITE_CHUNK = 1 << 20  # elements checked for NaN/inf at once (bounds the temporary boolean array)
_POSITIONAL = re.compile(r"arr_(\d+)")

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class CalibrationSet:
    """Calibration samples: ``arrays[k]`` holds input ``names[k]``'s samples, float32 (N, *shape), C-contiguous and
    read-only, so that the quantizer can slice batches without copying and nothing can change them behind its
    back. ``source`` names where they came from, for messages (a path, ``<array>``, ``<dict>``, ``<iterable>``)."""

    names: tuple[str, ...]
    arrays: tuple[np.ndarray, ...]
    source: str

    def __post_init__(self) -> None:
        names, arrays = tuple(self.names), tuple(_frozen(a) for a in self.arrays)
        if len(names) != len(arrays) or not arrays:
            raise ValueError(f"CalibrationSet: {len(names)} names for {len(arrays)} arrays")
        if len({a.shape[0] for a in arrays}) != 1:
            raise ValueError(f"CalibrationSet: sample counts differ: {[a.shape[0] for a in arrays]}")
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "arrays", arrays)

    def __len__(self) -> int:
        return int(self.arrays[0].shape[0])

    def sample(self, i: int) -> list[np.ndarray]:
        """Sample ``i``: one array per input, of exactly the input's shape (read-only views)."""
        return [a[i] for a in self.arrays]


def _frozen(a: np.ndarray) -> np.ndarray:
    """``a`` as a read-only float32 C-contiguous array with a sample axis; copied unless it already is one."""
    if not (isinstance(a, np.ndarray) and a.dtype == np.float32 and a.flags.c_contiguous and not a.flags.writeable):
        a = np.array(a, dtype=np.float32, order="C", copy=True)
        a.flags.writeable = False
    if a.ndim < 1:
        raise ValueError("CalibrationSet: an array without a sample axis")
    return a


@dataclass(frozen=True)
class _Input:
    name: str
    shape: tuple[int, ...]

    @property
    def sample_bytes(self) -> int:
        return 4 * math.prod(self.shape)

    def sample_forms(self) -> str:
        """The shapes one sample may have, for messages."""
        s = list(self.shape)
        return f"{s} or {s[1:]}" if s and s[0] == 1 else f"{s}"

    def set_forms(self) -> str:
        """The shapes an array of N samples may have, for messages."""
        forms = _with_n(self.shape)
        if self.shape and self.shape[0] == 1:
            forms += f" or {_with_n(self.shape[1:])}"
        return forms + " for N samples"


def _with_n(shape: Sequence[int]) -> str:
    return "[" + ", ".join(["N", *map(str, shape)]) + "]"


@dataclass(frozen=True)
class _Where:
    """Who is told what: ``what`` (the option) and ``source`` (the path or ``<array>``) start every message."""

    what: str
    source: str

    def error(self, *parts: str) -> McuqError:
        return McuqError(": ".join((f"{self.what} {self.source}", *parts)))

    def at(self, source: str) -> _Where:
        return _Where(self.what, source)


def max_bytes() -> int:
    """The size limit of a calibration set: ``MCUQ_CALIB_MAX_BYTES`` or 2 GiB."""
    raw = os.environ.get(MAX_BYTES_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_BYTES
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value <= 0:
        raise McuqError(f"{MAX_BYTES_ENV}={raw!r}: give a positive number of bytes")
    return value


def _check_size(where: _Where, nbytes: int, what: str) -> None:
    limit = max_bytes()
    if nbytes > limit:
        raise where.error(
            f"{what} {nbytes:,} bytes, more than the limit of {limit:,} bytes (set {MAX_BYTES_ENV} to raise it)"
        )


def load_calibration(data: object, graph: Graph, *, what: str = "--calib") -> CalibrationSet:
    """``data`` (see the module's docstring for the forms) checked against ``graph``'s inputs, as one read-only
    float32 array per input. McuqError, one line naming ``what``, the file and the input, for anything wrong.
    The user's arrays are in the model's own layout (an ONNX model's NCHW); the set holds them in the graph's
    (``mcuq.layout``)."""
    from ..layout import is_permuted, to_ir, user_shape

    if not graph.inputs:
        raise McuqError(f"{what}: the model has no inputs to calibrate")
    if isinstance(data, CalibrationSet):  # made for this graph: already in its layout
        inputs = tuple(_Input(n, tuple(int(d) for d in graph.tensors[n].shape)) for n in graph.inputs)
        return _checked_set(data, inputs, _Where(what, data.source))
    cs = _load_calibration(data, tuple(_Input(n, user_shape(graph, n)) for n in graph.inputs), what)
    if not is_permuted(graph):
        return cs
    return CalibrationSet(cs.names, tuple(to_ir(graph, n, a) for n, a in zip(cs.names, cs.arrays)), cs.source)


def _load_calibration(data: object, inputs: tuple[_Input, ...], what: str) -> CalibrationSet:
    if isinstance(data, (str, os.PathLike)):
        return _from_path(Path(data), inputs, _Where(what, os.fspath(data)))
    if isinstance(data, np.ndarray):
        return _from_arrays([("arr_0", data)], inputs, _Where(what, "<array>"))
    if isinstance(data, Mapping):
        return _from_arrays(list(data.items()), inputs, _Where(what, "<dict>"))
    if callable(data) and not isinstance(data, Iterable):  # TFLite's representative_dataset: the generator function
        data = data()
    if isinstance(data, Iterable) and not isinstance(data, (str, bytes, bytearray)):
        return _from_iterable(data, inputs, _Where(what, "<iterable>"))
    raise McuqError(
        f"{what}: expected a .npy/.npz file or a folder, an array, a dict of arrays or an iterable of samples; "
        f"got {type(data).__name__}"
    )


def _checked_set(cs: CalibrationSet, inputs: tuple[_Input, ...], where: _Where) -> CalibrationSet:
    """An existing set, after checking that it was made for these inputs."""
    if cs.names != tuple(i.name for i in inputs):
        raise where.error(f"made for inputs {list(cs.names)}; the model's are {[i.name for i in inputs]}")
    for inp, a in zip(inputs, cs.arrays):
        if tuple(a.shape[1:]) != inp.shape:
            raise where.error(f"input '{inp.name}': samples of shape {list(a.shape[1:])}, wanted {list(inp.shape)}")
    return cs


# -- checks shared by every form --------------------------------------------------------------------------------


def _numbers(x: object, inp: _Input, where: _Where) -> np.ndarray:
    """``x`` as a numeric array (not yet float32), or McuqError: bool, complex, strings, objects, dates refused."""
    try:
        a = np.asarray(x)
    except (ValueError, TypeError) as e:
        raise where.error(f"input '{inp.name}'", f"not an array ({e})") from None
    if a.dtype.kind not in "fiu":
        raise where.error(f"input '{inp.name}'", f"dtype {a.dtype}; calibration data must be float or integer numbers")
    if a.dtype.kind in "iu":
        log.warning(
            "calibration data for input '%s' is %s: its integers are used as float32 values unchanged; check that the "
            "float model expects that scale (0..255 pixels, say, rather than 0..1)",
            inp.name,
            a.dtype,
        )
    return a


def _float32(a: np.ndarray, copy: bool = True) -> np.ndarray:
    """``a`` as C-contiguous float32 (a copy unless ``copy`` is False and it already is one). A value beyond
    float32's range becomes inf, which ``_check_finite`` then reports by sample, so numpy's warning is silenced."""
    with np.errstate(over="ignore", invalid="ignore"):
        if copy:
            return np.array(a, dtype=np.float32, order="C", copy=True)
        return np.asarray(a, dtype=np.float32, order="C")


def _as_set(a: np.ndarray, inp: _Input, where: _Where) -> np.ndarray:
    """``a`` (N, *S) or, when S[0] == 1, (N, *S[1:]), as (N, *S)."""
    s = inp.shape
    if a.ndim == len(s) + 1 and tuple(a.shape[1:]) == s:
        return a
    if s and s[0] == 1 and a.ndim == len(s) and tuple(a.shape[1:]) == s[1:]:
        return a.reshape((a.shape[0], *s))
    raise where.error(f"input '{inp.name}'", f"shape {list(a.shape)}; wanted {inp.set_forms()}")


def _as_sample(a: np.ndarray, inp: _Input, where: _Where) -> np.ndarray:
    """One sample ``a`` of shape S or, when S[0] == 1, S[1:], as S."""
    s = inp.shape
    if tuple(a.shape) == s or (s and s[0] == 1 and tuple(a.shape) == s[1:]):
        return a.reshape(s)
    many = a.ndim == len(s) + 1 and tuple(a.shape[1:]) == s
    many = many or bool(s and s[0] == 1 and a.ndim == len(s) and tuple(a.shape[1:]) == s[1:])
    hint = f" ({a.shape[0]} samples in one array? that is a whole set, not one sample)" if many else ""
    raise where.error(f"input '{inp.name}'", f"shape {list(a.shape)}; one sample has shape {inp.sample_forms()}{hint}")


def _check_finite(a: np.ndarray, inp: _Input, where: _Where, indexed: bool = True) -> None:
    """McuqError naming the first sample of ``a`` (N, ...) that holds NaN or inf (by its index when ``indexed``;
    otherwise ``where`` names the sample); chunked, so that the temporary boolean array stays small."""
    n = a.shape[0]
    per = max(1, math.prod(a.shape[1:]))
    step = max(1, _FINITE_CHUNK // per)
    for start in range(0, n, step):
        block = a[start : start + step].reshape(min(step, n - start), -1)
        ok = np.isfinite(block).all(axis=1)
        if not ok.all():
            i = int(np.argmin(ok))
            bad = "NaN" if np.isnan(block[i]).any() else "inf (or a value beyond float32's range)"
            parts = ([f"sample {start + i}"] if indexed else []) + [f"input '{inp.name}'"]
            raise where.error(*parts, f"holds {bad}; calibration values must be finite")


def _finish(arrays: list[np.ndarray], inputs: tuple[_Input, ...], where: _Where) -> CalibrationSet:
    for a in arrays:
        a.flags.writeable = False
    return CalibrationSet(tuple(i.name for i in inputs), tuple(arrays), where.source)


def _empty(where: _Where) -> McuqError:
    return where.error("no samples; calibration needs at least one")


# -- keyed arrays: .npz files and dicts ----------------------------------------------------------------------------


def _match_keys(keys: Sequence[str], inputs: tuple[_Input, ...], where: _Where) -> list[str]:
    """The key of each input, in input order (the module's docstring gives the rule)."""
    names = [i.name for i in inputs]
    known = [k for k in keys if k in names]
    if known and len(known) == len(keys):
        missing = [n for n in names if n not in keys]
        if missing:
            raise where.error(f"no array for input '{missing[0]}' (arrays given: {list(keys)}; inputs: {names})")
        return names
    if known:
        unknown = [k for k in keys if k not in names]
        raise where.error(
            f"unknown input name(s) {unknown}; the model's inputs are {names} (key every array by input name, or "
            "none of them, in input order)"
        )
    if len(keys) != len(inputs):
        raise where.error(f"{len(keys)} array(s) {list(keys)}, the model has {len(inputs)} input(s) {names}")
    numbered = [_POSITIONAL.fullmatch(k) for k in keys]
    if all(numbered) and sorted(int(m.group(1)) for m in numbered) == list(range(len(keys))):
        return sorted(keys, key=lambda k: int(k[len("arr_") :]))
    return list(keys)


def _from_arrays(
    items: list[tuple[str, object]], inputs: tuple[_Input, ...], where: _Where, owned: bool = False
) -> CalibrationSet:
    """Arrays with a leading sample axis (a .npy, a .npz, a dict): checked, then made read-only float32, copied
    unless ``owned`` (arrays just read from a file, which nobody else holds)."""
    for key, _ in items:
        if not isinstance(key, str):
            raise where.error(f"key {key!r} is not a string; key the arrays by input name")
    given = dict(items)
    sets = []
    for inp, key in zip(inputs, _match_keys([k for k, _ in items], inputs, where)):
        sets.append(_as_set(_numbers(given[key], inp, where), inp, where))
    counts = [a.shape[0] for a in sets]
    if len(set(counts)) > 1:
        detail = ", ".join(f"'{i.name}' {n}" for i, n in zip(inputs, counts))
        raise where.error(f"the inputs have different numbers of samples ({detail})")
    if counts[0] == 0:
        raise _empty(where)
    _check_size(where, sum(a.size for a in sets) * 4, "the calibration set takes")
    out = [_float32(a, copy=not owned) for a in sets]
    for inp, a in zip(inputs, out):
        _check_finite(a, inp, where)
    return _finish(out, inputs, where)


# -- files and folders ----------------------------------------------------------------------------------------


def _is_npz(path: Path) -> bool:
    """Whether ``path`` is a zip (a .npz) rather than a .npy, by its first bytes (not its name)."""
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"PK\x03\x04"
    except OSError:
        return False  # load_npy gives the precise message


def _from_path(path: Path, inputs: tuple[_Input, ...], where: _Where) -> CalibrationSet:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise where.error("no such file or folder") from None
    except OSError as e:
        raise where.error(f"cannot read ({e.strerror or e})") from None
    except ValueError as e:  # a NUL byte in the path
        raise where.error(f"cannot read ({e})") from None
    if stat.S_ISDIR(st.st_mode):
        return _from_folder(path, inputs, where)
    if not stat.S_ISREG(st.st_mode):
        raise where.error("is not a regular file (a .npy or .npz file, or a folder of them)")
    _check_size(where, st.st_size, "the file takes")
    if _is_npz(path):
        arrays = load_npz(path, max_bytes=max_bytes())
        return _from_arrays(list(arrays.items()), inputs, where, owned=True)
    if len(inputs) != 1:
        names = [i.name for i in inputs]
        raise where.error(f"a .npy holds one array; the model has {len(inputs)} inputs {names}: give a .npz")
    return _from_arrays([("arr_0", load_npy(path))], inputs, where, owned=True)


def _sample_files(folder: Path, where: _Where) -> list[tuple[str, int]]:
    """(name, size) of the folder's sample files, sorted by name; a symbolic link among them is an error."""
    found = []
    try:
        with os.scandir(folder) as entries:
            for e in entries:
                if e.name.startswith(".") or not e.name.lower().endswith(SAMPLE_SUFFIXES):
                    continue
                if e.is_symlink():
                    raise where.at(os.path.join(where.source, e.name)).error(
                        f"is a symbolic link (to {os.readlink(e.path)}); calibration files are read only from "
                        "inside the folder, and links are not followed"
                    )
                if e.is_dir(follow_symlinks=False):
                    continue  # subfolders are not entered
                if not e.is_file(follow_symlinks=False):
                    raise where.at(os.path.join(where.source, e.name)).error("is not a regular file")
                found.append((e.name, e.stat(follow_symlinks=False).st_size))
    except OSError as e:
        raise where.error(f"cannot read the folder ({e.strerror or e})") from None
    return sorted(found)


def _from_folder(folder: Path, inputs: tuple[_Input, ...], where: _Where) -> CalibrationSet:
    """One sample per file, read one at a time into arrays allocated once (the file count is known)."""
    files = _sample_files(folder, where)
    if not files:
        raise where.error("no .npy or .npz files in the folder (each file is one sample; other files are ignored)")
    _check_size(where, sum(size for _, size in files), "the sample files take")
    _check_size(where, len(files) * sum(i.sample_bytes for i in inputs), "the calibration set would take")
    out = [np.empty((len(files), *i.shape), np.float32) for i in inputs]
    for k, (name, _) in enumerate(progress(files, total=len(files), desc="reading calibration", unit="file")):
        here = where.at(os.path.join(where.source, name))
        for inp, dst, value in zip(inputs, out, _file_sample(folder / name, inputs, here)):
            with np.errstate(over="ignore", invalid="ignore"):
                dst[k] = _as_sample(_numbers(value, inp, here), inp, here)
            _check_finite(dst[k : k + 1], inp, here, indexed=False)
    return _finish(out, inputs, where)


def _file_sample(path: Path, inputs: tuple[_Input, ...], where: _Where) -> list[np.ndarray]:
    """A folder file's arrays, one per input in input order."""
    if path.name.lower().endswith(".npz"):
        arrays = load_npz(path, max_bytes=max_bytes(), nofollow=True)
        return [arrays[k] for k in _match_keys(list(arrays), inputs, where)]
    if len(inputs) != 1:
        raise where.error(f"a .npy holds one array; the model has {len(inputs)} inputs: give one .npz per sample")
    return [load_npy(path, nofollow=True)]


# -- iterables of samples ----------------------------------------------------------------------------------------


def _item_arrays(item: object, inputs: tuple[_Input, ...], here: _Where) -> list[object]:
    """One iterable item as one value per input, in input order."""
    if isinstance(item, Mapping):
        keys = list(item)
        if not all(isinstance(k, str) for k in keys):
            raise here.error("a dict sample must be keyed by input name")
        return [item[k] for k in _match_keys(keys, inputs, here)]
    if isinstance(item, (list, tuple)):
        if len(item) != len(inputs):
            raise here.error(
                f"{len(item)} array(s), the model has {len(inputs)} input(s) (give one per input, in order)"
            )
        return list(item)
    if len(inputs) != 1:
        raise here.error(
            f"one array, the model has {len(inputs)} inputs: give a list in input order or a dict by input name"
        )
    return [item]


def _from_iterable(data: Iterable, inputs: tuple[_Input, ...], where: _Where) -> CalibrationSet:
    """Samples one at a time, each checked and copied as it comes, the running size held to the limit (an endless
    generator stops at the limit with a message, not when memory runs out)."""
    per_sample = sum(i.sample_bytes for i in inputs)
    columns: list[list[np.ndarray]] = [[] for _ in inputs]
    total = len(data) if isinstance(data, Sequence) else None
    for k, item in enumerate(progress(data, total=total, desc="reading calibration")):
        _check_size(where, (k + 1) * per_sample, f"at sample {k}, the calibration set takes")
        here = where.at(f"{where.source}: sample {k}")
        for inp, col, value in zip(inputs, columns, _item_arrays(item, inputs, here)):
            x = _float32(_as_sample(_numbers(value, inp, here), inp, here))
            _check_finite(x[None], inp, here, indexed=False)
            col.append(x)
    if not columns[0]:
        raise _empty(where)
    return _finish([np.stack(col) for col in columns], inputs, where)
