"""QDQ ONNX models: from onnxruntime's quantize_static (QDQ format; per-channel and per-tensor weights; uint8 and int8
activations) and hand-built. mcuq takes the given scales; its C output is bit-exact with mcuq's numpy reference and
within one output step of onnxruntime (ORT_DISABLE_ALL), which requantizes in float."""

from __future__ import annotations

import functools
import logging

import numpy as np
import pytest

import mcuq  # noqa: E402
from mcuq.frontend.onnx import load_qdq  # noqa: E402
from mcuq.layout import from_ir, to_ir  # noqa: E402
from mcuq.reference.graph import run_graph  # noqa: E402
from tests.onnx.util import helper, init, model, ort_run, quiet_root_logger

R = np.random.default_rng(7)


def f32(*shape, scale=1.0):
    return (R.normal(size=shape) * scale).astype(np.float32)


def n(op, ins, outs, **attrs):
    return helper.make_node(op, list(ins), list(outs), **attrs)


def small_float_model() -> bytes:
    nodes = [
        n("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        n("Relu", ["c1"], ["r1"]),
        n("MaxPool", ["r1"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        n("Conv", ["p", "w2", "b2"], ["c2"], group=4, pads=[1, 1, 1, 1]),
        n("Relu", ["c2"], ["r2"]),
        n("Flatten", ["r2"], ["f"]),
        n("Gemm", ["f", "fw", "fb"], ["y"], transB=1),
    ]
    inits = {"w1": f32(4, 1, 3, 3, scale=0.5), "b1": f32(4, scale=0.1), "w2": f32(4, 1, 3, 3, scale=0.5),
             "b2": f32(4, scale=0.1), "fw": f32(10, 64, scale=0.2), "fb": f32(10, scale=0.1)}  # fmt: skip
    return model(nodes, [("x", ["N", 1, 8, 8])], [("y", None)], inits)


def ort_quantize(float_model: bytes, folder, calib: np.ndarray, per_channel: bool, act: str) -> bytes:
    q = pytest.importorskip("onnxruntime.quantization", reason="onnxruntime makes the QDQ models")

    class Reader(q.CalibrationDataReader):
        def __init__(self):
            self.it = iter([{"x": s[None]} for s in calib])

        def get_next(self):
            return next(self.it, None)

    src, dst = folder / "float.onnx", folder / f"qdq_{per_channel}_{act}.onnx"
    src.write_bytes(float_model)
    with quiet_root_logger():  # quantize_static's pre-processing advice
        q.quantize_static(str(src), str(dst), Reader(), quant_format=q.QuantFormat.QDQ, per_channel=per_channel,
                          activation_type=getattr(q.QuantType, act), weight_type=q.QuantType.QInt8)  # fmt: skip
    return dst.read_bytes()


def steps_from_ort(data: bytes, qm, cm, xs: np.ndarray) -> np.ndarray:
    """|mcuq C - onnxruntime| in output steps, per output value; also checks the C against mcuq's reference."""
    got_q = cm.run(xs)[0]
    g, out = qm.graph, qm.graph.outputs[0]
    want = [from_ir(g, out, run_graph(g, [cm.normalise_inputs([to_ir(g, g.inputs[0], x)])[0][0][0]])[out]) for x in xs]
    np.testing.assert_array_equal(got_q.reshape(len(xs), -1), np.stack(want).reshape(len(xs), -1))
    t = g.tensors[out]
    got = (got_q.astype(np.float64) - t.zero_point) * t.scale
    ref = np.concatenate([ort_run(data, {"x": x[None]})[0] for x in xs]).reshape(got.shape)
    return np.rint(np.abs(got - ref) / t.scale)  # ORT dequantizes in float32: whole steps up to rounding


@functools.cache
def _calib() -> np.ndarray:
    return R.normal(size=(16, 1, 8, 8)).astype(np.float32)


@pytest.mark.parametrize("per_channel", [True, False])
@pytest.mark.parametrize("act", ["QUInt8", "QInt8"])
def test_quantize_static_within_one_step(tmp_path, per_channel, act):
    data = ort_quantize(small_float_model(), tmp_path, _calib(), per_channel, act)
    qm = load_qdq(data)
    cm = mcuq.compile_model(qm)
    xs = R.normal(size=(100, 1, 8, 8)).astype(np.float32)
    steps = steps_from_ort(data, qm, cm, xs)
    assert steps.max() <= 1, steps.max()
    assert (steps > 0.5).mean() < 0.1  # most outputs equal; the rest one step apart
    # the weights are the model's integers, not requantized
    conv = next(op for op in qm.graph.ops if op.kind.name == "CONV2D")
    w = qm.graph.tensors[conv.inputs[1]]
    assert w.data.dtype == np.int8 and len(w.qparams.scale) == (4 if per_channel else 1)


def hand_qdq_model(weight: np.ndarray, uint8: bool = True) -> bytes:
    """x -> Q/DQ (uint8 or int8) -> Conv(DQ(int8 per-channel weights), DQ(int32 bias)) -> Q/DQ -> y."""
    zdt = np.uint8 if uint8 else np.int8
    sx, zx = np.float32(0.02), zdt(128 if uint8 else 3)
    sw = np.array([0.01, 0.02, 0.015], np.float32)
    sy, zy = np.float32(0.05), zdt(120 if uint8 else -5)
    bias = np.array([100, -50, 7], np.int32)
    nodes = [
        n("QuantizeLinear", ["x", "sx", "zx"], ["xq"]),
        n("DequantizeLinear", ["xq", "sx", "zx"], ["xd"]),
        n("DequantizeLinear", ["w", "sw", "zw"], ["wd"], axis=0),
        n("DequantizeLinear", ["b", "sb", "zb"], ["bd"], axis=0),
        n("Conv", ["xd", "wd", "bd"], ["c"], pads=[1, 1, 1, 1]),
        n("QuantizeLinear", ["c", "sy", "zy"], ["cq"]),
        n("DequantizeLinear", ["cq", "sy", "zy"], ["y"]),
    ]
    inits = {"sx": sx, "zx": np.array(zx), "w": weight, "sw": sw, "zw": np.zeros(3, np.int8), "b": bias,
             "sb": (sx * sw).astype(np.float32), "zb": np.zeros(3, np.int32), "sy": sy, "zy": np.array(zy)}  # fmt: skip
    return model(nodes, [("x", [1, 2, 5, 5])], [("y", None)], inits, opset=13)


def test_hand_built_qdq(caplog):
    w = R.integers(-127, 128, size=(3, 2, 3, 3)).astype(np.int8)
    w[0, 0, 0, 0] = -128  # outside TFLite's [-127, 127]: clamped with a warning
    for uint8 in (True, False):
        data = hand_qdq_model(w, uint8)
        with caplog.at_level(logging.WARNING):
            qm = load_qdq(data)
        assert "clamped to -127" in caplog.text
        g = qm.graph
        conv = next(op for op in g.ops if op.kind.name == "CONV2D")
        wq = g.tensors[conv.inputs[1]]
        np.testing.assert_array_equal(wq.data, np.clip(w, -127, 127).transpose(0, 2, 3, 1))
        np.testing.assert_array_equal(g.tensors[conv.inputs[2]].data, [100, -50, 7])
        x_t = g.tensors[g.inputs[0]]
        assert x_t.dtype.name == "INT8" and x_t.zero_point == (0 if uint8 else 3)  # uint8 128 -> int8 0
        y_t = g.tensors[g.outputs[0]]
        assert y_t.zero_point == (120 - 128 if uint8 else -5) and y_t.scale == pytest.approx(0.05)
        cm = mcuq.compile_model(qm)
        xs = R.normal(size=(20, 2, 5, 5)).astype(np.float32)
        w_ok = w.copy()
        w_ok[0, 0, 0, 0] = -127
        steps = steps_from_ort(hand_qdq_model(w_ok, uint8), qm, cm, xs)
        assert steps.max() <= 1


def test_asymmetric_weights_refused():
    from mcuq.errors import ModelError

    data = hand_qdq_model(np.ones((3, 2, 3, 3), np.int8))
    m = __import__("onnx").load_from_string(data)
    for t in m.graph.initializer:
        if t.name == "zw":
            t.CopyFrom(init("zw", np.array([1, 0, 0], np.int8)))
    with pytest.raises(ModelError, match="asymmetric weights"):
        load_qdq(m.SerializeToString())


def test_inspect_names_edges_without_qdq(tmp_path, capsys):
    """A MaxPool after the last Q/DQ pair: its output takes the conv's quantization, and `mcuq inspect` says so."""
    from mcuq.cli import main

    w = R.integers(-127, 128, size=(3, 2, 3, 3)).astype(np.int8)
    m = __import__("onnx").load_from_string(hand_qdq_model(w))
    m.graph.node.append(helper.make_node("MaxPool", ["y"], ["z"], kernel_shape=[2, 2]))
    m.graph.output[0].name = "z"
    path = tmp_path / "q.onnx"
    path.write_bytes(m.SerializeToString())
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "quantization given by the model's QuantizeLinear/DequantizeLinear" in out
    assert "'z' has no given quantization: takes 'c''s" in out


def test_requantized_twice():
    """x quantized at 0.01, then requantized at 0.03 / -10 before a Relu: mcuq keeps both (a QUANTIZE op), within
    one step of onnxruntime."""
    nodes = [
        n("QuantizeLinear", ["x", "s1", "z1"], ["q1"]),
        n("DequantizeLinear", ["q1", "s1", "z1"], ["d1"]),
        n("QuantizeLinear", ["d1", "s2", "z2"], ["q2"]),
        n("DequantizeLinear", ["q2", "s2", "z2"], ["d2"]),
        n("Relu", ["d2"], ["r"]),
        n("QuantizeLinear", ["r", "s2", "z2"], ["q3"]),
        n("DequantizeLinear", ["q3", "s2", "z2"], ["y"]),
    ]
    inits = {"s1": np.float32(0.01), "z1": np.int8(0), "s2": np.float32(0.03), "z2": np.int8(-10)}
    data = model(nodes, [("x", [1, 16])], [("y", None)], inits)
    qm = load_qdq(data)
    assert "QUANTIZE" in [op.kind.name for op in qm.graph.ops]
    assert qm.graph.tensors[qm.graph.inputs[0]].scale == pytest.approx(0.01)
    cm = mcuq.compile_model(qm)
    xs = R.normal(size=(50, 16)).astype(np.float32)
    assert steps_from_ort(data, qm, cm, xs).max() <= 1
