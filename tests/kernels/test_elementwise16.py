"""16x8 mode (int16 activations) of ADD, SUB, MUL, QUANTIZE, LOGISTIC, TANH and SOFTMAX: lowering, numpy mirror and
C (ASan/UBSan), bit-exact with the oracle's int16 reference kernels (tflite-runtime 2.14, BUILTIN_REF) on one-op
models. LOGISTIC and TANH are swept over every int16 input; SOFTMAX over every entry of its exp table."""

from __future__ import annotations

import re

import numpy as np
import pytest

from mcuq import ir
from mcuq._paths import RUNTIME_C
from mcuq.errors import ModelError
from mcuq.frontend.tflite import load
from mcuq.frontend.tflite_writer import write
from mcuq.lower import lower
from mcuq.lower.lut16 import SIGMOID_TABLE_U16, softmax_luts
from tests.util.harness import oracle_outputs, three_way

A, K = ir.Activation, ir.OpKind
I8, I16 = ir.DType.INT8, ir.DType.INT16
N_INPUTS = 3


def _t(name: str, shape, scale: float, zp: int = 0, dtype: ir.DType = I16, data=None) -> ir.Tensor:
    return ir.Tensor(name, tuple(shape), dtype, ir.QParams((float(np.float32(scale)),), (zp,)), data)


def _graph(kind: ir.OpKind, attrs, ins: list[ir.Tensor], out: ir.Tensor) -> ir.Graph:
    tensors = {t.name: t for t in [*ins, out]}
    names = tuple(t.name for t in ins)
    op = ir.Op(kind, kind.value.lower(), names, (out.name,), attrs)
    graph_inputs = tuple(n for n in dict.fromkeys(names) if not tensors[n].is_const)
    return ir.Graph(kind.value.lower(), tensors, (op,), graph_inputs, (out.name,))


def binary(kind, s1, s2, sc1, sc2, sco, act=A.NONE, const2: int | None = None) -> ir.Graph:
    data = None
    if const2 is not None:
        data = np.random.default_rng(const2).integers(-32768, 32768, s2).astype(np.int16)
        data.setflags(write=False)
    out = tuple(np.broadcast_shapes(tuple(s1), tuple(s2)))
    return _graph(kind, ir.BinaryAttrs(act), [_t("x1", s1, sc1), _t("x2", s2, sc2, data=data)], _t("y", out, sco))


def square(kind, shape, sc, sco) -> ir.Graph:
    x = _t("x", shape, sc)
    return _graph(kind, ir.BinaryAttrs(), [x, x], _t("y", shape, sco))


def unary(kind, shape, si, so, din=I16, dout=I16, zpi=0, zpo=0, attrs=None) -> ir.Graph:
    attrs = attrs if attrs is not None else ir.NoAttrs()
    return _graph(kind, attrs, [_t("x", shape, si, zpi, din)], _t("y", shape, so, zpo, dout))


def softmax(shape, scale, beta=1.0) -> ir.Graph:
    return unary(K.SOFTMAX, shape, scale, 1 / 32768, attrs=ir.SoftmaxAttrs(beta))


