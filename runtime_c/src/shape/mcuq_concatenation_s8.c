/* mcuq_concatenation_s8: TFLite CONCATENATION (reference_ops::Concatenation) for int8. */
#include <string.h>

#include "mcuq.h"

mcuq_status mcuq_concatenation_s8(const mcuq_concatenation_params *params, const int8_t *const inputs[],
                                  int8_t *out)
{
    int32_t i, k;
    int8_t *o = out;

    if (params == NULL || inputs == NULL || out == NULL || params->copy_sizes == NULL ||
        params->num_inputs < 1 || params->outer_size < 0) {
        return MCUQ_ERR_ARGUMENT;
    }
    for (i = 0; i < params->num_inputs; ++i) {
        if (params->copy_sizes[i] < 0 || (params->copy_sizes[i] > 0 && inputs[i] == NULL)) {
            return MCUQ_ERR_ARGUMENT;
        }
    }
    /* Each input's offset k * copy_sizes[i] is below its size, which fits int32 (checked at compile time). */
    for (k = 0; k < params->outer_size; ++k) {
        for (i = 0; i < params->num_inputs; ++i) {
            const int32_t n = params->copy_sizes[i];
            if (n > 0) {
                memcpy(o, inputs[i] + k * n, (size_t)n);
                o += n;
            }
        }
    }
    return MCUQ_OK;
}
