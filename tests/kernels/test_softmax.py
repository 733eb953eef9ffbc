"""SOFTMAX (int8 -> int8): lowering, numpy reference and C, bit-exact with the oracle; gemmlowp helpers.

Each case builds a one-op int8 graph and runs the three-way check of tests/util/harness.py (oracle, numpy
reference, generated C) on a batch of inputs: random, all equal, large and narrow spreads, many elements at the
row maximum.
"""

from __future__ import annotations

import math
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from mcuq import ir
from mcuq._paths import RUNTIME_C
from mcuq.errors import ModelError
from mcuq.lower import lower
from mcuq.lower.softmax import calculate_input_radius, preprocess_softmax_scaling
from mcuq.quant import fixedpoint as fp
from tests.util.harness import random_int8, three_way

N_RANDOM = 8


@dataclass(frozen=True)
class Case:
    id: str
    shape: tuple[int, ...]
    scale: float
    zp: int = 0
    beta: float = 1.0
    seed: int = 0


CASES = [
    Case("kws_12", (1, 12), 0.1, -20, seed=1),
    Case("batch3_classes10", (3, 10), 0.0625, 5, seed=2),
    Case("rank1", (7,), 0.2, -128, seed=3),
    Case("rank3", (2, 3, 7), 0.05, 127, seed=4),
    Case("rank4_beta_small", (1, 2, 2, 33), 0.3, 0, 0.01, seed=5),
    Case("beta_half_odd_scale", (4, 12), 0.0123, -3, 0.5, seed=6),
    Case("beta_3_7", (2, 3), 0.6, 40, 3.7, seed=7),
    Case("scale_40_clamped_multiplier", (2, 16), 40.0, 0, seed=8),
    Case("scale_1_over_256", (1, 100), 0.00390625, -128, seed=9),
    Case("tiny_scale", (2, 20), 1.1e-4, 10, seed=10),
    Case("depth1", (5, 1), 0.1, 0, seed=11),
    Case("imagenet_1001", (1, 1001), 0.2, -30, seed=12),
    Case("depth_2100_shift_overflow", (2, 2100), 0.004, 0, seed=13),
]


def _f32(x: float) -> float:
    return float(np.float32(x))


def softmax_graph(case: Case, out_q: tuple[float, int] = (1.0 / 256, -128)) -> ir.Graph:
    tensors = {
        "x": ir.Tensor("x", case.shape, ir.DType.INT8, ir.QParams((_f32(case.scale),), (case.zp,))),
        "y": ir.Tensor("y", case.shape, ir.DType.INT8, ir.QParams((_f32(out_q[0]),), (out_q[1],))),
    }
    op = ir.Op(ir.OpKind.SOFTMAX, case.id, ("x",), ("y",), ir.SoftmaxAttrs(case.beta))
    return ir.Graph(case.id, tensors, (op,), ("x",), ("y",))


