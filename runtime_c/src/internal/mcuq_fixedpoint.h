/* Fixed-point helpers with TFLite's exact semantics (gemmlowp double rounding).
 *
 * Names mirror TFLite's and mcuq/quant/fixedpoint.py, which is the numpy mirror of this file:
 *   SaturatingRoundingDoublingHighMul -> mcuq_saturating_rounding_doubling_high_mul
 *   RoundingDivideByPOT               -> mcuq_rounding_divide_by_pot
 *   MultiplyByQuantizedMultiplier     -> mcuq_multiply_by_quantized_multiplier
 */
#ifndef MCUQ_FIXEDPOINT_H
#define MCUQ_FIXEDPOINT_H

#include <stdint.h>

/* round((a * b) / 2^31), saturating the single overflow case a == b == INT32_MIN to INT32_MAX.
 * Ties are rounded away from zero (gemmlowp's nudge, then C division truncating toward zero). */
static inline int32_t mcuq_saturating_rounding_doubling_high_mul(int32_t a, int32_t b)
{
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    const int64_t ab = (int64_t)a * (int64_t)b;
    const int64_t nudge = ab >= 0 ? (INT64_C(1) << 30) : (INT64_C(1) - (INT64_C(1) << 30));
    return (int32_t)((ab + nudge) / (INT64_C(1) << 31));
}

