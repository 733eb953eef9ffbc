"""16x8 mode (int16 activations) of the elementwise family and SOFTMAX (runtime_c/include/mcuq_elementwise.h,
mcuq_softmax.h): ADD, SUB, MUL, QUANTIZE between int8 and int16, LOGISTIC, TANH, SOFTMAX.

ADD, SUB, MUL and QUANTIZE take the int8 kernels' parameter structs; the dataclasses here mirror the same C structs
with the value ranges the int16 kernels accept. int16 tensors are symmetric (zero point 0), as TFLite's 16x8 spec
requires. LOGISTIC, TANH and SOFTMAX have their own structs (TFLite's int16 algorithms differ from the int8 ones).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cstruct import INT32_MAX, CStruct, array, i32, shift_i32
from .elementwise import Broadcast
from .pool16 import ActivationRange16
from .registry import Kernel, c_define, register

INT16_MIN, INT16_MAX = -32768, 32767
# add.cc and sub.cc: inputs are shifted left by 15 bits for int16 (65535 << 15 < 2^31).
ADD_S16_LEFT_SHIFT = c_define("MCUQ_ADD_S16_LEFT_SHIFT", 15)
# SOFTMAX int16: the int32 sum of a row's exps (each at most 32767) cannot overflow.
SOFTMAX_S16_MAX_DEPTH = c_define("MCUQ_SOFTMAX_S16_MAX_DEPTH", 65536)
LUT16_SIZE = c_define("MCUQ_LUT16_SIZE", 513)


def zero_point16() -> object:
    """An int16 zero point (0 in TFLite's 16x8 models; the kernels compute ``x - zp`` in int32)."""
    return i32(INT16_MIN, INT16_MAX)


@dataclass(frozen=True, eq=False)
class AddS16Params(CStruct, c_name="mcuq_add_params"):
    """``mcuq_add_params`` for mcuq_add_s16 / mcuq_sub_s16: add.cc's general int16 path (left shift 15)."""

    input1_zp: int = zero_point16()
    input2_zp: int = zero_point16()
    output_zp: int = zero_point16()
    left_shift: int = i32(0, ADD_S16_LEFT_SHIFT)
    input1_multiplier: int = i32(0, INT32_MAX)
    input1_shift: int = shift_i32(-31, 0)
    input2_multiplier: int = i32(0, INT32_MAX)
    input2_shift: int = shift_i32(-31, 0)
    output_multiplier: int = i32(0, INT32_MAX)
    output_shift: int = shift_i32(-31, 0)
    activation: ActivationRange16
    broadcast: Broadcast


@dataclass(frozen=True, eq=False)
class MulS16Params(CStruct, c_name="mcuq_mul_params"):
    """``mcuq_mul_params`` for mcuq_mul_s16: zero points 0 (mul.cc requires it), so |x1 * x2| <= 2^30, and no left
    shift (checked at compile time), so the product never overflows int32."""

    input1_zp: int = i32(0, 0)
    input2_zp: int = i32(0, 0)
    output_zp: int = i32(0, 0)
    output_multiplier: int = i32(0, INT32_MAX)
    output_shift: int = shift_i32(-31, 0)
    activation: ActivationRange16
    broadcast: Broadcast


@dataclass(frozen=True)
class RequantizeS16Params(CStruct, c_name="mcuq_requantize_params"):
    """``mcuq_requantize_params`` for QUANTIZE int8 -> int16, int16 -> int8 and int16 -> int16 (reference_ops::
    Requantize): zero points of the input's and the output's type, bounds the output type's range."""

    size: int = i32(0)
    input_zp: int = zero_point16()
    output_zp: int = zero_point16()
    multiplier: int = i32(0, INT32_MAX)
    shift: int = shift_i32(-31, 30)
    activation: ActivationRange16


@dataclass(frozen=True)
class TanhLogisticS16Params(CStruct, c_name="mcuq_tanh_logistic_s16_params"):
    """reference_integer_ops::Logistic / Tanh for int16: x' = (x * input_multiplier + round) >> input_left_shift
    rescales the input to the table's 1/4096 (LOGISTIC, 3/4 of it folded into the multiplier) or 1/8192 (TANH)
    step. A power-of-two input scale (TFLite's multiplier 0) is given as multiplier 3 << shift, shift 0."""

    size: int = i32(0)
    input_multiplier: int = i32(1, 65535)
    input_left_shift: int = i32(0, 31)


@dataclass(frozen=True, eq=False)
class SoftmaxS16Params(CStruct, c_name="mcuq_softmax_s16_params"):
    """reference_ops::SoftmaxInt16 for a [outer_size, depth] tensor: input differences rescaled by
    input_multiplier * 2^(input_shift - 31) onto the exp table's [-10, 0]."""

    outer_size: int = i32(1)
    depth: int = i32(1, SOFTMAX_S16_MAX_DEPTH)
    input_multiplier: int = i32(0, INT32_MAX)
    input_shift: int = shift_i32(-31, 15)
    exp_lut: np.ndarray = array("int16_t")  # [MCUQ_LUT16_SIZE]
    one_over_one_plus_x_lut: np.ndarray = array("int16_t")  # [MCUQ_LUT16_SIZE]


def _k(name: str, params: type[CStruct], source: str, code_bytes: int, in_place: bool = True) -> Kernel:
    return register(Kernel(name, params, (source,), code_bytes=code_bytes, dtype="s16", in_place=in_place))


ADD_S16 = _k("mcuq_add_s16", AddS16Params, "elementwise/mcuq_add_s16.c", 996)
SUB_S16 = _k("mcuq_sub_s16", AddS16Params, "elementwise/mcuq_sub_s16.c", 996)
MUL_S16 = _k("mcuq_mul_s16", MulS16Params, "elementwise/mcuq_mul_s16.c", 660)
# QUANTIZE between int8 and int16 changes the element size: not in place (the output would overrun the input).
REQUANTIZE_S16 = _k("mcuq_requantize_s16", RequantizeS16Params, "elementwise/mcuq_requantize_s16.c", 356)
REQUANTIZE_S8_S16 = _k(
    "mcuq_requantize_s8_s16", RequantizeS16Params, "elementwise/mcuq_requantize_s8_s16.c", 344, in_place=False
)
REQUANTIZE_S16_S8 = _k(
    "mcuq_requantize_s16_s8", RequantizeS16Params, "elementwise/mcuq_requantize_s16_s8.c", 356, in_place=False
)
LOGISTIC_S16 = _k("mcuq_logistic_s16", TanhLogisticS16Params, "elementwise/mcuq_tanh_logistic_s16.c", 1144)
TANH_S16 = _k("mcuq_tanh_s16", TanhLogisticS16Params, "elementwise/mcuq_tanh_logistic_s16.c", 1144)
# Not in place: a row is read whole (its maximum) before it is written, and its exps are kept in the output.
SOFTMAX_S16 = _k("mcuq_softmax_s16", SoftmaxS16Params, "softmax/mcuq_softmax_s16.c", 788, in_place=False)
