/* MUL, int8: TFLite's reference_integer_ops::Mul and BroadcastMul4DSlow; see mcuq_elementwise.h. */
#include "mcuq_elementwise.h"
#include "../internal/mcuq_broadcast.h"
#include "../internal/mcuq_fixedpoint.h"
#include "../internal/mcuq_util.h"

/* One output element (mcuq_broadcast_fn). */
static int8_t mul_one(const void *params, int8_t x1, int8_t x2)
{
    const mcuq_mul_params *p = (const mcuq_mul_params *)params;
    /* |product| <= 255 * 255; the compiler checked that its left shift cannot overflow. */
    const int32_t product = (x1 - p->input1_zp) * (x2 - p->input2_zp);
    const int32_t raw =
        mcuq_multiply_by_quantized_multiplier(product, p->output_multiplier, p->output_shift) + p->output_zp;
    return (int8_t)MCUQ_CLAMP(raw, p->activation.min, p->activation.max);
}

mcuq_status mcuq_mul_s8(const mcuq_mul_params *params, const int8_t *input1, const int8_t *input2, int8_t *output)
{
    if (params == NULL || input1 == NULL || input2 == NULL || output == NULL) {
        return MCUQ_ERR_ARGUMENT;
    }
    const mcuq_mul_params *p = params;
    if (p->output_shift < -31 || p->output_shift > 30 || p->activation.min > p->activation.max) {
        return MCUQ_ERR_ARGUMENT;
    }
    return mcuq_broadcast_apply(&p->broadcast, p, input1, input2, output, mul_one);
}
