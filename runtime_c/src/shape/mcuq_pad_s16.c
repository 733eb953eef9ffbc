/* PAD, int16: TFLite 2.14's reference_ops::Pad on int16 with a constant padding value (see mcuq_shape.h). */
#include "mcuq_shape.h"
#include "../internal/mcuq_shape_common.h"

/* n copies of v from o on (MCUQ_PAD_LOOP's FILL); returns the position after them. */
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
    int32_t od[MCUQ_PAD_DIMS];
    const mcuq_status status = mcuq_pad_check(params, in, out, -32768, 32767, od);
    if (status != MCUQ_OK) {
        return status;
    }
    MCUQ_PAD_LOOP(int16_t, pad_fill)
}
