/* Argument checks that the convolution family's kernels share (portable, dsp and mve): internal to the runtime. */
#ifndef MCUQ_CONV_COMMON_H
#define MCUQ_CONV_COMMON_H

#include "mcuq_conv.h"

/* FULLY_CONNECTED (see mcuq_conv.h): MCUQ_ERR_ARGUMENT for a NULL pointer (the bias too when `need_bias`), fewer
 * than `scratch` bytes of scratch, a negative batch count, a size below 1, an empty activation range or a
 * per_channel flag other than 0 or 1. */
static inline mcuq_status mcuq_fully_connected_check(const mcuq_context *ctx, const mcuq_fully_connected_params *params,
                                                     const int8_t *input, const int8_t *filter, const int32_t *bias,
                                                     const int8_t *output, int32_t scratch, int need_bias)
{
    if (ctx == NULL || params == NULL || input == NULL || filter == NULL || output == NULL ||
        (need_bias && bias == NULL) || params->quant.multiplier == NULL || params->quant.shift == NULL ||
        ctx->size < scratch) {
        return MCUQ_ERR_ARGUMENT;
    }
    const mcuq_fully_connected_params p = *params;
    if (p.batches < 0 || p.input_size <= 0 || p.output_size <= 0 || p.activation.min > p.activation.max ||
        (p.per_channel != 0 && p.per_channel != 1)) {
        return MCUQ_ERR_ARGUMENT;
    }
    return MCUQ_OK;
}

/* CONV_2D (see mcuq_conv.h), before the scratch check: MCUQ_ERR_ARGUMENT for a NULL pointer (the bias too when
 * `need_bias`), a negative batch count or one that differs between input and output, a depth multiplier other
 * than 1, a size, filter, stride or dilation below 1 (a negative output size) or an empty activation range. */
static inline mcuq_status mcuq_conv2d_check(const mcuq_context *ctx, const mcuq_conv2d_params *params,
                                            const int8_t *input, const int8_t *filter, const int32_t *bias,
                                            const int8_t *output, int need_bias)
{
    if (ctx == NULL || params == NULL || input == NULL || filter == NULL || output == NULL ||
        (need_bias && bias == NULL) || params->quant.multiplier == NULL || params->quant.shift == NULL) {
        return MCUQ_ERR_ARGUMENT;
    }
    const mcuq_conv2d_params p = *params;
    if (p.input.n < 0 || p.output.n != p.input.n || p.depth_multiplier != 1 || p.input.h <= 0 || p.input.w <= 0 ||
        p.input.c <= 0 || p.output.h < 0 || p.output.w < 0 || p.output.c <= 0 || p.window.filter.h <= 0 ||
        p.window.filter.w <= 0 || p.window.stride.h <= 0 || p.window.stride.w <= 0 || p.window.dilation.h <= 0 ||
        p.window.dilation.w <= 0 || p.activation.min > p.activation.max) {
        return MCUQ_ERR_ARGUMENT;
    }
    return MCUQ_OK;
}

#endif /* MCUQ_CONV_COMMON_H */
