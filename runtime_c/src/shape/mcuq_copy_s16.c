/* COPY, int16: a reshape between two caller-owned buffers (see mcuq_shape.h). */
#include "mcuq_shape.h"
#include "../internal/mcuq_shape_common.h"

/* in and out: params->size int16 values; they may overlap or be the same buffer. */
mcuq_status mcuq_copy_s16(const mcuq_copy_params *params, const int16_t *in, int16_t *out)
{
    return mcuq_copy_elements(params, in, out, sizeof(int16_t));
}
