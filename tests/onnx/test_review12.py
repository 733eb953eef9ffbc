"""Review of the ONNX frontend (issue 12) as a careless and as a hostile user: each test pins a bug found and fixed
(or a behaviour checked), and the QDQ single-op coverage the issue asks for: every single-op float model of
test_float_ops quantized by onnxruntime's quantize_static (QDQ) runs, as compiled C, within one output step of
onnxruntime (ORT_DISABLE_ALL)."""

from __future__ import annotations

import functools
import os

import numpy as np
import pytest

import mcuq  # noqa: E402
from mcuq.cli import main  # noqa: E402
from mcuq.errors import McuqError, ModelError  # noqa: E402
from mcuq.frontend.onnx import load, load_qdq  # noqa: E402
from tests.onnx.util import helper, init, mcuq_float, model, onnx, ort_run, quiet_root_logger

R = np.random.default_rng(1212)


def f32(*shape, scale=1.0):
    return (R.normal(size=shape) * scale).astype(np.float32)


def node(op, ins, outs, **attrs):
    return helper.make_node(op, list(ins), list(outs), **attrs)


W = f32(2, 3, 3, 3)


def conv_model() -> bytes:
    return model([node("Conv", "xw", "y")], [("x", [1, 3, 5, 5])], [("y", None)], {"w": W})


@functools.cache
def compiled_conv():
    g = load(conv_model())
    return mcuq.compile_model(mcuq.quantize(g, f32(8, 1, 3, 5, 5)))


def steps(qm, cm, data: bytes, feeds: list[dict[str, np.ndarray]]) -> np.ndarray:
    """|mcuq's C - onnxruntime| in output steps of each output, over ``feeds``."""
    g = qm.graph
    out = []
    for f in feeds:
        xs = [f[n] for n in g.inputs]
        got = cm.run(xs if len(xs) > 1 else xs[0])
        for name, y, ref in zip(g.outputs, got, ort_run(data, f)):
            t = g.tensors[name]
            real = (y.astype(np.float64) - t.zero_point) * t.scale
            out.append(np.rint(np.abs(real.reshape(ref.shape) - ref) / t.scale).reshape(-1))
    return np.concatenate(out)


def quantize_static(data: bytes, tmp_path, calib: list[dict], per_channel=False, act="QInt8", ops=None) -> bytes:
    q = pytest.importorskip("onnxruntime.quantization", reason="onnxruntime makes the QDQ models")

    class Reader(q.CalibrationDataReader):
        def __init__(self):
            self.it = iter(calib)

        def get_next(self):
            return next(self.it, None)

    src, dst = tmp_path / "float.onnx", tmp_path / "qdq.onnx"
    src.write_bytes(data)
    with quiet_root_logger():  # quantize_static's pre-processing advice
        extra = {"op_types_to_quantize": ops, "extra_options": {"ForceQuantizeNoInputCheck": True}} if ops else {}
        q.quantize_static(str(src), str(dst), Reader(), quant_format=q.QuantFormat.QDQ, per_channel=per_channel,
                          activation_type=getattr(q.QuantType, act), weight_type=q.QuantType.QInt8, **extra)  # fmt: skip
    return dst.read_bytes()


# -- a careless user ------------------------------------------------------------------------------------------


def test_run_refuses_an_array_in_the_c_layout(tmp_path, capsys):
    """An NHWC array for an NCHW model was taken as it was (read in the wrong order, silently): now an error
    naming the model's layout. The model's own forms still run."""
    cm = compiled_conv()
    x = f32(1, 3, 5, 5)
    with pytest.raises(
        McuqError, match=r"shape \[1, 5, 5, 3\]; the model takes arrays in its own layout \[1, 3, 5, 5\]"
    ):
        cm.run(np.ascontiguousarray(x.transpose(0, 2, 3, 1)))
    with pytest.raises(McuqError, match=r"own layout \[1, 3, 5, 5\]"):
        cm.run(f32(3, 3, 3))  # a wrong size names the model's layout too, not the C's
    a, b, c = cm.run(x)[0], cm.run(x[0])[0], cm.run(np.stack([x, x]))[0]
    np.testing.assert_array_equal(a[0], b)
    np.testing.assert_array_equal(c[1], a)
    path = tmp_path / "m.onnx"
    path.write_bytes(conv_model())
    np.save(tmp_path / "c.npy", f32(8, 3, 5, 5))
    np.save(tmp_path / "x.npy", x.transpose(0, 2, 3, 1))
    args = ["run", str(path), "--calib", str(tmp_path / "c.npy"), "--input", str(tmp_path / "x.npy"),
            "--output", str(tmp_path / "y.npy")]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "own layout [1, 3, 5, 5]" in err
    assert not (tmp_path / "y.npy").exists()


