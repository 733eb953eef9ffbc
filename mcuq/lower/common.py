"""Helpers shared by the per-family lowerings."""

from __future__ import annotations

import math

import numpy as np

from ..ir import Activation, DType, Graph, Op, Tensor
from ..kernels.types import ActivationRange, ActivationRange16
from ..quant.fixedpoint import tflite_round
from .base import fail

INT8_MIN, INT8_MAX = -128, 127
INT16_MIN, INT16_MAX = -32768, 32767

# the activation dtypes a kernel family may run on, with their value ranges
ACT_RANGES: dict[DType, tuple[int, int]] = {DType.INT8: (INT8_MIN, INT8_MAX), DType.INT16: (INT16_MIN, INT16_MAX)}


def dtype_range(dtype: DType) -> tuple[int, int]:
    """The [min, max] of an int8 or int16 activation dtype."""
    return ACT_RANGES[dtype]


def max_abs_offset(zero_point: int, dtype: DType = DType.INT8) -> int:
    """The largest |x - zero_point| over x of ``dtype`` (int8 or int16)."""
    lo, hi = ACT_RANGES[dtype]
    return max(hi - zero_point, zero_point - lo)


class ActivationRangeError(ValueError):
    """A fused activation's bound cannot be quantized (``lower_op`` reports it naming the op)."""


def activation_bounds(act: Activation, out: Tensor) -> tuple[int, int]:
    """TFLite's CalculateActivationRangeQuantized for an int8 or int16 output: fused activation -> clamp bounds
    within the output dtype's range ([-128, 127] or [-32768, 32767]; any other dtype is treated as int8).

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

    lo, hi = ACT_RANGES.get(out.dtype, (INT8_MIN, INT8_MAX))
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
    """``activation_bounds`` as the C ``mcuq_activation`` struct (``ActivationRange16``, int16 bounds, for an int16
    output)."""
    cls = ActivationRange16 if out.dtype == DType.INT16 else ActivationRange
    return cls(*activation_bounds(act, out))


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


def require_act(
    g: Graph, op: Op, *names: str, allow: tuple[DType, ...] = (DType.INT8, DType.INT16)
) -> tuple[Tensor, ...]:
    """Like ``require_int8`` for a kernel family that runs on int8 or int16 activations (TFLite's 16x8 mode): every
    named tensor must have the same dtype, one of ``allow``, per-tensor quantization and a positive scale; an int16
    tensor must also be symmetric (zero point 0, as TFLite's 16x8 spec requires). Returns the tensors; their
    common dtype is ``tensors[0].dtype``."""
    if not names:
        return ()
    first = g.tensors[names[0]]
    for n in names:
        t = g.tensors[n]
        if t.dtype not in allow:
            wanted = " or ".join(d.value for d in allow)
            raise fail(g, op, f"tensor '{n}' is {t.dtype.value}; {op.type_name} runs on {wanted} activations")
        if t.dtype != first.dtype:
            raise fail(
                g,
                op,
                f"tensor '{names[0]}' is {first.dtype.value} but '{n}' is {t.dtype.value}; "
                f"{op.type_name} needs all its activations of one type (insert a QUANTIZE between int8 and int16)",
            )
    tensors = _require_quantized(g, op, names)
    if first.dtype == DType.INT16:
        for t in tensors:
            if t.zero_point != 0:
                raise fail(
                    g, op, f"int16 tensor '{t.name}' has zero point {t.zero_point}; int16 activations must be symmetric"
                )
    return tensors


def _require_quantized(g: Graph, op: Op, names: tuple[str, ...]) -> tuple[Tensor, ...]:
    out = []
    for n in names:
        t = g.tensors[n]
        if t.qparams is None:
            raise fail(g, op, f"tensor '{n}' has no quantization parameters")
        if t.qparams.per_channel:
            raise fail(g, op, f"tensor '{n}' is quantized per channel; {op.type_name} needs per-tensor parameters")
        if not (math.isfinite(t.scale) and t.scale > 0.0):
            raise fail(g, op, f"tensor '{n}' has scale {t.scale}; scales must be positive and finite")
        out.append(t)
    return tuple(out)
