/* COPY, int16: a reshape between two caller-owned buffers (see mcuq_shape.h). */
#include <string.h>

#include "mcuq_shape.h"

/* in and out: params->size int16 values; they may overlap or be the same buffer. */
mcuq_status mcuq_copy_s16(const mcuq_copy_params *params, const int16_t *in, int16_t *out)
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
    memmove(out, in, (size_t)params->size * sizeof(int16_t));
    return MCUQ_OK;
}
