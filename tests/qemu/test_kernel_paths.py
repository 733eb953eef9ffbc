"""Every kernel path is bit-exact with the portable reference: the same layers on the same data, built portable and
with DSP kernels for mps2-an386 (Cortex-M4), portable and with MVE kernels for mps3-an547 (Cortex-M55), run in
QEMU and compared bit for bit with the numpy reference (tests/util/paths.py), over a table of shapes with odd
channel counts, padding, strides, dilation, K % 4 and K % 16 tails and extreme zero points, plus whole models.
Each fast path is also built for the host under ASan/UBSan (the kernels' plain C) and, for the op tables, for
Cortex-M3 (no DSP extension), M7 and M33, and crossed (mve on M4, dsp on M55). Each test also asserts the kernel
every layer runs, so a fast variant that silently falls back fails it (FALLBACKS states each variant's scope).

Each group of cases is one graph of independent branches: one build and one boot per (board, path) and group.
`make test` runs the default table (36 s on 2 busy cores with a cold build cache); `make test-kernel-paths`
(MCUQ_KERNEL_PATHS=full, about 2 min) adds more shapes per group, a seeded random sweep of 32 shapes per conv
family, VWW, ResNet-8 and hello_world, and the extra boards for the models.
"""

from __future__ import annotations

import dataclasses
import functools
import os

import numpy as np
import pytest

import mcuq
from mcuq import ir
from mcuq.api import load_graph
from mcuq.kernels import KERNELS
from mcuq.kernels.variants import VARIANTS, Variant
from mcuq.lower.window import out_size
from tests.conftest import have_arm_toolchain
from tests.kernels.test_conv import Case, build_graph
from tests.kernels.test_elementwise import binary, square, unary
from tests.kernels.test_lowbit_fast import FALLBACKS as S4_FALLBACKS
from tests.kernels.test_pool import PoolCase, pool_graph
from tests.util.harness import reference_outputs
from tests.util.paths import Fallback, builds, check_paths, inputs_for, kernel_problems, merge

FULL = os.environ.get("MCUQ_KERNEL_PATHS", "") == "full"
full_only = pytest.mark.skipif(not FULL, reason="full kernel-path table: make test-kernel-paths")
pytestmark = [
    pytest.mark.qemu,
    pytest.mark.skipif(
        not have_arm_toolchain(), reason="arm-none-eabi-gcc or qemu-system-arm not installed (`make setup`)"
    ),
]

N_RANDOM = 3  # random samples per input, besides the all -128, all 127 and near-zero ones


# -- the scope of each registered variant, as this test states it ------------------------------------------------
# A layer outside these rules that does not get its path's variant fails the test (tests/util/paths.py).
def _taps(p) -> int:
    return int(p.window.filter.h) * int(p.window.filter.w)


def _dw_dsp_outside(p) -> bool:
    w = p.window
    return (
        int(p.depth_multiplier) != 1
        or (int(w.filter.h), int(w.filter.w)) != (3, 3)
        or (int(w.dilation.h), int(w.dilation.w)) != (1, 1)
        or max(int(w.stride.h), int(w.stride.w)) > 2
    )


def _broadcast(p) -> bool:
    b = p.broadcast
    dims = [int(d) for d in b.out_dims]
    return any(d > 1 and int(s) == 0 for strides in (b.input1_strides, b.input2_strides) for d, s in zip(dims, strides))


FALLBACKS = [
    *S4_FALLBACKS,
    Fallback("mcuq_depthwise_conv2d_s8", "dsp", _dw_dsp_outside, "the dsp depthwise is 3x3, multiplier 1, no dilation"),
    Fallback(
        "mcuq_depthwise_conv2d_s8",
        "mve",
        lambda p: int(p.depth_multiplier) != 1 or _taps(p) > 16 or int(p.input.c) < 4,
        "the mve depthwise takes multiplier 1, at most 16 taps and at least 4 channels",
    ),
    *(
        Fallback("mcuq_fully_connected_s8", path, lambda p: int(p.weights_zp) != 0, "fast FC needs weights_zp 0")
        for path in ("dsp", "mve")
    ),
    *(
        Fallback(
            k,
            path,
            lambda p: int(p.weight_bits) != 8 or int(getattr(p, "weights_zp", 0)) != 0,
            "16x8 dsp: int8 weights",
        )
        for k in ("mcuq_conv2d_s16", "mcuq_fully_connected_s16")
        for path in ("dsp", "mve")
    ),
    *(
        Fallback(
            "mcuq_depthwise_conv2d_s16",
            path,
            lambda p: int(p.weight_bits) != 8 or int(p.depth_multiplier) != 1,
            "16x8 dsp depthwise: int8 weights, multiplier 1",
        )
        for path in ("dsp", "mve")
    ),
    *(
        Fallback(k, path, _broadcast, "the fast ADD/SUB walk one flat loop: no broadcast")
        for k in ("mcuq_add_s8", "mcuq_sub_s8")
        for path in ("dsp", "mve")
    ),
]

