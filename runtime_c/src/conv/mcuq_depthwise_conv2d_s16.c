/* DEPTHWISE_CONV_2D, 16x8: TFLite's reference_integer_ops::DepthwiseConvPerChannel for int16 data (see
 * mcuq_conv.h). */
#include "mcuq_conv.h"
#include "../internal/mcuq_conv_s16.h"
#include "../internal/mcuq_window.h"

int32_t mcuq_depthwise_conv2d_s16_scratch_size(const mcuq_conv2d_s16_params *params)
{
    (void)params;
    return 0;
}

mcuq_status mcuq_depthwise_conv2d_s16(const mcuq_context *ctx, const mcuq_conv2d_s16_params *params,
                                      const int16_t *input, const void *filter, const int64_t *bias, int16_t *output)
{
    const mcuq_status status =
        mcuq_conv2d_s16_check(ctx, params, input, filter, output, mcuq_depthwise_conv2d_s16_scratch_size(params), 1);
    if (status != MCUQ_OK) {
        return status;
    }
    const mcuq_conv2d_s16_params p = *params;
    const int32_t in_row = p.input.w * p.input.c;
    const int32_t in_image = p.input.h * in_row;
    const int32_t filter_row = p.window.filter.w * p.output.c; /* weights per filter row (1HWC) */
    const int32_t dil_row = p.window.dilation.h * in_row;
    const int32_t dil_col = p.window.dilation.w * p.input.c;
    int16_t *out = output;

    for (int32_t b = 0; b < p.input.n; ++b) {
        const int16_t *image = input + b * in_image;
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
                const int32_t window = iy0 * in_row + ix0 * p.input.c;
                int32_t oc = 0;
                for (int32_t ic = 0; ic < p.input.c; ++ic) {
                    for (int32_t m = 0; m < p.depth_multiplier; ++m, ++oc) {
                        int64_t acc = (bias != NULL) ? bias[oc] : 0;
                        if (kx_hi > kx_lo) {
                            for (int32_t ky = ky_lo; ky < ky_hi; ++ky) {
                                /* taps kx_lo.. of row ky: inputs dil_col apart, weights output.c apart */
                                const int16_t *x = image + (window + ky * dil_row + kx_lo * dil_col + ic);
                                const int32_t k0 = ky * filter_row + kx_lo * p.output.c + oc;
                                acc += mcuq_s16_dot(x, dil_col, filter, p.weight_bits, k0, p.output.c, kx_hi - kx_lo);
                            }
                        }
                        *out++ =
                            mcuq_s16_requantize(acc, p.acc64, p.quant.multiplier[oc], p.quant.shift[oc], p.activation);
                    }
                }
            }
        }
    }
    return MCUQ_OK;
}
