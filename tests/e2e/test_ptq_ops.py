"""Post-training quantization of one-op and small multi-op float models (tests/util/float_models.py), end to end.

For each model: 16 seeded random calibration samples, ``mcuq.quantize`` with the default method, then
  * the int8 graph follows TFLite's int8 spec (weights symmetric per channel in [-127, 127], int32 biases at
    input scale x weight scale, fixed softmax/logistic/tanh outputs, shared quantization where an op needs it,
    no zero or NaN scale anywhere);
  * the .tflite that mcuq writes runs in the oracle (tflite-runtime 2.14, BUILTIN_REF), mcuq compiles it, and the
    generated C equals the oracle bit for bit on held-out samples quantized to int8;
  * the dequantized C output is close to the float model's output (SQNR bound per model).
Degenerate models (a constant input channel, an all-zero weight channel, activations that are always 0, a single
calibration sample), every calibration method, and determinism (same bytes twice, and under 1 or 2 BLAS threads).
"""

from __future__ import annotations

import functools
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import mcuq
from mcuq import ir
from mcuq.lower import LOWERINGS
from mcuq.quant.ptq import DEFAULT_METHOD, METHODS, QuantizedModel, quantize
from mcuq.reference import run_graph
from tests.util import oracle
from tests.util.compare import first_differing_layer
from tests.util.float_models import CASES, FloatModel, float_model
from tests.util.harness import reference_outputs

ROOT = Path(__file__).resolve().parents[2]
N_CALIB, N_TEST = 16, 8
CALIB_SEED, TEST_SEED = 1, 2
K = ir.OpKind
FIXED = {K.SOFTMAX: (1 / 256, -128), K.SIGMOID: (1 / 256, -128), K.TANH: (1 / 128, 0)}
SHARED = {K.CONCAT, K.MAX_POOL2D, K.RESHAPE, K.PAD, K.TRANSPOSE}  # inputs and output share one quantization
WEIGHTED = {K.CONV2D: 0, K.DEPTHWISE_CONV2D: 3, K.FULLY_CONNECTED: 0}  # the output-channel axis of the weights


def as_samples(batches: list[np.ndarray]) -> list[list[np.ndarray]]:
    """One list of input arrays per sample (TFLite's representative_dataset form) from stacked batches."""
    return [[x[i] for x in batches] for i in range(batches[0].shape[0])]


@functools.cache
def quantized(name: str, method: str = DEFAULT_METHOD, n_calib: int = N_CALIB) -> tuple[FloatModel, QuantizedModel]:
    fm = float_model(name)
    calib = as_samples(fm.samples(n_calib, CALIB_SEED))
    return fm, quantize(fm.graph, calib, method=method, per_channel_fc=fm.per_channel_fc)


def to_int8(x: np.ndarray, t: ir.Tensor) -> np.ndarray:
    """Float inputs quantized at the edge as the generated header says: round(x / scale) + zero point, clamped."""
    q = np.asarray(x, np.float32) / np.float32(t.scale)
    q = np.copysign(np.floor(np.abs(q.astype(np.float64)) + 0.5), q) + t.zero_point
    return np.clip(q, -128, 127).astype(np.int8)


def sqnr_db(ref: np.ndarray, got: np.ndarray) -> float:
    ref, got = np.asarray(ref, np.float64), np.asarray(got, np.float64)
    noise = float(np.sum((ref - got) ** 2))
    return math.inf if noise == 0 else 10 * math.log10(float(np.sum(ref**2)) / noise)


def float_outputs(g: ir.Graph, batches: list[np.ndarray]) -> list[np.ndarray]:
    runs = [run_graph(g, sample) for sample in as_samples(batches)]
    return [np.stack([r[o] for r in runs]) for o in g.outputs]