A = ir.Activation
C, D, F = ir.OpKind.CONV2D, ir.OpKind.DEPTHWISE_CONV2D, ir.OpKind.FULLY_CONNECTED
SAME, VALID = ir.Padding.SAME, ir.Padding.VALID

# -- conv: K = kh * kw * Cin; tails K % 4 and K % 16 noted where they are the point -----------------------------
CONV = [
    Case("c1x1_cin1_cout3", C, (1, 6, 5, 1), 3, seed=101),
    Case("c1x1_cin3_cout1", C, (1, 5, 7, 3), 1, in_zp=-128, out_zp=-128, act=A.RELU, seed=102),
    Case("c1x1_cin4_cout4", C, (1, 4, 4, 4), 4, in_zp=0, seed=103),
    Case("c1x1_cin17_cout5", C, (1, 5, 6, 17), 5, in_zp=127, seed=104),  # K % 16 = 1
    Case("c1x1_cin19_cout17", C, (1, 3, 5, 19), 17, in_zp=5, out_zp=-9, seed=105),  # K % 4 = 3
    Case("c1x1_cin32_cout8_pt", C, (1, 4, 3, 32), 8, per_channel=False, in_zp=-128, seed=106),  # K % 16 = 0
    Case("c1x1_cin48_cout16", C, (1, 3, 4, 48), 16, in_zp=-1, act=A.RELU6, seed=107),
    Case("c1x1_s2_cin5_cout3", C, (1, 7, 8, 5), 3, (1, 1), (2, 2), seed=108),
    Case("c3x3_same_cin3_cout5", C, (1, 8, 7, 3), 5, (3, 3), padding=SAME, in_zp=-128, act=A.RELU, seed=111),  # K=27
    Case("c3x3_valid_cin5_cout17", C, (1, 7, 6, 5), 17, (3, 3), in_zp=127, out_zp=20, seed=112),  # K=45
    Case("c3x3_same_s2_cin2_cout3", C, (1, 9, 8, 2), 3, (3, 3), (2, 2), padding=SAME, seed=113),  # K=18
    Case("c3x3_valid_s2_cin16_cout4", C, (1, 9, 9, 16), 4, (3, 3), (2, 2), in_zp=-128, seed=114),  # K=144
    Case("c3x3_same_s2_even_cin7", C, (1, 8, 8, 7), 6, (3, 3), (2, 2), padding=SAME, in_zp=127, seed=115),
    Case("c3x3_same_cin1_cout1", C, (1, 5, 5, 1), 1, (3, 3), padding=SAME, in_zp=-128, seed=116),  # K=9
    Case("c3x3_dil2_same_cin4", C, (1, 9, 8, 4), 5, (3, 3), dilation=(2, 2), padding=SAME, in_zp=-7, seed=117),
    Case("c3x3_dil2_s2_valid", C, (1, 11, 10, 3), 2, (3, 3), (2, 1), (2, 2), seed=118),
    Case("c5x5_same_cin1_cout8", C, (1, 10, 9, 1), 8, (5, 5), padding=SAME, in_zp=-128, seed=119),  # K=25
    Case("c10x4_s2_same_kws", C, (1, 25, 10, 1), 8, (10, 4), (2, 2), padding=SAME, act=A.RELU, seed=120),
    Case("c3x3_same_cin32_cout24", C, (1, 5, 5, 32), 24, (3, 3), padding=SAME, in_zp=-128, seed=121),  # K=288
    Case("c3x3_per_tensor", C, (1, 6, 6, 8), 5, (3, 3), padding=SAME, per_channel=False, in_zp=-50, seed=122),
    Case("c3x3_nobias", C, (1, 6, 5, 4), 3, (3, 3), padding=SAME, bias=False, in_zp=9, seed=123),
    Case("c2x2_batch2_s2", C, (2, 6, 7, 3), 4, (2, 2), (2, 2), padding=SAME, in_zp=100, seed=124),
    Case("c4x4_even_same_s3x2", C, (1, 7, 6, 3), 4, (4, 4), (3, 2), padding=SAME, in_zp=100, out_zp=127, seed=125),
]
CONV_FULL = [
    Case("c1x1_cin64_cout10", C, (1, 5, 5, 64), 10, in_zp=-128, seed=131),
    Case("c1x1_cin33_cout1", C, (1, 2, 9, 33), 1, in_zp=127, seed=132),
    Case("c1x1_cin15_cout31", C, (1, 3, 3, 15), 31, in_zp=0, act=A.RELU, seed=133),
    Case("c1x1_cin2_cout2_s2x3", C, (1, 7, 11, 2), 2, (1, 1), (2, 3), seed=134),
    Case("c3x3_same_cin64_cout16", C, (1, 4, 4, 64), 16, (3, 3), padding=SAME, in_zp=-128, seed=135),
    Case("c3x3_same_cin17_cout3", C, (1, 6, 6, 17), 3, (3, 3), padding=SAME, in_zp=127, seed=136),  # K=153
    Case("c3x1_valid_cin6", C, (1, 8, 5, 6), 7, (3, 1), in_zp=-60, seed=137),  # K=18
    Case("c1x3_same_s1x2", C, (1, 5, 9, 5), 5, (1, 3), (1, 2), padding=SAME, seed=138),
    Case("c7x7_s2_same_rgb", C, (1, 16, 16, 3), 8, (7, 7), (2, 2), padding=SAME, in_zp=-128, seed=139),  # K=147
    Case("c3x3_dil3_same_cin1", C, (1, 10, 10, 1), 3, (3, 3), dilation=(3, 3), padding=SAME, seed=140),
    Case("c_kernel_eq_input", C, (1, 4, 5, 6), 3, (4, 5), in_zp=-100, seed=141),
    Case("c3x3_relu_n1_1", C, (1, 6, 6, 5), 5, (3, 3), padding=SAME, act=A.RELU_N1_TO_1, seed=142),
]

