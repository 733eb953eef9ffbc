"""AVERAGE_POOL_2D, MAX_POOL_2D and MEAN: lowering, numpy reference and C, bit-exact with the oracle.

Each case builds a one-op int8 graph and runs the three-way check of tests/util/harness.py (oracle, numpy
reference, generated C) on a batch of inputs: random, plus constant extremes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from mcuq import ir
from mcuq.errors import ModelError
from mcuq.kernels.pool import MEAN_MAX_DIMS
from mcuq.lower import lower
from mcuq.lower.pool import mean_multiplier, reduction_dims
from mcuq.lower.window import out_size
from tests.util import oracle
from tests.util.harness import random_int8, three_way

N_RANDOM = 8  # random inputs per case, all in one oracle call and one C run

A = ir.Activation
AVG, MAX, MEAN = ir.OpKind.AVG_POOL2D, ir.OpKind.MAX_POOL2D, ir.OpKind.MEAN
SAME, VALID = ir.Padding.SAME, ir.Padding.VALID


@dataclass(frozen=True)
class PoolCase:
    id: str
    kind: ir.OpKind
    in_shape: tuple[int, int, int, int]
    filter: tuple[int, int]
    stride: tuple[int, int]
    padding: ir.Padding
    act: ir.Activation = A.NONE
    zp: int = 0
    scale: float = 0.02
    out_q: tuple[float, int] | None = None  # output (scale, zp) when it differs from the input's
    seed: int = 0


POOL_CASES = [
    PoolCase("avg_2x2_s2_valid", AVG, (1, 8, 8, 3), (2, 2), (2, 2), VALID, seed=1),
    PoolCase("avg_3x3_s2_same_odd", AVG, (2, 9, 7, 5), (3, 3), (2, 2), SAME, zp=-128, seed=2),
    PoolCase("avg_global_kws", AVG, (1, 25, 5, 16), (25, 5), (25, 5), VALID, zp=-7, scale=0.05, seed=3),
    PoolCase("avg_4x3_s1x2_same_relu", AVG, (1, 10, 11, 4), (4, 3), (1, 2), SAME, A.RELU, zp=37, seed=4),
    PoolCase("avg_5x5_s3_same_relu6", AVG, (1, 11, 13, 2), (5, 5), (3, 3), SAME, A.RELU6, zp=127, scale=0.03, seed=5),
    PoolCase("avg_filter_gt_input_same", AVG, (1, 3, 4, 6), (5, 6), (1, 1), SAME, A.RELU_N1_TO_1, scale=0.01, seed=6),
    PoolCase("avg_requant_ignored", AVG, (1, 6, 6, 3), (3, 3), (1, 1), SAME, zp=10, out_q=(0.05, -20), seed=7),
    PoolCase("max_2x2_s2_valid", MAX, (1, 8, 8, 3), (2, 2), (2, 2), VALID, seed=11),
    PoolCase("max_3x3_s2_same_odd", MAX, (2, 9, 7, 5), (3, 3), (2, 2), SAME, zp=127, seed=12),
    PoolCase("max_3x2_s1_same_relu", MAX, (1, 7, 10, 4), (3, 2), (1, 1), SAME, A.RELU, zp=-30, seed=13),
    PoolCase("max_1x1_s2x3_valid_relu6", MAX, (1, 9, 10, 3), (1, 1), (2, 3), VALID, A.RELU6, zp=-128, seed=14),
    PoolCase("max_even_kernel_same", MAX, (1, 6, 5, 7), (4, 2), (3, 2), SAME, A.RELU_N1_TO_1, scale=0.01, seed=15),
    # the dsp average pool: four channels per word, a channel remainder, and a window over 255 taps (portable loop)
    PoolCase("avg_global_8ch_all_min", AVG, (1, 15, 17, 8), (15, 17), (15, 17), VALID, zp=-128, seed=8),
    PoolCase("avg_global_272_taps_7ch", AVG, (1, 16, 17, 7), (16, 17), (16, 17), VALID, zp=5, seed=9),
]


@dataclass(frozen=True)
class MeanCase:
    id: str
    in_shape: tuple[int, ...]
    axes: tuple[int, ...]
    keep_dims: bool
    in_q: tuple[float, int]
    out_q: tuple[float, int]
    seed: int = 0


MEAN_CASES = [
    MeanCase("gap_4x4x64_keep", (1, 4, 4, 64), (1, 2), True, (0.05, -3), (0.03, 7), seed=21),
    MeanCase("gap_4x4x64_flat", (1, 4, 4, 64), (1, 2), False, (0.05, -3), (0.03, 7), seed=22),
    MeanCase("gap_same_q_keep", (1, 4, 4, 64), (1, 2), True, (0.0217, 11), (0.0217, 11), seed=23),
    MeanCase("gap_same_q_flat", (1, 4, 4, 64), (1, 2), False, (0.0217, 11), (0.0217, 11), seed=24),
    MeanCase("gap_7x7_zp_min", (2, 7, 7, 9), (1, 2), False, (0.1, -128), (0.011, -128), seed=25),
    MeanCase("gap_3x5_zp_max", (1, 3, 5, 10), (1, 2), True, (0.02, 127), (0.04, 127), seed=26),
    MeanCase("gap_32x32_big_n", (1, 32, 32, 3), (1, 2), False, (0.04, 0), (0.0013, -5), seed=27),
    MeanCase("gap_out_coarser", (1, 6, 6, 8), (1, 2), True, (0.01, 20), (0.37, -100), seed=28),
    MeanCase("last_axis_keep", (1, 3, 5, 8), (3,), True, (0.02, 5), (0.015, -9), seed=29),
    MeanCase("axes_0_2", (2, 3, 4, 5), (0, 2), False, (0.03, -60), (0.02, 3), seed=30),
    MeanCase("rank2_axis1", (3, 10), (1,), False, (0.08, 1), (0.05, -1), seed=31),
    MeanCase("all_axes", (2, 3, 4), (0, 1, 2), True, (0.05, 0), (0.004, 2), seed=32),
    MeanCase("axis1_rank4", (6, 5, 4, 3), (1,), True, (0.0123, -17), (0.0031, 40), seed=33),
    MeanCase("axes_2_3", (2, 5, 3, 4), (2, 3), False, (0.06, 90), (0.02, -90), seed=34),
    MeanCase("one_element", (1, 1, 1, 10), (1, 2), False, (0.05, 4), (0.1, -4), seed=35),
]


def _f32(x: float) -> float:
    return float(np.float32(x))


def _q(scale: float, zp: int) -> ir.QParams:
    return ir.QParams((_f32(scale),), (zp,))


def pool_graph(case: PoolCase) -> ir.Graph:
    n, h, w, c = case.in_shape
    oh = out_size(case.padding, h, case.filter[0], case.stride[0], 1)
    ow = out_size(case.padding, w, case.filter[1], case.stride[1], 1)
    out_q = case.out_q or (case.scale, case.zp)
    tensors = {
        "x": ir.Tensor("x", case.in_shape, ir.DType.INT8, _q(case.scale, case.zp)),
        "y": ir.Tensor("y", (n, oh, ow, c), ir.DType.INT8, _q(*out_q)),
    }
    attrs = ir.Pool2DAttrs(case.padding, case.stride[0], case.stride[1], case.filter[0], case.filter[1], case.act)
    op = ir.Op(case.kind, case.id, ("x",), ("y",), attrs)
    return ir.Graph(case.id, tensors, (op,), ("x",), ("y",))


def mean_graph(case: MeanCase) -> ir.Graph:
    shape = case.in_shape
    if case.keep_dims:
        y_shape = tuple(1 if i in case.axes else d for i, d in enumerate(shape))
    else:
        y_shape = tuple(d for i, d in enumerate(shape) if i not in case.axes)
    tensors = {
        "x": ir.Tensor("x", shape, ir.DType.INT8, _q(*case.in_q)),
        "y": ir.Tensor("y", y_shape, ir.DType.INT8, _q(*case.out_q)),
    }
    op = ir.Op(MEAN, case.id, ("x",), ("y",), ir.MeanAttrs(case.axes, case.keep_dims))
    return ir.Graph(case.id, tensors, (op,), ("x",), ("y",))


def inputs_for(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Random int8 inputs plus the all -128 and all 127 tensors and one with a narrow random spread."""
    rng = np.random.default_rng(1000 + seed)
    xs = [random_int8(shape, N_RANDOM, rng), np.full((1, *shape), -128), np.full((1, *shape), 127)]
    xs.append(rng.integers(-3, 4, size=(1, *shape), dtype=np.int64))
    return np.concatenate(xs).astype(np.int8)


