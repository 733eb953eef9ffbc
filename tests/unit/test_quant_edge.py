"""mcuq.quant.edge: float32 in and out of a quantized model, bit for bit as TFLite's QUANTIZE and DEQUANTIZE."""

from __future__ import annotations

import numpy as np
import pytest

from mcuq import ir
from mcuq.errors import McuqError
from mcuq.frontend.tflite_writer import write
from mcuq.quant.edge import dequantize_output, prepare_inputs, quantize_input
from tests.util import oracle

# (dtype, scale, zero point) of the quantized tensors: ties after float32 division, a scale that is no power of two,
# uint8 and int16 ranges, a zero point at either end.
QPARAMS = [
    (ir.DType.INT8, 0.5, 0),
    (ir.DType.INT8, 0.1, -3),
    (ir.DType.INT8, 1.0 / 3.0, 127),
    (ir.DType.INT8, 0.0078125, -128),
    (ir.DType.UINT8, 0.05, 128),
    (ir.DType.INT16, 0.001, 0),
]


def _tensor(name: str, dtype: ir.DType, scale: float, zp: int, shape=(1, 64)) -> ir.Tensor:
    return ir.Tensor(name, shape, dtype, ir.QParams((scale,), (zp,)))


def _values(n: int = 64) -> np.ndarray:
    """float32 values that exercise rounding: exact halves of each scale, random values, values that saturate."""
    rng = np.random.default_rng(3)
    halves = [np.float32((k + 0.5) * s) for _, s, _ in QPARAMS for k in (-3, -1, 0, 1, 2)]
    big = [1000.0, -1000.0, 127.5, -128.5, 0.0, -0.0]
    rest = rng.normal(0, 3, n - len(halves) - len(big))
    return np.array([*halves, *big, *rest], dtype=np.float32).reshape(1, n)


def test_ties_round_half_away_from_zero_not_to_even():
    t = _tensor("x", ir.DType.INT8, 0.5, 0, shape=(4,))
    x = np.array([0.25, -0.25, 0.75, -0.75], dtype=np.float32)  # x / 0.5 = +-0.5, +-1.5 exactly
    np.testing.assert_array_equal(quantize_input(t, x), [1, -1, 2, -2])  # numpy's round would give 0, 0, 2, -2


def test_saturates_at_the_dtype_range_and_keeps_shape():
    t = _tensor("x", ir.DType.INT8, 1e-30, 5, shape=(2, 2))
    q = quantize_input(t, np.array([[1e10, -1e10], [0.0, 3e-30]], dtype=np.float32))  # 1e40 overflows float32
    assert q.dtype == np.int8 and q.shape == (2, 2)
    np.testing.assert_array_equal(q, [[127, -128], [5, 8]])


def test_dequantize_is_the_float32_product_for_every_int8_value():
    rng = np.random.default_rng(0)
    q = np.arange(-128, 128, dtype=np.int8)
    for scale in [*rng.uniform(1e-6, 10, 50).astype(np.float32), np.float32(1 / 3)]:
        for zp in (-128, -7, 0, 127):
            t = _tensor("y", ir.DType.INT8, float(scale), zp, shape=(256,))
            got = dequantize_output(t, q)
            want = (np.float64(scale) * (q.astype(np.float64) - zp)).astype(np.float32)  # TFLite's double product
            assert got.dtype == np.float32
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    "x, expect",
    [
        (np.array([[np.nan] * 8], dtype=np.float32), "holds NaN"),
        (np.array([[np.inf] * 8], dtype=np.float32), "holds infinity"),
        (np.full((1, 8), 1e300, dtype=np.float64), "holds infinity"),  # beyond float32
        (np.zeros((1, 8), dtype=np.uint8), "dtype uint8; give float32 real values to quantize, or int8"),
        (np.zeros((1, 8), dtype=np.int16), "dtype int16; give float32"),
    ],
)
def test_bad_values_for_a_quantized_input_are_one_line_errors(x, expect):
    t = _tensor("x", ir.DType.INT8, 0.1, 0, shape=(1, 8))
    with pytest.raises(McuqError, match="in.npy \\(input 'x'\\)") as e:
        prepare_inputs([t], [x], labels=["in.npy"])
    assert expect in str(e.value) and "\n" not in str(e.value)


