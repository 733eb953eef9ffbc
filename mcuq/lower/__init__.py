"""Lower an IR graph to kernel calls with integer parameters (see base.py for the contract)."""

from __future__ import annotations

from ..errors import ModelError
from ..ir import DType, Graph, Op, OpKind
from ..kernels import out_of_range
from . import activations, conv, elementwise, pool, shape, softmax  # noqa: F401  (register the lowerings)
from .base import LOWERINGS, Layer, lowering
from .common import ActivationRangeError

__all__ = ["LOWERINGS", "Layer", "lower", "lower_op", "lowering", "supported_ops"]


# The inputs an op may leave absent (``""``): the bias of the ops with weights.
OPTIONAL_INPUTS = {OpKind.CONV2D: (2,), OpKind.DEPTHWISE_CONV2D: (2,), OpKind.FULLY_CONNECTED: (2,)}


def supported_ops() -> list[str]:
    return sorted(k.name for k in LOWERINGS)


def lower_op(g: Graph, op: Op) -> Layer:
    """One op's layer, after checking every parameter against the range its C struct field allows."""
    fn = LOWERINGS.get(op.kind)
    if fn is None:
        raise ModelError(g.source, f"{op.where}: not supported; supported ops: {', '.join(supported_ops())}")
    absent = [i for i, name in enumerate(op.inputs) if not name and i not in OPTIONAL_INPUTS.get(op.kind, ())]
    if absent or not all(op.outputs):
        what = f"input {absent[0]}" if absent else "an output"
        raise ModelError(g.source, f"{op.where}: {what} is missing (an empty tensor name); only a bias may be absent")
    try:
        layer = fn(g, op)
    except ActivationRangeError as e:
        raise ModelError(g.source, f"{op.where}: {e}") from None
    check_ranges(g, layer)
    return layer


def lower(g: Graph) -> tuple[Layer, ...]:
    """Every op of an integer graph as a kernel call (float graphs are refused: quantize them first)."""
    check_quantized(g)
    return tuple(lower_op(g, op) for op in g.ops)


def check_quantized(g: Graph) -> None:
    """Reject float graphs with a clear error before lowering, saying how to quantize them: the commands that
    compile take --calib (``mcuq.cli``), and ``mcuq.quantize`` is the same in Python."""
    for op in g.ops:
        for name in (*op.inputs, *op.outputs):
            if name and g.tensors[name].dtype == DType.FLOAT32:
                raise ModelError(
                    g.source,
                    # the hint first: a long op or tensor name must not push it out of a shortened line
                    "a float32 model: add --calib DATA to quantize it (or run `mcuq quantize`; in Python "
                    "mcuq.quantize(model, calib)); DATA: calibration samples (.npy, .npz or a folder of .npy); "
                    f"mcuq compiles int8 models, and tensor '{name}' of {op.where} is float32",
                )


def check_ranges(g: Graph, layer: Layer) -> None:
    """Static check shared by every kernel: each parameter lies in the range its C field documents (shifts in
    [-31, 31] for the fixed-point helpers, zero points and clamp bounds in int8, sizes positive)."""
    if layer.params is None:
        return
    bad = out_of_range(layer.params)
    if bad:
        raise ModelError(
            g.source,
            f"{layer.op.where}: {bad[0]}"
            + (
                "; the quantization scales of this op are too far apart for fixed-point rescaling"
                if "shift" in bad[0]
                else ""
            ),
        )
