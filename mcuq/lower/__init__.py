"""Lower an IR graph to kernel calls with integer parameters (see base.py for the contract)."""

from __future__ import annotations

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
        layers.append(fn(g, op))
    return tuple(layers)
