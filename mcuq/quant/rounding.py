"""Weight rounding for low bit widths: per-channel scales, round-to-nearest, GPTQ and AdaRound (numpy only).

Every function works on one layer's weights as a matrix ``w[out, k]``: a row per output channel, ``k`` its flattened
fan-in (conv OHWI: ``kh * kw * cin``; fully connected: ``in``; depthwise: ``kh * kw``, one row per channel with its
own inputs). Weights are symmetric per channel in the narrow range of ``bits`` (``QMAX``): [-127, 127] at 8 bits,
[-7, 7] at 4, ternary {-1, 0, 1} at 2, binary {-1, +1} at 1 (a binary value is ``+-scale``, never 0). Results are
int8 arrays of those values; the real weight is ``q * scale``.

What rounding optimises is the layer's output on the calibration inputs ``x[n, k]`` (im2col rows for a conv,
``fan_in_rows``): ``||(W - Q S) X^T||^2``, which only depends on the Hessian ``H = X^T X / n`` (``hessian``) and
splits into independent rows, ``sum_r e_r H e_r^T`` with ``e_r = w_r - s_r q_r``.

- ``choose_scales``: the clip ratio per channel that minimises the (Hessian-diagonal weighted) squared weight error:
  a grid of ratios, a finer grid around the best, then alternating least squares (a Lloyd step: the best scale for
  the chosen integers, then the integers for that scale), which never increases the error.
- ``gptq`` (Frantar et al., 2022): quantizes one column at a time and moves the rounding error onto the columns not
  yet quantized, through the upper Cholesky factor of ``H^-1``, so that later columns compensate what earlier ones
  lost (lazy batch updates over blocks of columns; columns in order of decreasing ``H_jj`` with ``act_order``).
  ``gptq_search`` runs it for ``SEARCH_FACTORS`` times the scales in one pass (the candidates as extra rows) and
  keeps, per channel, the scale whose GPTQ rounding has the least output error (``pick_rows``).
- ``adaround`` (Nagel et al., 2020): chooses down or up for every weight by gradient descent (Adam) on a soft
  rounding variable (rectified sigmoid) with the loss ``e H e^T`` per row plus a regulariser that pushes each soft
  choice to 0 or 1 (its exponent annealed from 20 to 2 after a warm-up), then rounds the soft choice.

Robustness: ``H`` is damped by ``damp * mean(diag H)`` (a singular ``H``: fewer samples than inputs, or correlated
inputs); an input that is always 0 (``H_jj = 0``) keeps its nearest value and passes no error on; ``k = 1`` works.
Determinism: no unseeded randomness, and BLAS runs on one thread inside every public function (threadpoolctl), so
the same arguments give the same bytes whatever the machine's thread count.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

import numpy as np

from ..errors import McuqError
from ..ir import OpKind
from ..lower.window import out_size, pad_before
from .values import round_half_away

__all__ = [
    "QMAX",
    "HessianSum",
    "adaround",
    "choose_scales",
    "fan_in_rows",
    "gptq",
    "gptq_grouped",
    "gptq_search",
    "hessian",
    "pick_rows",
    "quantize_nearest",
    "weight_error",
]

QMAX = {8: 127, 4: 7, 2: 1, 1: 1}  # narrow symmetric ranges; 1 bit is binary (+-1), 2 bits ternary
TINY_SCALE = 2.0**-100  # the scale of an all-zero channel: positive, normal in float32 (the caller replaces it)
_GRID = 100  # clip ratios r/_GRID, r = 1.._GRID, tried per channel
_FINE = 20  # a finer grid of this many steps on each side of the best ratio
_LLOYD = 8  # alternating least-squares steps after the grid
_MAX_DAMP_TRIES = 6  # a Cholesky that fails is retried with 10x the damping, this often


def _one_blas_thread(fn):
    """Run ``fn`` with BLAS on one thread: sums, and so the chosen integers, do not depend on the thread count."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="blas"):
            return fn(*args, **kwargs)

    return wrapper


