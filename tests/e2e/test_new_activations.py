"""LEAKY_RELU, HARD_SIGMOID and CLIP end to end: float reference, quantizer, int8 lowering (all three as the
256-entry table kernel mcuq_lut_s8, CLIP with RELU's, RELU6's or RELU_N1_TO_1's bounds as that TFLite op), the
.tflite writer and reader, and the refusals.

Oracles: LEAKY_RELU is TFLite's integer kernel, checked bit for bit against tflite-runtime 2.14 (BUILTIN_REF) and
through the generated C. HARD_SIGMOID and CLIP have no TFLite int8 kernel: their tables are what an ONNX QDQ model
computes (DequantizeLinear -> op -> QuantizeLinear), checked against onnxruntime, except that mcuq rounds exact
ties half away from zero (as TFLite's quantize and mcuq's QAT do) where QuantizeLinear rounds them to even.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import mcuq
from mcuq import ir
from mcuq.errors import McuqError, ModelError
from mcuq.frontend.tflite import load
from mcuq.frontend.tflite_writer import write
from mcuq.lower import lower_op
from mcuq.lower.activations import float_table, hard_sigmoid_f32, leaky_relu_table
from mcuq.quant.ptq import quantize
from mcuq.reference import run_graph
from tests.util.float_models import Builder
from tests.util.harness import reference_outputs, three_way

K, I8, F32 = ir.OpKind, ir.DType.INT8, ir.DType.FLOAT32
ALL = np.arange(-128, 128, dtype=np.int8)  # every int8 value, in order
AT = ALL.view(np.uint8)  # their table indices: table[AT][i] is the output for input ALL[i]


def _q(scale: float, zp: int) -> ir.QParams:
    return ir.QParams((float(np.float32(scale)),), (zp,))


def _t(name: str, shape, q: ir.QParams | None, dtype: ir.DType = I8) -> ir.Tensor:
    return ir.Tensor(name, tuple(shape), dtype, q)


def _one_op(kind: ir.OpKind, attrs: ir.Attrs, qi, qo, shape=(256,), dtype: ir.DType = I8) -> ir.Graph:
    x, y = _t("x", shape, qi, dtype), _t("y", shape, qo, dtype)
    return ir.Graph(kind.value, {"x": x, "y": y}, (ir.Op(kind, kind.value, ("x",), ("y",), attrs),), ("x",), ("y",))


def _lower(kind: ir.OpKind, attrs: ir.Attrs, qi=(0.1, 0), qo=(0.1, 0)):
    g = _one_op(kind, attrs, _q(*qi), _q(*qo))
    return lower_op(g, g.ops[0])


def _table(kind: ir.OpKind, attrs: ir.Attrs, qi, qo) -> np.ndarray:
    """The lowered layer's table, as outputs for ``ALL``."""
    layer = _lower(kind, attrs, qi, qo)
    assert layer.kernel_name == "mcuq_lut_s8"
    return np.asarray(layer.params.table, dtype=np.int8)[AT]


# -- LEAKY_RELU: TFLite's int8 kernel, bit-exact ---------------------------------------------------------------

# (alpha, input (scale, zp), output (scale, zp), shape): alpha below 0, 0, small, near 1 and above 1; odd sizes and
# whole-table inputs; extreme zero points (all inputs on one side of the zero point)
LEAKY_CASES = [
    (0.2, (0.05, -10), (0.04, -60), (256,)),
    (1.7, (0.05, 3), (0.09, -128), (1, 7, 3)),
    (-0.5, (0.02, 20), (0.03, 5), (256,)),
    (0.01, (0.1, 127), (0.002, 100), (5, 13)),
    (0.0, (0.03, -128), (0.02, 7), (256,)),
    (3.3, (0.011, 0), (0.05, 0), (256,)),
    (-2.5, (0.07, 17), (0.2, -3), (3, 1, 11)),
    (0.999, (0.0123, -77), (0.0119, -70), (256,)),
    (12.0, (0.004, 40), (0.06, 100), (2, 128)),
]


