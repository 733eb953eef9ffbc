"""float32 numpy kernels, one per OpKind, with the semantics of TFLite's float reference kernels.

Used by ``reference.run_graph`` for ops whose activation input is float32 (float models before quantization,
and the float side of a mixed graph). A kernel is ``fn(g, op, inputs) -> np.ndarray``: ``inputs`` are the
arrays of ``op.inputs`` in order (None for ""), the result is the op's single output with the output tensor's
shape and dtype.

Precision: every kernel computes in float64 and rounds to float32 once, at its output. TFLite's float kernels
accumulate in float32 in their own loop order; float64 makes the result independent of summation order and
BLAS blocking (reproducible on every machine) and at least as close to the exact value, so the two differ by
TFLite's float32 rounding only (about 1e-6 relative). Elementwise ADD, MUL, the activations on one value,
PAD, CONCAT, TRANSPOSE and RESHAPE come out bit-exact: a product or sum of two float32 values is exact in
float64 or (for sums of very different magnitude) rounds to the same float32 as IEEE float32 arithmetic.
QUANTIZE (float -> integer) divides in float32 as TFLite's AffineQuantize does; DEQUANTIZE (integer or float16 ->
float32) is bit-exact too (``dequantize_values``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..errors import ModelError
from ..ir import (
    Activation,
    ConcatAttrs,
    DType,
    Graph,
    MeanAttrs,
    Op,
    OpKind,
    PadAttrs,
    SoftmaxAttrs,
    Tensor,
    TransposeAttrs,
)
from ..lower.window import out_size, pad_before
from ..quant.values import affine_quantize
from ..registry import registrar

FloatFn = Callable[[Graph, Op, list], np.ndarray]
FLOAT_OPS: dict[OpKind, FloatFn] = {}

_BOUNDS = {
    Activation.NONE: (-np.inf, np.inf),
    Activation.RELU: (0.0, np.inf),
    Activation.RELU6: (0.0, 6.0),
    Activation.RELU_N1_TO_1: (-1.0, 1.0),
}


#: ``@float_op(*kinds)`` registers the decorated function as the float32 kernel of each of ``kinds``.
float_op = registrar(FLOAT_OPS, "float kernels")


def _f64(x: np.ndarray | None) -> np.ndarray:
    assert x is not None
    return np.asarray(x, dtype=np.float64)


def _out(g: Graph, op: Op, y: np.ndarray) -> np.ndarray:
    """``y`` as the output tensor: its shape (same element count) and float32, after the fused activation."""
    t = g.tensors[op.outputs[0]]
    act = getattr(op.attrs, "activation", Activation.NONE)
    lo, hi = _BOUNDS[act]
    if act is not Activation.NONE:
        y = np.clip(y, lo, hi)
    if y.size != t.size:
        raise ModelError(g.source, f"{op.where}: computed {y.size} values, output '{t.name}' has shape {t.shape}")
    return np.asarray(y, dtype=np.float32).reshape(t.shape)


# -- convolution and fully connected ----------------------------------------------------------------------


def _windows(x: np.ndarray, attrs, kh: int, kw: int, fill: float) -> tuple[np.ndarray, Callable, int, int]:
    """x (NHWC) padded with ``fill`` so that every tap of every output pixel is inside; returns the padded
    array, ``tap(ky, kx) -> [n, oh, ow, c]`` and (oh, ow). Geometry is TFLite's (lower/conv.py)."""
    dh, dw = getattr(attrs, "dilation_h", 1), getattr(attrs, "dilation_w", 1)
    _, h, w, _ = x.shape
    oh = out_size(attrs.padding, h, kh, attrs.stride_h, dh)
    ow = out_size(attrs.padding, w, kw, attrs.stride_w, dw)
    top, left = pad_before(h, kh, attrs.stride_h, dh, oh), pad_before(w, kw, attrs.stride_w, dw, ow)
    bottom = max((oh - 1) * attrs.stride_h + (kh - 1) * dh + 1 - h - top, 0)
    right = max((ow - 1) * attrs.stride_w + (kw - 1) * dw + 1 - w - left, 0)
    xp = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=fill)

    def tap(ky: int, kx: int) -> np.ndarray:
        y0, x0 = ky * dh, kx * dw
        return xp[:, y0 : y0 + (oh - 1) * attrs.stride_h + 1 : attrs.stride_h,
                  x0 : x0 + (ow - 1) * attrs.stride_w + 1 : attrs.stride_w, :]  # fmt: skip

    return xp, tap, oh, ow


