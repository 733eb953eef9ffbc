/* mcuq_transpose_s8: TFLite TRANSPOSE (reference_ops::Transpose) for int8. */
#include "mcuq.h"

mcuq_status mcuq_transpose_s8(const mcuq_transpose_params *params, const int8_t *in, int8_t *out)
{
    const int32_t *n;
    const int32_t *s;
    int32_t d;
    int32_t i0, i1, i2, i3, i4, i5;
    int8_t *o = out;

    if (params == NULL || in == NULL || out == NULL || params->out_dims == NULL || params->in_strides == NULL) {
        return MCUQ_ERR_ARGUMENT;
    }
    n = params->out_dims;
    s = params->in_strides;
    for (d = 0; d < MCUQ_TRANSPOSE_DIMS; ++d) {
        if (n[d] < 1 || s[d] < 0) {
            return MCUQ_ERR_ARGUMENT;
        }
    }
    /* Offsets stay below the tensor size, which fits int32 (checked at compile time). */
    for (i0 = 0; i0 < n[0]; ++i0) {
        const int8_t *p0 = in + i0 * s[0];
        for (i1 = 0; i1 < n[1]; ++i1) {
            const int8_t *p1 = p0 + i1 * s[1];
            for (i2 = 0; i2 < n[2]; ++i2) {
                const int8_t *p2 = p1 + i2 * s[2];
                for (i3 = 0; i3 < n[3]; ++i3) {
                    const int8_t *p3 = p2 + i3 * s[3];
                    for (i4 = 0; i4 < n[4]; ++i4) {
                        const int8_t *p4 = p3 + i4 * s[4];
                        for (i5 = 0; i5 < n[5]; ++i5) {
                            *o++ = p4[i5 * s[5]];
                        }
                    }
                }
            }
        }
    }
    return MCUQ_OK;
}
