"""Sub-byte integers packed into bytes: the storage of ``DType.INT4``, ``INT2`` and ``INT1``.

Order (TFLite's, from ``tensor_utils::UnpackDenseInt4IntoInt8`` / ``UnpackDenseInt2IntoInt8``): little end first.
The whole tensor is one bit stream in C order, with no padding at channel boundaries. With ``per = 8 // bits``
elements per byte, element ``k`` is the field at bit ``(k % per) * bits`` of byte ``k // per``; so for int4 element
``2i`` is the low nibble of byte ``i`` and ``2i + 1`` the high one. The unused high bits of the last byte are zero.
``count`` elements take ``ceil(count * bits / 8)`` bytes (``DType.nbytes``).

Fields: 4 and 2 bits are two's complement ([-8, 7], [-2, 1]; mcuq's weights use the narrow ranges [-7, 7] and
ternary {-1, 0, 1}); a 1-bit field is *binary*: 1 is +1 and 0 is -1 (there is no 0). This is what the C runtime
reads (``runtime_c/src/internal/mcuq_packed.h``, ``mcuq_packed_weight``).
"""

from __future__ import annotations

import numpy as np

BITS = (1, 2, 4)


def _check_bits(bits: int) -> int:
    if bits not in BITS:
        raise ValueError(f"packed widths are {BITS} bits, not {bits}")
    return 8 // bits


def pack(values: np.ndarray, bits: int) -> np.ndarray:
    """Pack signed integers (any shape, flattened in C order) into a 1-D uint8 array of ``ceil(n * bits / 8)``
    bytes. Raises ValueError for a value outside ``[-2**(bits-1), 2**(bits-1) - 1]`` (4 and 2 bits) or not in
    {-1, +1} (1 bit)."""
    per = _check_bits(bits)
    v = np.asarray(values)
    if v.size and not np.issubdtype(v.dtype, np.integer):
        raise ValueError(f"pack wants integers, got {v.dtype}")
    flat = v.reshape(-1).astype(np.int64)
    if bits == 1:
        bad = (flat != -1) & (flat != 1)
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"value {int(flat[i])} at index {i} is outside the binary (int1) values {{-1, +1}}")
    else:
        lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        bad = (flat < lo) | (flat > hi)
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"value {int(flat[i])} at index {i} is outside the int{bits} range [{lo}, {hi}]")
    n = flat.size
    fields = np.zeros(-(-n // per) * per, dtype=np.uint8)
    fields[:n] = (flat > 0) if bits == 1 else (flat & ((1 << bits) - 1)).astype(np.uint8)
    shifts = (np.arange(per, dtype=np.uint8) * bits).astype(np.uint8)
    return np.bitwise_or.reduce(fields.reshape(-1, per) << shifts, axis=1).astype(np.uint8)


def unpack(packed: np.ndarray, bits: int, count: int) -> np.ndarray:
    """The first ``count`` signed values of ``packed`` (bytes, any integer dtype of itemsize 1) as a 1-D int8
    array. Raises ValueError if ``packed`` does not hold exactly ``ceil(count * bits / 8)`` bytes."""
    per = _check_bits(bits)
    raw = np.asarray(packed).reshape(-1)
    if raw.size and raw.dtype.itemsize != 1:
        raise ValueError(f"unpack wants bytes, got {raw.dtype}")
    need = -(-count * bits // 8)
    if count < 0 or raw.size != need:
        raise ValueError(f"{count} int{bits} values take {need} bytes, got {raw.size}")
    shifts = (np.arange(per, dtype=np.uint8) * bits).astype(np.uint8)
    fields = (raw.astype(np.uint8)[:, None] >> shifts) & np.uint8((1 << bits) - 1)
    vals = fields.reshape(-1)[:count].astype(np.int8)
    if bits == 1:
        return (2 * vals - 1).astype(np.int8)
    return np.where(vals >= (1 << (bits - 1)), vals - (1 << bits), vals).astype(np.int8)
