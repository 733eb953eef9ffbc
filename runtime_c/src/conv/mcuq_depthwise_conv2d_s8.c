/* DEPTHWISE_CONV_2D, int8: TFLite's reference_integer_ops::DepthwiseConvPerChannel (see mcuq_conv.h). */
#include "mcuq_conv.h"
#include "mcuq_fixedpoint.h"
#include "mcuq_window.h"

mcuq_status mcuq_depthwise_conv2d_s8(const mcuq_depthwise_conv2d_params *params, const int8_t *input,
                                     const int8_t *filter, const int32_t *bias, int8_t *output)
{
    if (params == NULL || input == NULL || filter == NULL || output == NULL || params->multiplier == NULL ||
        params->shift == NULL) {
        return MCUQ_ERR_ARGUMENT;
    }
    const mcuq_depthwise_conv2d_params p = *params;
    if (p.batches < 0 || p.input_h <= 0 || p.input_w <= 0 || p.input_c <= 0 || p.output_h < 0 || p.output_w < 0 ||
        p.depth_multiplier <= 0 || p.output_c != p.input_c * p.depth_multiplier || p.filter_h <= 0 ||
        p.filter_w <= 0 || p.stride_h <= 0 || p.stride_w <= 0 || p.dilation_h <= 0 || p.dilation_w <= 0 ||
        p.act_min > p.act_max) {
        return MCUQ_ERR_ARGUMENT;
    }
    const int32_t input_offset = -p.input_zp;
    const int32_t in_row = p.input_w * p.input_c;
    const int32_t in_image = p.input_h * in_row;
    const int32_t filter_row = p.filter_w * p.output_c;
    const int32_t dil_row = p.dilation_h * in_row;
    const int32_t dil_col = p.dilation_w * p.input_c;
    int8_t *out = output;

    for (int32_t b = 0; b < p.batches; ++b) {
        const int8_t *image = input + b * in_image;
        for (int32_t oy = 0; oy < p.output_h; ++oy) {
            const int32_t iy0 = oy * p.stride_h - p.pad_h;
            int32_t ky_lo;
            int32_t ky_hi;
            mcuq_tap_range(iy0, p.dilation_h, p.input_h, p.filter_h, &ky_lo, &ky_hi);
            for (int32_t ox = 0; ox < p.output_w; ++ox) {
                const int32_t ix0 = ox * p.stride_w - p.pad_w;
                int32_t kx_lo;
                int32_t kx_hi;
                mcuq_tap_range(ix0, p.dilation_w, p.input_w, p.filter_w, &kx_lo, &kx_hi);
                /* Index (not pointer: may be negative in the padding) of tap (0, 0), channel 0. */
                const int32_t window = iy0 * in_row + ix0 * p.input_c;
                int32_t oc = 0;
                for (int32_t ic = 0; ic < p.input_c; ++ic) {
                    for (int32_t m = 0; m < p.depth_multiplier; ++m, ++oc) {
                        int32_t acc = 0;
                        for (int32_t ky = ky_lo; ky < ky_hi; ++ky) {
                            const int32_t x_row = window + ky * dil_row + ic;
                            const int8_t *w = filter + ky * filter_row + oc;
                            for (int32_t kx = kx_lo; kx < kx_hi; ++kx) {
                                acc += (int32_t)w[kx * p.output_c] *
                                       ((int32_t)image[x_row + kx * dil_col] + input_offset);
                            }
                        }
                        if (bias != NULL) {
                            acc += bias[oc];
                        }
                        acc = mcuq_multiply_by_quantized_multiplier(acc, p.multiplier[oc], p.shift[oc]);
                        acc += p.output_zp;
                        acc = MCUQ_CLAMP(acc, p.act_min, p.act_max);
                        *out++ = (int8_t)acc;
                    }
                }
            }
        }
    }
    return MCUQ_OK;
}
