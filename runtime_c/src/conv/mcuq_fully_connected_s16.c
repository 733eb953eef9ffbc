/* FULLY_CONNECTED, 16x8: TFLite's reference_integer_ops::FullyConnected and FullyConnectedPerChannel for int16
 * data (see mcuq_conv.h). */
#include "mcuq_conv.h"
#include "../internal/mcuq_conv_s16.h"

int32_t mcuq_fully_connected_s16_scratch_size(const mcuq_fully_connected_s16_params *params)
{
    (void)params;
    return 0;
}

mcuq_status mcuq_fully_connected_s16(const mcuq_context *ctx, const mcuq_fully_connected_s16_params *params,
                                     const int16_t *input, const void *filter, const int64_t *bias, int16_t *output)
{
    if (ctx == NULL || params == NULL || input == NULL || filter == NULL || output == NULL ||
        params->quant.multiplier == NULL || params->quant.shift == NULL ||
        ctx->size < mcuq_fully_connected_s16_scratch_size(params)) {
        return MCUQ_ERR_ARGUMENT;
    }
    const mcuq_fully_connected_s16_params p = *params;
    if (p.batches < 0 || p.input_size <= 0 || p.output_size <= 0 || !mcuq_s16_bits_ok(p.weight_bits) ||
        (p.acc64 != 0 && p.acc64 != 1) || !mcuq_s16_activation_ok(p.activation) ||
        (p.per_channel != 0 && p.per_channel != 1) || p.weights_zp < -128 || p.weights_zp > 127 ||
        (p.weight_bits != 8 && p.weights_zp != 0)) {
        return MCUQ_ERR_ARGUMENT;
    }
    const int32_t step = p.per_channel; /* stride through multiplier/shift: 0 for per-tensor */

    for (int32_t b = 0; b < p.batches; ++b) {
        const int16_t *x = input + b * p.input_size;
        int16_t *y = output + b * p.output_size;
        /* sum of the inputs, for the weights' zero point: sum (w - zp) x = sum w x - zp sum x */
        int64_t x_sum = 0;
        if (p.weights_zp != 0) {
            for (int32_t i = 0; i < p.input_size; ++i) {
                x_sum += x[i];
            }
        }
        for (int32_t o = 0; o < p.output_size; ++o) {
            int64_t acc = (bias != NULL) ? bias[o] : 0;
            acc += mcuq_s16_dot(x, 1, filter, p.weight_bits, o * p.input_size, 1, p.input_size);
            acc -= (int64_t)p.weights_zp * x_sum;
            *y++ =
                mcuq_s16_requantize(acc, p.acc64, p.quant.multiplier[o * step], p.quant.shift[o * step], p.activation);
        }
    }
    return MCUQ_OK;
}
