"""Elementwise ops (ADD, SUB, MUL, QUANTIZE, RELU, RELU6, LOGISTIC, TANH, HARD_SWISH): lowering, numpy reference and
C, bit-exact with the oracle (tflite-runtime 2.14, BUILTIN_REF) on one-op models."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from mcuq import ir
from mcuq.errors import ModelError
from mcuq.lower import lower, lower_op
from mcuq.lower.common import broadcast_layout
from tests.util.harness import random_inputs, three_way

N_INPUTS = 4  # random inputs per case, run as one batch (one C build per case)
A = ir.Activation


def _t(name: str, shape, scale: float, zp: int, data: np.ndarray | None = None) -> ir.Tensor:
    return ir.Tensor(name, tuple(shape), ir.DType.INT8, ir.QParams((float(np.float32(scale)),), (zp,)), data)


def _graph(kind: ir.OpKind, attrs, ins: list[ir.Tensor], out: ir.Tensor) -> ir.Graph:
    tensors = {t.name: t for t in [*ins, out]}
    names = tuple(t.name for t in ins)
    op = ir.Op(kind, kind.value.lower(), names, (out.name,), attrs)
    graph_inputs = tuple(n for n in dict.fromkeys(names) if not tensors[n].is_const)
    return ir.Graph(kind.value.lower(), tensors, (op,), graph_inputs, (out.name,))


def binary(kind, s1, s2, q1, q2, qo, act=A.NONE, const2: int | None = None, oshape=None) -> ir.Graph:
    """ADD/SUB/MUL of shapes s1 and s2; q* are (scale, zero point); const2 seeds a constant second operand."""
    data = None
    if const2 is not None:
        data = np.random.default_rng(const2).integers(-128, 128, s2, dtype=np.int8)
        data.setflags(write=False)
    oshape = oshape or np.broadcast_shapes(tuple(s1), tuple(s2))
    ins = [_t("x1", s1, *q1), _t("x2", s2, *q2, data)]
    return _graph(kind, ir.BinaryAttrs(act), ins, _t("y", oshape, *qo))


def square(kind, shape, q1, qo, act=A.NONE) -> ir.Graph:
    """x * x, x + x or x - x: both operands are the same tensor."""
    x = _t("x", shape, *q1)
    return _graph(kind, ir.BinaryAttrs(act), [x, x], _t("y", shape, *qo))


def unary(kind, shape, qi, qo) -> ir.Graph:
    return _graph(kind, ir.NoAttrs(), [_t("x", shape, *qi)], _t("y", shape, *qo))


ADD, SUB, MUL = ir.OpKind.ADD, ir.OpKind.SUB, ir.OpKind.MUL
ADD_CASES = {
    "resnet_equal_shapes": binary(ADD, (1, 8, 8, 16), (1, 8, 8, 16), (0.08, -3), (0.11, 7), (0.15, -12), A.RELU),
    "odd_equal_shapes": binary(ADD, (1, 5, 7, 3), (1, 5, 7, 3), (0.02, -128), (0.5, 127), (0.3, 0)),
    "channel_broadcast": binary(ADD, (1, 4, 6, 3), (3,), (0.05, 10), (0.01, -40), (0.06, 5), A.RELU6),
    "both_broadcast": binary(ADD, (2, 1, 5, 1), (1, 3, 1, 4), (0.1, 0), (0.1, 0), (0.2, 0)),
    "scalar_operand": binary(ADD, (1, 6, 6, 2), (1,), (0.03, -128), (0.07, 127), (0.05, -128), A.RELU),
    "rank2_column": binary(ADD, (5, 7), (5, 1), (0.25, 3), (0.004, -100), (0.25, 2), A.RELU_N1_TO_1),
    "rank3_vs_rank1_extended": binary(ADD, (1, 9), (9,), (0.6, 1), (0.6, 1), (1.3, -5)),
    "tiny_vs_huge_scale": binary(ADD, (2, 3, 4), (2, 3, 4), (1e-4, 20), (2.0, -20), (2.1, 0)),
    "const_operand": binary(ADD, (1, 3, 3, 8), (1, 1, 1, 8), (0.04, -7), (0.02, 33), (0.05, -1), const2=5),
    "x_plus_x": square(ADD, (3, 11), (0.07, 9), (0.13, -30)),
    "rank1": binary(ADD, (13,), (13,), (0.9, -128), (0.1, 0), (0.01, 127), A.RELU),
    # TFLite 2.14's int8 ADD broadcasts up to 6-D (its MUL only up to 4-D)
    "rank5_broadcast": binary(ADD, (2, 1, 2, 1, 3), (1, 2, 1, 2, 1), (0.1, 3), (0.05, -2), (0.1, 1)),
    "rank6_broadcast": binary(ADD, (1, 2, 3, 1, 2, 2), (3, 1, 2, 1), (0.2, -9), (0.03, 4), (0.2, 0), A.RELU),
}
# Scales where TFLite 2.14's SUB (input1 - input2 on the common scale) and ADD with a negated input2 multiplier
# round an exact tie differently; (256, 1) - (1, 256) with the first sample a permutation of all int8 values covers
# every (x1, x2) pair.
SUB_TIE_SCALES = (0.17712506651878357, 0.11407855153083801, 0.4787225127220154)
SUB_CASES = {
    "equal_shapes": binary(SUB, (1, 8, 8, 16), (1, 8, 8, 16), (0.08, -3), (0.11, 7), (0.15, -12), A.RELU),
    "extreme_zps": binary(SUB, (1, 5, 7, 3), (1, 5, 7, 3), (0.02, -128), (0.5, 127), (0.3, 0)),
    "channel_broadcast": binary(SUB, (1, 4, 6, 3), (3,), (0.05, 10), (0.01, -40), (0.06, 5), A.RELU6),
    "both_broadcast": binary(SUB, (2, 1, 5, 1), (1, 3, 1, 4), (0.1, 0), (0.1, 0), (0.2, 0)),
    "broadcast_first": binary(SUB, (1,), (1, 6, 6, 2), (0.03, -128), (0.07, 127), (0.05, -128), A.RELU),
    "rank2_column": binary(SUB, (5, 7), (5, 1), (0.25, 3), (0.004, -100), (0.25, 2), A.RELU_N1_TO_1),
    "tiny_vs_huge_scale": binary(SUB, (2, 3, 4), (2, 3, 4), (1e-4, 20), (2.0, -20), (2.1, 0)),
    "const_operand": binary(SUB, (1, 3, 3, 8), (1, 1, 1, 8), (0.04, -7), (0.02, 33), (0.05, -1), const2=11),
    "x_minus_x": square(SUB, (3, 11), (0.07, 9), (0.13, -30)),
    # TFLite 2.14's int8 SUB broadcasts up to 5-D; equal shapes are elementwise at any rank
    "rank5_broadcast": binary(SUB, (2, 1, 3, 1, 4), (1, 2, 1, 3, 1), (0.0213, -7), (0.0478, 25), (0.0391, 10)),
    "rank6_equal_shapes": binary(SUB, (2, 3, 1, 2, 3, 2), (2, 3, 1, 2, 3, 2), (0.1, 5), (0.025, -60), (0.0125, -128)),
    "tie_all_pairs": binary(SUB, (256, 1), (1, 256), (SUB_TIE_SCALES[0], -128), (SUB_TIE_SCALES[1], 127),
                            (SUB_TIE_SCALES[2], 0)),
    "tie_all_pairs_relu": binary(SUB, (256, 1), (1, 256), (SUB_TIE_SCALES[0], -128), (SUB_TIE_SCALES[1], 127),
                                 (SUB_TIE_SCALES[2], 0), A.RELU),
    "tie_all_pairs_other_zps": binary(SUB, (256, 1), (1, 256), (SUB_TIE_SCALES[0], 127),
                                      (SUB_TIE_SCALES[1], -128), (SUB_TIE_SCALES[2], 5)),
}  # fmt: skip
MUL_CASES = {
    "equal_shapes": binary(MUL, (1, 6, 5, 4), (1, 6, 5, 4), (0.05, -3), (0.04, 9), (0.02, 1)),
    "channel_scale": binary(MUL, (1, 4, 4, 5), (5,), (0.1, -128), (0.003, -128), (0.05, -128), A.RELU),
    "multiplier_above_one": binary(MUL, (2, 7), (2, 7), (0.5, 0), (0.25, 4), (0.01, -2)),
    "both_broadcast": binary(MUL, (3, 1, 4), (1, 5, 1), (0.2, 127), (0.3, -1), (0.7, 0), A.RELU6),
    "scalar_operand": binary(MUL, (1,), (1, 3, 3, 3), (0.01, 0), (0.02, 50), (0.0003, 10)),
    "extreme_zps": binary(MUL, (1, 2, 9, 2), (1, 2, 9, 2), (0.02, 127), (0.02, -128), (0.001, 127), A.RELU_N1_TO_1),
    "const_operand": binary(MUL, (1, 3, 5, 4), (1, 1, 1, 4), (0.03, 2), (0.006, -11), (0.02, 0), const2=9),
    "x_squared": square(MUL, (4, 6), (0.05, -20), (0.3, -128)),
    "tiny_output_multiplier": binary(MUL, (17,), (17,), (1e-3, 0), (1e-3, 0), (0.9, 3)),
}
Q, RELU, RELU6 = ir.OpKind.QUANTIZE, ir.OpKind.RELU, ir.OpKind.RELU6
REQUANT_CASES = {
    "quantize_down": unary(Q, (1, 4, 4, 3), (0.05, -3), (0.2, 10)),
    "quantize_up": unary(Q, (2, 3, 5), (0.3, 7), (0.02, -9)),
    "quantize_zp_only": unary(Q, (40,), (0.1, -128), (0.1, 127)),
    "quantize_same": unary(Q, (1, 6, 2), (0.07, 4), (0.07, 4)),
    "quantize_near_one": unary(Q, (3, 17), (0.0999, 0), (0.1, 1)),
    "relu_same_q": unary(RELU, (1, 5, 5, 4), (0.1, -20), (0.1, -20)),
    "relu_rescale": unary(RELU, (2, 3, 7), (0.08, 30), (0.03, -128)),
    "relu_zp_127": unary(RELU, (16,), (0.05, 127), (0.05, 127)),
    "relu6_same_q": unary(RELU6, (1, 4, 4, 5), (0.04, -128), (0.04, -128)),
    "relu6_rescale": unary(RELU6, (3, 9), (0.1, 5), (6.0 / 255, -128)),
    "relu6_fine_output": unary(RELU6, (1, 2, 2, 8), (0.2, 0), (0.01, -100)),
}
LOG, TANH, HS = ir.OpKind.SIGMOID, ir.OpKind.TANH, ir.OpKind.HARD_SWISH
LUT_CASES = {
    "logistic_typical": unary(LOG, (1, 16, 16), (0.1, 0), (1 / 256, -128)),
    "logistic_wide_input": unary(LOG, (16, 16), (0.25, -30), (1 / 256, -128)),
    "logistic_narrow_input": unary(LOG, (256,), (0.003, 127), (1 / 256, -128)),
    "logistic_zp_0": unary(LOG, (2, 128), (0.05, -128), (1 / 256, 0)),
    "logistic_odd_scale": unary(LOG, (4, 64), (0.0371, 11), (1 / 256, -128)),
    "tanh_typical": unary(TANH, (1, 16, 16), (0.05, 0), (1 / 128, 0)),
    "tanh_wide_input": unary(TANH, (16, 16), (0.3, 64), (1 / 128, 0)),
    "tanh_narrow_input": unary(TANH, (256,), (0.001, -128), (1 / 128, 0)),
    "tanh_other_output_q": unary(TANH, (2, 128), (0.02, -5), (0.01, -20)),
    "tanh_odd_scale": unary(TANH, (4, 64), (0.0237, 3), (1 / 128, 0)),
    # tanh(0.47527087) * (1 / 0.17697929) lies within one float32 ulp of 2.5: glibc's tanhf (which TFLite calls)
    # rounds it to 3, the correctly rounded tanh to 2. The table must be built with the C library's tanhf.
    "tanh_libm_rounding": unary(TANH, (256,), (0.4752708673477173, 0), (0.17697928845882416, 0)),
}
HS_CASES = {
    "mobilenet_like": unary(HS, (1, 16, 16), (0.05, -10), (0.04, -60)),
    "same_q": unary(HS, (16, 16), (0.1, 0), (0.1, 0)),
    "wide_input": unary(HS, (256,), (0.5, 127), (0.2, -128)),
    "narrow_input": unary(HS, (2, 128), (0.002, -128), (0.001, 3)),
    "fine_output": unary(HS, (4, 64), (0.08, 20), (0.005, -128)),
    "coarse_output": unary(HS, (1, 8, 32), (0.03, -50), (0.9, 100)),
    "extreme_zps": unary(HS, (16, 16), (0.06, 127), (0.06, -128)),
    "odd_scales": unary(HS, (2, 2, 64), (0.0173, 7), (0.0311, -77)),
    # right shifts of 16+ bits: gemmlowp's int16 RoundingDivideByPOT truncates its mask to 16 bits
    "output_shift_18": unary(HS, (256,), (0.0005, -100), (2.0, 100)),
    "reluish_shift_20": unary(HS, (256,), (1e-8, 0), (1e-9, 0)),
    "reluish_left_shift_12": unary(HS, (256,), (40.0, 3), (30.0, 0)),
}
CASES = {
    **{f"add-{k}": v for k, v in ADD_CASES.items()},
    **{f"sub-{k}": v for k, v in SUB_CASES.items()},
    **{f"mul-{k}": v for k, v in MUL_CASES.items()},
    **{f"requant-{k}": v for k, v in REQUANT_CASES.items()},
    **{f"lut-{k}": v for k, v in LUT_CASES.items()},
    **{f"hard_swish-{k}": v for k, v in HS_CASES.items()},
}


def _inputs(g: ir.Graph, seed: int) -> list[np.ndarray]:
    """N_INPUTS random int8 inputs per graph input, each with a leading batch axis; the first sample of a
    256-element input is every int8 value once (so tables, and all pairs of a [256, 1] and a [1, 256] operand,
    are checked exhaustively)."""
    rng = np.random.default_rng(seed)
    xs = random_inputs(g, N_INPUTS, rng)
    for x in xs:
        if x[0].size == 256:
            x[0] = rng.permutation(np.arange(-128, 128, dtype=np.int8)).reshape(x[0].shape)
    return xs


@pytest.mark.oracle
@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_oracle(name: str) -> None:
    three_way(CASES[name], _inputs(CASES[name], seed=sum(map(ord, name))), name=name)


# -- lowering: parameters and TFLite's restrictions (no oracle needed) ---------------------------------------


def test_broadcast_layout_merges_and_pads() -> None:
    b = broadcast_layout((1, 8, 8, 16), (1, 8, 8, 16), (1, 8, 8, 16))
    dims, s1, s2 = b.out_dims, b.input1_strides, b.input2_strides
    assert list(dims) == [1, 1, 1, 1, 1, 1024] and list(s1) == list(s2) == [0, 0, 0, 0, 0, 1]
    b = broadcast_layout((1, 4, 6, 3), (1, 4, 6, 3), (3,))
    dims, s1, s2 = b.out_dims, b.input1_strides, b.input2_strides
    assert list(dims[-2:]) == [24, 3] and list(s1[-2:]) == [3, 1] and list(s2[-2:]) == [0, 1]
    b = broadcast_layout((2, 3, 5, 4), (2, 1, 5, 1), (1, 3, 1, 4))
    dims, s1, s2 = b.out_dims, b.input1_strides, b.input2_strides
    assert list(dims[-4:]) == [2, 3, 5, 4]
    assert list(s1[-4:]) == [5, 0, 1, 0] and list(s2[-4:]) == [0, 4, 0, 1]


def test_add_parameters_match_tflite_prepare() -> None:
    lay = lower(ADD_CASES["resnet_equal_shapes"])[0]
    assert lay.kernel.name == "mcuq_add_s8" and lay.p("left_shift") == 20
    # input2 has the larger scale: its real multiplier is exactly 0.5 -> (2^30, 0)
    assert (lay.p("input2_multiplier"), lay.p("input2_shift")) == (1 << 30, 0)
    assert lay.p("input1_shift") <= 0 and lay.p("output_shift") <= 0
    assert lay.p("activation.min") == -12 and lay.p("activation.max") == 127


def test_sub_uses_add_parameters_and_its_own_kernel() -> None:
    sub, add = lower(SUB_CASES["equal_shapes"])[0], lower(ADD_CASES["resnet_equal_shapes"])[0]
    assert sub.kernel.name == "mcuq_sub_s8" and sub.kernel.params is add.kernel.params and sub.kernel.in_place
    for f in dataclasses.fields(sub.params):  # the same scales, zero points and shapes: sub.cc's Prepare is add.cc's
        if f.name == "broadcast":
            for k in ("out_dims", "input1_strides", "input2_strides"):
                np.testing.assert_array_equal(sub.p(f"broadcast.{k}"), add.p(f"broadcast.{k}"))
        else:
            assert sub.p(f.name) == add.p(f.name), f.name


@pytest.mark.parametrize("name", [k for k in SUB_CASES if k.startswith("tie_")])
def test_sub_tie_case_separates_sub_from_negated_add(name: str) -> None:
    """In each tie case, ADD with input2_multiplier negated differs from TFLite's SUB on some (x1, x2) pair after
    the clamp, so the oracle comparison of that case checks which rounding the kernel does."""
    from mcuq.quant.fixedpoint import multiply_by_quantized_multiplier_smaller_than_one_exp as mbqm

    p = lower(SUB_CASES[name])[0].params
    x = np.arange(-128, 128, dtype=np.int64)
    s1 = mbqm((x[:, None] - p.input1_zp) << p.left_shift, p.input1_multiplier, p.input1_shift)
    d2 = (x[None, :] - p.input2_zp) << p.left_shift
    sub = mbqm(s1 - mbqm(d2, p.input2_multiplier, p.input2_shift), p.output_multiplier, p.output_shift)
    neg = mbqm(s1 + mbqm(d2, -p.input2_multiplier, p.input2_shift), p.output_multiplier, p.output_shift)
    act = (p.activation.min - p.output_zp, p.activation.max - p.output_zp)
    assert np.any(np.clip(sub, *act) != np.clip(neg, *act))


def test_relu6_bounds() -> None:
    lay = lower(REQUANT_CASES["relu6_rescale"])[0]
    assert lay.kernel.name == "mcuq_requantize_s8"
    assert (lay.p("activation.min"), lay.p("activation.max")) == (-128, 127)
    lay = lower(REQUANT_CASES["relu6_fine_output"])[0]
    assert (lay.p("activation.min"), lay.p("activation.max")) == (-100, 127)


def test_lut_table_is_indexed_by_bit_pattern() -> None:
    lay = lower(LUT_CASES["logistic_typical"])[0]
    table = lay.p("table")
    assert table.dtype == np.int8 and table.shape == (256,)
    assert table[0] == 0  # x = 0 -> sigmoid 0.5 -> 128 - 128
    assert table[0x80] == -128 and table[0x7F] == 127  # x = -128 -> ~0, x = 127 -> ~1 (saturates)


@pytest.mark.parametrize(
    "g, message",
    [
        (unary(LOG, (4,), (0.1, 0), (1 / 128, 0)), "1/256"),
        (binary(MUL, (2, 1, 2, 1, 3), (1, 2, 1, 2, 1), (0.1, 0), (0.1, 0), (0.1, 0)), "up to 4-D"),
        (binary(ADD, (2, 1, 2, 1, 3, 1, 2), (2, 1, 3, 2, 1), (0.1, 0), (0.1, 0), (0.1, 0)), "up to 6-D"),
        (binary(SUB, (2, 1, 2, 1, 3, 2), (1, 3, 1, 2, 1, 2), (0.1, 0), (0.1, 0), (0.1, 0)), "SUB up to 5-D"),
        (binary(MUL, (2, 3), (3, 2), (0.1, 0), (0.1, 0), (0.1, 0), oshape=(2, 3)), "broadcast"),
        (binary(ADD, (4,), (4,), (0.1, 0), (0.1, 0), (1e-9, 0)), "is outside"),
    ],
)
def test_rejects_what_tflite_rejects(g: ir.Graph, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        lower(g)


def test_rejects_float_quantize() -> None:
    x = ir.Tensor("x", (4,), ir.DType.FLOAT32)
    g = _graph(Q, ir.NoAttrs(), [x], _t("y", (4,), 0.1, 0))
    with pytest.raises(ModelError, match="int8 -> int8"):  # the QUANTIZE lowering itself refuses it
        lower_op(g, g.ops[0])
    with pytest.raises(ModelError, match="is float32"):  # and lower() refuses any float graph first
        lower(g)
