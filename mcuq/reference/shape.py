"""numpy mirrors of runtime_c/src/shape/*.c, computed from the same layer params as the C kernels."""

from __future__ import annotations

import numpy as np

from .base import reference


def _flat(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.int8).reshape(-1)


@reference("mcuq_copy_s8")
def copy_s8(layer, inputs: list, out_shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
    n = layer.params.size
    return [_flat(inputs[0])[:n].copy().reshape(out_shapes[0])]


@reference("mcuq_pad_s8")
def pad_s8(layer, inputs: list, out_shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
    p = layer.params
    widths = [(int(b), int(a)) for b, a in zip(p.pad_before, p.pad_after, strict=True)]
    x = _flat(inputs[0]).reshape([int(d) for d in p.in_dims])
    y = np.pad(x, widths, mode="constant", constant_values=np.int8(p.pad_value))
    return [y.reshape(out_shapes[0])]


@reference("mcuq_concatenation_s8")
def concatenation_s8(layer, inputs: list, out_shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
    p = layer.params
    outer = p.outer_size
    sizes = [int(s) for s in p.copy_sizes[: p.num_inputs]]
    parts = [_flat(x).reshape(outer, n) for x, n in zip(inputs[0], sizes, strict=True)]
    return [np.concatenate(parts, axis=1).reshape(out_shapes[0])]


@reference("mcuq_transpose_s8")
def transpose_s8(layer, inputs: list, out_shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
    p = layer.params
    dims = tuple(int(d) for d in p.out_dims)
    strides = tuple(int(s) for s in p.in_strides)
    x = _flat(inputs[0])
    y = np.lib.stride_tricks.as_strided(x, shape=dims, strides=strides, writeable=False)
    return [np.ascontiguousarray(y).reshape(out_shapes[0])]
