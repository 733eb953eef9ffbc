"""The quantizer at per-layer precisions (issue 11): weight widths 8/4/2/1, int16 activations (16x8), the rounding
choice, the cached Quantizer, the report's precision columns and the command line's options. Small graphs built in
code (tests/util/float_models.py's Builder); the digits targets and the oracle are in tests/e2e."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mcuq import ir
from mcuq.cli import main
from mcuq.cli_quant import ACTIVATIONS, ROUNDINGS, WEIGHT_BITS
from mcuq.errors import McuqError
from mcuq.frontend import load
from mcuq.frontend.tflite_writer import write
from mcuq.ir import DType, OpKind
from mcuq.quant import precision
from mcuq.quant.ptq import Quantizer, layer_names, quantize
from tests.util.float_models import Builder

A = ir.Activation
NARROW = {DType.INT8: (-127, 127), DType.INT4: (-7, 7), DType.INT2: (-1, 1), DType.INT1: (-1, 1)}


def _cnn() -> tuple[ir.Graph, np.ndarray]:
    """conv 3x3 (odd channel count) -> depthwise x2 -> avg pool -> FC -> softmax; 48 samples."""
    b = Builder("precision_cnn", 3)
    h = b.conv(b.input((1, 6, 6, 2), "x"), 5, act=A.RELU)
    h = b.dwconv(h, mult=2, act=A.RELU)
    h = b.reshape(b.pool(OpKind.AVG_POOL2D, h), (1, 90))
    g = b.graph(b.softmax(b.fc(h, 7)))
    x = np.random.default_rng(0).uniform(-1, 1, size=(48, 1, 6, 6, 2)).astype(np.float32)
    return g, x


@pytest.fixture(scope="module")
def cnn() -> Quantizer:
    g, x = _cnn()
    return Quantizer(g, x)


def _weights(qm) -> dict[str, ir.Tensor]:
    return {op.name: qm.graph.tensors[op.inputs[1]] for op in qm.graph.ops if op.kind in precision.WEIGHTED_KINDS}


def test_choices_match_the_cli():
    assert WEIGHT_BITS == precision.WEIGHT_BITS
    assert ACTIVATIONS == precision.ACTIVATIONS
    assert ROUNDINGS == precision.ROUNDINGS


def test_layer_names_are_the_weighted_ops(cnn):
    g, _ = _cnn()
    assert layer_names(g) == cnn.layer_names == ["conv2d0", "depthwise_conv2d1", "fully_connected4"]


@pytest.mark.parametrize(
    "kw, words",
    [
        ({"weight_bits": 3}, ["weight_bits", "3", "8, 4, 2, 1"]),
        ({"weight_bits": True}, ["weight_bits", "True"]),
        ({"weight_bits": {"nope": 4}}, ["'nope'", "'conv2d0'", "'fully_connected4'"]),
        ({"weight_bits": {"conv2d0": 5}}, ["conv2d0", "5"]),
        ({"activations": "int4"}, ["activations", "int8, int16"]),
        ({"activations": {"conv2d0": "float"}}, ["conv2d0", "float"]),
        ({"rounding": "best"}, ["rounding", "gptq"]),
    ],
)
def test_bad_precision_is_one_line_naming_the_valid_values(cnn, kw, words):
    with pytest.raises(McuqError) as e:
        cnn.quantize(**kw)
    msg = str(e.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg


@pytest.mark.parametrize("bits", [4, 2, 1])
def test_low_bit_weights_are_narrow_packed_and_per_channel(cnn, bits):
    qm = cnn.quantize(weight_bits=bits)
    for name, w in _weights(qm).items():
        assert w.dtype is precision.WEIGHT_DTYPE[bits], name
        lo, hi = NARROW[w.dtype]
        assert w.data.dtype == np.int8 and w.data.min() >= lo and w.data.max() <= hi, name
        if bits == 1:
            assert not np.any(w.data == 0), f"{name}: a binary weight is never 0"
        assert len(w.qparams.scale) > 1 and all(s > 0 for s in w.qparams.scale)
    kinds = {r.tensor: r for r in qm.report.layers}
    assert kinds["conv2d0"].weight_bits == bits and kinds["conv2d0"].rounding == "gptq"
    assert kinds["conv2d0"].rounding_gain_db is not None


def test_per_layer_widths_and_the_int8_default(cnn):
    int8 = cnn.quantize()
    assert int8.tflite_bytes() == quantize(*_cnn()).tflite_bytes()  # the Quantizer is the plain quantizer
    assert {w.dtype for w in _weights(int8).values()} == {DType.INT8}
    mixed = cnn.quantize(weight_bits={"depthwise_conv2d1": 2})
    dt = {k: w.dtype for k, w in _weights(mixed).items()}
    assert dt == {"conv2d0": DType.INT8, "depthwise_conv2d1": DType.INT2, "fully_connected4": DType.INT8}
    # the layers before the changed one are quantized exactly as in the int8 model
    a, b = _weights(int8)["conv2d0"], _weights(mixed)["conv2d0"]
    np.testing.assert_array_equal(a.data, b.data)


def test_rounding_choices(cnn):
    reports = {r: cnn.quantize(weight_bits=2, rounding=r).report for r in ("nearest", "gptq", "adaround")}
    for r, rep in reports.items():
        row = next(x for x in rep.layers if x.tensor == "conv2d0")
        assert row.rounding == r
        assert (row.rounding_gain_db is None) == (r == "nearest")
    eight = cnn.quantize(weight_bits=8).report  # auto: nearest at 8 bits
    assert next(x for x in eight.layers if x.tensor == "conv2d0").rounding == "nearest"


def test_quantizer_is_deterministic_and_evaluate_matches_the_report(cnn):
    a = cnn.quantize(weight_bits=4, activations={"fully_connected4": "int16"})
    b = cnn.quantize(weight_bits=4, activations={"fully_connected4": "int16"})
    assert a.tflite_bytes() == b.tflite_bytes()
    ev = cnn.evaluate(a)
    assert ev.sqnr_db == pytest.approx(a.report.sqnr_db, abs=1e-5)  # float32 vs float64 dequantization
    other = np.random.default_rng(5).uniform(-1, 1, size=(9, 1, 6, 6, 2)).astype(np.float32)
    ev2 = cnn.evaluate(a, other)
    assert ev2.outputs[0].shape == (9, 1, 7) and ev2.float_outputs[0].shape == (9, 1, 7)
    with pytest.raises(McuqError, match="not made by this Quantizer"):
        Quantizer(*_cnn()).evaluate(a)


def test_uniform_16x8_is_int16_everywhere(cnn):
    qm = cnn.quantize(activations="int16")
    g = qm.graph
    assert all(op.kind is not OpKind.QUANTIZE for op in g.ops)
    for name, t in g.tensors.items():
        if not t.is_const:
            assert t.dtype is DType.INT16 and t.qparams.zero_point == (0,), name
    for op in g.ops:
        if op.kind in precision.WEIGHTED_KINDS:
            assert g.tensors[op.inputs[1]].dtype is DType.INT8
            assert g.tensors[op.inputs[2]].dtype is DType.INT64
    out = g.tensors[g.outputs[0]]
    assert out.qparams.scale == (1.0 / 32768.0,)  # softmax's fixed int16 output
    assert qm.report.sqnr_db > cnn.quantize().report.sqnr_db


def test_mixed_16x8_converts_at_the_boundaries(cnn):
    qm = cnn.quantize(activations={"depthwise_conv2d1": "int16"})
    g = qm.graph
    assert g.tensors[g.inputs[0]].dtype is DType.INT8 and g.tensors[g.outputs[0]].dtype is DType.INT8
    dts = {op.name: g.tensors[op.outputs[0]].dtype for op in g.ops}
    assert dts["conv2d0"] is DType.INT8 and dts["depthwise_conv2d1"] is DType.INT16
    assert dts["avg_pool2d2"] is DType.INT16 and dts["fully_connected4"] is DType.INT8
    quant = [op for op in g.ops if op.kind is OpKind.QUANTIZE]
    pairs = [(g.tensors[op.inputs[0]].dtype, g.tensors[op.outputs[0]].dtype) for op in quant]
    assert pairs == [(DType.INT8, DType.INT16), (DType.INT16, DType.INT8)]
    assert next(r for r in qm.report.layers if r.tensor == "depthwise_conv2d1").activations == "int16"
    # a first layer in int16 takes an int16 input (no int8 -> int16 QUANTIZE, which TFLite 2.14 lacks); an output
    # keeps the type of the op computing it (softmax after an int16 layer: int16, fixed at 1/32768)
    first = cnn.quantize(activations={"conv2d0": "int16"}).graph
    assert first.tensors[first.inputs[0]].dtype is DType.INT16
    assert [op.kind for op in first.ops].count(OpKind.QUANTIZE) == 1
    last = cnn.quantize(activations={"fully_connected4": "int16"}).graph
    out = last.tensors[last.outputs[0]]
    assert out.dtype is DType.INT16 and out.qparams.scale == (1.0 / 32768.0,)


def test_packed_widths_survive_the_int8_container_file(cnn):
    qm = cnn.quantize(weight_bits={"conv2d0": 4, "depthwise_conv2d1": 2, "fully_connected4": 1})
    back = load(qm.tflite_bytes())
    got = {op.name: back.tensors[op.inputs[1]].dtype for op in back.ops if op.kind in precision.WEIGHTED_KINDS}
    assert sorted(v.value for v in got.values()) == ["int1", "int2", "int4"]


def test_report_json_has_the_precision(cnn):
    d = json.loads(cnn.quantize(weight_bits=4).report.to_json())
    row = next(r for r in d["layers"] if r["tensor"] == "fully_connected4")
    assert row["weight_bits"] == 4 and row["activations"] == "int8" and row["rounding"] == "gptq"
    assert isinstance(row["rounding_gain_db"], float)
    assert d["rounding"] == "auto"


def test_cli_quantize_weight_bits_and_activations(tmp_path, capsys):
    g, x = _cnn()
    model, calib = tmp_path / "f.tflite", tmp_path / "c.npy"
    model.write_bytes(write(g))
    np.save(calib, x[:16])
    out = tmp_path / "q.tflite"
    rc = main(["quantize", str(model), "--calib", str(calib), "-o", str(out), "--weight-bits", "4",
               "--rounding", "nearest", "--activations", "int16"])  # fmt: skip
    assert rc == 0
    text = capsys.readouterr().out
    assert "weights 4-bit, activations int16" in text and "4b nearest" in text
    back = load(out.read_bytes())
    assert {t.dtype for t in back.tensors.values() if not t.is_const} == {DType.INT16}
    with pytest.raises(SystemExit) as e:  # argparse: usage and exit status 2
        main(["quantize", str(model), "--calib", str(calib), "-o", str(out), "--weight-bits", "3"])
    assert e.value.code == 2 and "--weight-bits" in capsys.readouterr().err
    # the options need --calib on the commands that compile
    assert main(["compile", str(model), "--weight-bits", "4", "-o", str(tmp_path / "c")]) == 2
    assert "--weight-bits needs --calib" in capsys.readouterr().err
