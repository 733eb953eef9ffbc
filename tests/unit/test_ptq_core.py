"""The quantizer's own rules (mcuq/quant/ptq.py, calibrator.py, batch.py): shared and fixed quantization, the concat requantize, bias
correction, batched and per-sample calibration agreeing, and its refusals."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import mcuq
from mcuq import ir
from mcuq.errors import McuqError, ModelError
from mcuq.quant import batch, calibrator
from mcuq.quant.values import affine_quantize
from mcuq.reference import run_graph
from tests.util.float_models import Builder
from tests.util.tiny import tiny_fc_graph

K, A = ir.OpKind, ir.Activation


def _data(shape: tuple[int, ...], n: int = 12, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, size=(n, *shape)).astype(np.float32)


def _softmax_concat() -> ir.Graph:
    """concat(softmax(fc(x)), fc(x)): the softmax output's quantization is fixed, so it cannot join the concat's."""
    b = Builder("softmax_concat", 3)
    x = b.input((1, 8))
    s = b.softmax(b.fc(x, 4))
    y = b.concat((s, b.fc(x, 4)), axis=1)
    return b.graph(y)


def test_concat_input_with_fixed_quantization_is_requantized():
    qm = mcuq.quantize(_softmax_concat(), _data((1, 8)))
    g = qm.graph
    kinds = [op.kind for op in g.ops]
    assert K.QUANTIZE in kinds, kinds
    rq = next(op for op in g.ops if op.kind is K.QUANTIZE)
    concat = next(op for op in g.ops if op.kind is K.CONCAT)
    assert rq.outputs[0] in concat.inputs
    src, dst = g.tensors[rq.inputs[0]], g.tensors[concat.outputs[0]]
    assert (src.scale, src.zero_point) == (1 / 256, -128)
    for name in concat.inputs:  # every concat input shares the output's quantization
        t = g.tensors[name]
        assert (t.scale, t.zero_point) == (dst.scale, dst.zero_point)
    cm = mcuq.compile_model(g)
    x = affine_quantize(_data((1, 8), 4, seed=9), g.tensors[g.inputs[0]].scale, g.tensors[g.inputs[0]].zero_point)
    want = np.stack([run_graph(g, [xi])[g.outputs[0]] for xi in x])
    assert np.array_equal(cm.run(x)[0], want)


def test_pass_through_ops_share_their_input_quantization():
    b = Builder("chain", 1)
    x = b.input((1, 6, 6, 2))
    c = b.conv(x, 4, act=A.RELU)
    p = b.pool(K.MAX_POOL2D, c)
    r = b.reshape(p, (1, 36))
    g = mcuq.quantize(b.graph(b.fc(r, 3)), _data((1, 6, 6, 2))).graph
    qp = {n: (g.tensors[n].scale, g.tensors[n].zero_point) for n in (c, p, r)}
    assert len(set(qp.values())) == 1, qp


def test_bias_correction_removes_the_mean_shift_of_weight_rounding():
    """Per-tensor weights with one large weight round the others coarsely; on positive inputs that shifts the
    mean output. The corrected model's mean output error over the calibration data is smaller than without."""
    rng = np.random.default_rng(4)
    w = rng.normal(size=(4, 16)) * 0.1
    w[0, 0] = 3.0  # sets the per-tensor scale: every other weight rounds to a step of 3/127
    b = Builder("fc", 0)
    y = b.fc(b.input((1, 16)), 4, w=w, b=np.zeros(4))
    g = b.graph(y)
    x = rng.uniform(0.5, 1.5, size=(64, 1, 16)).astype(np.float32)
    shifts = {}
    for bc in (False, True):
        qm = mcuq.quantize(g, x, method="minmax", per_channel_fc=False, bias_correction=bc)
        q, xin, yt = qm.graph, qm.graph.tensors["x"], qm.graph.tensors[y]
        errs = []
        for xi in x:
            f = run_graph(g, [xi])[y].astype(np.float64)
            qi = run_graph(q, [affine_quantize(xi, xin.scale, xin.zero_point)])[y]
            errs.append((qi.astype(np.float64) - yt.zero_point) * yt.scale - f)
        shifts[bc] = np.abs(np.mean(errs, axis=0)).max()
    assert shifts[True] < 0.5 * shifts[False], shifts


