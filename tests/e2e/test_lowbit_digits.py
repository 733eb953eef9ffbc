"""Sub-8-bit weights on the digits CNN of tests/util/digits_float.py (trained here in seconds), issue 11's targets.

Measured on this model (360 held-out digits, 512 calibration images; float 99.2 %): it is far less sensitive to
4-bit weights than the issue's reference model (round-to-nearest int4 everywhere gives 99 % here, not 68 %), so
the "10 points above round-to-nearest" target is checked where rounding matters on this model, at 2 bits (ternary):
round-to-nearest 69 %, GPTQ 90 %. Uniform int4 with GPTQ stays above 78 % and within a point of float. The
generated C (under ASan/UBSan) equals the oracle, tflite-runtime running the int8-container file, bit for bit."""

from __future__ import annotations

import functools

import numpy as np
import pytest

import mcuq
from mcuq.frontend.tflite_writer import write
from mcuq.quant.edge import quantize_input
from mcuq.quant.ptq import Quantizer
from tests.util import digits_float as df
from tests.util import oracle
from tests.util.compare import assert_bit_exact

pytest.importorskip("sklearn", reason="scikit-learn (the `examples` extra) provides the digits data set")

N_CALIB = 512
AI_EDGE_INT4 = 0.78  # AI Edge Quantizer's int4 recipe on such a model (issue 11)


@functools.cache
def digits() -> tuple[df.TrainedDigits, Quantizer, np.ndarray]:
    """(the trained network, a Quantizer of its exported float model, the test images (N, 1, 8, 8, 1)); once."""
    tr = df.train()
    q = Quantizer(write(df.float_graph(tr.params)), tr.x_train[:N_CALIB].astype(np.float32)[:, None])
    return tr, q, tr.x_test.astype(np.float32)[:, None]


def accuracy(qm) -> float:
    tr, q, x = digits()
    out = q.evaluate(qm, x).outputs[0]
    return float(np.mean(np.argmax(out.reshape(len(x), -1), axis=1) == tr.y_test))


def float_accuracy() -> float:
    tr, q, x = digits()
    out = q.evaluate(q.quantize(), x).float_outputs[0]
    return float(np.mean(np.argmax(out.reshape(len(x), -1), axis=1) == tr.y_test))


def test_int4_with_gptq_is_above_the_ai_edge_figure_and_near_float():
    _, q, _ = digits()
    acc = accuracy(q.quantize(weight_bits=4))  # rounding "auto": GPTQ at 4 bits
    print(f"digits int4: GPTQ {acc:.4f}, float {float_accuracy():.4f}")
    assert acc > AI_EDGE_INT4
    assert acc >= float_accuracy() - 0.01


def test_better_rounding_gains_10_points_over_nearest_at_2_bits():
    _, q, _ = digits()
    nearest = q.quantize(weight_bits=2, rounding="nearest")
    gptq = q.quantize(weight_bits=2, rounding="gptq")
    a_n, a_g = accuracy(nearest), accuracy(gptq)
    print(f"digits ternary: nearest {a_n:.4f}, GPTQ {a_g:.4f}")
    assert a_g >= a_n + 0.10
    assert a_g > AI_EDGE_INT4
    gains = [r.rounding_gain_db for r in gptq.report.layers if r.rounding_gain_db is not None]
    assert len(gains) == 4 and sum(gains) > 0  # the report says what the rounding gained, layer by layer


@pytest.mark.oracle
def test_generated_c_equals_the_oracle_at_every_width():
    oracle.require()
    tr, q, x = digits()
    names = q.layer_names
    qm = q.quantize(weight_bits=dict(zip(names, (4, 2, 1, 4))))  # int4, ternary, binary: every packing
    data = qm.tflite_bytes()
    cm = mcuq.compile_model(data, sanitize=True)
    assert_bit_exact(cm, data, [quantize_input(cm.input_tensors[0], x)])
    uniform = q.quantize(weight_bits=4)
    data4 = uniform.tflite_bytes()
    cm4 = mcuq.compile_model(data4, sanitize=True)
    assert_bit_exact(cm4, data4, [quantize_input(cm4.input_tensors[0], x)])