@pytest.mark.oracle
@pytest.mark.parametrize("case", POOL_CASES, ids=lambda c: c.id)
def test_pool_bit_exact(case: PoolCase) -> None:
    three_way(pool_graph(case), [inputs_for(case.in_shape, case.seed)], name=case.id)


@pytest.mark.oracle
@pytest.mark.parametrize("case", MEAN_CASES, ids=lambda c: c.id)
def test_mean_bit_exact(case: MeanCase) -> None:
    three_way(mean_graph(case), [inputs_for(case.in_shape, case.seed)], name=case.id)


@pytest.mark.oracle
def test_mean_global_average_fuzz() -> None:
    """Many scale ratios and zero points on the MLPerf-style global average, numpy reference against the oracle
    (one oracle process per model, no C build: the C is covered above with the same parameters' code path)."""
    oracle.require()
    rng = np.random.default_rng(77)
    for i in range(12):
        h, w = (4, 4) if i % 3 else (int(rng.integers(1, 9)), int(rng.integers(1, 9)))
        s_in = _f32(rng.uniform(0.002, 0.2))
        s_out = _f32(s_in * float(np.exp(rng.uniform(-2.5, 2.5))))
        zi, zo = (int(v) for v in rng.integers(-128, 128, size=2))
        case = MeanCase(f"fuzz{i}", (1, h, w, 64), (1, 2), bool(i % 2), (s_in, zi), (s_out, zo))
        three_way(mean_graph(case), [inputs_for(case.in_shape, 500 + i)], name=f"{case}", compile_c=False)


