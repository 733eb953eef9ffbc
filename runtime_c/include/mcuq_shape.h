/* Data-movement family: PAD, CONCATENATION, TRANSPOSE and a plain copy (int8).
 *
 * None of these kernels changes a value: TFLite 2.14 runs int8 CONCATENATION only when every input has the
 * output's scale and zero point, and copies PAD and TRANSPOSE data unchanged. RESHAPE and SQUEEZE need no
 * kernel at all (the output shares the input's memory); a reshape between two caller-owned buffers is a copy.
 *
 * Shapes are simplified at compile time by mcuq/lower/shape.py (size-1 dimensions dropped, neighbouring
 * dimensions merged) and padded with leading 1s to the fixed rank each kernel loops over, so the kernels never
 * see the model's rank. mcuq/kernels/shape.py mirrors the structs and the rank constants.
 *
 * No kernel here takes an mcuq_context: they move bytes with memcpy / memset / indexed loads and need no scratch
 * on any path (an optimized version changes the copy loops, not the memory they use).
 */
#ifndef MCUQ_SHAPE_H
#define MCUQ_SHAPE_H
#include "mcuq_types.h"

/* Rank of the loops in mcuq_pad_s8 (TFLite 2.14's PAD supports up to 5-D). */
#define MCUQ_PAD_DIMS       5
/* Rank of the loops in mcuq_transpose_s8 (TFLite 2.14's TRANSPOSE supports up to 6-D). */
#define MCUQ_TRANSPOSE_DIMS 6

/* Copy parameters. */
typedef struct {
    int32_t size; /* number of int8 elements to copy, >= 0 */
} mcuq_copy_params;

/* Copy `size` int8 values from `in` to `out`, which may overlap (memmove) or be the same buffer (nothing to do).
 * Returns MCUQ_ERR_ARGUMENT for a NULL pointer or a negative size. */
mcuq_status mcuq_copy_s8(const mcuq_copy_params *params, const int8_t *in, int8_t *out);

/* PAD parameters: a row-major MCUQ_PAD_DIMS-D tensor (lower ranks have leading 1s). */
typedef struct {
    int32_t pad_value;         /* [-128, 127]: written into the padding (TFLite: the output's zero point) */
    const int32_t *in_dims;    /* [MCUQ_PAD_DIMS] input dimensions, each >= 1 */
    const int32_t *pad_before; /* [MCUQ_PAD_DIMS] padding before each dimension, >= 0 */
    const int32_t *pad_after;  /* [MCUQ_PAD_DIMS] padding after each dimension, >= 0 */
} mcuq_pad_params;

/* Constant padding of an int8 tensor: out has dims in_dims[d] + pad_before[d] + pad_after[d]; positions outside
 * the input hold pad_value. in and out must not overlap. Returns MCUQ_ERR_ARGUMENT for a NULL pointer or a
 * parameter out of range. */
mcuq_status mcuq_pad_s8(const mcuq_pad_params *params, const int8_t *in, int8_t *out);

/* CONCATENATION parameters: row-major tensors seen as [outer_size, copy_sizes[i]], joined along the second axis. */
typedef struct {
    int32_t num_inputs;        /* >= 1 */
    int32_t outer_size;        /* product of the dimensions before the concatenation axis, >= 0 */
    const int32_t *copy_sizes; /* [num_inputs] input i's (axis dim * product of the following dims), >= 0 */
} mcuq_concatenation_params;

/* Concatenation of int8 tensors along one axis: for each of the outer_size outer positions, out receives
 * copy_sizes[0] values of inputs[0], then copy_sizes[1] values of inputs[1], and so on (inputs[i] may be NULL
 * when copy_sizes[i] is 0). All inputs share the output's quantization parameters, so values are copied
 * unchanged. No input may overlap out. Returns MCUQ_ERR_ARGUMENT for a NULL pointer or a parameter out of
 * range. */
mcuq_status mcuq_concatenation_s8(const mcuq_concatenation_params *params, const int8_t *const inputs[], int8_t *out);

/* TRANSPOSE parameters: the output is row-major MCUQ_TRANSPOSE_DIMS-D (lower ranks have leading 1s). */
typedef struct {
    const int32_t *out_dims;   /* [MCUQ_TRANSPOSE_DIMS] output dimensions, each >= 1 */
    const int32_t *in_strides; /* [MCUQ_TRANSPOSE_DIMS] input stride (in elements) of each output dimension, >= 0 */
} mcuq_transpose_params;

/* Permutation of the axes of an int8 tensor: out at index (i0..i5) holds in[sum_d i_d * in_strides[d]]. in and
 * out must not overlap. Returns MCUQ_ERR_ARGUMENT for a NULL pointer or a parameter out of range. */
mcuq_status mcuq_transpose_s8(const mcuq_transpose_params *params, const int8_t *in, int8_t *out);

/* ---- int16 (TFLite's 16x8 mode): the same data movement on int16 elements ----------------------------------
 * Sizes, dims and strides count int16 elements; the parameter structs are the int8 kernels'. */

/* Copy `size` int16 values from `in` to `out` (memmove semantics; the same buffer is a no-op). Errors as
 * mcuq_copy_s8. */
mcuq_status mcuq_copy_s16(const mcuq_copy_params *params, const int16_t *in, int16_t *out);

/* Constant padding of an int16 tensor, as mcuq_pad_s8; pad_value is in [-32768, 32767] (TFLite: the output's
 * zero point, 0). in and out must not overlap. Errors as mcuq_pad_s8. */
mcuq_status mcuq_pad_s16(const mcuq_pad_params *params, const int16_t *in, int16_t *out);

/* Concatenation of int16 tensors, as mcuq_concatenation_s8: values are copied unchanged (TFLite 2.14's int16
 * CONCATENATION never rescales). No input may overlap out. Errors as mcuq_concatenation_s8. */
mcuq_status mcuq_concatenation_s16(const mcuq_concatenation_params *params, const int16_t *const inputs[],
                                   int16_t *out);

/* Permutation of the axes of an int16 tensor, as mcuq_transpose_s8. in and out must not overlap. Errors as
 * mcuq_transpose_s8. */
mcuq_status mcuq_transpose_s16(const mcuq_transpose_params *params, const int16_t *in, int16_t *out);

#endif /* MCUQ_SHAPE_H */
