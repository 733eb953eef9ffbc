"""reference.run_graph: the numpy executor of whole IR graphs, int8 (bit-exact with the oracle and the generated C)
and float32 (within float32 rounding of the oracle, tflite-runtime 2.14 BUILTIN_REF)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import mcuq
from mcuq import ir
from mcuq.errors import McuqError
from mcuq.frontend.tflite import load
from mcuq.frontend.tflite_writer import write
from mcuq.reference import run_graph
from tests.util import oracle

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "digits_cnn.tflite"
F32, I8, I32 = ir.DType.FLOAT32, ir.DType.INT8, ir.DType.INT32
K, A, SAME, VALID = ir.OpKind, ir.Activation, ir.Padding.SAME, ir.Padding.VALID


def _random(g: ir.Graph, rng: np.random.Generator) -> list[np.ndarray]:
    out = []
    for n in g.inputs:
        t = g.tensors[n]
        if t.dtype is F32:
            out.append((rng.standard_normal(t.shape) * 2).astype(np.float32))
        else:
            out.append(rng.integers(-128, 128, t.shape, dtype=np.int8))
    return out


def _assert_same(got: np.ndarray, want: np.ndarray, what: str) -> None:
    want = want.reshape(got.shape)
    assert got.dtype == want.dtype, what
    if got.dtype == np.float32:
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=what)
    else:
        np.testing.assert_array_equal(got, want, err_msg=what)


# -- int8: the demo model against the oracle and the C, every layer ------------------------------------------


@pytest.mark.oracle
def test_demo_model_every_layer_matches_oracle_and_c() -> None:
    oracle.require()
    cm = mcuq.compile_model(DEMO, sanitize=False)
    g = load(DEMO)
    xs = [_random(g, np.random.default_rng(s)) for s in range(3)]
    ours = [run_graph(g, x) for x in xs]
    for i, w in enumerate(oracle.run(DEMO, xs)):
        for name, want in zip(g.outputs, w["outputs"], strict=True):
            _assert_same(ours[i][name], want, f"input {i}, output '{name}' vs oracle")
    c_layers = cm.run_layers([np.stack(col) for col in zip(*xs, strict=True)])
    assert c_layers
    for name, got_c in c_layers.items():
        mine = np.stack([run_graph(cm.graph, x)[name] for x in xs])
        np.testing.assert_array_equal(mine, got_c.reshape(mine.shape), err_msg=f"layer output '{name}' vs C")


# -- every model in ../shared/models, int8 bit-exact and float32 within rounding ------------------------------

SHARED = [
    "mlperf_tiny/kws_ref_model.tflite",
    "mlperf_tiny/vww_96_int8.tflite",
    "mlperf_tiny/vww_96_float.tflite",
    "mlperf_tiny/pretrainedResnet_quant.tflite",
    "mlperf_tiny/pretrainedResnet.tflite",
    "mlperf_tiny/ad01_int8.tflite",
    "mlperf_tiny/ad01_fp32.tflite",
    "tflm/hello_world_int8.tflite",
    "tflm/hello_world_float.tflite",
]


@pytest.mark.oracle
@pytest.mark.models
@pytest.mark.parametrize("rel", SHARED, ids=lambda r: Path(r).stem)
def test_shared_model_matches_oracle(shared_models: Path, rel: str) -> None:
    oracle.require()
    path = shared_models / rel
    if not path.exists():
        pytest.skip(f"{path} not found")
    g = load(path)
    rng = np.random.default_rng(20261127)
    xs = [_random(g, rng) for _ in range(3)]
    for i, (x, w) in enumerate(zip(xs, oracle.run(path, xs), strict=True)):
        ours = run_graph(g, x, keep="outputs")
        assert set(ours) == set(g.outputs)
        for name, want in zip(g.outputs, w["outputs"], strict=True):
            _assert_same(ours[name], want, f"input {i}, output '{name}'")


# -- float32: one op per case, all cases side by side in one model and one oracle call -----------------------


def _t(name: str, shape, dtype=F32, data=None, q=None) -> ir.Tensor:
    return ir.Tensor(name, tuple(shape), dtype, None if q is None else ir.QParams((q[0],), (q[1],)), data)


def _w(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return (rng.standard_normal(shape) * 0.5).astype(np.float32)


def one_op(kind: ir.OpKind, attrs, in_shapes, out_shape, consts=(), out_q=None, out_dtype=F32):
    """A builder of one case's tensors and op under a name prefix; ``consts`` are float weights (None: absent)."""

    def build(p: str, rng: np.random.Generator) -> tuple[list[ir.Tensor], list[ir.Op], list[str], list[str]]:
        xs = [_t(f"{p}/x{i}", s) for i, s in enumerate(in_shapes)]
        cs = [None if c is None else _t(f"{p}/c{i}", c, data=_w(rng, *c)) for i, c in enumerate(consts)]
        y = _t(f"{p}/y", out_shape, out_dtype, q=out_q)
        names = [t.name for t in xs] + ["" if c is None else c.name for c in cs]
        op = ir.Op(kind, p, tuple(names), (y.name,), attrs)
        return [*xs, *(c for c in cs if c is not None), y], [op], [t.name for t in xs], [y.name]

    return build


