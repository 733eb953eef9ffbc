/* The data-movement kernels' argument checks and loops, shared by the int8 and int16 entry points (mcuq_shape.h):
 * internal to the runtime. A loop is a macro over the element type T, expanded in each kernel's body, so each entry
 * point compiles to the loop it had on its own type. */
#ifndef MCUQ_SHAPE_COMMON_H
#define MCUQ_SHAPE_COMMON_H

#include <string.h>

#include "mcuq_shape.h"

/* COPY of params->size elements of `elem` bytes (memmove: in and out may overlap; the same buffer is a no-op). */
static inline mcuq_status mcuq_copy_elements(const mcuq_copy_params *params, const void *in, void *out, size_t elem)
{
    if (params == NULL || params->size < 0) {
        return MCUQ_ERR_ARGUMENT;
    }
    if (params->size == 0 || in == out) {
        return MCUQ_OK;
    }
    if (in == NULL || out == NULL) {
        return MCUQ_ERR_ARGUMENT;
    }
    memmove(out, in, (size_t)params->size * elem);
    return MCUQ_OK;
}

/* CONCATENATION over elements of type T, the whole kernel body: params, inputs and out as mcuq_concatenation_s8. */
#define MCUQ_CONCATENATION(T)                                                                                          \
    if (params == NULL || inputs == NULL || out == NULL || params->copy_sizes == NULL || params->num_inputs < 1 ||     \
        params->outer_size < 0) {                                                                                      \
        return MCUQ_ERR_ARGUMENT;                                                                                      \
    }                                                                                                                  \
    for (int32_t i = 0; i < params->num_inputs; ++i) {                                                                 \
        if (params->copy_sizes[i] < 0 || (params->copy_sizes[i] > 0 && inputs[i] == NULL)) {                           \
            return MCUQ_ERR_ARGUMENT;                                                                                  \
        }                                                                                                              \
    }                                                                                                                  \
    /* Each input's offset k * copy_sizes[i] is below its size, which fits int32 (checked at compile time). */         \
    T *o = out;                                                                                                        \
    for (int32_t k = 0; k < params->outer_size; ++k) {                                                                 \
        for (int32_t i = 0; i < params->num_inputs; ++i) {                                                             \
            const int32_t n = params->copy_sizes[i];                                                                   \
            if (n > 0) {                                                                                               \
                memcpy(o, inputs[i] + k * n, (size_t)n * sizeof(T));                                                   \
                o += n;                                                                                                \
            }                                                                                                          \
        }                                                                                                              \
    }                                                                                                                  \
    return MCUQ_OK;

/* PAD's checks: MCUQ_ERR_ARGUMENT for a NULL pointer, a pad_value outside [lo, hi], an input dimension below 1 or
 * a negative padding. Fills out_dims with the output dimensions. */
static inline mcuq_status mcuq_pad_check(const mcuq_pad_params *params, const void *in, const void *out, int32_t lo,
                                         int32_t hi, int32_t out_dims[MCUQ_PAD_DIMS])
{
    if (params == NULL || in == NULL || out == NULL || params->in_dims == NULL || params->pad_before == NULL ||
        params->pad_after == NULL || params->pad_value < lo || params->pad_value > hi) {
        return MCUQ_ERR_ARGUMENT;
    }
    const int32_t *id = params->in_dims;
    const int32_t *pb = params->pad_before;
    for (int32_t d = 0; d < MCUQ_PAD_DIMS; ++d) {
        if (id[d] < 1 || pb[d] < 0 || params->pad_after[d] < 0) {
            return MCUQ_ERR_ARGUMENT;
        }
        out_dims[d] = id[d] + pb[d] + params->pad_after[d];
    }
    return MCUQ_OK;
}

/* PAD's loop over elements of type T after mcuq_pad_check (od: the output dimensions): FILL(o, v, n) writes n
 * copies of v from o on and returns the position after them. The output is written in order; the input is read in
 * order, one innermost row per inside position. */
