/* MEAN, int8: TFLite's integer reference_ops::QuantizedMeanOrSum (see mcuq_pool.h). */
#include "mcuq_pool.h"
#include "../internal/mcuq_fixedpoint.h"
#include "../internal/mcuq_util.h"

/* Advances a row-major multi-index over dims[0..rank) by one step, keeping *offset = sum(index * strides). */
static void mean_next_index(int32_t rank, const int32_t *dims, const int32_t *strides, int32_t *index, int32_t *offset)
{
    for (int32_t d = rank - 1; d >= 0; --d) {
        ++index[d];
        *offset += strides[d];
        if (index[d] < dims[d]) {
            return;
        }
        *offset -= dims[d] * strides[d];
        index[d] = 0;
    }
}

/* MCUQ_OK when each of the rank dims is >= 1 and each stride >= 0 (rank is in range). */
static mcuq_status mean_check_axes(int32_t rank, const int32_t *dims, const int32_t *strides)
{
    for (int32_t d = 0; d < rank; ++d) {
        if (dims[d] < 1 || strides[d] < 0) {
            return MCUQ_ERR_ARGUMENT;
        }
    }
    return MCUQ_OK;
}

mcuq_status mcuq_mean_s8(const mcuq_mean_params *params, const int8_t *input, int8_t *output)
{
    if (params == NULL || input == NULL || output == NULL || params->kept_dims == NULL ||
        params->kept_strides == NULL || params->reduced_dims == NULL || params->reduced_strides == NULL) {
        return MCUQ_ERR_ARGUMENT;
    }
    const mcuq_mean_params p = *params;
    if (p.kept_rank < 1 || p.reduced_rank < 1 || p.num_outputs < 1 || p.num_reduced < 1 || p.shift < -31 ||
        p.shift > 30) {
        return MCUQ_ERR_ARGUMENT;
    }
    if (p.kept_rank > MCUQ_MEAN_MAX_DIMS || p.reduced_rank > MCUQ_MEAN_MAX_DIMS) {
        return MCUQ_ERR_UNSUPPORTED;
    }
    if (mean_check_axes(p.kept_rank, p.kept_dims, p.kept_strides) != MCUQ_OK ||
        mean_check_axes(p.reduced_rank, p.reduced_dims, p.reduced_strides) != MCUQ_OK) {
        return MCUQ_ERR_ARGUMENT;
    }
    int32_t kept_index[MCUQ_MEAN_MAX_DIMS] = {0};
    int32_t base = 0; /* input offset of the current output's first reduced element */
    for (int32_t o = 0; o < p.num_outputs; ++o) {
        int32_t reduced_index[MCUQ_MEAN_MAX_DIMS] = {0};
        int32_t offset = base;
        int32_t sum = 0; /* |sum| <= 128 * num_reduced < 2^31 (checked at compile time) */
        for (int32_t r = 0; r < p.num_reduced; ++r) {
            sum += input[offset];
            mean_next_index(p.reduced_rank, p.reduced_dims, p.reduced_strides, reduced_index, &offset);
        }
        const int32_t acc =
            mcuq_multiply_by_quantized_multiplier(sum - p.input_zp_sum, p.multiplier, p.shift) + p.output_zp;
        output[o] = (int8_t)MCUQ_CLAMP(acc, -128, 127);
        mean_next_index(p.kept_rank, p.kept_dims, p.kept_strides, kept_index, &base);
    }
    return MCUQ_OK;
}
