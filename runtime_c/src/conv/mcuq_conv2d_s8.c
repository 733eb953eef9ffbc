/* CONV_2D, int8: TFLite's reference_integer_ops::ConvPerChannel (see mcuq_conv.h). */
#include "mcuq_conv.h"
#include "mcuq_fixedpoint.h"
#include "mcuq_window.h"

mcuq_status mcuq_conv2d_s8(const mcuq_conv2d_params *params, const int8_t *input, const int8_t *filter,
                           const int32_t *bias, int8_t *output)
{
    if (params == NULL || input == NULL || filter == NULL || output == NULL || params->multiplier == NULL ||
        params->shift == NULL) {
        return MCUQ_ERR_ARGUMENT;
    }
    const mcuq_conv2d_params p = *params;
    if (p.batches < 0 || p.input_h <= 0 || p.input_w <= 0 || p.input_c <= 0 || p.output_h < 0 || p.output_w < 0 ||
        p.output_c <= 0 || p.filter_h <= 0 || p.filter_w <= 0 || p.stride_h <= 0 || p.stride_w <= 0 ||
        p.dilation_h <= 0 || p.dilation_w <= 0 || p.act_min > p.act_max) {
        return MCUQ_ERR_ARGUMENT;
    }
    const int32_t input_offset = -p.input_zp;
    const int32_t in_row = p.input_w * p.input_c;      /* elements per input row */
    const int32_t in_image = p.input_h * in_row;        /* elements per input image */
    const int32_t filter_row = p.filter_w * p.input_c;  /* elements per filter row */
    const int32_t filter_size = p.filter_h * filter_row; /* elements per output channel */
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
                /* Input element of tap (ky, kx, channel 0) is image[window + ky * dil_row + kx * dil_col];
                 * window itself may be negative (padding), so it stays an index, not a pointer. */
                const int32_t window = iy0 * in_row + ix0 * p.input_c;
                for (int32_t oc = 0; oc < p.output_c; ++oc) {
                    const int8_t *w_oc = filter + oc * filter_size;
                    int32_t acc = 0;
                    for (int32_t ky = ky_lo; ky < ky_hi; ++ky) {
                        for (int32_t kx = kx_lo; kx < kx_hi; ++kx) {
                            const int8_t *x = image + (window + ky * dil_row + kx * dil_col);
                            const int8_t *w = w_oc + ky * filter_row + kx * p.input_c;
                            for (int32_t ic = 0; ic < p.input_c; ++ic) {
                                acc += (int32_t)w[ic] * ((int32_t)x[ic] + input_offset);
                            }
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
    return MCUQ_OK;
}
