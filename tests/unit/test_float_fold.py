"""Float folding (mcuq.passes.fold): DEQUANTIZE of constants, batch-norm MUL/ADD/SUB into weights and bias,
standalone RELU/RELU6 into the producer's fused activation.

Every fold is checked three ways: the graph's outputs are unchanged (``run_graph`` on seeded random float32
inputs, before vs after), the structure is what the fold promises (ops gone, output names kept, ``ir.verify``),
and the cases that must not fold come back as the very same graph. Models also go through the TFLite writer and
reader, and through the oracle's float interpreter where tflite-runtime is installed.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from mcuq import ir
from mcuq.errors import ModelError
from mcuq.frontend.tflite import load
from mcuq.frontend.tflite_writer import write
from mcuq.lower import lower, lower_op
from mcuq.passes import FLOAT_PIPELINE, fold_batchnorm, fold_dequantize, fold_relu, run_passes
from mcuq.reference import run_graph
from tests.util import oracle

A, K, D = ir.Activation, ir.OpKind, ir.DType
F32 = D.FLOAT32
SAME = ir.Padding.SAME


class G:
    """A float graph built op by op: ``t`` declares tensors, ``op`` appends an op, ``graph`` checks and returns."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.tensors: dict[str, ir.Tensor] = {}
        self.ops: list[ir.Op] = []
        self.inputs: list[str] = []

    def t(self, name: str, shape: tuple[int, ...], data=None, dtype: D = F32, q: ir.QParams | None = None) -> str:
        if data is not None:
            data = np.ascontiguousarray(data, dtype=dtype.np)
            data.flags.writeable = False
        self.tensors[name] = ir.Tensor(name, tuple(shape), dtype, q, data)
        return name

    def inp(self, name: str, shape: tuple[int, ...]) -> str:
        self.inputs.append(self.t(name, shape))
        return name

    def const(self, name: str, shape: tuple[int, ...], scale: float = 0.5, offset: float = 0.0) -> str:
        return self.t(name, shape, self.rng.standard_normal(shape) * scale + offset)

    def op(self, kind: K, ins: tuple[str, ...], out: str, shape: tuple[int, ...], attrs: ir.Attrs) -> str:
        self.t(out, shape)
        self.ops.append(ir.Op(kind, out, ins, (out,), attrs, index=len(self.ops)))
        return out

    def graph(self, *outputs: str) -> ir.Graph:
        g = ir.Graph("g", dict(self.tensors), tuple(self.ops), tuple(self.inputs), outputs, source="t.tflite")
        ir.verify(g)
        return g


def conv(b: G, x: str, cout: int, *, bias: bool = True, act: A = A.NONE, out: str = "y") -> str:
    n, h, w, cin = b.tensors[x].shape
    ins = (x, b.const(f"{out}/w", (cout, 3, 3, cin)), b.const(f"{out}/b", (cout,), 0.1) if bias else "")
    return b.op(K.CONV2D, ins, out, (n, h, w, cout), ir.Conv2DAttrs(SAME, activation=act))


def depthwise(b: G, x: str, *, mult: int = 2, bias: bool = True, act: A = A.NONE, out: str = "y") -> str:
    n, h, w, cin = b.tensors[x].shape
    ins = (x, b.const(f"{out}/w", (1, 3, 3, cin * mult)), b.const(f"{out}/b", (cin * mult,), 0.1) if bias else "")
    attrs = ir.DepthwiseConv2DAttrs(SAME, depth_multiplier=mult, activation=act)
    return b.op(K.DEPTHWISE_CONV2D, ins, out, (n, h, w, cin * mult), attrs)


def fc(b: G, x: str, units: int, *, bias: bool = True, act: A = A.NONE, out: str = "y") -> str:
    n, cin = b.tensors[x].shape
    ins = (x, b.const(f"{out}/w", (units, cin)), b.const(f"{out}/b", (units,), 0.1) if bias else "")
    return b.op(K.FULLY_CONNECTED, ins, out, (n, units), ir.FullyConnectedAttrs(activation=act))


def binary(b: G, kind: K, lhs: str, rhs: str, out: str, act: A = A.NONE) -> str:
    shape = np.broadcast_shapes(b.tensors[lhs].shape, b.tensors[rhs].shape)
    return b.op(kind, (lhs, rhs), out, shape, ir.BinaryAttrs(act))


