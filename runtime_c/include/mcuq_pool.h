/* Pooling family: AVERAGE_POOL_2D, MAX_POOL_2D and MEAN, int8.
 *
 * Semantics are TFLite 2.14's reference kernels (reference_integer_ops::AveragePool / MaxPool,
 * reference_ops::QuantizedMeanOrSum). Every integer parameter is computed at compile time by mcuq/lower/pool.py
 * and mirrored by mcuq/kernels/pool.py.
 */
#ifndef MCUQ_POOL_H
#define MCUQ_POOL_H
#include "mcuq_types.h"

/* AVERAGE_POOL_2D / MAX_POOL_2D parameters. Shapes: input [input.n, input.h, input.w, input.c], output
 * [output.n == input.n, output.h, output.w, output.c == input.c], all sizes >= 1. window.filter and
 * window.stride are >= 1, window.dilation is 1 (pooling windows are not dilated) and window.pad (>= 0) is the
 * top / left padding. Output (oy, ox) pools the window whose top-left input pixel is
 * (oy * stride.h - pad.h, ox * stride.w - pad.w), clamped to the input: padding is never read or counted. */
typedef struct {
    mcuq_dims input;
    mcuq_dims output;
    mcuq_window window;
    mcuq_activation activation; /* [-128, 127], min <= max: the fused activation's bounds */
} mcuq_pool2d_params;

/* int8 average pooling, NHWC: the sum of the raw int8 values of the window's in-bounds taps divided by their
 * count, rounded half away from zero, clamped to the activation bounds. Input and output share their
 * quantization (not rescaled). Needs mcuq_average_pool2d_s8_scratch_size(params) bytes of scratch in ctx (0 for
 * this portable kernel). Returns MCUQ_ERR_ARGUMENT for a NULL pointer, too little scratch, a non-positive size,
 * filter or stride, a negative padding, mismatched shapes, an empty activation range or a window with no
 * in-bounds tap, and MCUQ_ERR_UNSUPPORTED for a dilation other than 1. */
mcuq_status mcuq_average_pool2d_s8(const mcuq_context *ctx, const mcuq_pool2d_params *params, const int8_t *input,
                                   int8_t *output);
int32_t mcuq_average_pool2d_s8_scratch_size(const mcuq_pool2d_params *params);

/* The largest window (filter.h * filter.w taps) mcuq_average_pool2d_s8_dsp sums in int16 lanes; larger ones run
 * the portable loop inside it. */
#define MCUQ_AVG_POOL_DSP_MAX_TAPS 255

/* AVERAGE_POOL_2D, dsp path (SXTB16/SADD16 over four channels; plain C without the DSP extension): the same
 * results, arguments, scratch (none) and errors as mcuq_average_pool2d_s8. */
mcuq_status mcuq_average_pool2d_s8_dsp(const mcuq_context *ctx, const mcuq_pool2d_params *params, const int8_t *input,
                                       int8_t *output);
int32_t mcuq_average_pool2d_s8_dsp_scratch_size(const mcuq_pool2d_params *params);

/* int8 max pooling, NHWC: the largest int8 value of the window's in-bounds taps, clamped to the activation
 * bounds. Needs no scratch. Errors as mcuq_average_pool2d_s8. */
mcuq_status mcuq_max_pool2d_s8(const mcuq_pool2d_params *params, const int8_t *input, int8_t *output);

#define MCUQ_MEAN_MAX_DIMS 8

/* MEAN parameters. The input is walked as a row-major array whose axes are split, outer to inner, into kept
 * axes (kept_dims / kept_strides: one output per index, in output order) and reduced axes (reduced_dims /
 * reduced_strides); strides count int8 elements of the input. num_outputs = product of kept_dims and
 * num_reduced = product of reduced_dims; ranks are in [1, MCUQ_MEAN_MAX_DIMS] (a (1, 0) entry pads an empty
 * list). Each output is clamp(MultiplyByQuantizedMultiplier(sum - input_zp_sum, multiplier, shift)
 * + output_zp, -128, 127), where multiplier and shift already include the division by num_reduced. */
