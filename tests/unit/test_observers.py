"""mcuq.quant.observers: calibration statistics, the four range methods, TFLite's int8 qparams and the error
measures, on distributions whose right answers are known, on degenerate tensors and against sampled errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mcuq.errors import McuqError
from mcuq.quant import observers as ob
from mcuq.quant.observers import (
    BINS,
    MIN_WIDTH,
    RANGE_METHODS,
    SQNR_FLOOR_DB,
    TensorStats,
    choose_qparams,
    clipped_fraction,
    quant_error,
    range_error,
    range_percentile,
    sqnr_db,
)


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# Every distribution the methods must handle; the degenerate ones at the end.
DISTRIBUTIONS = {
    "uniform": lambda: _rng(1).uniform(-1.0, 3.0, 200_000),
    "gaussian": lambda: _rng(2).standard_normal(200_000),
    # 2 outliers in 10^6: clipping them is cheaper in squared error than stretching the grid (about 5e-6 is the
    # break-even fraction for int8), so mse must clip too, not only percentile and kl.
    "gaussian_outliers": lambda: np.concatenate([_rng(3).standard_normal(1_000_000), [50.0, -40.0]]),
    "half_normal": lambda: np.abs(_rng(4).standard_normal(200_000)),
    "relu": lambda: np.maximum(_rng(5).standard_normal(200_000), 0.0),
    "negative": lambda: -_rng(6).exponential(1.0, 100_000),
    "skewed": lambda: _rng(7).standard_normal(100_000) + _rng(8).exponential(3.0, 100_000),
    "small_sample": lambda: _rng(9).standard_normal(10),
    "far_from_zero": lambda: _rng(19).uniform(1.0, 3.7, 800),  # like AD01's 8-unit bottleneck
    "constant": lambda: np.full(1000, 2.5),
    "negative_constant": lambda: np.full(1000, -0.75),
    "all_zero": lambda: np.zeros((4, 8, 8)),
    "single_value": lambda: np.array([3.0]),
    "single_zero": lambda: np.array([0.0]),
    "tiny": lambda: _rng(10).standard_normal(10_000) * 1e-30,
    "subnormal": lambda: np.array([1.4e-45, -2.8e-45, 0.0]),
    "huge": lambda: _rng(11).standard_normal(10_000) * 1e30,
    "float32_extremes": lambda: np.array([-3.4e38, 3.4e38, 1.0, 0.0]),
}


def _stats(name: str) -> TensorStats:
    return TensorStats.of(np.asarray(DISTRIBUTIONS[name](), dtype=np.float32))


def _fake_quant(values: np.ndarray, scale: float, zp: int) -> np.ndarray:
    """Quantize-dequantize as TFLite's AffineQuantize (float32 division, round half away, clamp), in float64."""
    x = values.astype(np.float32) / np.float32(scale)
    q = np.clip(np.trunc(x) + np.sign(x) * (np.abs(x - np.trunc(x)) >= 0.5) + zp, -128, 127)
    return (q.astype(np.float64) - zp) * scale


def _sampled_error(values: np.ndarray, lo: float, hi: float) -> float:
    scale, zp = choose_qparams(lo, hi)
    return float(np.mean((_fake_quant(values, scale, zp) - values.astype(np.float64)) ** 2))


# ----------------------------------------------------------------------------------------------- TensorStats


def test_stats_summarise_any_shape():
    v = _rng().standard_normal((3, 5, 7)).astype(np.float32)
    v[0, 0, :4] = 0.0
    st = TensorStats.of(v)
    assert (st.min, st.max, st.count) == (float(v.min()), float(v.max()), v.size)
    assert st.zeros == 4
    assert st.hist.dtype == np.int64 and st.hist.shape == (BINS,) and int(st.hist.sum()) == v.size
    assert st.edges.dtype == np.float64 and st.edges.shape == (BINS + 1,)
    assert (st.edges[0], st.edges[-1]) == (min(st.min, 0.0), max(st.max, 0.0))
    assert np.all(np.diff(st.edges) > 0)
    # every value lies in its bin
    for x in v.reshape(-1)[:50]:
        i = int(np.searchsorted(st.edges, x, side="right")) - 1
        assert st.hist[min(i, BINS - 1)] > 0
    with pytest.raises(ValueError):
        st.hist[0] = 1  # frozen: methods share it


