"""The shared activation check of every int8 lowering: int8, per-tensor, positive scale, else a clear error."""

from __future__ import annotations

import pytest

from mcuq import ir
from mcuq.errors import ModelError
from mcuq.lower import lower

Q = ir.QParams((0.1,), (0,))


def graph(kind: ir.OpKind, attrs, x_q: ir.QParams | None, dtype: ir.DType = ir.DType.INT8) -> ir.Graph:
    t = {
        "x": ir.Tensor("x", (1, 4, 4, 2), dtype, x_q),
        "y": ir.Tensor("y", (1, 4, 4, 2), ir.DType.INT8, Q),
    }
    return ir.Graph("g", t, (ir.Op(kind, "op", ("x",), ("y",), attrs, 3),), ("x",), ("y",), source="m.tflite")


POOL = ir.Pool2DAttrs(ir.Padding.SAME, 1, 1, 2, 2)


@pytest.mark.parametrize(
    "kind,attrs",
    [
        (ir.OpKind.MAX_POOL2D, POOL),
        (ir.OpKind.RELU, ir.NoAttrs()),
        (ir.OpKind.TRANSPOSE, ir.TransposeAttrs((0, 1, 2, 3))),
    ],
)
@pytest.mark.parametrize(
    "x_q,dtype,reason",
    [
        (ir.QParams((0.1, 0.2), (0, 0), axis=3), ir.DType.INT8, "quantized per channel"),
        (ir.QParams((0.0,), (0,)), ir.DType.INT8, "scales must be positive"),
        (None, ir.DType.INT8, "no quantization parameters"),
        (Q, ir.DType.INT16, "is int16"),
    ],
)
def test_bad_activation_is_named(kind, attrs, x_q, dtype, reason):
    with pytest.raises(ModelError, match=reason) as e:
        lower(graph(kind, attrs, x_q, dtype))
    assert str(e.value).startswith(f"m.tflite: op 3 ({kind.name} 'op'): tensor 'x'")


def test_good_activation_lowers():
    assert lower(graph(ir.OpKind.MAX_POOL2D, POOL, Q))[0].kernel.name == "mcuq_max_pool2d_s8"