# -- depthwise ---------------------------------------------------------------------------------------------------
DW = [
    Case("d3x3_s1_same_c1", D, (1, 7, 6, 1), 1, (3, 3), padding=SAME, in_zp=-128, seed=201),
    Case("d3x3_s1_same_c3", D, (1, 8, 8, 3), 3, (3, 3), padding=SAME, in_zp=-128, out_zp=-128, act=A.RELU, seed=202),
    Case("d3x3_s2_same_c5", D, (1, 9, 8, 5), 5, (3, 3), (2, 2), padding=SAME, in_zp=127, seed=203),
    Case("d3x3_s1_valid_c17", D, (1, 6, 7, 17), 17, (3, 3), in_zp=127, out_zp=3, seed=204),
    Case("d3x3_s2_valid_c16", D, (1, 9, 9, 16), 16, (3, 3), (2, 2), in_zp=0, seed=205),
    Case("d3x3_s2_same_c8_even", D, (1, 8, 10, 8), 8, (3, 3), (2, 2), padding=SAME, in_zp=-1, seed=206),
    Case("d3x3_mult2_c3", D, (1, 6, 6, 3), 6, (3, 3), padding=SAME, in_zp=25, seed=207),
    Case("d3x3_mult2_s2_c8", D, (1, 9, 7, 8), 16, (3, 3), (2, 2), padding=SAME, in_zp=-128, seed=208),
    Case("d5x5_same_c8", D, (1, 8, 8, 8), 8, (5, 5), padding=SAME, in_zp=-128, act=A.RELU6, seed=209),
    Case("d5x5_s2_valid_c17", D, (1, 11, 11, 17), 17, (5, 5), (2, 2), in_zp=60, seed=210),
    Case("d3x3_same_c32", D, (1, 5, 6, 32), 32, (3, 3), padding=SAME, in_zp=-128, act=A.RELU, seed=211),
    Case("d3x3_same_c40", D, (1, 5, 5, 40), 40, (3, 3), padding=SAME, in_zp=-128, seed=212),
    Case("d3x3_dil2_same_c5", D, (1, 9, 9, 5), 5, (3, 3), dilation=(2, 2), padding=SAME, seed=213),
    Case("d3x3_per_tensor", D, (1, 7, 7, 4), 4, (3, 3), padding=SAME, per_channel=False, out_zp=-90, seed=214),
    Case("d3x3_nobias_s2", D, (1, 6, 7, 3), 3, (3, 3), (2, 2), padding=SAME, bias=False, seed=215),
    Case("d3x3_batch2", D, (2, 5, 5, 6), 6, (3, 3), padding=SAME, in_zp=-20, seed=216),
]
DW_FULL = [
    Case("d3x3_same_c64", D, (1, 6, 6, 64), 64, (3, 3), padding=SAME, in_zp=-128, seed=221),
    Case("d3x3_s2_same_c33", D, (1, 7, 7, 33), 33, (3, 3), (2, 2), padding=SAME, in_zp=127, seed=222),
    Case("d3x3_mult3_c5", D, (1, 6, 5, 5), 15, (3, 3), padding=SAME, in_zp=4, seed=223),
    Case("d3x3_mult4_c1", D, (1, 6, 6, 1), 4, (3, 3), (2, 2), padding=SAME, in_zp=-128, seed=224),
    Case("d5x5_same_c3_s2", D, (1, 10, 9, 3), 3, (5, 5), (2, 2), padding=SAME, in_zp=-128, seed=225),
    Case("d2x3_valid_s1x2", D, (1, 8, 7, 6), 6, (2, 3), (1, 2), act=A.RELU6, in_zp=127, seed=226),
    Case("d7x7_same_c16", D, (1, 8, 8, 16), 16, (7, 7), padding=SAME, in_zp=-128, seed=227),
    Case("d3x3_dil2_mult2_valid", D, (1, 10, 9, 4), 8, (3, 3), dilation=(2, 2), in_zp=-7, seed=228),
    Case("d3x3_valid_exact_c15", D, (1, 3, 3, 15), 15, (3, 3), in_zp=-128, seed=229),
]

