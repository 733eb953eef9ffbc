"""The record layout that both runners (the host process and the firmware in QEMU) read and write.

A batch of ``n`` records: record ``i`` is input 0's element ``i`` then input 1's, ..., each the tensor's raw
bytes (C order, native little-endian); the runner writes each record's outputs the same way.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from .errors import McuqError
from .ir import Tensor


def normalise_inputs(tensors: Sequence[Tensor], inputs) -> tuple[list[np.ndarray], int, bool]:
    """Check ``inputs`` against the model's input ``tensors``: (one array per input with a leading batch axis,
    batch size, whether the caller gave a batch). Wrong count, dtype or shape raise McuqError naming the input.

    ``inputs``: one array per input (or one array for a single-input model), each of the input's shape or a
    batch of them with one extra leading axis."""
    if isinstance(inputs, np.ndarray):
        inputs = [inputs]
    if inputs is None or isinstance(inputs, (str, bytes, dict)) or not hasattr(inputs, "__iter__"):
        raise McuqError(
            f"inputs must be a numpy array or a list of arrays, one per model input ({len(tensors)}); "
            f"got {type(inputs).__name__}"
        )
    inputs = list(inputs)
    if len(inputs) != len(tensors):
        raise McuqError(f"the model has {len(tensors)} input(s); {len(inputs)} given")
    arrays, batch, batched = [], None, False
    for want, x in zip(tensors, inputs):
        x = _array(want, x)
        if x.dtype != want.dtype.np:
            raise McuqError(f"input '{want.name}': dtype {x.dtype}, the model wants {want.dtype.value}")
        if tuple(x.shape) == want.shape:
            n, b = 1, False
            x = x.reshape((1, *want.shape))
        elif tuple(x.shape[1:]) == want.shape:
            n, b = x.shape[0], True
        else:
            raise McuqError(
                f"input '{want.name}': shape {list(x.shape)}, the model wants {list(want.shape)} "
                "(or a batch of those with one extra leading axis)"
            )
        if n == 0:
            raise McuqError(f"input '{want.name}': a batch of 0 records (shape {list(x.shape)}); give at least one")
        if batch is not None and (n, b) != (batch, batched):
            raise McuqError("all inputs must have the same batch size")
        batch, batched = n, b
        arrays.append(np.ascontiguousarray(x))
    return arrays, int(batch or 1), batched


def _array(want: Tensor, x: object) -> np.ndarray:
    """``x`` as an array of numbers, or McuqError naming the input (None, strings and ragged lists are refused)."""
    if x is None or isinstance(x, (str, bytes, dict)):
        raise McuqError(f"input '{want.name}': expected an array of {want.dtype.value}, got {type(x).__name__}")
    try:
        a = np.asarray(x)
    except (ValueError, TypeError) as e:
        raise McuqError(f"input '{want.name}': not an array ({e})") from None
    if a.dtype.hasobject:
        raise McuqError(f"input '{want.name}': expected an array of {want.dtype.value}, got an array of Python objects")
    return a


def record_bytes(arrays: Sequence[np.ndarray], n: int) -> Iterator[bytes]:
    """The batch as bytes, record after record (``arrays``: one per input, leading axis ``n``)."""
    for i in range(n):
        for a in arrays:
            yield np.ascontiguousarray(a[i]).tobytes()


def record_size(tensors: Sequence[Tensor]) -> int:
    return sum(t.nbytes for t in tensors)


def split_records(raw: bytes, tensors: Sequence[Tensor], n: int) -> list[np.ndarray]:
    """``n`` records of ``tensors`` (as the runner wrote them) as one array per tensor with leading axis ``n``."""
    buf = np.frombuffer(raw, dtype=np.uint8).reshape(n, record_size(tensors))
    out, pos = [], 0
    for t in tensors:
        out.append(buf[:, pos : pos + t.nbytes].copy().view(t.dtype.np).reshape((n, *t.shape)))
        pos += t.nbytes
    return out
