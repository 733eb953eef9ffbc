"""Format constant arrays as C initializers at a fixed width: one block per leading index (output channel)."""

from __future__ import annotations

import numpy as np

CTYPES = {
    np.dtype(np.int8): "int8_t",
    np.dtype(np.uint8): "uint8_t",
    np.dtype(np.int16): "int16_t",
    np.dtype(np.int32): "int32_t",
    np.dtype(np.int64): "int64_t",
    np.dtype(np.uint32): "uint32_t",
}

PER_LINE = 16


def ctype_of(arr: np.ndarray) -> str:
    try:
        return CTYPES[arr.dtype]
    except KeyError:
        raise ValueError(f"no C type for constant of dtype {arr.dtype}") from None


def _literal(v: int, ctype: str) -> str:
    if ctype == "int32_t" and v == -(2**31):
        return "INT32_MIN"
    if ctype == "int64_t":
        return "INT64_MIN" if v == -(2**63) else f"INT64_C({v})"
    return str(v)


def format_values(arr: np.ndarray, indent: str = "    ") -> str:
    """The body of an initializer (without braces): rows of PER_LINE values, a blank-free block per arr[i]."""
    ctype = ctype_of(arr)
    flat = np.asarray(arr).reshape(-1)
    if flat.size == 0:
        return indent + "0"
    width = max(len(_literal(int(v), ctype)) for v in (flat.min(), flat.max()))
    row = flat.size // arr.shape[0] if arr.ndim > 1 and arr.shape[0] > 0 else flat.size
    if row < PER_LINE // 2:  # short rows (e.g. [16, 1]): pack them, one per line would be unreadable
        row = flat.size
    lines = []
    for start in range(0, flat.size, row):
        chunk = flat[start : start + row]
        for i in range(0, chunk.size, PER_LINE):
            vals = ", ".join(_literal(int(v), ctype).rjust(width) for v in chunk[i : i + PER_LINE])
            lines.append(indent + vals + ",")
    return "\n".join(lines)
