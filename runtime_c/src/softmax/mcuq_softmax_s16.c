/* SOFTMAX, int16 (16x8 mode): TFLite's reference_ops::SoftmaxInt16 with the interpolation tables that SoftmaxPrepare
 * builds (computed at compile time by mcuq/lower/lut16.py); see mcuq_softmax.h. */
#include "mcuq_softmax.h"
#include "../internal/mcuq_fixedpoint.h"
#include "../internal/mcuq_util.h"

/* TFLite's int16 LUTLookup: segment 256 + (value >> 7) of a MCUQ_LUT16_SIZE-entry table, interpolated with the low
 * 7 bits and rounded; the sum wraps to int16 as TFLite's cast does. */
static int16_t lut_lookup(int16_t value, const int16_t *lut)
{
    /* Arithmetic right shift of a negative value: implementation-defined in C99, arithmetic in GCC and Clang. */
    const int32_t index = 256 + (value >> 7); /* in [0, 511] */
    const int32_t offset = value & 0x7F;
    const int32_t base = lut[index];
    const int32_t slope = (int16_t)(uint16_t)((uint32_t)lut[index + 1] - (uint32_t)base);
    const int32_t delta = (slope * offset + 64) >> 7;
    return (int16_t)(uint16_t)((uint32_t)base + (uint32_t)delta);
}

mcuq_status mcuq_softmax_s16(const mcuq_softmax_s16_params *params, const int16_t *input, int16_t *output)
{
    if (params == NULL || input == NULL || output == NULL || params->exp_lut == NULL ||
        params->one_over_one_plus_x_lut == NULL) {
        return MCUQ_ERR_ARGUMENT;
    }
    const mcuq_softmax_s16_params p = *params;
    if (p.outer_size < 0 || p.depth < 1 || p.input_shift < -31 || p.input_shift > 15) {
        return MCUQ_ERR_ARGUMENT;
    }
    if (p.depth > MCUQ_SOFTMAX_S16_MAX_DEPTH) {
        return MCUQ_ERR_UNSUPPORTED;
    }
    for (int32_t i = 0; i < p.outer_size; ++i) {
        const int16_t *in = &input[i * p.depth];
        int16_t *out = &output[i * p.depth];
        int32_t max_in_row = INT16_MIN;
        for (int32_t c = 0; c < p.depth; ++c) {
            max_in_row = MCUQ_MAX(max_in_row, in[c]);
        }
        /* exp(x - max) in Q0.15, kept in the output row; their sum in Q16.15 (at most depth * 32767 < 2^31). */
        int32_t sum_of_exps = 0;
        for (int32_t c = 0; c < p.depth; ++c) {
            /* x - max in [-65535, 0], scaled so that [-65535, 0] covers the table's [-10, 0] (shift <= 15). */
            const int32_t scaled =
                mcuq_multiply_by_quantized_multiplier(in[c] - max_in_row, p.input_multiplier, p.input_shift);
            const int32_t sym = MCUQ_CLAMP(scaled + 32767, INT16_MIN, INT16_MAX);
            out[c] = lut_lookup((int16_t)sym, p.exp_lut);
            sum_of_exps += out[c];
        }
        /* 1 / sum from the table of 1 / (1 + x): the sum normalised to [1, 2), recentred to int16. A sum outside
         * (0, 2^30] cannot come from TFLite's tables (each row holds exp(0) ~ 32767). */
        const int32_t headroom_plus_one = mcuq_count_leading_zeros((uint32_t)sum_of_exps);
        if (headroom_plus_one < 1 || headroom_plus_one > 30) {
            return MCUQ_ERR_ARGUMENT;
        }
        const int32_t shifted_sum = (int32_t)((((int64_t)sum_of_exps << (headroom_plus_one - 1)) + (1 << 13)) >> 14);
        const int32_t sym_sum = MCUQ_CLAMP(shifted_sum - ((1 << 15) + (1 << 16)), INT16_MIN, INT16_MAX);
        const int32_t reciprocal = lut_lookup((int16_t)sym_sum, p.one_over_one_plus_x_lut);
        const int32_t right_shift = 31 - headroom_plus_one;
        const int64_t round = (int64_t)1 << (right_shift - 1);
        for (int32_t c = 0; c < p.depth; ++c) {
            /* Arithmetic right shift of a negative value: implementation-defined in C99, arithmetic in GCC and Clang. */
            const int64_t result = ((int64_t)out[c] * reciprocal + round) >> right_shift;
            out[c] = (int16_t)MCUQ_CLAMP(result, 0, INT16_MAX);
        }
    }
    return MCUQ_OK;
}