def run_bit_exact(
    qm: QuantizedModel, xs_float: list[np.ndarray], oracle_ok: bool, tflite_ok: bool = True
) -> tuple[mcuq.CompiledModel, list[np.ndarray]]:
    """Compile the .tflite that mcuq wrote (the quantized graph itself where TFLite lacks an op: ``tflite_ok``), run
    the C on ``xs_float`` quantized to int8 and assert it equals the oracle (or, where the oracle is wrong or has no
    such op, mcuq's numpy mirror); returns the compiled model and the C outputs."""
    model = qm.tflite_bytes() if tflite_ok else None
    cm = mcuq.compile_model(qm if model is None else model, sanitize=True)
    xs = [to_int8(x, t) for x, t in zip(xs_float, cm.input_tensors)]
    got = cm.run(xs)
    if oracle_ok:
        want = [np.stack([r["outputs"][k] for r in oracle.run(model, as_samples(xs))]) for k in range(len(got))]
    else:
        ref = reference_outputs(cm.graph, xs)
        want = [ref[o] for o in cm.graph.outputs]
    for k, (g, w) in enumerate(zip(got, want)):
        if not np.array_equal(g, w.reshape(g.shape)):
            bad = next(i for i in range(len(g)) if not np.array_equal(g[i], w[i].reshape(g[i].shape)))
            where = first_differing_layer(cm, model, [x[bad] for x in xs]) if oracle_ok else ""
            pytest.fail(f"{qm.graph.name}: output {k} of the C differs on sample {bad}; {where}")
    return cm, got


def dequantize(q: np.ndarray, t: ir.Tensor) -> np.ndarray:
    return (q.astype(np.float64) - t.zero_point) * t.scale


# -- coverage ----------------------------------------------------------------------------------------------------


def test_every_op_of_the_int8_set_has_a_float_model():
    covered = {op.kind for make in CASES.values() for op in make().graph.ops}
    int8_set = set(LOWERINGS) - {K.QUANTIZE, K.COPY}  # QUANTIZE and COPY are made by mcuq, not found in models
    assert int8_set <= covered, f"no float model uses {sorted(k.name for k in int8_set - covered)}"


# -- the quantized graph follows the int8 spec -------------------------------------------------------------------


def check_int8_spec(qm: QuantizedModel, per_channel_fc: bool) -> None:
    g = qm.graph
    for name in (*g.inputs, *g.outputs):
        assert g.tensors[name].dtype is ir.DType.INT8, f"{name}: {g.tensors[name].dtype}"
    for t in g.tensors.values():
        if t.qparams is None:
            assert t.is_const and t.dtype is ir.DType.INT32, f"{t.name} has no quantization"
            continue
        s = np.asarray(t.qparams.scale)
        assert np.all(np.isfinite(s)) and np.all(s > 0), f"{t.name}: scale {t.qparams.scale}"
        if not t.is_const:
            assert t.dtype is ir.DType.INT8 and not t.qparams.per_channel, t.name
            assert -128 <= t.zero_point <= 127, t.name
    for op in g.ops:
        out = g.tensors[op.outputs[0]]
        if op.kind in WEIGHTED:
            check_weights(g, op, per_channel=op.kind is not K.FULLY_CONNECTED or per_channel_fc)
        if op.kind in FIXED:
            assert (out.scale, out.zero_point) == FIXED[op.kind], f"{op.where}: {out.qparams}"
        if op.kind in SHARED:
            for x in op.inputs:
                assert g.tensors[x].qparams == out.qparams, f"{op.where}: input '{x}' {g.tensors[x].qparams}"


def check_weights(g: ir.Graph, op: ir.Op, per_channel: bool) -> None:
    x, w, b = (g.tensors[n] for n in op.inputs[:3])
    assert w.dtype is ir.DType.INT8 and w.data is not None
    assert int(w.data.min()) >= -127, f"{op.where}: weight -128"
    assert set(w.qparams.zero_point) == {0}, f"{op.where}: weights not symmetric"
    channels = w.shape[WEIGHTED[op.kind]]
    if per_channel:
        assert len(w.qparams.scale) == channels and w.qparams.axis == WEIGHTED[op.kind], f"{op.where}"
    else:
        assert len(w.qparams.scale) == 1, f"{op.where}: per-tensor weights expected"
    assert b.dtype is ir.DType.INT32 and b.shape == (channels,)
    want = np.float32(x.scale) * np.asarray(w.qparams.scale, np.float32)  # one scale per weight scale
    np.testing.assert_allclose(want, b.qparams.scale, rtol=1e-6, err_msg=op.where)


@pytest.mark.parametrize("name", CASES)
def test_quantized_model_follows_the_int8_spec(name):
    fm, qm = quantized(name)
    check_int8_spec(qm, fm.per_channel_fc)
    kinds = sorted(op.kind.name for op in qm.graph.ops if op.kind is not K.QUANTIZE)
    assert kinds == sorted(op.kind.name for op in qm.float_graph.ops)


def test_an_all_zero_weight_channel_keeps_an_ordinary_scale():
    _, qm = quantized("zero_weight_channel")
    w = qm.graph.tensors[qm.graph.ops[0].inputs[1]]
    assert not w.data[2].any() and w.data[[0, 1, 3, 4]].any()
    scales = np.asarray(w.qparams.scale)
    assert np.median(scales) / 10 < scales[2] < np.median(scales) * 10  # no zero, no extreme multiplier


