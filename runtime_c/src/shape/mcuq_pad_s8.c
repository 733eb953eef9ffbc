/* PAD, int8: TFLite 2.14's reference_ops::Pad with a constant padding value (see mcuq_shape.h). */
#include "mcuq_shape.h"
#include "../internal/mcuq_shape_common.h"

/* n copies of v from o on (MCUQ_PAD_LOOP's FILL); returns the position after them. */
static int8_t *pad_fill(int8_t *o, int8_t v, int32_t n)
{
    memset(o, v, (size_t)n);
    return o + n;
}

/* in: row-major [in_dims[0], ..., in_dims[4]] int8; out: row-major, dims in_dims[d] + pad_before[d] +
 * pad_after[d]. */
mcuq_status mcuq_pad_s8(const mcuq_pad_params *params, const int8_t *in, int8_t *out)
{
    int32_t od[MCUQ_PAD_DIMS];
    const mcuq_status status = mcuq_pad_check(params, in, out, -128, 127, od);
    if (status != MCUQ_OK) {
        return status;
    }
    MCUQ_PAD_LOOP(int8_t, pad_fill)
}
