"""The dsp path of the 16x8 CONV_2D and FULLY_CONNECTED (mcuq/kernels/conv16_fast.py): the same bits as the
portable 16x8 kernels and their numpy mirror, on the host under ASan/UBSan (the kernels' plain C). The C with the
DSP intrinsics runs in QEMU in tests/qemu/test_kernel_paths.py (group "conv16").

Cases: odd channel counts, K % 4 tails, padding, strides, dilation, batches, int32 and int64 biases (both
accumulators), no bias, clamps, K beyond one 508-product partial sum, and extreme weights and inputs (every product
at 2^22: the partial sums at their bound)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import mcuq
from mcuq import ir
from mcuq.kernels import KERNELS
from mcuq.kernels.conv16_fast import (
    conv16_direct,
    conv16_dsp_scratch,
    conv16_dsp_supports,
    conv16_dsp_weights,
    dw16_dsp_supports,
    dw16_dsp_weights,
    fc16_dsp_supports,
    fc16_dsp_weights,
)
from mcuq.lower import lower
from mcuq.lower.specialize import specialize
from tests.kernels.test_conv16 import Case, build_graph, random_int16
from tests.util.harness import reference_outputs
from tests.util.paths import Build, Fallback, check_paths, merge

A = ir.Activation
C, D, F = ir.OpKind.CONV2D, ir.OpKind.DEPTHWISE_CONV2D, ir.OpKind.FULLY_CONNECTED
SAME, VALID = ir.Padding.SAME, ir.Padding.VALID
I32 = ir.DType.INT32

# one graph of independent branches per group: one host build each
CONV = [
    Case("f_c1x1_cin3_cout4", C, (1, 5, 7, 3), 4, seed=1),
    Case("f_c1x1_cin8_cout16", C, (1, 4, 5, 8), 16, act=A.RELU, seed=2),
    Case("f_c1x1_s2_cin5", C, (1, 7, 8, 5), 3, (1, 1), (2, 2), seed=3),
    Case("f_c1x1_direct_odd_pixels", C, (1, 3, 5, 12), 7, seed=15),  # in place, 15 pixels: a spare slot
    Case("f_c1x1_direct_s2x3", C, (2, 7, 11, 4), 5, (1, 1), (2, 3), act=A.RELU, seed=16),
    Case("f_c1x1_direct_k516", C, (1, 2, 3, 516), 3, seed=17),  # two partial sums
    Case("f_c3x3_same_cin1_cout8", C, (1, 8, 8, 1), 8, (3, 3), padding=SAME, act=A.RELU, seed=4),
    Case("f_c3x3_same_s2_odd", C, (1, 11, 10, 3), 7, (3, 3), (2, 2), padding=SAME, seed=5),
    Case("f_c5x4_s2x3_relu6", C, (2, 13, 14, 2), 3, (5, 4), (2, 3), act=A.RELU6, seed=6),
    Case("f_c_dilated_same", C, (1, 10, 9, 4), 5, (3, 2), dilation=(2, 3), padding=SAME, seed=7),
    Case("f_c_per_tensor", C, (1, 6, 6, 8), 5, (2, 2), padding=SAME, per_channel=False, seed=8),
    Case("f_c_int32_bias", C, (1, 6, 5, 4), 6, (3, 3), padding=SAME, bias=I32, seed=9),
    Case("f_c_big_bias", C, (1, 5, 5, 3), 4, (3, 3), padding=SAME, bias_scale=1000, seed=10),
    Case("f_c_nobias", C, (1, 6, 5, 4), 3, (3, 3), padding=SAME, bias=None, seed=11),
    Case("f_c3x3_cin64_k576", C, (1, 4, 3, 64), 5, (3, 3), padding=SAME, seed=12),  # K = 576 > 508
    Case("f_c_one_pixel", C, (1, 3, 3, 5), 2, (3, 3), seed=13),  # a block of one pixel
    Case("f_c_int4", C, (1, 7, 6, 3), 5, (3, 3), padding=SAME, bits=4, seed=14),  # stays portable
]
FC = [
    Case("f_fc_1_to_1", F, (1, 1), 1, seed=21),
    Case("f_fc_5_to_3", F, (1, 5), 3, seed=22),
    Case("f_fc_37_to_11_pt", F, (1, 37), 11, per_channel=False, seed=23),
    Case("f_fc_33_to_7_relu6", F, (2, 33), 7, act=A.RELU6, seed=24),
    Case("f_fc_64_to_5_nobias", F, (1, 64), 5, bias=None, seed=25),
    Case("f_fc_40_to_6_int32", F, (2, 40), 6, bias=I32, seed=26),
    Case("f_fc_rank4_flatten", F, (1, 2, 3, 8), 6, per_channel=False, seed=27),
    Case("f_fc_big_bias", F, (1, 24), 8, bias_scale=300, seed=28),
    Case("f_fc_1030_to_9", F, (1, 1030), 9, seed=29),  # three partial sums, a tail of 2
    Case("f_fc_wzp", F, (3, 20), 9, per_channel=False, w_zp=-9, seed=30),  # stays portable
    Case("f_fc_int2", F, (1, 45), 5, bits=2, seed=31),  # stays portable
]
DW = [
    Case("f_dw3x3_same_c8_relu", D, (1, 8, 8, 8), 8, (3, 3), padding=SAME, act=A.RELU, seed=61),  # the digits layer
    Case("f_dw3x3_valid_c4", D, (1, 6, 7, 4), 4, (3, 3), seed=62),
    Case("f_dw3x3_same_s2_c12", D, (2, 9, 8, 12), 12, (3, 3), (2, 2), padding=SAME, seed=63),
    Case("f_dw3x3_same_c5", D, (1, 7, 6, 5), 5, (3, 3), padding=SAME, seed=64),  # a tail of 1 channel
    Case("f_dw3x3_same_c6_s2x1", D, (1, 7, 9, 6), 6, (3, 3), (2, 1), padding=SAME, act=A.RELU6, seed=65),  # tail 2
    Case("f_dw5x5_same_c7", D, (1, 9, 8, 7), 7, (5, 5), padding=SAME, seed=66),  # tail 3, span 5
    Case("f_dw2x3_valid_c8", D, (1, 6, 7, 8), 8, (2, 3), (1, 2), seed=67),
    Case("f_dw1x1_c4", D, (1, 3, 5, 4), 4, seed=68),
    Case("f_dw_dilated_same_c8", D, (1, 10, 9, 8), 8, (3, 3), (1, 1), (2, 3), padding=SAME, seed=69),
    Case("f_dw_per_tensor_c4", D, (1, 7, 7, 4), 4, (3, 3), padding=SAME, per_channel=False, seed=70),
    Case("f_dw_big_bias_c4", D, (1, 5, 5, 4), 4, (3, 3), padding=SAME, bias_scale=1000, seed=72),
    Case("f_dw_nobias_c4", D, (1, 6, 7, 4), 4, (3, 3), (2, 2), padding=SAME, bias=None, seed=73),
    Case("f_dw_wide_input_c4", D, (1, 2, 11, 4), 4, (3, 3), padding=SAME, seed=74),  # more rows than the input
    Case("f_dw23x23_c4", D, (1, 23, 23, 4), 4, (23, 23), seed=75),  # 529 taps: two partial sums
    Case("f_dw_mult2", D, (1, 7, 6, 3), 6, (3, 3), padding=SAME, seed=76),  # stays portable
    Case("f_dw_int4", D, (1, 7, 6, 4), 4, (3, 3), padding=SAME, bits=4, seed=77),  # stays portable
]
PORTABLE = {"f_c_int4", "f_fc_wzp", "f_fc_int2", "f_dw_mult2", "f_dw_int4"}
# the scope of the 16x8 dsp variants (tests/util/paths.py): int8 weights; the FC also weights_zp 0
FALLBACKS = [
    Fallback(
        k,
        path,
        lambda p: int(p.weight_bits) != 8 or int(getattr(p, "weights_zp", 0)) != 0,
        "the 16x8 dsp kernels take int8 weights (and an FC filter without zero point)",
    )
    for k in ("mcuq_conv2d_s16", "mcuq_fully_connected_s16")
    for path in ("dsp", "mve")
] + [
    Fallback(
        "mcuq_depthwise_conv2d_s16",
        path,
        lambda p: int(p.weight_bits) != 8 or int(p.depth_multiplier) != 1,
        "the 16x8 dsp depthwise takes int8 weights and depth multiplier 1",
    )
    for path in ("dsp", "mve")
]


def _group(name: str, cases: list[Case]) -> tuple[ir.Graph, list[np.ndarray]]:
    g = merge({c.id: build_graph(c) for c in cases}, name)
    xs = [random_int16(c.in_shape, 3, 500 + c.seed) for c in cases]
    # the extremes: all -32768 (with -128 weights: every product 2^22) and all 32767
    xs = [np.concatenate([x, np.full((1, *x.shape[1:]), -32768), np.full((1, *x.shape[1:]), 32767)]) for x in xs]
    return g, [x.astype(np.int16) for x in xs]


@pytest.mark.parametrize("name,cases", [("conv16", CONV), ("fc16", FC), ("dw16", DW)])
def test_dsp_16x8_bit_exact_on_host(name: str, cases: list[Case]) -> None:
    g, xs = _group(name, cases)
    report = check_paths(
        g, xs, group=name, todo=[Build("host", "dsp")], fallbacks=FALLBACKS, reference=reference_outputs(g, xs)
    )
    cm = report.compiled[Build("host", "dsp")]
    for layer in cm.layers:
        fast = layer.kernel_name.endswith("_s16_dsp")
        assert fast == (layer.op.name not in PORTABLE), (layer.op.name, layer.kernel_name)


def _extreme(case: Case) -> ir.Graph:
    """``case`` with every weight -128 and a scale that keeps the outputs in range: the 32-bit partial sums of
    products 2^22 reach their bound (508 * 2^22 < 2^31) only on the dsp path's chunking being right."""
    g = build_graph(case)
    w = g.tensors["w"]
    tensors = dict(g.tensors)
    tensors["w"] = dataclasses.replace(w, data=np.full(w.shape, -128, dtype=np.int8))
    y = g.tensors["y"]
    k = int(np.prod(w.shape)) // case.out_c
    scale = float(np.float32(g.tensors["x"].scale * max(w.qparams.scale) * 128 * 32768 * k / 30000))
    tensors["y"] = dataclasses.replace(y, qparams=ir.QParams((scale,), (0,)))
    return dataclasses.replace(g, tensors=tensors)