def _qmax(bits: int) -> int:
    if bits not in QMAX:
        raise ValueError(f"weight widths are {sorted(QMAX)} bits, not {bits}")
    return QMAX[bits]


def _weights(w: np.ndarray) -> np.ndarray:
    w = np.asarray(w, dtype=np.float64)
    if w.ndim != 2:
        raise ValueError(f"weights must be a matrix [out, k], got shape {w.shape}")
    if not np.all(np.isfinite(w)):
        raise McuqError("a weight is infinite or NaN; such a layer has no quantized weights")
    return w


def _scales(scales: np.ndarray, out: int) -> np.ndarray:
    s = np.asarray(scales, dtype=np.float64).reshape(-1)
    if s.size != out:
        raise ValueError(f"{s.size} scales for {out} output channels")
    if not np.all(np.isfinite(s) & (s > 0)):
        raise McuqError("a weight scale is zero, negative, infinite or NaN")
    return s


def _quant(t: np.ndarray, bits: int) -> np.ndarray:
    """``t = w / s`` (any shape) as integers in the narrow range, as float64."""
    if bits == 1:
        return np.where(t >= 0, 1.0, -1.0)
    q = _qmax(bits)
    return np.clip(round_half_away(t), -q, q)


def quantize_nearest(w: np.ndarray, scales: np.ndarray, bits: int) -> np.ndarray:
    """Round to nearest: ``w / s`` rounded half away from zero and clamped to the narrow range (int8 ``[out, k]``).
    Binary: the sign, with 0 -> +1. At 8 bits this is the int8 quantizer's own rounding."""
    _qmax(bits)
    w = _weights(w)
    s = _scales(scales, w.shape[0])
    return _quant(w / s[:, None], bits).astype(np.int8)


def weight_error(w: np.ndarray, q: np.ndarray, scales: np.ndarray, h: np.ndarray | None = None) -> np.ndarray:
    """Per channel, the layer-output error of ``q`` on the inputs of ``h`` (``e H e^T``, e = w - s q), or the squared
    weight error without ``h``. For comparing roundings; ``h`` may be [k, k] or one per channel [out, k, k]."""
    w = _weights(w)
    e = w - np.asarray(q, dtype=np.float64) * _scales(scales, w.shape[0])[:, None]
    if h is None:
        return np.sum(e * e, axis=1)
    h = np.asarray(h, dtype=np.float64)
    eh = np.einsum("rk,rkl->rl", e, h) if h.ndim == 3 else e @ h
    return np.sum(eh * e, axis=1)


def pick_rows(
    w: np.ndarray, hessian: np.ndarray, candidates: list[tuple[np.ndarray, np.ndarray]]
) -> tuple[np.ndarray, np.ndarray]:
    """Per output channel, the candidate ``(q, scales)`` with the least layer-output error ``e H e^T`` on the
    calibration inputs (the first on ties); rows are independent, so mixing them is exact. Returns (q, scales)."""
    w = _weights(w)
    if not candidates:
        raise ValueError("pick_rows needs at least one candidate")
    errs = np.stack([weight_error(w, q, s, hessian) for q, s in candidates])
    best = np.argmin(errs, axis=0)
    rows = np.arange(w.shape[0])
    q = np.stack([np.asarray(c[0], np.int8) for c in candidates])[best, rows]
    s = np.stack([np.asarray(c[1], np.float64).reshape(-1) for c in candidates])[best, rows]
    return q, s


