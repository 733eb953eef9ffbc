"""Lowering of AVERAGE_POOL_2D, MAX_POOL_2D and MEAN (int8 and int16) to integer kernel parameters.

What tflite-runtime 2.14 does with BUILTIN_REF kernels (checked against the interpreter):

* Pooling (kernels/pooling.cc, reference_integer_ops/pooling.h): the window is clamped to the input (padding
  is never read), AVERAGE sums the *raw* int8 values and divides by the number of in-bounds taps, rounding half
  away from zero with C division; MAX takes the largest raw value; both clamp to the fused activation's
  bounds (CalculateActivationRangeQuantized on the output). The equality of input and output quantization is
  only a TFLITE_DCHECK, compiled out of release builds: a mismatched model runs without requantizing, and so
  do we (with a warning).
* MEAN (kernels/reduce.cc, reference_ops::QuantizedMeanOrSum): one integer-only path for every axis set and
  keep_dims, also when input and output quantization are equal (the older float, "special 4-D" and truncating
  paths are not what 2.14's int8 kernel does). PrepareMeanOrSum quantizes double(s_in) / double(s_out) with
  QuantizeMultiplier into (multiplier, shift); Eval folds 1/n into it:
  ``s = min(floor(log2 n), 32, 31 + shift)``, ``multiplier' = (multiplier << s) // n``, ``shift' = shift - s``,
  then each output is ``clamp(MultiplyByQuantizedMultiplier(sum(x) - zp_in * n, multiplier', shift') + zp_out)``.
  No float is used at run time, in TFLite or here.
* 16x8 mode (int16 activations, zero points 0): the same kernels on int16 (AveragePool / MaxPool int16, whose
  Prepare compares no quantization at all; MEAN's QuantizedMeanOrSum with an int32 sum, which limits a mean
  to 65,535 elements and an average pool to 65,535 taps), clamped to [-32768, 32767].
"""

from __future__ import annotations

import logging

import numpy as np

from ..ir import DType, Graph, MeanAttrs, Op, OpKind, Pool2DAttrs, Tensor
from ..kernels.pool import AVERAGE_POOL2D_S8, MAX_POOL2D_S8, MEAN_MAX_DIMS, MEAN_S8, MeanParams, Pool2DParams
from ..kernels.pool16 import AVERAGE_POOL2D_S16, MAX_POOL2D_S16, MEAN_S16, POOL_S16_MAX_TAPS, Pool2DS16Params
from ..kernels.types import ActivationRange16, Dims
from ..quant.fixedpoint import INT32_MAX, quantize_multiplier
from .base import Layer, fail, lowering
from .common import activation_bounds, activation_range, max_abs_offset, require_act
from .window import window

log = logging.getLogger(__name__)


def _one_in_one_out(g: Graph, op: Op, what: str) -> tuple[Tensor, Tensor]:
    """The input and output of an op that takes exactly one of each (``what`` says so otherwise), both int8 or
    both int16 (16x8 mode, symmetric)."""
    if len(op.inputs) != 1 or len(op.outputs) != 1:
        raise fail(g, op, what)
    x, y = require_act(g, op, op.inputs[0], op.outputs[0])
    return x, y


@lowering(OpKind.AVG_POOL2D, OpKind.MAX_POOL2D)
def lower_pool2d(g: Graph, op: Op) -> Layer:
    attrs = op.attrs
    assert isinstance(attrs, Pool2DAttrs)
    x, y = _one_in_one_out(g, op, "pooling takes one input and one output")
    if len(x.shape) != 4 or len(y.shape) != 4:
        raise fail(g, op, f"pooling needs 4-D NHWC input and output, got {x.shape} -> {y.shape}")
    if min(attrs.stride_h, attrs.stride_w, attrs.filter_h, attrs.filter_w) < 1:
        raise fail(g, op, "strides and filter sizes must be >= 1")
    n, h, w, c = (int(d) for d in x.shape)
    (oh, ow), win = window(attrs.padding, (h, w), (attrs.filter_h, attrs.filter_w), (attrs.stride_h, attrs.stride_w))
    if tuple(y.shape) != (n, oh, ow, c):
        raise fail(g, op, f"output shape {y.shape} does not match the computed shape {(n, oh, ow, c)}")
    if min(n, oh, ow, c) < 1:
        raise fail(g, op, "empty output")
    if attrs.filter_h * attrs.filter_w > (1 << 23):
        raise fail(g, op, "pooling window too large for an int32 sum")
    s16 = x.dtype == DType.INT16
    if s16 and op.kind == OpKind.AVG_POOL2D and min(attrs.filter_h, h) * min(attrs.filter_w, w) > POOL_S16_MAX_TAPS:
        # TFLite's int32 sum of int16 values (plus its rounding term) could overflow beyond this many taps
        raise fail(g, op, f"int16 average pooling over more than {POOL_S16_MAX_TAPS} taps could overflow an int32 sum")
    if np.float32(x.scale) != np.float32(y.scale) or x.zero_point != y.zero_point:
        log.warning(
            "%s: input and output quantization differ; TFLite does not requantize pooling and neither does mcuq",
            op.where,
        )
    # TFLite's CalculateActivationRangeQuantized on the output (int16: within [-32768, 32767])
    activation = (
        ActivationRange16(*activation_bounds(attrs.activation, y)) if s16 else activation_range(attrs.activation, y)
    )
    if activation.min > activation.max:
        raise fail(g, op, f"empty activation range [{activation.min}, {activation.max}]")
    dims = {"input": Dims(n, h, w, c), "output": Dims(n, oh, ow, c), "window": win, "activation": activation}
    if s16:
        kernel = AVERAGE_POOL2D_S16 if op.kind == OpKind.AVG_POOL2D else MAX_POOL2D_S16
        return Layer(op=op, kernel=kernel, params=Pool2DS16Params(**dims), args=(op.inputs[0], op.outputs[0]))
    return Layer(
        op=op,
        kernel=AVERAGE_POOL2D_S8 if op.kind == OpKind.AVG_POOL2D else MAX_POOL2D_S8,
        params=Pool2DParams(**dims),
        args=(op.inputs[0], op.outputs[0]),
    )