Q15 = 2.0**-15
CASES = {
    # ADD and SUB: the general int16 path (pot_scale_int16 false), TFLite's rank limits 6-D and 5-D
    "add-equal_shapes": binary(K.ADD, (1, 6, 6, 5), (1, 6, 6, 5), 3e-4, 2e-4, 4e-4),
    "add-channel_relu": binary(K.ADD, (1, 4, 4, 3), (3,), 1e-3, 2e-4, 9e-4, A.RELU),
    "add-both_broadcast_relu6": binary(K.ADD, (2, 1, 5, 1), (1, 3, 1, 4), 2e-4, 3e-4, 3e-4, A.RELU6),
    "add-rank6_broadcast": binary(K.ADD, (1, 2, 3, 1, 2, 2), (3, 1, 2, 1), 1e-3, 2e-4, 9e-4, A.RELU_N1_TO_1),
    "add-pot_scales": binary(K.ADD, (3, 17), (3, 17), 2**-12, 2**-10, 2**-9),
    "add-saturating": binary(K.ADD, (64,), (64,), 1e-3, 1e-3, 1.1e-3),
    "add-tiny_vs_huge": binary(K.ADD, (2, 3, 4), (2, 3, 4), 1e-6, 2.0, 2.5),
    "add-const_operand": binary(K.ADD, (1, 3, 3, 8), (1, 1, 1, 8), 4e-4, 2e-4, 5e-4, const2=5),
    "add-x_plus_x": square(K.ADD, (3, 11), 7e-4, 1.3e-3),
    "sub-equal_shapes": binary(K.SUB, (2, 3, 4), (2, 3, 4), 1e-3, 7e-4, 1.3e-3, A.RELU6),
    "sub-broadcast_first": binary(K.SUB, (1,), (1, 6, 6, 2), 3e-4, 7e-4, 5e-4, A.RELU),
    "sub-rank5_broadcast": binary(K.SUB, (2, 1, 3, 1, 4), (1, 2, 1, 3, 1), 2e-4, 5e-4, 4e-4),
    "sub-x_minus_x": square(K.SUB, (4, 6), 5e-4, 3e-4),
    # MUL: zero points 0, TFLite's rank limit 4-D
    "mul-equal_shapes": binary(K.MUL, (2, 3, 4, 5), (2, 3, 4, 5), 1e-3, 7e-4, 2e-2),
    "mul-broadcast_relu": binary(K.MUL, (2, 1, 4, 3), (1, 3, 1, 3), 1e-3, 7e-4, 1e-2, A.RELU),
    "mul-saturating_relu6": binary(K.MUL, (40,), (40,), 1e-2, 1e-2, 3e-4, A.RELU6),
    "mul-tiny_multiplier": binary(K.MUL, (17,), (17,), 1e-5, 1e-5, 0.9),
    "mul-x_squared": square(K.MUL, (4, 6), 3e-4, 1e-3),
    # QUANTIZE int16 -> int16 and int16 -> int8 (int8 -> int16: see test_quantize_int8_to_int16)
    "quantize-s16_down": unary(K.QUANTIZE, (3, 50), 1e-3, 3e-4),
    "quantize-s16_up": unary(K.QUANTIZE, (3, 50), 3e-4, 1e-3),
    "quantize-s16_same": unary(K.QUANTIZE, (70,), 3e-4, 3e-4),
    "quantize-s16_to_s8": unary(K.QUANTIZE, (3, 50), 1e-3, 0.1, dout=I8, zpo=7),
    "quantize-s16_to_s8_fine": unary(K.QUANTIZE, (2, 40), 1e-4, 2e-3, dout=I8, zpo=-128),
    # LOGISTIC and TANH: output 2^-15, inputs at general and power-of-two scales (TFLite's multiplier-3 path)
    "logistic-general": unary(K.SIGMOID, (3, 50), 7e-4, Q15),
    "logistic-pot": unary(K.SIGMOID, (3, 50), 2**-12, Q15),
    "logistic-pot_other": unary(K.SIGMOID, (3, 50), 2**-10, Q15),
    "logistic-coarse": unary(K.SIGMOID, (64,), 0.05, Q15),
    "logistic-fine": unary(K.SIGMOID, (64,), 1e-7, Q15),
    "tanh-general": unary(K.TANH, (3, 50), 3e-4, Q15),
    "tanh-pot11": unary(K.TANH, (3, 50), 2**-11, Q15),
    "tanh-pot12": unary(K.TANH, (3, 50), 2**-12, Q15),
    "tanh-coarse": unary(K.TANH, (64,), 0.05, Q15),
    # SOFTMAX: output 1/32768, zero point 0
    "softmax-typical": softmax((3, 50), 5e-4),
    "softmax-beta": softmax((2, 3, 10), 2e-3, beta=0.7),
    "softmax-one_class": softmax((5, 1), 1e-3),
    "softmax-many_classes": softmax((1, 1000), 3e-4),
    "softmax-sharp": softmax((4, 16), 0.1),
    "softmax-flat": softmax((4, 16), 1e-6),
}
# The exhaustive sweeps: every int16 input once (LOGISTIC, TANH), every exp-table point (SOFTMAX rows [0, -k]).
SWEEPS = {
    "logistic-all_inputs": unary(K.SIGMOID, (65536,), 3e-4, Q15),
    "logistic-all_inputs_pot": unary(K.SIGMOID, (65536,), 2**-12, Q15),
    "tanh-all_inputs": unary(K.TANH, (65536,), 2e-4, Q15),
    "tanh-all_inputs_pot11": unary(K.TANH, (65536,), 2**-11, Q15),
    "softmax-exp_sweep": softmax((65536, 2), 10.0 / 65535),
}