def test_batchnorm_after_conv_is_folded_into_it():
    _, qm = quantized("conv_batchnorm")
    assert [op.kind for op in qm.graph.ops] == [K.CONV2D]


def test_concat_inputs_from_convs_of_different_gain_share_one_quantization():
    fm, qm = quantized("concat")
    g = fm.graph
    y = run_graph(g, as_samples(fm.samples(4, CALIB_SEED))[0])
    a, b = (float(np.abs(y[op.outputs[0]]).max()) for op in g.ops[:2])
    assert max(a, b) > 2.5 * min(a, b)  # the float ranges differ ...
    cat = next(op for op in qm.graph.ops if op.kind is K.CONCAT)
    assert len({qm.graph.tensors[x].qparams for x in (*cat.inputs, *cat.outputs)}) == 1  # ... the int8 ones do not


# -- bit-exact with the oracle, and close to float ---------------------------------------------------------------


@pytest.mark.oracle
@pytest.mark.parametrize("name", CASES)
def test_quantized_model_is_bit_exact_and_close_to_float(name):
    oracle.require()
    fm, qm = quantized(name)
    xs = fm.samples(N_TEST, TEST_SEED)
    cm, got = run_bit_exact(qm, xs, fm.oracle_ok, fm.tflite_ok)
    want = float_outputs(fm.graph, xs)
    for g, w, t in zip(got, want, cm.output_tensors):
        deq = dequantize(g, t).reshape(w.shape)
        if fm.min_sqnr_db is None:  # a constant float output (all 0): int8 represents 0 exactly
            np.testing.assert_array_equal(w, 0.0)
            np.testing.assert_array_equal(deq, 0.0)
        else:
            got_db = sqnr_db(w, deq)
            print(f"{name}: output SQNR {got_db:.1f} dB (bound {fm.min_sqnr_db})")
            assert got_db > fm.min_sqnr_db, f"{name}: SQNR {got_db:.1f} dB <= {fm.min_sqnr_db} dB"


@pytest.mark.oracle
@pytest.mark.parametrize("name", ["small_cnn", "const_input_channel"])
def test_a_single_calibration_sample_is_enough(name):
    oracle.require()
    fm, qm = quantized(name, n_calib=1)
    check_int8_spec(qm, fm.per_channel_fc)
    run_bit_exact(qm, fm.samples(N_TEST, TEST_SEED), fm.oracle_ok)


@pytest.mark.oracle
@pytest.mark.parametrize("method", METHODS)
def test_every_calibration_method_is_bit_exact(method):
    oracle.require()
    fm, qm = quantized("branches", method=method)
    check_int8_spec(qm, fm.per_channel_fc)
    xs = fm.samples(N_TEST, TEST_SEED)
    cm, got = run_bit_exact(qm, xs, fm.oracle_ok)
    got_db = sqnr_db(float_outputs(fm.graph, xs)[0], dequantize(got[0], cm.output_tensors[0]))
    print(f"branches, {method}: output SQNR {got_db:.1f} dB")
    assert got_db > 20.0, f"{method}: SQNR {got_db:.1f} dB"


# -- determinism ------------------------------------------------------------------------------------------------


def test_quantizing_twice_gives_the_same_bytes():
    fm = float_model("residual")
    calib = as_samples(fm.samples(N_CALIB, CALIB_SEED))
    assert quantize(fm.graph, calib).tflite_bytes() == quantize(fm.graph, calib).tflite_bytes()


_CHILD = """
import hashlib, sys
from threadpoolctl import threadpool_info
from mcuq.quant.ptq import quantize
from tests.util.float_models import wide_mlp
fm = wide_mlp()
qm = quantize(fm.graph, fm.samples(64, 5)[0])
threads = max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")
print(threads, hashlib.sha256(qm.tflite_bytes()).hexdigest())
"""


def test_bytes_do_not_depend_on_the_blas_thread_count():
    results = {}
    for threads in ("1", "2"):
        env = {**os.environ, "OPENBLAS_NUM_THREADS": threads, "PYTHONPATH": str(ROOT)}
        proc = subprocess.run([sys.executable, "-c", _CHILD], cwd=ROOT, env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-2000:]
        seen, digest = proc.stdout.split()
        assert seen == threads  # the child really ran with that many BLAS threads
        results[threads] = digest
    assert results["1"] == results["2"]
