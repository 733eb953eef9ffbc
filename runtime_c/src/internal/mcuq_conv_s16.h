/* Helpers of the 16x8 convolution kernels (int16 activations, int8 or packed weights): internal to the runtime. */
#ifndef MCUQ_CONV_S16_H
#define MCUQ_CONV_S16_H

#include "mcuq_conv.h"
#include "mcuq_fixedpoint.h"
#include "mcuq_packed.h"
#include "mcuq_util.h"

/* 1 when weight_bits is a width the kernels read (8, or packed 4, 2, 1). */
static inline int mcuq_s16_bits_ok(int32_t bits)
{
    return bits == 8 || bits == 4 || bits == 2 || bits == 1;
}

/* 1 when the clamp bounds are a non-empty int16 range. */
static inline int mcuq_s16_activation_ok(mcuq_activation a)
{
    return a.min >= -32768 && a.max <= 32767 && a.min <= a.max;
}

/* sum over i < n of w[k0 + i * step] * x[i * xstep]: w is the filter as int8 (bits 8) or packed (mcuq_packed.h).
 * Each product fits int32 (|w| <= 128, |x| <= 32768); the sum is int64. */
static inline int64_t mcuq_s16_dot(const int16_t *x, int32_t xstep, const void *filter, int32_t bits, int32_t k0,
                                   int32_t step, int32_t n)
{
    int64_t acc = 0;
    const uint8_t *w = (const uint8_t *)filter;
    /* one loop per width, so that mcuq_packed_weight's switch folds away (a constant width) */
    switch (bits) {
    case 8: {
        const int8_t *w8 = (const int8_t *)filter + k0;
        for (int32_t i = 0; i < n; ++i) {
            acc += (int32_t)w8[i * step] * (int32_t)x[i * xstep];
        }
        break;
    }
    case 4:
        for (int32_t i = 0; i < n; ++i) {
            acc += mcuq_packed_weight(w, 4, k0 + i * step) * (int32_t)x[i * xstep];
        }
        break;
    case 2:
        for (int32_t i = 0; i < n; ++i) {
            acc += mcuq_packed_weight(w, 2, k0 + i * step) * (int32_t)x[i * xstep];
        }
        break;
    default:
        for (int32_t i = 0; i < n; ++i) {
            acc += mcuq_packed_weight(w, 1, k0 + i * step) * (int32_t)x[i * xstep];
        }
        break;
    }
    return acc;
}

/* acc (bias included) -> the clamped int16 output value (see mcuq_conv.h: acc64 selects TFLite's int64 or int32
 * requantization; with acc64 == 0 the compiler has proved that acc fits int32). */
static inline int16_t mcuq_s16_requantize(int64_t acc, int32_t acc64, int32_t multiplier, int32_t shift,
                                          mcuq_activation act)
{
    int32_t y;
    if (acc64) {
        y = mcuq_multiply_by_quantized_multiplier_s64(acc, multiplier, shift);
    } else {
        y = mcuq_multiply_by_quantized_multiplier((int32_t)(uint32_t)(uint64_t)acc, multiplier, shift);
    }
    y = MCUQ_CLAMP(y, act.min, act.max);
    return (int16_t)y;
}

/* CONV_2D / DEPTHWISE_CONV_2D argument checks (see mcuq_conv.h); `depthwise` allows a depth multiplier above 1. */
static inline mcuq_status mcuq_conv2d_s16_check(const mcuq_context *ctx, const mcuq_conv2d_s16_params *params,
                                                const int16_t *input, const void *filter, const int16_t *output,
                                                int32_t scratch, int depthwise)
{
    if (ctx == NULL || params == NULL || input == NULL || filter == NULL || output == NULL ||
        params->quant.multiplier == NULL || params->quant.shift == NULL || ctx->size < scratch) {
        return MCUQ_ERR_ARGUMENT;
    }
    const mcuq_conv2d_s16_params p = *params;
    if (p.input.n < 0 || p.output.n != p.input.n || p.depth_multiplier < 1 || (!depthwise && p.depth_multiplier != 1) ||
        p.input.h <= 0 || p.input.w <= 0 || p.input.c <= 0 || p.output.h < 0 || p.output.w < 0 || p.output.c <= 0 ||
        p.window.filter.h <= 0 || p.window.filter.w <= 0 || p.window.stride.h <= 0 || p.window.stride.w <= 0 ||
        p.window.dilation.h <= 0 || p.window.dilation.w <= 0 || !mcuq_s16_bits_ok(p.weight_bits) ||
        (p.acc64 != 0 && p.acc64 != 1) || !mcuq_s16_activation_ok(p.activation)) {
        return MCUQ_ERR_ARGUMENT;
    }
    if (depthwise && p.output.c != p.input.c * p.depth_multiplier) {
        return MCUQ_ERR_ARGUMENT;
    }
    return MCUQ_OK;
}

#endif /* MCUQ_CONV_S16_H */
