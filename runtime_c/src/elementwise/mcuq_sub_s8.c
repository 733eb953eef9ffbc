/* SUB, int8: TFLite 2.14's reference_ops::SubElementwise and BroadcastQuantSubSlow (SubFunc); see
 * mcuq_elementwise.h. */
#include "mcuq_elementwise.h"
#include "../internal/mcuq_arithmetic.h"
#include "../internal/mcuq_broadcast.h"

/* One output element (mcuq_broadcast_fn): input1 minus input2 on their common scale, requantized. */
static int8_t sub_one(const void *params, int8_t x1, int8_t x2)
{
    const mcuq_add_params *p = (const mcuq_add_params *)params;
    return mcuq_arithmetic_output(p, mcuq_arithmetic_input1(p, x1) - mcuq_arithmetic_input2(p, x2));
}

mcuq_status mcuq_sub_s8(const mcuq_add_params *params, const int8_t *input1, const int8_t *input2, int8_t *output)
{
    const mcuq_status status = mcuq_arithmetic_check(params, input1, input2, output);
    if (status != MCUQ_OK) {
        return status;
    }
    return mcuq_broadcast_apply(&params->broadcast, params, input1, input2, output, sub_one);
}
