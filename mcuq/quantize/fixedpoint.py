"""numpy mirror of runtime_c/include/mcuq_fixedpoint.h, name for name, plus TFLite's multiplier quantization.

All functions accept Python ints or numpy integer arrays and return int64 numpy values holding int32 results,
so they vectorise over whole tensors. The semantics are TFLite's (gemmlowp double rounding).
"""

from __future__ import annotations

import math

import numpy as np

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1


def _i64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.int64)


def _wrap32(x: np.ndarray) -> np.ndarray:
    """Two's complement wrap of int64 values to int32 range."""
    return ((x + 2**31) & 0xFFFFFFFF) - 2**31


def saturating_rounding_doubling_high_mul(a, b) -> np.ndarray:
    a = _i64(a)
    b = _i64(b)
    overflow = (a == INT32_MIN) & (b == INT32_MIN)
    ab = a * b  # |ab| <= 2^62: exact in int64
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    s = ab + nudge
    # C division truncates toward zero
    q = np.where(s >= 0, s >> 31, -((-s) >> 31))
    return np.where(overflow, INT32_MAX, q)


def rounding_divide_by_pot(x, exponent) -> np.ndarray:
    x = _i64(x)
    exponent = _i64(exponent)
    if np.any((exponent < 0) | (exponent > 31)):
        raise ValueError("rounding_divide_by_pot: exponent out of [0, 31]")
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0).astype(np.int64)
    return (x >> exponent) + (remainder > threshold).astype(np.int64)


rounding_shift_right = rounding_divide_by_pot


def multiply_by_quantized_multiplier(x, quantized_multiplier, shift) -> np.ndarray:
    x = _i64(x)
    shift = _i64(shift)
    left_shift = np.where(shift > 0, shift, 0)
    right_shift = np.where(shift > 0, 0, -shift)
    shifted = _wrap32(x << left_shift)
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted, quantized_multiplier), right_shift)


def multiply_by_quantized_multiplier_smaller_than_one_exp(x, quantized_multiplier, left_shift) -> np.ndarray:
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x, quantized_multiplier), -_i64(left_shift))


def multiply_by_quantized_multiplier_greater_than_one(x, quantized_multiplier, left_shift) -> np.ndarray:
    return saturating_rounding_doubling_high_mul(_wrap32(_i64(x) << _i64(left_shift)), quantized_multiplier)


def tflite_round(x: float) -> int:
    """std::round: half away from zero (Python's round() is half to even)."""
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite's QuantizeMultiplier: real = q * 2^(shift - 31) with q in [2^30, 2^31).

    Returns (0, 0) for 0 and for multipliers so small that the shift would be below -31.
    """
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = tflite_round(q * (1 << 31))
    assert abs(q_fixed) <= (1 << 31)
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift = 0
        q_fixed = 0
    return int(q_fixed), int(shift)


def quantize_multiplier_smaller_than_one_exp(real: float) -> tuple[int, int]:
    """TFLite's QuantizeMultiplierSmallerThanOneExp: requires 0 < real < 1; returns (q, left_shift <= 0)."""
    assert 0.0 < real < 1.0, real
    q, shift = quantize_multiplier(real)
    assert shift <= 0
    return q, shift


def quantize_multiplier_greater_than_one(real: float) -> tuple[int, int]:
    """TFLite's QuantizeMultiplierGreaterThanOne: requires real > 1; returns (q, left_shift >= 0)."""
    assert real > 1.0, real
    q, shift = quantize_multiplier(real)
    assert shift >= 0
    return q, shift
