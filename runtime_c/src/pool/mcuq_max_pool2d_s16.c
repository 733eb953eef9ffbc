/* MAX_POOL_2D, int16: TFLite 2.14's reference_integer_ops::MaxPool for int16 (see mcuq_pool.h). */
#include "mcuq_pool.h"
#include "../internal/mcuq_pool_common.h"

mcuq_status mcuq_max_pool2d_s16(const mcuq_pool2d_params *params, const int16_t *input, int16_t *output)
{
    return mcuq_pool2d_s16(params, input, output, MCUQ_POOL_MAX);
}
