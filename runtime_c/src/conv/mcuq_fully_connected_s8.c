/* FULLY_CONNECTED, int8: TFLite's reference_integer_ops::FullyConnected (per-tensor) and
 * FullyConnectedPerChannel (see mcuq_conv.h). */
#include "mcuq_conv.h"
#include "../internal/mcuq_conv_common.h"
#include "../internal/mcuq_fixedpoint.h"
#include "../internal/mcuq_util.h"

int32_t mcuq_fully_connected_s8_scratch_size(const mcuq_fully_connected_params *params)
{
    (void)params;
    return 0;
}

mcuq_status mcuq_fully_connected_s8(const mcuq_context *ctx, const mcuq_fully_connected_params *params,
                                    const int8_t *input, const int8_t *filter, const int32_t *bias, int8_t *output)
{
    const mcuq_status status = mcuq_fully_connected_check(ctx, params, input, filter, bias, output,
                                                          mcuq_fully_connected_s8_scratch_size(params), 0);
    if (status != MCUQ_OK) {
        return status;
    }
    const mcuq_fully_connected_params p = *params;
    const int32_t input_offset = -p.input_zp;
    const int32_t weights_offset = -p.weights_zp;
    const int32_t step = p.per_channel; /* stride through multiplier/shift: 0 for per-tensor */

    for (int32_t b = 0; b < p.batches; ++b) {
        const int8_t *x = input + b * p.input_size;
        int8_t *y = output + b * p.output_size;
        const int8_t *w = filter;
        const int32_t *mult = p.quant.multiplier;
        const int32_t *shift = p.quant.shift;
        for (int32_t o = 0; o < p.output_size; ++o) {
            int32_t acc = (bias != NULL) ? bias[o] : 0;
            if (weights_offset == 0) {
                for (int32_t i = 0; i < p.input_size; ++i) {
                    acc += (int32_t)w[i] * ((int32_t)x[i] + input_offset);
                }
            } else {
                for (int32_t i = 0; i < p.input_size; ++i) {
                    acc += ((int32_t)w[i] + weights_offset) * ((int32_t)x[i] + input_offset);
                }
            }
            w += p.input_size;
            acc = mcuq_multiply_by_quantized_multiplier(acc, *mult, *shift);
            mult += step;
            shift += step;
            acc += p.output_zp;
            acc = MCUQ_CLAMP(acc, p.activation.min, p.activation.max);
            y[o] = (int8_t)acc;
        }
    }
    return MCUQ_OK;
}