def test_stats_extend_the_range_to_zero():
    st = TensorStats.of(np.array([2.0, 3.0], dtype=np.float32))
    assert (st.min, st.max) == (2.0, 3.0)
    assert (st.lo, st.hi) == (0.0, 3.0)
    assert st.hist[0] == 0 and st.hist[-1] == 1


@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
def test_stats_never_hold_nan_or_inf(name):
    st = _stats(name)
    assert math.isfinite(st.min) and math.isfinite(st.max)
    assert np.all(np.isfinite(st.edges)) and np.all(st.hist >= 0)
    assert int(st.hist.sum()) == st.count
    assert 0 <= st.zeros <= st.hist[st.zero_bin]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (np.array([1.0, np.nan], dtype=np.float32), "1 of 2 calibration values are NaN or infinite"),
        (np.array([np.inf, -np.inf, 0.0], dtype=np.float32), "2 of 3 calibration values are NaN or infinite"),
        (np.zeros((0, 3), dtype=np.float32), "no calibration values"),
        (np.array(["a"]), "not numbers"),
    ],
)
def test_stats_reject_what_has_no_range(values, message):
    with pytest.raises(McuqError, match=message) as e:
        TensorStats.of(values, name="conv1/out")
    assert str(e.value).startswith("conv1/out: ") and "\n" not in str(e.value)


# ---------------------------------------------------------------------------------------------- choose_qparams


@pytest.mark.parametrize(
    ("lo", "hi", "scale", "zp"),
    [
        # ReLU6: lo = 0 gives zp = -128 exactly
        (0.0, 6.0, np.float32(6 / 255), -128),
        # float32(2/255) = 0.0078431377 is above 2/255, so -128 + 1/scale = -0.5000075: rounds to -1, not 0
        (-1.0, 1.0, np.float32(2 / 255), -1),
        # -128 + 6 / (8/255) = 63.25
        (-6.0, 2.0, np.float32(8 / 255), 63),
        # -128 + 0.5 / (0.75/255) = 42 (170 - 1e-6 after float32 rounding)
        (-0.5, 0.25, np.float32(0.75 / 255), 42),
        # ranges that exclude 0 are extended to it
        (2.0, 5.0, np.float32(5 / 255), -128),
        (-3.0, -1.0, np.float32(3 / 255), 127),
        (-1.0, 0.0, np.float32(1 / 255), 127),
        # an always-0 tensor, and one narrower than MIN_WIDTH: widened to MIN_WIDTH from lo
        (0.0, 0.0, np.float32(MIN_WIDTH / 255), -128),
        (-1e-30, 1e-30, np.float32(MIN_WIDTH / 255), -128),
        (-1e-4, 0.0, np.float32(MIN_WIDTH / 255), 127),
        (-3e38, 3e38, np.float32(6e38 / 255), 0),
    ],
)
def test_choose_qparams_hand_computed(lo, hi, scale, zp):
    got_scale, got_zp = choose_qparams(lo, hi)
    assert type(got_scale) is float and type(got_zp) is int
    assert got_scale == float(scale)
    assert got_zp == zp


def test_choose_qparams_always_valid():
    rng = _rng(12)
    ends = np.concatenate([rng.standard_normal(300), rng.standard_normal(100) * 1e-6, rng.standard_normal(100) * 1e30])
    for lo, hi in zip(ends[::2], ends[1::2]):
        scale, zp = choose_qparams(float(lo), float(hi))
        assert -128 <= zp <= 127
        assert scale == float(np.float32(scale)) and scale >= np.finfo(np.float32).tiny
        lo0, hi0 = min(lo, 0.0), max(hi, 0.0)
        if hi0 - lo0 >= MIN_WIDTH:  # the grid covers the range to within half a step
            assert (-128 - zp) * scale <= lo0 + scale / 2 and (127 - zp) * scale >= hi0 - scale / 2


def test_choose_qparams_is_continuous_at_the_floor():
    below, _ = choose_qparams(0.0, MIN_WIDTH * (1 - 1e-6))
    above, _ = choose_qparams(0.0, MIN_WIDTH * (1 + 1e-6))
    assert below == pytest.approx(above, rel=1e-5)


