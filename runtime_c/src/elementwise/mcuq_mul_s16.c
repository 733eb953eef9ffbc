/* MUL, int16 (16x8 mode): TFLite's reference_integer_ops::Mul / BroadcastMul4DSlow on int16 (MulElementwise); see
 * mcuq_elementwise.h. */
#include "mcuq_elementwise.h"
#include "../internal/mcuq_broadcast.h"
#include "../internal/mcuq_fixedpoint.h"
#include "../internal/mcuq_util.h"

/* One output element (mcuq_broadcast_s16_fn). Zero points are 0 and output_shift <= 0 (checked), so the product
 * is at most 2^30 in magnitude and is never shifted left. */
static int16_t mul_one(const void *params, int16_t x1, int16_t x2)
{
    const mcuq_mul_params *p = (const mcuq_mul_params *)params;
    const int32_t product = (int32_t)x1 * (int32_t)x2;
    const int32_t raw = mcuq_multiply_by_quantized_multiplier(product, p->output_multiplier, p->output_shift);
    return (int16_t)MCUQ_CLAMP(raw, p->activation.min, p->activation.max);
}

mcuq_status mcuq_mul_s16(const mcuq_mul_params *params, const int16_t *input1, const int16_t *input2, int16_t *output)
{
    if (params == NULL || input1 == NULL || input2 == NULL || output == NULL) {
        return MCUQ_ERR_ARGUMENT;
    }
    const mcuq_mul_params *p = params;
    if (p->input1_zp != 0 || p->input2_zp != 0 || p->output_zp != 0 || p->output_shift < -31 || p->output_shift > 0 ||
        p->activation.min < INT16_MIN || p->activation.max > INT16_MAX || p->activation.min > p->activation.max) {
        return MCUQ_ERR_ARGUMENT;
    }
    return mcuq_broadcast_apply_s16(&p->broadcast, p, input1, input2, output, mul_one);
}
