/* The axis walk of the MEAN kernels (see mcuq_mean_params in mcuq_pool.h): internal to the runtime. */
#ifndef MCUQ_MEAN_COMMON_H
#define MCUQ_MEAN_COMMON_H

#include "mcuq_pool.h"

/* Advances a row-major multi-index over dims[0..rank) by one step, keeping *offset = sum(index * strides). */
static inline void mcuq_mean_next_index(int32_t rank, const int32_t *dims, const int32_t *strides, int32_t *index,
                                        int32_t *offset)
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

/* The argument checks of a MEAN kernel (see mcuq_pool.h), with the output zero point in [zp_min, zp_max]:
 * MCUQ_ERR_ARGUMENT for a NULL pointer, a rank below 1 or a size, stride, shift or zero point out of range,
 * MCUQ_ERR_UNSUPPORTED for a rank above MCUQ_MEAN_MAX_DIMS. */
static inline mcuq_status mcuq_mean_check(const mcuq_mean_params *params, const void *input, const void *output,
                                          int32_t zp_min, int32_t zp_max)
{
    if (params == NULL || input == NULL || output == NULL || params->kept_dims == NULL ||
        params->kept_strides == NULL || params->reduced_dims == NULL || params->reduced_strides == NULL) {
        return MCUQ_ERR_ARGUMENT;
    }
    const mcuq_mean_params p = *params;
    if (p.kept_rank < 1 || p.reduced_rank < 1 || p.num_outputs < 1 || p.num_reduced < 1 || p.shift < -31 ||
        p.shift > 30 || p.output_zp < zp_min || p.output_zp > zp_max) {
        return MCUQ_ERR_ARGUMENT;
    }
    if (p.kept_rank > MCUQ_MEAN_MAX_DIMS || p.reduced_rank > MCUQ_MEAN_MAX_DIMS) {
        return MCUQ_ERR_UNSUPPORTED;
    }
    for (int32_t d = 0; d < p.kept_rank; ++d) {
        if (p.kept_dims[d] < 1 || p.kept_strides[d] < 0) {
            return MCUQ_ERR_ARGUMENT;
        }
    }
    for (int32_t d = 0; d < p.reduced_rank; ++d) {
        if (p.reduced_dims[d] < 1 || p.reduced_strides[d] < 0) {
            return MCUQ_ERR_ARGUMENT;
        }
    }
    return MCUQ_OK;
}

#endif /* MCUQ_MEAN_COMMON_H */
