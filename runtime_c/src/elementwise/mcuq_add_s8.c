/* ADD, int8: TFLite's reference_integer_ops::Add and BroadcastAdd6DSlow (AddFunc); see mcuq_elementwise.h. */
#include "mcuq_broadcast.h"
#include "mcuq_elementwise.h"
#include "mcuq_fixedpoint.h"

static int8_t add_one(const mcuq_add_params *p, int8_t x1, int8_t x2)
{
    /* |x - zp| <= 255, so the shifted values stay below 2^28 and their sum below 2^29. */
    const int32_t shifted1 = (x1 - p->input1_zp) * ((int32_t)1 << p->left_shift);
    const int32_t shifted2 = (x2 - p->input2_zp) * ((int32_t)1 << p->left_shift);
    const int32_t scaled1 =
        mcuq_multiply_by_quantized_multiplier_smaller_than_one_exp(shifted1, p->input1_multiplier, p->input1_shift);
    const int32_t scaled2 =
        mcuq_multiply_by_quantized_multiplier_smaller_than_one_exp(shifted2, p->input2_multiplier, p->input2_shift);
    const int32_t raw = mcuq_multiply_by_quantized_multiplier_smaller_than_one_exp(
                            scaled1 + scaled2, p->output_multiplier, p->output_shift) +
                        p->output_zp;
    return (int8_t)MCUQ_CLAMP(raw, p->act_min, p->act_max);
}

mcuq_status mcuq_add_s8(const mcuq_add_params *params, const int8_t *input1, const int8_t *input2,
                        int8_t *output)
{
    if (params == NULL || input1 == NULL || input2 == NULL || output == NULL || params->out_dims == NULL ||
        params->input1_strides == NULL || params->input2_strides == NULL) {
        return MCUQ_ERR_ARGUMENT;
    }
    const mcuq_add_params *p = params;
    if (p->left_shift < 0 || p->left_shift > 20 || p->input1_shift < -31 || p->input1_shift > 0 ||
        p->input2_shift < -31 || p->input2_shift > 0 || p->output_shift < -31 || p->output_shift > 0 ||
        p->act_min > p->act_max) {
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
            *out++ = add_one(p, a[i * step1], b[i * step2]);
        }
        mcuq_broadcast_next_row(&it, p->out_dims, p->input1_strides, p->input2_strides);
    }
    return MCUQ_OK;
}
