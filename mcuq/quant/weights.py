"""One layer's weights at 8, 4, 2 or 1 bits: scales and rounding, on the layer's actual quantized inputs.

Weights are handled as rows, one per output channel, of ``k`` values (the fan-in in the order the layout stores it):
CONV_2D OHWI -> ``[out, kh*kw*cin]``; FULLY_CONNECTED ``[out, in]`` as it is; DEPTHWISE_CONV_2D 1HWC ->
``[C, kh*kw]`` (each output channel has its own taps over one input channel, ``c // depth_multiplier``).

``LayerInputs`` holds the inputs the quantized pipeline feeds the layer (dequantized to real values), and turns them
into the rows a row of weights multiplies (im2col with TFLite's padding geometry; zero padding is a real 0, which the
input zero point stands for). From them come the Hessians ``X^T X / n`` (``centered``: of ``X`` minus its mean, when bias correction will remove the mean
output error anyway; on the digits CNN at 2 bits that took GPTQ from 86 % to 90 % and round-to-nearest from 39 % to
69 %) that GPTQ and the Hessian-weighted scale
search use, and AdaRound fits its rounding to. Rows are streamed in chunks, so a large layer never holds all its
patches at once; a Hessian uses at most ``MAX_ROWS`` rows (a seeded, sorted sample).

Scales and rounding come from ``mcuq.quant.rounding`` (``choose_scales``, ``quantize_nearest``, ``gptq``,
``gptq_grouped``, ``adaround``). At 8 bits with round-to-nearest, the scale is max |w| / 127, as the int8 quantizer
always chose it.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..ir import Op, OpKind
from ..lower.window import out_size, pad_before
from .precision import QMAX

MAX_ROWS = 1 << 16  # rows of inputs for a Hessian or AdaRound's fit
CHUNK_ELEMENTS = 1 << 22  # float64 values of patches held at once (32 MiB)
# Fan-in above which no [k, k] Hessian is formed (4096: 128 MiB of float64): such a layer (a hostile or very wide
# conv / FC) is rounded to nearest, its scales chosen on the Hessian's diagonal alone.
MAX_HESSIAN_K = 4096


def rows_of(w: np.ndarray, kind: OpKind) -> np.ndarray:
    """Weights in their layout as ``[out, k]`` rows (float64)."""
    w = np.asarray(w, dtype=np.float64)
    if kind is OpKind.DEPTHWISE_CONV2D:
        return w[0].reshape(-1, w.shape[3]).T.copy()
    return w.reshape(w.shape[0], -1)


def layout_of(rows: np.ndarray, kind: OpKind, shape: tuple[int, ...]) -> np.ndarray:
    """Rows back in the weights' layout (the inverse of ``rows_of``)."""
    if kind is OpKind.DEPTHWISE_CONV2D:
        return np.ascontiguousarray(rows.T).reshape(shape)
    return rows.reshape(shape)


