/* mcuq_pad_s8: TFLite PAD (reference_ops::Pad) for int8, constant padding value. */
#include <string.h>

#include "mcuq.h"

mcuq_status mcuq_pad_s8(const mcuq_pad_params *params, const int8_t *in, int8_t *out)
{
    int32_t od[MCUQ_PAD_DIMS];
    int32_t d;
    int32_t i0, i1, i2, i3;
    const int32_t *id;
    const int32_t *pb;
    int8_t pv;
    const int8_t *x = in;
    int8_t *o = out;

    if (params == NULL || in == NULL || out == NULL || params->in_dims == NULL || params->pad_before == NULL ||
        params->pad_after == NULL || params->pad_value < -128 || params->pad_value > 127) {
        return MCUQ_ERR_ARGUMENT;
    }
    id = params->in_dims;
    pb = params->pad_before;
    for (d = 0; d < MCUQ_PAD_DIMS; ++d) {
        if (id[d] < 1 || pb[d] < 0 || params->pad_after[d] < 0) {
            return MCUQ_ERR_ARGUMENT;
        }
        od[d] = id[d] + pb[d] + params->pad_after[d];
    }
    pv = (int8_t)params->pad_value;

    /* The output is written in order; the input is read in order, one innermost row per inside position. */
    for (i0 = 0; i0 < od[0]; ++i0) {
        const int in0 = i0 >= pb[0] && i0 - pb[0] < id[0];
        for (i1 = 0; i1 < od[1]; ++i1) {
            const int in1 = in0 && i1 >= pb[1] && i1 - pb[1] < id[1];
            for (i2 = 0; i2 < od[2]; ++i2) {
                const int in2 = in1 && i2 >= pb[2] && i2 - pb[2] < id[2];
                for (i3 = 0; i3 < od[3]; ++i3) {
                    const int in3 = in2 && i3 >= pb[3] && i3 - pb[3] < id[3];
                    if (!in3) {
                        memset(o, pv, (size_t)od[4]);
                        o += od[4];
                        continue;
                    }
                    memset(o, pv, (size_t)pb[4]);
                    o += pb[4];
                    memcpy(o, x, (size_t)id[4]);
                    o += id[4];
                    x += id[4];
                    memset(o, pv, (size_t)params->pad_after[4]);
                    o += params->pad_after[4];
                }
            }
        }
    }
    return MCUQ_OK;
}
