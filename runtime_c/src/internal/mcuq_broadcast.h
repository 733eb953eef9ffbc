/* Walking a broadcast binary op's output (ADD, SUB, MUL; int8 and int16 elements): internal to the runtime.
 *
 * The output is a row-major MCUQ_BROADCAST_DIMS-D array of dims shape->out_dims; the element at index (i0..i5)
 * reads input1[sum_d i_d * input1_strides[d]] and input2 likewise (stride 0 along a broadcast dimension). The
 * walk keeps both row offsets up to date with additions only, like an odometer, and visits each row's elements
 * with the row's innermost strides.
 */
#ifndef MCUQ_BROADCAST_H
#define MCUQ_BROADCAST_H

#include "mcuq_elementwise.h"

/* The walk over elements of type T (int8_t, int16_t), the body of a function with the arguments of
 * mcuq_broadcast_apply: output[k] = fn(params, input1[offset1(k)], input2[offset2(k)]) for every output index k, in
 * order; MCUQ_ERR_ARGUMENT for a NULL array or a negative dimension. */
#define MCUQ_BROADCAST_WALK(T)                                                                                         \
    const int32_t *dims = shape->out_dims;                                                                             \
    const int32_t *strides1 = shape->input1_strides;                                                                   \
    const int32_t *strides2 = shape->input2_strides;                                                                   \
    if (dims == NULL || strides1 == NULL || strides2 == NULL) {                                                        \
        return MCUQ_ERR_ARGUMENT;                                                                                      \
    }                                                                                                                  \
    int32_t index[MCUQ_BROADCAST_DIMS];                                                                                \
    int32_t rows = 1;                                                                                                  \
    for (int32_t d = 0; d < MCUQ_BROADCAST_DIMS; ++d) {                                                                \
        if (dims[d] < 0) {                                                                                             \
            return MCUQ_ERR_ARGUMENT;                                                                                  \
        }                                                                                                              \
        index[d] = 0;                                                                                                  \
        rows *= d < MCUQ_BROADCAST_DIMS - 1 ? dims[d] : 1;                                                             \
    }                                                                                                                  \
    const int32_t len = dims[MCUQ_BROADCAST_DIMS - 1];                                                                 \
    const int32_t step1 = strides1[MCUQ_BROADCAST_DIMS - 1];                                                           \
    const int32_t step2 = strides2[MCUQ_BROADCAST_DIMS - 1];                                                           \
    int32_t offset1 = 0;                                                                                               \
    int32_t offset2 = 0;                                                                                               \
    T *out = output;                                                                                                   \
    for (int32_t r = 0; r < rows; ++r) {                                                                               \
        const T *a = &input1[offset1];                                                                                 \
        const T *b = &input2[offset2];                                                                                 \
        for (int32_t i = 0; i < len; ++i) {                                                                            \
            *out++ = fn(params, a[i * step1], b[i * step2]);                                                           \
        }                                                                                                              \
        /* Next row: advance the odometer over the outer dimensions (after the last row it wraps to row 0). */         \
        for (int32_t d = MCUQ_BROADCAST_DIMS - 2; d >= 0; --d) {                                                       \
            offset1 += strides1[d];                                                                                    \
            offset2 += strides2[d];                                                                                    \
            if (++index[d] < dims[d]) {                                                                                \
                break;                                                                                                 \
            }                                                                                                          \
            offset1 -= strides1[d] * dims[d];                                                                          \
            offset2 -= strides2[d] * dims[d];                                                                          \
            index[d] = 0;                                                                                              \
        }                                                                                                              \
    }                                                                                                                  \
    return MCUQ_OK;

/* One output element from one element of each input; params is the calling kernel's params struct. */
typedef int8_t (*mcuq_broadcast_fn)(const void *params, int8_t x1, int8_t x2);
typedef int16_t (*mcuq_broadcast_s16_fn)(const void *params, int16_t x1, int16_t x2);

/* MCUQ_BROADCAST_WALK over int8 elements. A kernel passes its own static fn, so the compiler inlines the walk and
 * the call: the per-element cost is fn's. */
static inline mcuq_status mcuq_broadcast_apply(const mcuq_broadcast *shape, const void *params, const int8_t *input1,
                                               const int8_t *input2, int8_t *output, mcuq_broadcast_fn fn)
{
    MCUQ_BROADCAST_WALK(int8_t)
}

/* MCUQ_BROADCAST_WALK over int16 elements (ADD, SUB, MUL in 16x8 mode). */
static inline mcuq_status mcuq_broadcast_apply_s16(const mcuq_broadcast *shape, const void *params,
                                                   const int16_t *input1, const int16_t *input2, int16_t *output,
                                                   mcuq_broadcast_s16_fn fn)
{
    MCUQ_BROADCAST_WALK(int16_t)
}

#endif /* MCUQ_BROADCAST_H */
