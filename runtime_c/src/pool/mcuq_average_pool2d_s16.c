/* AVERAGE_POOL_2D, int16: TFLite 2.14's reference_integer_ops::AveragePool for int16 (see mcuq_pool.h). */
#include "mcuq_pool.h"
#include "../internal/mcuq_pool_common.h"

int32_t mcuq_average_pool2d_s16_scratch_size(const mcuq_pool2d_params *params)
{
    (void)params;
    return 0;
}

mcuq_status mcuq_average_pool2d_s16(const mcuq_context *ctx, const mcuq_pool2d_params *params, const int16_t *input,
                                    int16_t *output)
{
    if (ctx == NULL || params == NULL || ctx->size < mcuq_average_pool2d_s16_scratch_size(params)) {
        return MCUQ_ERR_ARGUMENT;
    }
    return mcuq_pool2d_s16(params, input, output, MCUQ_POOL_AVERAGE);
}