def quantize_then_conv(p: str, rng: np.random.Generator):
    """A mixed graph: float input -> QUANTIZE -> int8 CONV_2D (the int8 path after the float one)."""
    w = rng.integers(-127, 128, (3, 3, 3, 2), dtype=np.int8)
    b = rng.integers(-2000, 2000, (3,), dtype=np.int32)
    ts = [
        _t(f"{p}/x", (1, 6, 6, 2)),
        _t(f"{p}/q", (1, 6, 6, 2), I8, q=(0.05, 3)),
        _t(f"{p}/w", w.shape, I8, w, (0.02, 0)),
        _t(f"{p}/b", b.shape, I32, b, (0.001, 0)),
        _t(f"{p}/y", (1, 6, 6, 3), I8, q=(0.1, -10)),
    ]
    ops = [
        ir.Op(K.QUANTIZE, f"{p}/quantize", (f"{p}/x",), (f"{p}/q",), ir.NoAttrs()),
        ir.Op(K.CONV2D, f"{p}/conv", (f"{p}/q", f"{p}/w", f"{p}/b"), (f"{p}/y",), ir.Conv2DAttrs(SAME), 1),
    ]
    return ts, ops, [f"{p}/x"], [f"{p}/q", f"{p}/y"]


def _pool(pad, s, f, act=A.NONE) -> ir.Pool2DAttrs:
    return ir.Pool2DAttrs(pad, s, s, f, f, act)


