"""numpy mirrors of the 16x8 elementwise and softmax kernels (runtime_c/src/elementwise/*_s16*.c,
runtime_c/src/softmax/mcuq_softmax_s16.c), computed from the same params as the C."""

from __future__ import annotations

import numpy as np

from ..kernels.elementwise16 import AddS16Params
from ..lower.lut16 import lut16_lookup, sigmoid_table_u16
from ..quant.fixedpoint import (
    count_leading_zeros,
    multiply_by_quantized_multiplier,
    multiply_by_quantized_multiplier_smaller_than_one_exp,
)
from .base import reference
from .elementwise import _gather


def _clamp(x: np.ndarray, lo: int, hi: int, dtype: type, shape: tuple[int, ...]) -> np.ndarray:
    return np.clip(x, lo, hi).astype(dtype).reshape(shape)


def _scaled_inputs(p: AddS16Params, x1: np.ndarray, x2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = _gather(p.broadcast, x1, x2)
    ls = 1 << p.left_shift
    s1 = multiply_by_quantized_multiplier_smaller_than_one_exp(
        (a - p.input1_zp) * ls, p.input1_multiplier, p.input1_shift
    )
    s2 = multiply_by_quantized_multiplier_smaller_than_one_exp(
        (b - p.input2_zp) * ls, p.input2_multiplier, p.input2_shift
    )
    return s1, s2


def _output16(p: AddS16Params, combined: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    raw = multiply_by_quantized_multiplier_smaller_than_one_exp(combined, p.output_multiplier, p.output_shift)
    return _clamp(raw + p.output_zp, p.activation.min, p.activation.max, np.int16, shape)


@reference("mcuq_add_s16")
def add_s16(layer, inputs, out_shapes) -> list[np.ndarray]:
    """add.cc's general int16 path: AddElementwise / BroadcastAdd with left_shift 15."""
    s1, s2 = _scaled_inputs(layer.params, inputs[0], inputs[1])
    return [_output16(layer.params, s1 + s2, out_shapes[0])]


@reference("mcuq_sub_s16")
def sub_s16(layer, inputs, out_shapes) -> list[np.ndarray]:
    """sub.cc's general int16 path: the rescaled input2 is subtracted."""
    s1, s2 = _scaled_inputs(layer.params, inputs[0], inputs[1])
    return [_output16(layer.params, s1 - s2, out_shapes[0])]


@reference("mcuq_mul_s16")
def mul_s16(layer, inputs, out_shapes) -> list[np.ndarray]:
    """reference_integer_ops::MulElementwise on int16 (zero points 0)."""
    p = layer.params
    a, b = _gather(p.broadcast, inputs[0], inputs[1])
    raw = multiply_by_quantized_multiplier((a - p.input1_zp) * (b - p.input2_zp), p.output_multiplier, p.output_shift)
    return [_clamp(raw + p.output_zp, p.activation.min, p.activation.max, np.int16, out_shapes[0])]


def _requantize(layer, inputs, out_shapes, dtype: type) -> list[np.ndarray]:
    p = layer.params
    x = np.asarray(inputs[0], dtype=np.int64).reshape(-1)[: p.size]
    raw = multiply_by_quantized_multiplier(x - p.input_zp, p.multiplier, p.shift) + p.output_zp
    return [_clamp(raw, p.activation.min, p.activation.max, dtype, out_shapes[0])]


@reference("mcuq_requantize_s16", "mcuq_requantize_s8_s16")
def requantize_to_s16(layer, inputs, out_shapes) -> list[np.ndarray]:
    return _requantize(layer, inputs, out_shapes, np.int16)


@reference("mcuq_requantize_s16_s8")
def requantize_to_s8(layer, inputs, out_shapes) -> list[np.ndarray]:
    return _requantize(layer, inputs, out_shapes, np.int8)


def _rescaled_input(p, x: np.ndarray) -> np.ndarray:
    """(x * input_multiplier + round) >> input_left_shift, exact in int64 (int32 in C: the ranges are checked)."""
    shift = p.input_left_shift
    rnd = (1 << (shift - 1)) if shift > 0 else 0
    return (np.asarray(x, dtype=np.int64) * p.input_multiplier + rnd) >> shift


@reference("mcuq_logistic_s16")
def logistic_s16(layer, inputs, out_shapes) -> list[np.ndarray]:
    """reference_integer_ops::Logistic (int16): the sigmoid table interpolated with 9 fractional bits, unsigned
    32-bit arithmetic, output Q0.15."""
    p = layer.params
    table = sigmoid_table_u16().astype(np.int64)
    x = _rescaled_input(p, np.asarray(inputs[0]).reshape(-1)[: p.size])
    ax = np.abs(x)
    uh = ax >> 9
    sat = uh >= 255
    idx = np.where(sat, 0, uh)
    ua, ub = table[idx], table[np.minimum(idx + 1, 255)]
    result = np.where(sat, 0x7FFF << 10, ((ua << 9) + (ax & 0x1FF) * (ub - ua)) & 0xFFFFFFFF)
    result = np.where(x >= 0, result + (1 << 9), (1 << 25) - result + (1 << 9) - 1) & 0xFFFFFFFF
    out = ((result >> 10) + 2**15) % 2**16 - 2**15  # uint32 -> int16 (the value always fits)
    return [out.astype(np.int16).reshape(out_shapes[0])]


@reference("mcuq_tanh_s16")
def tanh_s16(layer, inputs, out_shapes) -> list[np.ndarray]:
    """reference_integer_ops::Tanh (int16): tanh(x) = 2 sigmoid(2x) - 1 from the same table, 8 fractional bits."""
    p = layer.params
    table = sigmoid_table_u16().astype(np.int64)
    x = _rescaled_input(p, np.asarray(inputs[0]).reshape(-1)[: p.size])
    ax = np.abs(x)
    uh = ax >> 8
    sat = uh >= 255
    idx = np.where(sat, 0, uh)
    ua, ub = table[idx], table[np.minimum(idx + 1, 255)]
    result = np.where(sat, 0xFFFF << 8, (ua << 8) + (ax & 0xFF) * (ub - ua))
    result = np.where(x >= 0, result - (1 << 23) + (1 << 7), -result + (1 << 23) + (1 << 7) - 1)
    out = ((result >> 8) + 2**15) % 2**16 - 2**15
    return [out.astype(np.int16).reshape(out_shapes[0])]


def softmax_s16(x: np.ndarray, p) -> np.ndarray:
    """reference_ops::SoftmaxInt16 over the last axis of an int16 array [outer, depth]; output Q0.15 in [0, 32767]."""
    depth = x.shape[-1]
    rows = np.asarray(x, dtype=np.int64).reshape(-1, depth)
    diff = rows - rows.max(axis=1, keepdims=True)  # in [-65535, 0]
    scaled = multiply_by_quantized_multiplier(diff, p.input_multiplier, p.input_shift)
    sym = np.clip(scaled + 32767, -32768, 32767)
    exps = lut16_lookup(sym, p.exp_lut)
    total = exps.sum(axis=1, keepdims=True)
    headroom_plus_one = count_leading_zeros(total)
    shifted = ((total << (headroom_plus_one - 1)) + (1 << 13)) >> 14
    sym_sum = np.clip(shifted - ((1 << 15) + (1 << 16)), -32768, 32767)
    recip = lut16_lookup(sym_sum, p.one_over_one_plus_x_lut)
    right_shift = 31 - headroom_plus_one
    out = (exps * recip + (np.int64(1) << (right_shift - 1))) >> right_shift
    return np.clip(out, 0, 32767).astype(np.int16).reshape(x.shape)


@reference("mcuq_softmax_s16")
def softmax_s16_ref(layer, inputs, out_shapes) -> list[np.ndarray]:
    p = layer.params
    x = np.asarray(inputs[0]).reshape(p.outer_size, p.depth)
    return [softmax_s16(x, p).reshape(out_shapes[0])]