@pytest.mark.parametrize(
    "case", ["input_as_output", "one_tensor_two_outputs", "identity_outputs", "concat_empty", "flatten_outputs"]
)
def test_outputs_that_are_inputs_or_shared(case):
    """Graph outputs that are a graph input, the same tensor twice, or Identity copies of one tensor (and a Concat
    with a zero-size input, which leaves its other input) compile and match onnxruntime; before, 'nothing computes
    it' at quantization, or an internal KeyError. A flattened NHWC output keeps the model's name."""
    x4 = [("x", [1, 3, 4, 4])]
    make = {
        "input_as_output": lambda: model([node("Relu", "x", ["r"])], x4, [("x", None), ("r", None)]),
        "one_tensor_two_outputs": lambda: model([node("Relu", "x", ["r"])], x4, [("r", None), ("r", None)]),
        "identity_outputs": lambda: model(
            [node("Relu", "x", ["r"]), node("Identity", "r", ["y1"]), node("Identity", "r", ["y2"])],
            x4,
            [("y1", None), ("y2", None)],
        ),
        "concat_empty": lambda: model(
            [node("Conv", "xw", ["c"]), node("Concat", "cz", ["y"], axis=1)],
            [("x", [1, 3, 5, 5])],
            [("y", None)],
            {"w": W, "z": np.zeros((1, 0, 3, 3), np.float32)},
        ),
        "flatten_outputs": lambda: model(
            [node("Conv", "xw", ["c"]), node("Flatten", "c", ["f"]), node("Identity", "f", ["g"])],
            [("x", [1, 3, 5, 5])],
            [("f", None), ("g", None)],
            {"w": W},
        ),
    }[case]
    data = make()
    g = load(data)
    names = [o.name for o in onnx.load_from_string(data).graph.output]
    if len(set(names)) == len(names) and "x" not in names:  # they keep the model's names (a Flatten's was 'f/reshape')
        assert g.outputs == tuple(names)
    shape = [d.dim_value for d in onnx.load_from_string(data).graph.input[0].type.tensor_type.shape.dim]
    xs = [f32(*shape) for _ in range(3)]
    for x in xs:
        for got, want in zip(mcuq_float(g, {"x": x}), ort_run(data, {"x": x})):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    qm = mcuq.quantize(g, np.concatenate([np.stack(xs), f32(8, *shape)]), method="minmax")
    cm = mcuq.compile_model(qm)
    assert len(set(qm.graph.outputs)) == len(qm.graph.outputs) == len(onnx.load_from_string(data).graph.output)
    for x in xs:  # int8 of a float model: close to onnxruntime's float, in the model's layout
        for got, want in zip(cm.run(x, float_output=True), ort_run(data, {"x": x})):
            assert got.shape == want.shape
            assert np.abs(got - want).max() <= 0.05 * np.abs(want).max()


# -- a hostile file -------------------------------------------------------------------------------------------


def test_default_domain_imported_twice():
    """opset_import listing ai.onnx at two versions: which one the ops mean is ambiguous (mcuq took the last one,
    ONNX's checker another): refused. The same version twice is harmless."""
    relu = [node("Relu", "x", "y")]
    with pytest.raises(ModelError, match=r"default domain \(ai.onnx\) at several opsets \[13, 17\]"):
        load(model(relu, [("x", [1, 4])], [("y", None)], extra_opsets=[("", 13)]))
    with pytest.raises(ModelError, match="several opsets"):
        load(model(relu, [("x", [1, 4])], [("y", None)], extra_opsets=[("ai.onnx", 25)]))
    assert load(model(relu, [("x", [1, 4])], [("y", None)], extra_opsets=[("", 17)])).meta["onnx_opset"] == "17"


