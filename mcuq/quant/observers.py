"""Activation range observers: calibration values of one tensor -> (lo, hi) -> TFLite's int8 scale and zero point.

A tensor's calibration values are summarised once by :class:`TensorStats` (min, max, a 2048-bin histogram over
the range extended to 0, and the count of exact zeros). Each method in :data:`RANGE_METHODS` is a pure function
``TensorStats -> (lo, hi)`` with ``lo <= 0 <= hi``; :func:`choose_qparams` turns a range into the int8 asymmetric
``(scale, zero_point)`` that TFLite's converter would store.

Error model (used by "mse" and :func:`quant_error`): within a histogram bin the values are taken as uniformly
spread, and the squared error of quantize-dequantize (round to the grid, clamp to [-128, 127]) is integrated
exactly over each bin in closed form. This is exact for that piecewise-uniform density; evaluating only at bin
centres instead aliases as soon as a quantization step is narrower than a bin (a clipped range over a histogram
stretched by outliers), where a centre can sit on a grid point by chance and the error vanishes spuriously.
Exact zeros (ReLU outputs) are counted apart: 0 is always on the grid, so they cost nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import McuqError
from .values import round_half_away

BINS = 2048
QMIN, QMAX = -128, 127
MIN_WIDTH = 1e-4  # a range narrower than this is widened to it: scale >= MIN_WIDTH / 255 (see choose_qparams)
SQNR_FLOOR_DB = -100.0  # sqnr_db's value for a zero signal with noise, and its lower bound
DEFAULT_PERCENTILE = 99.99
_CHUNK = 1 << 20  # values per vectorised step in TensorStats.of: bounds the float64 temporaries to 8 MiB
_CANDIDATE_CHUNK = 64  # candidate ranges evaluated together by _expected_errors
_KL_LEVELS = 256
_KL_MAX_CLIPPED = 0.01  # the largest fraction of the (non-zero) values that a KL window may clip
_KL_EPS = 1e-4  # weight of the uniform mixture that keeps KL(P || Q) finite where Q is empty


@dataclass(frozen=True, eq=False)
class TensorStats:
    """All calibration values of one tensor, summarised. ``hist[i]`` counts values in ``[edges[i], edges[i+1])``
    (the last bin is closed); the edges span ``[min(min, 0), max(max, 0)]``, all 0 when every value is 0."""

    min: float
    max: float
    count: int
    zeros: int  # values exactly 0 (included in hist too)
    hist: np.ndarray  # int64, BINS counts
    edges: np.ndarray  # float64, BINS + 1 edges

    @classmethod
    def of(cls, values: np.ndarray, *, name: str = "tensor") -> TensorStats:
        """Summarise ``values`` (any shape; vectorised in chunks, so 10^7 values take well under a second).

        Raises McuqError for no values or a non-finite one: a float model that overflows on the calibration data
        has no int8 range."""
        flat = np.asarray(values).reshape(-1)
        if flat.size == 0:
            raise McuqError(f"{name}: no calibration values to choose a range from")
        if flat.dtype.kind not in "fiu":
            raise McuqError(f"{name}: calibration values are {flat.dtype}, not numbers")
        vmin, vmax = float(flat.min()), float(flat.max())
        if not (math.isfinite(vmin) and math.isfinite(vmax)):
            bad = int(np.count_nonzero(~np.isfinite(flat)))
            raise McuqError(f"{name}: {bad} of {flat.size} calibration values are NaN or infinite")
        lo, hi = min(vmin, 0.0), max(vmax, 0.0)
        hist = np.zeros(BINS, dtype=np.int64)
        if hi == lo:  # every value is 0
            hist[0] = flat.size
            edges = np.zeros(BINS + 1)
            return cls(vmin, vmax, int(flat.size), int(flat.size), _frozen(hist), _frozen(edges))
        zeros = 0
        for start in range(0, flat.size, _CHUNK):
            chunk = flat[start : start + _CHUNK]
            hist += np.bincount(_bin_index(chunk, lo, hi), minlength=BINS)
            zeros += int(np.count_nonzero(chunk == 0))
        edges = lo + (hi - lo) * (np.arange(BINS + 1) / BINS)
        edges[0], edges[-1] = lo, hi
        return cls(vmin, vmax, int(flat.size), zeros, _frozen(hist), _frozen(edges))

    @property
    def lo(self) -> float:
        """The lower end of the histogram: ``min(min, 0)``."""
        return float(self.edges[0])

    @property
    def hi(self) -> float:
        """The upper end of the histogram: ``max(max, 0)``."""
        return float(self.edges[-1])

    @property
    def zero_bin(self) -> int:
        """The bin that holds the exact zeros."""
        if self.hi == self.lo:
            return 0
        return int(_bin_index(np.zeros(1), self.lo, self.hi)[0])


def _frozen(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def _bin_index(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Histogram bin of each value, in float64 so that spans up to 2 * float32 max neither overflow nor lose bins."""
    idx = np.floor((x.astype(np.float64) - lo) * (BINS / (hi - lo))).astype(np.int64)
    return np.clip(idx, 0, BINS - 1)


