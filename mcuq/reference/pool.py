"""numpy mirrors of runtime_c/src/pool/*.c: average and max pooling, MEAN (see mcuq/lower/pool.py), one mirror for
the int8 and the int16 (16x8 mode) kernel of each op, on the element type of the layer's kernel."""

from __future__ import annotations

import numpy as np

from ..kernels.pool import MeanParams, Pool2DParams
from ..quant.fixedpoint import multiply_by_quantized_multiplier
from .base import reference


def _dtype(layer) -> type[np.signedinteger]:
    return np.int16 if layer.kernel.dtype == "s16" else np.int8


def _trunc_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """C integer division (truncation toward zero) of int64 arrays, b > 0."""
    q = np.abs(a) // b
    return np.where(a < 0, -q, q)


def pool2d(x: np.ndarray, p: Pool2DParams, average: bool, dtype: type[np.signedinteger]) -> np.ndarray:
    """TFLite's reference_integer_ops::AveragePool / MaxPool (int8 or int16): in-bounds taps only; the average
    rounds half away from zero with C division."""
    n, h, w, c = x.shape
    oh, ow = p.output.h, p.output.w
    win = p.window
    out = np.empty((n, oh, ow, c), dtype=np.int64)
    xi = np.asarray(x, dtype=np.int64)
    for oy in range(oh):
        y0 = oy * win.stride.h - win.pad.h
        ys, ye = max(0, y0), min(h, y0 + win.filter.h)
        for ox in range(ow):
            x0 = ox * win.stride.w - win.pad.w
            xs, xe = max(0, x0), min(w, x0 + win.filter.w)
            window = xi[:, ys:ye, xs:xe, :]
            if average:
                count = (ye - ys) * (xe - xs)
                acc = window.sum(axis=(1, 2))
                # TFLite: acc > 0 ? (acc + count/2) / count : (acc - count/2) / count, in C division
                out[:, oy, ox, :] = _trunc_div(np.where(acc > 0, acc + count // 2, acc - count // 2), count)
            else:
                out[:, oy, ox, :] = window.max(axis=(1, 2))
    return np.clip(out, p.activation.min, p.activation.max).astype(dtype)


@reference("mcuq_average_pool2d_s8", "mcuq_average_pool2d_s16")
def ref_average_pool2d(layer, inputs: list, out_shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
    return [pool2d(np.asarray(inputs[0]), layer.params, True, _dtype(layer)).reshape(out_shapes[0])]


@reference("mcuq_max_pool2d_s8", "mcuq_max_pool2d_s16")
def ref_max_pool2d(layer, inputs: list, out_shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
    return [pool2d(np.asarray(inputs[0]), layer.params, False, _dtype(layer)).reshape(out_shapes[0])]


def mean(x: np.ndarray, p: MeanParams, dtype: type[np.signedinteger]) -> np.ndarray:
    """MEAN from the lowered parameters: gather with the (dims, strides) decomposition the C kernel walks."""
    flat = np.asarray(x, dtype=np.int64).ravel()
    kept = np.zeros(1, dtype=np.int64)
    for d, st in zip(p.kept_dims, p.kept_strides, strict=True):
        kept = (kept[:, None] + np.arange(int(d), dtype=np.int64)[None, :] * int(st)).ravel()
    red = np.zeros(1, dtype=np.int64)
    for d, st in zip(p.reduced_dims, p.reduced_strides, strict=True):
        red = (red[:, None] + np.arange(int(d), dtype=np.int64)[None, :] * int(st)).ravel()
    sums = flat[kept[:, None] + red[None, :]].sum(axis=1)
    acc = multiply_by_quantized_multiplier(sums - p.input_zp_sum, p.multiplier, p.shift)
    info = np.iinfo(dtype)
    return np.clip(acc + p.output_zp, info.min, info.max).astype(dtype)


@reference("mcuq_mean_s8", "mcuq_mean_s16")
def ref_mean(layer, inputs: list, out_shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
    return [mean(np.asarray(inputs[0]), layer.params, _dtype(layer)).reshape(out_shapes[0])]
