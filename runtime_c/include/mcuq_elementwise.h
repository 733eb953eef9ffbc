/* Elementwise family: ADD, SUB, MUL (with broadcasting), QUANTIZE (int8 -> int8), RELU, RELU6, LOGISTIC, TANH,
 * HARD_SWISH, all int8 in and out.
 *
 * Semantics are TFLite 2.14's reference kernels; every integer parameter is computed at compile time by
 * mcuq/lower/elementwise.py (binary ops) and mcuq/lower/activations.py (unary ops), and mirrored by
 * mcuq/kernels/elementwise.py:
 *   ADD         reference_integer_ops::Add / BroadcastAdd6DSlow (AddFunc)
 *   SUB         reference_ops::SubElementwise / BroadcastQuantSubSlow (SubFunc): ADD's parameters
 *   MUL         reference_integer_ops::Mul / BroadcastMul4DSlow
 *   QUANTIZE    reference_ops::Requantize             -> mcuq_requantize_s8 (bounds -128, 127)
 *   RELU, RELU6 reference_ops::ReluX (QuantizedReluX)  -> mcuq_requantize_s8 (bounds from the activation)
 *   LOGISTIC, TANH: TFLite's int8 reference path is a 256-entry table filled in Prepare with float math; mcuq
 *               fills the same table at compile time      -> mcuq_lut_s8
 *   HARD_SWISH  reference_ops::HardSwish (16-bit fixed point)
 * Shifts are TFLite's signed exponents (positive = left shift). No kernel here needs scratch, and each may run
 * in place (output == input1, same shape): it reads an input element before writing the output at its index.
 */
#ifndef MCUQ_ELEMENTWISE_H
#define MCUQ_ELEMENTWISE_H
#include "mcuq_types.h"

/* Rank of the loops in mcuq_add_s8, mcuq_sub_s8 and mcuq_mul_s8. */
#define MCUQ_BROADCAST_DIMS     6
/* Largest mcuq_add_params.left_shift: (x - zp) * 2^20 stays below 2^28 in magnitude. */
#define MCUQ_ADD_MAX_LEFT_SHIFT 20

/* How a binary op (ADD, SUB, MUL) walks its output: a row-major MCUQ_BROADCAST_DIMS-D array of dims out_dims whose
 * element at index (i0..i5) reads input1[sum_d i_d * input1_strides[d]] and likewise input2, where a broadcast
 * dimension has stride 0. Shapes are simplified at compile time (size-1 dimensions dropped, neighbouring
 * dimensions merged, leading 1s added), so equal shapes become a single flat loop. */
typedef struct {
    const int32_t *out_dims;       /* [MCUQ_BROADCAST_DIMS], each >= 0 */
    const int32_t *input1_strides; /* [MCUQ_BROADCAST_DIMS], in elements, >= 0; 0 where input1 is broadcast */
    const int32_t *input2_strides; /* [MCUQ_BROADCAST_DIMS], in elements, >= 0; 0 where input2 is broadcast */
} mcuq_broadcast;

/* ADD and SUB parameters (TFLite's ArithmeticParams for the 8-bit path), shared by mcuq_add_s8 and mcuq_sub_s8.
 * TFLite 2.14 prepares int8 SUB exactly as ADD, so input2_multiplier is positive for both. */
typedef struct {
    int32_t input1_zp;          /* [-128, 127] */
    int32_t input2_zp;          /* [-128, 127] */
    int32_t output_zp;          /* [-128, 127] */
    int32_t left_shift;         /* [0, MCUQ_ADD_MAX_LEFT_SHIFT]; 20 for int8 */
    int32_t input1_multiplier;  /* in [2^30, 2^31) or 0 */
    int32_t input1_shift;       /* [-31, 0] */
    int32_t input2_multiplier;  /* in [2^30, 2^31) or 0 */
    int32_t input2_shift;       /* [-31, 0] */
    int32_t output_multiplier;  /* in [2^30, 2^31) or 0 */
    int32_t output_shift;       /* [-31, 0] */
    mcuq_activation activation; /* [-128, 127], min <= max */
    mcuq_broadcast broadcast;
} mcuq_add_params;

/* int8 addition with broadcasting: each input is rescaled to a common scale with left_shift extra bits, the two
 * are added, and the sum is rescaled to the output scale, offset by output_zp and clamped to the activation.
 * Returns MCUQ_ERR_ARGUMENT for a NULL pointer, a negative dimension, a shift outside its range or an empty
 * activation range. */
mcuq_status mcuq_add_s8(const mcuq_add_params *params, const int8_t *input1, const int8_t *input2, int8_t *output);

/* int8 subtraction with broadcasting, input1 - input2: as mcuq_add_s8 but the rescaled input2 is subtracted from
 * the rescaled input1 (TFLite 2.14's SubFunc; not ADD with a negated input2_multiplier, which rounds exact ties
 * the other way). Errors as mcuq_add_s8. */
mcuq_status mcuq_sub_s8(const mcuq_add_params *params, const int8_t *input1, const int8_t *input2, int8_t *output);

