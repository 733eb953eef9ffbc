/* ADD's int8 rescaling (TFLite's ArithmeticParams, 8-bit path): internal to the runtime.
 *
 * Each input is moved to a common scale with left_shift extra bits, the two are combined (ADD: summed), and the
 * result is moved to the output scale. A kernel that combines them otherwise (SUB: scaled1 - scaled2, as TFLite's
 * SubFunc) takes the same mcuq_add_params and these helpers.
 */
#ifndef MCUQ_ARITHMETIC_H
#define MCUQ_ARITHMETIC_H

#include "mcuq_elementwise.h"
#include "mcuq_fixedpoint.h"
#include "mcuq_util.h"

/* The argument checks of ADD and SUB: MCUQ_ERR_ARGUMENT for a NULL pointer, or a shift or activation range
 * outside what the helpers below accept. */
static inline mcuq_status mcuq_arithmetic_check(const mcuq_add_params *p, const int8_t *input1, const int8_t *input2,
                                                const int8_t *output)
{
    if (p == NULL || input1 == NULL || input2 == NULL || output == NULL) {
        return MCUQ_ERR_ARGUMENT;
    }
    if (p->left_shift < 0 || p->left_shift > MCUQ_ADD_MAX_LEFT_SHIFT || p->input1_shift < -31 || p->input1_shift > 0 ||
        p->input2_shift < -31 || p->input2_shift > 0 || p->output_shift < -31 || p->output_shift > 0 ||
        p->activation.min > p->activation.max) {
        return MCUQ_ERR_ARGUMENT;
    }
    return MCUQ_OK;
}

/* One input on the common scale: (x - zp) * 2^left_shift * multiplier * 2^shift (shift <= 0). |x - zp| <= 255 and
 * left_shift <= MCUQ_ADD_MAX_LEFT_SHIFT, so the shifted value stays below 2^28 in magnitude, and so does the
 * result. */
static inline int32_t mcuq_arithmetic_input(int8_t x, int32_t zp, int32_t left_shift, int32_t multiplier, int32_t shift)
{
    const int32_t shifted = (x - zp) * ((int32_t)1 << left_shift);
    return mcuq_multiply_by_quantized_multiplier_smaller_than_one_exp(shifted, multiplier, shift);
}

/* input1 on the common scale (ADD and SUB combine it with mcuq_arithmetic_input2). */
static inline int32_t mcuq_arithmetic_input1(const mcuq_add_params *p, int8_t x)
{
    return mcuq_arithmetic_input(x, p->input1_zp, p->left_shift, p->input1_multiplier, p->input1_shift);
}

static inline int32_t mcuq_arithmetic_input2(const mcuq_add_params *p, int8_t x)
{
    return mcuq_arithmetic_input(x, p->input2_zp, p->left_shift, p->input2_multiplier, p->input2_shift);
}

/* The combined value (below 2^29 in magnitude) on the output scale, offset by output_zp and clamped. */
static inline int8_t mcuq_arithmetic_output(const mcuq_add_params *p, int32_t combined)
{
    const int32_t raw =
        mcuq_multiply_by_quantized_multiplier_smaller_than_one_exp(combined, p->output_multiplier, p->output_shift) +
        p->output_zp;
    return (int8_t)MCUQ_CLAMP(raw, p->activation.min, p->activation.max);
}

/* The argument checks of the fast same-shape ADD/SUB kernels (mcuq_add_s8_dsp, mcuq_add_s8_mve; see
 * mcuq_elementwise.h): MCUQ_ERR_ARGUMENT for a NULL pointer or table, a negative size, an output shift outside
 * [-31, 0], a negative multiplier, a zero point or activation bound outside int8 or an empty activation range. */
static inline mcuq_status mcuq_add_fast_check(const mcuq_add_fast_params *p, const int8_t *input1, const int8_t *input2,
                                              const int8_t *output)
{
    if (p == NULL || input1 == NULL || input2 == NULL || output == NULL || p->input1_table == NULL ||
        p->input2_table == NULL) {
        return MCUQ_ERR_ARGUMENT;
    }
    if (p->size < 0 || p->output_shift < -31 || p->output_shift > 0 || p->output_multiplier < 0 ||
        p->output_zp < -128 || p->output_zp > 127 || p->activation.min < -128 || p->activation.max > 127 ||
        p->activation.min > p->activation.max) {
        return MCUQ_ERR_ARGUMENT;
    }
    return MCUQ_OK;
}

#endif /* MCUQ_ARITHMETIC_H */
