/* Fixed-point helpers with TFLite's exact semantics (gemmlowp double rounding).
 *
 * Names mirror TFLite's and mcuq/quantize/fixedpoint.py, which is the numpy mirror of this file:
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

/* x * 2^(-exponent) with gemmlowp's rounding, exponent in [0, 31]; named after gemmlowp. */
#define mcuq_rounding_shift_right mcuq_rounding_divide_by_pot

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

/* TFLite's MultiplyByQuantizedMultiplierSmallerThanOneExp: left_shift <= 0. */
static inline int32_t mcuq_multiply_by_quantized_multiplier_smaller_than_one_exp(int32_t x,
                                                                                  int32_t quantized_multiplier,
                                                                                  int32_t left_shift)
{
    return mcuq_rounding_divide_by_pot(mcuq_saturating_rounding_doubling_high_mul(x, quantized_multiplier),
                                       -left_shift);
}

/* TFLite's MultiplyByQuantizedMultiplierGreaterThanOne: left_shift >= 0. */
static inline int32_t mcuq_multiply_by_quantized_multiplier_greater_than_one(int32_t x,
                                                                              int32_t quantized_multiplier,
                                                                              int32_t left_shift)
{
    return mcuq_saturating_rounding_doubling_high_mul((int32_t)((uint32_t)x << left_shift), quantized_multiplier);
}

#endif /* MCUQ_FIXEDPOINT_H */