class LayerInputs:
    """The layer's inputs (``x``: real values, batch first) as rows of the fan-in its weights multiply."""

    def __init__(self, op: Op, x: np.ndarray, w_shape: tuple[int, ...], centered: bool = False) -> None:
        self.op, self.kind, self.w_shape, self.centered = op, op.kind, tuple(w_shape), centered
        self.x = np.asarray(x, dtype=np.float64)
        self._hessian: np.ndarray | None = None
        if self.kind is OpKind.FULLY_CONNECTED:
            self.x = self.x.reshape(-1, w_shape[1])
            self.k = w_shape[1]
            self.n_rows = self.x.shape[0]
        else:
            if self.x.ndim != 4:  # the batch axis is the sample axis: (N, H, W, C)
                self.x = self.x.reshape(-1, *self.x.shape[-3:])
            kh, kw = w_shape[1], w_shape[2]
            a = op.attrs
            n, h, w, _ = self.x.shape
            self.oh = out_size(a.padding, h, kh, a.stride_h, a.dilation_h)
            self.ow = out_size(a.padding, w, kw, a.stride_w, a.dilation_w)
            self.k = kh * kw * (w_shape[3] if self.kind is OpKind.CONV2D else 1)
            self.n_rows = n * self.oh * self.ow

    # -- rows ---------------------------------------------------------------------------------------------------
    def _patches(self, xs: np.ndarray) -> np.ndarray:
        """``[n, oh, ow, kh, kw, c]`` patches of the samples ``xs`` (TFLite's padding, zeros outside)."""
        _, kh, kw, _ = self.w_shape
        a = self.op.attrs
        n, h, w, c = xs.shape
        top = pad_before(h, kh, a.stride_h, a.dilation_h, self.oh)
        left = pad_before(w, kw, a.stride_w, a.dilation_w, self.ow)
        bottom = max((self.oh - 1) * a.stride_h + (kh - 1) * a.dilation_h + 1 - h - top, 0)
        right = max((self.ow - 1) * a.stride_w + (kw - 1) * a.dilation_w + 1 - w - left, 0)
        xp = np.pad(xs, ((0, 0), (top, bottom), (left, right), (0, 0)))
        out = np.empty((n, self.oh, self.ow, kh, kw, c))
        for ky in range(kh):
            for kx in range(kw):
                y0, x0 = ky * a.dilation_h, kx * a.dilation_w
                out[:, :, :, ky, kx, :] = xp[:, y0 : y0 + (self.oh - 1) * a.stride_h + 1 : a.stride_h,
                                             x0 : x0 + (self.ow - 1) * a.stride_w + 1 : a.stride_w, :]  # fmt: skip
        return out

    def chunks(self) -> Iterator[np.ndarray]:
        """All rows in chunks: ``[rows, k]`` (conv, FC), or ``[rows, kh*kw, C_in]`` taps per input channel
        (depthwise)."""
        if self.kind is OpKind.FULLY_CONNECTED:
            step = max(1, CHUNK_ELEMENTS // max(self.k, 1))
            for i in range(0, self.n_rows, step):
                yield self.x[i : i + step]
            return
        per_sample = self.oh * self.ow * self.k * self.x.shape[3] // (1 if self.kind is OpKind.DEPTHWISE_CONV2D
                                                                       else self.w_shape[3])  # fmt: skip
        step = max(1, CHUNK_ELEMENTS // max(per_sample, 1))
        for i in range(0, self.x.shape[0], step):
            p = self._patches(self.x[i : i + step])
            if self.kind is OpKind.CONV2D:
                yield p.reshape(-1, self.k)
            else:
                yield p.reshape(-1, self.k, self.x.shape[3])

    def _keep(self, limit: int) -> np.ndarray | None:
        """Sorted row indices of a seeded sample of ``limit`` rows (None: all rows)."""
        if self.n_rows <= limit:
            return None
        return np.sort(np.random.default_rng(0).choice(self.n_rows, size=limit, replace=False))

    def sample(self, limit: int) -> np.ndarray:
        """At most ``limit`` rows (a seeded sample), as ``chunks`` shapes them."""
        keep = self._keep(limit)
        out, start = [], 0
        for c in self.chunks():
            if keep is None:
                out.append(c)
            else:
                sel = keep[(keep >= start) & (keep < start + len(c))] - start
                out.append(c[sel])
            start += len(c)
        return np.concatenate(out)

    # -- statistics ---------------------------------------------------------------------------------------------
    def hessian(self) -> np.ndarray:
        """``X^T X / n`` over at most ``MAX_ROWS`` rows: ``[k, k]``, or ``[C_out, t, t]`` for depthwise (each
        output channel's taps over its input channel). Computed once."""
        if self._hessian is None:
            self._hessian = self._compute_hessian()
        return self._hessian

    def hessian_diagonal(self) -> np.ndarray:
        """The diagonal of ``hessian`` (conv, FC) over all rows, in chunks: ``[k]``, without the ``[k, k]`` matrix."""
        total, sq, n = np.zeros(self.k), np.zeros(self.k), 0
        for c in self.chunks():
            total += c.sum(axis=0)
            sq += np.sum(c * c, axis=0)
            n += len(c)
        n = max(n, 1)
        return sq / n - (total / n) ** 2 if self.centered else sq / n

    def _compute_hessian(self) -> np.ndarray:
        x = self.sample(MAX_ROWS)
        n = max(len(x), 1)
        if self.centered:
            x = x - x.mean(axis=0)
        if self.kind is not OpKind.DEPTHWISE_CONV2D:
            return (x.T @ x) / n
        per_in = np.einsum("rtc,rsc->cts", x, x) / n  # [C_in, t, t]
        return np.repeat(per_in, self.w_shape[3] // x.shape[2], axis=0)


def quantize_rows(
    rows: np.ndarray,
    bits: int,
    rounding: str,
    inputs: LayerInputs,
    per_channel: bool,
    floor: np.ndarray | float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """(int8 values ``[out, k]`` in the narrow range of ``bits``, float32 scales ``[out]``: equal when not
    ``per_channel``) with ``rounding`` on the layer's ``inputs``. ``floor``: the least scale per channel (room for
    the bias).

    Two scales compete per channel: max |w| / qmax (nothing clipped) and ``rounding.choose_scales``'s clipped
    one (the least Hessian-diagonal-weighted error of round-to-nearest). Each is rounded with ``rounding``, and
    the one whose layer-output error ``e H e^T`` on the inputs is lower wins, channel by channel (the rows are
    independent in all three roundings). Measured on the digits CNN at 2 bits: GPTQ does best with unclipped scales
    (it moves the rounding error onto later columns, and clipping adds error it cannot move), round-to-nearest
    with clipped ones."""
    from . import rounding as rnd

    wide = inputs.kind is not OpKind.DEPTHWISE_CONV2D and inputs.k > MAX_HESSIAN_K
    hess = inputs.hessian_diagonal() if wide else inputs.hessian()
    if wide:  # no [k, k] Hessian (MAX_HESSIAN_K): to nearest, errors weighted by its diagonal
        rounding = "nearest"
    best_q = best_s = best_e = None
    for scales in candidate_scales(rows, bits, hess, per_channel, inputs.kind is OpKind.DEPTHWISE_CONV2D):
        s = np.maximum(scales, floor).astype(np.float32)
        q = round_with(rows, s, bits, rounding, inputs, hess)
        if wide:
            d = rows - q.astype(np.float64) * s.astype(np.float64)[:, None]
            e = np.sum(d * d * hess, axis=1)
        else:
            e = rnd.weight_error(rows, q, s.astype(np.float64), hess)
        if not per_channel:
            e = np.full_like(e, e.sum())
        if best_e is None:
            best_q, best_s, best_e = q, s, e
        else:
            better = e < best_e
            best_q = np.where(better[:, None], q, best_q)
            best_s = np.where(better, s, best_s)
            best_e = np.where(better, e, best_e)
    assert best_q is not None and best_s is not None
    return best_q.astype(np.int8), best_s.astype(np.float32)


def candidate_scales(rows: np.ndarray, bits: int, hess, per_channel: bool, depthwise: bool) -> list[np.ndarray]:
    """Scales per channel (all equal when not ``per_channel``): max |w| / qmax, and below 8 bits also the clip
    search of ``rounding.choose_scales`` weighted by the Hessian's diagonal. A channel of zeros gets the others'
    median (so its requantization multiplier stays ordinary)."""
    from . import rounding as rnd

    out = rows.shape[0]
    diag = np.einsum("ctt->ct", hess) if depthwise else (hess if np.ndim(hess) == 1 else np.diag(hess))
    m = np.abs(rows).max(axis=1) if per_channel else np.full(out, np.abs(rows).max(initial=0.0))
    found = [m / QMAX[bits]]
    if bits < 8:
        if per_channel:
            found.append(np.asarray(rnd.choose_scales(rows, bits, diag), dtype=np.float64))
        else:  # fully connected only: one scale for the tensor, as one long row
            found.append(np.full(out, float(rnd.choose_scales(rows.reshape(1, -1), bits, np.tile(diag, out))[0])))
    zero = ~np.any(rows != 0, axis=1) if rows.size else np.ones(out, bool)
    result = []
    for s in found:
        good = s[~zero & (s > 0)]
        fill = float(np.median(good)) if good.size else 1.0 / QMAX[bits]
        result.append(np.where(zero | ~(s > 0), fill, s))
    return result


def round_with(rows: np.ndarray, scales: np.ndarray, bits: int, rounding: str, inputs, hess=None) -> np.ndarray:
    """The int8 values of ``rows`` at ``scales`` with ``rounding`` ("nearest", "gptq" or "adaround")."""
    from . import rounding as rnd

    s = np.asarray(scales, dtype=np.float64)
    if rounding == "nearest" or inputs is None:
        q = rnd.quantize_nearest(rows, s, bits)
    elif rounding == "gptq":
        hess = inputs.hessian() if hess is None else hess
        if inputs.kind is OpKind.DEPTHWISE_CONV2D:
            q = rnd.gptq_grouped(rows, s, bits, hess)
        else:
            q = rnd.gptq(rows, s, bits, hess)
    elif rounding == "adaround":  # on the Hessian (full batch, no randomness); depthwise: one per channel
        q = rnd.adaround(rows, s, bits, hessian=inputs.hessian() if hess is None else hess)
    else:
        raise ValueError(f"unknown rounding {rounding!r}")
    return np.asarray(q, dtype=np.int8)