/* x / 2^exponent rounded to nearest, ties away from zero; exponent in [0, 31]. */
static inline int32_t mcuq_rounding_divide_by_pot(int32_t x, int32_t exponent)
{
    const int32_t mask = (int32_t)((UINT32_C(1) << exponent) - 1u);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    /* Arithmetic right shift of a negative value: implementation-defined in C99, arithmetic in GCC and Clang. */
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* Multiplies x by the real number quantized_multiplier * 2^(shift - 31), as TFLite does:
 * a saturating left shift for shift > 0 (wrapping like TFLite's int32 multiply; the compiler proves at
 * compile time that it cannot overflow for the values it generates), then the doubling high multiply, then a
 * rounding right shift for shift < 0. shift in [-31, 30]. */
static inline int32_t mcuq_multiply_by_quantized_multiplier(int32_t x, int32_t quantized_multiplier, int32_t shift)
{
    const int32_t left_shift = shift > 0 ? shift : 0;
    const int32_t right_shift = shift > 0 ? 0 : -shift;
    const int32_t shifted = (int32_t)((uint32_t)x << left_shift);
    return mcuq_rounding_divide_by_pot(mcuq_saturating_rounding_doubling_high_mul(shifted, quantized_multiplier),
                                       right_shift);
}

/* TFLite's MultiplyByQuantizedMultiplier(int64_t, int32_t, int), the requantization of its 16x8 kernels (int64
 * accumulators): the multiplier is reduced to 16 bits, (q + 2^15) >> 16 (0x7FFF from 0x7FFF0000 up), then
 * (x * reduced + 2^(14 - shift)) >> (15 - shift), one rounding, ties toward +infinity; the result is truncated to
 * int32 as TFLite's is. x in (-2^48, 2^48) (TFLite assumes 2^47), quantized_multiplier >= 0, shift in [-31, 14].
 * The arithmetic is done on uint64_t, so no input is undefined behaviour. */
static inline int32_t mcuq_multiply_by_quantized_multiplier_s64(int64_t x, int32_t quantized_multiplier, int32_t shift)
{
    const int32_t reduced = quantized_multiplier < 0x7FFF0000 ? (quantized_multiplier + (1 << 15)) >> 16 : 0x7FFF;
    const int32_t total_shift = 15 - shift;
    const uint64_t sum = (uint64_t)x * (uint64_t)(int64_t)reduced + (UINT64_C(1) << (total_shift - 1));
    /* Converting to int64_t (modulo 2^64) and shifting right arithmetically: implementation-defined in C99,
     * two's complement and arithmetic in GCC and Clang, as everywhere in this file. */
    return (int32_t)(uint32_t)(uint64_t)((int64_t)sum >> total_shift);
}

/* TFLite's MultiplyByQuantizedMultiplierSmallerThanOneExp: left_shift <= 0. */
static inline int32_t
mcuq_multiply_by_quantized_multiplier_smaller_than_one_exp(int32_t x, int32_t quantized_multiplier, int32_t left_shift)
{
    return mcuq_rounding_divide_by_pot(mcuq_saturating_rounding_doubling_high_mul(x, quantized_multiplier),
                                       -left_shift);
}

/* TFLite's MultiplyByQuantizedMultiplierGreaterThanOne: left_shift >= 0. */
static inline int32_t mcuq_multiply_by_quantized_multiplier_greater_than_one(int32_t x, int32_t quantized_multiplier,
                                                                             int32_t left_shift)
{
    return mcuq_saturating_rounding_doubling_high_mul((int32_t)((uint32_t)x << left_shift), quantized_multiplier);
}

/* ------------------------------------------------------------------------------------------------------------
 * softmax section: gemmlowp fixed-point helpers used by TFLite's int8 reference Softmax and its GetReciprocal,
 * mirrored name for name by the "softmax section" of mcuq/quant/fixedpoint.py. A raw int32 x of a
 * Q(k).(31-k) number means x / 2^(31-k). The plain additions below cannot overflow on the value ranges these
 * functions receive (gemmlowp relies on the same bounds).
 * ------------------------------------------------------------------------------------------------------------ */

/* gemmlowp's SaturatingRoundingMultiplyByPOT<exponent>: x * 2^exponent, saturating for exponent > 0,
 * rounding (mcuq_rounding_divide_by_pot) for exponent < 0. exponent in [-31, 30]. */
static inline int32_t mcuq_saturating_rounding_multiply_by_pot(int32_t x, int32_t exponent)
{
    if (exponent < 0) {
        return mcuq_rounding_divide_by_pot(x, -exponent);
    }
    if (exponent == 0) {
        return x;
    }
    {
        const int32_t threshold = (int32_t)((UINT32_C(1) << (31 - exponent)) - 1u);
        if (x > threshold) {
            return INT32_MAX;
        }
        if (x < -threshold) {
            return INT32_MIN;
        }
        return (int32_t)((uint32_t)x << exponent);
    }
}

/* gemmlowp's RoundingHalfSum: (a + b) / 2, ties away from zero, computed in 64 bits. */
static inline int32_t mcuq_rounding_half_sum(int32_t a, int32_t b)
{
    const int64_t sum = (int64_t)a + (int64_t)b;
    const int64_t sign = sum >= 0 ? 1 : -1;
    return (int32_t)((sum + sign) / 2);
}

/* exp(a) for a Q0.31 raw a in [-1/4, 0): gemmlowp's Taylor expansion around -1/8. Returns Q0.31. */
static inline int32_t mcuq_exp_on_interval_between_negative_one_quarter_and_0_excl(int32_t a)
{
    const int32_t constant_term = 1895147668;    /* exp(-1/8), Q0.31 */
    const int32_t constant_1_over_3 = 715827883; /* 1/3, Q0.31 */
    const int32_t x = a + (INT32_C(1) << 28);    /* a + 1/8, in [-1/8, 1/8) */
    const int32_t x2 = mcuq_saturating_rounding_doubling_high_mul(x, x);
    const int32_t x3 = mcuq_saturating_rounding_doubling_high_mul(x2, x);
    const int32_t x4 = mcuq_saturating_rounding_doubling_high_mul(x2, x2);
    const int32_t x4_over_4 = mcuq_saturating_rounding_multiply_by_pot(x4, -2);
    const int32_t poly = mcuq_saturating_rounding_multiply_by_pot(
        mcuq_saturating_rounding_doubling_high_mul(x4_over_4 + x3, constant_1_over_3) + x2, -1);
    return constant_term + mcuq_saturating_rounding_doubling_high_mul(constant_term, x + poly);
}

/* gemmlowp's exp_on_negative_values: a is the raw value of a Q(integer_bits) number <= 0, integer_bits in
 * [0, 29]; returns exp(a) in Q0.31 (INT32_MAX for a == 0). */
static inline int32_t mcuq_exp_on_negative_values(int32_t a, int32_t integer_bits)
{
    static const int32_t barrel[7] = {1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242};
    const int32_t fractional_bits = 31 - integer_bits;
    const int32_t one_quarter = INT32_C(1) << (fractional_bits - 2);
    const int32_t a_mod_quarter_minus_one_quarter = (a & (one_quarter - 1)) - one_quarter;
    int32_t result = mcuq_exp_on_interval_between_negative_one_quarter_and_0_excl(
        mcuq_saturating_rounding_multiply_by_pot(a_mod_quarter_minus_one_quarter, integer_bits));
    /* The multiple of 1/4 that a lies below its rounded-up quarter by: non-negative, < 2^31; one bit per factor. */
    const uint32_t remainder = (uint32_t)a_mod_quarter_minus_one_quarter - (uint32_t)a;
    int32_t exponent;
    for (exponent = -2; exponent <= 4; ++exponent) {
        if (integer_bits > exponent && (remainder & (UINT32_C(1) << (fractional_bits + exponent))) != 0u) {
            result = mcuq_saturating_rounding_doubling_high_mul(result, barrel[exponent + 2]);
        }
    }
    if (integer_bits > 5 && a < -(INT32_C(1) << (36 - integer_bits))) { /* below -32: exp underflows to 0 */
        result = 0;
    }
    return a == 0 ? INT32_MAX : result;
}

/* gemmlowp's one_over_one_plus_x_for_x_in_0_1: 1 / (1 + a) for a Q0.31 raw a in [0, 1), by three
 * Newton-Raphson steps in Q2.29. Returns Q0.31. */
static inline int32_t mcuq_one_over_one_plus_x_for_x_in_0_1(int32_t a)
{
    const int32_t half_denominator = mcuq_rounding_half_sum(a, INT32_MAX);
    const int32_t constant_48_over_17 = 1515870810;      /* Q2.29 */
    const int32_t constant_neg_32_over_17 = -1010580540; /* Q2.29 */
    int32_t x =
        constant_48_over_17 + mcuq_saturating_rounding_doubling_high_mul(half_denominator, constant_neg_32_over_17);
    int i;
    for (i = 0; i < 3; ++i) {
        const int32_t half_denominator_times_x = mcuq_saturating_rounding_doubling_high_mul(half_denominator, x);
        const int32_t one_minus_half_denominator_times_x = (INT32_C(1) << 29) - half_denominator_times_x;
        x = x + mcuq_saturating_rounding_multiply_by_pot(
                    mcuq_saturating_rounding_doubling_high_mul(x, one_minus_half_denominator_times_x), 2);
    }
    return mcuq_saturating_rounding_multiply_by_pot(x, 1);
}

/* Leading zero bits of x (32 for 0). */
static inline int32_t mcuq_count_leading_zeros(uint32_t x)
{
    int32_t n = 0;
    if (x == 0u) {
        return 32;
    }
    while ((x & UINT32_C(0x80000000)) == 0u) {
        x <<= 1;
        ++n;
    }
    return n;
}

/* TFLite's GetReciprocal: for x > 0, the raw value of a Q(x_integer_digits) number X, returns the Q0.31 raw
 * value r and *num_bits_over_unit such that 1/X = (r / 2^31) / 2^(*num_bits_over_unit). */
static inline int32_t mcuq_get_reciprocal(int32_t x, int32_t x_integer_digits, int32_t *num_bits_over_unit)
{
    const int32_t headroom_plus_one = mcuq_count_leading_zeros((uint32_t)x);
    const int32_t shifted_sum_minus_one = (int32_t)(((uint32_t)x << headroom_plus_one) - (UINT32_C(1) << 31));
    *num_bits_over_unit = x_integer_digits - headroom_plus_one;
    return mcuq_one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one);
}
/* ------------------------------------------------------------------------------------------------------------
 * end of softmax section
 * ------------------------------------------------------------------------------------------------------------ */

#endif /* MCUQ_FIXEDPOINT_H */