def test_model_file_without_a_size_is_read_bounded(tmp_path, monkeypatch):
    """x.onnx -> /dev/zero (a device reports size 0): the read was unbounded (all memory); now at most the limit."""
    import mcuq.frontend.onnx as front

    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero")
    monkeypatch.setattr(front, "MAX_MODEL_BYTES", 1 << 16)
    (tmp_path / "x.onnx").symlink_to("/dev/zero")
    with pytest.raises(ModelError, match="model file larger than 65,536 bytes"):
        load(tmp_path / "x.onnx")


HOSTILE_NUMBERS = {
    "div_by_subnormal": ([node("Div", "xc", "y")], {"c": np.float32(1e-45)}, "reciprocal is not a finite float32"),
    "bn_inf_scale": (
        [node("BatchNormalization", ["x", "s", "b", "m", "v"], "y")],
        {
            "s": np.full(3, np.inf, np.float32),
            "b": np.zeros(3, np.float32),
            "m": np.ones(3, np.float32),
            "v": np.ones(3, np.float32),
        },  # fmt: skip
        "scale, B, mean, var and epsilon must be finite",
    ),
    "gemm_alpha_nan": (
        [node("Flatten", "x", ["f"]), node("Gemm", "fw", "y", alpha=float("nan"), transB=1)],
        {"w": np.ones((2, 75), np.float32)},
        "alpha nan and beta 1.0 must be finite",
    ),
    "shape_overflow": (
        [node("Div", "ab", ["s"]), node("Reshape", "xs", "y")],
        {"a": np.array([-(2**63), 75], np.int64), "b": np.array([-1, 1], np.int64)},
        "negative dimension",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_NUMBERS))
def test_hostile_numbers_are_one_error_and_no_warning(case):
    """inf / NaN parameters and overflowing shape arithmetic: numpy's RuntimeWarnings reached the user's stderr
    (two more lines) before the error, or the error came later without the ONNX node; now one ModelError."""
    import warnings

    nodes, inits, expect = HOSTILE_NUMBERS[case]
    data = model(nodes, [("x", [1, 3, 5, 5])], [("y", None)], inits)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ModelError, match=expect):
            load(data)


@pytest.mark.parametrize("scale", [1e-45, 1e-39])
def test_subnormal_qdq_scale_refused(scale):
    """A subnormal scale: accepted before (an input scale of 1e-40 saturated everything, a weight scale of 1e-40
    failed later with a bias message); now refused at its QuantizeLinear / DequantizeLinear."""
    from tests.onnx.test_qdq import hand_qdq_model

    m = onnx.load_from_string(hand_qdq_model(R.integers(-127, 128, size=(3, 2, 3, 3)).astype(np.int8)))
    for t in m.graph.initializer:
        if t.name == "sx":
            t.CopyFrom(init("sx", np.float32(scale)))
    with pytest.raises(ModelError, match=r"\(QuantizeLinear\): scale .* is subnormal"):
        load_qdq(m.SerializeToString())


def test_two_inputs_of_different_ranks_and_an_unused_one():
    """An NCHW input, a rank-2 input and an input no node reads: calibration by name, run with a list in input
    order, all in the model's layout; the unused input stays in the C signature (the model's)."""
    nodes = [node("Conv", "xw", ["c"]), node("Flatten", "c", ["f"]), node("Gemm", "ug", ["h"]),
             node("Concat", "fh", ["y"], axis=1), node("Relu", "x", ["y2"])]  # fmt: skip
    inputs = [("x", [1, 3, 5, 5]), ("u", [1, 6]), ("unused", [1, 2, 3, 4])]
    data = model(nodes, inputs, [("y", None), ("y2", None)], {"w": f32(4, 3, 3, 3), "g": f32(6, 5)})
    g = load(data)
    assert g.inputs == ("x", "u", "unused")
    calib = {n: f32(16, *s) for n, s in inputs}
    cm = mcuq.compile_model(mcuq.quantize(g, calib, method="minmax"))
    feeds = {n: calib[n][0] for n, _ in inputs}
    for got, want in zip(cm.run([feeds[n] for n, _ in inputs], float_output=True), ort_run(data, feeds)):
        assert got.shape == want.shape
        assert np.abs(got - want).max() <= 0.05 * np.abs(want).max()