# ------------------------------------------------------------------------------------------ scales
def choose_scales(w: np.ndarray, bits: int, h_diag: np.ndarray | None = None) -> np.ndarray:
    """Per-channel symmetric scales (float64 values that float32 holds exactly) minimising the squared weight
    error ``sum_j h_j (w_j - s q_j)^2`` of round-to-nearest, weighted by the Hessian diagonal ``h_diag[k]`` (or
    per channel ``[out, k]``) when given. Binary: the weighted mean of ``|w|`` (exact). Otherwise a clip ratio
    ``r`` (``s = r max|w| / qmax``) from a grid of 100 in (0, 1], refined around the best, then alternating least
    squares. An all-zero channel gets ``TINY_SCALE``; no result is 0, NaN or subnormal."""
    qmax = _qmax(bits)
    w = _weights(w)
    out, k = w.shape
    h = np.ones_like(w) if h_diag is None else np.broadcast_to(np.asarray(h_diag, dtype=np.float64), w.shape)
    if not np.all(np.isfinite(h) & (h >= 0)):
        raise McuqError("a Hessian diagonal entry is negative, infinite or NaN")
    # A channel whose weights all sit on dead inputs (h = 0) is fitted unweighted, so that it still gets a scale.
    h = np.where(np.sum(h * (w != 0), axis=1, keepdims=True) > 0, h, 1.0)
    a = np.abs(w)
    m = a.max(axis=1) if k else np.zeros(out)

    def err(s: np.ndarray) -> np.ndarray:
        return np.sum(h * (a - s[:, None] * _quant(a / s[:, None], bits)) ** 2, axis=1)

    if bits == 1:
        s = np.sum(h * a, axis=1) / np.sum(h, axis=1)
    else:
        live = m > 0
        safe_m = np.where(live, m, 1.0)
        best_r, best_e = np.ones(out), np.full(out, np.inf)
        for r in np.arange(1, _GRID + 1) / _GRID:
            best_r, best_e = _keep_better(err(r * safe_m / qmax), r, best_r, best_e)
        centre = best_r.copy()
        for j in range(-_FINE, _FINE + 1):
            r = np.clip(centre + j / (_GRID * _FINE), 1.0 / (_GRID * _FINE), 1.0)
            best_r, best_e = _keep_better(err(r * safe_m / qmax), r, best_r, best_e)
        s = best_r * safe_m / qmax
        for _ in range(_LLOYD):  # least-squares scale for the chosen integers; keep only improvements
            qa = _quant(a / s[:, None], bits)
            den = np.sum(h * qa * qa, axis=1)
            s_new = np.where(den > 0, np.sum(h * qa * a, axis=1) / np.where(den > 0, den, 1.0), s)
            e_new, e_old = err(s_new), err(s)
            s = np.where(e_new < e_old, s_new, s)
        s = np.where(live, s, 0.0)
    s32 = s.astype(np.float32).astype(np.float64)
    return np.where(s32 >= np.float32(np.finfo(np.float32).tiny), s32, TINY_SCALE)


