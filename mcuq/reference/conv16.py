"""numpy mirrors of the 16x8 convolution kernels (runtime_c/src/conv/mcuq_*_s16.c), bit-exact.

The weights arrive as int8 values whatever their width (``Tensor.data`` of a packed tensor holds them unpacked;
the C reads the packed bytes). Accumulation is exact in int64; with ``acc64 == 0`` the lowering has proved that the
C's int32 accumulator cannot overflow, so it is the same number.
"""

from __future__ import annotations

import numpy as np

from ..quant.fixedpoint import multiply_by_quantized_multiplier, multiply_by_quantized_multiplier_s64
from .base import reference
from .conv import conv_accumulate


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


def _conv_like(layer, inputs, out_shapes, depthwise: bool):
    p = layer.params
    x, w, b = inputs
    return [requantize_s16(conv_accumulate(p, x, w, depthwise, 0), p, b).reshape(out_shapes[0])]


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