/* Same-shape ADD and SUB (no broadcast) of the dsp and mve paths, compiled from mcuq_add_params by
 * mcuq/kernels/elementwise_fast.py. Each input's rescaling to the common scale depends on its int8 value alone, so
 * it is a 256-entry table, filled at compile time with twice mcuq_add_s8's value (SUB: input2's table negated);
 * only the output rescale runs per element. Largest table magnitude: 2^29. */
#define MCUQ_ADD_FAST_TABLE_MAX 536870912
typedef struct {
    int32_t size;                /* number of elements, >= 0 */
    int32_t output_zp;           /* [-128, 127] */
    int32_t output_multiplier;   /* in [2^30, 2^31) or 0 */
    int32_t output_shift;        /* [-31, 0] */
    mcuq_activation activation;  /* [-128, 127], min <= max */
    const int32_t *input1_table; /* [256], by bit pattern: 2 * ((x - zp1) << left_shift rescaled), table[(uint8_t)x] */
    const int32_t *input2_table; /* [256], likewise for input2; negated for SUB */
} mcuq_add_fast_params;

/* out[i] = clamp(MultiplyByQuantizedMultiplierSmallerThanOneExp((t1[x1[i]] + t2[x2[i]]) / 2, output_multiplier,
 * output_shift) + output_zp, activation): the bits of mcuq_add_s8 (mcuq_sub_s8) on same-shape inputs. The output may
 * be input1 or input2 (or start before either): each block of 4 elements is read before it is written. _dsp: SMMLAR
 * and SIMD clamps where __ARM_FEATURE_DSP, _mve: Helium gathers where __ARM_FEATURE_MVE; plain C otherwise.
 * Returns MCUQ_ERR_ARGUMENT for a NULL pointer, a negative size, a shift, multiplier or activation out of range. */
mcuq_status mcuq_add_s8_dsp(const mcuq_add_fast_params *params, const int8_t *input1, const int8_t *input2,
                            int8_t *output);
mcuq_status mcuq_add_s8_mve(const mcuq_add_fast_params *params, const int8_t *input1, const int8_t *input2,
                            int8_t *output);

/* MUL parameters. */
typedef struct {
    int32_t input1_zp;          /* [-128, 127] */
    int32_t input2_zp;          /* [-128, 127] */
    int32_t output_zp;          /* [-128, 127] */
    int32_t output_multiplier;  /* in [2^30, 2^31) or 0 */
    int32_t output_shift;       /* [-31, 30] */
    mcuq_activation activation; /* [-128, 127], min <= max */
    mcuq_broadcast broadcast;
} mcuq_mul_params;

/* int8 multiplication with broadcasting: out = clamp(MultiplyByQuantizedMultiplier((x1 - input1_zp) *
 * (x2 - input2_zp), output_multiplier, output_shift) + output_zp, activation.min, activation.max).
 * Errors as mcuq_add_s8. */
mcuq_status mcuq_mul_s8(const mcuq_mul_params *params, const int8_t *input1, const int8_t *input2, int8_t *output);

/* Requantization parameters (QUANTIZE int8 -> int8, RELU, RELU6). */
typedef struct {
    int32_t size;               /* number of elements, >= 0 */
    int32_t input_zp;           /* [-128, 127] */
    int32_t output_zp;          /* [-128, 127] */
    int32_t multiplier;         /* in [2^30, 2^31) or 0 */
    int32_t shift;              /* [-31, 30] */
    mcuq_activation activation; /* [-128, 127], min <= max */
} mcuq_requantize_params;

/* out[i] = clamp(MultiplyByQuantizedMultiplier(in[i] - input_zp, multiplier, shift) + output_zp,
 * activation.min, activation.max). Returns MCUQ_ERR_ARGUMENT for a NULL pointer, a negative size, a shift outside
 * its range or an empty activation range. */
mcuq_status mcuq_requantize_s8(const mcuq_requantize_params *params, const int8_t *input, int8_t *output);

/* Table lookup parameters (LOGISTIC, TANH). */
typedef struct {
    int32_t size;        /* number of elements, >= 0 */
    const int8_t *table; /* [256], indexed by the input's bit pattern: table[(uint8_t)x] */
} mcuq_lut_params;

/* out[i] = table[(uint8_t)in[i]]. Returns MCUQ_ERR_ARGUMENT for a NULL pointer or a negative size. */
mcuq_status mcuq_lut_s8(const mcuq_lut_params *params, const int8_t *input, int8_t *output);

/* HARD_SWISH parameters (TFLite's HardSwishParams; the fixed-point multipliers are 16-bit values). */
typedef struct {
    int32_t size;                                /* number of elements, >= 0 */
    int32_t input_zp;                            /* [-128, 127] */
    int32_t output_zp;                           /* [-128, 127] */
    int32_t output_multiplier_fixedpoint_int16;  /* [0, 32767] */
    int32_t output_multiplier_exponent;          /* [-31, 0] */
    int32_t reluish_multiplier_fixedpoint_int16; /* [0, 32767] */
    int32_t reluish_multiplier_exponent;         /* [-31, 31] */
} mcuq_hard_swish_params;

