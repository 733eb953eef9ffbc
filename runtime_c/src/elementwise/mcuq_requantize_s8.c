/* QUANTIZE int8 -> int8, RELU, RELU6: TFLite's reference_ops::Requantize and ReluX; see mcuq_elementwise.h. */
#include "mcuq_elementwise.h"
#include "../internal/mcuq_fixedpoint.h"
#include "../internal/mcuq_util.h"

mcuq_status mcuq_requantize_s8(const mcuq_requantize_params *params, const int8_t *input, int8_t *output)
{
    if (params == NULL || input == NULL || output == NULL) {
        return MCUQ_ERR_ARGUMENT;
    }
    const mcuq_requantize_params p = *params;
    if (p.size < 0 || p.shift < -31 || p.shift > 30 || p.activation.min > p.activation.max) {
        return MCUQ_ERR_ARGUMENT;
    }
    for (int32_t i = 0; i < p.size; ++i) {
        const int32_t raw =
            mcuq_multiply_by_quantized_multiplier(input[i] - p.input_zp, p.multiplier, p.shift) + p.output_zp;
        output[i] = (int8_t)MCUQ_CLAMP(raw, p.activation.min, p.activation.max);
    }
    return MCUQ_OK;
}