def test_prepare_inputs_quantizes_float32_only_and_passes_int8_through():
    ts = [_tensor("a", ir.DType.INT8, 0.5, 1, shape=(1, 2)), _tensor("b", ir.DType.INT8, 0.25, 0, shape=(1, 2))]
    b = np.array([[3, -4]], dtype=np.int8)
    a, b2 = prepare_inputs(ts, [np.array([[1.0, -1.0]], dtype=np.float32), b])
    np.testing.assert_array_equal(a, [[3, -1]])
    assert b2 is b
    assert prepare_inputs(ts, [b]) == [b]  # a wrong count is left for normalise_inputs to explain
    float_in = ir.Tensor("f", (1, 2), ir.DType.FLOAT32)
    x = np.ones((1, 2), dtype=np.float32)
    assert prepare_inputs([float_in], x)[0] is x  # a float input stays float


def test_unquantized_tensor_is_refused():
    with pytest.raises(McuqError, match="'w' is int32 without one scale and zero point"):
        quantize_input(ir.Tensor("w", (2,), ir.DType.INT32), np.zeros(2, dtype=np.float32))
    pc = ir.Tensor("pc", (2,), ir.DType.INT8, ir.QParams((0.1, 0.2), (0, 0)))
    with pytest.raises(McuqError, match="output 'pc'"):
        dequantize_output(pc, np.zeros(2, dtype=np.int8))


def _edge_graph() -> ir.Graph:
    """x (float32) -> QUANTIZE -> q<i> for each of QPARAMS, and z<i> -> DEQUANTIZE -> y<i> (float32)."""
    tensors = {"x": ir.Tensor("x", (1, 64), ir.DType.FLOAT32)}
    ops, inputs, outputs = [], ["x"], []
    for i, (dt, s, z) in enumerate(QPARAMS):
        tensors[f"q{i}"] = _tensor(f"q{i}", dt, s, z)
        tensors[f"z{i}"] = _tensor(f"z{i}", dt, s, z)
        tensors[f"y{i}"] = ir.Tensor(f"y{i}", (1, 64), ir.DType.FLOAT32)
        ops.append(ir.Op(ir.OpKind.QUANTIZE, f"quant{i}", ("x",), (f"q{i}",), ir.NoAttrs(), len(ops)))
        ops.append(ir.Op(ir.OpKind.DEQUANTIZE, f"dequant{i}", (f"z{i}",), (f"y{i}",), ir.NoAttrs(), len(ops)))
        inputs.append(f"z{i}")
        outputs += [f"q{i}", f"y{i}"]
    return ir.Graph("edge", tensors, tuple(ops), tuple(inputs), tuple(outputs))


@pytest.mark.oracle
def test_bit_exact_with_tflite_quantize_and_dequantize():
    oracle.require()
    g = _edge_graph()
    x = _values()
    rng = np.random.default_rng(9)
    zs = []
    for dt, _, _ in QPARAMS:
        lo, hi = dt.int_range
        zs.append(rng.integers(lo, hi + 1, size=(1, 64)).astype(dt.np))
    got = oracle.outputs(write(g), [x, *zs])
    for i, z in enumerate(zs):
        q_want, y_want = got[2 * i], got[2 * i + 1]
        np.testing.assert_array_equal(quantize_input(g.tensors[f"q{i}"], x), q_want, err_msg=f"QUANTIZE {QPARAMS[i]}")
        y = dequantize_output(g.tensors[f"z{i}"], z)
        np.testing.assert_array_equal(y, y_want, err_msg=f"DEQUANTIZE {QPARAMS[i]}")