def _inputs(g: ir.Graph, seed: int, n: int = N_INPUTS) -> list[np.ndarray]:
    """``n`` random samples per graph input of its dtype; the first sample holds the type's extremes first (and,
    where it has 65536 elements, every int16 value in order)."""
    rng = np.random.default_rng(seed)
    xs = []
    for name in g.inputs:
        t = g.tensors[name]
        lo, hi = t.dtype.int_range
        x = rng.integers(lo, hi + 1, size=(n, *t.shape)).astype(t.dtype.np)
        flat = x[0].reshape(-1)
        flat[: min(2, flat.size)] = (lo, hi)[: min(2, flat.size)]
        if flat.size == 65536:
            flat[:] = np.arange(lo, hi + 1)
        xs.append(x)
    return xs


def _sweep_inputs(name: str, g: ir.Graph) -> list[np.ndarray]:
    if name.startswith("softmax"):
        k = np.arange(65536, dtype=np.int64)
        rows = np.stack([np.full(65536, 32767), 32767 - k], axis=1).astype(np.int16)
        return [rows[None]]
    return [np.arange(-32768, 32768, dtype=np.int16).reshape(1, 65536)]


@pytest.mark.oracle
@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_oracle(name: str) -> None:
    three_way(CASES[name], _inputs(CASES[name], seed=sum(map(ord, name))), name=name.replace("-", "_"))


@pytest.mark.oracle
@pytest.mark.parametrize("name", sorted(SWEEPS))
def test_exhaustive_sweep_matches_oracle(name: str) -> None:
    three_way(SWEEPS[name], _sweep_inputs(name, SWEEPS[name]), name=name.replace("-", "_"))


def test_quantize_int8_to_int16() -> None:
    """tflite-runtime 2.14 refuses QUANTIZE int8 -> int16 (quantize.cc allows only int8/uint8 outputs for int8), so
    the C is checked against the numpy mirror of reference_ops::Requantize (what TFLite Micro computes)."""
    for zp, so in ((-5, 0.05 / 300), (127, 0.02), (-128, 1e-5)):
        g = unary(K.QUANTIZE, (3, 50), 0.05, so, din=I8, zpi=zp)
        (y,) = three_way(g, _inputs(g, seed=zp + 200), name=f"q8_16_{zp + 128}", oracle_ok=False)
        x = _inputs(g, seed=zp + 200)[0].astype(np.float64)
        want = np.clip(np.round((x - zp) * np.float32(0.05) / np.float32(so)), -32768, 32767)
        assert np.max(np.abs(y.astype(np.float64) - want)) <= 1


@pytest.mark.oracle
def test_sigmoid_table_is_tflites() -> None:
    """The stored table equals the oracle's: int16 TANH at input scale 1/48 (multiplier 16384, shift 6) puts input
    x exactly on table entry x, whose output is entry - 32768."""
    s = np.float32(1 / 48)
    s = s if float(s) >= 1 / 48 else np.nextafter(s, np.float32(1))
    g = unary(K.TANH, (255,), float(s), Q15)
    (y,) = oracle_outputs(g, [np.arange(255, dtype=np.int16).reshape(1, 255)])
    assert lower(g)[0].p("input_multiplier") == 16384 and lower(g)[0].p("input_left_shift") == 6
    np.testing.assert_array_equal(y[0].astype(np.int64) + 32768, SIGMOID_TABLE_U16[:255])


def test_c_sigmoid_table_matches_python() -> None:
    src = (RUNTIME_C / "src" / "elementwise" / "mcuq_tanh_logistic_s16.c").read_text()
    body = re.search(r"sigmoid_table\[256\] = \{(?P<v>[^}]*)\}", src).group("v")
    assert tuple(int(v) for v in body.replace("\n", " ").split(",")) == SIGMOID_TABLE_U16


def test_softmax_tables() -> None:
    exp_lut, recip = softmax_luts()
    assert exp_lut.dtype == np.int16 and exp_lut.shape == recip.shape == (513,)
    assert exp_lut[-1] == 32767 and exp_lut[0] == 2  # exp(0) and exp(-10) in Q0.15 (scaled by 32768 / 65535 * 2)
    assert recip[0] == 32767 and recip[-1] == 16384  # 1 / (1 + 0) and 1 / (1 + 1)
    assert np.all(np.diff(exp_lut.astype(int)) >= 0) and np.all(np.diff(recip.astype(int)) <= 0)