def test_partial_sums_at_their_bound() -> None:
    cases = [
        Case("e_fc", F, (1, 1100), 5, seed=41),
        Case("e_conv", C, (1, 3, 3, 70), 3, (3, 3), padding=SAME, seed=42),  # K = 630
        Case("e_dw", D, (1, 23, 23, 4), 4, (23, 23), seed=43),  # 529 taps
        Case("e_dw_fast", D, (1, 22, 23, 4), 4, (22, 23), seed=44),  # 506 taps: one partial sum (the fast path)
    ]
    g = merge({c.id: _extreme(c) for c in cases}, "extreme")
    xs = [np.stack([np.full(c.in_shape, v, dtype=np.int16) for v in (-32768, 32767, 1)]) for c in cases]
    ref = reference_outputs(g, xs)
    assert all(np.unique(v).size > 1 for v in ref.values())
    check_paths(g, xs, group="extreme", todo=[Build("host", "dsp")], reference=ref)


def test_weight_layouts() -> None:
    """Rows padded to whole words, the bytes of every word as (w0, w2, w1, w3); the FC's groups of 4 units."""
    g = build_graph(Case("l_conv", C, (1, 4, 4, 3), 2, (1, 3), seed=51))  # K = 9 -> 12
    (layer,) = lower(g)
    w = np.asarray(g.tensors["w"].data).reshape(2, 9)
    got = conv16_dsp_weights(g.tensors["w"].data, layer.params).reshape(2, 3, 4)
    assert got[0, 0].tolist() == [w[0, 0], w[0, 2], w[0, 1], w[0, 3]]
    assert got[1, 2].tolist() == [w[1, 8], 0, 0, 0]
    assert conv16_dsp_scratch(layer.params) == 12 * 4 * 2
    assert KERNELS["mcuq_conv2d_s16_dsp"].scratch_bytes(layer.params) == 96
    (direct,) = lower(build_graph(Case("l_direct", C, (1, 3, 5, 12), 7)))  # 1x1, input.c % 4 == 0: in place
    assert conv16_direct(direct.params) and conv16_dsp_scratch(direct.params) == 0
    (strided,) = lower(build_graph(Case("l_odd", C, (1, 3, 5, 6), 7)))
    assert not conv16_direct(strided.params) and conv16_dsp_scratch(strided.params) == 8 * 4 * 2
    g = build_graph(Case("l_fc", F, (1, 6), 5, seed=52))
    (layer,) = lower(g)
    w = np.asarray(g.tensors["w"].data)
    got = fc16_dsp_weights(w, layer.params)
    assert got.size == 5 * 8
    assert got[:4].tolist() == [w[0, 0], w[0, 2], w[0, 1], w[0, 3]]  # group 0, inputs 0-3, unit 0
    assert got[4:8].tolist() == [w[1, 0], w[1, 2], w[1, 1], w[1, 3]]  # unit 1
    assert got[16:20].tolist() == [w[0, 4], 0, w[0, 5], 0]  # inputs 4-5 of unit 0, padded
    assert got[32:].tolist() == [w[4, 0], w[4, 2], w[4, 1], w[4, 3], w[4, 4], 0, w[4, 5], 0]  # the last unit alone


