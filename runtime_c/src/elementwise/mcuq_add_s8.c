/* ADD, int8: TFLite's reference_integer_ops::Add and BroadcastAdd6DSlow (AddFunc); see mcuq_elementwise.h. */
#include "mcuq_elementwise.h"
#include "../internal/mcuq_arithmetic.h"
#include "../internal/mcuq_broadcast.h"

/* One output element (mcuq_broadcast_fn): the sum of the two inputs on their common scale, requantized. */
static int8_t add_one(const void *params, int8_t x1, int8_t x2)
{
    const mcuq_add_params *p = (const mcuq_add_params *)params;
    return mcuq_arithmetic_output(p, mcuq_arithmetic_input1(p, x1) + mcuq_arithmetic_input2(p, x2));
}

mcuq_status mcuq_add_s8(const mcuq_add_params *params, const int8_t *input1, const int8_t *input2, int8_t *output)
{
    const mcuq_status status = mcuq_arithmetic_check(params, input1, input2, output);
    if (status != MCUQ_OK) {
        return status;
    }
    return mcuq_broadcast_apply(&params->broadcast, params, input1, input2, output, add_one);
}
