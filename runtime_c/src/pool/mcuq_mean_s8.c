/* MEAN int8: TFLite 2.14's integer reference_ops::QuantizedMeanOrSum (see mcuq_pool.h). */
#include "mcuq.h"
#include "mcuq_fixedpoint.h"

/* Advances a row-major multi-index over dims[0..rank) by one step, keeping *offset = sum(index * strides). */
static void mean_next_index(int32_t rank, const int32_t *dims, const int32_t *strides, int32_t *index,
                            int32_t *offset)
{
    int32_t d;
    for (d = rank - 1; d >= 0; --d) {
        ++index[d];
        *offset += strides[d];
        if (index[d] < dims[d]) {
            return;
        }
        *offset -= dims[d] * strides[d];
        index[d] = 0;
    }
}

mcuq_status mcuq_mean_s8(const mcuq_mean_params *params, const int8_t *input, int8_t *output)
{
    const mcuq_mean_params *p = params;
    int32_t kept_index[MCUQ_MEAN_MAX_DIMS] = {0};
    int32_t base = 0;
    int32_t o, d;
    if (p == NULL || input == NULL || output == NULL || p->kept_dims == NULL || p->kept_strides == NULL ||
        p->reduced_dims == NULL || p->reduced_strides == NULL) {
        return MCUQ_ERR_ARGUMENT;
    }
    if (p->kept_rank < 1 || p->kept_rank > MCUQ_MEAN_MAX_DIMS || p->reduced_rank < 1 ||
        p->reduced_rank > MCUQ_MEAN_MAX_DIMS || p->num_outputs < 1 || p->num_reduced < 1 || p->shift < -31 ||
        p->shift > 30) {
        return MCUQ_ERR_ARGUMENT;
    }
    for (d = 0; d < p->kept_rank; ++d) {
        if (p->kept_dims[d] < 1 || p->kept_strides[d] < 0) {
            return MCUQ_ERR_ARGUMENT;
        }
    }
    for (d = 0; d < p->reduced_rank; ++d) {
        if (p->reduced_dims[d] < 1 || p->reduced_strides[d] < 0) {
            return MCUQ_ERR_ARGUMENT;
        }
    }
    for (o = 0; o < p->num_outputs; ++o) {
        int32_t reduced_index[MCUQ_MEAN_MAX_DIMS] = {0};
        int32_t offset = base;
        int32_t sum = 0; /* |sum| <= 128 * num_reduced < 2^31 (checked at compile time) */
        int32_t r, acc;
        for (r = 0; r < p->num_reduced; ++r) {
            sum += input[offset];
            mean_next_index(p->reduced_rank, p->reduced_dims, p->reduced_strides, reduced_index, &offset);
        }
        acc = mcuq_multiply_by_quantized_multiplier(sum - p->input_zp_sum, p->multiplier, p->shift) + p->output_zp;
        output[o] = (int8_t)MCUQ_CLAMP(acc, -128, 127);
        mean_next_index(p->kept_rank, p->kept_dims, p->kept_strides, kept_index, &base);
    }
    return MCUQ_OK;
}