def test_scope() -> None:
    """int8 weights only; the FC also needs weights_zp 0; the mve path takes the dsp variants."""
    (conv,) = lower(build_graph(Case("s_c", C, (1, 4, 4, 3), 2, (3, 3), bits=4)))
    assert not conv16_dsp_supports(conv.params)
    (fc,) = lower(build_graph(Case("s_f", F, (1, 20), 3, per_channel=False, w_zp=3)))
    assert not fc16_dsp_supports(fc.params)
    g = build_graph(Case("s_c8", C, (1, 4, 4, 3), 2, (3, 3)))
    layers = lower(g)
    assert specialize(g, layers, "mve")[0].kernel_name == "mcuq_conv2d_s16_dsp"
    cm = mcuq.compile_model(g, board="host", kernels="dsp", prefix="s")
    assert cm.layers[0].kernel_name == "mcuq_conv2d_s16_dsp"


_REQUANT_C = r"""
#include <stdio.h>
#include "mcuq_conv_s16_dsp.h"
int main(void)
{
    long long x;
    long a, q, s;
    while (scanf("%ld %lld %ld %ld", &a, &x, &q, &s) == 4) {
        const mcuq_s16_quant qq = mcuq_s16_quant_of((int32_t)a, (int32_t)q, (int32_t)s);
        const int32_t want = a ? mcuq_multiply_by_quantized_multiplier_s64((int64_t)x, (int32_t)q, (int32_t)s)
                               : mcuq_multiply_by_quantized_multiplier((int32_t)x, (int32_t)q, (int32_t)s);
        printf("%d %ld %ld\n", (int)qq.form, (long)mcuq_s16_requant((int64_t)x, &qq), (long)want);
    }
    return 0;
}
"""


