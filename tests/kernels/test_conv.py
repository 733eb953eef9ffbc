"""CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED: lowering, numpy reference and C, bit-exact with the oracle.

Each case builds a one-op int8 graph and runs the three-way check of tests/util/harness.py on a batch of random
inputs: the oracle (tflite-runtime 2.14, BUILTIN_REF), the numpy reference and the generated C must agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest

from mcuq import ir
from mcuq.errors import ModelError
from mcuq.lower import lower
from mcuq.lower.common import per_tensor_fc_multiplier
from mcuq.lower.window import out_size, pad_before
from mcuq.quant.fixedpoint import quantize_multiplier
from tests.util import oracle
from tests.util.harness import random_int8, three_way

N_INPUTS = 6  # random inputs per case, all in one oracle call and one C run

A = ir.Activation


@dataclass(frozen=True)
class Case:
    id: str
    kind: ir.OpKind
    in_shape: tuple[int, ...]
    out_c: int  # output channels / units (conv: Cout, depthwise: Cin * multiplier, FC: units)
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    padding: ir.Padding = ir.Padding.VALID
    act: ir.Activation = A.NONE
    in_zp: int = 0
    out_zp: int = 0
    per_channel: bool = True
    bias: bool = True
    keep_num_dims: bool = False
    w_zp: int = 0  # per-tensor FC only
    seed: int = 0
    # False where tflite-runtime 2.14 cannot serve as the oracle: it is wrong for per-channel FC with a 3-D
    # output, and its CONV_2D / DEPTHWISE_CONV_2D refuse a missing bias. Compared with the reference instead.
    oracle_ok: bool = True


C, D, F = ir.OpKind.CONV2D, ir.OpKind.DEPTHWISE_CONV2D, ir.OpKind.FULLY_CONNECTED
SAME, VALID = ir.Padding.SAME, ir.Padding.VALID

CASES = [
    Case("conv_1x1", C, (1, 5, 7, 3), 4, seed=1),
    Case("conv_3x3_same_relu", C, (1, 9, 8, 5), 6, (3, 3), padding=SAME, act=A.RELU, in_zp=-128, out_zp=-128, seed=2),
    Case("conv_3x3_s2_same_odd", C, (1, 11, 10, 3), 7, (3, 3), (2, 2), padding=SAME, in_zp=17, out_zp=5, seed=3),
    Case("conv_5x4_s2x3_valid", C, (2, 13, 14, 2), 3, (5, 4), (2, 3), act=A.RELU6, in_zp=127, out_zp=-20, seed=4),
    Case("conv_dilated_same", C, (1, 10, 9, 4), 5, (3, 2), dilation=(2, 3), padding=SAME, in_zp=-7, seed=5),
    Case("conv_dilated_s2_valid", C, (1, 12, 11, 3), 2, (3, 3), (2, 1), (2, 2), act=A.RELU_N1_TO_1, seed=6),
    Case("conv_per_tensor", C, (1, 6, 6, 8), 5, (2, 2), padding=SAME, per_channel=False, in_zp=-50, seed=7),
    Case("conv_nobias", C, (1, 6, 5, 4), 3, (3, 3), padding=SAME, bias=False, seed=10, oracle_ok=False),
    Case("conv_even_kernel_same", C, (1, 7, 6, 3), 4, (4, 4), (3, 2), padding=SAME, in_zp=100, out_zp=127, seed=8),
    Case("conv_kernel_eq_input", C, (1, 4, 5, 6), 3, (4, 5), in_zp=-100, seed=9),
    Case("dw_3x3_same", D, (1, 9, 10, 8), 8, (3, 3), padding=SAME, act=A.RELU, in_zp=-128, out_zp=-128, seed=11),
    Case("dw_mult2_s2", D, (1, 11, 9, 3), 6, (3, 3), (2, 2), padding=SAME, in_zp=25, out_zp=-3, seed=12),
    Case("dw_mult3_valid", D, (2, 8, 7, 2), 6, (2, 3), (1, 2), act=A.RELU6, in_zp=127, seed=13),
    Case("dw_dilated_same", D, (1, 10, 10, 5), 5, (3, 3), (1, 1), (2, 2), padding=SAME, seed=14),
    Case("dw_10x4_mult4_dilated", D, (1, 13, 9, 1), 4, (4, 2), (2, 1), (3, 2), padding=SAME, in_zp=-60, seed=15),
    Case("dw_per_tensor", D, (1, 7, 7, 4), 4, (3, 3), padding=SAME, per_channel=False, out_zp=-90, seed=16),
    Case("dw_nobias", D, (1, 6, 7, 3), 6, (3, 3), (2, 2), padding=SAME, bias=False, seed=18, oracle_ok=False),
    Case("dw_many_channels", D, (1, 5, 6, 40), 40, (5, 5), (2, 2), padding=SAME, act=A.RELU, in_zp=-128, seed=17),
    Case("fc_per_tensor", F, (1, 37), 11, per_channel=False, in_zp=-128, out_zp=12, seed=21),
    Case("fc_per_tensor_relu_wzp", F, (3, 20), 9, per_channel=False, act=A.RELU, in_zp=5, w_zp=-9, seed=22),
    Case("fc_per_channel", F, (2, 33), 7, act=A.RELU6, in_zp=127, out_zp=-128, seed=23),
    Case("fc_per_channel_nobias", F, (1, 64), 5, bias=False, in_zp=-3, seed=24),
    Case("fc_rank4_flatten", F, (1, 2, 3, 8), 6, per_channel=False, in_zp=30, seed=25),
    Case("fc_3d_keep_per_tensor", F, (1, 5, 12), 4, per_channel=False, keep_num_dims=True, in_zp=-20, seed=26),
    Case("fc_3d_keep_per_channel", F, (1, 5, 12), 4, keep_num_dims=True, in_zp=-20, seed=27, oracle_ok=False),
    Case("fc_one_unit", F, (1, 16), 1, bias=False, seed=28),
]


def case_by_id(name: str) -> Case:
    return next(c for c in CASES if c.id == name)


def _f32(x: float) -> float:
    return float(np.float32(x))


def build_graph(case: Case) -> ir.Graph:
    """A one-op graph with random int8 weights, int32 bias and scales chosen so outputs are not all clipped."""
    rng = np.random.default_rng(case.seed)
    s_in = _f32(rng.uniform(0.005, 0.08))
    cin = case.in_shape[-1]
    kh, kw = case.kernel
    if case.kind == C:
        w_shape, axis, volume = (case.out_c, kh, kw, cin), 0, kh * kw * cin
    elif case.kind == D:
        w_shape, axis, volume = (1, kh, kw, case.out_c), 3, kh * kw
    else:
        w_shape, axis, volume = (case.out_c, cin), 0, cin
    n_scales = case.out_c if case.per_channel else 1
    s_w = tuple(_f32(s) for s in rng.uniform(0.002, 0.03, size=n_scales))
    w = rng.integers(-127, 128, size=w_shape, dtype=np.int64).astype(np.int8)
    # Typical |acc| ~ sqrt(volume) * 70 * 70 (integer units); aim for a few tens of output LSB of spread.
    s_out = _f32(s_in * float(np.mean(s_w)) * math.sqrt(volume) * 70 * 70 / rng.uniform(25, 90))
    tensors = {
        "x": ir.Tensor("x", case.in_shape, ir.DType.INT8, ir.QParams((s_in,), (case.in_zp,))),
        "w": ir.Tensor(
            "w", w_shape, ir.DType.INT8, ir.QParams(s_w, (case.w_zp,) * n_scales, axis if n_scales > 1 else 0), w
        ),
    }
    inputs = ["x", "w"]
    if case.bias:
        b_scales = tuple(_f32(s_in * s) for s in s_w)
        bias = rng.integers(-40000, 40000, size=case.out_c).astype(np.int32)
        tensors["b"] = ir.Tensor("b", (case.out_c,), ir.DType.INT32, ir.QParams(b_scales, (0,) * len(b_scales)), bias)
        inputs.append("b")
    else:
        inputs.append("")  # absent bias: TFLite's conv wants three inputs, the third -1
    if case.kind == F:
        attrs: ir.Attrs = ir.FullyConnectedAttrs(case.act, case.keep_num_dims)
        depth = case.in_shape[-1]
        rows = int(np.prod(case.in_shape)) // depth
        y_shape = (*case.in_shape[:-1], case.out_c) if case.keep_num_dims else (rows, case.out_c)
    else:
        n, h, wd, _ = case.in_shape
        oh = out_size(case.padding, h, kh, case.stride[0], case.dilation[0])
        ow = out_size(case.padding, wd, kw, case.stride[1], case.dilation[1])
        y_shape = (n, oh, ow, case.out_c)
        common = dict(
            padding=case.padding,
            stride_h=case.stride[0],
            stride_w=case.stride[1],
            dilation_h=case.dilation[0],
            dilation_w=case.dilation[1],
            activation=case.act,
        )
        attrs = (
            ir.Conv2DAttrs(**common)
            if case.kind == C
            else ir.DepthwiseConv2DAttrs(depth_multiplier=case.out_c // cin, **common)
        )
    tensors["y"] = ir.Tensor("y", y_shape, ir.DType.INT8, ir.QParams((s_out,), (case.out_zp,)))
    op = ir.Op(case.kind, case.id, tuple(inputs), ("y",), attrs)
    return ir.Graph(case.id, tensors, (op,), ("x",), ("y",))


def random_inputs(case: Case) -> np.ndarray:
    return random_int8(case.in_shape, N_INPUTS, 1000 + case.seed)


@pytest.mark.oracle
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_conv_family_bit_exact(case: Case) -> None:
    (out,) = three_way(build_graph(case), [random_inputs(case)], oracle_ok=case.oracle_ok)
    if case.oracle_ok:
        assert np.unique(out).size > 4, "degenerate case: outputs almost constant"


# -- compile-time parameters ------------------------------------------------------------------------------------


def test_padding_matches_tflite_formulas() -> None:
    # SAME, stride 2, even kernel: total padding 3 -> 1 before (floor), 2 after.
    assert out_size(ir.Padding.SAME, 7, 4, 2, 1) == 4
    assert pad_before(7, 4, 2, 1, 4) == 1
    # dilation widens the kernel: 3 taps, dilation 2 -> 5 wide
    assert out_size(ir.Padding.VALID, 10, 3, 1, 2) == 6
    assert pad_before(10, 3, 1, 2, 6) == 0
    assert out_size(ir.Padding.SAME, 10, 3, 1, 2) == 10 and pad_before(10, 3, 1, 2, 10) == 2


def test_per_tensor_fc_multiplies_scales_in_float32() -> None:
    """GetQuantizedConvolutionMultipler: float32(s_in * s_w) first; find scales where that differs from double."""
    rng = np.random.default_rng(0)
    g = build_graph(CASES[0])
    op = g.ops[0]
    found = 0
    for _ in range(2000):
        s_in, s_w, s_out = (float(np.float32(v)) for v in rng.uniform(1e-3, 1e-1, size=3))
        mult, shift = per_tensor_fc_multiplier(g, op, s_in, s_w, s_out)
        exact = quantize_multiplier(s_in * s_w / s_out)
        f32 = quantize_multiplier(float(np.float64(np.float32(s_in) * np.float32(s_w)) / s_out))
        assert (int(mult[0]), int(shift[0])) == f32
        found += f32 != exact
    assert found > 0


def test_macs_and_kernel_choice() -> None:
    g = build_graph(case_by_id("conv_3x3_same_relu"))  # conv 3x3 SAME, 9x8x5 -> 9x8x6
    (layer,) = lower(g)
    assert layer.kernel.name == "mcuq_conv2d_s8"
    assert layer.macs == 9 * 8 * 6 * 3 * 3 * 5
    assert layer.p("window.pad.h") == 1 and layer.p("window.pad.w") == 1
    g = build_graph(case_by_id("dw_mult2_s2"))  # depthwise multiplier 2
    (layer,) = lower(g)
    assert layer.p("depth_multiplier") == 2
    assert layer.macs == int(np.prod(g.tensors["y"].shape)) * 9
    g = build_graph(case_by_id("fc_per_tensor"))  # per-tensor FC
    (layer,) = lower(g)
    assert layer.p("per_channel") == 0 and len(layer.p("quant.multiplier")) == 1
    assert layer.macs == 37 * 11


def test_accumulator_overflow_is_a_compile_error() -> None:
    case = Case("fc_huge", F, (1, 70000), 2, in_zp=127, seed=3)  # 127 * 255 * 70000 > 2^31
    g = build_graph(case)
    w = np.full((2, 70000), 127, dtype=np.int8)
    g.tensors["w"] = ir.Tensor("w", w.shape, ir.DType.INT8, g.tensors["w"].qparams, w)
    with pytest.raises(ModelError, match="accumulator could overflow"):
        lower(g)


def test_nonzero_conv_weight_zero_point_is_rejected() -> None:
    g = build_graph(CASES[0])
    w = g.tensors["w"]
    assert w.qparams is not None
    g.tensors["w"] = ir.Tensor("w", w.shape, w.dtype, ir.QParams(w.qparams.scale, (3,) * len(w.qparams.scale)), w.data)
    with pytest.raises(ModelError, match="symmetric"):
        lower(g)


# -- float widths of the effective scale, checked against the oracle -----------------------------------------------


def _discriminating_scales(rng: np.random.Generator) -> tuple[float, float, float]:
    """Scales whose multiplier differs between float32(s_in * s_w) and the double product."""
    while True:
        s_in, s_w = (_f32(v) for v in rng.uniform(1e-3, 1e-1, size=2))
        s_out = _f32(s_in * s_w * rng.uniform(2e5, 1e6))  # tiny multiplier: large accumulators per output LSB
        a = quantize_multiplier(float(np.float64(np.float32(s_in) * np.float32(s_w)) / s_out))
        b = quantize_multiplier(s_in * s_w / s_out)
        if a[1] == b[1] and abs(a[0] - b[0]) > 16:
            return s_in, s_w, s_out


@pytest.mark.oracle
@pytest.mark.parametrize(
    "kind,per_channel", [(F, False), (F, True), (C, False), (D, True)], ids=["fc", "fc_pc", "conv", "dw"]
)
def test_effective_scale_float_width_matches_oracle(kind: ir.OpKind, per_channel: bool) -> None:
    """Per-tensor FC multiplies the scales in float32, the conv family and per-channel FC in double.

    The two multipliers differ by a few parts in 1e8, which changes an output only when the accumulator lands
    next to a rounding boundary: with a zero input the accumulator is the bias, so the bias is set to
    accumulator values where the two multipliers give different outputs, and the oracle has to pick one.
    """
    oracle.require()
    rng = np.random.default_rng(42)
    s_in, s_w, s_out = _discriminating_scales(rng)
    units = 24
    case = Case("fw", kind, (1, 1, 1, 2) if kind != F else (1, 2), units, per_channel=per_channel, seed=1)
    g = build_graph(case)
    x, w, y = g.tensors["x"], g.tensors["w"], g.tensors["y"]
    assert w.qparams is not None
    n_w = len(w.qparams.scale)
    g.tensors["x"] = ir.Tensor("x", x.shape, x.dtype, ir.QParams((s_in,), (0,)))
    g.tensors["w"] = ir.Tensor("w", w.shape, w.dtype, ir.QParams((s_w,) * n_w, (0,) * n_w, w.qparams.axis), w.data)
    g.tensors["y"] = ir.Tensor("y", y.shape, y.dtype, ir.QParams((s_out,), (0,)))
    (layer,) = lower(g)
    ours = (int(layer.p("quant.multiplier")[0]), int(layer.p("quant.shift")[0]))
    f32 = quantize_multiplier(float(np.float64(np.float32(s_in) * np.float32(s_w)) / s_out))
    f64 = quantize_multiplier(float(np.float64(s_in) * np.float64(s_w) / np.float64(s_out)))
    assert ours == (f32 if (kind == F and not per_channel) else f64)
    other = f64 if ours == f32 else f32
    # Accumulator values whose outputs differ between the two multipliers (in the unclipped range).
    from mcuq.quant.fixedpoint import multiply_by_quantized_multiplier as mbqm

    real = ours[0] * 2.0 ** (ours[1] - 31)
    near = np.round((np.arange(-120, 120) + 0.5) / real).astype(np.int64)  # next to each rounding boundary
    acc = np.unique((near[:, None] + np.arange(-64, 65)).reshape(-1))
    a, b = mbqm(acc, *ours), mbqm(acc, *other)
    hits = acc[(a != b) & (np.abs(a) < 120)]
    assert hits.size >= units, "no discriminating accumulator values found"
    bias = rng.choice(hits, size=units, replace=False).astype(np.int32)
    b_q = ir.QParams((_f32(s_in * s_w),) * units, (0,) * units)
    g.tensors["b"] = ir.Tensor("b", (units,), ir.DType.INT32, b_q, bias)
    (layer,) = lower(g)
    zero = np.zeros((1, *x.shape), dtype=np.int8)
    (want,) = three_way(g, [zero])  # the numpy reference and the C agree with the oracle
    assert not np.array_equal(mbqm(bias.astype(np.int64), *other), want.reshape(-1)), "oracle matched the other width"
