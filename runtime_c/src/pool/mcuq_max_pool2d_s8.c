/* MAX_POOL_2D, int8: TFLite's reference_integer_ops::MaxPool (see mcuq_pool.h). */
#include "mcuq_pool.h"
#include "../internal/mcuq_pool_common.h"

mcuq_status mcuq_max_pool2d_s8(const mcuq_pool2d_params *params, const int8_t *input, int8_t *output)
{
    return mcuq_pool2d(params, input, output, MCUQ_POOL_MAX);
}