def test_requantization_matches_the_portable_helpers(tmp_path) -> None:
    """mcuq_conv_s16_dsp.h's per-channel requantization equals the portable helpers bit for bit: int64 accumulators
    up to +-2^47 with shifts 14 down to -31 (right shifts 1 to 46: both word cases), multipliers 0, 2^30, at and
    above 0x7FFF0000; int32 accumulators with every shift; hostile multipliers and shifts on the general form."""
    import subprocess

    from mcuq._paths import RUNTIME_C
    from mcuq.build import SANITIZE_FLAGS, host_cc

    cc = host_cc()
    if cc is None:
        pytest.skip("no host C compiler")
    rng = np.random.default_rng(3)
    qs = [0, 1 << 30, 0x7FFEFFFF, 0x7FFF0000, 0x7FFFFFFF, *rng.integers(1 << 30, 1 << 31, 12).tolist()]
    rows = []
    x64 = [0, 1, -1, 2**47 - 1, -(2**47), 2**31, -(2**31) - 1, *rng.integers(-(2**47), 2**47, 12).tolist()]
    x64 += rng.integers(-(2**24), 2**24, 8).tolist()
    rows += [(1, x, q, s) for x in x64 for q in qs for s in (14, 13, 0, -1, -16, -17, -18, -20, -31)]
    x32 = [0, 1, -1, 2**31 - 1, -(2**31), *rng.integers(-(2**31), 2**31, 10).tolist()]
    rows += [(0, x, q, s) for x in x32 for q in qs for s in (-31, -20, -1, 0, 1, 7, 30)]
    rows += [(a, 12345, -(1 << 30), -3) for a in (0, 1)]  # negative multiplier: the general form
    rows += [(1, 2**40, 1 << 30, -40), (0, 77, 1 << 30, 31)]  # beyond the fast forms' shifts
    src = tmp_path / "t.c"
    src.write_text(_REQUANT_C)
    exe = tmp_path / "t"
    inc = RUNTIME_C / "src" / "internal"
    cmd = [cc, "-std=c99", "-Wall", "-Wextra", "-Werror", *SANITIZE_FLAGS, f"-I{inc}", f"-I{RUNTIME_C / 'include'}"]
    subprocess.run([*cmd, str(src), "-o", str(exe)], check=True, capture_output=True, text=True)
    stdin = "\n".join(f"{a} {x} {q} {s}" for a, x, q, s in rows)
    out = subprocess.run([str(exe)], input=stdin, capture_output=True, text=True, check=True, timeout=60)
    got = np.array([[int(v) for v in line.split()] for line in out.stdout.splitlines()])
    assert len(got) == len(rows)
    np.testing.assert_array_equal(got[:, 1], got[:, 2])
    assert {0, 1, 2} <= set(got[:, 0].tolist())  # every form was exercised


