/* CONCATENATION, int8: TFLite 2.14's reference_ops::Concatenation (see mcuq_shape.h). */
#include "mcuq_shape.h"
#include "../internal/mcuq_shape_common.h"

/* inputs[i]: [outer_size, copy_sizes[i]], out: [outer_size, sum of copy_sizes], all row-major int8. */
mcuq_status mcuq_concatenation_s8(const mcuq_concatenation_params *params, const int8_t *const inputs[], int8_t *out)
{
    MCUQ_CONCATENATION(int8_t)
}
