"""Per-layer precision of the quantizer: data, not code paths.

A *layer* is a weighted op (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED) of the float graph after the folding
passes, named by its ``op.name`` (what ``mcuq inspect`` and the quantization report show). Each layer gets a
``LayerPrecision``: its weight width (8, or 4, 2 = ternary, 1 = binary, all per-channel symmetric in the narrow
range) and the type of its activations ("int8", or "int16": TFLite's 16x8 mode). ``resolve`` turns the user's
uniform values or per-layer mappings into one ``LayerPrecision`` per layer, refusing unknown names and values in
one line that lists the valid ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..errors import McuqError, printable
from ..ir import DType, Graph, OpKind

WEIGHT_BITS = (8, 4, 2, 1)
ACTIVATIONS = ("int8", "int16")
ROUNDINGS = ("auto", "nearest", "gptq", "adaround")
WEIGHTED_KINDS = (OpKind.CONV2D, OpKind.DEPTHWISE_CONV2D, OpKind.FULLY_CONNECTED)
# The IR type of a weight tensor at each width: sub-8-bit ones are packed in flash, unpacked int8 values in the IR.
WEIGHT_DTYPE = {8: DType.INT8, 4: DType.INT4, 2: DType.INT2, 1: DType.INT1}
ACT_DTYPE = {"int8": DType.INT8, "int16": DType.INT16}
# The narrow range of each width: [-qmax, qmax] (binary: {-1, +1}, no zero).
QMAX = {8: 127, 4: 7, 2: 1, 1: 1}


@dataclass(frozen=True)
class LayerPrecision:
    weight_bits: int = 8
    activations: str = "int8"

    @property
    def weight_dtype(self) -> DType:
        return WEIGHT_DTYPE[self.weight_bits]

    @property
    def act_dtype(self) -> DType:
        return ACT_DTYPE[self.activations]


def layer_names(g: Graph) -> list[str]:
    """The weighted ops of ``g`` (a float graph after ``FLOAT_PIPELINE``), in op order."""
    return [op.name for op in g.ops if op.kind in WEIGHTED_KINDS]


def resolve_rounding(rounding: str, bits: int) -> str:
    """The rounding a layer at ``bits`` gets: "auto" is GPTQ at 4 bits and below, round-to-nearest at 8."""
    if rounding == "auto":
        return "gptq" if bits <= 4 else "nearest"
    return rounding


def check_rounding(rounding: object) -> str:
    if not isinstance(rounding, str) or rounding not in ROUNDINGS:
        raise McuqError(f"quantize: rounding {rounding!r} is not one of {', '.join(ROUNDINGS)}")
    return rounding


def resolve(
    names: Sequence[str],
    weight_bits: int | Mapping[str, int] = 8,
    activations: str | Mapping[str, str] = "int8",
) -> dict[str, LayerPrecision]:
    """One ``LayerPrecision`` per layer name. A uniform value applies to every layer; a mapping gives some layers a
    value (the others keep the default: 8 bits, int8). McuqError (one line) for an unknown name or a bad value."""
    bits = _per_layer(names, weight_bits, WEIGHT_BITS, 8, "weight_bits")
    acts = _per_layer(names, activations, ACTIVATIONS, "int8", "activations")
    return {n: LayerPrecision(bits[n], acts[n]) for n in names}


def _per_layer(names: Sequence[str], value, valid: tuple, default, what: str) -> dict:
    def check(v, where: str):
        # bool is an int in Python: True must not pass for 1 bit.
        if isinstance(v, bool) or v not in valid or type(v) is not type(valid[0]):
            raise McuqError(f"quantize: {what}{where} {v!r} is not one of {', '.join(map(str, valid))}")
        return v

    if not isinstance(value, Mapping):
        return dict.fromkeys(names, check(value, ""))
    unknown = [k for k in value if k not in names]
    if unknown:
        raise McuqError(
            f"quantize: {what} names {printable_list(unknown)}, not a layer of the model; its layers are "
            f"{printable_list(names) if names else 'none (no conv, depthwise or fully-connected op)'}"
        )
    out = dict.fromkeys(names, default)
    for k, v in value.items():
        out[k] = check(v, f" of layer '{k}'")
    return out


def printable_list(names: Sequence[str], limit: int = 12) -> str:
    """Names quoted and comma-separated for a one-line message, the first ``limit`` of them."""
    shown = ", ".join(f"'{printable(n, 60)}'" for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
