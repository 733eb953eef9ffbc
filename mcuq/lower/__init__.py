"""Lower an IR graph to kernel calls with integer parameters (see base.py for the contract)."""

from __future__ import annotations

import numpy as np

from ..errors import ModelError
from ..ir import Graph
from . import conv, elementwise, pool, shape, softmax  # noqa: F401  (register the lowerings)
from .base import LOWERINGS, Layer, lowering

__all__ = ["LOWERINGS", "Layer", "lower", "lowering", "supported_ops"]


def supported_ops() -> list[str]:
    return sorted(k.value for k in LOWERINGS)


def lower(g: Graph) -> tuple[Layer, ...]:
    layers = []
    for op in g.ops:
        fn = LOWERINGS.get(op.kind)
        if fn is None:
            raise ModelError(g.source, f"{op.where}: not supported; supported ops: {', '.join(supported_ops())}")
        layer = fn(g, op)
        check_shifts(g, layer)
        layers.append(layer)
    return tuple(layers)


def check_shifts(g: Graph, layer: Layer) -> None:
    """Static check shared by every kernel: each shift parameter fits the C helpers' range [-31, 31]."""
    for name, value in layer.params.items():
        if "shift" not in name:
            continue
        vals = np.asarray(value).reshape(-1)
        if vals.size and (int(vals.min()) < -31 or int(vals.max()) > 31):
            raise ModelError(
                g.source,
                f"{layer.op.where}: {name} {int(vals.min())}..{int(vals.max())} is outside [-31, 31]; the "
                "quantization scales of this op are too far apart for fixed-point rescaling",
            )
