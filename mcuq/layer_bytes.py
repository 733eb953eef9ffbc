"""Each weighted layer's precision and flash bytes, as the generated C holds them: for `mcuq inspect`,
`mcuq compile --json` and the comment of the generated header.

A weighted layer is a CONV2D, DEPTHWISE_CONV2D or FULLY_CONNECTED (a band's two convolutions count as two).
Its flash is the weight tensor as stored (packed for INT4/INT2/INT1: ``DType.nbytes``), the bias, and the
per-channel multipliers and shifts of its requantization.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .ir import Graph, OpKind
from .lower.base import Layer

WEIGHTED = (OpKind.CONV2D, OpKind.DEPTHWISE_CONV2D, OpKind.FULLY_CONNECTED)


@dataclass(frozen=True)
class LayerBytes:
    layer: int  # index of the generated layer (a band holds two weighted ops)
    op: str  # the op's name, as it is (print it through errors.printable)
    kind: str  # CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED
    weights: str  # int8, int4, int2 or int1
    weight_bits: int
    activations: str  # the input activation's dtype: int8 or int16
    weight_values: int  # elements of the weight tensor (its bytes at int8)
    weight_bytes: int  # the weight tensor as stored in flash (packed below 8 bits)
    bias_bytes: int
    rescale_bytes: int  # per-channel multipliers and shifts

    @property
    def flash_bytes(self) -> int:
        return self.weight_bytes + self.bias_bytes + self.rescale_bytes

    def as_dict(self) -> dict:
        return {**asdict(self), "flash_bytes": self.flash_bytes}


def _rescale_bytes(layer: Layer) -> int:
    for candidate in (layer, layer.base):
        q = getattr(candidate.params, "quant", None) if candidate is not None else None
        if q is not None:
            return int(q.multiplier.nbytes + q.shift.nbytes)
    return 0


def layer_precisions(g: Graph, layers: tuple[Layer, ...]) -> list[LayerBytes]:
    """One entry per weighted op, in layer order."""
    out = []
    for li, layer in enumerate(layers):
        for part in layer.parts or (layer,):
            op = part.op
            if op.kind not in WEIGHTED or len(op.inputs) < 2 or op.inputs[1] not in g.tensors:
                continue
            w = g.tensors[op.inputs[1]]
            b = g.tensors.get(op.inputs[2]) if len(op.inputs) > 2 and op.inputs[2] else None
            x = g.tensors[op.inputs[0]]
            out.append(
                LayerBytes(
                    layer=li,
                    op=op.name,
                    kind=op.type_name,
                    weights=w.dtype.value,
                    weight_bits=w.dtype.bits,
                    activations=x.dtype.value,
                    weight_values=w.size,
                    weight_bytes=w.nbytes,
                    bias_bytes=b.nbytes if b is not None else 0,
                    rescale_bytes=_rescale_bytes(part.base or part),
                )
            )
    return out