def unary(b: G, kind: K, x: str, out: str) -> str:
    return b.op(kind, (x,), out, b.tensors[x].shape, ir.NoAttrs())


def inputs_for(g: ir.Graph, seed: int) -> list[np.ndarray]:
    r = np.random.default_rng(seed)
    return [r.standard_normal(g.tensors[n].shape).astype(np.float32) * 2 for n in g.inputs]


def assert_same_outputs(before: ir.Graph, after: ir.Graph, samples: int = 3) -> None:
    """The graph outputs of ``after`` equal those of ``before`` (float32 rounding apart) on random inputs."""
    assert (after.inputs, after.outputs) == (before.inputs, before.outputs)
    for seed in range(samples):
        xs = inputs_for(before, seed)
        want, got = run_graph(before, xs, keep="outputs"), run_graph(after, xs, keep="outputs")
        for name in before.outputs:
            np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-6, err_msg=name)


def kinds(g: ir.Graph) -> list[K]:
    return [op.kind for op in g.ops]


# -- DEQUANTIZE ------------------------------------------------------------------------------------------------
def _rand_ints(r: np.random.Generator, dtype: D, shape: tuple[int, ...]) -> np.ndarray:
    lo, hi = dtype.int_range
    return r.integers(lo, hi + 1, shape)


# (dtype, qparams for an OHWI conv weight of 4 output channels, depth 3) per stored weight format
DEQUANT_CASES = {
    "float16": (D.FLOAT16, None),
    "int8": (D.INT8, ir.QParams((0.02,), (3,))),
    "int8_per_channel": (D.INT8, ir.QParams((0.01, 0.02, 0.005, 0.04), (0, 0, 0, 0), 0)),
    "int8_per_channel_axis3": (D.INT8, ir.QParams((0.01, 0.03, 0.02), (1, -2, 0), 3)),
    "uint8": (D.UINT8, ir.QParams((0.02,), (128,))),
    "int16": (D.INT16, ir.QParams((1e-4,), (0,))),
    "int16_per_channel": (D.INT16, ir.QParams((1e-4, 2e-4, 5e-5, 3e-4), (0, 0, 0, 0), 0)),
    "int4": (D.INT4, ir.QParams((0.25,), (0,))),
}


def _dequantized_conv(case: str, seed: int = 1) -> tuple[ir.Graph, np.ndarray]:
    """x -> CONV2D whose weights come from DEQUANTIZE of a constant stored as ``case``; also the float32 weights
    that DEQUANTIZE must give, computed here independently."""
    dtype, q = DEQUANT_CASES[case]
    b = G(seed)
    x = b.inp("x", (1, 5, 5, 3))
    shape = (4, 3, 3, 3)
    if dtype is D.FLOAT16:
        raw = (b.rng.standard_normal(shape) * 0.5).astype(np.float16)
        want = raw.astype(np.float32)
    else:
        raw = _rand_ints(b.rng, dtype, shape)
        s = np.asarray(q.scale, np.float32).astype(np.float64)
        z = np.asarray(q.zero_point, np.int64)
        if q.per_channel:
            s, z = (v.reshape([-1 if i == q.axis else 1 for i in range(4)]) for v in (s, z))
        want = ((raw - z) * s).astype(np.float32)
    b.t("wq", shape, raw, dtype, q)
    unary(b, K.DEQUANTIZE, "wq", "w")
    b.const("bias", (4,), 0.1)
    b.op(K.CONV2D, (x, "w", "bias"), "y", (1, 5, 5, 4), ir.Conv2DAttrs(SAME))
    return b.graph("y"), want


@pytest.mark.parametrize("case", sorted(DEQUANT_CASES))
def test_dequantize_of_a_constant_becomes_a_float_constant(case: str) -> None:
    g, want = _dequantized_conv(case)
    out = fold_dequantize(g)
    ir.verify(out)
    assert kinds(out) == [K.CONV2D] and out.ops[0].inputs == ("x", "w", "bias")
    w = out.tensors["w"]
    assert w.is_const and w.dtype is F32 and w.qparams is None and not w.data.flags.writeable
    np.testing.assert_array_equal(w.data, want)
    assert "wq" not in out.tensors  # no reader left
    assert_same_outputs(g, out)
    np.testing.assert_array_equal(run_graph(g, inputs_for(g, 0))["w"], want)  # the float kernel agrees


