/* The portable 2-D pooling loop of the int16 AVERAGE_POOL_2D and MAX_POOL_2D kernels: internal to the runtime.
 *
 * The int8 loop (mcuq_pool_common.h) on int16 elements: a constant mcuq_pool_op, folded when the loop is inlined
 * into each kernel. Semantics: TFLite 2.14's reference_integer_ops::AveragePool / MaxPool for int16.
 */
#ifndef MCUQ_POOL_S16_COMMON_H
#define MCUQ_POOL_S16_COMMON_H

#include "mcuq_pool_common.h"

/* The int8 kernels' checks (mcuq_pool2d_check), plus the int16 activation range and, for averages, the largest
 * window whose int32 sum cannot overflow. */
static inline mcuq_status mcuq_pool2d_s16_check(const mcuq_pool2d_params *params, const int16_t *input,
                                                const int16_t *output, mcuq_pool_op op)
{
    if (params == NULL || input == NULL || output == NULL) {
        return MCUQ_ERR_ARGUMENT;
    }
    const mcuq_status status = mcuq_pool2d_check(params, (const int8_t *)input, (const int8_t *)output);
    if (status != MCUQ_OK) {
        return status;
    }
    if (params->activation.min < -32768 || params->activation.max > 32767) {
        return MCUQ_ERR_ARGUMENT;
    }
    /* In-bounds taps: at most min(filter, input) rows times min(filter, input) columns. */
    const int32_t rows = MCUQ_MIN(params->window.filter.h, params->input.h);
    const int32_t cols = MCUQ_MIN(params->window.filter.w, params->input.w);
    if (op == MCUQ_POOL_AVERAGE && rows > MCUQ_POOL_S16_MAX_TAPS / cols) {
        return MCUQ_ERR_ARGUMENT;
    }
    return MCUQ_OK;
}

/* Pools NHWC int16 `input` into `output` with `op` (see mcuq_pool.h). A window without an in-bounds tap is
 * MCUQ_ERR_ARGUMENT, as TFLite fails on filter_count == 0. */
static inline mcuq_status mcuq_pool2d_s16(const mcuq_pool2d_params *params, const int16_t *input, int16_t *output,
                                          mcuq_pool_op op)
{
    const mcuq_status status = mcuq_pool2d_s16_check(params, input, output, op);
    if (status != MCUQ_OK) {
        return status;
    }
    const mcuq_pool2d_params p = *params;
    const int32_t in_row = p.input.w * p.input.c; /* elements per input row */
    const int32_t in_image = p.input.h * in_row;  /* elements per input image */
    int16_t *out = output;

    for (int32_t b = 0; b < p.input.n; ++b) {
        const int16_t *image = input + b * in_image;
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
                const int32_t count = rows * cols; /* <= MCUQ_POOL_S16_MAX_TAPS for averages (checked above) */
                const int32_t half = count / 2;
                const int32_t window = y_lo * in_row + x_lo * p.input.c;
                for (int32_t ch = 0; ch < p.input.c; ++ch) {
                    /* |sum| <= 32768 * 65535 and |sum| + half < 2^31 */
                    int32_t acc = op == MCUQ_POOL_AVERAGE ? 0 : -32768;
                    int32_t row = window;
                    for (int32_t y = rows; y > 0; --y) {
                        const int16_t *pixel = image + row;
                        for (int32_t x = cols; x > 0; --x) {
                            acc = op == MCUQ_POOL_AVERAGE ? acc + pixel[ch] : MCUQ_MAX(acc, (int32_t)pixel[ch]);
                            pixel += p.input.c;
                        }
                        row += in_row;
                    }
                    if (op == MCUQ_POOL_AVERAGE) {
                        /* Round half away from zero; C division truncates toward zero. */
                        acc = acc > 0 ? (acc + half) / count : (acc - half) / count;
                    }
                    *out++ = (int16_t)MCUQ_CLAMP(acc, p.activation.min, p.activation.max);
                }
            }
        }
    }
    return MCUQ_OK;
}

#endif /* MCUQ_POOL_S16_COMMON_H */
