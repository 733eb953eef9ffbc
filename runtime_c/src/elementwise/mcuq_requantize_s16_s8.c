/* QUANTIZE int16 -> int8: TFLite's reference_ops::Requantize (quantize.cc); see mcuq_elementwise.h. */
#include "mcuq_elementwise.h"
#include "../internal/mcuq_requantize_common.h"

mcuq_status mcuq_requantize_s16_s8(const mcuq_requantize_params *params, const int16_t *input, int8_t *output)
{
    const mcuq_status status = mcuq_requantize_check(params, input, output, INT16_MIN, INT16_MAX, INT8_MIN, INT8_MAX);
    if (status != MCUQ_OK) {
        return status;
    }
    const int32_t size = params->size;
    for (int32_t i = 0; i < size; ++i) {
        output[i] = (int8_t)mcuq_requantize_one(params, input[i]);
    }
    return MCUQ_OK;
}
