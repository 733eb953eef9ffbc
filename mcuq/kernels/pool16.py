"""16x8 mode (int16 activations) for the pooling and data-movement families: AVG_POOL2D, MAX_POOL2D, MEAN
(runtime_c/include/mcuq_pool.h) and COPY, PAD, CONCAT, TRANSPOSE (runtime_c/include/mcuq_shape.h).

The C kernels take the int8 kernels' parameter structs; the dataclasses here mirror the same C structs with the
value ranges widened to int16 where the int16 kernels allow it (activation bounds, the padding value). Sizes,
dims and strides count elements, as for int8.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cstruct import CStruct, array, i32
from .pool import MeanParams
from .registry import Kernel, c_define, register
from .shape import ConcatenationParams, CopyParams, TransposeParams
from .types import ActivationRange16, Dims, Window

INT16_MIN, INT16_MAX = -32768, 32767
# The largest window whose int32 sum of int16 values cannot overflow (with TFLite's rounding term).
POOL_S16_MAX_TAPS = c_define("MCUQ_POOL_S16_MAX_TAPS", 65535)


@dataclass(frozen=True)
class Pool2DS16Params(CStruct, c_name="mcuq_pool2d_params"):
    """``mcuq_pool2d_params`` for the int16 pools: as ``Pool2DParams`` with int16 activation bounds."""

    input: Dims
    output: Dims
    window: Window
    activation: ActivationRange16


@dataclass(frozen=True, eq=False)
class PadS16Params(CStruct, c_name="mcuq_pad_params"):
    """``mcuq_pad_params`` for ``mcuq_pad_s16``: the padding value is an int16 (TFLite: the output zero point, 0)."""

    pad_value: int = i32(INT16_MIN, INT16_MAX)
    in_dims: np.ndarray = array("int32_t", 1)
    pad_before: np.ndarray = array("int32_t", 0)
    pad_after: np.ndarray = array("int32_t", 0)


AVERAGE_POOL2D_S16 = register(
    Kernel(
        "mcuq_average_pool2d_s16",
        Pool2DS16Params,
        ("pool/mcuq_average_pool2d_s16.c",),
        code_bytes=796,
        dtype="s16",
        context=True,
    )
)
MAX_POOL2D_S16 = register(
    Kernel("mcuq_max_pool2d_s16", Pool2DS16Params, ("pool/mcuq_max_pool2d_s16.c",), code_bytes=700, dtype="s16")
)
MEAN_S16 = register(Kernel("mcuq_mean_s16", MeanParams, ("pool/mcuq_mean_s16.c",), code_bytes=704, dtype="s16"))

# in_place: memmove semantics, and the same buffer for input and output is a no-op (as mcuq_copy_s8).
COPY_S16 = register(
    Kernel("mcuq_copy_s16", CopyParams, ("shape/mcuq_copy_s16.c",), code_bytes=48, dtype="s16", in_place=True)
)
PAD_S16 = register(Kernel("mcuq_pad_s16", PadS16Params, ("shape/mcuq_pad_s16.c",), code_bytes=512, dtype="s16"))
CONCATENATION_S16 = register(
    Kernel(
        "mcuq_concatenation_s16",
        ConcatenationParams,
        ("shape/mcuq_concatenation_s16.c",),
        code_bytes=160,
        dtype="s16",
    )
)
TRANSPOSE_S16 = register(
    Kernel("mcuq_transpose_s16", TransposeParams, ("shape/mcuq_transpose_s16.c",), code_bytes=404, dtype="s16")
)
