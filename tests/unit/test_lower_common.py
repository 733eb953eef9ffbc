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


def _mul_graph(out_scale: float, act: ir.Activation, in_scale: float = 4e-6) -> ir.Graph:
    q = ir.QParams((in_scale,), (0,))
    t = {
        "a": ir.Tensor("a", (1, 4), ir.DType.INT8, q),
        "b": ir.Tensor("b", (1, 4), ir.DType.INT8, q),
        "y": ir.Tensor("y", (1, 4), ir.DType.INT8, ir.QParams((out_scale,), (-128,))),
    }
    op = ir.Op(ir.OpKind.MUL, "y", ("a", "b"), ("y",), ir.BinaryAttrs(act), 0, origin="MUL")
    return ir.Graph("m", t, (op,), ("a", "b"), ("y",), source="m.tflite")


def test_fused_activation_bound_overflowing_int32_is_refused_like_tflite() -> None:
    """TFLite's Prepare refuses a fused activation whose bound / scale overflows int32 (fuzz-ops seed 0:890)."""
    from mcuq.lower import lower

    with pytest.raises(ModelError, match=r"op 0 \(MUL 'y'\): output scale .* too small for the fused RELU_N1_TO_1"):
        lower(_mul_graph(4.2e-10, ir.Activation.RELU_N1_TO_1))
    lower(_mul_graph(4.2e-3, ir.Activation.RELU_N1_TO_1))  # a sane scale lowers


def test_add_scales_overflowing_float32_are_a_clear_error() -> None:
    """2 * max(s1, s2) overflows float32: a ModelError naming the op, not a numpy warning (mutant digits:7632)."""
    import warnings

    from mcuq.lower import lower

    g = _mul_graph(0.1, ir.Activation.NONE, in_scale=3e38)
    g = ir.Graph(g.name, g.tensors, (ir.Op(ir.OpKind.ADD, "y", ("a", "b"), ("y",), ir.BinaryAttrs(), 0),), g.inputs,
                 g.outputs, source=g.source)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ModelError, match="overflow float32"):
            lower(g)


def test_model_error_is_one_printable_line() -> None:
    """A ModelError carrying raw tensor names is itself one printable line of bounded length (fuzz: 19 mutants)."""
    from mcuq.errors import MESSAGE_LIMIT

    e = ModelError("m.tflite", "tensor 'a\nb\x1b[2J\x00' has a negative dimension: " + "(-1, " * 5000)
    text = str(e)
    assert "\n" not in text and text.isprintable() and len(text) <= MESSAGE_LIMIT
    assert text.startswith("m.tflite: tensor 'a\\nb\\x1b[2J\\x00'")