# -- fully connected ---------------------------------------------------------------------------------------------
FC = [
    Case("fc_1_to_1", F, (1, 1), 1, in_zp=-128, seed=301),
    Case("fc_3_to_5_pt", F, (1, 3), 5, per_channel=False, in_zp=127, seed=302),
    Case("fc_5_to_3", F, (1, 5), 3, seed=303),
    Case("fc_17_to_7_pt", F, (1, 17), 7, per_channel=False, in_zp=-128, out_zp=12, seed=304),  # K % 16 = 1
    Case("fc_19_to_4_pt_wzp", F, (1, 19), 4, per_channel=False, w_zp=-9, in_zp=5, act=A.RELU, seed=305),  # K % 4 = 3
    Case("fc_33_to_17", F, (2, 33), 17, act=A.RELU6, in_zp=127, out_zp=-128, seed=306),
    Case("fc_64_to_10_pt", F, (1, 64), 10, per_channel=False, in_zp=-1, seed=307),
    Case("fc_100_to_6", F, (3, 100), 6, in_zp=-128, seed=308),
    Case("fc_640_to_16_pt", F, (1, 640), 16, per_channel=False, in_zp=-128, seed=309),  # the ad01 shape
    Case("fc_48_to_9_nobias", F, (1, 48), 9, bias=False, in_zp=30, seed=310),
    Case("fc_rank4_flatten_pt", F, (1, 2, 3, 8), 6, per_channel=False, in_zp=30, seed=311),
    Case("fc_3d_keep_pt", F, (1, 5, 12), 4, per_channel=False, keep_num_dims=True, in_zp=-20, seed=312),
]
FC_FULL = [
    Case("fc_2_to_31", F, (1, 2), 31, in_zp=-128, seed=321),
    Case("fc_15_to_16_pt", F, (4, 15), 16, per_channel=False, in_zp=127, seed=322),
    Case("fc_128_to_128_pt", F, (1, 128), 128, per_channel=False, in_zp=-128, seed=323),
    Case("fc_250_to_3", F, (1, 250), 3, in_zp=17, seed=324),
    Case("fc_31_to_1_pt_wzp", F, (2, 31), 1, per_channel=False, w_zp=100, in_zp=-3, seed=325),
    Case("fc_3d_keep_pc", F, (1, 5, 12), 4, keep_num_dims=True, in_zp=-20, seed=326),
]