# -- lowering: parameters and what TFLite (or mcuq) refuses ---------------------------------------------------------


def test_parameters() -> None:
    add = lower(CASES["add-equal_shapes"])[0]
    assert add.kernel.name == "mcuq_add_s16" and add.p("left_shift") == 15
    assert (add.p("activation.min"), add.p("activation.max")) == (-32768, 32767)
    assert lower(CASES["add-channel_relu"])[0].p("activation.min") == 0
    tanh = lower(CASES["tanh-pot11"])[0]
    assert (tanh.kernel.name, tanh.p("input_multiplier"), tanh.p("input_left_shift")) == ("mcuq_tanh_s16", 6, 0)
    log = lower(CASES["logistic-pot"])[0]
    assert (log.p("input_multiplier"), log.p("input_left_shift")) == (3, 0)
    assert lower(CASES["quantize-s16_to_s8"])[0].kernel.name == "mcuq_requantize_s16_s8"
    assert lower(CASES["softmax-typical"])[0].kernel.name == "mcuq_softmax_s16"


def _pot_add(pot: bool) -> ir.Graph:
    g = binary(K.ADD, (4,), (4,), 2**-12, 2**-12, 2**-11)
    op = g.ops[0]
    return ir.Graph(g.name, g.tensors, (ir.Op(op.kind, op.name, op.inputs, op.outputs, ir.BinaryAttrs(A.NONE, pot)),),
                    g.inputs, g.outputs)  # fmt: skip


def test_pot_scale_int16_round_trips_and_is_refused_where_tflite_takes_its_lstm_path() -> None:
    assert load(write(_pot_add(True))).ops[0].attrs.pot_scale_int16
    assert not load(write(_pot_add(False))).ops[0].attrs.pot_scale_int16
    lower(_pot_add(False))
    with pytest.raises(ModelError, match="power-of-two int16"):
        lower(_pot_add(True))
    g = binary(K.ADD, (4,), (4,), 3e-4, 2**-12, 2**-11)  # not every scale a power of two: the general path
    op = g.ops[0]
    g = ir.Graph(g.name, g.tensors, (ir.Op(op.kind, op.name, op.inputs, op.outputs, ir.BinaryAttrs(A.NONE, True)),),
                 g.inputs, g.outputs)  # fmt: skip
    assert lower(g)[0].kernel.name == "mcuq_add_s16"


def _mixed_add() -> ir.Graph:
    g = binary(K.ADD, (4,), (4,), 1e-3, 1e-3, 1e-3)
    return ir.Graph(g.name, {**g.tensors, "x2": _t("x2", (4,), 0.1, 0, I8)}, g.ops, g.inputs, g.outputs)


@pytest.mark.parametrize(
    "g, message",
    [
        (binary(K.MUL, (2, 1, 2, 1, 3), (1, 2, 1, 2, 1), 1e-3, 1e-3, 1e-3), "int16 MUL up to 4-D"),
        (binary(K.SUB, (2, 1, 2, 1, 3, 2), (1, 3, 1, 2, 1, 2), 1e-3, 1e-3, 1e-3), "int16 SUB up to 5-D"),
        (binary(K.MUL, (4,), (4,), 1.0, 1.0, 0.5), "overflows int32"),
        (binary(K.ADD, (4,), (4,), 1.0, 1.0, 1e-5), "is outside"),
        (unary(K.SIGMOID, (4,), 1e-3, 1 / 30000), "2\\^-15"),
        (unary(K.TANH, (4,), 1e-3, 1 / 256), "2\\^-15"),
        (unary(K.TANH, (4,), 10.0, Q15), "too large|outside"),
        (softmax((2, 4), 1e-3).__class__(  # an output scale other than 1/32768
            "s", {**softmax((2, 4), 1e-3).tensors, "y": _t("y", (2, 4), 1 / 256)},
            softmax((2, 4), 1e-3).ops, ("x",), ("y",)), "1/32768"),
        (softmax((2, 4), 10.0), "too large"),
        (unary(K.SIGMOID, (4,), 1e-3, Q15, zpi=3), "symmetric"),
        (_mixed_add(), "is int8; ADD runs on int16"),
    ],
)  # fmt: skip
def test_rejects(g: ir.Graph, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        lower(g)
