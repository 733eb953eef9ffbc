/* CONV_2D, 16x8: TFLite's reference_integer_ops::ConvPerChannel for int16 data (see mcuq_conv.h). */
#include "mcuq_conv.h"
#include "../internal/mcuq_conv_s16.h"
#include "../internal/mcuq_window.h"

int32_t mcuq_conv2d_s16_scratch_size(const mcuq_conv2d_s16_params *params)
{
    (void)params;
    return 0;
}

mcuq_status mcuq_conv2d_s16(const mcuq_context *ctx, const mcuq_conv2d_s16_params *params, const int16_t *input,
                            const void *filter, const int64_t *bias, int16_t *output)
{
    const mcuq_status status =
        mcuq_conv2d_s16_check(ctx, params, input, filter, output, mcuq_conv2d_s16_scratch_size(params), 0);
    if (status != MCUQ_OK) {
        return status;
    }
    const mcuq_conv2d_s16_params p = *params;
    const int32_t in_row = p.input.w * p.input.c;               /* elements per input row */
    const int32_t in_image = p.input.h * in_row;                /* elements per input image */
    const int32_t filter_row = p.window.filter.w * p.input.c;   /* weights per filter row */
    const int32_t filter_size = p.window.filter.h * filter_row; /* weights per output channel */
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
                /* Index (not pointer: negative in the padding) of tap (0, 0), channel 0. */
                const int32_t window = iy0 * in_row + ix0 * p.input.c;
                for (int32_t oc = 0; oc < p.output.c; ++oc) {
                    int64_t acc = (bias != NULL) ? bias[oc] : 0;
                    for (int32_t ky = ky_lo; ky < ky_hi; ++ky) {
                        for (int32_t kx = kx_lo; kx < kx_hi; ++kx) {
                            const int16_t *x = image + (window + ky * dil_row + kx * dil_col);
                            const int32_t k0 = oc * filter_size + ky * filter_row + kx * p.input.c;
                            acc += mcuq_s16_dot(x, 1, filter, p.weight_bits, k0, 1, p.input.c);
                        }
                    }
                    *out++ = mcuq_s16_requantize(acc, p.acc64, p.quant.multiplier[oc], p.quant.shift[oc], p.activation);
                }
            }
        }
    }
    return MCUQ_OK;
}
