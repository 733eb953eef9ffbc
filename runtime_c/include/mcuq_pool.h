/* Pooling family: AVERAGE_POOL_2D, MAX_POOL_2D and MEAN, int8.
 *
 * Semantics are TFLite 2.14's reference kernels (reference_integer_ops::AveragePool / MaxPool,
 * reference_ops::QuantizedMeanOrSum); every integer parameter is computed at compile time by mcuq/lower/pool.py.
 */
#ifndef MCUQ_POOL_H
#define MCUQ_POOL_H
#include "mcuq.h"

/* AVERAGE_POOL_2D / MAX_POOL_2D parameters. Shapes: input [batches, input_h, input_w, channels], output
 * [batches, output_h, output_w, channels]. Output (oy, ox) pools the window whose top-left input pixel is
 * (oy * stride_h - pad_h, ox * stride_w - pad_w), clamped to the input: padding is never read or counted. */
typedef struct {
    int32_t batches;
    int32_t input_h;
    int32_t input_w;
    int32_t channels;
    int32_t output_h;
    int32_t output_w;
    int32_t filter_h;
    int32_t filter_w;
    int32_t stride_h;
    int32_t stride_w;
    int32_t pad_h;   /* top padding, >= 0 */
    int32_t pad_w;   /* left padding, >= 0 */
    int32_t act_min; /* [-128, 127], act_min <= act_max: the fused activation's bounds */
    int32_t act_max;
} mcuq_pool2d_params;

/* int8 average pooling, NHWC: the sum of the raw int8 values of the window's in-bounds taps divided by their
 * count, rounded half away from zero, clamped to [act_min, act_max]. Input and output share their quantization
 * (not rescaled). Returns MCUQ_ERR_ARGUMENT for a NULL pointer, a non-positive size or stride, or a window with
 * no in-bounds tap. */
mcuq_status mcuq_average_pool2d_s8(const mcuq_pool2d_params *params, const int8_t *input, int8_t *output);

/* int8 max pooling, NHWC: the largest int8 value of the window's in-bounds taps, clamped to
 * [act_min, act_max]. Returns MCUQ_ERR_ARGUMENT for a NULL pointer, a non-positive size or stride, or a window
 * with no in-bounds tap. */
mcuq_status mcuq_max_pool2d_s8(const mcuq_pool2d_params *params, const int8_t *input, int8_t *output);

#define MCUQ_MEAN_MAX_DIMS 8

/* MEAN parameters. The input is walked as a row-major array whose axes are split, outer to inner, into kept
 * axes (kept_dims / kept_strides: one output per index, in output order) and reduced axes (reduced_dims /
 * reduced_strides); strides count int8 elements of the input. num_outputs = product of kept_dims and
 * num_reduced = product of reduced_dims; ranks are in [1, MCUQ_MEAN_MAX_DIMS] (a (1, 0) entry pads an empty
 * list). Each output is clamp(MultiplyByQuantizedMultiplier(sum - input_zp_sum, multiplier, shift)
 * + output_zp, -128, 127), where multiplier and shift already include the division by num_reduced. */
typedef struct {
    int32_t num_outputs;
    int32_t num_reduced;
    int32_t kept_rank;
    const int32_t *kept_dims;    /* [kept_rank] */
    const int32_t *kept_strides; /* [kept_rank] */
    int32_t reduced_rank;
    const int32_t *reduced_dims;    /* [reduced_rank] */
    const int32_t *reduced_strides; /* [reduced_rank] */
    int32_t input_zp_sum; /* input zero point * num_reduced */
    int32_t multiplier;   /* [0, 2^31) */
    int32_t shift;        /* [-31, 30]; the shifted sum cannot overflow (checked at compile time) */
    int32_t output_zp;    /* [-128, 127] */
} mcuq_mean_params;

/* int8 MEAN over a set of axes (TFLite's integer QuantizedMeanOrSum); input and output quantization may
 * differ. The int32 sum cannot overflow (num_reduced * 255 < 2^31, checked at compile time). Returns
 * MCUQ_ERR_ARGUMENT for a NULL pointer or a rank or size out of range. */
mcuq_status mcuq_mean_s8(const mcuq_mean_params *params, const int8_t *input, int8_t *output);

#endif /* MCUQ_POOL_H */
