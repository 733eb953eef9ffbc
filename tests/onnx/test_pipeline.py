"""Float ONNX models through the whole pipeline: import, quantize with calibration data (NCHW, the model's own
layout), compile, run the generated C on the host. The C equals mcuq's numpy integer reference bit for bit, in the
model's layout, and stays close to onnxruntime's float output."""

from __future__ import annotations

import functools

import numpy as np
import pytest

import mcuq  # noqa: E402
from mcuq.cli import main  # noqa: E402
from mcuq.frontend.onnx import load  # noqa: E402
from mcuq.layout import from_ir, to_ir  # noqa: E402
from mcuq.reference.graph import run_graph  # noqa: E402
from tests.onnx.util import helper, model, ort_run

R = np.random.default_rng(5)


def f32(*shape, scale=1.0):
    return (R.normal(size=shape) * scale).astype(np.float32)


def n(op, ins, outs, **attrs):
    return helper.make_node(op, list(ins), list(outs), **attrs)


def mixed_model() -> bytes:
    """Conv + BN + Relu, depthwise + Clip(0, 6), pools (SAME max, average counting its padding), a LeakyRelu and a
    HardSigmoid branch concatenated on channels, HardSwish, flatten (NCHW order) into Gemm, Softmax."""
    nodes = [
        n("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        n("BatchNormalization", ["c1", "s", "bb", "m", "v"], ["bn"]),
        n("Relu", ["bn"], ["r1"]),
        n("Conv", ["r1", "w2", "b2"], ["c2"], group=4, pads=[1, 1, 1, 1], strides=[2, 2]),
        n("Clip", ["c2", "lo", "hi"], ["r2"]),
        n("MaxPool", ["r2"], ["p1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        n("AveragePool", ["r2"], ["p2"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], count_include_pad=1),
        n("LeakyRelu", ["p2"], ["l1"], alpha=0.2),
        n("HardSigmoid", ["p1"], ["h1"]),
        n("Concat", ["l1", "h1"], ["cat"], axis=1),
        n("HardSwish", ["cat"], ["hs"]),
        n("Flatten", ["hs"], ["f"]),
        n("Gemm", ["f", "fw", "fb"], ["g"], transB=1),
        n("Softmax", ["g"], ["y"]),
    ]
    inits = {
        "w1": f32(4, 3, 3, 3, scale=0.5), "b1": f32(4, scale=0.1),
        "s": f32(4) * 0.2 + 1, "bb": f32(4, scale=0.1), "m": f32(4, scale=0.1), "v": np.abs(f32(4)) + 0.5,
        "w2": f32(4, 1, 3, 3, scale=0.5), "b2": f32(4, scale=0.1),
        "lo": np.float32(0), "hi": np.float32(6),
        "fw": f32(10, 8 * 4 * 4, scale=0.1), "fb": f32(10, scale=0.1),
    }  # fmt: skip
    return model(nodes, [("x", ["batch", 3, 8, 8])], [("y", None)], inits)


def conv1d_model() -> bytes:
    nodes = [
        n("Conv", ["x", "w", "b"], ["c"], pads=[1, 1]),
        n("Relu", ["c"], ["r"]),
        n("MaxPool", ["r"], ["p"], kernel_shape=[2], strides=[2]),
        n("Conv", ["p", "w2"], ["y"], kernel_shape=[3]),
    ]
    inits = {"w": f32(6, 2, 3, scale=0.5), "b": f32(6, scale=0.1), "w2": f32(4, 6, 3, scale=0.3)}
    return model(nodes, [("x", [1, 2, 16])], [("y", None)], inits)


def elementwise_model() -> bytes:
    """The remaining ops: Sigmoid, Mul of two activations, Sub and Div by constants, Tanh, Pad, Transpose,
    ReduceMean, GlobalAveragePool, Squeeze, Unsqueeze, Reshape, MatMul, Add, a general Clip, Dropout, Identity."""
    nodes = [
        n("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        n("Sigmoid", ["c"], ["sg"]),
        n("Mul", ["c", "sg"], ["sw"]),
        n("Sub", ["sw", "k"], ["sb"]),
        n("Tanh", ["sb"], ["th"]),
        n("Pad", ["th", "pads"], ["pd"]),
        n("Transpose", ["pd"], ["tr"], perm=[0, 1, 3, 2]),
        n("ReduceMean", ["tr"], ["rm"], axes=[3], keepdims=1),
        n("GlobalAveragePool", ["tr"], ["gp"]),
        n("Squeeze", ["gp", "a23"], ["sq"]),
        n("Unsqueeze", ["sq", "a1"], ["us"]),
        n("Reshape", ["us", "shp"], ["rs"]),
        n("MatMul", ["rs", "mw"], ["mm"]),
        n("Add", ["mm", "mb"], ["ad"]),
        n("Div", ["ad", "dv"], ["dd"]),
        n("Clip", ["dd", "lo", "hi"], ["cl"]),
        n("Dropout", ["cl"], ["dr"]),
        n("Identity", ["dr"], ["y"]),
        n("Flatten", ["rm"], ["y2"]),
    ]
    inits = {
        "w": f32(4, 3, 3, 3, scale=0.4), "k": f32(4, 1, 1, scale=0.2),
        "pads": np.array([0, 0, 1, 0, 0, 0, 0, 2], np.int64), "a23": np.array([2, 3], np.int64),
        "a1": np.array([1], np.int64), "shp": np.array([1, 4], np.int64), "mw": f32(4, 6),
        "mb": f32(6, scale=0.1), "dv": np.float32(2.0), "lo": np.float32(-0.3), "hi": np.float32(0.4),
    }  # fmt: skip
    return model(nodes, [("x", [1, 3, 6, 5])], [("y", None), ("y2", None)], inits)


MODELS = {"mixed": (mixed_model, (1, 3, 8, 8)), "conv1d": (conv1d_model, (1, 2, 16)),
          "elementwise": (elementwise_model, (1, 3, 6, 5))}  # fmt: skip


@functools.cache
def compiled(kind: str):
    make, in_shape = MODELS[kind]
    data = make()
    g = load(data)
    calib = R.normal(size=(16, *in_shape)).astype(np.float32)
    qm = mcuq.quantize(g, calib)
    return data, g, qm, mcuq.compile_model(qm), in_shape


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_float_onnx_compiles_bit_exact(kind):
    data, g, qm, cm, in_shape = compiled(kind)
    xs = R.normal(size=(6, *in_shape)).astype(np.float32)
    gots = cm.run(xs)  # float inputs in the model's layout, int8 outputs in the model's layout
    deqs = cm.run(xs, float_output=True)
    refs = [np.concatenate(r) for r in zip(*[ort_run(data, {"x": x}) for x in xs])]
    for k, out in enumerate(qm.graph.outputs):
        want = []
        for x in xs:
            q = cm.normalise_inputs([to_ir(qm.graph, qm.graph.inputs[0], x)])[0][0][0]
            want.append(from_ir(qm.graph, out, run_graph(qm.graph, [q], keep="outputs")[out]))
        np.testing.assert_array_equal(gots[k], np.stack(want))
        ref, deq = refs[k], deqs[k]
        assert deq.reshape(ref.shape).shape == ref.shape
        noise = float(np.sum((deq.reshape(ref.shape) - ref).astype(np.float64) ** 2))
        sqnr = 10 * np.log10(float(np.sum(ref.astype(np.float64) ** 2)) / max(noise, 1e-30))
        assert sqnr > 20, (kind, out, sqnr)  # int8 of a float model, in the same layout as onnxruntime's


def test_relu_and_batchnorm_fold_as_for_tflite():
    """The integer graph of the mixed model: BN folded into the conv, Relu its fused activation, Clip(0, 6) the
    depthwise's RELU6; no standalone RELU / MUL / ADD left."""
    _, g, qm, _, _ = compiled("mixed")
    kinds = [op.kind.name for op in qm.graph.ops]
    assert not {"RELU", "RELU6", "MUL", "ADD"} & set(kinds), kinds
    acts = [op.attrs.activation.name for op in qm.graph.ops if op.kind.name in ("CONV2D", "DEPTHWISE_CONV2D")]
    assert acts == ["RELU", "RELU6"]
    assert [op.kind.name for op in g.ops][:3] == ["CONV2D", "MUL", "ADD"]  # the import itself keeps the BN


def test_header_names_the_layout():
    _, _, _, cm, _ = compiled("mixed")
    header = next(v for k, v in cm.files.items() if k.endswith(".h"))
    assert "the C array is NHWC [1, 8, 8, 3]; the model's layout is [1, 3, 8, 8]" in header


def test_cli_compile_and_run_in_model_layout(tmp_path):
    data = conv1d_model()
    path = tmp_path / "m.onnx"
    path.write_bytes(data)
    calib = R.normal(size=(8, 1, 2, 16)).astype(np.float32)
    np.save(tmp_path / "calib.npy", calib)
    x = R.normal(size=(1, 2, 16)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    args = ["run", str(path), "--calib", str(tmp_path / "calib.npy"), "--input", str(tmp_path / "x.npy"),
            "--output", str(tmp_path / "y.npy"), "--float-output"]  # fmt: skip
    assert main(args) == 0
    y = np.load(tmp_path / "y.npy")
    ref = ort_run(data, {"x": x})[0]
    assert y.shape == ref.shape  # NCW, as onnxruntime gives it
    assert np.abs(y - ref).max() < 0.1 * np.abs(ref).max()


def test_import_is_deterministic():
    from mcuq.passes import format_graph

    data = mixed_model()
    a, b = load(data), load(data)
    assert format_graph(a) == format_graph(b) and a.meta == b.meta
    for name, t in a.tensors.items():
        if t.data is not None:
            assert t.data.tobytes() == b.tensors[name].data.tobytes()