def test_dequantize_folds_one_constant_read_by_two() -> None:
    b = G()
    x = b.inp("x", (2, 6))
    b.t("wq", (6, 6), b.rng.integers(-127, 128, (6, 6)), D.INT8, ir.QParams((0.05,), (0,)))
    unary(b, K.DEQUANTIZE, "wq", "w1")
    unary(b, K.DEQUANTIZE, "wq", "w2")
    b.op(K.FULLY_CONNECTED, (x, "w1", ""), "h", (2, 6), ir.FullyConnectedAttrs())
    b.op(K.FULLY_CONNECTED, ("h", "w2", ""), "y", (2, 6), ir.FullyConnectedAttrs())
    g = b.graph("y")
    out = fold_dequantize(g)
    assert kinds(out) == [K.FULLY_CONNECTED] * 2 and "wq" not in out.tensors
    np.testing.assert_array_equal(out.tensors["w1"].data, out.tensors["w2"].data)
    assert_same_outputs(g, out)


def test_dequantize_that_cannot_fold_stays() -> None:
    # of an activation (an int8 graph input): the float kernel runs it
    b = G()
    b.inputs.append(b.t("xq", (2, 5), dtype=D.INT8, q=ir.QParams((0.1,), (-4,))))
    unary(b, K.DEQUANTIZE, "xq", "y")
    g = b.graph("y")
    assert fold_dequantize(g) is g and FLOAT_PIPELINE[0] is fold_dequantize
    xq = np.arange(-5, 5, dtype=np.int8).reshape(2, 5)
    np.testing.assert_array_equal(
        run_graph(g, [xq])["y"], ((xq.astype(np.float64) + 4) * np.float32(0.1)).astype(np.float32)
    )
    # of a constant that is itself a graph output
    b = G()
    b.inp("x", (1, 4))
    b.t("cq", (1, 4), [1, 2, 3, 4], D.INT8, ir.QParams((0.5,), (0,)))
    unary(b, K.DEQUANTIZE, "cq", "c")
    binary(b, K.ADD, "x", "c", "y")
    g = b.graph("y", "c")
    assert fold_dequantize(g) is g
    # of an int8 constant without quantization parameters: left alone, and running it names the op
    b = G()
    b.t("cq", (4,), [1, 2, 3, 4], D.INT8)
    unary(b, K.DEQUANTIZE, "cq", "c")
    b.inp("x", (1, 4))
    binary(b, K.ADD, "x", "c", "y")
    g = b.graph("y")
    assert fold_dequantize(g) is g
    with pytest.raises(ModelError, match=r"op 0 \(DEQUANTIZE 'c'\): input 'cq' \(int8\) has no quantization"):
        run_graph(g, inputs_for(g, 0))


def test_lowering_an_unfolded_dequantize_names_the_op() -> None:
    b = G()
    b.inputs.append(b.t("xq", (1, 4), dtype=D.INT8, q=ir.QParams((0.1,), (0,))))
    unary(b, K.DEQUANTIZE, "xq", "y")
    g = b.graph("y")
    with pytest.raises(ModelError, match=r"op 0 \(DEQUANTIZE 'y'\): not supported"):
        lower_op(g, g.ops[0])
    with pytest.raises(ModelError, match=r"op 0 \(DEQUANTIZE 'y'\).*float32"):
        lower(g)


@pytest.mark.parametrize("case", ["float16", "int8_per_channel", "int16", "uint8"])
def test_dequantize_model_round_trips_through_the_writer(case: str) -> None:
    g, want = _dequantized_conv(case)
    loaded = load(write(g), source=f"{case}.tflite")
    assert kinds(loaded) == [K.DEQUANTIZE, K.CONV2D]
    assert loaded.tensors["wq"].dtype is DEQUANT_CASES[case][0]
    np.testing.assert_array_equal(loaded.tensors["wq"].data, g.tensors["wq"].data)
    folded = run_passes(loaded, FLOAT_PIPELINE)
    assert kinds(folded) == [K.CONV2D]
    np.testing.assert_array_equal(folded.tensors["w"].data, want)
    assert "tflite_index:wq" not in folded.meta and "tflite_index:w" not in folded.meta
    assert folded.meta["tflite_index:y"] == loaded.meta["tflite_index:y"]
    assert_same_outputs(g, folded)


