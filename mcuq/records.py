"""The record layout that both runners (the host process and the firmware in QEMU) read and write.

A batch of ``n`` records: record ``i`` is input 0's element ``i`` then input 1's, ..., each the tensor's raw
bytes (C order, native little-endian); the runner writes each record's outputs the same way.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence

import numpy as np

from .errors import McuqError
from .ir import Tensor


class Batching(enum.IntEnum):
    """How the caller gave its inputs, and so how outputs are shaped (``shape_outputs``); ``single``: one record."""

    ONE = 0  # each input of exactly its shape S: one record, outputs of their own shapes
    BATCH = 1  # (N, *S): outputs (N, *out)
    UNIT_DROPPED = 2  # (N, *S[1:]) for an input with S[0] == 1: outputs drop their own leading 1 too
    ONE_UNIT_DROPPED = 3  # S[1:] for an input with S[0] == 1: one record (a calibration sample), outputs (*out[1:])

    @property
    def single(self) -> bool:
        return self in (Batching.ONE, Batching.ONE_UNIT_DROPPED)


def accepted_forms(shape: Sequence[int]) -> str:
    """The input shapes ``normalise_inputs`` accepts for a model input of ``shape``, for messages."""
    s = list(shape)
    forms = f"{s} (one record) or [N, {', '.join(map(str, s))}] (N records)"
    if s and s[0] == 1:
        forms += f" or [N{''.join(', ' + str(d) for d in s[1:])}] (N records without the leading 1)"
        forms += f" or {s[1:]} (one record without it)"
    return forms


def _batching(want: Tensor, shape: tuple[int, ...]) -> tuple[int, Batching] | None:
    """(records, form) of an array of ``shape`` given for input ``want``, or None when it fits no form. The shape S
    itself is one record even when it also reads as N=1 records of S[1:]."""
    s = tuple(want.shape)
    if shape == s:
        return 1, Batching.ONE
    if shape[1:] == s:
        return shape[0], Batching.BATCH
    if s and s[0] == 1 and len(shape) == len(s) and shape[1:] == s[1:]:
        return shape[0], Batching.UNIT_DROPPED
    if s and s[0] == 1 and shape == s[1:]:
        return 1, Batching.ONE_UNIT_DROPPED
    return None


def normalise_inputs(tensors: Sequence[Tensor], inputs) -> tuple[list[np.ndarray], int, Batching]:
    """Check ``inputs`` against the model's input ``tensors``: (one array per input with a leading batch axis,
    batch size, how the caller gave them, a :class:`Batching` that is falsy for one unbatched record). Wrong
    count, dtype or shape raise McuqError naming the input.

    ``inputs``: one array per input (or one array for a single-input model), each of the input's shape S, a batch
    (N, *S), or, for an input with S[0] == 1, a batch (N, *S[1:]) whose records omit that 1, or one such record
    S[1:] (the calibration files' forms, so that one array or sample file serves both). Batched inputs may mix the two batch forms; the outputs then
    drop their leading 1 (:func:`shape_outputs`)."""
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
    arrays: list[np.ndarray] = []
    counts: set[int] = set()
    forms: set[Batching] = set()
    for want, x in zip(tensors, inputs):
        x = _array(want, x)
        if x.dtype != want.dtype.np:
            raise McuqError(f"input '{want.name}': dtype {x.dtype}, the model wants {want.dtype.value}")
        found = _batching(want, tuple(x.shape))
        if found is None:
            raise McuqError(f"input '{want.name}': shape {list(x.shape)}, the model wants {accepted_forms(want.shape)}")
        n, form = found
        if n == 0:
            raise McuqError(f"input '{want.name}': a batch of 0 records (shape {list(x.shape)}); give at least one")
        counts.add(n)
        forms.add(form)
        arrays.append(np.ascontiguousarray(x).reshape((n, *want.shape)))
    singles = {f.single for f in forms}
    if len(counts) > 1 or len(singles) > 1:
        raise McuqError("all inputs must have the same batch size")
    if singles == {True}:  # one record each: its outputs drop their leading 1 when any input was given without it
        return arrays, 1, Batching.ONE_UNIT_DROPPED if Batching.ONE_UNIT_DROPPED in forms else Batching.ONE
    return arrays, int(counts.pop() if counts else 1), max(forms, default=Batching.ONE)


def shape_outputs(arrays: Sequence[np.ndarray], batching: Batching) -> list[np.ndarray]:
    """The runner's outputs (each with a leading batch axis) shaped as the caller gave the inputs: one record loses
    the batch axis, a batch keeps it, and a batch without the leading 1 drops each output's own leading 1."""
    if batching == Batching.ONE:
        return [a[0] for a in arrays]
    if batching == Batching.ONE_UNIT_DROPPED:
        return [a[0, 0] if a.ndim >= 2 and a.shape[1] == 1 else a[0] for a in arrays]
    if batching == Batching.UNIT_DROPPED:
        return [a.reshape((a.shape[0], *a.shape[2:])) if a.ndim >= 2 and a.shape[1] == 1 else a for a in arrays]
    return list(arrays)


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
