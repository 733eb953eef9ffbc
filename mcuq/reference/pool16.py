"""numpy mirrors of the int16 (16x8 mode) pooling and data-movement kernels: runtime_c/src/pool/*_s16.c and
runtime_c/src/shape/*_s16.c, computed from the same layer params as the C (see mcuq/kernels/pool16.py)."""

from __future__ import annotations

import numpy as np

from ..kernels.pool import MeanParams
from ..kernels.pool16 import Pool2DS16Params
from ..quant.fixedpoint import multiply_by_quantized_multiplier
from .base import reference
from .pool import _trunc_div

INT16_MIN, INT16_MAX = -32768, 32767


def pool2d_s16(x: np.ndarray, p: Pool2DS16Params, average: bool) -> np.ndarray:
    """TFLite's reference_integer_ops::AveragePool / MaxPool on int16: in-bounds taps only; the average rounds
    half away from zero with C division."""
    n, h, w, c = x.shape
    win = p.window
    out = np.empty((n, p.output.h, p.output.w, c), dtype=np.int64)
    xi = np.asarray(x, dtype=np.int64)
    for oy in range(p.output.h):
        y0 = oy * win.stride.h - win.pad.h
        ys, ye = max(0, y0), min(h, y0 + win.filter.h)
        for ox in range(p.output.w):
            x0 = ox * win.stride.w - win.pad.w
            xs, xe = max(0, x0), min(w, x0 + win.filter.w)
            window = xi[:, ys:ye, xs:xe, :]
            if average:
                count = (ye - ys) * (xe - xs)
                acc = window.sum(axis=(1, 2))
                out[:, oy, ox, :] = _trunc_div(np.where(acc > 0, acc + count // 2, acc - count // 2), count)
            else:
                out[:, oy, ox, :] = window.max(axis=(1, 2))
    return np.clip(out, p.activation.min, p.activation.max).astype(np.int16)


@reference("mcuq_average_pool2d_s16")
def ref_average_pool2d_s16(layer, inputs: list, out_shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
    return [pool2d_s16(np.asarray(inputs[0]), layer.params, average=True).reshape(out_shapes[0])]


@reference("mcuq_max_pool2d_s16")
def ref_max_pool2d_s16(layer, inputs: list, out_shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
    return [pool2d_s16(np.asarray(inputs[0]), layer.params, average=False).reshape(out_shapes[0])]


def mean_s16(x: np.ndarray, p: MeanParams) -> np.ndarray:
    """MEAN on int16 from the lowered parameters, walking the (dims, strides) decomposition as the C does."""
    flat = np.asarray(x, dtype=np.int64).ravel()
    kept = np.zeros(1, dtype=np.int64)
    for d, st in zip(p.kept_dims, p.kept_strides, strict=True):
        kept = (kept[:, None] + np.arange(int(d), dtype=np.int64)[None, :] * int(st)).ravel()
    red = np.zeros(1, dtype=np.int64)
    for d, st in zip(p.reduced_dims, p.reduced_strides, strict=True):
        red = (red[:, None] + np.arange(int(d), dtype=np.int64)[None, :] * int(st)).ravel()
    sums = flat[kept[:, None] + red[None, :]].sum(axis=1)
    acc = multiply_by_quantized_multiplier(sums - p.input_zp_sum, p.multiplier, p.shift)
    return np.clip(acc + p.output_zp, INT16_MIN, INT16_MAX).astype(np.int16)


@reference("mcuq_mean_s16")
def ref_mean_s16(layer, inputs: list, out_shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
    return [mean_s16(np.asarray(inputs[0]), layer.params).reshape(out_shapes[0])]


# -- data movement ----------------------------------------------------------------------------------------------


def _flat(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.int16).reshape(-1)


@reference("mcuq_copy_s16")
def copy_s16(layer, inputs: list, out_shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
    return [_flat(inputs[0])[: layer.params.size].copy().reshape(out_shapes[0])]


@reference("mcuq_pad_s16")
def pad_s16(layer, inputs: list, out_shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
    p = layer.params
    widths = [(int(b), int(a)) for b, a in zip(p.pad_before, p.pad_after, strict=True)]
    x = _flat(inputs[0]).reshape([int(d) for d in p.in_dims])
    return [np.pad(x, widths, mode="constant", constant_values=np.int16(p.pad_value)).reshape(out_shapes[0])]


@reference("mcuq_concatenation_s16")
def concatenation_s16(layer, inputs: list, out_shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
    p = layer.params
    sizes = [int(s) for s in p.copy_sizes[: p.num_inputs]]
    parts = [_flat(x).reshape(p.outer_size, n) for x, n in zip(inputs[0], sizes, strict=True)]
    return [np.concatenate(parts, axis=1).reshape(out_shapes[0])]


@reference("mcuq_transpose_s16")
def transpose_s16(layer, inputs: list, out_shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
    p = layer.params
    dims = tuple(int(d) for d in p.out_dims)
    x = _flat(inputs[0])
    strides = tuple(int(s) * x.itemsize for s in p.in_strides)  # as_strided counts bytes
    y = np.lib.stride_tricks.as_strided(x, shape=dims, strides=strides, writeable=False)
    return [np.ascontiguousarray(y).reshape(out_shapes[0])]
