"""Softmax (runtime_c/include/mcuq_softmax.h), int8."""

from __future__ import annotations

from dataclasses import dataclass

from .cstruct import INT32_MAX, CStruct, i32, shift_i32
from .registry import Kernel, c_define, register

# Each row element adds at most exp(0) = 2^19 (Q12.19) to the kernel's int32 sum of exps.
SOFTMAX_MAX_DEPTH = c_define("MCUQ_SOFTMAX_MAX_DEPTH", INT32_MAX >> 19)


@dataclass(frozen=True)
class SoftmaxParams(CStruct, c_name="mcuq_softmax_params"):
    """TFLite's PreprocessSoftmaxScaling and CalculateInputRadius for a [outer_size, depth] tensor."""

    outer_size: int = i32(1)
    depth: int = i32(1, SOFTMAX_MAX_DEPTH)
    input_multiplier: int = i32(1 << 30, INT32_MAX)
    input_left_shift: int = shift_i32(0, 31)
    diff_min: int = i32(hi=0)


# No context: the kernel needs no scratch (mcuq_softmax.h). Not in place: each row is read whole before it is
# written, but the registry's in-place contract is kept to kernels that touch no index but the one they write.
SOFTMAX_S8 = register(Kernel("mcuq_softmax_s8", SoftmaxParams, ("softmax/mcuq_softmax_s8.c",), code_bytes=2020))