# -- elementwise -------------------------------------------------------------------------------------------------
ADD, SUB, MUL = ir.OpKind.ADD, ir.OpKind.SUB, ir.OpKind.MUL
ELEMENTWISE = {
    "add_same_105": binary(ADD, (1, 5, 7, 3), (1, 5, 7, 3), (0.02, -128), (0.5, 127), (0.3, 0)),
    "add_same_256_relu": binary(ADD, (1, 4, 4, 16), (1, 4, 4, 16), (0.08, -3), (0.11, 7), (0.15, -12), A.RELU),
    "add_same_17": binary(ADD, (17,), (17,), (0.9, -128), (0.1, 0), (0.01, 127), A.RELU),
    "add_same_1": binary(ADD, (1,), (1,), (0.05, 3), (0.07, -4), (0.1, 0)),
    "add_channel_bcast": binary(ADD, (1, 4, 6, 3), (3,), (0.05, 10), (0.01, -40), (0.06, 5), A.RELU6),
    "add_scalar": binary(ADD, (1, 6, 6, 2), (1,), (0.03, -128), (0.07, 127), (0.05, -128), A.RELU),
    "add_both_bcast": binary(ADD, (2, 1, 5, 1), (1, 3, 1, 4), (0.1, 0), (0.1, 0), (0.2, 0)),
    "add_x_plus_x": square(ADD, (3, 11), (0.07, 9), (0.13, -30)),
    "sub_same_105": binary(SUB, (1, 5, 7, 3), (1, 5, 7, 3), (0.02, -128), (0.5, 127), (0.3, 0)),
    "sub_same_33_relu": binary(SUB, (3, 11), (3, 11), (0.08, -3), (0.11, 7), (0.15, -12), A.RELU),
    "sub_bcast_first": binary(SUB, (1,), (1, 6, 6, 2), (0.03, -128), (0.07, 127), (0.05, -128), A.RELU),
    "sub_channel_bcast": binary(SUB, (1, 4, 6, 3), (3,), (0.05, 10), (0.01, -40), (0.06, 5), A.RELU6),
    "mul_same_120": binary(MUL, (1, 6, 5, 4), (1, 6, 5, 4), (0.05, -3), (0.04, 9), (0.02, 1)),
    "mul_same_17_extreme": binary(MUL, (17,), (17,), (0.02, 127), (0.02, -128), (0.001, 127), A.RELU_N1_TO_1),
    "mul_channel_bcast": binary(MUL, (1, 4, 4, 5), (5,), (0.1, -128), (0.003, -128), (0.05, -128), A.RELU),
    "mul_both_bcast": binary(MUL, (3, 1, 4), (1, 5, 1), (0.2, 127), (0.3, -1), (0.7, 0), A.RELU6),
    "mul_x_squared": square(MUL, (4, 6), (0.05, -20), (0.3, -128)),
}
ELEMENTWISE_FULL = {
    "add_same_1024": binary(ADD, (1, 8, 8, 16), (1, 8, 8, 16), (0.04, -20), (0.06, 3), (0.09, 1)),
    "add_const_operand": binary(ADD, (1, 3, 3, 8), (1, 1, 1, 8), (0.04, -7), (0.02, 33), (0.05, -1), const2=5),
    "add_rank5_bcast": binary(ADD, (2, 1, 2, 1, 3), (1, 2, 1, 2, 1), (0.1, 3), (0.05, -2), (0.1, 1)),
    "add_tiny_vs_huge": binary(ADD, (2, 3, 4), (2, 3, 4), (1e-4, 20), (2.0, -20), (2.1, 0)),
    "sub_same_1024": binary(SUB, (1, 8, 8, 16), (1, 8, 8, 16), (0.04, -20), (0.06, 3), (0.09, 1)),
    "sub_x_minus_x": square(SUB, (3, 11), (0.07, 9), (0.13, -30)),
    "mul_same_1024": binary(MUL, (1, 8, 8, 16), (1, 8, 8, 16), (0.04, -20), (0.06, 3), (0.0009, 1)),
    "mul_scalar": binary(MUL, (1,), (1, 3, 3, 3), (0.01, 0), (0.02, 50), (0.0003, 10)),
    "mul_above_one": binary(MUL, (2, 7), (2, 7), (0.5, 0), (0.25, 4), (0.01, -2)),
    "quantize_down": unary(ir.OpKind.QUANTIZE, (1, 4, 4, 3), (0.05, -3), (0.2, 10)),
    "relu_rescale": unary(ir.OpKind.RELU, (2, 3, 7), (0.08, 30), (0.03, -128)),
}

