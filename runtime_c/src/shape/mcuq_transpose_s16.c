/* TRANSPOSE, int16: TFLite 2.14's reference_ops::Transpose on int16 (see mcuq_shape.h). */
#include "mcuq_shape.h"

/* out: row-major [out_dims[0], ..., out_dims[5]] int16; in: read at sum_d i_d * in_strides[d]. */
mcuq_status mcuq_transpose_s16(const mcuq_transpose_params *params, const int16_t *in, int16_t *out)
{
    if (params == NULL || in == NULL || out == NULL || params->out_dims == NULL || params->in_strides == NULL) {
        return MCUQ_ERR_ARGUMENT;
    }
    const int32_t *n = params->out_dims;
    const int32_t *s = params->in_strides;
    for (int32_t d = 0; d < MCUQ_TRANSPOSE_DIMS; ++d) {
        if (n[d] < 1 || s[d] < 0) {
            return MCUQ_ERR_ARGUMENT;
        }
    }
    /* Offsets stay below the tensor size, which fits int32 (checked at compile time). */
    int16_t *o = out;
    for (int32_t i0 = 0; i0 < n[0]; ++i0) {
        const int16_t *p0 = in + i0 * s[0];
        for (int32_t i1 = 0; i1 < n[1]; ++i1) {
            const int16_t *p1 = p0 + i1 * s[1];
            for (int32_t i2 = 0; i2 < n[2]; ++i2) {
                const int16_t *p2 = p1 + i2 * s[2];
                for (int32_t i3 = 0; i3 < n[3]; ++i3) {
                    const int16_t *p3 = p2 + i3 * s[3];
                    for (int32_t i4 = 0; i4 < n[4]; ++i4) {
                        const int16_t *p4 = p3 + i4 * s[4];
                        for (int32_t i5 = 0; i5 < n[5]; ++i5) {
                            *o++ = p4[i5 * s[5]];
                        }
                    }
                }
            }
        }
    }
    return MCUQ_OK;
}