def _keep_better(e: np.ndarray, r, best_r: np.ndarray, best_e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    better = e < best_e  # strict: the first ratio of equal error wins, whatever the grid's order of ties
    return np.where(better, r, best_r), np.where(better, e, best_e)


# ------------------------------------------------------------------------------------------ Hessians
class HessianSum:
    """Streaming ``X^T X / n``: ``add`` chunks of rows ``[n_i, k]`` (dense: one [k, k]) or ``[n_i, k, c]`` (grouped,
    depthwise: taps x channels, one [k, k] per channel, [c, k, k]); ``result`` divides by the total row count."""

    def __init__(self) -> None:
        self.sum: np.ndarray | None = None
        self.n = 0

    @_one_blas_thread
    def add(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim not in (2, 3):
            raise ValueError(f"Hessian rows must be [n, k] or [n, k, channels], got shape {x.shape}")
        if not np.all(np.isfinite(x)):
            raise McuqError("a layer input is infinite or NaN on the calibration data")
        part = x.T @ x if x.ndim == 2 else np.matmul(x.transpose(2, 1, 0), x.transpose(2, 0, 1))
        if self.sum is None:
            self.sum = np.zeros_like(part)
        elif self.sum.shape != part.shape:
            raise ValueError(f"Hessian chunk of shape {x.shape} does not match the earlier ones")
        self.sum += part
        self.n += x.shape[0]

    def result(self) -> np.ndarray:
        if self.sum is None or self.n == 0:
            raise McuqError("no calibration rows for a layer's Hessian")
        return self.sum / self.n


def hessian(x: np.ndarray | Iterable[np.ndarray]) -> np.ndarray:
    """``X^T X / n`` in float64 from rows ``x[n, k]`` (or, depthwise, ``[n, k, c]`` -> ``[c, k, k]``), or from an
    iterable of such chunks (streamed: the rows need not all be in memory)."""
    acc = HessianSum()
    for chunk in [x] if isinstance(x, np.ndarray) else x:
        acc.add(chunk)
    return acc.result()


def fan_in_rows(kind: OpKind, attrs: Any, x: np.ndarray, w_shape: tuple[int, ...]) -> np.ndarray:
    """The inputs each weight row multiplies, from a layer's float input ``x`` (NHWC, or rows for fully connected):
    CONV2D -> ``[n * oh * ow, kh * kw * cin]`` (OHWI order, zero padding as TFLite), DEPTHWISE_CONV2D ->
    ``[n * oh * ow, kh * kw, cout]`` (per output channel, its input channel's taps), FULLY_CONNECTED ->
    ``[rows, in]``. Feed it to ``hessian`` (in chunks of samples for large layers)."""
    x = np.asarray(x, dtype=np.float64)
    if kind is OpKind.FULLY_CONNECTED:
        return x.reshape(-1, w_shape[1])
    if kind not in (OpKind.CONV2D, OpKind.DEPTHWISE_CONV2D):
        raise ValueError(f"{kind.name} has no weight rows")
    kh, kw = w_shape[1], w_shape[2]
    if kind is OpKind.DEPTHWISE_CONV2D:
        x = np.repeat(x, w_shape[3] // x.shape[3], axis=3)
    n, h, wd, c = x.shape
    dh, dw = attrs.dilation_h, attrs.dilation_w
    oh, ow = out_size(attrs.padding, h, kh, attrs.stride_h, dh), out_size(attrs.padding, wd, kw, attrs.stride_w, dw)
    top, left = pad_before(h, kh, attrs.stride_h, dh, oh), pad_before(wd, kw, attrs.stride_w, dw, ow)
    bottom = max((oh - 1) * attrs.stride_h + (kh - 1) * dh + 1 - h - top, 0)
    right = max((ow - 1) * attrs.stride_w + (kw - 1) * dw + 1 - wd - left, 0)
    xp = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    rows = np.empty((n, oh, ow, kh, kw, c))
    for ky in range(kh):
        for kx in range(kw):
            y0, x0 = ky * dh, kx * dw
            rows[:, :, :, ky, kx, :] = xp[:, y0 : y0 + (oh - 1) * attrs.stride_h + 1 : attrs.stride_h,
                                          x0 : x0 + (ow - 1) * attrs.stride_w + 1 : attrs.stride_w, :]  # fmt: skip
    if kind is OpKind.DEPTHWISE_CONV2D:
        return rows.reshape(n * oh * ow, kh * kw, c)
    return rows.reshape(n * oh * ow, kh * kw * c)


def _hessian_matrix(h: np.ndarray, k: int) -> np.ndarray:
    h = np.array(h, dtype=np.float64)  # a copy
    if h.shape != (k, k):
        raise ValueError(f"Hessian of shape {h.shape} for {k} inputs")
    if not np.all(np.isfinite(h)):
        raise McuqError("the layer's Hessian has an infinite or NaN entry")
    return (h + h.T) / 2


def _damped(h: np.ndarray, damp: float) -> tuple[np.ndarray, np.ndarray]:
    """(H with dead inputs isolated and ``damp * mean(diag H)`` added to the diagonal, the dead-input mask)."""
    if not damp >= 0:
        raise ValueError(f"damp must be >= 0, not {damp}")
    dead = np.diag(h) <= 0
    h[dead, :] = 0.0
    h[:, dead] = 0.0
    d = np.diag(h)
    live_mean = float(d[~dead].mean()) if (~dead).any() else 1.0
    h[np.diag_indices_from(h)] = np.where(dead, live_mean, d + damp * live_mean)
    return h, dead


# ------------------------------------------------------------------------------------------ GPTQ
@_one_blas_thread
def gptq(
    w: np.ndarray,
    scales: np.ndarray,
    bits: int,
    hessian: np.ndarray,
    *,
    damp: float = 0.01,
    block: int = 128,
    act_order: bool = True,
) -> np.ndarray:
    """GPTQ rounding of ``w[out, k]`` with fixed per-channel ``scales`` and the layer's ``hessian[k, k]``
    (``X^T X / n``); int8 ``[out, k]`` in the narrow range of ``bits``. An identity Hessian gives round-to-nearest."""
    _qmax(bits)
    w = _weights(w)
    out, k = w.shape
    s = _scales(scales, out)
    if block < 1:
        raise ValueError(f"block must be >= 1, not {block}")
    h, _ = _damped(_hessian_matrix(hessian, k), damp)
    perm = np.argsort(-np.diag(h), kind="stable") if act_order else np.arange(k)
    u = _upper_inverse_cholesky(h[np.ix_(perm, perm)], damp)
    wp = w[:, perm].copy()
    q = np.zeros((out, k))
    for i1 in range(0, k, block):
        i2 = min(i1 + block, k)
        w1, u1 = wp[:, i1:i2], u[i1:i2, i1:i2]  # w1 is a view: updated in place
        errs = np.zeros((out, i2 - i1))
        for i in range(i2 - i1):
            col = w1[:, i]
            q[:, i1 + i] = _quant(col / s, bits)
            err = (col - q[:, i1 + i] * s) / u1[i, i]
            w1[:, i + 1 :] -= np.outer(err, u1[i, i + 1 :])
            errs[:, i] = err
        wp[:, i2:] -= errs @ u[i1:i2, i2:]
    res = np.empty_like(q)
    res[:, perm] = q
    return res.astype(np.int8)


def _upper_inverse_cholesky(h: np.ndarray, damp: float) -> np.ndarray:
    """Upper triangular U with ``U^T U = H^-1``; a failing factorisation is retried with more damping."""
    extra = max(damp, 1e-6) * float(np.mean(np.diag(h)))
    for _ in range(_MAX_DAMP_TRIES):
        try:
            hinv = np.linalg.inv(h)
            return np.linalg.cholesky((hinv + hinv.T) / 2).T
        except np.linalg.LinAlgError:
            h = h + extra * np.eye(len(h))
            extra *= 10
    raise McuqError("the layer's Hessian is not positive definite even after damping")


@_one_blas_thread
def gptq_grouped(w: np.ndarray, scales: np.ndarray, bits: int, hessians: np.ndarray, **kwargs) -> np.ndarray:
    """GPTQ per row with its own Hessian ``hessians[out, k, k]`` (depthwise: each channel sees its own taps)."""
    w = _weights(w)
    s = _scales(scales, w.shape[0])
    hs = np.asarray(hessians, dtype=np.float64)
    if hs.shape != (w.shape[0], w.shape[1], w.shape[1]):
        raise ValueError(f"grouped Hessians of shape {hs.shape} for weights {w.shape}")
    rows = [gptq(w[r : r + 1], s[r : r + 1], bits, hs[r], **kwargs) for r in range(w.shape[0])]
    return np.concatenate(rows, axis=0) if rows else np.zeros(w.shape, np.int8)


#: Scale factors that ``gptq_search`` tries on ``choose_scales``' result: 2^(-6/8) .. 2^(12/8). GPTQ compensates
#: rounding error, so it tends to prefer less clipping than round-to-nearest does, the more so the fewer the bits.
SEARCH_FACTORS = tuple(float(f) for f in 2.0 ** (np.arange(-6, 13) / 8))


@_one_blas_thread
def gptq_search(
    w: np.ndarray,
    bits: int,
    hessian: np.ndarray,
    *,
    scales: np.ndarray | None = None,
    factors: Iterable[float] = SEARCH_FACTORS,
    floor: np.ndarray | float = 0.0,
    **kwargs,
) -> tuple[np.ndarray, np.ndarray]:
    """GPTQ with the scale chosen per channel for GPTQ's own result: every factor in ``factors`` times ``scales``
    (default: ``choose_scales`` weighted by the Hessian diagonal) is tried, and each channel keeps the one whose
    rounding has the least layer-output error (``pick_rows``). ``hessian`` [k, k], or [out, k, k] for depthwise.
    ``floor``: the least scale per channel (room for the bias). Per-channel scales only (each row picks its own).
    Returns (int8 q [out, k], float32-exact scales [out])."""
    w = _weights(w)
    out, k = w.shape
    h = np.asarray(hessian, dtype=np.float64)
    grouped = h.ndim == 3
    if scales is None:
        scales = choose_scales(w, bits, np.diagonal(h, axis1=-2, axis2=-1))
    base = _scales(scales, out)
    fs = np.asarray(list(factors), dtype=np.float64)
    if fs.size == 0 or not np.all(np.isfinite(fs) & (fs > 0)):
        raise ValueError("factors must be positive and finite, at least one")
    cand_s = np.maximum(fs[:, None] * base[None, :], floor).astype(np.float32).astype(np.float64)  # [F, out]
    cand_s = np.where(cand_s >= np.finfo(np.float32).tiny, cand_s, TINY_SCALE)
    # Rows are independent: the candidates of all factors go through one GPTQ pass as extra rows.
    if grouped:
        qs = np.stack([gptq(np.repeat(w[r : r + 1], len(fs), 0), cand_s[:, r], bits, h[r], **kwargs)
                       for r in range(out)], axis=1)  # fmt: skip
    else:
        qs = gptq(np.tile(w, (len(fs), 1)), cand_s.reshape(-1), bits, h, **kwargs).reshape(len(fs), out, k)
    return pick_rows(w, h, [(qs[i], cand_s[i]) for i in range(len(fs))])


# ------------------------------------------------------------------------------------------ AdaRound
_ZETA, _GAMMA = 1.1, -0.1  # the rectified sigmoid's stretch: h = clip(sigmoid(v) (zeta - gamma) + gamma, 0, 1)


@_one_blas_thread
def adaround(
    w: np.ndarray,
    scales: np.ndarray,
    bits: int,
    x: np.ndarray | None = None,
    *,
    hessian: np.ndarray | None = None,
    iters: int = 1000,
    seed: int = 0,
    lam: float = 1.0,
    lr: float = 0.3,
    damp: float = 0.01,
    warmup: float = 0.2,
    batch: int | None = None,
) -> np.ndarray:
    """AdaRound of ``w[out, k]`` with fixed ``scales`` on the layer inputs ``x[n, k]`` (or a precomputed
    ``hessian[k, k]``, or one per channel ``[out, k, k]``). Full-batch gradients on the Hessian by default, which
    needs no randomness; ``batch`` rows drawn per step from ``x`` with ``np.random.default_rng(seed)`` instead.
    The loss per row is ``e H e^T`` in units of the row's step (H normalised to a mean diagonal of 1, damped)
    plus ``lam`` times the rounding regulariser."""
    _qmax(bits)
    w = _weights(w)
    out, k = w.shape
    s = _scales(scales, out)
    if iters < 0 or not 0 <= warmup <= 1:
        raise ValueError("iters must be >= 0 and warmup in [0, 1]")
    xs = None
    if hessian is None:
        if x is None:
            raise ValueError("adaround needs the layer inputs x or their hessian")
        xs = np.asarray(x, dtype=np.float64).reshape(-1, k)
        acc = HessianSum()
        acc.add(xs)
        h = acc.result()
    else:
        h = np.asarray(hessian, dtype=np.float64)
    grouped = h.ndim == 3
    hs = [_hessian_matrix(hr, k) for hr in (h if grouped else [h])]
    damped = [_damped(hr.copy(), damp)[0] for hr in hs]
    norms = np.array([float(np.mean(np.diag(hr))) for hr in damped])
    rec_grad = _rec_grad(grouped, hs, damped, norms, xs, batch, seed)

    t = w / s[:, None]
    if bits == 1:
        lo, step = np.full_like(t, -1.0), 2.0
        rest = np.clip((t + 1) / 2, 0, 1)
    else:
        qmax = QMAX[bits]
        lo = np.clip(np.floor(t), -qmax, qmax - 1)
        step = 1.0
        rest = np.clip(t - lo, 0, 1)
    p = (rest - _GAMMA) / (_ZETA - _GAMMA)
    v = np.log(p / (1 - p))
    m1, m2 = np.zeros_like(v), np.zeros_like(v)
    b1, b2, eps = 0.9, 0.999, 1e-8
    n_warm = int(warmup * iters)
    for it in range(iters):
        sig = 1 / (1 + np.exp(-v))
        raw = sig * (_ZETA - _GAMMA) + _GAMMA
        hsoft = np.clip(raw, 0, 1)
        grad_h = 2 * step * rec_grad(lo + step * hsoft - t)  # the error in units of the step
        if it >= n_warm:
            beta = 20 + (2 - 20) * (it - n_warm) / max(iters - n_warm, 1)
            d = 2 * hsoft - 1
            grad_h = grad_h - lam * 2 * beta * np.sign(d) * np.abs(d) ** (beta - 1)
        g = grad_h * (_ZETA - _GAMMA) * sig * (1 - sig) * ((raw > 0) & (raw < 1))
        m1 = b1 * m1 + (1 - b1) * g
        m2 = b2 * m2 + (1 - b2) * g * g
        v = v - lr * (m1 / (1 - b1 ** (it + 1))) / (np.sqrt(m2 / (1 - b2 ** (it + 1))) + eps)
    hard = (np.clip((1 / (1 + np.exp(-v))) * (_ZETA - _GAMMA) + _GAMMA, 0, 1) >= 0.5).astype(np.float64)
    return (lo + step * hard).astype(np.int8)


def _rec_grad(grouped: bool, hs: list[np.ndarray], damped: list[np.ndarray], norms: np.ndarray, xs, batch, seed):
    """``e -> e Hn`` with Hn the damped Hessian over its mean diagonal: on the [k, k] matrix, one per row when
    grouped; through the rows themselves when there are fewer rows than inputs (cheaper); on ``batch`` rows drawn
    per call when ``batch`` is given."""
    if grouped:
        hn = np.stack(damped) / norms[:, None, None]
        return lambda e: np.einsum("rk,rkl->rl", e, hn)
    hn = damped[0] / norms[0]
    if xs is None or (batch is None and len(xs) >= xs.shape[1]):
        return lambda e: e @ hn
    extra = (np.diag(damped[0]) - np.diag(hs[0])) / norms[0]  # the damping (and dead inputs' unit diagonal)
    if batch is None or batch >= len(xs):
        xn = xs / np.sqrt(len(xs) * norms[0])
        return lambda e: (e @ xn.T) @ xn + e * extra
    rng = np.random.default_rng(seed)

    def minibatch(e: np.ndarray) -> np.ndarray:
        xb = xs[np.sort(rng.choice(len(xs), batch, replace=False))] / np.sqrt(batch * norms[0])
        return (e @ xb.T) @ xb + e * extra

    return minibatch
