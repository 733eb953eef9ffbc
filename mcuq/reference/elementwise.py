"""numpy mirrors of runtime_c/src/elementwise: mcuq_add_s8, mcuq_sub_s8, mcuq_mul_s8, mcuq_requantize_s8, mcuq_lut_s8
(mcuq_hard_swish_s8 is in activations.py, imported here so that importing this module registers it)."""

from __future__ import annotations

import numpy as np

from ..kernels.elementwise import AddParams, Broadcast
from ..kernels.types import ActivationRange
from ..quant.fixedpoint import (
    multiply_by_quantized_multiplier,
    multiply_by_quantized_multiplier_smaller_than_one_exp,
)
from . import activations  # noqa: F401  (registers mcuq_hard_swish_s8)
from .base import reference


def _gather(walk: Broadcast, x1: np.ndarray, x2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The (input1, input2) value pairs in output order, from the kernels' dims and strides (mcuq_broadcast)."""
    dims = [int(d) for d in walk.out_dims]
    idx1 = np.zeros(dims, dtype=np.int64)
    idx2 = np.zeros(dims, dtype=np.int64)
    for d, n in enumerate(dims):
        shape = [1] * len(dims)
        shape[d] = n
        r = np.arange(n, dtype=np.int64).reshape(shape)
        idx1 = idx1 + r * int(walk.input1_strides[d])
        idx2 = idx2 + r * int(walk.input2_strides[d])
    a = np.asarray(x1, dtype=np.int64).reshape(-1)[idx1.reshape(-1)]
    b = np.asarray(x2, dtype=np.int64).reshape(-1)[idx2.reshape(-1)]
    return a, b


def _clamp_i8(x: np.ndarray, act: ActivationRange, shape: tuple[int, ...]) -> np.ndarray:
    return np.clip(x, act.min, act.max).astype(np.int8).reshape(shape)


def _arithmetic_inputs(p: AddParams, x1: np.ndarray, x2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """mcuq_arithmetic_input on both inputs (mcuq_add_params): each on the common scale, in output order."""
    a, b = _gather(p.broadcast, x1, x2)
    ls = 1 << p.left_shift
    s1 = multiply_by_quantized_multiplier_smaller_than_one_exp(
        (a - p.input1_zp) * ls, p.input1_multiplier, p.input1_shift
    )
    s2 = multiply_by_quantized_multiplier_smaller_than_one_exp(
        (b - p.input2_zp) * ls, p.input2_multiplier, p.input2_shift
    )
    return s1, s2


def _arithmetic_output(p: AddParams, combined: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """mcuq_arithmetic_output: the combined value on the output scale, offset and clamped."""
    raw = multiply_by_quantized_multiplier_smaller_than_one_exp(combined, p.output_multiplier, p.output_shift)
    return _clamp_i8(raw + p.output_zp, p.activation, shape)


@reference("mcuq_add_s8")
def add_s8(layer, inputs, out_shapes) -> list[np.ndarray]:
    s1, s2 = _arithmetic_inputs(layer.params, inputs[0], inputs[1])
    return [_arithmetic_output(layer.params, s1 + s2, out_shapes[0])]


@reference("mcuq_sub_s8")
def sub_s8(layer, inputs, out_shapes) -> list[np.ndarray]:
    """The rescaled input2 is subtracted (TFLite 2.14's SubFunc), not added with a negated multiplier."""
    s1, s2 = _arithmetic_inputs(layer.params, inputs[0], inputs[1])
    return [_arithmetic_output(layer.params, s1 - s2, out_shapes[0])]


@reference("mcuq_mul_s8")
def mul_s8(layer, inputs, out_shapes) -> list[np.ndarray]:
    p = layer.params
    a, b = _gather(p.broadcast, inputs[0], inputs[1])
    product = (a - p.input1_zp) * (b - p.input2_zp)
    raw = multiply_by_quantized_multiplier(product, p.output_multiplier, p.output_shift)
    return [_clamp_i8(raw + p.output_zp, p.activation, out_shapes[0])]


@reference("mcuq_requantize_s8")
def requantize_s8(layer, inputs, out_shapes) -> list[np.ndarray]:
    p = layer.params
    x = np.asarray(inputs[0], dtype=np.int64).reshape(-1)[: p.size]
    raw = multiply_by_quantized_multiplier(x - p.input_zp, p.multiplier, p.shift)
    return [_clamp_i8(raw + p.output_zp, p.activation, out_shapes[0])]


@reference("mcuq_lut_s8")
def lut_s8(layer, inputs, out_shapes) -> list[np.ndarray]:
    p = layer.params
    x = np.asarray(inputs[0], dtype=np.int8).reshape(-1)[: p.size]
    return [np.asarray(p.table, dtype=np.int8)[x.view(np.uint8)].reshape(out_shapes[0])]


@reference("mcuq_add_s8_dsp", "mcuq_add_s8_mve")
def add_s8_fast(layer, inputs, out_shapes) -> list[np.ndarray]:
    """The dsp/mve same-shape ADD and SUB, from their tables (mcuq/kernels/elementwise_fast.py)."""
    from ..kernels.elementwise_fast import add_fast

    return [add_fast(layer.params, inputs[0], inputs[1]).reshape(out_shapes[0])]
