/* MUL, int8: TFLite's reference_integer_ops::Mul and BroadcastMul4DSlow; see mcuq_elementwise.h. */
#include "mcuq_broadcast.h"
#include "mcuq_elementwise.h"
#include "mcuq_fixedpoint.h"

static int8_t mul_one(const mcuq_mul_params *p, int8_t x1, int8_t x2)
{
    /* |product| <= 255 * 255; the compiler checked that its left shift cannot overflow. */
    const int32_t product = (x1 - p->input1_zp) * (x2 - p->input2_zp);
    const int32_t raw = mcuq_multiply_by_quantized_multiplier(product, p->output_multiplier, p->output_shift) +
                        p->output_zp;
    return (int8_t)MCUQ_CLAMP(raw, p->act_min, p->act_max);
}

mcuq_status mcuq_mul_s8(const mcuq_mul_params *params, const int8_t *input1, const int8_t *input2,
                        int8_t *output)
{
    if (params == NULL || input1 == NULL || input2 == NULL || output == NULL || params->out_dims == NULL ||
        params->input1_strides == NULL || params->input2_strides == NULL) {
        return MCUQ_ERR_ARGUMENT;
    }
    const mcuq_mul_params *p = params;
    if (p->output_shift < -31 || p->output_shift > 30 || p->act_min > p->act_max) {
        return MCUQ_ERR_ARGUMENT;
    }
    mcuq_broadcast_iter it;
    const int32_t rows = mcuq_broadcast_begin(&it, p->out_dims);
    if (rows < 0) {
        return MCUQ_ERR_ARGUMENT;
    }
    const int32_t len = p->out_dims[MCUQ_BROADCAST_DIMS - 1];
    const int32_t step1 = p->input1_strides[MCUQ_BROADCAST_DIMS - 1];
    const int32_t step2 = p->input2_strides[MCUQ_BROADCAST_DIMS - 1];
    int8_t *out = output;
    for (int32_t r = 0; r < rows; ++r) {
        const int8_t *a = &input1[it.offset1];
        const int8_t *b = &input2[it.offset2];
        for (int32_t i = 0; i < len; ++i) {
            *out++ = mul_one(p, a[i * step1], b[i * step2]);
        }
        mcuq_broadcast_next_row(&it, p->out_dims, p->input1_strides, p->input2_strides);
    }
    return MCUQ_OK;
}
