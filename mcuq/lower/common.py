"""Helpers shared by the per-family lowerings."""

from __future__ import annotations

import math

import numpy as np

from ..ir import Activation, DType, Graph, Op, Tensor
from ..kernels.types import ActivationRange
from ..quant.fixedpoint import tflite_round
from .base import fail

INT8_MIN, INT8_MAX = -128, 127


def max_abs_offset(zero_point: int) -> int:
    """The largest |x - zero_point| over int8 x."""
    return max(INT8_MAX - zero_point, zero_point - INT8_MIN)


class ActivationRangeError(ValueError):
    """A fused activation's bound cannot be quantized (``lower_op`` reports it naming the op)."""


def activation_bounds(act: Activation, out: Tensor) -> tuple[int, int]:
    """TFLite's CalculateActivationRangeQuantized for an int8 output: fused activation -> clamp bounds.

    quantize(f) = zero_point + round(f / scale), the division in float32 as TFLite does it.
    """
    scale = np.float32(out.scale)
    zp = out.zero_point

    def quantize(f: float) -> int:
        # TFLite 2.14 kernel_util.cc Quantize(): round(f / scale) in float32 must lie within int32 (as floats),
        # else Prepare fails (no_integer_overflow_from_quantization); mcuq refuses the same models.
        with np.errstate(over="ignore"):
            q = np.float32(np.float32(f) / scale)
        tmp = tflite_round(float(q)) if np.isfinite(q) else None
        if tmp is None or not -(2.0**31) <= float(np.float32(tmp)) <= 2.0**31:
            raise ActivationRangeError(
                f"output scale {float(scale):g} is too small for the fused {act.value} activation: {f:g} / scale "
                "overflows int32 (TFLite refuses this model too)"
            )
        return zp + tmp

    lo, hi = INT8_MIN, INT8_MAX
    if act == Activation.RELU:
        lo = max(lo, quantize(0.0))
    elif act == Activation.RELU6:
        lo = max(lo, quantize(0.0))
        hi = min(hi, quantize(6.0))
    elif act == Activation.RELU_N1_TO_1:
        lo = max(lo, quantize(-1.0))
        hi = min(hi, quantize(1.0))
    return lo, hi


def activation_range(act: Activation, out: Tensor) -> ActivationRange:
    """``activation_bounds`` as the C ``mcuq_activation`` struct."""
    return ActivationRange(*activation_bounds(act, out))


def require_int8(g: Graph, op: Op, *names: str) -> tuple[Tensor, ...]:
    """The named tensors, after checking that each is int8 with per-tensor quantization and a positive scale
    (what every activation of an int8 kernel must be); fails with the tensor named otherwise."""
    out = []
    for n in names:
        t = g.tensors[n]
        if t.dtype != DType.INT8:
            raise fail(
                g, op, f"tensor '{n}' is {t.dtype.value}; mcuq compiles int8 models (quantize float models first)"
            )
        if t.qparams is None:
            raise fail(g, op, f"tensor '{n}' has no quantization parameters")
        if t.qparams.per_channel:
            raise fail(g, op, f"tensor '{n}' is quantized per channel; {op.type_name} needs per-tensor parameters")
        if not (math.isfinite(t.scale) and t.scale > 0.0):
            raise fail(g, op, f"tensor '{n}' has scale {t.scale}; scales must be positive and finite")
        out.append(t)
    return tuple(out)