# -- compile-time parameters ------------------------------------------------------------------------------------


def test_pool_params() -> None:
    g = pool_graph(POOL_CASES[1])  # 9x7, 3x3, stride 2, SAME -> 5x4, total padding 2 / 2 -> 1 / 1 before
    (layer,) = lower(g)
    assert layer.kernel.name == "mcuq_average_pool2d_s8"
    assert (layer.p("output.h"), layer.p("output.w"), layer.p("window.pad.h"), layer.p("window.pad.w")) == (5, 4, 1, 1)
    assert (layer.p("activation.min"), layer.p("activation.max")) == (-128, 127)
    assert (layer.p("window.dilation.h"), layer.p("window.dilation.w"), layer.scratch_bytes) == (1, 1, 0)
    g = pool_graph(POOL_CASES[9])  # max, RELU, zp -30: lower bound is the zero point
    (layer,) = lower(g)
    assert layer.kernel.name == "mcuq_max_pool2d_s8"
    assert (layer.p("activation.min"), layer.p("activation.max")) == (-30, 127)


def test_pool_output_shape_mismatch_is_an_error() -> None:
    g = pool_graph(POOL_CASES[0])
    y = g.tensors["y"]
    g.tensors["y"] = ir.Tensor("y", (1, 3, 4, 3), y.dtype, y.qparams)
    with pytest.raises(ModelError, match="output shape"):
        lower(g)


def test_reduction_dims() -> None:
    assert reduction_dims((1, 4, 4, 64), (1, 2)) == ([(64, 1)], [(16, 64)])
    assert reduction_dims((2, 3, 4, 5), (0, 2)) == ([(3, 20), (5, 1)], [(2, 60), (4, 5)])
    assert reduction_dims((2, 3, 4), (0, 1, 2)) == ([(1, 0)], [(24, 1)])
    assert reduction_dims((1, 1, 1, 10), (1, 2)) == ([(10, 1)], [(1, 0)])


def test_mean_multiplier_folds_the_count() -> None:
    # s_in / s_out = 1: QuantizeMultiplier gives (2^30, 1); n = 16 -> shift by 4, multiplier unchanged.
    assert mean_multiplier(0.5, 0.5, 16) == (1 << 30, 1, 1 << 30, -3)
    # n = 49: s = 5, multiplier' = floor(2^35 / 49)
    mult, shift, m2, s2 = mean_multiplier(0.5, 0.5, 49)
    assert (m2, s2) == ((1 << 35) // 49, 1 - 5)
    # a tiny ratio caps s at 31 + shift
    mult, shift, m2, s2 = mean_multiplier(1e-9, 1.0, 1 << 20)
    assert s2 == -31 and m2 == (mult << (31 + shift)) >> 20


def test_mean_too_many_axis_groups_is_an_error() -> None:
    # rank 17, every other axis reduced: 9 kept groups > MCUQ_MEAN_MAX_DIMS
    g = mean_graph(MeanCase("groups", (2,) * 17, tuple(range(1, 17, 2)), True, (0.05, 0), (0.05, 0)))
    with pytest.raises(ModelError, match=f"more than {MEAN_MAX_DIMS} separate axis groups"):
        lower(g)


def test_mean_overflowing_scale_ratio_is_an_error() -> None:
    g = mean_graph(MeanCase("huge", (1, 4, 4, 8), (1, 2), True, (1000.0, 0), (1e-5, 0)))
    with pytest.raises(ModelError, match="too large"):
        lower(g)


@pytest.mark.parametrize("kernels", ["portable", "dsp", "mve"])
def test_average_pool_paths_agree(kernels: str) -> None:
    """Every path's average pool (the dsp kernel on dsp and mve, in plain C on the host) against the reference,
    including inputs at the int8 extremes, which fill the int16 lane sums to their largest."""
    from mcuq.api import compile_model
    from tests.util.harness import reference_outputs

    for case in (c for c in POOL_CASES if c.kind == AVG):
        g = pool_graph(case)
        cm = compile_model(g, kernels=kernels)
        want = "mcuq_average_pool2d_s8" + ("" if kernels == "portable" else "_dsp")
        assert [layer.kernel_name for layer in cm.layers] == [want]
        x = np.concatenate([random_int8(case.in_shape, 3, case.seed), np.full((2, *case.in_shape), -128, np.int8)])
        x[-1] = 127
        (ref,) = reference_outputs(g, x).values()
        np.testing.assert_array_equal(cm.run(x)[0], ref, err_msg=f"{case.id} on {kernels}")