# -- batch-norm ------------------------------------------------------------------------------------------------
PRODUCERS = {
    "conv": lambda b, x, **kw: conv(b, x, 5, **kw),
    "conv_nobias": lambda b, x, **kw: conv(b, x, 5, bias=False, **kw),
    "depthwise": lambda b, x, **kw: depthwise(b, x, **kw),
    "depthwise_nobias": lambda b, x, **kw: depthwise(b, x, bias=False, **kw),
    "fc": lambda b, x, **kw: fc(b, x, 5, **kw),
    "fc_nobias": lambda b, x, **kw: fc(b, x, 5, bias=False, **kw),
}


def _start(b: G, producer: str, **kw) -> str:
    x = b.inp("x", (2, 6) if producer.startswith("fc") else (1, 4, 4, 3))
    return PRODUCERS[producer](b, x, out="p", **kw)


# step: (kind, const shape as a function of channels, the constant first?)
STEPS = {
    "mul": (K.MUL, lambda c: (c,), False),
    "mul_const_first": (K.MUL, lambda c: (1, c), True),
    "add": (K.ADD, lambda c: (c,), False),
    "add_const_first": (K.ADD, lambda c: (c,), True),
    "sub": (K.SUB, lambda c: (1, c), False),
    "sub_from_const": (K.SUB, lambda c: (c,), True),
    "mul_scalar": (K.MUL, lambda c: (), False),
    "add_one": (K.ADD, lambda c: (1,), True),
}
CHAINS = {
    "batchnorm": ["mul", "add"],
    "mul": ["mul"],
    "add": ["add"],
    "sub": ["sub"],
    "sub_from_const": ["sub_from_const"],
    "const_first": ["mul_const_first", "add_const_first"],
    "scalar_then_one": ["mul_scalar", "add_one"],
    "long": ["mul", "sub", "add", "mul_const_first", "sub_from_const"],
}


def _chain(b: G, y: str, steps: list[str], last_act: A = A.NONE) -> str:
    c = b.tensors[y].shape[-1]
    for i, step in enumerate(steps):
        kind, shape, first = STEPS[step]
        k = b.const(f"k{i}", shape(c), 0.5, 1.0 if kind is K.MUL else 0.0)
        act = last_act if i == len(steps) - 1 else A.NONE
        y = binary(b, kind, *((k, y) if first else (y, k)), f"s{i}", act)
    return y


@pytest.mark.parametrize("chain", sorted(CHAINS))
@pytest.mark.parametrize("producer", sorted(PRODUCERS))
def test_batchnorm_folds_into_weights_and_bias(producer: str, chain: str) -> None:
    b = G(7)
    p = _start(b, producer)
    y = _chain(b, p, CHAINS[chain], A.RELU6)
    g = b.graph(y)
    out = fold_batchnorm(g)
    ir.verify(out)
    (op,) = out.ops
    assert op.kind is g.ops[0].kind and op.outputs == (y,) and op.name == y and op.index == 0
    assert op.attrs == replace(g.ops[0].attrs, activation=A.RELU6)  # the last op's activation, the rest kept
    w, bias = (out.tensors[n] for n in op.inputs[1:])
    assert bias.dtype is F32 and bias.shape == (g.tensors[p].shape[-1],) and bias.is_const
    assert w.shape == g.tensors[g.ops[0].inputs[1]].shape and w.dtype is F32
    gone = {p, *(f"k{i}" for i in range(len(CHAINS[chain]))), *(f"s{i}" for i in range(len(CHAINS[chain]) - 1))}
    assert not gone & set(out.tensors)
    assert_same_outputs(g, out)


def test_batchnorm_keeps_later_readers_and_conv_then_relu_folds_too() -> None:
    b = G(3)
    x = b.inp("x", (1, 6, 6, 2))
    y = _chain(b, conv(b, x, 4, out="p"), ["mul", "add"])
    r = unary(b, K.RELU, y, "r")
    pool = b.op(K.AVG_POOL2D, (r,), "pool", (1, 3, 3, 4), ir.Pool2DAttrs(SAME, 2, 2, 2, 2))
    g = b.graph(pool)
    out = run_passes(g, FLOAT_PIPELINE)
    assert kinds(out) == [K.CONV2D, K.AVG_POOL2D]
    assert out.ops[0].outputs == ("r",) and out.ops[0].attrs.activation is A.RELU and out.ops[1].inputs == ("r",)
    assert_same_outputs(g, out)