def _leaky_graph() -> ir.Graph:
    """One LEAKY_RELU per case, side by side (one oracle run and one C build for all of them)."""
    tensors, ops = {}, []
    for i, (alpha, qi, qo, shape) in enumerate(LEAKY_CASES):
        tensors[f"x{i}"], tensors[f"y{i}"] = _t(f"x{i}", shape, _q(*qi)), _t(f"y{i}", shape, _q(*qo))
        ops.append(ir.Op(K.LEAKY_RELU, f"leaky{i}", (f"x{i}",), (f"y{i}",), ir.LeakyReluAttrs(alpha), index=i))
    n = len(LEAKY_CASES)
    return ir.Graph("leaky", tensors, tuple(ops), tuple(f"x{i}" for i in range(n)), tuple(f"y{i}" for i in range(n)))


@pytest.mark.oracle
def test_leaky_relu_is_bit_exact_with_tflite_and_the_c() -> None:
    g = _leaky_graph()
    rng = np.random.default_rng(12)
    xs = []
    for _, _, _, shape in LEAKY_CASES:
        x = rng.integers(-128, 128, size=(3, *shape)).astype(np.int8)
        if math.prod(shape) == 256:
            x[0] = ALL.reshape(shape)  # every input value once
        xs.append(x)
    outs = three_way(g, xs, name="leaky", layers=True)
    for (alpha, qi, _, _), x, y in zip(LEAKY_CASES, xs, outs):  # the alpha side ran (unless zp is -128), not constant
        assert ((x < qi[1]).any() or qi[1] == -128) and len(np.unique(y)) > 2, alpha


def test_leaky_relu_table_follows_tflite_multipliers() -> None:
    """Identity side: at and above the input zero point the output is a plain requantization (here x - zp_in + zp_out
    at equal scales); alpha side: the alpha multiplier; the table is TFLite's integer result, not a float rounding."""
    t = leaky_relu_table(0.05, 10, 0.05, -20, 0.25)[AT].astype(int)
    x = ALL.astype(int)
    above = x >= 10
    np.testing.assert_array_equal(t[above], np.minimum(x[above] - 10 - 20, 127))
    assert t[x == 10][0] == -20 and np.all(np.diff(t) >= 0)
    # alpha * (x - zp) with the multiplier 0.25 = (2^30, shift -1): gemmlowp divides twice by 2, the doubling high
    # multiply rounding ties up (its nudge for a negative product is 1 - 2^30), the rounding shift ties away from 0
    d = x[~above] - 10
    first = np.floor(d / 2 + 0.5)
    np.testing.assert_array_equal(t[~above], np.sign(first) * np.floor(np.abs(first) / 2 + 0.5) - 20)


def test_leaky_relu_refusals() -> None:
    with pytest.raises(ModelError, match=r"LEAKY_RELU 'leaky_relu'.*rescale factor .* too large"):
        _lower(K.LEAKY_RELU, ir.LeakyReluAttrs(1e12))
    with pytest.raises(ModelError, match=r"alpha nan: must be finite float32 values"):
        _lower(K.LEAKY_RELU, ir.LeakyReluAttrs(math.nan))
    with pytest.raises(ModelError, match=r"alpha 1e\+39: must be finite float32 values"):  # inf as float32
        run_graph(_one_op(K.LEAKY_RELU, ir.LeakyReluAttrs(1e39), None, None, dtype=F32), [np.zeros(256, np.float32)])
    with pytest.raises(ModelError, match=r"alpha 0.2, beta inf: must be finite"):
        _lower(K.HARD_SIGMOID, ir.HardSigmoidAttrs(0.2, math.inf))
    with pytest.raises(ModelError, match=r"min nan, max 1: must be bounds \(an absent bound is -inf or inf\)"):
        _lower(K.CLIP, ir.ClipAttrs(math.nan, 1.0))
    with pytest.raises(ModelError, match=r"attributes are NoAttrs, expected LeakyReluAttrs"):
        _lower(K.LEAKY_RELU, ir.NoAttrs())


# -- HARD_SIGMOID and CLIP: the QDQ float formula -----------------------------------------------------------------


def test_clip_ties_round_half_away_from_zero() -> None:
    """s_in = s_out / 2 (powers of two, exact): every odd input offset lands on a tie, rounded away from zero."""
    t = _table(K.CLIP, ir.ClipAttrs(-100.0, 100.0), (1 / 128, 3), (1 / 64, -5)).astype(int)
    half = (ALL.astype(int) - 3) / 2
    np.testing.assert_array_equal(t, np.sign(half) * np.floor(np.abs(half) + 0.5) - 5)


