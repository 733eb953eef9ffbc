/* ADD's and SUB's int16 rescaling (TFLite's ArithmeticParams, general int16 path of add.cc / sub.cc): internal to
 * the runtime. As mcuq_arithmetic.h for int8, with int16 operands and a left shift of at most
 * MCUQ_ADD_S16_LEFT_SHIFT (15): |x - zp| <= 65535, so (x - zp) << 15 stays below 2^31.
 */
#ifndef MCUQ_ARITHMETIC_S16_H
#define MCUQ_ARITHMETIC_S16_H

#include "mcuq_elementwise.h"
#include "mcuq_fixedpoint.h"
#include "mcuq_util.h"

/* The argument checks of mcuq_add_s16 and mcuq_sub_s16: MCUQ_ERR_ARGUMENT for a NULL pointer, a zero point or
 * activation bound outside int16, a shift outside its range or an empty activation range. */
static inline mcuq_status mcuq_arithmetic_s16_check(const mcuq_add_params *p, const int16_t *input1,
                                                    const int16_t *input2, const int16_t *output)
{
    if (p == NULL || input1 == NULL || input2 == NULL || output == NULL) {
        return MCUQ_ERR_ARGUMENT;
    }
    if (p->input1_zp < INT16_MIN || p->input1_zp > INT16_MAX || p->input2_zp < INT16_MIN || p->input2_zp > INT16_MAX ||
        p->output_zp < INT16_MIN || p->output_zp > INT16_MAX) {
        return MCUQ_ERR_ARGUMENT;
    }
    if (p->left_shift < 0 || p->left_shift > MCUQ_ADD_S16_LEFT_SHIFT || p->input1_shift < -31 || p->input1_shift > 0 ||
        p->input2_shift < -31 || p->input2_shift > 0 || p->output_shift < -31 || p->output_shift > 0 ||
        p->activation.min < INT16_MIN || p->activation.max > INT16_MAX || p->activation.min > p->activation.max) {
        return MCUQ_ERR_ARGUMENT;
    }
    return MCUQ_OK;
}

/* One input on the common scale: (x - zp) * 2^left_shift * multiplier * 2^shift (shift <= 0); below 2^31 in
 * magnitude, and so is the result. */
static inline int32_t mcuq_arithmetic_s16_input(int16_t x, int32_t zp, int32_t left_shift, int32_t multiplier,
                                                int32_t shift)
{
    const int32_t shifted = (int32_t)((uint32_t)(x - zp) << left_shift);
    return mcuq_multiply_by_quantized_multiplier_smaller_than_one_exp(shifted, multiplier, shift);
}

static inline int32_t mcuq_arithmetic_s16_input1(const mcuq_add_params *p, int16_t x)
{
    return mcuq_arithmetic_s16_input(x, p->input1_zp, p->left_shift, p->input1_multiplier, p->input1_shift);
}

static inline int32_t mcuq_arithmetic_s16_input2(const mcuq_add_params *p, int16_t x)
{
    return mcuq_arithmetic_s16_input(x, p->input2_zp, p->left_shift, p->input2_multiplier, p->input2_shift);
}

/* The combined value on the output scale, offset by output_zp and clamped. The two rescaled inputs are each below
 * 2^30 in magnitude (their real multipliers are at most 1/2), so their sum or difference fits int32. */
static inline int16_t mcuq_arithmetic_s16_output(const mcuq_add_params *p, int32_t combined)
{
    const int32_t raw =
        mcuq_multiply_by_quantized_multiplier_smaller_than_one_exp(combined, p->output_multiplier, p->output_shift) +
        p->output_zp;
    return (int16_t)MCUQ_CLAMP(raw, p->activation.min, p->activation.max);
}

#endif /* MCUQ_ARITHMETIC_S16_H */