def test_batchnorm_with_shared_weights_copies_them() -> None:
    b = G(4)
    x = b.inp("x", (2, 6))
    w = b.const("w", (6, 6))
    b.op(K.FULLY_CONNECTED, (x, w, ""), "h", (2, 6), ir.FullyConnectedAttrs())
    y = _chain(b, "h", ["mul", "add"])
    b.op(K.FULLY_CONNECTED, (y, w, ""), "z", (2, 6), ir.FullyConnectedAttrs())
    g = b.graph("z")
    out = fold_batchnorm(g)
    assert kinds(out) == [K.FULLY_CONNECTED] * 2
    first, second = out.ops
    assert second.inputs == (y, "w", "") and out.tensors["w"] is g.tensors["w"]
    assert first.inputs[1] != "w" and first.inputs[2]
    assert_same_outputs(g, out)


def _not_folded(g: ir.Graph) -> None:
    assert fold_batchnorm(g) is g
    assert run_passes(g, FLOAT_PIPELINE) is g


def test_batchnorm_left_alone() -> None:
    # the conv output has two readers
    b = G()
    p = _start(b, "conv")
    y = _chain(b, p, ["mul"])
    binary(b, K.ADD, y, p, "z")
    _not_folded(b.graph("z"))
    # the conv output is a graph output
    b = G()
    p = _start(b, "conv")
    _not_folded(b.graph(_chain(b, p, ["mul", "add"]), p))
    # a per-element constant, not per channel
    b = G()
    p = _start(b, "conv")
    binary(b, K.MUL, p, b.const("k", (1, 4, 4, 5)), "y")
    _not_folded(b.graph("y"))
    # a per-channel constant along the wrong axis
    b = G()
    p = _start(b, "conv")
    binary(b, K.ADD, p, b.const("k", (1, 1, 4, 1)), "y")
    _not_folded(b.graph("y"))
    # the activation is already fused into the conv
    b = G()
    p = _start(b, "conv", act=A.RELU)
    _not_folded(b.graph(_chain(b, p, ["mul"])))
    # the multiplier is not a constant
    b = G()
    p = _start(b, "depthwise")
    binary(b, K.MUL, p, b.inp("k", (6,)), "y")
    _not_folded(b.graph("y"))
    # a constant that is not finite
    b = G()
    p = _start(b, "fc")
    binary(b, K.MUL, p, b.t("k", (5,), [1.0, np.inf, 2.0, 1.0, 1.0]), "y")
    _not_folded(b.graph("y"))
    # a MUL after an op that has no weights
    b = G()
    x = b.inp("x", (1, 4, 4, 3))
    binary(b, K.MUL, binary(b, K.ADD, x, x, "a"), b.const("k", (3,)), "y")
    _not_folded(b.graph("y"))


def test_batchnorm_leaves_a_quantized_graph_alone() -> None:
    q = ir.QParams((0.1,), (0,))
    tensors = {
        "x": ir.Tensor("x", (1, 4), D.INT8, q),
        "w": ir.Tensor("w", (3, 4), D.INT8, ir.QParams((0.02,), (0,)), np.ones((3, 4), np.int8)),
        "p": ir.Tensor("p", (1, 3), D.INT8, q),
        "k": ir.Tensor("k", (3,), D.INT8, q, np.ones(3, np.int8)),
        "y": ir.Tensor("y", (1, 3), D.INT8, q),
    }
    ops = (
        ir.Op(K.FULLY_CONNECTED, "p", ("x", "w", ""), ("p",), ir.FullyConnectedAttrs()),
        ir.Op(K.MUL, "y", ("p", "k"), ("y",), ir.BinaryAttrs(), 1),
    )
    g = ir.Graph("q", tensors, ops, ("x",), ("y",))
    assert fold_batchnorm(g) is g and fold_relu(g) is g


# -- standalone RELU / RELU6 -----------------------------------------------------------------------------------
RELU_PRODUCERS = {
    **{k: PRODUCERS[k] for k in ("conv", "depthwise", "fc")},
    "add": lambda b, x, act=A.NONE, out="p": binary(b, K.ADD, x, b.const("k", b.tensors[x].shape), out, act),
    "sub": lambda b, x, act=A.NONE, out="p": binary(b, K.SUB, b.const("k", (3,)), x, out, act),
    "mul": lambda b, x, act=A.NONE, out="p": binary(b, K.MUL, x, x, out, act),
    "avg_pool": lambda b, x, act=A.NONE, out="p": b.op(
        K.AVG_POOL2D, (x,), out, (1, 2, 2, 3), ir.Pool2DAttrs(SAME, 2, 2, 2, 2, act)
    ),
    "max_pool": lambda b, x, act=A.NONE, out="p": b.op(
        K.MAX_POOL2D, (x,), out, (1, 2, 2, 3), ir.Pool2DAttrs(SAME, 2, 2, 2, 2, act)
    ),
}


