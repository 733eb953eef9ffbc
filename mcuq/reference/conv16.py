"""numpy mirrors of the 16x8 convolution kernels (runtime_c/src/conv/mcuq_*_s16.c), bit-exact.

The weights arrive as int8 values whatever their width (``Tensor.data`` of a packed tensor holds them unpacked;
the C reads the packed bytes). Accumulation is exact in int64; with ``acc64 == 0`` the lowering has proved that the
C's int32 accumulator cannot overflow, so it is the same number.
"""

from __future__ import annotations

import numpy as np

from ..quant.fixedpoint import multiply_by_quantized_multiplier, multiply_by_quantized_multiplier_s64
from .base import reference
from .conv import _tap


def requantize_s16(acc: np.ndarray, p, bias: np.ndarray | None) -> np.ndarray:
    """acc [..., C] (int64, without bias) -> int16: bias, TFLite's int64 or int32 requantization (``p.acc64``) with
    per-channel (or broadcast) multiplier/shift along the last axis, then the clamp."""
    if bias is not None:
        acc = acc + np.asarray(bias, dtype=np.int64).reshape(-1)
    mult = np.asarray(p.quant.multiplier, dtype=np.int64)
    shift = np.asarray(p.quant.shift, dtype=np.int64)
    if p.acc64:
        out = multiply_by_quantized_multiplier_s64(acc, mult, shift)
    else:
        out = multiply_by_quantized_multiplier(acc, mult, shift)
    return np.clip(out, p.activation.min, p.activation.max).astype(np.int16)


def _padded(x: np.ndarray, p) -> np.ndarray:
    """x (int64), zero-padded so that every tap of every output pixel is inside the array (padding taps add 0)."""
    win = p.window
    need_h = (p.output.h - 1) * win.stride.h + (win.filter.h - 1) * win.dilation.h + 1
    need_w = (p.output.w - 1) * win.stride.w + (win.filter.w - 1) * win.dilation.w + 1
    top, left = win.pad.h, win.pad.w
    bottom = max(need_h - p.input.h - top, 0)
    right = max(need_w - p.input.w - left, 0)
    return np.pad(x.astype(np.int64), ((0, 0), (top, bottom), (left, right), (0, 0)))


def _conv_like(layer, inputs, out_shapes, depthwise: bool):
    p = layer.params
    x, w, b = inputs
    i, o, f = p.input, p.output, p.window.filter
    xs = _padded(np.asarray(x).reshape(i.n, i.h, i.w, i.c), p)
    acc = np.zeros((o.n, o.h, o.w, o.c), dtype=np.int64)
    if depthwise:
        w = np.asarray(w, dtype=np.int64).reshape(f.h, f.w, o.c)
        xs = np.repeat(xs, p.depth_multiplier, axis=3)  # output channel c * depth_multiplier + m reads channel c
        for ky in range(f.h):
            for kx in range(f.w):
                acc += _tap(xs, p, ky, kx) * w[ky, kx, :]
    else:
        w = np.asarray(w, dtype=np.int64).reshape(o.c, f.h, f.w, i.c)
        for ky in range(f.h):
            for kx in range(f.w):
                acc += _tap(xs, p, ky, kx) @ w[:, ky, kx, :].T
    return [requantize_s16(acc, p, b).reshape(out_shapes[0])]


@reference("mcuq_conv2d_s16")
def conv2d_s16(layer, inputs, out_shapes):
    return _conv_like(layer, inputs, out_shapes, depthwise=False)


@reference("mcuq_depthwise_conv2d_s16")
def depthwise_conv2d_s16(layer, inputs, out_shapes):
    return _conv_like(layer, inputs, out_shapes, depthwise=True)


@reference("mcuq_fully_connected_s16")
def fully_connected_s16(layer, inputs, out_shapes):
    p = layer.params
    x, w, b = inputs
    x = np.asarray(x, dtype=np.int64).reshape(p.batches, p.input_size)
    w = np.asarray(w, dtype=np.int64).reshape(p.output_size, p.input_size) - p.weights_zp
    return [requantize_s16(x @ w.T, p, b).reshape(out_shapes[0])]
