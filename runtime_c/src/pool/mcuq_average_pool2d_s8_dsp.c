/* AVERAGE_POOL_2D, int8, dsp path: TFLite's reference_integer_ops::AveragePool (see mcuq_pool.h), four channels
 * at a time. Each tap's four channels are one word: SXTB16 and SXTB16 ror 8 split it into two int16 pairs that
 * SADD16 adds into two pair accumulators. A window has at most MCUQ_AVG_POOL_DSP_MAX_TAPS taps, so no int16 sum
 * can overflow (255 * 128 < 2^15); the rest (channels beyond a multiple of 4, larger windows) runs the portable
 * loop. The rounding division and the clamp are the portable kernel's. */
#include "mcuq_pool.h"
#include "../internal/mcuq_pool_common.h"
#include "../internal/mcuq_simd.h"

int32_t mcuq_average_pool2d_s8_dsp_scratch_size(const mcuq_pool2d_params *params)
{
    (void)params;
    return 0;
}

/* sum / count rounded half away from zero (C division truncates toward zero), clamped. */
static int8_t average(int32_t sum, int32_t count, const mcuq_activation *act)
{
    const int32_t half = count / 2;
    const int32_t q = sum > 0 ? (sum + half) / count : (sum - half) / count;
    return (int8_t)MCUQ_CLAMP(q, act->min, act->max);
}

mcuq_status mcuq_average_pool2d_s8_dsp(const mcuq_context *ctx, const mcuq_pool2d_params *params, const int8_t *input,
                                       int8_t *output)
{
    if (ctx == NULL || params == NULL || ctx->size < mcuq_average_pool2d_s8_dsp_scratch_size(params)) {
        return MCUQ_ERR_ARGUMENT;
    }
    const mcuq_status status = mcuq_pool2d_check(params, input, output);
    if (status != MCUQ_OK) {
        return status;
    }
    const mcuq_pool2d_params p = *params;
    if (p.window.filter.h > MCUQ_AVG_POOL_DSP_MAX_TAPS / p.window.filter.w) {
        return mcuq_pool2d(params, input, output, MCUQ_POOL_AVERAGE);
    }
    const int32_t c = p.input.c;
    const int32_t in_row = p.input.w * c;
    const int32_t in_image = p.input.h * in_row;
    const int32_t groups = c / 4;
    int8_t *out = output;
    for (int32_t b = 0; b < p.input.n; ++b) {
        const int8_t *image = input + b * in_image;
        for (int32_t oy = 0; oy < p.output.h; ++oy) {
            const int32_t iy0 = oy * p.window.stride.h - p.window.pad.h;
            const int32_t y_lo = MCUQ_MAX(iy0, 0);
            const int32_t y_hi = MCUQ_MIN(iy0 + p.window.filter.h, p.input.h);
            for (int32_t ox = 0; ox < p.output.w; ++ox) {
                const int32_t ix0 = ox * p.window.stride.w - p.window.pad.w;
                const int32_t x_lo = MCUQ_MAX(ix0, 0);
                const int32_t x_hi = MCUQ_MIN(ix0 + p.window.filter.w, p.input.w);
                if (y_hi <= y_lo || x_hi <= x_lo) {
                    return MCUQ_ERR_ARGUMENT;
                }
                const int32_t rows = y_hi - y_lo;
                const int32_t cols = x_hi - x_lo;
                const int32_t count = rows * cols;
                const int8_t *window = image + y_lo * in_row + x_lo * c;
                for (int32_t g = 0; g < groups; ++g) {
                    uint32_t even = 0u; /* channels 4g and 4g + 2 */
                    uint32_t odd = 0u;  /* channels 4g + 1 and 4g + 3 */
                    const int8_t *row = window + 4 * g;
                    for (int32_t y = rows; y > 0; --y) {
                        const int8_t *pixel = row;
                        for (int32_t x = cols; x > 0; --x) {
                            const uint32_t w = mcuq_read_u32(pixel);
                            even = mcuq_sadd16(even, mcuq_sxtb16(w));
                            odd = mcuq_sadd16(odd, mcuq_sxtb16_ror8(w));
                            pixel += c;
                        }
                        row += in_row;
                    }
                    out[0] = average((int16_t)(even & 0xffffu), count, &p.activation);
                    out[1] = average((int16_t)(odd & 0xffffu), count, &p.activation);
                    out[2] = average((int16_t)(even >> 16), count, &p.activation);
                    out[3] = average((int16_t)(odd >> 16), count, &p.activation);
                    out += 4;
                }
                for (int32_t ch = 4 * groups; ch < c; ++ch) {
                    int32_t sum = 0;
                    const int8_t *row = window + ch;
                    for (int32_t y = rows; y > 0; --y) {
                        const int8_t *pixel = row;
                        for (int32_t x = cols; x > 0; --x) {
                            sum += *pixel;
                            pixel += c;
                        }
                        row += in_row;
                    }
                    *out++ = average(sum, count, &p.activation);
                }
            }
        }
    }
    return MCUQ_OK;
}
