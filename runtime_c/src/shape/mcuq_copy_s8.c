/* COPY, int8: a reshape between two caller-owned buffers (see mcuq_shape.h). */
#include <string.h>

#include "mcuq_shape.h"

/* in and out: params->size int8 values; they may overlap or be the same buffer. */
mcuq_status mcuq_copy_s8(const mcuq_copy_params *params, const int8_t *in, int8_t *out)
{
    if (params == NULL || params->size < 0) {
        return MCUQ_ERR_ARGUMENT;
    }
    if (params->size == 0 || in == out) {
        return MCUQ_OK;
    }
    if (in == NULL || out == NULL) {
        return MCUQ_ERR_ARGUMENT;
    }
    memmove(out, in, (size_t)params->size);
    return MCUQ_OK;
}
