/* Shared by the packed-weight kernels (mcuq_lowbit.h): argument checks and a dot product over packed weights.
 * Internal to the runtime. */
#ifndef MCUQ_LOWBIT_COMMON_H
#define MCUQ_LOWBIT_COMMON_H

#include "mcuq_lowbit.h"
#include "../internal/mcuq_packed.h"

static inline int mcuq_lowbit_bits_ok(int32_t bits)
{
    return bits == 4 || bits == 2 || bits == 1;
}

/* sum over i < n of w[k0 + i] * (x[i] + input_offset), w packed `bits` wide (4, 2 or 1). The caller's int32 sum
 * cannot overflow (mcuq/lower/conv.py checks the worst case of the whole accumulator, which bounds every partial
 * sum). One loop per width, so that each reads its fields with constant shifts and masks. */
#define MCUQ_LOWBIT_DOT_LOOP(B)                                                                                        \
    for (int32_t i = 0; i < n; ++i) {                                                                                  \
        acc += mcuq_packed_weight(w, (B), k0 + i) * ((int32_t)x[i] + input_offset);                                    \
    }

static inline int32_t mcuq_lowbit_dot(const uint8_t *w, int32_t bits, int32_t k0, const int8_t *x, int32_t n,
                                      int32_t input_offset)
{
    int32_t acc = 0;
    if (bits == 4) {
        MCUQ_LOWBIT_DOT_LOOP(4)
    } else if (bits == 2) {
        MCUQ_LOWBIT_DOT_LOOP(2)
    } else {
        MCUQ_LOWBIT_DOT_LOOP(1)
    }
    return acc;
}

/* CONV_2D and DEPTHWISE_CONV_2D: MCUQ_ERR_ARGUMENT for a NULL pointer, fewer than `scratch` bytes of scratch, a
 * negative batch count or one that differs between input and output, a size, filter, stride or dilation below 1
 * (a negative output size), an empty activation range, bits other than 4, 2 or 1, or a depth multiplier that is
 * not 1 (conv) or does not give output.c (depthwise). */
static inline mcuq_status mcuq_conv2d_lowbit_check(const mcuq_context *ctx, const mcuq_conv2d_lowbit_params *params,
                                                   const int8_t *input, const uint8_t *filter, const int8_t *output,
                                                   int32_t scratch, int depthwise)
{
    if (ctx == NULL || params == NULL || input == NULL || filter == NULL || output == NULL ||
        params->quant.multiplier == NULL || params->quant.shift == NULL || ctx->size < scratch) {
        return MCUQ_ERR_ARGUMENT;
    }
    const mcuq_conv2d_lowbit_params p = *params;
    if (p.input.n < 0 || p.output.n != p.input.n || p.input.h <= 0 || p.input.w <= 0 || p.input.c <= 0 ||
        p.output.h < 0 || p.output.w < 0 || p.output.c <= 0 || p.window.filter.h <= 0 || p.window.filter.w <= 0 ||
        p.window.stride.h <= 0 || p.window.stride.w <= 0 || p.window.dilation.h <= 0 || p.window.dilation.w <= 0 ||
        p.activation.min > p.activation.max || !mcuq_lowbit_bits_ok(p.bits) || p.depth_multiplier <= 0) {
        return MCUQ_ERR_ARGUMENT;
    }
    if (depthwise ? p.output.c / p.depth_multiplier != p.input.c || p.output.c % p.depth_multiplier != 0
                  : p.depth_multiplier != 1) {
        return MCUQ_ERR_ARGUMENT;
    }
    return MCUQ_OK;
}

/* FULLY_CONNECTED: MCUQ_ERR_ARGUMENT for a NULL pointer (the bias too when `need_bias`), fewer than `scratch`
 * bytes of scratch, a negative batch count, a size below 1, an empty activation range, a per_channel flag other
 * than 0 or 1, or bits other than 4, 2 or 1. */
static inline mcuq_status mcuq_fully_connected_lowbit_check(const mcuq_context *ctx,
                                                            const mcuq_fully_connected_lowbit_params *params,
                                                            const int8_t *input, const uint8_t *filter,
                                                            const int32_t *bias, const int8_t *output, int32_t scratch,
                                                            int need_bias)
{
    if (ctx == NULL || params == NULL || input == NULL || filter == NULL || output == NULL ||
        (need_bias && bias == NULL) || params->quant.multiplier == NULL || params->quant.shift == NULL ||
        ctx->size < scratch) {
        return MCUQ_ERR_ARGUMENT;
    }
    const mcuq_fully_connected_lowbit_params p = *params;
    if (p.batches < 0 || p.input_size <= 0 || p.output_size <= 0 || p.activation.min > p.activation.max ||
        (p.per_channel != 0 && p.per_channel != 1) || !mcuq_lowbit_bits_ok(p.bits)) {
        return MCUQ_ERR_ARGUMENT;
    }
    return MCUQ_OK;
}

#endif /* MCUQ_LOWBIT_COMMON_H */
