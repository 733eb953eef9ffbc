/* CONCATENATION, int16: TFLite 2.14's reference_ops::Concatenation on int16 (see mcuq_shape.h). */
#include <string.h>

#include "mcuq_shape.h"

/* inputs[i]: [outer_size, copy_sizes[i]], out: [outer_size, sum of copy_sizes], all row-major int16. */
mcuq_status mcuq_concatenation_s16(const mcuq_concatenation_params *params, const int16_t *const inputs[], int16_t *out)
{
    if (params == NULL || inputs == NULL || out == NULL || params->copy_sizes == NULL || params->num_inputs < 1 ||
        params->outer_size < 0) {
        return MCUQ_ERR_ARGUMENT;
    }
    for (int32_t i = 0; i < params->num_inputs; ++i) {
        if (params->copy_sizes[i] < 0 || (params->copy_sizes[i] > 0 && inputs[i] == NULL)) {
            return MCUQ_ERR_ARGUMENT;
        }
    }
    /* Each input's offset k * copy_sizes[i] is below its size, which fits int32 (checked at compile time). */
    int16_t *o = out;
    for (int32_t k = 0; k < params->outer_size; ++k) {
        for (int32_t i = 0; i < params->num_inputs; ++i) {
            const int32_t n = params->copy_sizes[i];
            if (n > 0) {
                memcpy(o, inputs[i] + k * n, (size_t)n * sizeof(int16_t));
                o += n;
            }
        }
    }
    return MCUQ_OK;
}