def _relu_graph(producer: str, fused: A, relu: K) -> tuple[ir.Graph, str]:
    b = G(11)
    x = b.inp("x", (2, 6) if producer == "fc" else (1, 4, 4, 3))
    p = RELU_PRODUCERS[producer](b, x, act=fused, out="p")
    y = unary(b, relu, p, "y")
    return b.graph(y), p


@pytest.mark.parametrize("relu", [K.RELU, K.RELU6])
@pytest.mark.parametrize("producer", sorted(RELU_PRODUCERS))
def test_relu_folds_into_the_producer(producer: str, relu: K) -> None:
    g, p = _relu_graph(producer, A.NONE, relu)
    out = fold_relu(g)
    ir.verify(out)
    (op,) = out.ops
    assert op.kind is g.ops[0].kind and op.outputs == ("y",) and op.name == "y" and op.inputs == g.ops[0].inputs
    assert op.attrs.activation is (A.RELU if relu is K.RELU else A.RELU6)
    assert p not in out.tensors and f"tflite_index:{p}" not in out.meta
    assert_same_outputs(g, out)


@pytest.mark.parametrize(
    ("fused", "relu", "want"),
    [
        (A.RELU, K.RELU, A.RELU),
        (A.RELU, K.RELU6, A.RELU6),
        (A.RELU6, K.RELU, A.RELU6),
        (A.RELU6, K.RELU6, A.RELU6),
        (A.RELU_N1_TO_1, K.RELU, None),  # [0, 1]: no single fused activation
        (A.RELU_N1_TO_1, K.RELU6, None),
    ],
)
def test_relu_after_a_fused_activation(fused: A, relu: K, want: A | None) -> None:
    g, _ = _relu_graph("add", fused, relu)
    out = fold_relu(g)
    if want is None:
        assert out is g
        return
    (op,) = out.ops
    assert op.attrs.activation is want
    assert_same_outputs(g, out)


def test_relu_chain_folds_to_one_activation() -> None:
    b = G()
    x = b.inp("x", (1, 4, 4, 3))
    y = unary(b, K.RELU6, unary(b, K.RELU, RELU_PRODUCERS["add"](b, x), "r1"), "r2")
    g = b.graph(y)
    out = fold_relu(g)
    assert kinds(out) == [K.ADD] and out.ops[0].outputs == ("r2",) and out.ops[0].attrs.activation is A.RELU6
    assert_same_outputs(g, out)


def test_relu_left_alone() -> None:
    # two readers of the producer's output
    b = G()
    x = b.inp("x", (1, 4, 4, 3))
    p = RELU_PRODUCERS["add"](b, x)
    binary(b, K.ADD, unary(b, K.RELU, p, "r"), p, "y")
    g = b.graph("y")
    assert fold_relu(g) is g
    # the producer's output is a graph output
    g, p = _relu_graph("conv", A.NONE, K.RELU)
    g = ir.Graph(g.name, g.tensors, g.ops, g.inputs, ("y", p))
    assert fold_relu(g) is g
    # CONCATENATION: TFLite refuses a fused activation there
    b = G()
    x = b.inp("x", (1, 2, 2, 3))
    b.op(K.CONCAT, (x, x), "c", (1, 2, 2, 6), ir.ConcatAttrs(3))
    g = b.graph(unary(b, K.RELU, "c", "y"))
    assert fold_relu(g) is g
    # producers without a fused activation, or no producer at all
    b = G()
    x = b.inp("x", (1, 2, 2, 3))
    b.op(K.RESHAPE, (x,), "r", (1, 12), ir.ReshapeAttrs())
    unary(b, K.RELU6, unary(b, K.RELU, "r", "a"), "y")
    g = b.graph("y")
    assert fold_relu(g) is g


