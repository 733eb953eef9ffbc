"""Helpers shared by the per-family lowerings."""

from __future__ import annotations

import math

import numpy as np

from ..ir import Activation, Conv2DAttrs, DepthwiseConv2DAttrs, DType, Graph, Op, Tensor
from ..kernels.elementwise import MCUQ_BROADCAST_DIMS, Broadcast
from ..kernels.types import ActivationRange, ActivationRange16
from ..quant.fixedpoint import quantize_multiplier, tflite_round
from .base import fail
from .window import window

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


# -- shared by the int8 and 16x8 convolution lowerings (conv.py, conv16.py) ------------------------------------
def channel_multipliers(
    g: Graph, op: Op, s_in: float, s_w: tuple[float, ...], s_out: float, channels: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (multiplier, shift) as PopulateConvolutionQuantizationParams computes them (double)."""
    if len(s_w) not in (1, channels):
        raise fail(g, op, f"weights have {len(s_w)} scales for {channels} output channels")
    scales = s_w if len(s_w) == channels else s_w * channels
    reals = [
        float(np.float64(np.float32(s_in)) * np.float64(np.float32(s)) / np.float64(np.float32(s_out))) for s in scales
    ]
    return _quantized(g, op, reals)


def per_tensor_fc_multiplier(g: Graph, op: Op, s_in: float, s_w: float, s_out: float) -> tuple[np.ndarray, np.ndarray]:
    """GetQuantizedConvolutionMultipler: the scale product is a float32 product, widened to double after."""
    product = np.float32(s_in) * np.float32(s_w)  # float32 * float32 stays float32
    real = float(np.float64(product) / np.float64(np.float32(s_out)))
    if real < 0:
        raise fail(g, op, "negative input * weight scale")
    return _quantized(g, op, [real])


def _quantized(g: Graph, op: Op, reals: list[float]) -> tuple[np.ndarray, np.ndarray]:
    mults, shifts = [], []
    for r in reals:
        if not np.isfinite(r) or r < 0:
            raise fail(g, op, f"effective output scale {r} is not a finite non-negative number")
        q, s = quantize_multiplier(r)
        if s > 30:
            raise fail(g, op, f"effective output scale {r:g} is too large (shift {s} > 30)")
        mults.append(q)
        shifts.append(s)
    return np.asarray(mults, dtype=np.int32), np.asarray(shifts, dtype=np.int32)


def conv_window(g: Graph, op: Op, attrs: Conv2DAttrs | DepthwiseConv2DAttrs, x: Tensor, kh: int, kw: int, y: Tensor):
    """Validate the spatial geometry; returns (out_h, out_w, the Window struct)."""
    if min(attrs.stride_h, attrs.stride_w, attrs.dilation_h, attrs.dilation_w) < 1:
        raise fail(g, op, "strides and dilations must be >= 1")
    (oh, ow), win = window(
        attrs.padding,
        (x.shape[1], x.shape[2]),
        (kh, kw),
        (attrs.stride_h, attrs.stride_w),
        (attrs.dilation_h, attrs.dilation_w),
    )
    if len(y.shape) != 4 or tuple(y.shape[1:3]) != (oh, ow) or y.shape[0] != x.shape[0]:
        raise fail(g, op, f"output shape {y.shape} does not match the computed spatial size ({oh}, {ow})")
    if oh < 1 or ow < 1:
        raise fail(g, op, "empty output")
    return oh, ow, win


def require_symmetric(g: Graph, op: Op, wt: Tensor) -> None:
    assert wt.qparams is not None
    if any(z != 0 for z in wt.qparams.zero_point):
        raise fail(g, op, f"weights '{wt.name}' must be symmetric (zero point 0); TFLite's int8 kernel ignores it")


# -- shared by the int8 and 16x8 elementwise lowerings (elementwise.py, elementwise16.py) ----------------------
def broadcast_layout(out_shape: tuple[int, ...], shape1: tuple[int, ...], shape2: tuple[int, ...]) -> Broadcast:
    """Output dims and per-input element strides (0 where an input is broadcast) for the kernels' loops.

    Shapes are right-aligned as in numpy; size-1 output dimensions are dropped and neighbouring dimensions that
    both inputs traverse contiguously (or both broadcast) are merged, then leading 1s pad the result to
    MCUQ_BROADCAST_DIMS. Equal shapes collapse to one flat loop.
    """
    rank = len(out_shape)
    s1 = (1,) * (rank - len(shape1)) + tuple(shape1)
    s2 = (1,) * (rank - len(shape2)) + tuple(shape2)

    def strides(shape: tuple[int, ...]) -> list[int]:
        st, acc = [0] * rank, 1
        for d in reversed(range(rank)):
            st[d] = 0 if shape[d] == 1 else acc
            acc *= shape[d]
        return st

    st1, st2 = strides(s1), strides(s2)
    dims: list[list[int]] = []  # [dim, stride1, stride2], outermost first
    for d in range(rank):
        if out_shape[d] == 1:
            continue
        if dims:
            n, a, b = dims[-1]
            if a == st1[d] * out_shape[d] and b == st2[d] * out_shape[d]:
                dims[-1] = [n * out_shape[d], st1[d], st2[d]]
                continue
        dims.append([out_shape[d], st1[d], st2[d]])
    if len(dims) > MCUQ_BROADCAST_DIMS:
        raise ValueError(f"broadcast of {shape1} and {shape2} needs {len(dims)} loops (at most {MCUQ_BROADCAST_DIMS})")
    dims = [[1, 0, 0]] * (MCUQ_BROADCAST_DIMS - len(dims)) + dims
    cols = np.array(dims, dtype=np.int32).T
    return Broadcast(cols[0].copy(), cols[1].copy(), cols[2].copy())
