"""Element types of the IR (re-exported by ``mcuq.ir``): whole-byte integers, float32, float16 (constant weights of
float models, which ``passes/fold.py`` turns into float32) and packed sub-byte integers."""

from __future__ import annotations

import enum

import numpy as np


class DType(enum.Enum):
    """Element types. INT4, INT2 and INT1 are signed and *packed* (``bits`` < 8), little end first in a byte as
    TFLite packs int4; their ``Tensor.data`` holds unpacked int8 values (``np``), converted to and from the packed
    ``uint8_t`` bytes by ``mcuq.quant.packing``. INT4 and INT2 are two's complement; INT1 is *binary*, {-1, +1}
    (a set bit is +1, a clear bit -1: there is no 0). As conv/depthwise/FC weights they hold the narrow ranges
    [-7, 7] (INT4), ternary {-1, 0, 1} (INT2) and binary {-1, +1} (INT1)."""

    INT8 = "int8"
    UINT8 = "uint8"
    INT16 = "int16"
    INT32 = "int32"
    INT64 = "int64"
    FLOAT32 = "float32"
    FLOAT16 = "float16"
    BOOL = "bool"
    INT4 = "int4"
    INT2 = "int2"
    INT1 = "int1"

    @property
    def bits(self) -> int:
        """Bits per element as stored (8 for INT8, 4 for INT4, 32 for FLOAT32)."""
        return {"int4": 4, "int2": 2, "int1": 1}.get(self.value) or 8 * np.dtype(self.value).itemsize

    @property
    def packed(self) -> bool:  # several elements share a byte
        return self.bits < 8

    @property
    def itemsize(self) -> int:
        """Bytes per element of the unpacked numpy storage ``np`` (1 for packed types: see ``nbytes``)."""
        return self.np.itemsize

    def nbytes(self, count: int) -> int:
        """Bytes that ``count`` elements occupy as stored: ``ceil(count * bits / 8)``."""
        return (count * self.bits + 7) // 8

    @property
    def np(self) -> np.dtype:
        """The numpy dtype holding one element (int8 for the packed types)."""
        return np.dtype(np.int8) if self.packed else np.dtype(self.value)

    @property
    def int_range(self) -> tuple[int, int]:
        """(min, max) of an integer dtype, e.g. (-8, 7) for INT4; (-1, 1) for the binary INT1, whose values are
        only the two ends."""
        if self is DType.INT1:
            return (-1, 1)
        info = np.iinfo(self.np)
        return (-(1 << (self.bits - 1)), (1 << (self.bits - 1)) - 1) if self.packed else (int(info.min), int(info.max))

    @property
    def ctype(self) -> str:
        """The C element type of an array or arena view of this dtype (``uint8_t`` bytes for packed types, the raw
        ``uint16_t`` bits for float16)."""
        special = {"float32": "float", "float16": "uint16_t", "bool": "uint8_t"}  # C99 has no half: its bits
        return "uint8_t" if self.packed else special.get(self.value, f"{self.value}_t")
