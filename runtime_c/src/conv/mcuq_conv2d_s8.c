/* CONV_2D, int8: TFLite's reference_integer_ops::ConvPerChannel (see mcuq_conv.h). */
#include "mcuq_conv.h"
#include "../internal/mcuq_fixedpoint.h"
#include "../internal/mcuq_window.h"
#include "../internal/mcuq_util.h"

int32_t mcuq_conv2d_s8_scratch_size(const mcuq_conv2d_params *params)
{
    (void)params;
    return 0;
}

mcuq_status mcuq_conv2d_s8(const mcuq_context *ctx, const mcuq_conv2d_params *params, const int8_t *input,
                           const int8_t *filter, const int32_t *bias, int8_t *output)
{
    if (ctx == NULL || params == NULL || input == NULL || filter == NULL || output == NULL ||
        params->quant.multiplier == NULL || params->quant.shift == NULL) {
        return MCUQ_ERR_ARGUMENT;
    }
    if (ctx->size < mcuq_conv2d_s8_scratch_size(params)) {
        return MCUQ_ERR_ARGUMENT;
    }
    const mcuq_conv2d_params p = *params;
    if (p.input.n < 0 || p.output.n != p.input.n || p.depth_multiplier != 1 || p.input.h <= 0 || p.input.w <= 0 ||
        p.input.c <= 0 || p.output.h < 0 || p.output.w < 0 || p.output.c <= 0 || p.window.filter.h <= 0 ||
        p.window.filter.w <= 0 || p.window.stride.h <= 0 || p.window.stride.w <= 0 || p.window.dilation.h <= 0 ||
        p.window.dilation.w <= 0 || p.activation.min > p.activation.max) {
        return MCUQ_ERR_ARGUMENT;
    }
    const int32_t input_offset = -p.input_zp;
    const int32_t in_row = p.input.w * p.input.c;               /* elements per input row */
    const int32_t in_image = p.input.h * in_row;                /* elements per input image */
    const int32_t filter_row = p.window.filter.w * p.input.c;   /* elements per filter row */
    const int32_t filter_size = p.window.filter.h * filter_row; /* elements per output channel */
    const int32_t dil_row = p.window.dilation.h * in_row;
    const int32_t dil_col = p.window.dilation.w * p.input.c;
    int8_t *out = output;

    for (int32_t b = 0; b < p.input.n; ++b) {
        const int8_t *image = input + b * in_image;
        for (int32_t oy = 0; oy < p.output.h; ++oy) {
            const int32_t iy0 = oy * p.window.stride.h - p.window.pad.h;
            int32_t ky_lo;
            int32_t ky_hi;
            mcuq_tap_range(iy0, p.window.dilation.h, p.input.h, p.window.filter.h, &ky_lo, &ky_hi);
            for (int32_t ox = 0; ox < p.output.w; ++ox) {
                const int32_t ix0 = ox * p.window.stride.w - p.window.pad.w;
                int32_t kx_lo;
                int32_t kx_hi;
                mcuq_tap_range(ix0, p.window.dilation.w, p.input.w, p.window.filter.w, &kx_lo, &kx_hi);
                /* Input element of tap (ky, kx, channel 0) is image[window + ky * dil_row + kx * dil_col];
                 * window itself may be negative (padding), so it stays an index, not a pointer. */
                const int32_t window = iy0 * in_row + ix0 * p.input.c;
                for (int32_t oc = 0; oc < p.output.c; ++oc) {
                    const int8_t *w_oc = filter + oc * filter_size;
                    int32_t acc = (bias != NULL) ? bias[oc] : 0;
                    for (int32_t ky = ky_lo; ky < ky_hi; ++ky) {
                        for (int32_t kx = kx_lo; kx < kx_hi; ++kx) {
                            const int8_t *x = image + (window + ky * dil_row + kx * dil_col);
                            const int8_t *w = w_oc + ky * filter_row + kx * p.input.c;
                            for (int32_t ic = 0; ic < p.input.c; ++ic) {
                                acc += (int32_t)w[ic] * ((int32_t)x[ic] + input_offset);
                            }
                        }
                    }
                    acc = mcuq_multiply_by_quantized_multiplier(acc, p.quant.multiplier[oc], p.quant.shift[oc]);
                    acc += p.output_zp;
                    acc = MCUQ_CLAMP(acc, p.activation.min, p.activation.max);
                    *out++ = (int8_t)acc;
                }
            }
        }
    }
    return MCUQ_OK;
}
