"""Array arithmetic of quantization shared by the quantizer and the model's edge: TFLite's affine quantize, the
dequantized value, symmetric weight scales and rounding. numpy only, float64 where exactness matters."""

from __future__ import annotations

import numpy as np

from ..errors import ModelError
from ..ir import DType, Graph, Tensor

INT8_MIN, INT8_MAX = -128, 127
INT16_MAX = 2**15 - 1
MIN_WIDTH16 = 1e-4  # the least max |x| of an int16 range (as MIN_WIDTH for int8): scale >= 1e-4 / 32767
INT32_MAX = 2**31 - 1


def float_data(g: Graph, t: Tensor) -> np.ndarray:
    """A constant as float32: float16 and (hybrid models') quantized integer constants are dequantized."""
    assert t.data is not None
    if t.dtype is DType.FLOAT32:
        return np.asarray(t.data, dtype=np.float32)
    if t.dtype is DType.FLOAT16:
        return np.asarray(t.data, dtype=np.float32)
    if t.qparams is None:
        raise ModelError(g.source, f"constant '{t.name}' is {t.dtype.value} without quantization parameters")
    scale = expand(np.asarray(t.qparams.scale, dtype=np.float32), t.qparams.axis, t.data.ndim)
    zp = expand(np.asarray(t.qparams.zero_point, dtype=np.float32), t.qparams.axis, t.data.ndim)
    return ((np.asarray(t.data, dtype=np.float32) - zp) * scale).astype(np.float32)


def expand(v: np.ndarray, axis: int, ndim: int) -> np.ndarray:
    """Per-channel values shaped to broadcast along ``axis`` of an ``ndim``-D array (a scalar for one value)."""
    v = np.asarray(v)
    if v.size == 1:
        return v.reshape(())
    shape = [1] * ndim
    shape[axis] = v.size
    return v.reshape(shape)


def round_half_away(x: np.ndarray) -> np.ndarray:
    """``std::round``, vectorised: halves away from zero (numpy's ``round`` goes to even). ``x - trunc(x)`` is
    exact in any float type, unlike ``floor(|x| + 0.5)``, which rounds 0.49999999999999994 up in float64."""
    x = np.asarray(x)
    t = np.trunc(x)
    with np.errstate(invalid="ignore"):  # inf - inf: an infinite x stays infinite
        return t + np.sign(x) * (np.abs(x - t) >= 0.5)


def affine_quantize(x: np.ndarray, s: float, z: int, dtype: DType = DType.INT8) -> np.ndarray:
    """float -> ``dtype`` as TFLite's AffineQuantize: ``x / scale`` in float32, rounded half away from zero (in
    float64, where ``|x| + 0.5`` is exact), plus the zero point, clamped to the type's range."""
    lo, hi = dtype.int_range
    with np.errstate(over="ignore"):  # a tiny scale overflows to +-inf, which the clamp saturates as intended
        q = (np.asarray(x, dtype=np.float32) / np.float32(s)).astype(np.float64)
    q = round_half_away(q) + z
    return np.clip(q, lo, hi).astype(dtype.np)


def dequantize(q: np.ndarray, s: float, z: int) -> np.ndarray:
    """Integers as real values, in float64 (for measuring errors; the model's own DEQUANTIZE is float32)."""
    return (np.asarray(q, dtype=np.float64) - z) * s


def mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared difference, in float64."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    return float(np.mean(d * d)) if d.size else 0.0


def weight_scales(w: np.ndarray, axis: int, per_channel: bool, bias: np.ndarray, s_in: float) -> np.ndarray:
    """Symmetric int8 scales (max |w| / 127) per output channel, or one for the tensor. A channel of zeros gets
    the median scale of the others (1/127 when all are zero), so that its multiplier stays ordinary; a scale is
    raised where the bias would not fit int32 at scale ``s_in * s_w``."""
    if per_channel:
        red = tuple(a for a in range(w.ndim) if a != axis)
        m = np.abs(w).max(axis=red) if w.size else np.zeros(w.shape[axis])
    else:
        m = np.array([np.abs(w).max(initial=0.0)])
    s = m / 127.0
    nonzero = s[s > 0]
    s = np.where(s > 0, s, float(np.median(nonzero)) if nonzero.size else 1.0 / 127.0)
    need = np.abs(bias) / (float(s_in) * (INT32_MAX - 1024))
    s = np.maximum(s, need.max(initial=0.0) if not per_channel else need)
    return s.astype(np.float32)


def quantize_symmetric(w: np.ndarray, s: np.ndarray, axis: int) -> np.ndarray:
    """Weights as int8 in [-127, 127] with per-channel scales ``s`` along ``axis``."""
    q = round_half_away(w / expand(s.astype(np.float64), axis, w.ndim))
    return np.clip(q, -127, 127).astype(np.int8)


def readonly(a: np.ndarray) -> np.ndarray:
    """A contiguous read-only copy view: the IR's constants are immutable."""
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


def symmetric16_scale(lo: float, hi: float) -> float:
    """The int16 activation scale of a range: symmetric, ``max(|lo|, |hi|) / 32767`` as float32 (TFLite's 16x8
    converter takes the min/max range), at least ``MIN_WIDTH16 / 32767``; zero point 0."""
    m = max(abs(float(lo)), abs(float(hi)), MIN_WIDTH16)
    return float(np.float32(m / INT16_MAX))


def clipped_fraction16(values: np.ndarray, scale: float) -> float:
    """Fraction of ``values`` that quantize outside [-32768, 32767] at ``scale`` (zero point 0)."""
    flat = np.asarray(values).reshape(-1)
    if flat.size == 0:
        return 0.0
    with np.errstate(over="ignore", invalid="ignore"):
        q = round_half_away((flat.astype(np.float32) / np.float32(scale)).astype(np.float64))
    return int(np.count_nonzero((q < -INT16_MAX - 1) | (q > INT16_MAX))) / flat.size
