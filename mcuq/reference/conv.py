"""numpy mirrors of runtime_c/src/conv/*.c (bit-exact): CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED.

Accumulation is done in int64; the lowering proves statically that the int32 accumulator of the C kernels
cannot overflow, so the results are identical.
"""

from __future__ import annotations

import numpy as np

from ..quant.fixedpoint import multiply_by_quantized_multiplier
from .base import reference


def _requantize(acc: np.ndarray, p, bias: np.ndarray | None) -> np.ndarray:
    """acc [..., C] int64 -> int8 with per-channel (or broadcast) multiplier/shift along the last axis."""
    if bias is not None:
        acc = acc + np.asarray(bias, dtype=np.int64).reshape(-1)
    mult = np.asarray(p.quant.multiplier, dtype=np.int64)
    shift = np.asarray(p.quant.shift, dtype=np.int64)
    out = multiply_by_quantized_multiplier(acc, mult, shift) + p.output_zp
    return np.clip(out, p.activation.min, p.activation.max).astype(np.int8)


def _padded(x: np.ndarray, p, zp: int) -> np.ndarray:
    """x - zp (int64), zero-padded so that every tap of every output pixel is inside the array."""
    win = p.window
    eff_h = (win.filter.h - 1) * win.dilation.h + 1
    eff_w = (win.filter.w - 1) * win.dilation.w + 1
    need_h = (p.output.h - 1) * win.stride.h + eff_h
    need_w = (p.output.w - 1) * win.stride.w + eff_w
    top, left = win.pad.h, win.pad.w
    bottom = max(need_h - p.input.h - top, 0)
    right = max(need_w - p.input.w - left, 0)
    xs = x.astype(np.int64) - zp
    # Padding taps contribute 0 because the zero is added after the offset subtraction (TFLite skips them).
    return np.pad(xs, ((0, 0), (top, bottom), (left, right), (0, 0)))


def _tap(xs: np.ndarray, p, ky: int, kx: int) -> np.ndarray:
    """The input values seen by filter tap (ky, kx) for every output pixel: [n, out_h, out_w, c]."""
    win = p.window
    y0 = ky * win.dilation.h
    x0 = kx * win.dilation.w
    return xs[
        :,
        y0 : y0 + (p.output.h - 1) * win.stride.h + 1 : win.stride.h,
        x0 : x0 + (p.output.w - 1) * win.stride.w + 1 : win.stride.w,
        :,
    ]


def conv_accumulate(p, x, w, depthwise: bool, input_zp: int) -> np.ndarray:
    """The exact accumulator (int64, without bias) of CONV_2D (OHWI w) or DEPTHWISE_CONV_2D (1HWC w) over x - input_zp:
    [n, out_h, out_w, out_c]. Shared by the int8 and the 16x8 references."""
    i, o, f = p.input, p.output, p.window.filter
    xs = _padded(np.asarray(x).reshape(i.n, i.h, i.w, i.c), p, input_zp)
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
    return acc


def _conv_like(layer, inputs, out_shapes, depthwise: bool):
    p = layer.params
    x, w, b = inputs
    return [_requantize(conv_accumulate(p, x, w, depthwise, p.input_zp), p, b).reshape(out_shapes[0])]


@reference("mcuq_conv2d_s8")
def conv2d_s8(layer, inputs, out_shapes):
    return _conv_like(layer, inputs, out_shapes, depthwise=False)


@reference("mcuq_depthwise_conv2d_s8")
def depthwise_conv2d_s8(layer, inputs, out_shapes):
    return _conv_like(layer, inputs, out_shapes, depthwise=True)


@reference("mcuq_fully_connected_s8")
def fully_connected_s8(layer, inputs, out_shapes):
    p = layer.params
    x, w, b = inputs
    x = np.asarray(x, dtype=np.int64).reshape(p.batches, p.input_size) - p.input_zp
    w = np.asarray(w, dtype=np.int64).reshape(p.output_size, p.input_size) - p.weights_zp
    return [_requantize(x @ w.T, p, b).reshape(out_shapes[0])]
