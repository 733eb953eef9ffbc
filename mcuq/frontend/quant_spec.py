"""TFLite's quantization spec, checked when a model is imported (https://ai.google.dev/edge/litert/models/quantization_spec).

Every quantized integer tensor must have
  * finite, positive scales;
  * zero points inside the tensor type's range: int8 [-128, 127], uint8 [0, 255], int4 [-8, 7]; int16 tensors
    are quantized symmetrically (zero point 0, TFLite's 16x8 scheme) and so are int32 tensors (biases: TFLite
    gives them zero point 0); any tensor's zero point must fit TFLite's int32 field;
  * per-channel parameters along a dimension of the tensor (``0 <= quantized_dimension < rank``) with one scale
    and one zero point per element of that dimension.

Lowering then range-checks every value that reaches a C struct field (``mcuq.kernels.cstruct``), and
``ir.verify`` the tensor sizes; this check only refuses what no TFLite kernel accepts, so the message can name the
tensor rather than the op that first used it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..ir import DType

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
ZERO_POINT_RANGE: dict[DType, tuple[int, int]] = {
    DType.INT8: (-128, 127),
    DType.UINT8: (0, 255),
    DType.INT4: (-8, 7),
    DType.INT16: (0, 0),
    DType.INT32: (0, 0),
    DType.INT64: (0, 0),
}
_WHY_ZERO = {
    DType.INT16: "TFLite quantizes int16 tensors symmetrically",
    DType.INT32: "TFLite's int32 biases are quantized symmetrically",
    DType.INT64: "TFLite quantizes int64 tensors symmetrically",
}


def _at(values: Sequence[object], i: int) -> str:
    return f"[{i}]" if len(values) > 1 else ""


def qparams_problem(
    dtype: DType, shape: tuple[int, ...], scales: Sequence[float], zero_points: Sequence[int], axis: int
) -> str | None:
    """Why these quantization parameters break TFLite's spec for a ``dtype`` tensor of ``shape`` (None: they
    do not). ``axis`` is the quantized dimension; ``len(scales) == len(zero_points) >= 1``."""
    for i, z in enumerate(zero_points):
        if not INT32_MIN <= z <= INT32_MAX:
            return f"zero point{_at(zero_points, i)} {z} does not fit TFLite's int32 field"
    if dtype not in ZERO_POINT_RANGE:  # float32 and bool: quantization parameters are unused
        return None
    for i, s in enumerate(scales):
        if not (math.isfinite(s) and s > 0.0):
            return f"scale{_at(scales, i)} {s} is not a finite positive number"
    lo, hi = ZERO_POINT_RANGE[dtype]
    for i, z in enumerate(zero_points):
        if not lo <= z <= hi:
            if lo == hi:
                return f"zero point{_at(zero_points, i)} {z} of an {dtype.value} tensor must be 0 ({_WHY_ZERO[dtype]})"
            return f"zero point{_at(zero_points, i)} {z} is outside {dtype.value}'s range [{lo}, {hi}]"
    rank = len(shape)
    if not 0 <= axis < max(rank, 1):
        return f"quantized_dimension {axis} is out of range for a tensor of rank {rank}"
    if len(scales) > 1 and (rank == 0 or shape[axis] != len(scales)):
        return f"{len(scales)} per-channel scales do not match dimension {axis} of shape {list(shape)}"
    return None
