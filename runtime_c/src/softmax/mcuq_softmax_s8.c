/* SOFTMAX int8 -> int8: TFLite 2.14's reference_ops::Softmax (see mcuq_softmax.h). */
#include "mcuq_softmax.h"
#include "../internal/mcuq_fixedpoint.h"
#include "../internal/mcuq_util.h"

#define MCUQ_SOFTMAX_SCALED_DIFF_INTEGER_BITS  5  /* exp() input format Q5.26 */
#define MCUQ_SOFTMAX_ACCUMULATION_INTEGER_BITS 12 /* sum of exps format Q12.19 */

/* exp((x - max) * beta * input_scale) in Q0.31 for a difference diff in [diff_min, 0]. */
static int32_t softmax_exp(const mcuq_softmax_params *p, int32_t diff)
{
    const int32_t rescaled =
        mcuq_multiply_by_quantized_multiplier_greater_than_one(diff, p->input_multiplier, p->input_left_shift);
    return mcuq_exp_on_negative_values(rescaled, MCUQ_SOFTMAX_SCALED_DIFF_INTEGER_BITS);
}

/* TFLite's final RoundingDivideByPOT(x, exponent). exponent is 35 - clz(sum of exps) in [23, 34]; TFLite never
 * checks it against gemmlowp's [0, 31], and for a sum >= 2^28 (exps adding up to 512 times exp(0) or more) the
 * oracle, compiled for x86-64, computes with an all-ones mask ((1ll << exponent) - 1 truncated to int32) and a
 * shift count that the CPU takes modulo 32: (x >> (exponent - 32)) + (x >= 0). We reproduce it bit for bit. */
static int32_t softmax_final_shift(int32_t x, int32_t exponent)
{
    if (exponent <= 31) {
        return mcuq_rounding_divide_by_pot(x, exponent);
    }
    return (x >> (exponent - 32)) + (x >= 0 ? 1 : 0);
}

/* input and output [outer_size][depth], row-major; output scale 1/256, zero point -128. */
mcuq_status mcuq_softmax_s8(const mcuq_softmax_params *params, const int8_t *input, int8_t *output)
{
    if (params == NULL || input == NULL || output == NULL) {
        return MCUQ_ERR_ARGUMENT;
    }
    if (params->outer_size < 1 || params->input_left_shift < 0 || params->input_left_shift > 31 ||
        params->diff_min > 0) {
        return MCUQ_ERR_ARGUMENT;
    }
    /* depth in [1, MCUQ_SOFTMAX_MAX_DEPTH], in one unsigned comparison on the success path; a longer row is valid
     * but beyond this kernel (its int32 sum of exps could overflow). */
    if ((uint32_t)params->depth - 1u >= (uint32_t)MCUQ_SOFTMAX_MAX_DEPTH) {
        return params->depth < 1 ? MCUQ_ERR_ARGUMENT : MCUQ_ERR_UNSUPPORTED;
    }
    for (int32_t row = 0; row < params->outer_size; ++row) {
        const int8_t *in = input + (size_t)row * (size_t)params->depth;
        int8_t *out = output + (size_t)row * (size_t)params->depth;
        int32_t max_in_row = -128;
        for (int32_t c = 0; c < params->depth; ++c) {
            max_in_row = MCUQ_MAX(max_in_row, (int32_t)in[c]);
        }
        int32_t sum_of_exps = 0; /* Q12.19; <= depth * 2^19 < 2^31 */
        for (int32_t c = 0; c < params->depth; ++c) {
            const int32_t diff = (int32_t)in[c] - max_in_row;
            if (diff >= params->diff_min) {
                /* gemmlowp's Rescale from Q0.31 to Q12.19 */
                sum_of_exps +=
                    mcuq_rounding_divide_by_pot(softmax_exp(params, diff), MCUQ_SOFTMAX_ACCUMULATION_INTEGER_BITS);
            }
        }
        /* sum_of_exps >= 2^19: the row's maximum always contributes exp(0). */
        int32_t num_bits_over_unit;
        const int32_t reciprocal =
            mcuq_get_reciprocal(sum_of_exps, MCUQ_SOFTMAX_ACCUMULATION_INTEGER_BITS, &num_bits_over_unit);
        const int32_t exponent = num_bits_over_unit + 31 - 8;
        for (int32_t c = 0; c < params->depth; ++c) {
            const int32_t diff = (int32_t)in[c] - max_in_row;
            if (diff >= params->diff_min) {
                const int32_t prod = mcuq_saturating_rounding_doubling_high_mul(reciprocal, softmax_exp(params, diff));
                const int32_t unsat = softmax_final_shift(prod, exponent);
                out[c] = (int8_t)MCUQ_CLAMP(unsat - 128, -128, 127);
            } else {
                out[c] = -128;
            }
        }
    }
    return MCUQ_OK;
}