# -- pooling -----------------------------------------------------------------------------------------------------
AVG, MAX = ir.OpKind.AVG_POOL2D, ir.OpKind.MAX_POOL2D
POOL = [
    PoolCase("avg_2x2_s2_valid_c3", AVG, (1, 8, 8, 3), (2, 2), (2, 2), VALID, seed=401),
    PoolCase("avg_3x3_s2_same_c5", AVG, (2, 9, 7, 5), (3, 3), (2, 2), SAME, zp=-128, seed=402),
    PoolCase("avg_global_kws_c16", AVG, (1, 25, 5, 16), (25, 5), (25, 5), VALID, zp=-7, scale=0.05, seed=403),
    PoolCase("avg_3x3_s1_same_c17", AVG, (1, 6, 6, 17), (3, 3), (1, 1), SAME, A.RELU, zp=127, seed=404),
    PoolCase("avg_global_c32", AVG, (1, 4, 4, 32), (4, 4), (4, 4), VALID, zp=-128, seed=405),
    PoolCase("avg_5x5_s3_same_c2", AVG, (1, 11, 13, 2), (5, 5), (3, 3), SAME, A.RELU6, zp=127, scale=0.03, seed=406),
    PoolCase("max_2x2_s2_valid_c3", MAX, (1, 8, 8, 3), (2, 2), (2, 2), VALID, seed=411),
    PoolCase("max_3x3_s2_same_c5", MAX, (2, 9, 7, 5), (3, 3), (2, 2), SAME, zp=127, seed=412),
    PoolCase("max_3x3_s1_same_c17", MAX, (1, 6, 6, 17), (3, 3), (1, 1), SAME, A.RELU, zp=-30, seed=413),
    PoolCase("max_2x2_s2_same_c32", MAX, (1, 7, 7, 32), (2, 2), (2, 2), SAME, zp=-128, seed=414),
    PoolCase("max_1x1_s2x3_c3", MAX, (1, 9, 10, 3), (1, 1), (2, 3), VALID, A.RELU6, zp=-128, seed=415),
]
POOL_FULL = [
    PoolCase("avg_filter_gt_input", AVG, (1, 3, 4, 6), (5, 6), (1, 1), SAME, A.RELU_N1_TO_1, scale=0.01, seed=421),
    PoolCase("avg_4x3_s1x2_same_c4", AVG, (1, 10, 11, 4), (4, 3), (1, 2), SAME, A.RELU, zp=37, seed=422),
    PoolCase("avg_2x2_s2_c64", AVG, (1, 6, 6, 64), (2, 2), (2, 2), VALID, zp=-128, seed=423),
    PoolCase("max_even_kernel_same", MAX, (1, 6, 5, 7), (4, 2), (3, 2), SAME, A.RELU_N1_TO_1, scale=0.01, seed=424),
    PoolCase("max_3x3_s2_valid_c64", MAX, (1, 9, 9, 64), (3, 3), (2, 2), VALID, zp=127, seed=425),
    PoolCase("max_global_c1", MAX, (1, 5, 7, 1), (5, 7), (5, 7), VALID, zp=0, seed=426),
]


