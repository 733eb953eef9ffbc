/* CONV_2D, int8 activations, packed 4/2/1-bit weights: TFLite's reference_integer_ops::ConvPerChannel on the
 * unpacked values (see mcuq_lowbit.h). */
#include "mcuq_lowbit.h"
#include "mcuq_lowbit_common.h"
#include "../internal/mcuq_fixedpoint.h"
#include "../internal/mcuq_window.h"
#include "../internal/mcuq_util.h"

int32_t mcuq_conv2d_s8_lowbit_scratch_size(const mcuq_conv2d_lowbit_params *params)
{
    (void)params;
    return 0;
}

mcuq_status mcuq_conv2d_s8_lowbit(const mcuq_context *ctx, const mcuq_conv2d_lowbit_params *params, const int8_t *input,
                                  const uint8_t *filter, const int32_t *bias, int8_t *output)
{
    const mcuq_status status =
        mcuq_conv2d_lowbit_check(ctx, params, input, filter, output, mcuq_conv2d_s8_lowbit_scratch_size(params), 0);
    if (status != MCUQ_OK) {
        return status;
    }
    const mcuq_conv2d_lowbit_params p = *params;
    const int32_t input_offset = -p.input_zp;
    const int32_t in_row = p.input.w * p.input.c;
    const int32_t in_image = p.input.h * in_row;
    const int32_t filter_row = p.window.filter.w * p.input.c;   /* values per filter row */
    const int32_t filter_size = p.window.filter.h * filter_row; /* values per output channel */
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
                /* Index (may be negative in the padding) of the window's tap (0, 0), channel 0. */
                const int32_t window = iy0 * in_row + ix0 * p.input.c;
                for (int32_t oc = 0; oc < p.output.c; ++oc) {
                    const int32_t k_oc = oc * filter_size; /* value index of channel oc's first weight */
                    int32_t acc = (bias != NULL) ? bias[oc] : 0;
                    for (int32_t ky = ky_lo; ky < ky_hi; ++ky) {
                        for (int32_t kx = kx_lo; kx < kx_hi; ++kx) {
                            const int8_t *x = image + (window + ky * dil_row + kx * dil_col);
                            const int32_t k = k_oc + ky * filter_row + kx * p.input.c;
                            acc += mcuq_lowbit_dot(filter, p.bits, k, x, p.input.c, input_offset);
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