#define MCUQ_PAD_LOOP(T, FILL)                                                                                         \
    const int32_t *id = params->in_dims;                                                                               \
    const int32_t *pb = params->pad_before;                                                                            \
    const T pv = (T)params->pad_value;                                                                                 \
    const T *x = in;                                                                                                   \
    T *o = out;                                                                                                        \
    for (int32_t i0 = 0; i0 < od[0]; ++i0) {                                                                           \
        const int32_t in0 = i0 >= pb[0] && i0 - pb[0] < id[0];                                                         \
        for (int32_t i1 = 0; i1 < od[1]; ++i1) {                                                                       \
            const int32_t in1 = in0 && i1 >= pb[1] && i1 - pb[1] < id[1];                                              \
            for (int32_t i2 = 0; i2 < od[2]; ++i2) {                                                                   \
                const int32_t in2 = in1 && i2 >= pb[2] && i2 - pb[2] < id[2];                                          \
                for (int32_t i3 = 0; i3 < od[3]; ++i3) {                                                               \
                    const int32_t in3 = in2 && i3 >= pb[3] && i3 - pb[3] < id[3];                                      \
                    if (!in3) {                                                                                        \
                        o = FILL(o, pv, od[4]);                                                                        \
                        continue;                                                                                      \
                    }                                                                                                  \
                    o = FILL(o, pv, pb[4]);                                                                            \
                    memcpy(o, x, (size_t)id[4] * sizeof(T));                                                           \
                    o += id[4];                                                                                        \
                    x += id[4];                                                                                        \
                    o = FILL(o, pv, params->pad_after[4]);                                                             \
                }                                                                                                      \
            }                                                                                                          \
        }                                                                                                              \
    }                                                                                                                  \
    return MCUQ_OK;

/* TRANSPOSE's checks: MCUQ_ERR_ARGUMENT for a NULL pointer, an output dimension below 1 or a negative stride. */
static inline mcuq_status mcuq_transpose_check(const mcuq_transpose_params *params, const void *in, const void *out)
{
    if (params == NULL || in == NULL || out == NULL || params->out_dims == NULL || params->in_strides == NULL) {
        return MCUQ_ERR_ARGUMENT;
    }
    for (int32_t d = 0; d < MCUQ_TRANSPOSE_DIMS; ++d) {
        if (params->out_dims[d] < 1 || params->in_strides[d] < 0) {
            return MCUQ_ERR_ARGUMENT;
        }
    }
    return MCUQ_OK;
}

/* TRANSPOSE's loop over elements of type T after mcuq_transpose_check: out row-major [out_dims[0..5]], in read at
 * sum_d i_d * in_strides[d]. Offsets stay below the tensor size, which fits int32 (checked at compile time). */
#define MCUQ_TRANSPOSE_LOOP(T)                                                                                         \
    const int32_t *n = params->out_dims;                                                                               \
    const int32_t *s = params->in_strides;                                                                             \
    T *o = out;                                                                                                        \
    for (int32_t i0 = 0; i0 < n[0]; ++i0) {                                                                            \
        const T *p0 = in + i0 * s[0];                                                                                  \
        for (int32_t i1 = 0; i1 < n[1]; ++i1) {                                                                        \
            const T *p1 = p0 + i1 * s[1];                                                                              \
            for (int32_t i2 = 0; i2 < n[2]; ++i2) {                                                                    \
                const T *p2 = p1 + i2 * s[2];                                                                          \
                for (int32_t i3 = 0; i3 < n[3]; ++i3) {                                                                \
                    const T *p3 = p2 + i3 * s[3];                                                                      \
                    for (int32_t i4 = 0; i4 < n[4]; ++i4) {                                                            \
                        const T *p4 = p3 + i4 * s[4];                                                                  \
                        for (int32_t i5 = 0; i5 < n[5]; ++i5) {                                                        \
                            *o++ = p4[i5 * s[5]];                                                                      \
                        }                                                                                              \
                    }                                                                                                  \
                }                                                                                                      \
            }                                                                                                          \
        }                                                                                                              \
    }                                                                                                                  \
    return MCUQ_OK;

#endif /* MCUQ_SHAPE_COMMON_H */