# --- scale and zero point -------------------------------------------------------------------------------------


def _qparams(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised :func:`choose_qparams`: float64 arrays holding float32 scales, and int64 zero points."""
    lo = np.minimum(np.asarray(lo, dtype=np.float64), 0.0)
    hi = np.maximum(np.asarray(hi, dtype=np.float64), 0.0)
    width = np.maximum(hi - lo, MIN_WIDTH)
    scale = (width / (QMAX - QMIN)).astype(np.float32).astype(np.float64)
    zp = np.clip(round_half_away(QMIN - lo / scale), QMIN, QMAX).astype(np.int64)
    return scale, zp


def choose_qparams(lo: float, hi: float) -> tuple[float, int]:
    """TFLite's int8 asymmetric parameters for the range [lo, hi]: extended to hold 0, ``scale = (hi - lo) / 255``
    stored as float32, ``zero_point = round(-128 - lo / scale)`` (half away from zero, from that float32 scale)
    clamped to [-128, 127]. 0 is then exactly representable, as zero padding needs.

    A range narrower than MIN_WIDTH = 1e-4 (an activation that is always 0, or nearly) is widened to it, keeping
    ``lo``: scale = 1e-4 / 255 ~ 3.9e-7, never 0, NaN or subnormal, and continuous in the range (no cliff at the
    threshold). Why not smaller: the producing op's requantization multiplier is ``s_in * s_w / s_out``, and a
    tiny ``s_out`` makes it large enough for TFLite's left shift of the accumulator to overflow int32. Values
    below ~2e-7 become 0, an error far below any ordinary tensor's step (1/255 of its range). AI Edge Quantizer
    floors its asymmetric range width at the same 1e-4."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"choose_qparams: range [{lo}, {hi}] is not finite")
    with np.errstate(over="ignore"):
        scale, zp = _qparams(np.array([lo]), np.array([hi]))
    if not math.isfinite(scale[0]):
        raise ValueError(f"choose_qparams: range [{lo}, {hi}] is too wide for a float32 scale")
    return float(scale[0]), int(zp[0])


# --- errors -----------------------------------------------------------------------------------------------------


def _sq_integral(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Integral of t^2 over [p, q], written without the cancellation of (q^3 - p^3) / 3."""
    return (q - p) * (p * p + p * q + q * q) / 3.0


def _grid_integral(m0: np.ndarray, m1: np.ndarray) -> np.ndarray:
    """Integral of (t - round(t))^2 over [m0, m1] (grid units): two partial cells and whole cells of 1/12."""
    c0, c1 = np.floor(m0 + 0.5), np.floor(m1 + 0.5)
    one_cell = _sq_integral(m0 - c0, m1 - c0)
    spanning = _sq_integral(m0 - c0, 0.5) + (c1 - c0 - 1.0) / 12.0 + _sq_integral(-0.5, m1 - c1)
    return np.where(c0 == c1, one_cell, spanning)


def _bin_errors(u0: np.ndarray, u1: np.ndarray, kmin: np.ndarray, kmax: np.ndarray) -> np.ndarray:
    """Integral of the squared quantize-dequantize error over each bin [u0, u1], in grid units (x / scale).

    Below ``kmin + 0.5`` everything dequantizes to ``kmin``, above ``kmax - 0.5`` to ``kmax``; in between, to the
    nearest grid point."""
    a, b = kmin + 0.5, kmax - 0.5
    low = _sq_integral(u0 - kmin, np.maximum(np.minimum(u1, a), u0) - kmin)
    high = _sq_integral(np.minimum(np.maximum(u0, b), u1) - kmax, u1 - kmax)
    mid = _grid_integral(np.clip(u0, a, b), np.clip(u1, a, b))
    return low + mid + high


def _density(stats: TensorStats, merge: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The non-zero values as (counts, bin starts, bin ends) over the non-empty bins, ``merge`` bins made one."""
    counts = stats.hist.astype(np.float64)
    counts[stats.zero_bin] -= stats.zeros
    counts = counts.reshape(-1, merge).sum(axis=1)
    edges = stats.edges[::merge]
    used = counts > 0
    return counts[used], edges[:-1][used], edges[1:][used]


def _expected_errors(
    density: tuple[np.ndarray, np.ndarray, np.ndarray], total: int, scales: np.ndarray, zps: np.ndarray
) -> np.ndarray:
    """Expected squared error per value (of ``total``) for each (scale, zero point) candidate; exact zeros, not in
    the density, add nothing."""
    c, e0, e1 = density
    out = np.zeros(len(scales))
    if len(c) == 0:
        return out
    for j in range(0, len(scales), _CANDIDATE_CHUNK):
        s = scales[j : j + _CANDIDATE_CHUNK, None]
        zp = zps[j : j + _CANDIDATE_CHUNK, None].astype(np.float64)
        u0, u1 = e0 / s, e1 / s
        mean_sq = _bin_errors(u0, u1, QMIN - zp, QMAX - zp) * (s * s) / (u1 - u0)
        out[j : j + _CANDIDATE_CHUNK] = np.sum(mean_sq * c, axis=1) / total
    return out


def quant_error(stats: TensorStats, scale: float, zero_point: int) -> float:
    """Expected squared error per value of int8 quantize-dequantize with (scale, zero_point), as TFLite's
    AffineQuantize does it (round, then clamp to [-128, 127]), over the calibration histogram (see the module
    docstring for the within-bin model; rounding ties have no weight under a density)."""
    return float(
        _expected_errors(_density(stats), stats.count, np.array([float(scale)]), np.array([int(zero_point)]))[0]
    )


def range_error(stats: TensorStats, lo: float, hi: float) -> float:
    """:func:`quant_error` of the parameters that :func:`choose_qparams` gives the range [lo, hi]."""
    return quant_error(stats, *choose_qparams(lo, hi))


def clipped_fraction(values: np.ndarray, scale: float, zero_point: int) -> float:
    """Fraction of ``values`` that quantize outside [-128, 127], i.e. beyond half a step past the representable
    range [(-128 - zp) * scale, (127 - zp) * scale]. Computed as TFLite's AffineQuantize: float32 division,
    round half away from zero."""
    flat = np.asarray(values).reshape(-1)
    if flat.size == 0:
        return 0.0
    s = np.float32(scale)
    clipped = 0
    with np.errstate(over="ignore", invalid="ignore"):  # |v| / tiny scale -> inf: clipped
        for start in range(0, flat.size, _CHUNK):
            q = round_half_away(flat[start : start + _CHUNK].astype(np.float32) / s) + zero_point
            clipped += int(np.count_nonzero((q < QMIN) | (q > QMAX)))
    return clipped / flat.size


def sqnr_db(reference: np.ndarray, approx: np.ndarray) -> float | None:
    """Signal to quantization noise ratio, 10 log10(sum(ref^2) / sum((approx - ref)^2)), in float64.

    None when the noise is exactly 0 (the approximation is exact: no finite number says that). A zero signal
    with noise is the worst case and gives SQNR_FLOOR_DB, which also bounds every result from below, so that a
    report stays finite (JSON has no -Infinity) and a dead layer still sorts as the worst."""
    ref = np.asarray(reference, dtype=np.float64)
    app = np.asarray(approx, dtype=np.float64)
    if ref.shape != app.shape:
        raise ValueError(f"sqnr_db: shapes {ref.shape} and {app.shape} differ")
    noise = float(np.sum(np.square(app - ref)))
    if noise == 0.0:
        return None
    signal = float(np.sum(np.square(ref)))
    if signal == 0.0:
        return SQNR_FLOOR_DB
    return max(10.0 * math.log10(signal / noise), SQNR_FLOOR_DB)


# --- range methods ----------------------------------------------------------------------------------------------


def range_minmax(stats: TensorStats) -> tuple[float, float]:
    """Every calibration value representable: [min(min, 0), max(max, 0)]."""
    return stats.lo, stats.hi


def _quantile(stats: TensorStats, q: float) -> float:
    """The value below which a fraction ``q`` of the values lie, interpolated linearly inside its bin."""
    target = q * stats.count
    cum = np.cumsum(stats.hist)
    i = min(int(np.searchsorted(cum, target, side="left")), BINS - 1)
    in_bin = int(stats.hist[i])
    frac = (target - (int(cum[i]) - in_bin)) / in_bin if in_bin else 0.0
    x = float(stats.edges[i] + min(max(frac, 0.0), 1.0) * (stats.edges[i + 1] - stats.edges[i]))
    return min(max(x, stats.lo), stats.hi)


def range_percentile(stats: TensorStats, pct: float = DEFAULT_PERCENTILE) -> tuple[float, float]:
    """Two-sided percentile: the low end at (100 - pct) %, the high end at pct % of the values (from the histogram,
    linear inside a bin), each extended to 0."""
    if not 50.0 < pct <= 100.0:
        raise ValueError(f"range_percentile: pct must be in (50, 100], not {pct}")
    if stats.hi == stats.lo:
        return 0.0, 0.0
    lo = _quantile(stats, (100.0 - pct) / 100.0)
    hi = _quantile(stats, pct / 100.0)
    return min(lo, 0.0), max(hi, 0.0)


_MSE_COARSE_2D = 24  # fractions per side when both sides are searched
_MSE_COARSE_1D = 96
_MSE_COARSE_MERGE = 8  # the coarse grid is scored on a 256-bin histogram
_MSE_REFINE = 7
_MSE_ROUNDS = 4


def _pair_errors(
    stats: TensorStats, density: tuple[np.ndarray, np.ndarray, np.ndarray], fa: np.ndarray, fb: np.ndarray
) -> np.ndarray:
    """The error of every range (fa[i] * lo, fb[j] * hi), row-major over (i, j)."""
    lo = np.repeat(fa * stats.lo, len(fb))
    hi = np.tile(fb * stats.hi, len(fa))
    return _expected_errors(density, stats.count, *_qparams(lo, hi))


def range_mse(stats: TensorStats) -> tuple[float, float]:
    """The range minimising :func:`quant_error`, both ends searched independently.

    Each end is a fraction of the histogram's end (a side without values stays at 0). A coarse grid of
    fractions, geometric from 1/2048 (one bin) to 1, covers clipping from none to extreme and is scored on the
    histogram merged to 256 bins; each refinement scores a 3x finer geometric grid around the best pair on the
    full histogram. The minmax and percentile ranges compete too, so the result is never worse than either."""
    if stats.hi == stats.lo:
        return 0.0, 0.0
    n = _MSE_COARSE_2D if stats.lo < 0.0 < stats.hi else _MSE_COARSE_1D
    grid, one = np.geomspace(1.0 / BINS, 1.0, n), np.ones(1)
    fa, fb = (grid if stats.lo < 0.0 else one), (grid if stats.hi > 0.0 else one)
    best = int(np.argmin(_pair_errors(stats, _density(stats, _MSE_COARSE_MERGE), fa, fb)))
    a, b = fa[best // len(fb)], fb[best % len(fb)]
    fine = _density(stats)
    step = math.log(BINS) / (n - 1)
    for _ in range(_MSE_ROUNDS):
        offsets = np.exp(np.linspace(-step, step, _MSE_REFINE))
        fa = np.clip(a * offsets, 1.0 / BINS, 1.0) if stats.lo < 0.0 else one
        fb = np.clip(b * offsets, 1.0 / BINS, 1.0) if stats.hi > 0.0 else one
        best = int(np.argmin(_pair_errors(stats, fine, fa, fb)))
        a, b = fa[best // len(fb)], fb[best % len(fb)]
        step /= (_MSE_REFINE - 1) / 2
    finalists = [range_minmax(stats), range_percentile(stats), (float(a * stats.lo), float(b * stats.hi))]
    errs = _expected_errors(fine, stats.count, *_qparams(*np.array(finalists).T))
    lo, hi = finalists[int(np.argmin(errs))]
    return min(float(lo), 0.0), max(float(hi), 0.0)


def _xlogx(x: np.ndarray) -> np.ndarray:
    return np.where(x > 0, x * np.log(np.where(x > 0, x, 1.0)), 0.0)


def _kl_windows(hist: np.ndarray, i0: np.ndarray, i1: np.ndarray) -> np.ndarray:
    """KL(P || Q) for each window of bins [i0, i1) (at least 256 bins), all at once.

    P is the window with the mass outside it added to its end bins. Q merges the window's own counts into 256
    levels of equal width (bin r of n in level floor(256 r / n)) and spreads each level's mass evenly over that
    level's bins where P is non-zero: TensorRT's entropy calibration, for a window that need not start at 0.
    Q is mixed with 1e-4 of a uniform distribution over P's support, which keeps the divergence finite where
    the clipped mass lands in an end bin that Q leaves empty.

    Q is constant within a level, so KL = sum(p log p) - sum over levels of P(level) log Q(level): prefix sums
    make each window cost O(256) instead of O(n)."""
    h = hist.astype(np.float64)
    cum = np.concatenate(([0.0], np.cumsum(h)))
    support = np.concatenate(([0], np.cumsum(h > 0)))
    hlogh = np.concatenate(([0.0], np.cumsum(_xlogx(h))))
    total = cum[-1]
    n = (i1 - i0)[:, None]
    bounds = i0[:, None] + (np.arange(_KL_LEVELS + 1)[None, :] * n + _KL_LEVELS - 1) // _KL_LEVELS
    merged = np.diff(cum[bounds], axis=1)
    members = np.diff(support[bounds], axis=1).astype(np.float64)
    left, right = cum[i0], total - cum[i1]
    first, last = h[i0], h[i1 - 1]
    members[:, 0] += (first == 0) & (left > 0)
    members[:, -1] += (last == 0) & (right > 0)
    mass = merged.copy()
    mass[:, 0] += left
    mass[:, -1] += right
    plogp = hlogh[i1] - hlogh[i0] - _xlogx(first) - _xlogx(last) + _xlogx(first + left) + _xlogx(last + right)
    inside = (cum[i1] - cum[i0])[:, None]
    q = np.where(inside > 0, merged / np.maximum(members, 1.0) / np.maximum(inside, 1.0), 0.0)
    q = (1.0 - _KL_EPS) * q + _KL_EPS / members.sum(axis=1, keepdims=True)
    cross = np.sum(np.where(mass > 0, mass * np.log(np.where(mass > 0, q, 1.0)), 0.0), axis=1)
    return (plogp - cross) / total - math.log(total)


def _window_scores(hist: np.ndarray, i0: np.ndarray, i1: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The windows among the pairs (i0[k], i1[k]) that are at least 256 bins wide and clip at most 1 % of the
    values, and their divergences."""
    cum = np.concatenate(([0], np.cumsum(hist)))
    clipped = cum[i0] + (cum[-1] - cum[i1])
    ok = (i1 - i0 >= _KL_LEVELS) & (clipped <= _KL_MAX_CLIPPED * cum[-1])
    i0, i1 = i0[ok], i1[ok]
    kl = np.concatenate([_kl_windows(hist, i0[j : j + 4096], i1[j : j + 4096]) for j in range(0, len(i0), 4096)])
    return i0, i1, kl


def _beam(hist: np.ndarray, i0: np.ndarray, i1: np.ndarray, keep: int) -> list[tuple[int, int]]:
    """The ``keep`` best distinct windows among the pairs, best first; ties go to the earlier pair."""
    i0, i1, kl = _window_scores(hist, i0, i1)
    order = np.argsort(kl, kind="stable")[:keep]
    return [(int(i0[k]), int(i1[k])) for k in order]


def _kl_window(stats: TensorStats) -> tuple[int, int]:
    """The window [i0, i1) of least divergence. It holds the bin of 0 and stops there on a side without values.

    One side: every window (a non-positive tensor as the mirror image of a non-negative one, so that negating a
    tensor negates its range). Two sides: KL is ragged in the two ends, with local minima a few bins apart, so a
    descent from one start stalls. A beam search instead: a grid of about 64 x 64 pairs of ends, then around
    each of the 8 best a 9 x 9 grid at a quarter of the stride, and so on down to one bin, keeping half as many
    windows each time (about 5,000 windows in all, against a million for every pair)."""
    hist = stats.hist.copy()
    hist[stats.zero_bin] -= stats.zeros  # exact zeros are exact in any window (see range_kl)
    zb = stats.zero_bin
    lo_max = zb if stats.lo < 0.0 else 0  # i0 in [0, lo_max]
    hi_min = zb + 1 if stats.hi > 0.0 else BINS  # i1 in [hi_min, BINS]
    if hi_min == BINS:  # no positive values: the mirror image of the case below, searched as such
        _, i1 = _beam(hist[::-1], *_pairs(np.zeros(1, np.int64), np.arange(BINS - lo_max, BINS + 1)), 1)[0]
        return BINS - i1, BINS
    if lo_max == 0:
        return _beam(hist, *_pairs(np.zeros(1, np.int64), np.arange(hi_min, BINS + 1)), 1)[0]
    stride = max(1, -(-max(lo_max + 1, BINS + 1 - hi_min) // 64))
    beam = _beam(hist, *_pairs(np.arange(0, lo_max + 1, stride), np.arange(BINS, hi_min - 1, -stride)), 8)
    while stride > 1:
        step = max(stride // 4, 1)
        offsets = np.arange(-4, 5) * step
        cands = {
            (a, b)
            for c0, c1 in beam
            for a, b in zip(*_pairs(c0 + offsets, c1 + offsets))
            if 0 <= a <= lo_max and hi_min <= b <= BINS
        }
        i0, i1 = np.array(sorted(cands)).T
        beam = _beam(hist, i0, i1, max(len(beam) // 2, 1))
        stride = step
    return beam[0]


def _pairs(starts: np.ndarray, stops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (start, stop) pair, row-major."""
    return np.repeat(starts, len(stops)), np.tile(stops, len(starts))


def range_kl(stats: TensorStats) -> tuple[float, float]:
    """Entropy calibration: the clipping window (in whole bins) that minimises KL(P || Q) between the clipped
    histogram and its 256-level quantized version (see :func:`_kl_windows`). A window is at least 256 bins, so at
    most 7/8 of the histogram span is clipped, and clips at most 1 % of the values: KL compares shapes and cannot
    see how far clipped mass moves, so a tensor far from 0 (all values in [1, 3.7], say) would otherwise get the
    window that ends at its first value, where P and Q are both one bin and agree perfectly. Exact zeros are left out of the histogram: they are exact
    whatever the window, and a ReLU's spike at 0 would otherwise pull towards the narrowest window, the only one
    where it fills a level alone.

    Non-negative tensors (ReLU outputs) search the upper end only, windows [0, i); non-positive ones the lower
    end only. Two-sided tensors search both ends jointly, the window always holding the bin of 0, and the 256
    levels spread across the whole window, as the asymmetric int8 grid spreads over [lo, hi]."""
    if stats.hi == stats.lo:
        return 0.0, 0.0
    i0, i1 = _kl_window(stats)
    return min(float(stats.edges[i0]), 0.0), max(float(stats.edges[i1]), 0.0)


RANGE_METHODS: dict[str, Callable[[TensorStats], tuple[float, float]]] = {
    "minmax": range_minmax,
    "percentile": range_percentile,
    "mse": range_mse,
    "kl": range_kl,
}
