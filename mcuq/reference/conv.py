"""numpy mirrors of runtime_c/src/conv/*.c (bit-exact): CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED.

Accumulation is done in int64; the lowering proves statically that the int32 accumulator of the C kernels
cannot overflow, so the results are identical.
"""

from __future__ import annotations

import numpy as np

from ..quantize.fixedpoint import multiply_by_quantized_multiplier
from .base import reference


def _requantize(acc: np.ndarray, p: dict, bias: np.ndarray | None) -> np.ndarray:
    """acc [..., C] int64 -> int8 with per-channel (or broadcast) multiplier/shift along the last axis."""
    if bias is not None:
        acc = acc + np.asarray(bias, dtype=np.int64).reshape(-1)
    mult = np.asarray(p["multiplier"], dtype=np.int64)
    shift = np.asarray(p["shift"], dtype=np.int64)
    out = multiply_by_quantized_multiplier(acc, mult, shift) + p["output_zp"]
    return np.clip(out, p["act_min"], p["act_max"]).astype(np.int8)


def _padded(x: np.ndarray, p: dict) -> tuple[np.ndarray, int, int]:
    """x - input_zp (int64), zero-padded so that every tap of every output pixel is inside the array."""
    n, h, w, c = x.shape
    eff_h = (p["filter_h"] - 1) * p["dilation_h"] + 1
    eff_w = (p["filter_w"] - 1) * p["dilation_w"] + 1
    need_h = (p["output_h"] - 1) * p["stride_h"] + eff_h
    need_w = (p["output_w"] - 1) * p["stride_w"] + eff_w
    top, left = p["pad_h"], p["pad_w"]
    bottom = max(need_h - h - top, 0)
    right = max(need_w - w - left, 0)
    xs = x.astype(np.int64) - p["input_zp"]
    # Padding taps contribute 0 because the zero is added after the offset subtraction (TFLite skips them).
    xs = np.pad(xs, ((0, 0), (top, bottom), (left, right), (0, 0)))
    return xs, top, left


def _tap(xs: np.ndarray, p: dict, ky: int, kx: int) -> np.ndarray:
    """The input values seen by filter tap (ky, kx) for every output pixel: [n, out_h, out_w, c]."""
    y0 = ky * p["dilation_h"]
    x0 = kx * p["dilation_w"]
    return xs[
        :,
        y0 : y0 + (p["output_h"] - 1) * p["stride_h"] + 1 : p["stride_h"],
        x0 : x0 + (p["output_w"] - 1) * p["stride_w"] + 1 : p["stride_w"],
        :,
    ]


@reference("mcuq_conv2d_s8")
def conv2d_s8(layer, inputs, out_shapes):
    p = layer.params
    x, w, b = inputs
    x = np.asarray(x).reshape(p["batches"], p["input_h"], p["input_w"], p["input_c"])
    w = np.asarray(w, dtype=np.int64).reshape(p["output_c"], p["filter_h"], p["filter_w"], p["input_c"])
    xs, _, _ = _padded(x, p)
    acc = np.zeros((p["batches"], p["output_h"], p["output_w"], p["output_c"]), dtype=np.int64)
    for ky in range(p["filter_h"]):
        for kx in range(p["filter_w"]):
            acc += _tap(xs, p, ky, kx) @ w[:, ky, kx, :].T
    return [_requantize(acc, p, b).reshape(out_shapes[0])]


@reference("mcuq_depthwise_conv2d_s8")
def depthwise_conv2d_s8(layer, inputs, out_shapes):
    p = layer.params
    x, w, b = inputs
    x = np.asarray(x).reshape(p["batches"], p["input_h"], p["input_w"], p["input_c"])
    w = np.asarray(w, dtype=np.int64).reshape(p["filter_h"], p["filter_w"], p["output_c"])
    xs, _, _ = _padded(x, p)
    # Output channel c * depth_multiplier + m reads input channel c.
    xs = np.repeat(xs, p["depth_multiplier"], axis=3)
    acc = np.zeros((p["batches"], p["output_h"], p["output_w"], p["output_c"]), dtype=np.int64)
    for ky in range(p["filter_h"]):
        for kx in range(p["filter_w"]):
            acc += _tap(xs, p, ky, kx) * w[ky, kx, :]
    return [_requantize(acc, p, b).reshape(out_shapes[0])]


@reference("mcuq_fully_connected_s8")
def fully_connected_s8(layer, inputs, out_shapes):
    p = layer.params
    x, w, b = inputs
    x = np.asarray(x, dtype=np.int64).reshape(p["batches"], p["input_size"]) - p["input_zp"]
    w = np.asarray(w, dtype=np.int64).reshape(p["output_size"], p["input_size"]) - p["weights_zp"]
    acc = x @ w.T
    return [_requantize(acc, p, b).reshape(out_shapes[0])]
