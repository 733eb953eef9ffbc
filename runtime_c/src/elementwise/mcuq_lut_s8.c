/* LOGISTIC, TANH: a 256-entry table computed at compile time, as TFLite's int8 reference path fills one in
 * Prepare; see mcuq_elementwise.h. */
#include "mcuq_elementwise.h"

mcuq_status mcuq_lut_s8(const mcuq_lut_params *params, const int8_t *input, int8_t *output)
{
    if (params == NULL || input == NULL || output == NULL || params->table == NULL || params->size < 0) {
        return MCUQ_ERR_ARGUMENT;
    }
    const int8_t *table = params->table;
    const int32_t size = params->size;
    for (int32_t i = 0; i < size; ++i) {
        output[i] = table[(uint8_t)input[i]];
    }
    return MCUQ_OK;
}
