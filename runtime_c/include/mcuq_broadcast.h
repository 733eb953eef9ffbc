/* Walking a broadcast binary op's output (ADD, MUL): internal to the runtime.
 *
 * The output is a row-major MCUQ_BROADCAST_DIMS-D array of dims `dims`; the element at index (i0..i5) reads
 * input1[sum_d i_d * strides1[d]] and input2 likewise (stride 0 along a broadcast dimension). The iterator keeps
 * both row offsets up to date with additions only, like an odometer; the kernel walks each row itself.
 */
#ifndef MCUQ_BROADCAST_H
#define MCUQ_BROADCAST_H

#include "mcuq_elementwise.h"

typedef struct {
    int32_t index[MCUQ_BROADCAST_DIMS];
    int32_t offset1;
    int32_t offset2;
} mcuq_broadcast_iter;

/* Starts at row 0 (a row is the innermost dimension, dims[MCUQ_BROADCAST_DIMS - 1] elements); returns the
 * number of rows, or -1 when a dimension is negative. */
static inline int32_t mcuq_broadcast_begin(mcuq_broadcast_iter *it, const int32_t *dims)
{
    int32_t rows = 1;
    for (int32_t d = 0; d < MCUQ_BROADCAST_DIMS; ++d) {
        if (dims[d] < 0) {
            return -1;
        }
        it->index[d] = 0;
        rows *= d < MCUQ_BROADCAST_DIMS - 1 ? dims[d] : 1;
    }
    it->offset1 = 0;
    it->offset2 = 0;
    return rows;
}

/* Advances to the start of the next row (after the last row it wraps to row 0). */
static inline void mcuq_broadcast_next_row(mcuq_broadcast_iter *it, const int32_t *dims, const int32_t *strides1,
                                           const int32_t *strides2)
{
    for (int32_t d = MCUQ_BROADCAST_DIMS - 2; d >= 0; --d) {
        it->offset1 += strides1[d];
        it->offset2 += strides2[d];
        if (++it->index[d] < dims[d]) {
            return;
        }
        it->offset1 -= strides1[d] * dims[d];
        it->offset2 -= strides2[d] * dims[d];
        it->index[d] = 0;
    }
}

#endif /* MCUQ_BROADCAST_H */