def reduction_dims(
    shape: tuple[int, ...], axes: tuple[int, ...]
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Split a row-major shape into (kept, reduced) lists of (size, element stride), outer to inner.

    Size-1 axes are dropped and neighbouring axes of the same kind merged, so a global average over H and W of
    an NHWC tensor becomes kept [(C, 1)], reduced [(H*W, C)]. An empty list is padded with (1, 0).
    """
    strides = [1] * len(shape)
    for i in range(len(shape) - 2, -1, -1):
        strides[i] = strides[i + 1] * int(shape[i + 1])
    groups: list[list[int]] = []  # [is_reduced, size, stride]
    for i, d in enumerate(shape):
        if d == 1:
            continue
        red = int(i in axes)
        if groups and groups[-1][0] == red:
            groups[-1][1] *= int(d)
            groups[-1][2] = strides[i]
        else:
            groups.append([red, int(d), strides[i]])
    kept = [(s, st) for r, s, st in groups if not r] or [(1, 0)]
    reduced = [(s, st) for r, s, st in groups if r] or [(1, 0)]
    return kept, reduced


def mean_multiplier(s_in: float, s_out: float, n: int) -> tuple[int, int, int, int]:
    """(multiplier, shift) from PrepareMeanOrSum, then the pair QuantizedMeanOrSum derives to divide by n."""
    real = float(np.float64(np.float32(s_in)) / np.float64(np.float32(s_out)))
    multiplier, shift = quantize_multiplier(real)
    s = min(n.bit_length() - 1, 32, 31 + shift)
    return multiplier, shift, (multiplier << s) // n, shift - s


@lowering(OpKind.MEAN)
def lower_mean(g: Graph, op: Op) -> Layer:
    attrs = op.attrs
    assert isinstance(attrs, MeanAttrs)
    x, y = _one_in_one_out(g, op, "MEAN takes one data input (the axes are attributes) and one output")
    shape = tuple(int(d) for d in x.shape)
    axes = tuple(sorted(set(attrs.axes)))
    if any(a < 0 or a >= len(shape) for a in axes):
        raise fail(g, op, f"axes {attrs.axes} out of range for rank {len(shape)}")
    if x.size == 0:
        raise fail(g, op, "MEAN of an empty tensor")
    n = 1
    for a in axes:
        n *= shape[a]
    kept_shape = tuple(1 if i in axes else d for i, d in enumerate(shape))
    if not attrs.keep_dims:
        kept_shape = tuple(d for i, d in enumerate(shape) if i not in axes)
    if tuple(y.shape) != kept_shape:
        raise fail(g, op, f"output shape {y.shape} does not match the reduced shape {kept_shape}")
    if not (x.scale > 0 and y.scale > 0):
        raise fail(g, op, f"scales must be positive (input {x.scale:g}, output {y.scale:g})")
    x_max = max_abs_offset(x.zero_point, x.dtype)  # int16 (16x8): zero points are 0, x_max = 32768
    if n * x_max > INT32_MAX:
        raise fail(g, op, f"MEAN over {n} elements could overflow TFLite's int32 sum")
    _, shift, mean_mult, mean_shift = mean_multiplier(x.scale, y.scale, n)
    if shift > 30:
        raise fail(g, op, f"input / output scale ratio {x.scale / y.scale:g} is too large (shift {shift} > 30)")
    if mean_shift > 0 and (n * x_max) << mean_shift > INT32_MAX:
        raise fail(
            g, op, f"input / output scale ratio {x.scale / y.scale:g} is too large: the shifted sum overflows int32"
        )
    kept, reduced = reduction_dims(shape, axes)
    if max(len(kept), len(reduced)) > MEAN_MAX_DIMS:
        raise fail(g, op, f"MEAN over more than {MEAN_MAX_DIMS} separate axis groups")

    def arr(vals: list[int]) -> np.ndarray:
        return np.asarray(vals, dtype=np.int32)

    params = MeanParams(
        num_outputs=y.size,
        num_reduced=n,
        kept_rank=len(kept),
        kept_dims=arr([s for s, _ in kept]),
        kept_strides=arr([st for _, st in kept]),
        reduced_rank=len(reduced),
        reduced_dims=arr([s for s, _ in reduced]),
        reduced_strides=arr([st for _, st in reduced]),
        input_zp_sum=x.zero_point * n,
        multiplier=int(mean_mult),
        shift=int(mean_shift),
        output_zp=y.zero_point,
    )
    kernel = MEAN_S16 if x.dtype == DType.INT16 else MEAN_S8
    return Layer(op=op, kernel=kernel, params=params, args=(op.inputs[0], op.outputs[0]))
