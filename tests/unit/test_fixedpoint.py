"""The C fixed-point helpers (runtime_c/src/internal/mcuq_fixedpoint.h) and their numpy mirror agree, and both
follow TFLite's definitions on hand-checked values."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from mcuq._paths import RUNTIME_C
from mcuq.build import SANITIZE_FLAGS, host_cc
from mcuq.quant import fixedpoint as fp

I32_MIN, I32_MAX = -(2**31), 2**31 - 1

HARNESS = r"""
#include <inttypes.h>
#include <stdio.h>
#include "mcuq_fixedpoint.h"
int main(void) {
    char op;
    long long a, b, c;
    while (scanf(" %c %lld %lld %lld", &op, &a, &b, &c) == 4) {
        int32_t r = 0;
        switch (op) {
        case 'h': r = mcuq_saturating_rounding_doubling_high_mul((int32_t)a, (int32_t)b); break;
        case 'd': r = mcuq_rounding_divide_by_pot((int32_t)a, (int32_t)b); break;
        case 'm': r = mcuq_multiply_by_quantized_multiplier((int32_t)a, (int32_t)b, (int32_t)c); break;
        default: return 2;
        }
        printf("%" PRId32 "\n", r);
    }
    return 0;
}
"""


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    d = tmp_path_factory.mktemp("fp")
    (d / "h.c").write_text(HARNESS)
    exe = d / "h"
    subprocess.run(
        [host_cc(), *SANITIZE_FLAGS, "-I", str(RUNTIME_C / "src" / "internal"), str(d / "h.c"), "-o", str(exe)],
        check=True,
    )

    def run(rows: list[tuple[str, int, int, int]]) -> np.ndarray:
        text = "".join(f"{o} {a} {b} {c}\n" for o, a, b, c in rows)
        out = subprocess.run([str(exe)], input=text, capture_output=True, text=True, check=True)
        return np.array([int(v) for v in out.stdout.split()], dtype=np.int64)

    return run


def edge_values() -> list[int]:
    return [
        I32_MIN,
        I32_MIN + 1,
        -(2**30),
        -65536,
        -1000,
        -3,
        -2,
        -1,
        0,
        1,
        2,
        3,
        7,
        1000,
        65535,
        2**30,
        I32_MAX - 1,
        I32_MAX,
    ]


def test_high_mul_edges_and_random(harness):
    rng = np.random.default_rng(1)
    vals = edge_values()
    pairs = [(a, b) for a in vals for b in vals]
    pairs += [tuple(map(int, rng.integers(I32_MIN, I32_MAX, 2, endpoint=True))) for _ in range(2000)]
    got = harness([("h", a, b, 0) for a, b in pairs])
    want = fp.saturating_rounding_doubling_high_mul([a for a, _ in pairs], [b for _, b in pairs])
    np.testing.assert_array_equal(got, want)
    # the one overflow case saturates; ties round up (gemmlowp's nudge)
    assert fp.saturating_rounding_doubling_high_mul(I32_MIN, I32_MIN) == I32_MAX
    assert fp.saturating_rounding_doubling_high_mul(1 << 30, 1) == 1  # 0.5 -> 1
    assert fp.saturating_rounding_doubling_high_mul(-(1 << 30), 1) == 0  # -0.5 -> 0


def test_rounding_divide_by_pot_edges_and_random(harness):
    rng = np.random.default_rng(2)
    rows = [(x, e) for x in edge_values() for e in (0, 1, 2, 5, 16, 30, 31)]
    rows += [(int(rng.integers(I32_MIN, I32_MAX, endpoint=True)), int(rng.integers(0, 32))) for _ in range(2000)]
    got = harness([("d", x, e, 0) for x, e in rows])
    want = fp.rounding_divide_by_pot([x for x, _ in rows], [e for _, e in rows])
    np.testing.assert_array_equal(got, want)
    # ties away from zero
    assert fp.rounding_divide_by_pot(5, 1) == 3 and fp.rounding_divide_by_pot(-5, 1) == -3
    assert fp.rounding_divide_by_pot(I32_MIN, 31) == -1
    with pytest.raises(ValueError):
        fp.rounding_divide_by_pot(1, 32)


def test_multiply_by_quantized_multiplier(harness):
    rng = np.random.default_rng(3)
    rows = []
    for real in (0.5, 0.999999, 1.0, 1.5, 2.0**-31, 2.0**-30, 1e-12, 0.0078125, 3.7, 255.0, 1e4):
        q, s = fp.quantize_multiplier(real)
        for x in (-(2**20), -1000, -1, 0, 1, 127, 1000, 2**20):
            rows.append((x, q, s))
    for _ in range(3000):
        real = float(np.exp(rng.uniform(np.log(1e-6), np.log(100.0))))
        q, s = fp.quantize_multiplier(real)
        bound = (2**31 - 1) >> max(s, 0)  # TFLite's left shift must not overflow
        rows.append((int(rng.integers(-bound, bound, endpoint=True)), q, s))
    got = harness([("m", x, q, s) for x, q, s in rows])
    want = fp.multiply_by_quantized_multiplier(*map(list, zip(*rows)))
    np.testing.assert_array_equal(got, want)
    # the result approximates x * real
    q, s = fp.quantize_multiplier(0.3)
    assert fp.multiply_by_quantized_multiplier(1000, q, s) == 300


def test_quantize_multiplier_tflite_cases():
    assert fp.quantize_multiplier(0.0) == (0, 0)
    assert fp.quantize_multiplier(0.5) == (1 << 30, 0)
    assert fp.quantize_multiplier(1.0) == (1 << 30, 1)
    assert fp.quantize_multiplier(0.25) == (1 << 30, -1)
    # a mantissa that rounds up to 2^31 is halved and the shift incremented
    q, s = fp.quantize_multiplier(1.0 - 2.0**-40)
    assert (q, s) == (1 << 30, 1)
    # below 2^-32 the multiplier flushes to zero
    assert fp.quantize_multiplier(2.0**-40) == (0, 0)
    # round half away from zero, not to even
    assert fp.tflite_round(2.5) == 3 and fp.tflite_round(-2.5) == -3 and fp.tflite_round(0.49999) == 0
    for real in np.geomspace(1e-9, 1e6, 200):
        q, s = fp.quantize_multiplier(float(real))
        assert (1 << 30) <= q < (1 << 31)
        assert abs(q * 2.0 ** (s - 31) - real) <= real * 2**-30
