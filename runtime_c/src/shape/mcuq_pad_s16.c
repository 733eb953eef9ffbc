/* PAD, int16: TFLite 2.14's reference_ops::Pad on int16 with a constant padding value (see mcuq_shape.h). */
#include <string.h>

#include "mcuq_shape.h"

/* n copies of v from o on; returns the position after them. */
static int16_t *pad_fill(int16_t *o, int16_t v, int32_t n)
{
    for (int32_t i = 0; i < n; ++i) {
        o[i] = v;
    }
    return o + n;
}

/* in: row-major [in_dims[0], ..., in_dims[4]] int16; out: row-major, dims in_dims[d] + pad_before[d] +
 * pad_after[d]. */
mcuq_status mcuq_pad_s16(const mcuq_pad_params *params, const int16_t *in, int16_t *out)
{
    if (params == NULL || in == NULL || out == NULL || params->in_dims == NULL || params->pad_before == NULL ||
        params->pad_after == NULL || params->pad_value < -32768 || params->pad_value > 32767) {
        return MCUQ_ERR_ARGUMENT;
    }
    const int32_t *id = params->in_dims;
    const int32_t *pb = params->pad_before;
    int32_t od[MCUQ_PAD_DIMS];
    for (int32_t d = 0; d < MCUQ_PAD_DIMS; ++d) {
        if (id[d] < 1 || pb[d] < 0 || params->pad_after[d] < 0) {
            return MCUQ_ERR_ARGUMENT;
        }
        od[d] = id[d] + pb[d] + params->pad_after[d];
    }
    const int16_t pv = (int16_t)params->pad_value;

    /* The output is written in order; the input is read in order, one innermost row per inside position. */
    const int16_t *x = in;
    int16_t *o = out;
    for (int32_t i0 = 0; i0 < od[0]; ++i0) {
        const int32_t in0 = i0 >= pb[0] && i0 - pb[0] < id[0];
        for (int32_t i1 = 0; i1 < od[1]; ++i1) {
            const int32_t in1 = in0 && i1 >= pb[1] && i1 - pb[1] < id[1];
            for (int32_t i2 = 0; i2 < od[2]; ++i2) {
                const int32_t in2 = in1 && i2 >= pb[2] && i2 - pb[2] < id[2];
                for (int32_t i3 = 0; i3 < od[3]; ++i3) {
                    const int32_t in3 = in2 && i3 >= pb[3] && i3 - pb[3] < id[3];
                    if (!in3) {
                        o = pad_fill(o, pv, od[4]);
                        continue;
                    }
                    o = pad_fill(o, pv, pb[4]);
                    memcpy(o, x, (size_t)id[4] * sizeof(int16_t));
                    o += id[4];
                    x += id[4];
                    o = pad_fill(o, pv, params->pad_after[4]);
                }
            }
        }
    }
    return MCUQ_OK;
}