def _bias(ins: list) -> np.ndarray | float:
    return _f64(ins[2]).reshape(-1) if len(ins) > 2 and ins[2] is not None else 0.0


@float_op(OpKind.CONV2D)
def conv2d(g: Graph, op: Op, ins: list) -> np.ndarray:
    """NHWC input, OHWI weights, zero padding (TFLite skips the padded taps: the same sum)."""
    x, w = _f64(ins[0]), _f64(ins[1])
    cout, kh, kw, _ = w.shape
    _, tap, oh, ow = _windows(x, op.attrs, kh, kw, 0.0)
    acc = np.zeros((x.shape[0], oh, ow, cout))
    for ky in range(kh):
        for kx in range(kw):
            acc += tap(ky, kx) @ w[:, ky, kx, :].T
    return _out(g, op, acc + _bias(ins))


@float_op(OpKind.DEPTHWISE_CONV2D)
def depthwise_conv2d(g: Graph, op: Op, ins: list) -> np.ndarray:
    """1HWC weights; output channel ``c * depth_multiplier + m`` reads input channel ``c``."""
    x, w = _f64(ins[0]), _f64(ins[1])
    _, kh, kw, cout = w.shape
    x = np.repeat(x, cout // x.shape[3], axis=3)
    _, tap, oh, ow = _windows(x, op.attrs, kh, kw, 0.0)
    acc = np.zeros((x.shape[0], oh, ow, cout))
    for ky in range(kh):
        for kx in range(kw):
            acc += tap(ky, kx) * w[0, ky, kx, :]
    return _out(g, op, acc + _bias(ins))


@float_op(OpKind.FULLY_CONNECTED)
def fully_connected(g: Graph, op: Op, ins: list) -> np.ndarray:
    """[out, in] weights; the input is read as rows of ``in`` values (keep_num_dims only shapes the output)."""
    w = _f64(ins[1])
    x = _f64(ins[0]).reshape(-1, w.shape[1])
    return _out(g, op, x @ w.T + _bias(ins))


# -- pooling and reductions ---------------------------------------------------------------------------------


@float_op(OpKind.AVG_POOL2D)
def avg_pool2d(g: Graph, op: Op, ins: list) -> np.ndarray:
    """The mean of the in-bounds taps only (TFLite divides by the clamped window's size under SAME padding)."""
    a = op.attrs
    x = _f64(ins[0])
    _, tap, oh, ow = _windows(x, a, a.filter_h, a.filter_w, 0.0)
    _, count_tap, _, _ = _windows(np.ones((1, *x.shape[1:3], 1)), a, a.filter_h, a.filter_w, 0.0)
    total = sum(tap(ky, kx) for ky in range(a.filter_h) for kx in range(a.filter_w))
    count = sum(count_tap(ky, kx) for ky in range(a.filter_h) for kx in range(a.filter_w))
    return _out(g, op, total / count)


@float_op(OpKind.MAX_POOL2D)
def max_pool2d(g: Graph, op: Op, ins: list) -> np.ndarray:
    a = op.attrs
    _, tap, _, _ = _windows(_f64(ins[0]), a, a.filter_h, a.filter_w, -np.inf)
    taps = [tap(ky, kx) for ky in range(a.filter_h) for kx in range(a.filter_w)]
    return _out(g, op, np.maximum.reduce(taps))


@float_op(OpKind.MEAN)
def mean(g: Graph, op: Op, ins: list) -> np.ndarray:
    assert isinstance(op.attrs, MeanAttrs)
    return _out(g, op, _f64(ins[0]).mean(axis=tuple(op.attrs.axes), keepdims=op.attrs.keep_dims))


@float_op(OpKind.SOFTMAX)
def softmax(g: Graph, op: Op, ins: list) -> np.ndarray:
    """Along the last axis: exp((x - max) * beta), normalised."""
    assert isinstance(op.attrs, SoftmaxAttrs)
    x = _f64(ins[0])
    e = np.exp((x - x.max(axis=-1, keepdims=True)) * float(np.float32(op.attrs.beta)))
    return _out(g, op, e / e.sum(axis=-1, keepdims=True))


# -- elementwise --------------------------------------------------------------------------------------------


@float_op(OpKind.ADD)
def add(g: Graph, op: Op, ins: list) -> np.ndarray:
    _expect(g, op, _broadcast(g, op, ins))
    return _out(g, op, _f64(ins[0]) + _f64(ins[1]))


@float_op(OpKind.SUB)
def sub(g: Graph, op: Op, ins: list) -> np.ndarray:
    _expect(g, op, _broadcast(g, op, ins))
    return _out(g, op, _f64(ins[0]) - _f64(ins[1]))


@float_op(OpKind.MUL)
def mul(g: Graph, op: Op, ins: list) -> np.ndarray:
    _expect(g, op, _broadcast(g, op, ins))
    return _out(g, op, _f64(ins[0]) * _f64(ins[1]))


def _broadcast(g: Graph, op: Op, ins: list) -> tuple[int, ...]:
    try:
        return tuple(np.broadcast_shapes(np.shape(ins[0]), np.shape(ins[1])))
    except ValueError:
        raise ModelError(g.source, f"{op.where}: input shapes {np.shape(ins[0])} and {np.shape(ins[1])} do not "
                         "broadcast") from None  # fmt: skip


def _expect(g: Graph, op: Op, shape: tuple[int, ...]) -> None:
    """Refuse, before anything is allocated, a result of another size than the output tensor (a malformed op
    whose attributes or input shapes promise more than its output holds)."""
    t = g.tensors[op.outputs[0]]
    n = 1
    for d in shape:
        n *= int(d)
    if n != t.size:
        raise ModelError(
            g.source, f"{op.where}: computes shape {list(shape)}, output '{t.name}' has shape {list(t.shape)}"
        )


_UNARY: dict[OpKind, Callable[[np.ndarray], np.ndarray]] = {
    OpKind.SIGMOID: lambda x: 1.0 / (1.0 + np.exp(-x)),  # exp overflows to inf for x < -709: 1 / inf = 0
    OpKind.TANH: np.tanh,
    OpKind.RELU: lambda x: np.maximum(x, 0.0),
    OpKind.RELU6: lambda x: np.clip(x, 0.0, 6.0),
    OpKind.HARD_SWISH: lambda x: x * np.clip(x + 3.0, 0.0, 6.0) / 6.0,
}


@float_op(*_UNARY)
def unary(g: Graph, op: Op, ins: list) -> np.ndarray:
    with np.errstate(over="ignore"):
        return _out(g, op, _UNARY[op.kind](_f64(ins[0])))


@float_op(OpKind.LEAKY_RELU, OpKind.HARD_SIGMOID, OpKind.CLIP)
def with_attrs(g: Graph, op: Op, ins: list) -> np.ndarray:
    """LEAKY_RELU (x >= 0 ? x : alpha * x), HARD_SIGMOID (clamp(alpha * x + beta, 0, 1)) and CLIP (clamp(x, min,
    max); min > max gives max, as numpy and ONNX do), the attributes as float32."""
    from ..lower.activations import attrs_problem, clip_bounds

    problem = attrs_problem(op)
    if problem is not None:
        raise ModelError(g.source, f"{op.where}: {problem}")
    x, a = _f64(ins[0]), op.attrs
    with np.errstate(over="ignore"):
        if op.kind is OpKind.LEAKY_RELU:
            y = np.where(x >= 0.0, x, float(np.float32(a.alpha)) * x)
        elif op.kind is OpKind.HARD_SIGMOID:
            y = np.clip(float(np.float32(a.alpha)) * x + float(np.float32(a.beta)), 0.0, 1.0)
        else:
            lo, hi = clip_bounds(op)
            y = np.minimum(np.maximum(x, float(lo)), float(hi))
        return _out(g, op, y)


# -- data movement ------------------------------------------------------------------------------------------


@float_op(OpKind.RESHAPE, OpKind.COPY)
def reshape(g: Graph, op: Op, ins: list) -> np.ndarray:
    return _out(g, op, np.array(ins[0], dtype=np.float32))


@float_op(OpKind.PAD)
def pad(g: Graph, op: Op, ins: list) -> np.ndarray:
    assert isinstance(op.attrs, PadAttrs)
    x = np.asarray(ins[0])
    if len(op.attrs.paddings) != x.ndim or any(min(p) < 0 for p in op.attrs.paddings):
        raise ModelError(g.source, f"{op.where}: paddings {op.attrs.paddings} do not fit an input of rank {x.ndim}")
    _expect(g, op, tuple(d + a + b for d, (a, b) in zip(x.shape, op.attrs.paddings)))
    return _out(g, op, np.pad(np.asarray(ins[0]), op.attrs.paddings, constant_values=0.0))


@float_op(OpKind.CONCAT)
def concat(g: Graph, op: Op, ins: list) -> np.ndarray:
    assert isinstance(op.attrs, ConcatAttrs)
    return _out(g, op, np.concatenate([np.asarray(x) for x in ins], axis=op.attrs.axis))


@float_op(OpKind.TRANSPOSE)
def transpose(g: Graph, op: Op, ins: list) -> np.ndarray:
    assert isinstance(op.attrs, TransposeAttrs)
    return _out(g, op, np.transpose(np.asarray(ins[0]), op.attrs.perm))


@float_op(OpKind.QUANTIZE)
def quantize(g: Graph, op: Op, ins: list) -> np.ndarray:
    """float -> integer, as reference_ops::AffineQuantize: round(x / scale) in float32, half away from zero,
    plus the zero point, clamped to the output type."""
    t = g.tensors[op.outputs[0]]
    if t.dtype not in (DType.INT8, DType.UINT8, DType.INT16) or t.qparams is None or t.qparams.per_channel:
        raise ModelError(g.source, f"{op.where}: float QUANTIZE needs a per-tensor quantized integer output")
    return affine_quantize(np.asarray(ins[0], dtype=np.float32), t.scale, t.zero_point, t.dtype).reshape(t.shape)


# Integer types DEQUANTIZE reads with their quantization parameters (INT4 is held unpacked in int8 arrays).
_DEQUANTIZABLE = (DType.INT8, DType.UINT8, DType.INT16, DType.INT4)


def dequantize_problem(t: Tensor) -> str | None:
    """Why DEQUANTIZE cannot read ``t`` (None: it can): float16, or a quantized int8/uint8/int16/int4 tensor."""
    if t.dtype is DType.FLOAT16:
        return None
    if t.dtype not in _DEQUANTIZABLE:
        return f"input '{t.name}' is {t.dtype.value}; DEQUANTIZE reads float16, int8, uint8, int16 or int4"
    if t.qparams is None:
        return f"input '{t.name}' ({t.dtype.value}) has no quantization parameters"
    q = t.qparams
    if q.per_channel and not (0 <= q.axis < len(t.shape) and t.shape[q.axis] == len(q.scale)):
        return f"input '{t.name}': {len(q.scale)} scales do not match axis {q.axis} of shape {list(t.shape)}"
    return None


def dequantize_values(t: Tensor, x: np.ndarray) -> np.ndarray:
    """``x`` (values of tensor ``t``) as float32, as TFLite's Dequantize computes them: float16 widens exactly;
    integers give ``scale * (q - zero_point)`` per tensor or per channel along ``qparams.axis``. The product of
    a float32 scale and an integer below 2^17 is exact in float64, so one rounding to float32 gives what
    TFLite's float (per-channel) and double (per-tensor) products give. ``dequantize_problem(t)`` must be None."""
    if t.dtype is DType.FLOAT16:
        return np.asarray(x, dtype=np.float16).astype(np.float32)
    assert t.qparams is not None
    shape = [1] * len(t.shape)
    if t.qparams.per_channel:
        shape[t.qparams.axis] = len(t.qparams.scale)
    scale = np.asarray(t.qparams.scale, dtype=np.float32).astype(np.float64).reshape(shape)
    zp = np.asarray(t.qparams.zero_point, dtype=np.int64).reshape(shape)
    return (scale * (np.asarray(x, dtype=np.int64) - zp)).astype(np.float32)


@float_op(OpKind.DEQUANTIZE)
def dequantize(g: Graph, op: Op, ins: list) -> np.ndarray:
    """A DEQUANTIZE that passes left (its input is an activation, or a constant no pass folded)."""
    t = g.tensors[op.inputs[0]]
    problem = dequantize_problem(t)
    if problem is not None:
        raise ModelError(g.source, f"{op.where}: {problem}")
    return _out(g, op, dequantize_values(t, ins[0]))


__all__ = ["FLOAT_OPS", "FloatFn", "dequantize_problem", "dequantize_values", "float_op"]