def test_batched_and_per_sample_calibration_agree(monkeypatch):
    """A TRANSPOSE that moves the batch axis makes the graph unbatchable: the per-sample path must give the same
    model as the batched one on the equivalent graph without it."""
    b = Builder("t", 2)
    x = b.input((1, 4, 4, 3))
    c = b.conv(x, 5, act=A.RELU6)
    y = b.fc(b.reshape(c, (1, 80)), 6)
    g = b.graph(y)
    assert batch.batchable(g)
    data = _data((1, 4, 4, 3), 6)
    batched = mcuq.quantize(g, data).tflite_bytes()
    monkeypatch.setattr(batch, "batchable", lambda _g: False)  # force the per-sample path
    assert mcuq.quantize(g, data).tflite_bytes() == batched


def test_transpose_of_the_batch_axis_calibrates_sample_by_sample():
    b = Builder("tb", 5)
    x = b.input((1, 3, 4))
    t = b.transpose(x, (1, 0, 2))
    g = b.graph(b.fc(b.reshape(t, (1, 12)), 2))
    assert not batch.batchable(g)
    qm = mcuq.quantize(g, _data((1, 3, 4), 5))
    assert qm.report.sqnr_db is not None and qm.report.sqnr_db > 30


def test_nan_weights_are_refused_by_name():
    g = tiny_fc_graph(dtype=ir.DType.FLOAT32)
    w = g.tensors["w"].data.copy()
    w[1, 2] = np.nan
    g = dataclasses.replace(g, tensors={**g.tensors, "w": dataclasses.replace(g.tensors["w"], data=w)})
    with pytest.raises(ModelError, match=r"FULLY_CONNECTED 'fc'.*constant 'w' holds NaN or inf"):
        mcuq.quantize(g, _data((1, 8)))


def test_an_int8_model_is_refused_with_what_to_do():
    with pytest.raises(ModelError, match="already quantized"):
        mcuq.quantize(tiny_fc_graph(), _data((1, 8)))


def test_unknown_method_and_option_types_are_refused():
    g = tiny_fc_graph(dtype=ir.DType.FLOAT32)
    with pytest.raises(McuqError, match="unknown calibration method 'median'"):
        mcuq.quantize(g, _data((1, 8)), method="median")
    with pytest.raises(McuqError, match="must be True or False"):
        mcuq.quantize(g, _data((1, 8)), bias_correction="yes")


def test_working_memory_limit_names_the_numbers(monkeypatch):
    monkeypatch.setenv(calibrator.WORK_MEMORY_ENV, "1000")
    with pytest.raises(McuqError, match=r"12 samples needs about .* GiB .* give fewer samples or raise \$MCUQ_CALIB"):
        mcuq.quantize(tiny_fc_graph(dtype=ir.DType.FLOAT32), _data((1, 8)))


def test_report_rows_and_json():
    qm = mcuq.quantize(_softmax_concat(), _data((1, 8)), method="auto")
    r = qm.report
    assert [row.tensor for row in r.layers][0] == "x"
    assert {row.method for row in r.layers} >= {"fixed"}
    assert sum(row.worst for row in r.layers) == 3
    text = r.table()
    assert "<- worst" in text and "end-to-end SQNR" in text
    import json

    d = json.loads(r.to_json())
    assert len(d["layers"]) == len(r.layers) and d["method"] == "auto"


def test_integer_calibration_data_is_used_as_is_with_a_warning(caplog):
    """uint8 pixels for a float input are taken at face value (0..255); the user is told, in one warning."""
    from mcuq.quant.calib import load_calibration

    g = tiny_fc_graph(dtype=ir.DType.FLOAT32)
    pixels = np.random.default_rng(0).integers(0, 256, size=(4, 8), dtype=np.uint8)
    with caplog.at_level("WARNING", logger="mcuq"):
        cs = load_calibration(pixels, g)
    assert cs.arrays[0].max() == pixels.max()  # no rescaling
    assert any("is uint8" in r.getMessage() and "0..255" in r.getMessage() for r in caplog.records)
