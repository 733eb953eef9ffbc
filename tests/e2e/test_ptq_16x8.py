"""16x8 quantization (int16 activations, int8 weights, int64 biases): never below int8's SQNR on the same model, and
the generated C equals the oracle (tflite-runtime's 16x8 reference kernels), for uniform and mixed int8/int16.
Models: the digits CNN (tests/util/digits_float.py) and TFLM's hello_world float model (../shared/models)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import mcuq
from mcuq.ir import DType, OpKind
from mcuq.quant.edge import quantize_input
from mcuq.quant.ptq import Quantizer
from tests.conftest import models_dir
from tests.e2e.test_lowbit_digits import digits
from tests.util import oracle
from tests.util.compare import assert_bit_exact


def _sqnr(q: Quantizer, qm, x) -> float:
    return q.evaluate(qm, x).sqnr_db


def test_digits_16x8_is_not_below_int8():
    _, q, x = digits()
    s8, s16 = _sqnr(q, q.quantize(), x), _sqnr(q, q.quantize(activations="int16"), x)
    print(f"digits held-out SQNR: int8 {s8:.2f} dB, 16x8 {s16:.2f} dB")
    assert s16 >= s8


@pytest.mark.models
def test_hello_world_16x8_is_not_below_int8():
    x = np.random.default_rng(20261127).uniform(0, 2 * math.pi, size=(80, 1, 1)).astype(np.float32)
    q = Quantizer(models_dir() / "tflm/hello_world_float.tflite", x[:64])
    s8, s16 = _sqnr(q, q.quantize(), x[64:]), _sqnr(q, q.quantize(activations="int16"), x[64:])
    print(f"hello_world held-out SQNR: int8 {s8:.2f} dB, 16x8 {s16:.2f} dB")
    assert s16 >= s8


@pytest.mark.oracle
@pytest.mark.parametrize("which", ["uniform", "mixed"])
def test_16x8_generated_c_equals_the_oracle(which):
    oracle.require()
    _, q, x = digits()
    names = q.layer_names
    if which == "uniform":
        qm = q.quantize(activations="int16")
        assert qm.graph.tensors[qm.graph.inputs[0]].dtype is DType.INT16
    else:  # the first two layers 16x8 (one with 4-bit weights), the rest int8: one int16 -> int8 QUANTIZE
        qm = q.quantize(activations={names[0]: "int16", names[1]: "int16"}, weight_bits={names[1]: 4})
        assert [op.kind for op in qm.graph.ops].count(OpKind.QUANTIZE) == 1
    data = qm.tflite_bytes()
    cm = mcuq.compile_model(data, sanitize=True)
    assert_bit_exact(cm, data, [quantize_input(cm.input_tensors[0], x)])


def test_int8_to_int16_boundary_c_equals_the_numpy_kernels():
    """An int16 layer after int8 ones needs QUANTIZE int8 -> int16, which tflite-runtime 2.14 refuses
    (quantize.cc: an int8 input requantizes to int8 or uint8 only; TFLM has it). The generated C is checked
    against the numpy mirrors of its kernels instead, which the oracle checks op by op elsewhere."""
    _, q, x = digits()
    names = q.layer_names
    qm = q.quantize(activations={names[2]: "int16"})
    kinds = [(op.kind, qm.graph.tensors[op.inputs[0]].dtype) for op in qm.graph.ops if op.kind is OpKind.QUANTIZE]
    assert (OpKind.QUANTIZE, DType.INT8) in kinds
    cm = mcuq.compile_model(qm.tflite_bytes(), sanitize=True)
    got = cm.run([quantize_input(cm.input_tensors[0], x[:64])])[0]
    want = run_integer_raw(qm.graph, x[:64])
    np.testing.assert_array_equal(got.reshape(want.shape), want)


def run_integer_raw(g, x: np.ndarray) -> np.ndarray:
    """The quantized graph's integer output on float inputs, through the numpy kernels (batched)."""
    from mcuq.quant.batch import BatchRunner

    n = len(x)
    runner = BatchRunner(g, n)
    t = g.tensors[g.inputs[0]]
    env = {t.name: quantize_input(t, x.reshape(runner.shape(t) if runner.batched else (n, *t.shape)))}
    for op in g.ops:
        env[op.outputs[0]] = runner.int_op(op, g.tensors, env)
    return env[g.outputs[0]].reshape(n, *g.tensors[g.outputs[0]].shape)
