/* Walking a broadcast binary op's output for int16 operands (ADD, SUB, MUL in 16x8 mode): internal to the runtime.
 *
 * The same walk as mcuq_broadcast.h (see there) over int16 elements: the output is a row-major
 * MCUQ_BROADCAST_DIMS-D array of dims shape->out_dims whose element at index (i0..i5) reads
 * input1[sum_d i_d * input1_strides[d]] and input2 likewise (stride 0 along a broadcast dimension).
 */
#ifndef MCUQ_BROADCAST_S16_H
#define MCUQ_BROADCAST_S16_H

#include "mcuq_elementwise.h"

/* One int16 output element from one element of each input; params is the calling kernel's params struct. */
typedef int16_t (*mcuq_broadcast_s16_fn)(const void *params, int16_t x1, int16_t x2);

/* output[k] = fn(params, input1[offset1(k)], input2[offset2(k)]) for every output index k, in order. Returns
 * MCUQ_ERR_ARGUMENT for a NULL array or a negative dimension. */
static inline mcuq_status mcuq_broadcast_apply_s16(const mcuq_broadcast *shape, const void *params,
                                                   const int16_t *input1, const int16_t *input2, int16_t *output,
                                                   mcuq_broadcast_s16_fn fn)
{
    const int32_t *dims = shape->out_dims;
    const int32_t *strides1 = shape->input1_strides;
    const int32_t *strides2 = shape->input2_strides;
    if (dims == NULL || strides1 == NULL || strides2 == NULL) {
        return MCUQ_ERR_ARGUMENT;
    }
    int32_t index[MCUQ_BROADCAST_DIMS];
    int32_t rows = 1;
    for (int32_t d = 0; d < MCUQ_BROADCAST_DIMS; ++d) {
        if (dims[d] < 0) {
            return MCUQ_ERR_ARGUMENT;
        }
        index[d] = 0;
        rows *= d < MCUQ_BROADCAST_DIMS - 1 ? dims[d] : 1;
    }
    const int32_t len = dims[MCUQ_BROADCAST_DIMS - 1];
    const int32_t step1 = strides1[MCUQ_BROADCAST_DIMS - 1];
    const int32_t step2 = strides2[MCUQ_BROADCAST_DIMS - 1];
    int32_t offset1 = 0;
    int32_t offset2 = 0;
    int16_t *out = output;
    for (int32_t r = 0; r < rows; ++r) {
        const int16_t *a = &input1[offset1];
        const int16_t *b = &input2[offset2];
        for (int32_t i = 0; i < len; ++i) {
            *out++ = fn(params, a[i * step1], b[i * step2]);
        }
        /* Next row: advance the odometer over the outer dimensions (after the last row it wraps to row 0). */
        for (int32_t d = MCUQ_BROADCAST_DIMS - 2; d >= 0; --d) {
            offset1 += strides1[d];
            offset2 += strides2[d];
            if (++index[d] < dims[d]) {
                break;
            }
            offset1 -= strides1[d] * dims[d];
            offset2 -= strides2[d] * dims[d];
            index[d] = 0;
        }
    }
    return MCUQ_OK;
}

#endif /* MCUQ_BROADCAST_S16_H */
