"""QAT on digits: accuracy against float at 8 bits, 4 bits and ternary (first and last layers at 8), and fidelity:
the exported model compiled to C and run on the host gives the QAT model's own evaluation."""

from __future__ import annotations

import numpy as np
import pytest

import mcuq
from tests.qat import digits as D

torch = pytest.importorskip("torch", reason="mcuq.qat needs torch (the qat extra)")
from mcuq import qat  # noqa: E402

BOUND = {"int8": 0.003, "int4": 0.005, "ternary": 0.04}  # QAT accuracy at most this far below float


@pytest.mark.parametrize("name", list(BOUND))
def test_accuracy_against_float(name, float_net, qat_runs):
    acc_float, run = float_net[1], qat_runs[name]
    assert acc_float > 0.97, acc_float
    assert run.accuracy >= acc_float - BOUND[name], (name, run.accuracy, acc_float)


def test_widths_as_asked(qat_runs):
    assert qat_runs["int4"].model.weight_bits == {"conv1": 4, "dw": 4, "pw": 4, "fc": 4}
    assert qat_runs["ternary"].model.weight_bits == {"conv1": 8, "dw": 2, "pw": 2, "fc": 8}
    qm = qat_runs["ternary"].model
    w = qm.layer("dw").integer_params(float(qm.input_obs.frozen_qparams()[0]))[1]
    assert set(np.unique(w)) <= {-1, 0, 1}


@pytest.mark.parametrize("name", list(BOUND))
def test_compiled_c_is_the_qat_evaluation(name, qat_runs, data, tmp_path):
    """Export -> .tflite -> compile_model -> host run: the same accuracy as the QAT model's evaluation (within 0.3
    points; measured: equal) and the same logits (measured: no logit differs, as each layer passes on mcuq's integer
    result)."""
    run = qat_runs[name]
    path = qat.export(run.model, tmp_path / f"{name}.tflite")
    cm = mcuq.compile_model(path, sanitize=False)
    x = qat.nhwc_input(data.x_test)[:, None]  # a batch of (1, 8, 8, 1) NHWC inputs
    c_logits = cm.run(x, float_output=True)[0].reshape(len(x), -1)
    c_acc = float(np.mean(np.argmax(c_logits, axis=1) == data.y_test.numpy()))
    assert abs(c_acc - run.accuracy) <= 0.003, (name, c_acc, run.accuracy)
    step = run.model.layer("fc").out.frozen_qparams()[0]
    steps = np.abs(c_logits - D.logits(run.model, data.x_test)) / step
    differ = int(np.count_nonzero(steps > 0.5))
    assert differ == 0, f"{name}: {differ} of {steps.size} logits differ, by up to {steps.max():.0f} steps"
    # the exported file records each layer's width (the int8-container metadata)
    qmodel = qat.to_quantized(run.model)
    assert {k: p.weight_bits for k, p in qmodel.precision.items()} == run.model.weight_bits


def test_float_simulation_bound(qat_runs, data):
    """Without mcuq's integer arithmetic in the forward pass (``integer=False``) the float simulation drifts from the
    device by near-ties of requantization: count the logits that differ and bound them."""
    run = qat_runs["int4"]
    qm = run.model
    ref = qat.evaluate_integer(qm, data.x_test)
    layers = [qm.layer(n) for n in qm.layer_names]
    try:
        for m in layers:
            m.integer = False
        sim = D.logits(qm, data.x_test)
    finally:
        for m in layers:
            m.integer = True
    step = qm.layer("fc").out.frozen_qparams()[0]
    steps = np.abs(sim - ref) / step
    assert np.count_nonzero(steps > 0.5) <= 0.6 * steps.size  # measured 36 % at int4, 6 % at int8
    assert steps.max() <= 4.5  # measured: 2 steps
    assert np.mean(np.argmax(sim, 1) == np.argmax(ref, 1)) >= 0.98


@pytest.mark.oracle
def test_tflite_runtime_runs_the_export(qat_runs, data, tmp_path):
    """The int8-container file (ternary layers as int8 in {-1, 0, 1} with the width metadata) under tflite-runtime's
    reference kernels gives exactly mcuq's integer outputs."""
    from tests.util import oracle

    oracle.require()
    run = qat_runs["ternary"]
    path = qat.export(run.model, tmp_path / "ternary.tflite")
    qmodel = qat.to_quantized(run.model)
    t_in = qmodel.graph.tensors[qmodel.graph.inputs[0]]
    x = qat.nhwc_input(data.x_test[:64])
    xq = np.clip(qat.round_half_away(torch.from_numpy(x / np.float32(t_in.scale))).numpy() + t_in.zero_point,
                 -128, 127).astype(np.int8)  # fmt: skip
    got = np.stack([r["outputs"][0] for r in oracle.run(path, [[xi[None]] for xi in xq])]).reshape(64, -1)
    from mcuq.quant.evaluate import run_batch

    want = run_batch(qmodel.graph, [xq[:, None]])[0].reshape(64, -1)
    np.testing.assert_array_equal(got, want)


def test_native_int4_export(qat_runs, data, tmp_path):
    """``native_int4=True`` writes INT4 tensors; compiled, the model computes the same logits as the container."""
    run = qat_runs["int4"]
    path = qat.export(run.model, tmp_path / "int4.tflite", native_int4=True)
    container = qat.export(run.model, tmp_path / "int4_container.tflite")
    assert path.read_bytes() != container.read_bytes()
    again = qat.export(run.model, tmp_path / "again.tflite")
    assert again.read_bytes() == container.read_bytes()  # deterministic: the same model, the same bytes
    x = qat.nhwc_input(data.x_test[:40])[:, None]
    got = mcuq.compile_model(path, sanitize=False).run(x, float_output=True)[0].reshape(40, -1)
    np.testing.assert_array_equal(got, D.logits(run.model, data.x_test[:40]))