def random_window_cases(kind: ir.OpKind, n: int, seed: int) -> list[Case]:
    """A seeded sweep of conv or depthwise shapes: kernel 1-5, stride 1-2, dilation 1-2, SAME or VALID, odd and
    even channel counts, zero points at the extremes or random."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        kh, kw = (int(k) for k in rng.choice([1, 2, 3, 3, 5], size=2))
        sh, sw = (int(s) for s in rng.integers(1, 3, size=2))
        dh, dw = (int(d) for d in rng.choice([1, 1, 1, 2], size=2))
        pad = SAME if rng.random() < 0.5 else VALID
        h = int(rng.integers((kh - 1) * dh + 1, 13))
        w = int(rng.integers((kw - 1) * dw + 1, 13))
        cin = int(rng.choice([1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33]))
        cout = int(rng.choice([1, 2, 3, 4, 5, 8, 9, 16, 17])) if kind == C else cin * int(rng.choice([1, 1, 2]))
        zp = int(rng.choice([-128, 127, 0, int(rng.integers(-128, 128))]))
        act = [A.NONE, A.RELU, A.RELU6][int(rng.integers(0, 3))]
        tag = "c" if kind == C else "d"
        out.append(
            Case(f"r{tag}{i}", kind, (1, h, w, cin), cout, (kh, kw), (sh, sw), (dh, dw), pad, act, zp,
                 int(rng.integers(-20, 21)), per_channel=bool(rng.random() < 0.8), seed=5000 + seed + i)
        )  # fmt: skip
    return out


def random_fc_cases(n: int, seed: int) -> list[Case]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        per_channel = bool(rng.random() < 0.5)
        out.append(
            Case(f"rfc{i}", F, (int(rng.integers(1, 4)), int(rng.integers(1, 80))), int(rng.integers(1, 40)),
                 in_zp=int(rng.choice([-128, 127, int(rng.integers(-128, 128))])), per_channel=per_channel,
                 w_zp=0 if per_channel else int(rng.integers(-20, 21)), seed=6000 + seed + i)
        )  # fmt: skip
    return out


def _cases_graph(name: str, cases: list[Case]) -> ir.Graph:
    return merge({c.id: build_graph(c) for c in cases}, name)


def _pool_graph(name: str, cases: list[PoolCase]) -> ir.Graph:
    return merge({c.id: pool_graph(c) for c in cases}, name)


def _conv16_graph(full: bool) -> ir.Graph:
    """16x8 CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED (tests/kernels/test_conv16_fast.py's tables): the dsp
    variants' asm on the M4."""
    from tests.kernels.test_conv16 import build_graph as build16
    from tests.kernels.test_conv16_fast import CONV as CONV16
    from tests.kernels.test_conv16_fast import DW as DW16
    from tests.kernels.test_conv16_fast import FC as FC16

    every = CONV16 + FC16 + DW16
    cases = every if full else [c for c in every if c.id in CONV16_DEFAULT]
    return merge({c.id: build16(c) for c in cases}, "conv16")


CONV16_DEFAULT = {
    "f_c1x1_cin3_cout4", "f_c1x1_direct_odd_pixels", "f_c3x3_same_s2_odd", "f_c_dilated_same", "f_c_int32_bias",
    "f_c3x3_cin64_k576", "f_c_int4", "f_fc_37_to_11_pt", "f_fc_40_to_6_int32", "f_fc_1030_to_9", "f_fc_wzp",
    "f_dw3x3_same_c8_relu", "f_dw3x3_same_s2_c12", "f_dw5x5_same_c7", "f_dw_dilated_same_c8", "f_dw23x23_c4",
    "f_dw_mult2",
}  # fmt: skip


def _lowbit_s4_graph() -> ir.Graph:
    """int4 CONV_2D / FULLY_CONNECTED (tests/kernels/test_lowbit_fast.py's table): the s4 dsp and mve variants."""
    from tests.kernels.test_lowbit_fast import CASES as S4_CASES
    from tests.kernels.test_lowbit_fast import s4_graph

    return merge({c.id: s4_graph(c) for c in S4_CASES}, "lowbit_s4")


# group -> (default table, full-table additions); each builds one graph of independent branches
GROUPS = {
    "conv": lambda full: _cases_graph("conv", CONV + (CONV_FULL if full else [])),
    "depthwise": lambda full: _cases_graph("depthwise", DW + (DW_FULL if full else [])),
    "fc": lambda full: _cases_graph("fc", FC + (FC_FULL if full else [])),
    "elementwise": lambda full: merge({**ELEMENTWISE, **(ELEMENTWISE_FULL if full else {})}, "elementwise"),
    "pool": lambda full: _pool_graph("pool", POOL + (POOL_FULL if full else [])),
    "conv16": lambda full: _conv16_graph(full),
    "lowbit_s4": lambda full: _lowbit_s4_graph(),
}
SWEEPS = {
    "conv_sweep": lambda: _cases_graph("conv_sweep", random_window_cases(C, 32, 1)),
    "depthwise_sweep": lambda: _cases_graph("depthwise_sweep", random_window_cases(D, 32, 2)),
    "fc_sweep": lambda: _cases_graph("fc_sweep", random_fc_cases(32, 3)),
}


def test_tables_are_well_formed() -> None:
    """Unique ids; conv outputs are non-empty; the tables hold what the issue asks for."""
    for cases in (CONV + CONV_FULL, DW + DW_FULL, FC + FC_FULL, POOL + POOL_FULL):
        ids = [c.id for c in cases]
        assert len(ids) == len(set(ids))
    for c in CONV + CONV_FULL + DW + DW_FULL:
        for i in range(2):
            assert out_size(c.padding, c.in_shape[1 + i], c.kernel[i], c.stride[i], c.dilation[i]) > 0, c.id
    convs = [c for c in CONV if c.kind == C]
    assert {1, 3, 5, 17} <= {c.in_shape[-1] for c in convs} and {1, 3, 5, 17} <= {c.out_c for c in convs}
    ks = {c.kernel[0] * c.kernel[1] * c.in_shape[-1] for c in convs}
    assert {k % 4 for k in ks} == {0, 1, 2, 3} and len({k % 16 for k in ks}) >= 6
    assert {-128, 0, 127} <= {c.in_zp for c in convs} and {SAME, VALID} == {c.padding for c in convs}
    assert {1, 2} <= {c.stride[0] for c in convs} and any(c.dilation != (1, 1) for c in convs)
    assert {1, 2} <= {c.out_c // c.in_shape[-1] for c in DW} and any(c.kernel == (5, 5) for c in DW)
    assert {True, False} == {c.per_channel for c in FC}


@functools.cache
def _group(name: str) -> tuple[ir.Graph, list[np.ndarray], dict[str, np.ndarray]]:
    """The group's graph, inputs and numpy reference outputs, shared by the dsp and mve tests."""
    g = GROUPS[name](FULL) if name in GROUPS else SWEEPS[name]()
    xs = inputs_for(g, N_RANDOM, seed=len(name))
    return g, xs, reference_outputs(g, xs)


@pytest.mark.parametrize("path", ["dsp", "mve"])
@pytest.mark.parametrize("group", list(GROUPS))
def test_op_table_bit_exact(group: str, path: str) -> None:
    g, xs, ref = _group(group)
    check_paths(g, xs, group=group, todo=builds([path], extra=True), fallbacks=FALLBACKS, reference=ref)


@full_only
@pytest.mark.parametrize("path", ["dsp", "mve"])
@pytest.mark.parametrize("group", list(SWEEPS))
def test_random_sweep_bit_exact(group: str, path: str) -> None:
    g, xs, ref = _group(group)
    check_paths(g, xs, group=group, todo=builds([path], extra=True), fallbacks=FALLBACKS, reference=ref)


MODELS = {
    "kws": "mlperf_tiny/kws_ref_model.tflite",
    "ad": "mlperf_tiny/ad01_int8.tflite",
    "vww": "mlperf_tiny/vww_96_int8.tflite",
    "ic": "mlperf_tiny/pretrainedResnet_quant.tflite",
    "hello_world": "tflm/hello_world_int8.tflite",
}
DEFAULT_MODELS = ("kws", "ad")


@pytest.mark.models
@pytest.mark.parametrize("path", ["dsp", "mve"])
@pytest.mark.parametrize(
    "model", [m if m in DEFAULT_MODELS else pytest.param(m, marks=full_only) for m in MODELS]
)  # fmt: skip
def test_model_bit_exact(shared_models, model: str, path: str) -> None:
    src = shared_models / MODELS[model]
    g, xs, ref = _model(src, 1 if model in ("vww", "ic") else N_RANDOM)
    check_paths(src, xs, group=model, todo=builds([path], extra=FULL), fallbacks=FALLBACKS, reference=ref)


@functools.cache
def _model(src, n_random: int) -> tuple[ir.Graph, list[np.ndarray], dict[str, np.ndarray]]:
    g = load_graph(src)
    xs = inputs_for(g, n_random, seed=7)
    return g, xs, reference_outputs(g, xs)


def test_merge_keeps_branches_apart() -> None:
    g = merge({"a": build_graph(FC[2]), "b": build_graph(FC[1])}, "two")
    assert g.inputs == ("a_x", "b_x") and g.outputs == ("a_y", "b_y")
    assert [op.name for op in g.ops] == ["a", "b"] and [op.index for op in g.ops] == [0, 1]
    assert g.ops[1].inputs == ("b_x", "b_w", "b_b") and g.tensors["a_w"].data is not None


@pytest.mark.parametrize("accepts", [True, False])
def test_kernel_choice_check_catches_a_fallback(accepts: bool) -> None:
    """A registered variant whose predicate rejects a layer is reported, unless the fallbacks allow it; one that
    accepts it must be the kernel the layer runs. (A stand-in variant: compile only, nothing is built.)"""
    fc = KERNELS["mcuq_fully_connected_s8"]
    fake = Variant(fc.name, "dsp", dataclasses.replace(fc, name="mcuq_fully_connected_s8_fake"), lambda p: accepts)
    g = merge({"a": build_graph(FC[2]), "b": build_graph(FC[1])}, "two")
    saved = VARIANTS[:]
    VARIANTS[:] = [fake]  # the table holds only the stand-in (mcuq.lower.specialize reads the same list)
    try:
        cm = mcuq.compile_model(g, board="host", kernels="dsp", prefix="two")
        assert [layer.kernel_name == fake.kernel.name for layer in cm.layers] == [accepts, accepts]
        problems = kernel_problems(cm, "two")
        assert len(problems) == (0 if accepts else 2) and all("falls back" in p for p in problems)
        rule = Fallback(fc.name, "dsp", lambda p: True, "a reason")
        assert kernel_problems(cm, "two", [rule]) == []
        # no mve variant registered: the mve path takes the dsp one where it applies, and that is no fallback
        assert kernel_problems(mcuq.compile_model(g, board="host", kernels="mve", prefix="two"), "two") == []
        # a build that ignores the table: runs the portable kernel where the table gives the variant
        portable = mcuq.compile_model(g, board="host", kernels="portable", prefix="two")
        problems = kernel_problems(dataclasses.replace(portable, kernels="dsp"), "two")
        assert sum("the variant table gives" in p for p in problems) == (2 if accepts else 0)
    finally:
        VARIANTS[:] = saved