def test_qdq_parameter_errors_name_the_file(tmp_path):
    """An int32 bias at a scale other than input x weight scale: refused by quantize_fixed, whose message did not
    name the model file; now it does, as every frontend error."""
    from tests.onnx.test_qdq import hand_qdq_model

    m = onnx.load_from_string(hand_qdq_model(R.integers(-127, 128, size=(3, 2, 3, 3)).astype(np.int8)))
    for t in m.graph.initializer:
        if t.name == "sb":
            t.CopyFrom(init("sb", np.full(3, 0.5, np.float32)))
    path = tmp_path / "bad_bias.onnx"
    path.write_bytes(m.SerializeToString())
    with pytest.raises(ModelError, match=r"bad_bias.onnx: QDQ parameters: bias .* not the float bias at the implied"):
        load_qdq(path)


# -- QDQ models onnxruntime's quantize_static writes ----------------------------------------------------------


def test_gemm_alpha_beta_keep_the_integer_weights(tmp_path):
    """Gemm with alpha 0.5 and beta 2: alpha was applied to the QDQ weight's integers (truncated: 9 * 0.5 -> 4)
    and the given bias then refused; now alpha goes into the weight scales, the integers are the model's, and the
    bias (which onnxruntime quantizes at another scale) is requantized from its value."""
    nodes = [node("Gemm", "xwb", "y", transB=1, alpha=0.5, beta=2.0)]
    data = model(nodes, [("x", [1, 8])], [("y", None)], {"w": f32(4, 8), "b": f32(4)})
    qdq = quantize_static(data, tmp_path, [{"x": f32(1, 8)} for _ in range(16)])
    qm = load_qdq(qdq)
    fc = next(op for op in qm.graph.ops if op.kind.name == "FULLY_CONNECTED")
    given = next(t for t in onnx.load_from_string(qdq).graph.initializer if t.name == "w_quantized")
    np.testing.assert_array_equal(qm.graph.tensors[fc.inputs[1]].data, onnx.numpy_helper.to_array(given))
    cm = mcuq.compile_model(qm)
    assert steps(qm, cm, qdq, [{"x": f32(1, 8, scale=1.5)} for _ in range(20)]).max() <= 1


def test_asymmetric_constant_operand_is_no_weight(tmp_path):
    """quantize_static quantizes a constant operand of Add / Concat like an activation (int8 with a zero point):
    it was refused as 'asymmetric weights'; it is a constant, not a layer's weights."""
    data = model([node("Add", "xc", "y")], [("x", [1, 3, 4, 4])], [("y", None)], {"c": f32(3, 1, 1) + 1.0})
    qdq = quantize_static(data, tmp_path, [{"x": f32(1, 3, 4, 4)} for _ in range(16)])
    assert any(
        t.name.startswith("c") and t.data_type == onnx.TensorProto.INT8
        for t in onnx.load_from_string(qdq).graph.initializer
    )
    qm = load_qdq(qdq)
    cm = mcuq.compile_model(qm)
    assert steps(qm, cm, qdq, [{"x": f32(1, 3, 4, 4)} for _ in range(10)]).max() <= 1


def test_batch_norm_in_a_qdq_model(tmp_path):
    """A batch norm after a non-conv op (here a Sigmoid) in a QDQ model: its MUL output had no quantization (an
    error); now it is a 1x1 depthwise convolution (one rounding, as onnxruntime's float math has), within one step.
    After a quantized Conv it cannot be folded into the given integer weights: a clear error."""
    bn = {"s": f32(4) + 2, "bb": f32(4), "m": f32(4), "v": np.abs(f32(4)) + 0.5}
    nodes = [node("Sigmoid", "x", ["s0"]), node("BatchNormalization", ["s0", "s", "bb", "m", "v"], ["y"])]
    data = model(nodes, [("x", [1, 4, 5, 5])], [("y", None)], bn)
    qdq = quantize_static(data, tmp_path, [{"x": f32(1, 4, 5, 5, scale=2)} for _ in range(16)])
    qm = load_qdq(qdq)
    assert "DEPTHWISE_CONV2D" in [op.kind.name for op in qm.graph.ops]
    cm = mcuq.compile_model(qm)
    assert steps(qm, cm, qdq, [{"x": f32(1, 4, 5, 5, scale=2)} for _ in range(10)]).max() <= 1
    nodes = [node("Conv", "xw", ["c"]), node("BatchNormalization", ["c", "s", "bb", "m", "v"], ["y"])]
    data = model(nodes, [("x", [1, 4, 5, 5])], [("y", None)], {**bn, "w": f32(4, 4, 3, 3)})
    qdq = quantize_static(data, tmp_path, [{"x": f32(1, 4, 5, 5)} for _ in range(16)])
    with pytest.raises(ModelError, match="batch norm after the quantized Conv .* fold batch norms before quantizing"):
        load_qdq(qdq)