def test_choose_qparams_refuses_non_finite():
    with pytest.raises(ValueError):
        choose_qparams(-math.inf, 1.0)
    with pytest.raises(ValueError):
        choose_qparams(0.0, 1e300)


# --------------------------------------------------------------------------------------------------- methods


@pytest.mark.parametrize("method", sorted(RANGE_METHODS))
@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
def test_every_method_gives_a_valid_range(method, name):
    st = _stats(name)
    lo, hi = RANGE_METHODS[method](st)
    assert type(lo) is float and type(hi) is float
    assert math.isfinite(lo) and math.isfinite(hi)
    assert st.lo <= lo <= 0.0 <= hi <= st.hi
    scale, zp = choose_qparams(lo, hi)
    assert scale > 0 and -128 <= zp <= 127
    err = quant_error(st, scale, zp)
    assert math.isfinite(err) and err >= 0.0


def test_minmax_is_the_extended_min_and_max():
    assert RANGE_METHODS["minmax"](_stats("gaussian_outliers")) == (-40.0, 50.0)
    assert RANGE_METHODS["minmax"](_stats("constant")) == (0.0, 2.5)
    assert RANGE_METHODS["minmax"](_stats("all_zero")) == (0.0, 0.0)


def test_uniform_needs_no_clipping():
    st = _stats("uniform")
    for method, fn in RANGE_METHODS.items():
        lo, hi = fn(st)
        assert lo == pytest.approx(-1.0, rel=0.01), method
        assert hi == pytest.approx(3.0, rel=0.01), method


@pytest.mark.parametrize("method", ["percentile", "mse", "kl"])
def test_outliers_are_clipped_by_all_but_minmax(method):
    values = DISTRIBUTIONS["gaussian_outliers"]().astype(np.float32)
    st = TensorStats.of(values)
    outliers = np.array([50.0, -40.0], dtype=np.float32)
    lo, hi = RANGE_METHODS[method](st)
    assert clipped_fraction(outliers, *choose_qparams(lo, hi)) == 1.0
    assert lo < -3.0 and hi > 3.0  # the gaussian itself stays (99.7 % lie within 3 sigma)
    assert range_error(st, lo, hi) < range_error(st, *RANGE_METHODS["minmax"](st))
    assert clipped_fraction(outliers, *choose_qparams(*RANGE_METHODS["minmax"](st))) == 0.0


@pytest.mark.parametrize("name", ["half_normal", "relu"])
def test_non_negative_tensors_keep_lo_at_zero(name):
    st = _stats(name)
    for method, fn in RANGE_METHODS.items():
        lo, hi = fn(st)
        assert lo == 0.0, method
        assert 3.0 < hi <= st.max, method  # 99.7 % of a half-normal is below 3


def test_percentile_is_the_quantile_of_each_side():
    st = TensorStats.of(_rng(13).uniform(-1.0, 1.0, 1_000_000).astype(np.float32))
    lo, hi = range_percentile(st, 99.0)
    assert lo == pytest.approx(-0.98, abs=2e-3) and hi == pytest.approx(0.98, abs=2e-3)
    lo, hi = range_percentile(st)
    assert lo == pytest.approx(-0.9998, abs=2e-3) and hi == pytest.approx(0.9998, abs=2e-3)
    assert range_percentile(st, 100.0) == RANGE_METHODS["minmax"](st)
    for bad in (50.0, 100.5):
        with pytest.raises(ValueError):
            range_percentile(st, bad)


@pytest.mark.parametrize("name", ["uniform", "gaussian", "gaussian_outliers", "half_normal", "relu", "skewed"])
def test_mse_is_never_worse_than_minmax_or_percentile(name):
    st = _stats(name)
    mse = range_error(st, *RANGE_METHODS["mse"](st))
    assert mse <= range_error(st, *RANGE_METHODS["minmax"](st))
    assert mse <= range_error(st, *RANGE_METHODS["percentile"](st))


