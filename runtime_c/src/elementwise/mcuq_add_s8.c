/* ADD, int8: TFLite's reference_integer_ops::Add and BroadcastAdd6DSlow (AddFunc); see mcuq_elementwise.h. */
#include "mcuq_elementwise.h"
#include "../internal/mcuq_arithmetic.h"
#include "../internal/mcuq_broadcast.h"

/* One output element (mcuq_broadcast_fn): the sum of the two inputs on their common scale, requantized. */
static int8_t add_one(const void *params, int8_t x1, int8_t x2)
{
    const mcuq_add_params *p = (const mcuq_add_params *)params;
    const int32_t scaled1 =
        mcuq_arithmetic_input(x1, p->input1_zp, p->left_shift, p->input1_multiplier, p->input1_shift);
    const int32_t scaled2 =
        mcuq_arithmetic_input(x2, p->input2_zp, p->left_shift, p->input2_multiplier, p->input2_shift);
    return mcuq_arithmetic_output(p, scaled1 + scaled2);
}

mcuq_status mcuq_add_s8(const mcuq_add_params *params, const int8_t *input1, const int8_t *input2, int8_t *output)
{
    if (params == NULL || input1 == NULL || input2 == NULL || output == NULL) {
        return MCUQ_ERR_ARGUMENT;
    }
    if (mcuq_arithmetic_params_invalid(params)) {
        return MCUQ_ERR_ARGUMENT;
    }
    return mcuq_broadcast_apply(&params->broadcast, params, input1, input2, output, add_one);
}
