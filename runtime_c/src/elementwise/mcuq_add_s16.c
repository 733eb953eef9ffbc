/* ADD, int16 (16x8 mode): add.cc's general int16 path, reference_ops::AddElementwise / BroadcastAdd with a left shift
 * of 15; see mcuq_elementwise.h. */
#include "mcuq_elementwise.h"
#include "../internal/mcuq_arithmetic_s16.h"
#include "../internal/mcuq_broadcast.h"

/* One output element (mcuq_broadcast_s16_fn). */
static int16_t add_one(const void *params, int16_t x1, int16_t x2)
{
    const mcuq_add_params *p = (const mcuq_add_params *)params;
    return mcuq_arithmetic_s16_output(p, mcuq_arithmetic_s16_input1(p, x1) + mcuq_arithmetic_s16_input2(p, x2));
}

mcuq_status mcuq_add_s16(const mcuq_add_params *params, const int16_t *input1, const int16_t *input2, int16_t *output)
{
    const mcuq_status status = mcuq_arithmetic_s16_check(params, input1, input2, output);
    if (status != MCUQ_OK) {
        return status;
    }
    return mcuq_broadcast_apply_s16(&params->broadcast, params, input1, input2, output, add_one);
}
