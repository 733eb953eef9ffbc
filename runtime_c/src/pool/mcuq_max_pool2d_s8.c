/* MAX_POOL_2D int8: TFLite 2.14's reference_integer_ops::MaxPool (see mcuq_pool.h). */
#include "mcuq.h"

mcuq_status mcuq_max_pool2d_s8(const mcuq_pool2d_params *params, const int8_t *input, int8_t *output)
{
    const mcuq_pool2d_params *p = params;
    int32_t b, oy, ox, ch;
    if (p == NULL || input == NULL || output == NULL) {
        return MCUQ_ERR_ARGUMENT;
    }
    if (p->batches < 1 || p->input_h < 1 || p->input_w < 1 || p->channels < 1 || p->output_h < 1 ||
        p->output_w < 1 || p->filter_h < 1 || p->filter_w < 1 || p->stride_h < 1 || p->stride_w < 1 ||
        p->pad_h < 0 || p->pad_w < 0) {
        return MCUQ_ERR_ARGUMENT;
    }
    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + (size_t)b * (size_t)p->input_h * (size_t)p->input_w * (size_t)p->channels;
        for (oy = 0; oy < p->output_h; ++oy) {
            const int32_t y0 = oy * p->stride_h - p->pad_h;
            const int32_t ys = MCUQ_MAX(0, y0);
            const int32_t ye = MCUQ_MIN(p->input_h, y0 + p->filter_h);
            for (ox = 0; ox < p->output_w; ++ox) {
                const int32_t x0 = ox * p->stride_w - p->pad_w;
                const int32_t xs = MCUQ_MAX(0, x0);
                const int32_t xe = MCUQ_MIN(p->input_w, x0 + p->filter_w);
                int8_t *out = output + (((size_t)b * (size_t)p->output_h + (size_t)oy) * (size_t)p->output_w +
                                        (size_t)ox) * (size_t)p->channels;
                if (ye <= ys || xe <= xs) {
                    return MCUQ_ERR_ARGUMENT;
                }
                for (ch = 0; ch < p->channels; ++ch) {
                    int32_t max = -128;
                    int32_t y, x;
                    for (y = ys; y < ye; ++y) {
                        const int8_t *row = in_b + (size_t)y * (size_t)p->input_w * (size_t)p->channels;
                        for (x = xs; x < xe; ++x) {
                            max = MCUQ_MAX(max, (int32_t)row[(size_t)x * (size_t)p->channels + (size_t)ch]);
                        }
                    }
                    out[ch] = (int8_t)MCUQ_CLAMP(max, p->act_min, p->act_max);
                }
            }
        }
    }
    return MCUQ_OK;
}
