/* FULLY_CONNECTED, int8 activations, packed 4/2/1-bit weights: TFLite's reference_integer_ops::FullyConnected
 * (per-tensor) and FullyConnectedPerChannel on the unpacked values (see mcuq_lowbit.h). */
#include "mcuq_lowbit.h"
#include "mcuq_lowbit_common.h"
#include "../internal/mcuq_fixedpoint.h"
#include "../internal/mcuq_util.h"

int32_t mcuq_fully_connected_s8_lowbit_scratch_size(const mcuq_fully_connected_lowbit_params *params)
{
    (void)params;
    return 0;
}

mcuq_status mcuq_fully_connected_s8_lowbit(const mcuq_context *ctx, const mcuq_fully_connected_lowbit_params *params,
                                           const int8_t *input, const uint8_t *filter, const int32_t *bias,
                                           int8_t *output)
{
    const mcuq_status status = mcuq_fully_connected_lowbit_check(
        ctx, params, input, filter, bias, output, mcuq_fully_connected_s8_lowbit_scratch_size(params), 0);
    if (status != MCUQ_OK) {
        return status;
    }
    const mcuq_fully_connected_lowbit_params p = *params;
    const int32_t input_offset = -p.input_zp;
    const int32_t weights_offset = -p.weights_zp;
    const int32_t step = p.per_channel; /* stride through multiplier/shift: 0 for per-tensor */

    for (int32_t b = 0; b < p.batches; ++b) {
        const int8_t *x = input + b * p.input_size;
        int8_t *y = output + b * p.output_size;
        const int32_t *mult = p.quant.multiplier;
        const int32_t *shift = p.quant.shift;
        for (int32_t o = 0; o < p.output_size; ++o) {
            const int32_t k0 = o * p.input_size; /* value index of row o (may start mid-byte) */
            int32_t acc = (bias != NULL) ? bias[o] : 0;
            if (weights_offset == 0) {
                acc += mcuq_lowbit_dot(filter, p.bits, k0, x, p.input_size, input_offset);
            } else {
                for (int32_t i = 0; i < p.input_size; ++i) {
                    const int32_t w = mcuq_packed_weight(filter, p.bits, k0 + i) + weights_offset;
                    acc += w * ((int32_t)x[i] + input_offset);
                }
            }
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