def test_clip_bounds_and_relu_like_lowering() -> None:
    lo_only = _table(K.CLIP, ir.ClipAttrs(-0.3, math.inf), (0.01, 0), (0.01, 0))
    hi_only = _table(K.CLIP, ir.ClipAttrs(-math.inf, 0.42), (0.01, 0), (0.01, 0))
    np.testing.assert_array_equal(lo_only, np.maximum(ALL, -30))
    np.testing.assert_array_equal(hi_only, np.minimum(ALL, 42))
    # min > max: every value becomes max (numpy's and ONNX's rule), in the float reference and the table
    np.testing.assert_array_equal(_table(K.CLIP, ir.ClipAttrs(0.5, 0.2), (0.01, 0), (0.01, 0)), 20)
    g = _one_op(K.CLIP, ir.ClipAttrs(0.5, 0.2), None, None, (5,), F32)
    np.testing.assert_array_equal(run_graph(g, [np.linspace(-1, 1, 5, dtype=np.float32)])["y"], np.float32(0.2))
    # the bounds of TFLite's RELU, RELU6 and RELU_N1_TO_1: that op's requantization, not a table
    for lo, hi in ((0.0, math.inf), (0.0, 6.0), (-1.0, 1.0)):
        layer = _lower(K.CLIP, ir.ClipAttrs(lo, hi), (0.05, 3), (0.02, -10))
        assert layer.kernel_name == "mcuq_requantize_s8"


def test_hard_sigmoid_table_is_the_float_formula() -> None:
    t = _table(K.HARD_SIGMOID, ir.HardSigmoidAttrs(0.2, 0.5), (0.05, 0), (1 / 255, -128)).astype(int)
    x = ALL.astype(np.float64) * np.float32(0.05)
    want = np.floor(np.clip(0.2 * x + 0.5, 0, 1) * 255 + 0.5) - 128
    assert np.abs(t - want).max() <= 1 and np.mean(t == want) > 0.95  # float32 steps vs float64: rare one-step ties
    assert t.min() == -128 and t.max() == 127  # saturates at both ends


def _ort_qdq_table(op_type: str, attrs: dict, qi, qo, bounds=()) -> np.ndarray:
    """onnxruntime (optimizations off) on DequantizeLinear -> op -> QuantizeLinear, for every int8 input."""
    onnx = pytest.importorskip("onnx", reason="the QDQ oracle needs onnx (the mcuq[onnx] extra)")
    ort = pytest.importorskip("onnxruntime", reason="the QDQ oracle needs onnxruntime (a test extra)")
    from onnx import TensorProto, helper, numpy_helper

    inits = [numpy_helper.from_array(np.array(v, dtype), n) for n, v, dtype in
             (("si", qi[0], np.float32), ("zi", qi[1], np.int8), ("so", qo[0], np.float32), ("zo", qo[1], np.int8))]  # fmt: skip
    names = ["f"]
    for i, b in enumerate(bounds):  # Clip's min and max inputs; None: absent
        names.append("" if b is None else f"b{i}")
        if b is not None:
            inits.append(numpy_helper.from_array(np.array(b, np.float32), f"b{i}"))
    nodes = [helper.make_node("DequantizeLinear", ["x", "si", "zi"], ["f"]),
             helper.make_node(op_type, names, ["g"], **attrs),
             helper.make_node("QuantizeLinear", ["g", "so", "zo"], ["y"])]  # fmt: skip
    io = [helper.make_tensor_value_info(n, TensorProto.INT8, [256]) for n in ("x", "y")]
    model = helper.make_model(helper.make_graph(nodes, "qdq", io[:1], io[1:], inits),
                              opset_imports=[helper.make_opsetid("", 13)])  # fmt: skip
    model.ir_version = 8
    onnx.checker.check_model(model)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": ALL})[0]


def _tensor(s: float, z: int) -> ir.Tensor:
    return _t("t", (256,), _q(s, z))


