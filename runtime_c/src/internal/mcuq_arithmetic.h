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

/* Nonzero when a shift or the activation range of p is outside what the helpers below accept. */
static inline int32_t mcuq_arithmetic_params_invalid(const mcuq_add_params *p)
{
    return p->left_shift < 0 || p->left_shift > MCUQ_ADD_MAX_LEFT_SHIFT || p->input1_shift < -31 ||
           p->input1_shift > 0 || p->input2_shift < -31 || p->input2_shift > 0 || p->output_shift < -31 ||
           p->output_shift > 0 || p->activation.min > p->activation.max;
}

/* One input on the common scale: (x - zp) * 2^left_shift * multiplier * 2^shift (shift <= 0). |x - zp| <= 255 and
 * left_shift <= MCUQ_ADD_MAX_LEFT_SHIFT, so the shifted value stays below 2^28 in magnitude, and so does the
 * result. */
static inline int32_t mcuq_arithmetic_input(int8_t x, int32_t zp, int32_t left_shift, int32_t multiplier, int32_t shift)
{
    const int32_t shifted = (x - zp) * ((int32_t)1 << left_shift);
    return mcuq_multiply_by_quantized_multiplier_smaller_than_one_exp(shifted, multiplier, shift);
}

/* The combined value (below 2^29 in magnitude) on the output scale, offset by output_zp and clamped. */
static inline int8_t mcuq_arithmetic_output(const mcuq_add_params *p, int32_t combined)
{
    const int32_t raw =
        mcuq_multiply_by_quantized_multiplier_smaller_than_one_exp(combined, p->output_multiplier, p->output_shift) +
        p->output_zp;
    return (int8_t)MCUQ_CLAMP(raw, p->activation.min, p->activation.max);
}

#endif /* MCUQ_ARITHMETIC_H */
