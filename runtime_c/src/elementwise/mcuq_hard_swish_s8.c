/* HARD_SWISH, int8: TFLite's reference_ops::HardSwish (16-bit fixed point); see mcuq_elementwise.h.
 *
 * The 16-bit helpers below are gemmlowp's int16 specialisations (and TFLite's SaturatingLeftShift and
 * SaturatingDoublingHighMul), private to this kernel; mcuq/reference/activations.py mirrors them by name. */
#include "mcuq_elementwise.h"
#include "../internal/mcuq_util.h"

/* gemmlowp::SaturatingRoundingDoublingHighMul<int16_t>. */
static int16_t saturating_rounding_doubling_high_mul_s16(int16_t a, int16_t b)
{
    if (a == INT16_MIN && b == INT16_MIN) {
        return INT16_MAX;
    }
    const int32_t ab = (int32_t)a * (int32_t)b;
    const int32_t nudge = ab >= 0 ? (1 << 14) : (1 - (1 << 14));
    return (int16_t)((ab + nudge) / (1 << 15));
}

/* TFLite's SaturatingDoublingHighMul: like the above but truncating toward zero (ARM's SQDMULH). */
static int16_t saturating_doubling_high_mul_s16(int16_t a, int16_t b)
{
    if (a == INT16_MIN && b == INT16_MIN) {
        return INT16_MAX;
    }
    return (int16_t)(((int32_t)a * (int32_t)b) / (1 << 15));
}

/* gemmlowp::RoundingDivideByPOT<int16_t>, exponent in [0, 31]. The mask is computed in 64 bits and truncated to
 * 16 bits as gemmlowp does, so exponents >= 16 give a mask of -1. */
static int16_t rounding_divide_by_pot_s16(int16_t x, int32_t exponent)
{
    const int32_t mask = exponent >= 16 ? -1 : (int32_t)((INT32_C(1) << exponent) - 1);
    const int32_t remainder = (int32_t)x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    /* Arithmetic right shift of a negative value: implementation-defined in C99, arithmetic in GCC and Clang. */
    return (int16_t)(((int32_t)x >> exponent) + (remainder > threshold ? 1 : 0));
}

/* TFLite's SaturatingLeftShift: value * 2^amount saturated to int16, amount in [0, 30]. */
static int16_t saturating_left_shift_s16(int16_t value, int32_t amount)
{
    const int64_t r = (int64_t)value * ((int64_t)1 << amount);
    return (int16_t)(r > INT16_MAX ? INT16_MAX : (r < INT16_MIN ? INT16_MIN : r));
}

mcuq_status mcuq_hard_swish_s8(const mcuq_hard_swish_params *params, const int8_t *input, int8_t *output)
{
    if (params == NULL || input == NULL || output == NULL) {
        return MCUQ_ERR_ARGUMENT;
    }
    const mcuq_hard_swish_params p = *params;
    if (p.size < 0 || p.output_multiplier_exponent < -31 || p.output_multiplier_exponent > 0 ||
        p.reluish_multiplier_exponent < -31 || p.reluish_multiplier_exponent > 31 ||
        p.output_multiplier_fixedpoint_int16 < 0 || p.output_multiplier_fixedpoint_int16 > INT16_MAX ||
        p.reluish_multiplier_fixedpoint_int16 < 0 || p.reluish_multiplier_fixedpoint_int16 > INT16_MAX) {
        return MCUQ_ERR_ARGUMENT;
    }
    const int16_t output_multiplier = (int16_t)p.output_multiplier_fixedpoint_int16;
    const int16_t reluish_multiplier = (int16_t)p.reluish_multiplier_fixedpoint_int16;
    const int32_t reluish_exponent = p.reluish_multiplier_exponent;
    for (int32_t i = 0; i < p.size; ++i) {
        /* |x - zp| <= 255, so the value on the "hires" scale (x 128) still fits 16 bits. */
        const int16_t hires = (int16_t)((input[i] - p.input_zp) * (1 << 7));
        const int16_t preshift_output = saturating_rounding_doubling_high_mul_s16(hires, output_multiplier);
        /* "reluish" value: x rescaled so that 3.0 maps to 32768 (saturating), a left shift done as
         * (exponent - 1) before and 1 after the multiplication, as TFLite does. */
        int16_t reluish = hires;
        if (reluish_exponent > 0) {
            reluish = saturating_left_shift_s16(reluish, reluish_exponent - 1);
        }
        reluish = saturating_rounding_doubling_high_mul_s16(reluish, reluish_multiplier);
        if (reluish_exponent > 0) {
            reluish = saturating_left_shift_s16(reluish, 1);
        }
        if (reluish_exponent < 0) {
            reluish = rounding_divide_by_pot_s16(reluish, -reluish_exponent);
        }
        /* [-1, 1] -> [0, 1] in Q0.15. */
        reluish = (int16_t)((reluish + (1 << 15)) >> 1);
        const int16_t preshift = saturating_doubling_high_mul_s16(reluish, preshift_output);
        /* TFLite adds the zero point in int16 (wrapping), then clamps to the int8 range. */
        const int16_t out =
            (int16_t)(rounding_divide_by_pot_s16(preshift, -p.output_multiplier_exponent) + p.output_zp);
        output[i] = (int8_t)MCUQ_CLAMP(out, INT8_MIN, INT8_MAX);
    }
    return MCUQ_OK;
}