def test_mse_finds_the_one_sided_optimum():
    st = _stats("half_normal")
    brute = min(range_error(st, 0.0, hi) for hi in np.linspace(2.0, st.hi, 1500))
    assert range_error(st, *RANGE_METHODS["mse"](st)) <= brute * 1.002


def test_mse_searches_both_ends_independently():
    st = _stats("skewed")
    lo, hi = RANGE_METHODS["mse"](st)
    grid_lo, grid_hi = np.linspace(st.lo, 0.0, 60)[:-1], np.linspace(0.0, st.hi, 60)[1:]
    brute = min(range_error(st, a, b) for a in grid_lo for b in grid_hi)
    assert range_error(st, lo, hi) <= brute * 1.002
    assert -lo < 0.5 * hi  # asymmetric: a symmetric search around 0 could not get here


def _kl_direct(hist: np.ndarray, i0: int, i1: int, levels: int = 256, eps: float = 1e-4) -> float:
    """KL(P || Q) of one window straight from its definition (see observers._kl_windows), bin by bin."""
    h = hist.astype(np.float64)
    inside = h[i0:i1]
    p = inside.copy()
    p[0] += h[:i0].sum()
    p[-1] += h[i1:].sum()
    n = i1 - i0
    q = np.zeros(n)
    for level in range(levels):
        members = [r for r in range(n) if r * levels // n == level]
        occupied = [r for r in members if p[r] > 0]
        for r in occupied:
            q[r] = inside[members].sum() / len(occupied)
    keep = p > 0
    p, q = p[keep] / p.sum(), q[keep]
    q = (1 - eps) * (q / q.sum() if q.sum() > 0 else q) + eps / len(p)
    return float(np.sum(p * np.log(p / q)))


def test_kl_divergence_of_windows_matches_its_definition():
    st = _stats("gaussian_outliers")
    windows = [(0, BINS), (0, 256), (100, 900), (3, 1999), (900, 1156), (817, 1100)]
    got = ob._kl_windows(st.hist, np.array([w[0] for w in windows]), np.array([w[1] for w in windows]))
    want = [_kl_direct(st.hist, *w) for w in windows]
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_kl_ignores_the_spike_of_exact_zeros():
    positive = np.abs(_rng(14).standard_normal(100_000)).astype(np.float32)
    with_zeros = np.concatenate([positive, np.zeros(100_000, dtype=np.float32)])
    assert RANGE_METHODS["kl"](TensorStats.of(with_zeros)) == RANGE_METHODS["kl"](TensorStats.of(positive))


def test_kl_clips_at_most_one_percent():
    """KL compares shapes only: without the bound, a tensor far from 0 gets the window that ends at its first value
    (P and Q are then one bin each and agree), which clipped 99.9 % of AD01's bottleneck and cost 35 dB."""
    for name in ("far_from_zero", "gaussian_outliers", "relu", "skewed", "small_sample"):
        values = DISTRIBUTIONS[name]().astype(np.float32)
        st = TensorStats.of(values)
        lo, hi = RANGE_METHODS["kl"](st)
        nonzero = values[values != 0]
        assert np.mean((nonzero < lo) | (nonzero > hi)) <= 0.01, name
    assert RANGE_METHODS["kl"](_stats("far_from_zero"))[1] > 3.6


def test_kl_mirrors_for_non_positive_tensors():
    values = _rng(15).exponential(1.0, 100_000).astype(np.float32)
    _, hi = RANGE_METHODS["kl"](TensorStats.of(values))
    lo, _ = RANGE_METHODS["kl"](TensorStats.of(-values))
    assert lo == pytest.approx(-hi, abs=2 * float(values.max()) / BINS)


# ---------------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("name", "lo", "hi"),
    [
        ("uniform", -1.0, 3.0),
        ("gaussian", -3.0, 2.0),
        ("relu", 0.0, 2.0),
        ("gaussian_outliers", -4.0, 4.0),  # a step of 0.03 inside bins of 0.044: the centres would alias
        ("gaussian_outliers", -0.5, 0.3),  # heavy clipping
        ("skewed", -1.0, 40.0),
    ],
)
def test_quant_error_matches_the_sampled_error(name, lo, hi):
    values = DISTRIBUTIONS[name]().astype(np.float32)
    st = TensorStats.of(values)
    assert range_error(st, lo, hi) == pytest.approx(_sampled_error(values, lo, hi), rel=0.02)