typedef struct {
    int32_t num_outputs;            /* >= 1 */
    int32_t num_reduced;            /* >= 1 */
    int32_t kept_rank;              /* [1, MCUQ_MEAN_MAX_DIMS] */
    const int32_t *kept_dims;       /* [kept_rank], each >= 1 */
    const int32_t *kept_strides;    /* [kept_rank], each >= 0 */
    int32_t reduced_rank;           /* [1, MCUQ_MEAN_MAX_DIMS] */
    const int32_t *reduced_dims;    /* [reduced_rank], each >= 1 */
    const int32_t *reduced_strides; /* [reduced_rank], each >= 0 */
    int32_t input_zp_sum;           /* input zero point * num_reduced */
    int32_t multiplier;             /* [0, 2^31) */
    int32_t shift;                  /* [-31, 30]; the shifted sum cannot overflow (checked at compile time) */
    int32_t output_zp;              /* [-128, 127] */
} mcuq_mean_params;

/* int8 MEAN over a set of axes (TFLite's integer QuantizedMeanOrSum); input and output quantization may
 * differ. The int32 sum cannot overflow (num_reduced * 255 < 2^31, checked at compile time). Needs no scratch.
 * Returns MCUQ_ERR_ARGUMENT for a NULL pointer, a rank below 1 or a size, stride or shift out of range, and
 * MCUQ_ERR_UNSUPPORTED for a rank above MCUQ_MEAN_MAX_DIMS. */
mcuq_status mcuq_mean_s8(const mcuq_mean_params *params, const int8_t *input, int8_t *output);

/* ---- 16x8 mode: int16 activations (TFLite's reference_integer_ops int16 kernels) ----------------------------
 * int16 tensors are symmetric (zero point 0). The kernels take the int8 kernels' parameter structs; their value
 * ranges widen to int16 where noted. */

/* int16 average pooling, NHWC: as mcuq_average_pool2d_s8 on int16 values (activation bounds in [-32768, 32767],
 * min <= max). The int32 sum cannot overflow: a window has at most MCUQ_POOL_S16_MAX_TAPS in-bounds taps
 * (checked at compile time and here). Needs mcuq_average_pool2d_s16_scratch_size(params) bytes of scratch (0).
 * Errors as mcuq_average_pool2d_s8, and MCUQ_ERR_ARGUMENT for a window of more than MCUQ_POOL_S16_MAX_TAPS taps. */
#define MCUQ_POOL_S16_MAX_TAPS 65535
mcuq_status mcuq_average_pool2d_s16(const mcuq_context *ctx, const mcuq_pool2d_params *params, const int16_t *input,
                                    int16_t *output);
int32_t mcuq_average_pool2d_s16_scratch_size(const mcuq_pool2d_params *params);

/* int16 max pooling, NHWC: the largest int16 value of the window's in-bounds taps, clamped to the activation
 * bounds (in [-32768, 32767]). Needs no scratch. Errors as mcuq_average_pool2d_s8. */
mcuq_status mcuq_max_pool2d_s16(const mcuq_pool2d_params *params, const int16_t *input, int16_t *output);

/* int16 MEAN (TFLite's integer QuantizedMeanOrSum on int16; zero points 0, so input_zp_sum and output_zp are 0
 * in TFLite models): as mcuq_mean_s8, clamped to [-32768, 32767]. output_zp is in [-32768, 32767]. The int32
 * sum cannot overflow (num_reduced * 32768 < 2^31, checked at compile time). Needs no scratch. Errors as
 * mcuq_mean_s8. */
mcuq_status mcuq_mean_s16(const mcuq_mean_params *params, const int16_t *input, int16_t *output);

#endif /* MCUQ_POOL_H */
