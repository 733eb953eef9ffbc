/* AVERAGE_POOL_2D, int8: TFLite's reference_integer_ops::AveragePool (see mcuq_pool.h). */
#include "mcuq_pool.h"
#include "../internal/mcuq_pool_common.h"

int32_t mcuq_average_pool2d_s8_scratch_size(const mcuq_pool2d_params *params)
{
    (void)params;
    return 0;
}

mcuq_status mcuq_average_pool2d_s8(const mcuq_context *ctx, const mcuq_pool2d_params *params, const int8_t *input,
                                   int8_t *output)
{
    if (ctx == NULL || params == NULL || ctx->size < mcuq_average_pool2d_s8_scratch_size(params)) {
        return MCUQ_ERR_ARGUMENT;
    }
    return mcuq_pool2d(params, input, output, MCUQ_POOL_AVERAGE);
}
