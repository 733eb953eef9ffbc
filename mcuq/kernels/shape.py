"""Shape family (runtime_c/include/mcuq_shape.h): COPY, PAD, CONCAT, TRANSPOSE, int8.

None of these kernels takes an ``mcuq_context``: they need no scratch. Array fields hold exactly the number of
entries the C reads: ``PAD_DIMS`` (PAD), ``TRANSPOSE_DIMS`` (TRANSPOSE), ``num_inputs`` (CONCAT).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cstruct import INT8_MAX, INT8_MIN, CStruct, array, i32
from .registry import Kernel, c_define, register

# The ranks the C loops run over (shapes of lower rank get leading 1s): TFLite 2.14's PadKernelMaxDimensionCount()
# and kTransposeMaxDimensions, the largest ranks its PAD and TRANSPOSE accept.
PAD_DIMS = c_define("MCUQ_PAD_DIMS", 5)
TRANSPOSE_DIMS = c_define("MCUQ_TRANSPOSE_DIMS", 6)


@dataclass(frozen=True)
class CopyParams(CStruct, c_name="mcuq_copy_params"):
    size: int = i32(0)


@dataclass(frozen=True, eq=False)
class PadParams(CStruct, c_name="mcuq_pad_params"):
    pad_value: int = i32(INT8_MIN, INT8_MAX)
    in_dims: np.ndarray = array("int32_t", 1)
    pad_before: np.ndarray = array("int32_t", 0)
    pad_after: np.ndarray = array("int32_t", 0)


@dataclass(frozen=True, eq=False)
class ConcatenationParams(CStruct, c_name="mcuq_concatenation_params"):
    num_inputs: int = i32(1)
    outer_size: int = i32(0)
    copy_sizes: np.ndarray = array("int32_t", 0)


@dataclass(frozen=True, eq=False)
class TransposeParams(CStruct, c_name="mcuq_transpose_params"):
    out_dims: np.ndarray = array("int32_t", 1)
    in_strides: np.ndarray = array("int32_t", 0)


# in_place: memmove semantics, and the same buffer for input and output is a no-op.
COPY_S8 = register(Kernel("mcuq_copy_s8", CopyParams, ("shape/mcuq_copy_s8.c",), code_bytes=44, in_place=True))
PAD_S8 = register(Kernel("mcuq_pad_s8", PadParams, ("shape/mcuq_pad_s8.c",), code_bytes=472))
CONCATENATION_S8 = register(
    Kernel("mcuq_concatenation_s8", ConcatenationParams, ("shape/mcuq_concatenation_s8.c",), code_bytes=156)
)
TRANSPOSE_S8 = register(Kernel("mcuq_transpose_s8", TransposeParams, ("shape/mcuq_transpose_s8.c",), code_bytes=296))