def test_depthwise_weights_and_scope() -> None:
    """Groups of 4 channels, per group the taps in HW order as 4 little-endian int16, channels beyond C zero; int8
    weights and depth multiplier 1 only; no scratch."""
    g = build_graph(Case("l_dw", D, (1, 5, 5, 6), 6, (2, 3), seed=53))
    (layer,) = lower(g)
    w = np.asarray(g.tensors["w"].data).reshape(6, 6)  # [taps][C]
    got = dw16_dsp_weights(g.tensors["w"].data, layer.params)
    assert got.dtype == np.int8 and got.size == 2 * 6 * 4 * 2
    lanes = got.view("<i2").reshape(2, 6, 4)  # [group][tap][lane]
    np.testing.assert_array_equal(lanes[0], w[:, :4])
    np.testing.assert_array_equal(lanes[1, :, :2], w[:, 4:])
    assert not lanes[1, :, 2:].any()
    assert dw16_dsp_supports(layer.params)
    assert KERNELS["mcuq_depthwise_conv2d_s16_dsp"].scratch_bytes(layer.params) == 0
    (mult,) = lower(build_graph(Case("s_dwm", D, (1, 4, 4, 3), 6, (3, 3))))
    (int4,) = lower(build_graph(Case("s_dw4", D, (1, 4, 4, 3), 3, (3, 3), bits=4)))
    assert not dw16_dsp_supports(mult.params) and not dw16_dsp_supports(int4.params)
    cm = mcuq.compile_model(g, board="host", kernels="mve", prefix="s")
    assert cm.layers[0].kernel_name == "mcuq_depthwise_conv2d_s16_dsp"
