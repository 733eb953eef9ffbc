/* CONCATENATION, int16: TFLite 2.14's reference_ops::Concatenation on int16 (see mcuq_shape.h). */
#include "mcuq_shape.h"
#include "../internal/mcuq_shape_common.h"

/* inputs[i]: [outer_size, copy_sizes[i]], out: [outer_size, sum of copy_sizes], all row-major int16. */
mcuq_status mcuq_concatenation_s16(const mcuq_concatenation_params *params, const int16_t *const inputs[], int16_t *out)
{
    MCUQ_CONCATENATION(int16_t)
}
