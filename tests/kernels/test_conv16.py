"""CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED in TFLite's 16x8 mode (int16 activations, int8 or packed
weights, int64 bias): lowering, numpy mirror and C, bit-exact with the oracle's 16x8 reference kernels.

Each case is a one-op graph run through tests/util/harness.py's three-way check (oracle, numpy mirror, the C built
with ASan/UBSan) on random int16 inputs over the whole int16 range. Packed weights (int4, ternary, binary) go to
the oracle as the int8-container model; the C reads them packed.
"""

from __future__ import annotations

import math
import subprocess
from dataclasses import dataclass

import numpy as np
import pytest

from mcuq import ir
from mcuq._paths import RUNTIME_C
from mcuq.build import SANITIZE_FLAGS, host_cc
from mcuq.errors import ModelError
from mcuq.lower import lower
from mcuq.lower.window import out_size
from mcuq.quant.fixedpoint import multiply_by_quantized_multiplier_s64
from tests.util.harness import three_way

N_INPUTS = 4
A = ir.Activation
C, D, F = ir.OpKind.CONV2D, ir.OpKind.DEPTHWISE_CONV2D, ir.OpKind.FULLY_CONNECTED
SAME, VALID = ir.Padding.SAME, ir.Padding.VALID
I64, I32 = ir.DType.INT64, ir.DType.INT32
W_DTYPE = {8: ir.DType.INT8, 4: ir.DType.INT4, 2: ir.DType.INT2, 1: ir.DType.INT1}


@dataclass(frozen=True)
class Case:
    id: str
    kind: ir.OpKind
    in_shape: tuple[int, ...]
    out_c: int
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    padding: ir.Padding = VALID
    act: ir.Activation = A.NONE
    per_channel: bool = True
    bias: ir.DType | None = I64
    bits: int = 8
    w_zp: int = 0  # per-tensor int8 FC only
    keep_num_dims: bool = False
    bias_scale: float = 1.0  # bias magnitude relative to a typical accumulator
    seed: int = 0
    # False where tflite-runtime 2.14 cannot be the oracle: its CONV_2D refuses a missing bias
    oracle_ok: bool = True


CASES = [
    Case("conv_1x1", C, (1, 5, 7, 3), 4, seed=1),
    Case("conv_3x3_same_relu", C, (1, 9, 8, 5), 6, (3, 3), padding=SAME, act=A.RELU, seed=2),
    Case("conv_3x3_s2_same_odd", C, (1, 11, 10, 3), 7, (3, 3), (2, 2), padding=SAME, seed=3),
    Case("conv_5x4_s2x3_relu6", C, (2, 13, 14, 2), 3, (5, 4), (2, 3), act=A.RELU6, seed=4),
    Case("conv_dilated_same", C, (1, 10, 9, 4), 5, (3, 2), dilation=(2, 3), padding=SAME, seed=5),
    Case("conv_dilated_s2_n1to1", C, (1, 12, 11, 3), 2, (3, 3), (2, 1), (2, 2), act=A.RELU_N1_TO_1, seed=6),
    Case("conv_per_tensor", C, (1, 6, 6, 8), 5, (2, 2), padding=SAME, per_channel=False, seed=7),
    Case("conv_int32_bias", C, (1, 6, 5, 4), 6, (3, 3), padding=SAME, bias=I32, seed=8),
    Case("conv_big_int64_bias", C, (1, 5, 5, 3), 4, (3, 3), padding=SAME, bias_scale=1000, seed=9),
    Case("conv_nobias", C, (1, 6, 5, 4), 3, (3, 3), padding=SAME, bias=None, seed=10, oracle_ok=False),
    Case("dw_3x3_same_relu", D, (1, 9, 10, 8), 8, (3, 3), padding=SAME, act=A.RELU, seed=11),
    Case("dw_mult2_s2", D, (1, 11, 9, 3), 6, (3, 3), (2, 2), padding=SAME, seed=12),
    Case("dw_mult3_valid_relu6", D, (2, 8, 7, 2), 6, (2, 3), (1, 2), act=A.RELU6, seed=13),
    Case("dw_dilated_same", D, (1, 10, 10, 5), 5, (3, 3), (1, 1), (2, 2), padding=SAME, seed=14),
    Case("dw_per_tensor", D, (1, 7, 7, 4), 4, (3, 3), padding=SAME, per_channel=False, seed=15),
    Case("dw_nobias", D, (1, 6, 7, 3), 6, (3, 3), (2, 2), padding=SAME, bias=None, seed=16),
    Case("fc_per_tensor", F, (1, 37), 11, per_channel=False, seed=21),
    Case("fc_per_tensor_wzp_relu", F, (3, 20), 9, per_channel=False, act=A.RELU, w_zp=-9, seed=22),
    Case("fc_per_channel_relu6", F, (2, 33), 7, act=A.RELU6, seed=23),
    Case("fc_nobias_acc32", F, (1, 64), 5, bias=None, seed=24),
    Case("fc_int32_bias", F, (2, 40), 6, bias=I32, seed=25),
    Case("fc_rank4_flatten", F, (1, 2, 3, 8), 6, per_channel=False, seed=26),
    Case("fc_3d_keep", F, (1, 5, 12), 4, per_channel=False, keep_num_dims=True, seed=27),
    Case("fc_big_int64_bias", F, (1, 24), 8, bias_scale=300, seed=28),
    # packed weights: odd sizes, so channels start mid-byte
    Case("conv_int4_odd", C, (1, 7, 6, 3), 5, (3, 3), padding=SAME, bits=4, seed=31),
    Case("conv_int2_s2", C, (1, 9, 8, 5), 3, (3, 3), (2, 2), padding=SAME, bits=2, act=A.RELU, seed=32),
    Case("conv_int1_dilated", C, (1, 10, 9, 3), 7, (3, 3), dilation=(2, 2), padding=SAME, bits=1, seed=33),
    Case("dw_int4_mult3", D, (1, 8, 7, 3), 9, (3, 3), padding=SAME, bits=4, seed=34),
    Case("dw_int2", D, (1, 7, 9, 5), 5, (3, 3), (2, 1), padding=SAME, bits=2, seed=35),
    Case("dw_int1_mult2", D, (1, 6, 6, 3), 6, (3, 3), bits=1, seed=36),
    Case("fc_int4_odd", F, (2, 37), 7, bits=4, seed=37),
    Case("fc_int2_per_tensor", F, (1, 45), 5, per_channel=False, bits=2, seed=38),
    Case("fc_int1_nobias", F, (1, 29), 3, bits=1, bias=None, seed=39),
]


