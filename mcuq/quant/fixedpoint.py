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


def multiply_by_quantized_multiplier(x, quantized_multiplier, shift) -> np.ndarray:
    x = _i64(x)
    shift = _i64(shift)
    left_shift = np.where(shift > 0, shift, 0)
    right_shift = np.where(shift > 0, 0, -shift)
    shifted = _wrap32(x << left_shift)
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted, quantized_multiplier), right_shift)


def multiply_by_quantized_multiplier_s64(x, quantized_multiplier, shift) -> np.ndarray:
    """TFLite's MultiplyByQuantizedMultiplier(int64_t x, int32_t, int) (the 16x8 kernels' requantization): the
    multiplier is first reduced to 16 bits, ``(q + 2^15) >> 16`` (0x7FFF from 0x7FFF0000 up), then
    ``(x * reduced + 2^(14 - shift)) >> (15 - shift)`` in int64, single rounding (ties toward +inf), truncated to
    int32 like TFLite's return value. TFLite assumes |x| < 2^47 and shift in [-31, 7]; the kernels allow shift up to
    14 (``15 - shift >= 1``). Mirrors ``mcuq_multiply_by_quantized_multiplier_s64``."""
    x = _i64(x)
    q = _i64(quantized_multiplier)
    shift = _i64(shift)
    if np.any((shift < -31) | (shift > 14)):
        raise ValueError("multiply_by_quantized_multiplier_s64: shift out of [-31, 14]")
    reduced = np.where(q < 0x7FFF0000, (q + (1 << 15)) >> 16, 0x7FFF)
    total_shift = 15 - shift
    with np.errstate(over="ignore"):  # the product wraps modulo 2^64 exactly like the C's uint64_t arithmetic
        r = (x * reduced + (np.int64(1) << (total_shift - 1))) >> total_shift
    return _wrap32(r)


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


# ---------------------------------------------------------------------------------------------------------------
# softmax section: gemmlowp fixed-point helpers used by TFLite's int8 reference Softmax (reference_ops::Softmax)
# and its GetReciprocal, mirrored name for name by the "softmax section" of runtime_c/include/mcuq_fixedpoint.h.
# A raw int32 value x of a Q(k).(31-k) number means x / 2^(31-k). gemmlowp's plain FixedPoint additions cannot
# overflow on the value ranges these functions see; they are wrapped to int32 here like the C int32 adds.
# ---------------------------------------------------------------------------------------------------------------


def saturating_rounding_multiply_by_pot(x, exponent: int) -> np.ndarray:
    """gemmlowp's SaturatingRoundingMultiplyByPOT<exponent>: x * 2^exponent, saturating left / rounding right."""
    x = _i64(x)
    if exponent == 0:
        return x
    if exponent < 0:
        return rounding_divide_by_pot(x, -exponent)
    threshold = (1 << (31 - exponent)) - 1
    shifted = _wrap32(x << exponent)
    return np.where(x > threshold, INT32_MAX, np.where(x < -threshold, INT32_MIN, shifted))


def rounding_half_sum(a, b) -> np.ndarray:
    """gemmlowp's RoundingHalfSum for int32: (a + b) / 2 rounded half away from zero."""
    s = _i64(a) + _i64(b)
    t = s + np.where(s >= 0, 1, -1)
    return np.where(t >= 0, t // 2, -((-t) // 2))


def exp_on_interval_between_negative_one_quarter_and_0_excl(a) -> np.ndarray:
    """exp(a) for a Q0.31 raw value a in [-1/4, 0): Taylor series around -1/8 (gemmlowp), result Q0.31."""
    constant_term = 1895147668  # exp(-1/8) in Q0.31
    constant_1_over_3 = 715827883
    x = _wrap32(_i64(a) + (1 << 28))
    x2 = saturating_rounding_doubling_high_mul(x, x)
    x3 = saturating_rounding_doubling_high_mul(x2, x)
    x4 = saturating_rounding_doubling_high_mul(x2, x2)
    x4_over_4 = saturating_rounding_multiply_by_pot(x4, -2)
    inner = _wrap32(saturating_rounding_doubling_high_mul(_wrap32(x4_over_4 + x3), constant_1_over_3) + x2)
    poly = saturating_rounding_multiply_by_pot(inner, -1)
    return _wrap32(constant_term + saturating_rounding_doubling_high_mul(constant_term, _wrap32(x + poly)))


_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308), (2, 39332535), (3, 720401), (4, 242))


def exp_on_negative_values(a, integer_bits: int) -> np.ndarray:
    """gemmlowp's exp_on_negative_values: a is a Q(integer_bits) raw value <= 0; returns exp(a) in Q0.31."""
    a = _i64(a)
    fractional_bits = 31 - integer_bits
    one_quarter = 1 << (fractional_bits - 2)
    mask = one_quarter - 1
    a_mod_quarter_minus_one_quarter = (a & mask) - one_quarter
    result = exp_on_interval_between_negative_one_quarter_and_0_excl(
        saturating_rounding_multiply_by_pot(a_mod_quarter_minus_one_quarter, integer_bits)
    )
    remainder = _wrap32(a_mod_quarter_minus_one_quarter - a)
    for exponent, multiplier in _EXP_BARREL:
        if integer_bits > exponent:
            bit = np.int64(1) << (fractional_bits + exponent)
            result = np.where((remainder & bit) != 0, saturating_rounding_doubling_high_mul(result, multiplier), result)
    if integer_bits > 5:
        clamp = -(1 << (36 - integer_bits))  # -32.0
        result = np.where(a < clamp, 0, result)
    return np.where(a == 0, INT32_MAX, result)


def one_over_one_plus_x_for_x_in_0_1(a) -> np.ndarray:
    """gemmlowp's 1 / (1 + a) for a Q0.31 raw a in [0, 1): Newton-Raphson in Q2.29; result Q0.31."""
    half_denominator = rounding_half_sum(a, INT32_MAX)
    constant_48_over_17 = 1515870810
    constant_neg_32_over_17 = -1010580540
    x = _wrap32(constant_48_over_17 + saturating_rounding_doubling_high_mul(half_denominator, constant_neg_32_over_17))
    for _ in range(3):
        half_denominator_times_x = saturating_rounding_doubling_high_mul(half_denominator, x)
        one_minus = _wrap32((1 << 29) - half_denominator_times_x)
        x = _wrap32(x + saturating_rounding_multiply_by_pot(saturating_rounding_doubling_high_mul(x, one_minus), 2))
    return saturating_rounding_multiply_by_pot(x, 1)


def count_leading_zeros(x) -> np.ndarray:
    """Leading zero bits of x as a uint32 (32 for 0)."""
    x = _i64(x) & 0xFFFFFFFF
    n = np.zeros_like(x)
    for b in (16, 8, 4, 2, 1):
        small = x < (np.int64(1) << (32 - b))
        n = np.where(small, n + b, n)
        x = np.where(small, x << b, x)
    return np.where(x == 0, 32, n)


def get_reciprocal(x, x_integer_digits: int) -> tuple[np.ndarray, np.ndarray]:
    """TFLite's GetReciprocal: for x > 0, the raw value of a Q(x_integer_digits) number X, returns (r, bits) with
    1/X = (r / 2^31) / 2^bits, r the raw value of a Q0.31 number."""
    x = _i64(x)
    headroom_plus_one = count_leading_zeros(x)
    num_bits_over_unit = x_integer_digits - headroom_plus_one
    shifted_sum_minus_one = _wrap32(((x << headroom_plus_one) & 0xFFFFFFFF) - (1 << 31))
    return one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one), num_bits_over_unit