/* int8 hard swish, x * relu6(x + 3) / 6, in TFLite's 16-bit fixed-point arithmetic. Returns MCUQ_ERR_ARGUMENT for
 * a NULL pointer, a negative size or a multiplier or exponent outside its range. */
mcuq_status mcuq_hard_swish_s8(const mcuq_hard_swish_params *params, const int8_t *input, int8_t *output);

/* ---- 16x8 mode: int16 activations (TFLite 2.14's int16 kernels) -------------------------------------------------
 * int16 tensors are symmetric (zero point 0 in TFLite's 16x8 models). ADD, SUB, MUL and QUANTIZE take the int8
 * kernels' parameter structs with the value ranges noted here; LOGISTIC and TANH have their own. Each kernel may run
 * in place (output == input1), except the QUANTIZE kernels that change the element size. */

/* Left shift of ADD and SUB on int16 inputs (add.cc's general int16 path): 65535 << 15 stays below 2^31. */
#define MCUQ_ADD_S16_LEFT_SHIFT 15

/* int16 addition with broadcasting, add.cc's general int16 path (pot_scale_int16 false): as mcuq_add_s8 on int16
 * values, with zero points and activation bounds in [-32768, 32767] and left_shift in [0, MCUQ_ADD_S16_LEFT_SHIFT].
 * Errors as mcuq_add_s8, and MCUQ_ERR_ARGUMENT for a zero point or bound outside int16. */
mcuq_status mcuq_add_s16(const mcuq_add_params *params, const int16_t *input1, const int16_t *input2, int16_t *output);

/* int16 subtraction with broadcasting, input1 - input2 (sub.cc's general int16 path): as mcuq_add_s16, the rescaled
 * input2 subtracted. Errors as mcuq_add_s16. */
mcuq_status mcuq_sub_s16(const mcuq_add_params *params, const int16_t *input1, const int16_t *input2, int16_t *output);

/* int16 multiplication with broadcasting (reference_integer_ops::Mul on int16): out = clamp(
 * MultiplyByQuantizedMultiplier(x1 * x2, output_multiplier, output_shift), activation). Zero points must be 0 and
 * output_shift in [-31, 0] (|x1 * x2| <= 2^30 is never shifted left); activation bounds in [-32768, 32767].
 * Errors as mcuq_mul_s8, and MCUQ_ERR_ARGUMENT for a non-zero zero point or a positive shift. */
mcuq_status mcuq_mul_s16(const mcuq_mul_params *params, const int16_t *input1, const int16_t *input2, int16_t *output);

/* QUANTIZE between int8 and int16 (reference_ops::Requantize): out = clamp(MultiplyByQuantizedMultiplier(in -
 * input_zp, multiplier, shift) + output_zp, activation), with zero points in the range of their tensor's type and
 * the activation bounds the output type's. int16 -> int16 may run in place. tflite-runtime 2.14 refuses int8 ->
 * int16 (quantize.cc); mcuq_requantize_s8_s16 computes what TFLite Micro's Requantize does. Returns
 * MCUQ_ERR_ARGUMENT for a NULL pointer, a negative size, a shift outside [-31, 30] or a zero point or bound out of
 * range. */
mcuq_status mcuq_requantize_s16(const mcuq_requantize_params *params, const int16_t *input, int16_t *output);
mcuq_status mcuq_requantize_s8_s16(const mcuq_requantize_params *params, const int8_t *input, int16_t *output);
mcuq_status mcuq_requantize_s16_s8(const mcuq_requantize_params *params, const int16_t *input, int8_t *output);

/* int16 LOGISTIC and TANH parameters (activations.cc's int16 Prepare): the input is rescaled to
 * x' = (x * input_multiplier + round) >> input_left_shift, round = 2^(input_left_shift - 1) (0 for no shift). */
typedef struct {
    int32_t size;             /* number of elements, >= 0 */
    int32_t input_multiplier; /* [1, 65535] with no shift, [1, 32767] otherwise (x' never leaves int32) */
    int32_t input_left_shift; /* [0, 31] */
} mcuq_tanh_logistic_s16_params;

/* int16 LOGISTIC (reference_integer_ops::Logistic): sigmoid from a 256-entry table of sigmoid(i / 24), interpolated
 * with 9 fraction bits of x'; output scale 2^-15, zero point 0, values in [0, 32767]. int16 TANH
 * (reference_integer_ops::Tanh): 2 sigmoid(2x) - 1 from the same table with 8 fraction bits; values in [-32768,
 * 32767]. Return MCUQ_ERR_ARGUMENT for a NULL pointer, a negative size or a multiplier or shift out of range. */
mcuq_status mcuq_logistic_s16(const mcuq_tanh_logistic_s16_params *params, const int16_t *input, int16_t *output);
mcuq_status mcuq_tanh_s16(const mcuq_tanh_logistic_s16_params *params, const int16_t *input, int16_t *output);

#endif /* MCUQ_ELEMENTWISE_H */