def _wrap_in_qdq(data: bytes, scale: float = 0.05) -> bytes:
    """Q/DQ (int8, zero point 0) after every graph input and before every graph output: a QDQ model of an op that
    quantize_static leaves in float (Relu, Clip: it folds them into the neighbouring Q's range)."""
    m = onnx.load_from_string(data)
    g = m.graph
    nodes = []
    for vi in g.input:
        nodes += [node("QuantizeLinear", [vi.name, "qs", "qz"], [vi.name + "_q"]),
                  node("DequantizeLinear", [vi.name + "_q", "qs", "qz"], [vi.name + "_d"])]  # fmt: skip
        for n in g.node:
            n.input[:] = [vi.name + "_d" if i == vi.name else i for i in n.input]
    tail = []
    for vi in g.output:
        for n in g.node:
            n.output[:] = [vi.name + "_f" if o == vi.name else o for o in n.output]
        tail += [node("QuantizeLinear", [vi.name + "_f", "qs", "qz"], [vi.name + "_q"]),
                 node("DequantizeLinear", [vi.name + "_q", "qs", "qz"], [vi.name])]  # fmt: skip
    all_nodes = nodes + list(g.node) + tail
    del g.node[:]
    g.node.extend(all_nodes)
    g.initializer.extend([init("qs", np.float32(scale)), init("qz", np.int8(0))])
    return m.SerializeToString()


def _single_op_names() -> list[str]:
    pytest.importorskip("onnxruntime", reason="onnxruntime makes the QDQ models")
    from tests.onnx.test_float_ops import CASES

    return sorted(CASES)


QDQ_COUNTS: dict[str, tuple[int, int]] = {}


@pytest.mark.parametrize("name", _single_op_names())
def test_single_op_qdq_within_one_step(tmp_path, name):
    """Each single-op model of test_float_ops, quantized by quantize_static (QDQ, int8, per-tensor; every op type
    of the model asked for) or, where it leaves the op in float, wrapped in Q/DQ by hand: mcuq's C within one
    output step of onnxruntime (ORT_DISABLE_ALL)."""
    from tests.onnx.test_float_ops import CASES, case_model

    nodes, inputs, *_ = CASES[name]
    data = case_model(name)
    rng = np.random.default_rng(sum(map(ord, name)))
    calib = [{n: rng.normal(size=s).astype(np.float32) for n, s in inputs} for _ in range(16)]
    qdq = quantize_static(data, tmp_path, calib, ops=sorted({n.op_type for n in nodes}))
    qm = load_qdq(qdq)
    if qm is None:  # Relu, Clip: quantize_static leaves a lone one in float
        qdq = _wrap_in_qdq(data)
        qm = load_qdq(qdq)
    assert qm is not None
    cm = mcuq.compile_model(qm)
    feeds = [{n: rng.normal(size=s).astype(np.float32) for n, s in inputs} for _ in range(4)]
    s = steps(qm, cm, qdq, feeds)
    QDQ_COUNTS[name] = (int((s > 0).sum()), s.size)
    assert s.max() <= 1, (name, s.max())


# -- layout: random graphs with branches ----------------------------------------------------------------------