def test_tables_match_onnxruntime_qdq() -> None:
    """HARD_SIGMOID and CLIP (one or two bounds): equal to onnxruntime's QDQ result on every input of 60 random
    quantizations. LEAKY_RELU (TFLite's integer formula): within one step of onnxruntime's float one."""
    rng = np.random.default_rng(2026)
    leaky_differ = 0
    for i in range(20):
        qi = (float(np.float32(rng.uniform(0.005, 0.1))), int(rng.integers(-128, 128)))
        qo = (float(np.float32(rng.uniform(1 / 255, 0.05))), int(rng.integers(-128, 128)))
        a, b = float(np.float32(rng.uniform(0.05, 1.0))), float(np.float32(rng.uniform(-1.0, 1.0)))
        ours = float_table(_tensor(*qi), _tensor(*qo), hard_sigmoid_f32(a, b))[AT]
        np.testing.assert_array_equal(ours, _ort_qdq_table("HardSigmoid", {"alpha": a, "beta": b}, qi, qo))
        lo, hi = sorted(float(np.float32(v)) for v in rng.uniform(-3, 3, 2))
        lo, hi = (None, hi) if i % 3 == 0 else (lo, None) if i % 3 == 1 else (lo, hi)
        attrs = ir.ClipAttrs(-math.inf if lo is None else lo, math.inf if hi is None else hi)
        ours = _table(K.CLIP, attrs, qi, qo)
        np.testing.assert_array_equal(ours, _ort_qdq_table("Clip", {}, qi, qo, (lo, hi)), err_msg=f"{attrs}")
        alpha = float(np.float32(rng.uniform(-2.0, 3.0)))
        ours = leaky_relu_table(*qi, *qo, alpha)[AT].astype(int)
        theirs = _ort_qdq_table("LeakyRelu", {"alpha": alpha}, qi, qo).astype(int)
        assert np.abs(ours - theirs).max() <= 1
        leaky_differ += int(np.count_nonzero(ours != theirs))
    print(f"LEAKY_RELU: {leaky_differ} of {20 * 256} table entries one step from onnxruntime's float QDQ")


def test_ties_are_where_quantize_linear_differs() -> None:
    """On exact ties QuantizeLinear rounds half to even, mcuq half away from zero: they differ there and only there."""
    qi, qo = (1 / 128, 3), (1 / 64, -5)
    ours = _table(K.CLIP, ir.ClipAttrs(-100.0, 100.0), qi, qo).astype(int)
    theirs = _ort_qdq_table("Clip", {}, qi, qo, (-100.0, 100.0)).astype(int)
    half = (ALL.astype(int) - 3) / 2
    ties = (half % 1 == 0.5) & (np.floor(half) % 2 == 0)  # x.5 with an even x: half to even goes down, away up
    neg_ties = (half % 1 == 0.5) & (np.floor(half) % 2 == 1) & (half < 0)
    assert np.array_equal(ours != theirs, (ties & (half > 0)) | neg_ties)


# -- post-training quantization, compiled, bit-exact with mcuq's numpy reference ---------------------------------


def _ptq_model() -> ir.Graph:
    b = Builder("new_acts", 7)
    x = b.input((1, 6, 6, 3))
    y = b.unary(K.LEAKY_RELU, b.conv(x, 8), ir.LeakyReluAttrs(0.1))
    y = b.unary(K.HARD_SIGMOID, b.dwconv(y), ir.HardSigmoidAttrs(0.25, 0.4))
    y = b.fc(b.reshape(y, (1, math.prod(b.shape(y)))), 12)
    return b.graph(b.unary(K.CLIP, y, ir.ClipAttrs(-math.inf, 0.8)))