# -- the pipeline ---------------------------------------------------------------------------------------------
def _full_model(seed: int = 5) -> ir.Graph:
    """float16 conv weights, a batch-norm with a standalone RELU6, a depthwise conv on per-channel int8 weights
    with a SUB and a RELU, then a FULLY_CONNECTED: everything the pipeline folds, in one model."""
    b = G(seed)
    x = b.inp("x", (1, 6, 6, 3))
    b.t("w16", (4, 3, 3, 3), (b.rng.standard_normal((4, 3, 3, 3)) * 0.4).astype(np.float16), D.FLOAT16)
    unary(b, K.DEQUANTIZE, "w16", "w1")
    b.op(K.CONV2D, (x, "w1", b.const("b1", (4,), 0.1)), "c1", (1, 6, 6, 4), ir.Conv2DAttrs(SAME))
    h = unary(b, K.RELU6, _chain(b, "c1", ["mul", "add"]), "r1")
    b.t(
        "wq",
        (1, 3, 3, 4),
        b.rng.integers(-127, 128, (1, 3, 3, 4)),
        D.INT8,
        ir.QParams((0.01, 0.02, 0.015, 0.005), (0,) * 4, 3),
    )
    unary(b, K.DEQUANTIZE, "wq", "w2")
    b.op(K.DEPTHWISE_CONV2D, (h, "w2", b.const("b2", (4,), 0.1)), "c2", (1, 6, 6, 4), ir.DepthwiseConv2DAttrs(SAME))
    h = unary(b, K.RELU, binary(b, K.SUB, "c2", b.const("m", (1, 1, 1, 4)), "d2"), "r2")
    b.op(K.RESHAPE, (h,), "flat", (1, 144), ir.ReshapeAttrs())
    return b.graph(fc(b, "flat", 3, out="logits"))


def test_pipeline_folds_everything_it_can(tmp_path: Path) -> None:
    g = _full_model()
    out = run_passes(g, FLOAT_PIPELINE, dump_dir=tmp_path)
    ir.verify(out)
    assert kinds(out) == [K.CONV2D, K.DEPTHWISE_CONV2D, K.RESHAPE, K.FULLY_CONNECTED]
    assert [op.attrs.activation for op in out.ops if hasattr(op.attrs, "activation")] == [A.RELU6, A.RELU, A.NONE]
    assert out.ops[0].outputs == ("r1",) and out.ops[1].outputs == ("r2",) and out.ops[2].inputs == ("r2",)
    assert all(t.dtype in (F32,) for t in out.tensors.values())
    assert_same_outputs(g, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "00-input.txt",
        "01-fold_dequantize.txt",
        "02-fold_batchnorm.txt",
        "03-fold_relu.txt",
    ]
    again = run_passes(g, FLOAT_PIPELINE)  # deterministic: the same bytes when written
    assert write(again) == write(out)
    assert run_passes(out, FLOAT_PIPELINE) is out  # nothing left to fold


def test_pipeline_does_not_touch_its_input() -> None:
    g = _full_model()
    before = (g.ops, dict(g.tensors), dict(g.meta))
    run_passes(g, FLOAT_PIPELINE)
    assert (g.ops, g.tensors, g.meta) == before


@pytest.mark.oracle
def test_folded_model_matches_the_oracle_float_interpreter() -> None:
    """The unfolded model (float16 and int8 weights behind DEQUANTIZE, batch-norm, standalone RELUs) written as
    .tflite runs in tflite-runtime's float interpreter; mcuq's folded graph gives the same outputs."""
    oracle.require()
    g = _full_model()
    data = write(g)
    folded = run_passes(load(data), FLOAT_PIPELINE)
    assert kinds(folded) == [K.CONV2D, K.DEPTHWISE_CONV2D, K.RESHAPE, K.FULLY_CONNECTED]
    batches = [inputs_for(g, s) for s in range(3)]
    for xs, res in zip(batches, oracle.run(data, batches), strict=True):
        (want,) = res["outputs"]
        got = run_graph(folded, xs, keep="outputs")["logits"]
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


SHARED_FLOAT = [
    "mlperf_tiny/vww_96_float.tflite",
    "mlperf_tiny/pretrainedResnet.tflite",
    "mlperf_tiny/ad01_fp32.tflite",
    "tflm/hello_world_float.tflite",
]


@pytest.mark.models
@pytest.mark.parametrize("name", SHARED_FLOAT)
def test_shared_float_models_pass_unchanged(shared_models: Path, name: str) -> None:
    """Their activations are already fused and their weights float32: nothing to fold, the same graph back."""
    g = load(shared_models / name)
    assert run_passes(g, FLOAT_PIPELINE) is g