def case_by_id(name: str) -> Case:
    return next(c for c in CASES if c.id == name)


def _f32(x: float) -> float:
    return float(np.float32(x))


def _weights(rng: np.random.Generator, shape: tuple[int, ...], bits: int) -> np.ndarray:
    if bits == 1:
        return rng.choice(np.array([-1, 1], dtype=np.int8), size=shape)
    hi = {8: 127, 4: 7, 2: 1}[bits]
    return rng.integers(-hi, hi + 1, size=shape, dtype=np.int64).astype(np.int8)


def build_graph(case: Case) -> ir.Graph:
    """A one-op 16x8 graph: int16 symmetric activations, random weights of ``case.bits``, scales chosen so that the
    outputs spread over a few thousand int16 steps."""
    rng = np.random.default_rng(case.seed)
    s_in = _f32(rng.uniform(1e-4, 1e-3))
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
    w = _weights(rng, w_shape, case.bits)
    typical = math.sqrt(volume) * math.sqrt(float(np.mean(w.astype(np.float64) ** 2)) + 1) * 18900
    spread = rng.uniform(2000, 9000) / (1 + case.bias_scale / 3)
    s_out = _f32(s_in * float(np.mean(s_w)) * typical / spread)
    clamp = {A.RELU6: 6.0, A.RELU_N1_TO_1: 1.0}.get(case.act)
    if clamp is not None:  # the bound at about twice the typical output: a clamp that cuts only the tails
        s_out = _f32(clamp / (2 * spread))
        s_in = _f32(s_out * spread / (float(np.mean(s_w)) * typical))
    tensors = {
        "x": ir.Tensor("x", case.in_shape, ir.DType.INT16, ir.QParams((s_in,), (0,))),
        "w": ir.Tensor(
            "w", w_shape, W_DTYPE[case.bits], ir.QParams(s_w, (case.w_zp,) * n_scales, axis if n_scales > 1 else 0), w
        ),
    }
    inputs = ["x", "w"]
    if case.bias is not None:
        b_scales = tuple(_f32(s_in * s) for s in s_w)
        lim = int(typical * case.bias_scale)
        bias = rng.integers(-lim, lim + 1, size=case.out_c).astype(case.bias.np)
        tensors["b"] = ir.Tensor("b", (case.out_c,), case.bias, ir.QParams(b_scales, (0,) * len(b_scales)), bias)
        inputs.append("b")
    else:
        inputs.append("")
    if case.kind == F:
        attrs: ir.Attrs = ir.FullyConnectedAttrs(case.act, case.keep_num_dims)
        rows = int(np.prod(case.in_shape)) // cin
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
    tensors["y"] = ir.Tensor("y", y_shape, ir.DType.INT16, ir.QParams((s_out,), (0,)))
    op = ir.Op(case.kind, case.id, tuple(inputs), ("y",), attrs)
    return ir.Graph(case.id, tensors, (op,), ("x",), ("y",))