def test_ptq_with_the_three_ops_compiles_and_runs_bit_exact() -> None:
    g = _ptq_model()
    rng = np.random.default_rng(5)
    calib = rng.uniform(-1, 1, (32, 1, 6, 6, 3)).astype(np.float32)
    qm = quantize(g, calib)
    qg = qm.graph
    assert [op.kind for op in qg.ops if op.kind in (K.LEAKY_RELU, K.HARD_SIGMOID, K.CLIP)] == [
        K.LEAKY_RELU, K.HARD_SIGMOID, K.CLIP]  # fmt: skip
    out = {op.kind: qg.tensors[op.outputs[0]] for op in qg.ops}
    hs, clip = out[K.HARD_SIGMOID], out[K.CLIP]
    assert hs.zero_point == -128 and (127 - hs.zero_point) * hs.scale <= 1.0 + 1e-6  # within [0, 1]
    assert (127 - clip.zero_point) * clip.scale <= 0.8 + clip.scale  # the upper bound clamps the range
    with pytest.raises(McuqError, match=r"HARD_SIGMOID 'hard_sigmoid\d+'\): HARD_SIGMOID has no TFLite op: compile"):
        qm.tflite_bytes()
    cm = mcuq.compile_model(qm, sanitize=True)
    xs = rng.uniform(-1, 1, (6, 1, 6, 6, 3)).astype(np.float32)
    xq = np.clip(np.floor(xs / np.float32(cm.input_tensors[0].scale) + 0.5) + cm.input_tensors[0].zero_point,
                 -128, 127).astype(np.int8)  # fmt: skip
    got = cm.run([xq])[0]
    want = reference_outputs(cm.graph, [xq])[cm.graph.outputs[0]]
    np.testing.assert_array_equal(got, want.reshape(got.shape))
    t = cm.output_tensors[0]
    deq = (got.astype(np.float64) - t.zero_point) * t.scale
    ref = np.stack([run_graph(g, [x])[g.outputs[0]] for x in xs]).reshape(deq.shape)
    sqnr = 10 * math.log10(np.sum(ref**2) / np.sum((ref - deq) ** 2))
    print(f"new_acts PTQ: output SQNR {sqnr:.1f} dB")
    assert sqnr > 25.0 and ref.max() <= np.float32(0.8)


@pytest.mark.parametrize("kind, attrs", [(K.LEAKY_RELU, ir.LeakyReluAttrs(0.1)), (K.HARD_SIGMOID, ir.HardSigmoidAttrs()),
                                         (K.CLIP, ir.ClipAttrs(-0.5, 2.0))])  # fmt: skip
def test_int16_activations_are_refused_naming_the_layer(kind, attrs) -> None:
    b = Builder("m", 0)
    g = b.graph(b.fc(b.unary(kind, b.fc(b.input((1, 16)), 8), attrs), 4))
    calib = np.random.default_rng(0).uniform(-1, 1, (4, 1, 16)).astype(np.float32)
    with pytest.raises(McuqError, match=rf"op 1 \({kind.name} '\w+'\): {kind.name} has int16 activations; mcuq has no "
                       "16x8 kernel"):  # fmt: skip
        quantize(g, calib, activations="int16")
    # int8 where the op is, int16 after it: a QUANTIZE widens
    qm = quantize(g, calib, activations={"fully_connected0": "int8", "fully_connected2": "int16"})
    assert [op.kind for op in qm.graph.ops] == [K.FULLY_CONNECTED, kind, K.QUANTIZE, K.FULLY_CONNECTED]


# -- the .tflite writer and reader -------------------------------------------------------------------------------


def test_writer_maps_clip_to_tflite_activations_and_refuses_the_rest() -> None:
    for (lo, hi), kind in {(0.0, math.inf): K.RELU, (0.0, 6.0): K.RELU6, (-1.0, 1.0): K.CLIP}.items():
        back = load(write(_one_op(K.CLIP, ir.ClipAttrs(lo, hi), _q(0.05, 3), _q(0.02, -10), (4,))))
        assert back.ops[0].kind is kind and back.ops[0].origin in ("RELU", "RELU6", "RELU_N1_TO_1")
    back = load(write(_one_op(K.LEAKY_RELU, ir.LeakyReluAttrs(0.3), _q(0.05, 3), _q(0.02, -10), (4,))))
    assert back.ops[0].attrs == ir.LeakyReluAttrs(float(np.float32(0.3)))
    with pytest.raises(ModelError, match=r"op 0 \(CLIP 'clip'\): CLIP\(-2, 3\) has no TFLite op: compile the model"):
        write(_one_op(K.CLIP, ir.ClipAttrs(-2.0, 3.0), _q(0.05, 3), _q(0.02, -10), (4,)))
    with pytest.raises(ModelError, match=r"CLIP\(-inf, 3\) has no TFLite op"):
        write(_one_op(K.CLIP, ir.ClipAttrs(-math.inf, 3.0), None, None, (4,), F32))
    with pytest.raises(ModelError, match=r"HARD_SIGMOID has no TFLite op: compile the model directly"):
        write(_one_op(K.HARD_SIGMOID, ir.HardSigmoidAttrs(), None, None, (4,), F32))
