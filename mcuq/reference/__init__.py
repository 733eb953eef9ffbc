"""numpy mirrors of the C kernels (bit-exact), used by tests and per-layer bisection."""

from __future__ import annotations

import numpy as np

from . import conv, elementwise, pool, shape, softmax  # noqa: F401  (register the mirrors)
from .base import REFERENCES, reference
from .graph import run_graph

__all__ = ["REFERENCES", "reference", "run_graph", "run_layer"]


def run_layer(layer, inputs: list, out_shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
    if layer.alias:
        return [np.asarray(inputs[0]).reshape(out_shapes[0])]
    assert layer.base is None, "run_layer takes the portable layer (its inputs are the portable kernel's)"
    fn = REFERENCES[layer.kernel.name]
    return fn(layer, inputs, out_shapes)