def random_int16(shape: tuple[int, ...], n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(-32768, 32768, size=(n, *shape), dtype=np.int64).astype(np.int16)


@pytest.mark.oracle
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_conv16_bit_exact(case: Case) -> None:
    g = build_graph(case)
    (out,) = three_way(g, [random_int16(case.in_shape, N_INPUTS, 1000 + case.seed)], oracle_ok=case.oracle_ok)
    assert np.unique(out).size > min(8, out.size // 3), "degenerate case: outputs almost constant"


# -- lowering: parameters and refusals ------------------------------------------------------------------------------


def _replace(g: ir.Graph, name: str, **changes) -> ir.Graph:
    import dataclasses

    tensors = dict(g.tensors)
    tensors[name] = dataclasses.replace(tensors[name], **changes)
    return dataclasses.replace(g, tensors=tensors)


def test_accumulator_follows_the_bias_type() -> None:
    """int64 bias: int64 accumulator (acc64); int32 bias (widened to an int64 constant): int32; FC without a bias:
    int32; depthwise without a bias: int64; the clamp bounds are int16."""
    (layer,) = lower(build_graph(case_by_id("conv_1x1")))
    assert layer.kernel.name == "mcuq_conv2d_s16" and layer.p("acc64") == 1 and layer.p("weight_bits") == 8
    assert (layer.p("activation.min"), layer.p("activation.max")) == (-32768, 32767)
    (layer,) = lower(build_graph(case_by_id("conv_int32_bias")))
    assert layer.p("acc64") == 0 and layer.consts[layer.args[2]].dtype == ir.DType.INT64
    (layer,) = lower(build_graph(case_by_id("fc_nobias_acc32")))
    assert layer.p("acc64") == 0 and layer.args[2] == ""
    (layer,) = lower(build_graph(case_by_id("dw_nobias")))
    assert layer.kernel.name == "mcuq_depthwise_conv2d_s16" and layer.p("acc64") == 1
    (layer,) = lower(build_graph(case_by_id("fc_int4_odd")))
    assert layer.kernel.name == "mcuq_fully_connected_s16" and layer.p("weight_bits") == 4
    (layer,) = lower(build_graph(case_by_id("conv_3x3_same_relu")))
    assert layer.p("activation.min") == 0 and layer.p("activation.max") == 32767


def _refused(g: ir.Graph, match: str) -> None:
    with pytest.raises(ModelError, match=match):
        lower(g)


def test_mixed_int8_int16_activations_are_refused() -> None:
    g = build_graph(case_by_id("conv_1x1"))
    _refused(_replace(g, "y", dtype=ir.DType.INT8), "all its activations of one type")
    _refused(_replace(g, "x", dtype=ir.DType.INT8), "all its activations of one type")


def test_int16_zero_point_must_be_zero() -> None:
    g = build_graph(case_by_id("fc_per_tensor"))
    x = g.tensors["x"]
    _refused(_replace(g, "x", qparams=ir.QParams(x.qparams.scale, (3,))), "must be symmetric")


def test_bad_bias_and_weights_are_refused() -> None:
    g = build_graph(case_by_id("dw_3x3_same_relu"))
    b = g.tensors["b"]
    _refused(_replace(g, "b", dtype=I32, data=b.data.astype(np.int32)), "needs an int64 bias")
    _refused(_replace(g, "b", dtype=ir.DType.INT16, data=b.data.astype(np.int16)), "must be a constant int64")
    _refused(_replace(g, "w", dtype=ir.DType.INT16), "weights 'w' must be a constant int8")
    g = build_graph(case_by_id("conv_int4_odd"))
    w = np.array(g.tensors["w"].data, copy=True)
    w.flat[5] = 9  # outside int4
    _refused(_replace(g, "w", data=w), "outside")
    g = build_graph(case_by_id("fc_int2_per_tensor"))
    w = g.tensors["w"]
    _refused(_replace(g, "w", qparams=ir.QParams(w.qparams.scale, (1,))), "symmetric")


def test_accumulator_and_shift_bounds_are_checked() -> None:
    # int32 accumulator (FC without bias): 127 * 32768 * 600 > 2^31
    g = build_graph(case_by_id("fc_nobias_acc32"))
    g2 = _replace(g, "x", shape=(1, 600))
    g2 = _replace(g2, "w", shape=(5, 600), data=np.full((5, 600), 127, dtype=np.int8))
    _refused(g2, "int32 accumulator could overflow.*int64 bias")
    # int64 accumulator beyond TFLite's 2^47
    g = build_graph(case_by_id("fc_per_tensor"))
    big = np.full(11, 2**47, dtype=np.int64)
    _refused(_replace(g, "b", data=big), "2\\^47")
    # a hostile bias near INT64_MIN must not wrap in the check
    _refused(_replace(g, "b", data=np.full(11, -(2**63), dtype=np.int64)), "2\\^47")
    # an effective scale above 2^14: the int64 requantization's right shift 15 - shift would vanish
    s_in_w = g.tensors["x"].scale * g.tensors["w"].scale
    _refused(_replace(g, "y", qparams=ir.QParams((s_in_w / 2**16,), (0,))), r"shift 17 > 14")
    (layer,) = lower(_replace(g, "y", qparams=ir.QParams((s_in_w / 2**13.5,), (0,))))  # 2^13.5: shift 14 is fine
    assert layer.p("quant.shift")[0] == 14


# -- C: the int64 requantization helper against its numpy mirror ------------------------------------------------------

_MBQM_C = r"""
#include <stdio.h>
#include "mcuq_fixedpoint.h"
int main(void)
{
    long long x;
    long q, s;
    while (scanf("%lld %ld %ld", &x, &q, &s) == 3) {
        printf("%ld\n", (long)mcuq_multiply_by_quantized_multiplier_s64((int64_t)x, (int32_t)q, (int32_t)s));
    }
    return 0;
}
"""


def test_multiply_by_quantized_multiplier_s64_c_matches_numpy(tmp_path) -> None:
    """Edge cases: multipliers at and above 0x7FFF0000 (reduced to 0x7FFF), 0, 2^30; shifts -31 and 14; ties of
    both signs; accumulators near +-2^47 and results that wrap beyond int32 (as TFLite's return value does)."""
    cc = host_cc()
    if cc is None:
        pytest.skip("no host C compiler")
    rng = np.random.default_rng(0)
    qs = [0, 1, 1 << 30, 0x7FFEFFFF, 0x7FFF0000, 0x7FFFFFFF, *rng.integers(1 << 30, 1 << 31, 20).tolist()]
    shifts = [-31, -20, -15, -1, 0, 1, 7, 8, 14]
    xs = [0, 1, -1, 2**47 - 1, -(2**47), 2**40 + 12345, -(2**35) - 7, *rng.integers(-(2**47), 2**47, 30).tolist()]
    rows = [(x, q, s) for x in xs for q in qs for s in shifts]
    rows += [((2 * k + 1) << (14 - s), 1 << 30, s) for k in range(-3, 3) for s in (-5, 0, 3)]  # exact ties
    src = tmp_path / "t.c"
    src.write_text(_MBQM_C)
    exe = tmp_path / "t"
    inc = RUNTIME_C / "src" / "internal"
    cmd = [cc, "-std=c99", "-Wall", "-Wextra", "-Werror", *SANITIZE_FLAGS, f"-I{inc}", f"-I{RUNTIME_C / 'include'}"]
    subprocess.run([*cmd, str(src), "-o", str(exe)], check=True, capture_output=True, text=True)
    stdin = "\n".join(f"{x} {q} {s}" for x, q, s in rows)
    out = subprocess.run([str(exe)], input=stdin, capture_output=True, text=True, check=True, timeout=60)
    got = np.array([int(v) for v in out.stdout.split()], dtype=np.int64)
    x, q, s = (np.array(c, dtype=np.int64) for c in zip(*rows, strict=True))
    np.testing.assert_array_equal(got, multiply_by_quantized_multiplier_s64(x, q, s))
    # a few by hand: reduced multiplier 2^14 (0.5), shift 0 -> x / 2 rounded half up
    assert multiply_by_quantized_multiplier_s64(3, 1 << 30, 0) == 2
    assert multiply_by_quantized_multiplier_s64(-3, 1 << 30, 0) == -1
    r = ((1 << 40) * 0x7FFF + (1 << 14)) >> 15  # beyond int32: truncated like TFLite's int32_t result
    assert multiply_by_quantized_multiplier_s64(1 << 40, 0x7FFFFFFF, 0) == ((r + 2**31) % 2**32) - 2**31
