"""Sub-8-bit weights in an int8-container .tflite: the ``mcuq_weight_bits`` model metadata.

tflite-runtime 2.14 runs no INT4 filter (and TFLite has no 2- or 1-bit type), so mcuq writes a weight of 4, 2 or 1
bits as an ordinary INT8 tensor holding values of the narrow range, and records its width in a model metadata
entry named ``mcuq_weight_bits`` whose buffer is UTF-8 JSON::

    {"version": 1, "tensors": {"<tensor index in subgraph 0>": bits, ...}}

with bits 4 ([-7, 7]), 2 (ternary {-1, 0, 1}) or 1 (binary {-1, +1}). The int8 model is then the bit-exact oracle
of the packed C. Reading it back (``apply``) turns each listed tensor into ``DType.INT4``/``INT2``/``INT1`` (its
data stays unpacked int8); every entry is checked, and anything wrong is a one-line ``ModelError`` naming the
tensor or op. A native TFLite INT4 weight needs no entry: it may hold -8 too (TFLite's INT4 range; the kernels
read any 4-bit two's-complement value).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping

import numpy as np

from .. import ir

NAME = "mcuq_weight_bits"
VERSION = 1
MAX_BYTES = 1 << 20  # a metadata buffer above this is refused unread (a model has far fewer weight tensors)
DTYPES = {4: ir.DType.INT4, 2: ir.DType.INT2, 1: ir.DType.INT1}
WEIGHT_OPS = (ir.OpKind.CONV2D, ir.OpKind.DEPTHWISE_CONV2D, ir.OpKind.FULLY_CONNECTED)
RANGE_TEXT = {4: "[-7, 7]", 2: "{-1, 0, 1}", 1: "{-1, +1}"}


def encode(bits_by_index: Mapping[int, int]) -> bytes:
    """The metadata buffer for ``{tensor index: bits}`` (sorted, so that the bytes are reproducible)."""
    tensors = {str(i): int(bits_by_index[i]) for i in sorted(bits_by_index)}
    return json.dumps({"version": VERSION, "tensors": tensors}, sort_keys=True, separators=(",", ":")).encode()


def narrow_problem(values: np.ndarray, bits: int) -> str:
    """ "" when every value is in the narrow range of ``bits`` (4: [-7, 7], 2: {-1, 0, 1}, 1: {-1, +1}), else what
    the first value outside it is."""
    v = np.asarray(values).reshape(-1).astype(np.int64)
    bad = (v == 0) | (np.abs(v) != 1) if bits == 1 else np.abs(v) > (7 if bits == 4 else 1)
    if not bad.any():
        return ""
    i = int(np.argmax(bad))
    return f"value {int(v[i])} at flat index {i} is outside the {bits}-bit range {RANGE_TEXT[bits]}"


def fits(values: np.ndarray) -> int:
    """The narrowest width (1, 2 or 4) whose range holds every value, 8 when none does (used to detect weights that
    can be packed)."""
    for bits in (1, 2, 4):
        if not narrow_problem(values, bits):
            return bits
    return 8


def weight_readers(ops: tuple[ir.Op, ...]) -> dict[str, ir.Op]:
    """Tensor name -> the first CONV2D/DEPTHWISE_CONV2D/FULLY_CONNECTED op that reads it as its weights."""
    out: dict[str, ir.Op] = {}
    for op in ops:
        if op.kind in WEIGHT_OPS and len(op.inputs) > 1 and op.inputs[1]:
            out.setdefault(op.inputs[1], op)
    return out


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    """A JSON object, refused when a key repeats (json.loads would keep the last value silently)."""
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(f"key {key[:40]!r} appears twice in one object")
        out[key] = value
    return out


def parse(raw: bytes, ntensors: int) -> dict[int, int]:
    """``{tensor index: bits}`` from a metadata buffer. Raises ValueError with a one-line reason."""
    if len(raw) > MAX_BYTES:
        raise ValueError(f"{len(raw)} bytes, more than the {MAX_BYTES} allowed")
    try:
        doc = json.loads(bytes(raw).rstrip(b"\0").decode("utf-8"), object_pairs_hook=_unique_keys)
    except _DuplicateKey as e:
        raise ValueError(str(e)) from None
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ValueError(f"not valid UTF-8 JSON ({type(e).__name__})") from None
    if not isinstance(doc, dict):
        raise ValueError(f"expected a JSON object, got {type(doc).__name__}")
    if doc.get("version") != VERSION or isinstance(doc.get("version"), bool):
        raise ValueError(f"unknown version {str(doc.get('version'))[:40]!r} (this mcuq reads version {VERSION})")
    tensors = doc.get("tensors")
    if not isinstance(tensors, dict):
        raise ValueError("'tensors' must be an object {\"<tensor index>\": bits}")
    out: dict[int, int] = {}
    for key, bits in tensors.items():
        shown = str(key)[:40]
        if not (isinstance(key, str) and key.isascii() and key.isdigit() and len(key) <= 10):
            raise ValueError(f"tensor key {shown!r} is not a tensor index")
        index = int(key)
        if index >= ntensors:
            raise ValueError(f"tensor index {index} out of range (the subgraph has {ntensors} tensors)")
        if isinstance(bits, bool) or not isinstance(bits, int) or bits not in DTYPES:
            raise ValueError(f"tensor {index}: bits {str(bits)[:40]!r} is not 4, 2 or 1")
        if index in out:
            raise ValueError(f"tensor {index} is listed twice")
        out[index] = bits
    return out


def apply(
    tensors: dict[str, ir.Tensor],
    ops: tuple[ir.Op, ...],
    bits_by_name: Mapping[str, int],
    fail: Callable[[str], Exception],
) -> dict[str, ir.Tensor]:
    """``tensors`` with each listed weight retyped to its packed dtype, after checking that it is the constant int8
    weight tensor of a CONV2D/DEPTHWISE_CONV2D/FULLY_CONNECTED, read by no other kind of op, with symmetric
    quantization and every value in the narrow range. Native INT4 weights are checked for being constant weights
    of those ops only where they feed a weighted op (a float model's DEQUANTIZE may read int4 too)."""
    readers = weight_readers(ops)
    out = dict(tensors)
    for name, bits in bits_by_name.items():
        t = tensors.get(name)
        where = f"{NAME}: tensor '{name}'"
        if t is None or name not in readers:
            raise fail(f"{where} is not the weights of a CONV_2D, DEPTHWISE_CONV_2D or FULLY_CONNECTED op")
        op = readers[name]
        where = f"{NAME}: {op.where}: weights '{name}'"
        others = [o for o in ops if name in o.inputs and (o.kind not in WEIGHT_OPS or o.inputs.index(name) != 1)]
        if others:
            raise fail(f"{where} are also read by {others[0].where}, which cannot take packed values")
        if t.dtype is not ir.DType.INT8 or t.data is None:
            raise fail(f"{where} must be a constant int8 tensor to hold {bits}-bit values (is {t.dtype.value})")
        if t.qparams is None or any(z != 0 for z in t.qparams.zero_point):
            raise fail(f"{where} must be quantized symmetrically (zero point 0) to hold {bits}-bit values")
        problem = narrow_problem(t.data, bits)
        if problem:
            raise fail(f"{where}: {problem}")
        out[name] = ir.Tensor(t.name, t.shape, DTYPES[bits], t.qparams, t.data)
    return out
