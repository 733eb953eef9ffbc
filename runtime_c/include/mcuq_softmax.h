/* SOFTMAX, int8 input and int8 output (scale 1/256, zero point -128), over the last axis.
 *
 * Semantics are TFLite 2.14's reference kernel (reference_ops::Softmax, gemmlowp fixed point): per row, the
 * differences x - max(row) that are >= diff_min are rescaled by input_multiplier * 2^input_left_shift into Q5.26,
 * exponentiated (exp_on_negative_values, Q0.31), summed in Q12.19, and each exp is multiplied by the reciprocal
 * of the sum; elements below diff_min give -128. The parameters are TFLite's PreprocessSoftmaxScaling and
 * CalculateInputRadius, computed at compile time by mcuq/lower/softmax.py and mirrored by mcuq/kernels/softmax.py.
 *
 * No mcuq_context: the kernel keeps a row's maximum and sum of exps in registers and needs no scratch on any path
 * (an optimized version would use a lookup table in flash, as CMSIS-NN's arm_softmax_s8 does, still no scratch).
 */
#ifndef MCUQ_SOFTMAX_H
#define MCUQ_SOFTMAX_H
#include "mcuq_types.h"

/* The largest row mcuq_softmax_s8 implements: each element adds at most exp(0) = 2^19 in Q12.19 to the int32 sum
 * of exps, so (2^31 - 1) >> 19 elements cannot overflow it. */
#define MCUQ_SOFTMAX_MAX_DEPTH 4095

/* SOFTMAX parameters: the tensor is [outer_size, depth] in memory (softmax over the innermost axis). */
typedef struct {
    int32_t outer_size;       /* >= 1: product of all dimensions but the last */
    int32_t depth;            /* [1, MCUQ_SOFTMAX_MAX_DEPTH]: the last dimension */
    int32_t input_multiplier; /* [2^30, 2^31): beta * input_scale * 2^26 = multiplier * 2^(left_shift - 31) */
    int32_t input_left_shift; /* [0, 31] */
    int32_t diff_min;         /* <= 0: -floor(31 * 2^26 / 2^input_left_shift) */
} mcuq_softmax_params;

/* int8 softmax over the last axis: input and output are [outer_size][depth], any int8 input values; output
 * values in [-128, 127] mean (q + 128) / 256. Returns MCUQ_ERR_ARGUMENT for a NULL pointer or a size or
 * parameter out of range, MCUQ_ERR_UNSUPPORTED for a depth above MCUQ_SOFTMAX_MAX_DEPTH. */
mcuq_status mcuq_softmax_s8(const mcuq_softmax_params *params, const int8_t *input, int8_t *output);

/* ---- 16x8 mode: int16 SOFTMAX (TFLite's reference_ops::SoftmaxInt16) -------------------------------------------
 * Per row: d = x - max(row) in [-65535, 0] is rescaled by input_multiplier * 2^(input_shift - 31) onto the exp
 * table's [-10, 0] (MultiplyByQuantizedMultiplier), recentred and clamped to int16 and looked up in exp_lut (Q0.15);
 * the exps are summed in Q16.15, the sum normalised to [1, 2) and its reciprocal looked up in
 * one_over_one_plus_x_lut; out = clamp((exp * reciprocal + round) >> (31 - clz(sum)), 0, 32767). Output scale
 * 1/32768, zero point 0. The tables are TFLite's LUTPopulate tables (513 entries: 512 segments and an end point,
 * interpolated with 7 bits), computed at compile time by mcuq/lower/lut16.py. The exps are kept in the output row,
 * so the output must not overlap the input. */
#define MCUQ_SOFTMAX_S16_MAX_DEPTH 65536 /* depth * 32767 < 2^31: the sum of exps fits int32 */
#define MCUQ_LUT16_SIZE            513

typedef struct {
    int32_t outer_size;                     /* >= 0: product of all dimensions but the last */
    int32_t depth;                          /* [1, MCUQ_SOFTMAX_S16_MAX_DEPTH]: the last dimension */
    int32_t input_multiplier;               /* in [2^30, 2^31) or 0: beta * input_scale / (10 / 65535) */
    int32_t input_shift;                    /* [-31, 15]: TFLite's exponent (65535 << 15 < 2^31) */
    const int16_t *exp_lut;                 /* [MCUQ_LUT16_SIZE]: exp over [-10, 0], Q0.15 */
    const int16_t *one_over_one_plus_x_lut; /* [MCUQ_LUT16_SIZE]: 1 / (1 + x) over [0, 1], Q0.15 */
} mcuq_softmax_s16_params;

/* int16 softmax over the last axis: input and output are [outer_size][depth]; output values in [0, 32767] mean
 * q / 32768. Returns MCUQ_ERR_ARGUMENT for a NULL pointer, a size or shift out of range or tables giving a row a
 * sum of exps below 2 (TFLite's never do), MCUQ_ERR_UNSUPPORTED for a depth above MCUQ_SOFTMAX_S16_MAX_DEPTH. */
mcuq_status mcuq_softmax_s16(const mcuq_softmax_s16_params *params, const int16_t *input, int16_t *output);

#endif /* MCUQ_SOFTMAX_H */
