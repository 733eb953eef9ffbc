/* TRANSPOSE, int8: TFLite 2.14's reference_ops::Transpose (see mcuq_shape.h). */
#include "mcuq_shape.h"
#include "../internal/mcuq_shape_common.h"

/* out: row-major [out_dims[0], ..., out_dims[5]] int8; in: read at sum_d i_d * in_strides[d]. */
mcuq_status mcuq_transpose_s8(const mcuq_transpose_params *params, const int8_t *in, int8_t *out)
{
    const mcuq_status status = mcuq_transpose_check(params, in, out);
    if (status != MCUQ_OK) {
        return status;
    }
    MCUQ_TRANSPOSE_LOOP(int8_t)
}