def test_quant_error_uniform_is_a_twelfth_of_the_squared_step():
    st = TensorStats.of(np.linspace(0.0, 1.0, 1_000_001, dtype=np.float32)[1:])
    scale, zp = choose_qparams(0.0, 1.0)
    assert quant_error(st, scale, zp) == pytest.approx(scale**2 / 12, rel=0.01)


def test_quant_error_of_clipping_is_the_squared_distance():
    st = _stats("constant")  # 2.5, in the last bin
    scale, zp = choose_qparams(0.0, 1.0)
    assert quant_error(st, scale, zp) == pytest.approx((2.5 - (127 - zp) * scale) ** 2, rel=1e-3)


def test_exact_zeros_cost_nothing():
    assert quant_error(_stats("all_zero"), *choose_qparams(0.0, 0.0)) == 0.0
    positive = _rng(16).uniform(0.0, 1.0, 50_000).astype(np.float32)
    half_zero = np.concatenate([positive, np.zeros(50_000, dtype=np.float32)])
    scale, zp = choose_qparams(0.0, 1.0)
    alone = quant_error(TensorStats.of(positive), scale, zp)
    assert quant_error(TensorStats.of(half_zero), scale, zp) == pytest.approx(alone / 2, rel=1e-9)


def test_clipped_fraction_counts_beyond_half_a_step():
    scale, zp = choose_qparams(-1.0, 1.0)
    top, bottom = (127 - zp) * scale, (-128 - zp) * scale
    values = np.array(
        [0.0, top, top + 0.49 * scale, top + 0.51 * scale, bottom - 0.49 * scale, bottom - 0.51 * scale, 1e38],
        dtype=np.float32,
    )
    assert clipped_fraction(values, scale, zp) == pytest.approx(3 / 7)
    assert clipped_fraction(np.zeros(0, dtype=np.float32), scale, zp) == 0.0
    assert clipped_fraction(np.array([3e38, -3e38], dtype=np.float32), *choose_qparams(0.0, 0.0)) == 1.0


def test_sqnr_db():
    ref = np.ones(100, dtype=np.float32)
    assert sqnr_db(ref, ref + np.float32(0.1)) == pytest.approx(20.0, abs=1e-5)
    assert sqnr_db(ref, ref.copy()) is None  # exact
    assert sqnr_db(np.zeros(4), np.zeros(4)) is None
    assert sqnr_db(np.zeros(4), np.full(4, 1e-3)) == SQNR_FLOOR_DB  # no signal, some noise
    assert sqnr_db(np.full(4, 1e-20), np.full(4, 1.0)) == SQNR_FLOOR_DB  # bounded below
    big = np.full(3, 3e38, dtype=np.float32)  # squares overflow float32, not the float64 sums
    assert sqnr_db(big, big * np.float32(0.5)) == pytest.approx(10 * math.log10(4.0))
    with pytest.raises(ValueError):
        sqnr_db(np.zeros(3), np.zeros(4))


# ------------------------------------------------------------------------------------- determinism and size


def test_deterministic_and_independent_of_value_order():
    values = DISTRIBUTIONS["skewed"]().astype(np.float32)
    shuffled = values[_rng(17).permutation(values.size)]
    runs = [TensorStats.of(v) for v in (values, values.copy(), shuffled)]
    for method, fn in RANGE_METHODS.items():
        results = {fn(st) for st in runs}
        assert len(results) == 1, method
        lo, hi = results.pop()
        errors = {range_error(st, lo, hi) for st in runs}
        assert len(errors) == 1, method


def test_ten_million_values():
    """10^7 values go through the vectorised paths (no time is asserted; it takes about a second)."""
    values = _rng(18).standard_normal(10_000_000, dtype=np.float32)
    st = TensorStats.of(values)
    assert st.count == 10_000_000 and int(st.hist.sum()) == st.count
    for fn in RANGE_METHODS.values():
        lo, hi = fn(st)
        assert -6.0 < lo < -3.0 and 3.0 < hi < 6.0
    assert 0.0 < clipped_fraction(values, *choose_qparams(-3.0, 3.0)) < 0.01
