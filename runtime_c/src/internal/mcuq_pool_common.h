/* The portable 2-D pooling loop that AVERAGE_POOL_2D and MAX_POOL_2D share, int8 and int16: internal to the
 * runtime.
 *
 * The two kernels differ only in how they reduce a window, so they run one loop: mcuq_pool2d (int8) or
 * mcuq_pool2d_s16 (int16) with a constant mcuq_pool_op, which the compiler folds when it inlines the loop into each
 * kernel (no branch on the op is left at run time).
 */
#ifndef MCUQ_POOL_COMMON_H
#define MCUQ_POOL_COMMON_H

#include "mcuq_pool.h"
#include "mcuq_util.h"

/* How a window is reduced to one value. */
typedef enum {
    MCUQ_POOL_AVERAGE, /* sum of the in-bounds taps / their count, rounded half away from zero */
    MCUQ_POOL_MAX,     /* the largest in-bounds tap */
} mcuq_pool_op;

/* The argument checks of a pooling kernel (see mcuq_pool.h): MCUQ_ERR_ARGUMENT for a NULL pointer, a size,
 * filter or stride below 1, a negative padding, output batches or channels that differ from the input's, or an
 * empty activation range; MCUQ_ERR_UNSUPPORTED for a dilated window. */
static inline mcuq_status mcuq_pool2d_check(const mcuq_pool2d_params *params, const int8_t *input, const int8_t *output)
{
    if (params == NULL || input == NULL || output == NULL) {
        return MCUQ_ERR_ARGUMENT;
    }
    const mcuq_dims in = params->input;
    const mcuq_dims out = params->output;
    const mcuq_window win = params->window;
    if (in.n < 1 || in.h < 1 || in.w < 1 || in.c < 1 || out.n != in.n || out.h < 1 || out.w < 1 || out.c != in.c ||
        win.filter.h < 1 || win.filter.w < 1 || win.stride.h < 1 || win.stride.w < 1 || win.pad.h < 0 ||
        win.pad.w < 0 || params->activation.min > params->activation.max) {
        return MCUQ_ERR_ARGUMENT;
    }
    if (win.dilation.h != 1 || win.dilation.w != 1) {
        return MCUQ_ERR_UNSUPPORTED;
    }
    return MCUQ_OK;
}

/* The pooling loop over elements of type T (int8_t, int16_t) whose lowest value is LOWEST, after the checks: pools
 * NHWC `input` into `output` with `op` (see mcuq_pool.h for the shapes and the window). Each output pixel reduces
 * the in-bounds taps of its window, per channel, and clamps to the activation bounds; a window without an
 * in-bounds tap is MCUQ_ERR_ARGUMENT, as TFLite fails on filter_count == 0. */
#define MCUQ_POOL2D_LOOP(T, LOWEST)                                                                                    \
    const mcuq_pool2d_params p = *params;                                                                              \
    const int32_t in_row = p.input.w * p.input.c; /* elements per input row */                                         \
    const int32_t in_image = p.input.h * in_row;  /* elements per input image */                                       \
    T *out = output;                                                                                                   \
                                                                                                                       \
    for (int32_t b = 0; b < p.input.n; ++b) {                                                                          \
        const T *image = input + b * in_image;                                                                         \
        for (int32_t oy = 0; oy < p.output.h; ++oy) {                                                                  \
            const int32_t iy0 = oy * p.window.stride.h - p.window.pad.h;                                               \
            const int32_t y_lo = MCUQ_MAX(iy0, 0);                                                                     \
            const int32_t y_hi = MCUQ_MIN(iy0 + p.window.filter.h, p.input.h);                                         \
            for (int32_t ox = 0; ox < p.output.w; ++ox) {                                                              \
                const int32_t ix0 = ox * p.window.stride.w - p.window.pad.w;                                           \
                const int32_t x_lo = MCUQ_MAX(ix0, 0);                                                                 \
                const int32_t x_hi = MCUQ_MIN(ix0 + p.window.filter.w, p.input.w);                                     \
                if (y_hi <= y_lo || x_hi <= x_lo) {                                                                    \
                    return MCUQ_ERR_ARGUMENT;                                                                          \
                }                                                                                                      \
                const int32_t rows = y_hi - y_lo;                                                                      \
                const int32_t cols = x_hi - x_lo;                                                                      \
                const int32_t count = rows * cols; /* int8: <= 2^23 (checked at compile time) */                       \
                const int32_t half = count / 2;                                                                        \
                /* Tap (ky, kx) of channel ch is image[window + ky * in_row + kx * input.c + ch]. Pointers step\
                 * over whole pixels (channel 0), so that after a row's last tap they point at most one past the\
                 * input. */       \
                const int32_t window = y_lo * in_row + x_lo * p.input.c;                                               \
                for (int32_t ch = 0; ch < p.input.c; ++ch) {                                                           \
                    int32_t acc = op == MCUQ_POOL_AVERAGE ? 0 : (LOWEST); /* |sum| + half < 2^31 (checked) */          \
                    int32_t row = window;                                                                              \
                    for (int32_t y = rows; y > 0; --y) {                                                               \
                        const T *pixel = image + row;                                                                  \
                        for (int32_t x = cols; x > 0; --x) {                                                           \
                            acc = op == MCUQ_POOL_AVERAGE ? acc + pixel[ch] : MCUQ_MAX(acc, (int32_t)pixel[ch]);       \
                            pixel += p.input.c;                                                                        \
                        }                                                                                              \
                        row += in_row;                                                                                 \
                    }                                                                                                  \
                    if (op == MCUQ_POOL_AVERAGE) {                                                                     \
                        /* Round half away from zero; C division truncates toward zero. */                             \
                        acc = acc > 0 ? (acc + half) / count : (acc - half) / count;                                   \
                    }                                                                                                  \
                    *out++ = (T)MCUQ_CLAMP(acc, p.activation.min, p.activation.max);                                   \
                }                                                                                                      \
            }                                                                                                          \
        }                                                                                                              \
    }                                                                                                                  \
    return MCUQ_OK;

/* Pools int8 `input` into `output` with `op` (MCUQ_POOL2D_LOOP). */
static inline mcuq_status mcuq_pool2d(const mcuq_pool2d_params *params, const int8_t *input, int8_t *output,
                                      mcuq_pool_op op)
{
    const mcuq_status status = mcuq_pool2d_check(params, input, output);
    if (status != MCUQ_OK) {
        return status;
    }
    MCUQ_POOL2D_LOOP(int8_t, -128)
}

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

/* Pools int16 `input` into `output` with `op` (MCUQ_POOL2D_LOOP; TFLite 2.14's reference_integer_ops::AveragePool /
 * MaxPool for int16). */
static inline mcuq_status mcuq_pool2d_s16(const mcuq_pool2d_params *params, const int16_t *input, int16_t *output,
                                          mcuq_pool_op op)
{
    const mcuq_status status = mcuq_pool2d_s16_check(params, input, output, op);
    if (status != MCUQ_OK) {
        return status;
    }
    MCUQ_POOL2D_LOOP(int16_t, -32768)
}

#endif /* MCUQ_POOL_COMMON_H */
