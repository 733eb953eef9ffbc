/* MUL, int8: TFLite's reference_integer_ops::Mul and BroadcastMul4DSlow; see mcuq_elementwise.h. */
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
    const int32_t *n = p->out_dims;
    const int32_t *s1 = p->input1_strides;
    const int32_t *s2 = p->input2_strides;
    for (int32_t d = 0; d < MCUQ_BROADCAST_DIMS; ++d) {
        if (n[d] < 0) {
            return MCUQ_ERR_ARGUMENT;
        }
    }
    int8_t *out = output;
    for (int32_t i0 = 0; i0 < n[0]; ++i0) {
        const int32_t a0 = i0 * s1[0];
        const int32_t b0 = i0 * s2[0];
        for (int32_t i1 = 0; i1 < n[1]; ++i1) {
            const int32_t a1 = a0 + i1 * s1[1];
            const int32_t b1 = b0 + i1 * s2[1];
            for (int32_t i2 = 0; i2 < n[2]; ++i2) {
                const int32_t a2 = a1 + i2 * s1[2];
                const int32_t b2 = b1 + i2 * s2[2];
                for (int32_t i3 = 0; i3 < n[3]; ++i3) {
                    const int32_t a3 = a2 + i3 * s1[3];
                    const int32_t b3 = b2 + i3 * s2[3];
                    for (int32_t i4 = 0; i4 < n[4]; ++i4) {
                        const int32_t a4 = a3 + i4 * s1[4];
                        const int32_t b4 = b3 + i4 * s2[4];
                        for (int32_t i5 = 0; i5 < n[5]; ++i5) {
                            *out++ = mul_one(p, input1[a4 + i5 * s1[5]], input2[b4 + i5 * s2[5]]);
                        }
                    }
                }
            }
        }
    }
    return MCUQ_OK;
}