def inputs_for(case: Case) -> np.ndarray:
    """Random rows, constant rows (-128, 7, 127), a large spread (127 / -128 halves), a narrow spread, and rows
    with most elements at the maximum (a row sum of exps >= 2^28 once a row has 512 of them)."""
    rng = np.random.default_rng(1000 + case.seed)
    shape, depth = case.shape, case.shape[-1]
    xs = list(random_int8(shape, N_RANDOM, rng).astype(np.int64))
    xs += [np.full(shape, v, dtype=np.int64) for v in (-128, 7, 127)]
    spread = rng.integers(-128, 128, size=shape, dtype=np.int64)
    spread[..., : depth // 2] = 127
    spread[..., depth // 2 :] = -128
    xs.append(spread)
    xs.append(rng.integers(-2, 3, size=shape, dtype=np.int64))
    for frac in (0.6, 0.9):
        x = rng.integers(-128, 100, size=shape, dtype=np.int64)
        x[..., rng.permutation(depth)[: max(1, int(depth * frac))]] = 100 - int(rng.integers(0, 2))
        xs.append(x)
    return np.stack(xs).astype(np.int8)


@pytest.mark.oracle
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_softmax_bit_exact(case: Case) -> None:
    three_way(softmax_graph(case), [inputs_for(case)], name=case.id)


# -- compile-time parameters ------------------------------------------------------------------------------------


def test_softmax_params() -> None:
    (layer,) = lower(softmax_graph(CASES[0]))  # float32(0.1) * 2^26 = 0.8 * 2^23
    assert layer.kernel.name == "mcuq_softmax_s8"
    assert (layer.p("outer_size"), layer.p("depth")) == (1, 12)
    assert (layer.p("input_multiplier"), layer.p("input_left_shift"), layer.p("diff_min")) == (1717986944, 23, -248)
    (layer,) = lower(softmax_graph(case_by_id("scale_40_clamped_multiplier")))  # capped at 2^31 - 1
    assert (layer.p("input_multiplier"), layer.p("input_left_shift"), layer.p("diff_min")) == (2**31 - 1, 31, 0)


def case_by_id(name: str) -> Case:
    return next(c for c in CASES if c.id == name)


def test_preprocess_scaling_and_radius() -> None:
    mult, shift = preprocess_softmax_scaling(1.0, 1.0 / 256, 5)  # 2^18 exactly
    assert (mult, shift) == (1 << 30, 19)
    assert calculate_input_radius(5, 19) == 31 * 2**7
    assert preprocess_softmax_scaling(1e-3, 1e-5, 5) is None  # 0.00067 <= 1: TFLite aborts


@pytest.mark.parametrize(
    "out_q, match",
    [((1.0 / 256, 0), "zero point must be -128"), ((1.0 / 128, -128), "scale must be 1/256")],
)
def test_softmax_output_quantization_is_checked(out_q: tuple[float, int], match: str) -> None:
    with pytest.raises(ModelError, match=match):
        lower(softmax_graph(CASES[0], out_q))


def test_softmax_output_scale_tolerance_is_tflites() -> None:
    lower(softmax_graph(CASES[0], (1.0 / 256 * (1 + 0.0009), -128)))  # within TF_LITE_ENSURE_NEAR's 0.1%
    with pytest.raises(ModelError, match="1/256"):
        lower(softmax_graph(CASES[0], (1.0 / 256 * (1 + 0.0011), -128)))


def test_softmax_tiny_beta_and_huge_depth_are_errors() -> None:
    with pytest.raises(ModelError, match="too small"):
        lower(softmax_graph(Case("tiny", (1, 4), 1e-5, beta=1e-3)))
    with pytest.raises(ModelError, match="overflow"):
        lower(softmax_graph(Case("huge", (1, 4096), 0.1)))


# -- gemmlowp fixed-point helpers (softmax section of mcuq_fixedpoint.h and fixedpoint.py) -----------------------


def test_exp_on_negative_values_accuracy() -> None:
    raw = np.linspace(-(2**31), 0, 20001).astype(np.int64)  # Q5.26: [-32, 0]
    got = fp.exp_on_negative_values(raw, 5).astype(np.float64) / 2**31
    want = np.exp(raw.astype(np.float64) / 2**26)
    assert np.max(np.abs(got - want)) < 5e-7  # the Taylor polynomial's error, about 2e-7
    assert int(fp.exp_on_negative_values(0, 5)) == 2**31 - 1


def test_one_over_one_plus_x_accuracy() -> None:
    raw = np.linspace(0, 2**31 - 1, 20001).astype(np.int64)
    got = fp.one_over_one_plus_x_for_x_in_0_1(raw).astype(np.float64) / 2**31
    want = 1.0 / (1.0 + raw.astype(np.float64) / 2**31)
    assert np.max(np.abs(got - want)) < 1e-8


def test_get_reciprocal() -> None:
    for x in (1 << 19, 3 << 19, 12345678, 2**31 - 1):
        r, bits = fp.get_reciprocal(x, 12)
        approx = float(r) / 2**31 / 2.0 ** int(bits)  # 1 / (x / 2^19)
        assert math.isclose(approx, 2**19 / x, rel_tol=1e-8), x


_HELPERS_MAIN = r"""
#include <stdio.h>
#include "mcuq_fixedpoint.h"
int main(void)
{
    long long v;
    int32_t bits;
    while (scanf("%lld", &v) == 1) {
        const int32_t x = (int32_t)v;
        const int32_t neg = x > 0 ? -x : x;
        const int32_t pos = x < 0 ? (x == INT32_MIN ? INT32_MAX : -x) : x;
        const int32_t r = mcuq_get_reciprocal(pos > 0 ? pos : 1, 12, &bits);
        printf("%ld %ld %ld %ld %ld %ld %ld\n", (long)mcuq_exp_on_negative_values(neg, 5),
               (long)mcuq_exp_on_negative_values(neg, 8), (long)mcuq_one_over_one_plus_x_for_x_in_0_1(pos),
               (long)mcuq_saturating_rounding_multiply_by_pot(x, 3), (long)mcuq_rounding_half_sum(x, INT32_MAX),
               (long)r, (long)bits);
    }
    return 0;
}
"""


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_c_helpers_match_numpy(tmp_path: Path) -> None:
    """The C helpers, built with the sanitizers, equal their numpy mirrors over a sweep of int32 values."""
    rng = np.random.default_rng(5)
    edge = [0, 1, -1, 2**31 - 1, -(2**31), 2**30, -(2**30), 1 << 24, -(1 << 24), 268435455, -268435456]
    xs = np.concatenate([np.asarray(edge, dtype=np.int64), rng.integers(-(2**31), 2**31, size=3000)])
    src = tmp_path / "helpers.c"
    src.write_text(_HELPERS_MAIN)
    exe = tmp_path / "helpers"
    cc = [
        "gcc",
        "-std=c99",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-fsanitize=address,undefined",
        "-fno-sanitize-recover=all",
        f"-I{RUNTIME_C / 'include'}",
        f"-I{RUNTIME_C / 'src' / 'internal'}",
        str(src),
        "-o",
        str(exe),
    ]
    subprocess.run(cc, check=True)
    out = subprocess.run(
        [str(exe)], input="\n".join(str(int(v)) for v in xs), capture_output=True, text=True, check=True
    ).stdout
    got = np.asarray([[int(t) for t in line.split()] for line in out.splitlines()], dtype=np.int64)
    neg = np.where(xs > 0, -xs, xs)
    pos = np.where(xs < 0, np.where(xs == -(2**31), 2**31 - 1, -xs), xs)
    recip, bits = fp.get_reciprocal(np.where(pos > 0, pos, 1), 12)
    want = np.stack(
        [
            fp.exp_on_negative_values(neg, 5),
            fp.exp_on_negative_values(neg, 8),
            fp.one_over_one_plus_x_for_x_in_0_1(pos),
            fp.saturating_rounding_multiply_by_pot(xs, 3),
            fp.rounding_half_sum(xs, 2**31 - 1),
            recip,
            bits,
        ],
        axis=1,
    )
    np.testing.assert_array_equal(got, want)
