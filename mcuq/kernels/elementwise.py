"""Elementwise family (runtime_c/include/mcuq_elementwise.h): ADD, SUB, MUL, QUANTIZE, lookup-table activations,
HARD_SWISH, int8. Every kernel here reads an input element before writing the output at its index, so each may
run in place; none needs scratch."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cstruct import INT32_MAX, SHIFT_MAX, SHIFT_MIN, CStruct, array, i32, shift_i32, zero_point
from .registry import Kernel, c_define, register
from .types import ActivationRange

# Rank of the ADD, SUB and MUL kernels' loops; broadcast shapes are simplified to at most this many dimensions.
MCUQ_BROADCAST_DIMS = c_define("MCUQ_BROADCAST_DIMS", 6)
ADD_MAX_LEFT_SHIFT = c_define("MCUQ_ADD_MAX_LEFT_SHIFT", 20)
INT16_MAX = 2**15 - 1


@dataclass(frozen=True, eq=False)
class Broadcast(CStruct, c_name="mcuq_broadcast"):
    """A binary op's output walk: MCUQ_BROADCAST_DIMS dims and per-input element strides (0: broadcast)."""

    out_dims: np.ndarray = array("int32_t", 0)
    input1_strides: np.ndarray = array("int32_t", 0)
    input2_strides: np.ndarray = array("int32_t", 0)


@dataclass(frozen=True, eq=False)
class AddParams(CStruct, c_name="mcuq_add_params"):
    """TFLite's ArithmeticParams for 8-bit ADD and SUB: both inputs rescaled to a common scale, summed (ADD) or
    subtracted (SUB), rescaled. Shared by mcuq_add_s8 and mcuq_sub_s8."""

    input1_zp: int = zero_point()
    input2_zp: int = zero_point()
    output_zp: int = zero_point()
    left_shift: int = i32(0, ADD_MAX_LEFT_SHIFT)
    input1_multiplier: int = i32(0, INT32_MAX)
    input1_shift: int = shift_i32(-31, 0)
    input2_multiplier: int = i32(0, INT32_MAX)
    input2_shift: int = shift_i32(-31, 0)
    output_multiplier: int = i32(0, INT32_MAX)
    output_shift: int = shift_i32(-31, 0)
    activation: ActivationRange
    broadcast: Broadcast


@dataclass(frozen=True, eq=False)
class MulParams(CStruct, c_name="mcuq_mul_params"):
    input1_zp: int = zero_point()
    input2_zp: int = zero_point()
    output_zp: int = zero_point()
    output_multiplier: int = i32(0, INT32_MAX)
    output_shift: int = shift_i32(-31, 30)
    activation: ActivationRange
    broadcast: Broadcast


@dataclass(frozen=True)
class RequantizeParams(CStruct, c_name="mcuq_requantize_params"):
    size: int = i32(0)
    input_zp: int = zero_point()
    output_zp: int = zero_point()
    multiplier: int = i32(0, INT32_MAX)
    shift: int = shift_i32(-31, 30)
    activation: ActivationRange


@dataclass(frozen=True, eq=False)
class LutParams(CStruct, c_name="mcuq_lut_params"):
    size: int = i32(0)
    table: np.ndarray = array("int8_t")  # [256], indexed by the input's bit pattern


@dataclass(frozen=True)
class HardSwishParams(CStruct, c_name="mcuq_hard_swish_params"):
    size: int = i32(0)
    input_zp: int = zero_point()
    output_zp: int = zero_point()
    output_multiplier_fixedpoint_int16: int = i32(0, INT16_MAX)
    output_multiplier_exponent: int = i32(-31, 0)
    reluish_multiplier_fixedpoint_int16: int = i32(0, INT16_MAX)
    reluish_multiplier_exponent: int = i32(SHIFT_MIN, SHIFT_MAX)


def _elementwise(name: str, params: type[CStruct], code_bytes: int) -> Kernel:
    return register(Kernel(name, params, (f"elementwise/{name}.c",), code_bytes=code_bytes, in_place=True))


ADD_S8 = _elementwise("mcuq_add_s8", AddParams, 828)
SUB_S8 = _elementwise("mcuq_sub_s8", AddParams, 828)
MUL_S8 = _elementwise("mcuq_mul_s8", MulParams, 620)
REQUANTIZE_S8 = _elementwise("mcuq_requantize_s8", RequantizeParams, 348)
LUT_S8 = _elementwise("mcuq_lut_s8", LutParams, 64)
HARD_SWISH_S8 = _elementwise("mcuq_hard_swish_s8", HardSwishParams, 748)