def dag_case(rng: np.random.Generator):
    """A random graph after a convolution whose values meet again in different layouts: Add and Concat of a value
    and its transposed-and-back twin (NHWC meets the model's order), Flatten + Gemm of either, a Conv on a value in
    the model's order, Transpose, Softmax, ReduceMean, Reshape; two outputs, one of them an intermediate value."""
    c, h, w = (int(rng.integers(1, 4)) + 1 for _ in range(3))
    nodes = [node("Conv", ["x", "w0"], ["t0"], pads=[1, 1, 1, 1])]
    inits = {"w0": rng.normal(size=(c, 2, 3, 3)).astype(np.float32)}
    vals = {"t0": [1, c, h, w]}
    for i in range(1, int(rng.integers(3, 7))):
        out = f"t{i}"
        src = str(rng.choice(sorted(vals)))
        shape = vals[src]
        r = len(shape)
        op = str(rng.choice(["RoundTrip", "Add", "Concat", "FlattenGemm", "Conv", "Transpose", "Softmax",
                             "ReduceMean", "Reshape", "Sigmoid"]))  # fmt: skip
        if op == "RoundTrip":
            perm = [int(p) for p in rng.permutation(r)]
            inv = [perm.index(a) for a in range(r)]
            nodes += [node("Transpose", [src], [out + "p"], perm=perm), node("Transpose", [out + "p"], [out], perm=inv)]
        elif op in ("Add", "Concat"):
            twins = [k for k, s in vals.items() if len(s) == r and (s == shape or op == "Concat")]
            other = str(rng.choice(sorted(twins)))
            axes = [a for a in range(r) if all(d == e for j, (d, e) in enumerate(zip(shape, vals[other])) if j != a)]
            if op == "Concat" and axes:
                axis = int(rng.choice(axes))
                nodes.append(node("Concat", [src, other], [out], axis=axis))
                shape = [d + vals[other][axis] if j == axis else d for j, d in enumerate(shape)]
            else:
                nodes.append(node("Add", [src, src if op == "Concat" else other], [out]))
        elif op == "FlattenGemm":
            n = int(np.prod(shape[1:]))
            k = int(rng.integers(1, 5))
            inits[f"g{i}"] = rng.normal(size=(k, n)).astype(np.float32)
            nodes += [node("Flatten", [src], [out + "f"]), node("Gemm", [out + "f", f"g{i}"], [out], transB=1)]
            shape = [shape[0], k]
        elif op == "Conv" and r == 4:
            k = int(rng.integers(1, 4))
            inits[f"w{i}"] = rng.normal(size=(k, shape[1], 1, 1)).astype(np.float32)
            nodes.append(node("Conv", [src, f"w{i}"], [out]))
            shape = [1, k, *shape[2:]]
        elif op == "Transpose":
            perm = [int(p) for p in rng.permutation(r)]
            nodes.append(node("Transpose", [src], [out], perm=perm))
            shape = [shape[p] for p in perm]
        elif op == "Softmax":
            nodes.append(node("Softmax", [src], [out], axis=int(rng.integers(-r, r))))
        elif op == "ReduceMean":
            axes = sorted({int(a) for a in rng.integers(0, r, size=int(rng.integers(1, r)))})
            nodes.append(node("ReduceMean", [src], [out], axes=axes, keepdims=1))
            shape = [1 if j in axes else d for j, d in enumerate(shape)]
        elif op == "Reshape":
            if r == 2 and shape[0] != 1:
                continue
            inits[f"s{i}"] = np.array([1, -1] if r > 2 else [1, shape[1], 1, 1], np.int64)
            nodes.append(node("Reshape", [src, f"s{i}"], [out]))
            shape = [1, int(np.prod(shape))] if r > 2 else [1, shape[1], 1, 1]
        else:
            nodes.append(node("Sigmoid", [src], [out]))
        vals[out] = shape
    last = nodes[-1].output[0]
    extra = str(rng.choice(sorted(set(vals) - {last})))
    return model(nodes, [("x", [1, 2, h, w])], [(last, None), (extra, None)], inits), [1, 2, h, w]


def test_random_graphs_with_branches_match_onnxruntime():
    from tests.onnx.test_random_configs import REFUSALS

    rng = np.random.default_rng(1212)
    checked = 0
    for _ in range(60):
        data, shape = dag_case(rng)
        try:
            g = load(data)
        except ModelError as e:  # what mcuq does not support, or a graph the generator got wrong (ONNX refuses it)
            assert any(r in str(e) for r in (*REFUSALS, "ONNX shape inference")), str(e)
            continue
        x = rng.normal(size=shape).astype(np.float32)
        for got, want in zip(mcuq_float(g, {"x": x}), ort_run(data, {"x": x}), strict=True):
            assert got.shape == want.shape
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * max(float(np.abs(want).max()), 1e-3))
        checked += 1
    assert checked >= 45, checked


def test_onnx_file_named_tflite_gets_a_hint(tmp_path, capsys):
    from tests.onnx.test_qdq import small_float_model

    f = tmp_path / "model.tflite"
    f.write_bytes(small_float_model())
    assert main(["inspect", str(f)]) != 0
    err = capsys.readouterr().err.strip()
    assert "not a valid TFLite flatbuffer" in err and "looks like an ONNX model: name the file .onnx" in err
    assert "\n" not in err
