"""numpy mirrors of the C kernels (bit-exact), used by tests and per-layer bisection."""

from __future__ import annotations

import numpy as np

from . import conv, conv16, elementwise, elementwise16, lowbit, pool, shape, softmax  # noqa: F401  (register the mirrors)
from .base import REFERENCES, reference
from .graph import run_graph

__all__ = ["REFERENCES", "portable_layers", "reference", "run_graph", "run_layer"]


def portable_layers(layer) -> tuple:
    """The portable layers that compute what a compiled layer computes, in order: itself, the layer a fast
    variant replaced (``Layer.base``), or a band's two convolutions. ``run_layer`` takes these."""
    if layer.parts:
        return tuple(p for part in layer.parts for p in portable_layers(part))
    return (layer.base,) if layer.base is not None else (layer,)


def run_layer(layer, inputs: list, out_shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
    if layer.alias:
        return [np.asarray(inputs[0]).reshape(out_shapes[0])]
    assert layer.base is None and not layer.parts, "run_layer takes portable layers (see portable_layers)"
    fn = REFERENCES[layer.kernel.name]
    return fn(layer, inputs, out_shapes)
