"""numpy mirrors of runtime_c/src/shape/*.c, computed from the same layer params as the C kernels: one mirror for
the int8 and the int16 (16x8 mode) kernel of each op, on the element type of the layer's kernel."""

from __future__ import annotations

import numpy as np

from .base import reference


def _flat(x: np.ndarray, layer) -> np.ndarray:
    dtype = np.int16 if layer.kernel.dtype == "s16" else np.int8
    return np.ascontiguousarray(x, dtype=dtype).reshape(-1)


@reference("mcuq_copy_s8", "mcuq_copy_s16")
def copy(layer, inputs: list, out_shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
    n = layer.params.size
    return [_flat(inputs[0], layer)[:n].copy().reshape(out_shapes[0])]


@reference("mcuq_pad_s8", "mcuq_pad_s16")
def pad(layer, inputs: list, out_shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
    p = layer.params
    widths = [(int(b), int(a)) for b, a in zip(p.pad_before, p.pad_after, strict=True)]
    x = _flat(inputs[0], layer).reshape([int(d) for d in p.in_dims])
    y = np.pad(x, widths, mode="constant", constant_values=x.dtype.type(p.pad_value))
    return [y.reshape(out_shapes[0])]


@reference("mcuq_concatenation_s8", "mcuq_concatenation_s16")
def concatenation(layer, inputs: list, out_shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
    p = layer.params
    outer = p.outer_size
    sizes = [int(s) for s in p.copy_sizes[: p.num_inputs]]
    parts = [_flat(x, layer).reshape(outer, n) for x, n in zip(inputs[0], sizes, strict=True)]
    return [np.concatenate(parts, axis=1).reshape(out_shapes[0])]


@reference("mcuq_transpose_s8", "mcuq_transpose_s16")
def transpose(layer, inputs: list, out_shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
    p = layer.params
    dims = tuple(int(d) for d in p.out_dims)
    x = _flat(inputs[0], layer)
    strides = tuple(int(s) * x.itemsize for s in p.in_strides)  # as_strided counts bytes
    y = np.lib.stride_tricks.as_strided(x, shape=dims, strides=strides, writeable=False)
    return [np.ascontiguousarray(y).reshape(out_shapes[0])]