# case -> (builder, input generator or None for standard normal * 2)
Gen = Callable[[tuple[int, ...], np.random.Generator], np.ndarray] | None
WIDE: Gen = lambda s, r: r.uniform(-8, 8, s).astype(np.float32)  # noqa: E731
TIES: Gen = lambda s, r: (np.arange(np.prod(s)).reshape(s) - np.prod(s) // 2).astype(np.float32) * 0.125  # noqa: E731
FLOAT_CASES: dict[str, tuple[Callable, Gen]] = {
    "conv_same_s2_relu6": (one_op(K.CONV2D, ir.Conv2DAttrs(SAME, 2, 2, activation=A.RELU6), [(1, 7, 8, 3)],
                                  (1, 4, 4, 4), [(4, 3, 3, 3), (4,)]), None),
    "conv_valid_dilated_relu": (one_op(K.CONV2D, ir.Conv2DAttrs(VALID, 1, 1, 2, 2, A.RELU), [(1, 9, 9, 2)],
                                       (1, 5, 5, 3), [(3, 3, 3, 2), (3,)]), None),
    "conv_1x1_batch2": (one_op(K.CONV2D, ir.Conv2DAttrs(VALID), [(2, 4, 5, 3)], (2, 4, 5, 2),
                               [(2, 1, 1, 3), (2,)]), None),
    "dw_mult2_same_n1to1": (one_op(K.DEPTHWISE_CONV2D, ir.DepthwiseConv2DAttrs(SAME, 1, 2, 1, 1, 2, A.RELU_N1_TO_1),
                                   [(1, 6, 7, 3)], (1, 6, 4, 6), [(1, 3, 3, 6), (6,)]), None),
    "dw_valid_dilated": (one_op(K.DEPTHWISE_CONV2D, ir.DepthwiseConv2DAttrs(VALID, 1, 1, 2, 2, 1), [(1, 8, 8, 4)],
                                (1, 4, 4, 4), [(1, 3, 3, 4), (4,)]), None),
    "fc_relu": (one_op(K.FULLY_CONNECTED, ir.FullyConnectedAttrs(A.RELU), [(2, 8)], (2, 5), [(5, 8), (5,)]), None),
    "fc_keep_num_dims": (one_op(K.FULLY_CONNECTED, ir.FullyConnectedAttrs(keep_num_dims=True), [(1, 3, 8)],
                                (1, 3, 5), [(5, 8), (5,)]), None),
    "fc_no_bias_flatten": (one_op(K.FULLY_CONNECTED, ir.FullyConnectedAttrs(), [(1, 2, 2, 3)], (1, 4),
                                  [(4, 12), None]), None),
    "avg_same_3x3_s2": (one_op(K.AVG_POOL2D, _pool(SAME, 2, 3), [(1, 7, 6, 3)], (1, 4, 3, 3)), None),
    "avg_valid_relu": (one_op(K.AVG_POOL2D, _pool(VALID, 1, 2, A.RELU), [(1, 4, 5, 2)], (1, 3, 4, 2)), None),
    "max_same_s2_relu": (one_op(K.MAX_POOL2D, _pool(SAME, 2, 3, A.RELU), [(1, 7, 7, 2)], (1, 4, 4, 2)), None),
    "max_valid": (one_op(K.MAX_POOL2D, _pool(VALID, 2, 2), [(2, 6, 4, 3)], (2, 3, 2, 3)), None),
    "add_broadcast_relu": (one_op(K.ADD, ir.BinaryAttrs(A.RELU), [(1, 4, 4, 3), (1, 1, 1, 3)], (1, 4, 4, 3)), None),
    "add_const": (one_op(K.ADD, ir.BinaryAttrs(), [(2, 3)], (2, 3), [(2, 3)]), None),
    "sub_broadcast_relu6": (one_op(K.SUB, ir.BinaryAttrs(A.RELU6), [(1, 4, 4, 3), (1, 1, 4, 1)], (1, 4, 4, 3)), None),
    "mul_broadcast": (one_op(K.MUL, ir.BinaryAttrs(), [(1, 3, 1, 2), (1, 1, 4, 2)], (1, 3, 4, 2)), None),
    "mul_relu6": (one_op(K.MUL, ir.BinaryAttrs(A.RELU6), [(1, 10), (1, 10)], (1, 10)), None),
    "reshape": (one_op(K.RESHAPE, ir.ReshapeAttrs(), [(1, 2, 3, 4)], (1, 24)), None),
    "softmax_beta": (one_op(K.SOFTMAX, ir.SoftmaxAttrs(0.5), [(2, 10)], (2, 10)), WIDE),
    "softmax_4d": (one_op(K.SOFTMAX, ir.SoftmaxAttrs(), [(1, 2, 3, 7)], (1, 2, 3, 7)), None),
    "mean_hw_keep": (one_op(K.MEAN, ir.MeanAttrs((1, 2), True), [(1, 5, 6, 3)], (1, 1, 1, 3)), None),
    "mean_last": (one_op(K.MEAN, ir.MeanAttrs((2,)), [(2, 3, 4)], (2, 3)), None),
    "pad": (one_op(K.PAD, ir.PadAttrs(((0, 0), (1, 2), (2, 1), (0, 0))), [(1, 3, 4, 2)], (1, 6, 7, 2)), None),
    "concat": (one_op(K.CONCAT, ir.ConcatAttrs(3), [(1, 2, 2, 3), (1, 2, 2, 2)], (1, 2, 2, 5)), None),
    "transpose": (one_op(K.TRANSPOSE, ir.TransposeAttrs((1, 2, 0)), [(2, 3, 4)], (3, 4, 2)), None),
    **{k.name.lower(): (one_op(k, ir.NoAttrs(), [(1, 64)], (1, 64)), WIDE)
       for k in (K.SIGMOID, K.TANH, K.RELU, K.RELU6, K.HARD_SWISH)},
    "quantize": (one_op(K.QUANTIZE, ir.NoAttrs(), [(4, 256)], (4, 256), out_q=(0.037, -5), out_dtype=I8), WIDE),
    "quantize_ties": (one_op(K.QUANTIZE, ir.NoAttrs(), [(600,)], (600,), out_q=(0.25, 3), out_dtype=I8), TIES),
    "quantize_then_int8_conv": (quantize_then_conv, None),
}  # fmt: skip


@pytest.fixture(scope="module")
def float_results() -> dict[str, tuple[dict, dict]]:
    """case -> ({output: run_graph's}, {output: the oracle's}), from one model holding every case."""
    oracle.require()
    rng = np.random.default_rng(7)
    tensors, ops, ins, outs, xs, owner = {}, [], [], [], [], {}
    for case, (build, gen) in FLOAT_CASES.items():
        ts, case_ops, case_ins, case_outs = build(case, rng)
        tensors.update({t.name: t for t in ts})
        ops += [ir.Op(o.kind, o.name, o.inputs, o.outputs, o.attrs, len(ops) + i) for i, o in enumerate(case_ops)]
        ins += case_ins
        outs += case_outs
        owner.update(dict.fromkeys(case_outs, case))
        xs += [(gen or (lambda s, r: (r.standard_normal(s) * 2).astype(np.float32)))(tensors[n].shape, rng)
               for n in case_ins]  # fmt: skip
    g = ir.Graph("float_ops", tensors, tuple(ops), tuple(ins), tuple(outs))
    ir.verify(g)
    ours = run_graph(g, xs)
    theirs = dict(zip(outs, oracle.run(write(g), [xs])[0]["outputs"], strict=True))
    return {c: ({o: ours[o] for o in outs if owner[o] == c}, {o: theirs[o] for o in outs if owner[o] == c})
            for c in FLOAT_CASES}  # fmt: skip


@pytest.mark.oracle
@pytest.mark.parametrize("case", list(FLOAT_CASES))
def test_float_op_matches_oracle(float_results, case: str) -> None:
    ours, theirs = float_results[case]
    for name, want in theirs.items():
        _assert_same(ours[name], want, name)


# -- the executor itself: COPY (no TFLite builtin), keep, input checks -----------------------------------------


def _chain() -> ir.Graph:
    """x -> RELU -> a -> COPY -> b -> TANH -> y, float32."""
    ts = {n: _t(n, (2, 3)) for n in "xaby"}
    ops = (
        ir.Op(K.RELU, "relu", ("x",), ("a",), ir.NoAttrs()),
        ir.Op(K.COPY, "copy", ("a",), ("b",), ir.NoAttrs(), 1),
        ir.Op(K.TANH, "tanh", ("b",), ("y",), ir.NoAttrs(), 2),
    )
    return ir.Graph("chain", ts, ops, ("x",), ("y",))


def test_copy_and_keep() -> None:
    g = _chain()
    x = np.linspace(-2, 2, 6, dtype=np.float32).reshape(2, 3)
    every = run_graph(g, [x])
    assert set(every) == {"x", "a", "b", "y"}
    np.testing.assert_array_equal(every["b"], np.maximum(x, 0))
    np.testing.assert_allclose(every["y"], np.tanh(np.maximum(x, 0)), rtol=1e-6)
    assert all(v.dtype == np.float32 for v in every.values())
    assert set(run_graph(g, {"x": x}, keep="outputs")) == {"y"}
    assert set(run_graph(g, x, keep=["a"])) == {"a", "y"}
    np.testing.assert_array_equal(run_graph(g, x, keep="outputs")["y"], every["y"])


@pytest.mark.parametrize(
    "inputs, message",
    [
        ([], "has 1 input"),
        ([np.zeros((2, 3), np.float32)] * 2, "has 1 input"),
        ([np.zeros((3, 2), np.float32)], r"input 'x': shape \[3, 2\]"),
        ([np.zeros((2, 3), np.float64)], "input 'x': dtype float64"),
        ({"z": np.zeros((2, 3), np.float32)}, "'z' is not an input"),
        ({}, "input 'x' of graph 'chain' is not given"),
    ],
)
def test_rejects_bad_inputs(inputs, message: str) -> None:
    with pytest.raises(McuqError, match=message):
        run_graph(_chain(), inputs)


def test_rejects_bad_keep() -> None:
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(McuqError, match="keep"):
        run_graph(_chain(), x, keep="some")
    with pytest.raises(McuqError, match="no tensor named 'nope'"):
        run_graph(_chain(), x, keep=["nope"])
