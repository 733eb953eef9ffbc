/* MEAN, int16: TFLite 2.14's integer reference_ops::QuantizedMeanOrSum on int16 (see mcuq_pool.h). */
#include "mcuq_pool.h"
#include "../internal/mcuq_fixedpoint.h"
#include "../internal/mcuq_mean_common.h"
#include "../internal/mcuq_util.h"

mcuq_status mcuq_mean_s16(const mcuq_mean_params *params, const int16_t *input, int16_t *output)
{
    const mcuq_status status = mcuq_mean_check(params, input, output, -32768, 32767);
    if (status != MCUQ_OK) {
        return status;
    }
    const mcuq_mean_params p = *params;
    int32_t kept_index[MCUQ_MEAN_MAX_DIMS] = {0};
    int32_t base = 0; /* input offset of the current output's first reduced element */
    for (int32_t o = 0; o < p.num_outputs; ++o) {
        int32_t reduced_index[MCUQ_MEAN_MAX_DIMS] = {0};
        int32_t offset = base;
        int32_t sum = 0; /* |sum| <= 32768 * num_reduced < 2^31 (checked at compile time) */
        for (int32_t r = 0; r < p.num_reduced; ++r) {
            sum += input[offset];
            mcuq_mean_next_index(p.reduced_rank, p.reduced_dims, p.reduced_strides, reduced_index, &offset);
        }
        const int32_t acc =
            mcuq_multiply_by_quantized_multiplier(sum - p.input_zp_sum, p.multiplier, p.shift) + p.output_zp;
        output[o] = (int16_t)MCUQ_CLAMP(acc, -32768, 32767);
        mcuq_mean_next_index(p.kept_rank, p.kept_dims, p.kept_strides, kept_index, &base);
    }
    return MCUQ_OK;
}
