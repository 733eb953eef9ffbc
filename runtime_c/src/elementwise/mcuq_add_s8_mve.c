/* ADD and SUB, int8, same shapes, for the mve path (Cortex-M55 Helium; plain C elsewhere): see mcuq_elementwise.h
 * (mcuq_add_fast_params) and mcuq_add_s8_dsp.c, whose arithmetic this is, four int32 lanes at a time:
 *   x1, x2   VLDRB.U32 (widening loads: the bytes' bit patterns are the table indices)
 *   s        two VLDRW gathers from the tables, VADD                       (s = 2 * combined value, |s| <= 2^30)
 *   h        VRMULH(s, m) = floor((s * m + 2^31) / 2^32) = SaturatingRoundingDoublingHighMul(s / 2, m)
 *   q        VRSHL(h + (s >> 31) * (r > 0), -r) = RoundingDivideByPOT(h, r) (ties away from zero: the VMLA by the
 *            flag subtracts 1 from negative values first; h < 0 -> s < 0, and s < 0 with h == 0 rounds to 0 anyway)
 *   out      q + output_zp, VMAX/VMIN to the activation, VSTRB.32 (narrowing store); the tail is predicated (VCTP).
 * Each block of four reads both inputs before it writes its four outputs, so the output may be either input.
 */
#include "mcuq_elementwise.h"
#include "../internal/mcuq_arithmetic.h"
#include "../internal/mcuq_simd.h"
#include "../internal/mcuq_util.h"

#if !MCUQ_HAVE_MVE
/* One element, as one lane of the vector code. */
static inline int32_t add_fast_lane(const mcuq_add_fast_params *p, int8_t x1, int8_t x2, int32_t neg_flag, int32_t r)
{
    const int32_t s = p->input1_table[(uint8_t)x1] + p->input2_table[(uint8_t)x2];
    const int32_t h = (int32_t)(((int64_t)s * p->output_multiplier + (INT64_C(1) << 31)) >> 32);
    /* Arithmetic right shift of a negative value: implementation-defined in C99, arithmetic in GCC and Clang. */
    const int64_t a = (int64_t)h - (s < 0 ? neg_flag : 0);
    const int32_t q = r > 0 ? (int32_t)((a + (INT64_C(1) << (r - 1))) >> r) : (int32_t)a;
    const int32_t v = q + p->output_zp;
    return MCUQ_CLAMP(v, p->activation.min, p->activation.max);
}
#endif

mcuq_status mcuq_add_s8_mve(const mcuq_add_fast_params *params, const int8_t *input1, const int8_t *input2,
                            int8_t *output)
{
    const mcuq_status status = mcuq_add_fast_check(params, input1, input2, output);
    if (status != MCUQ_OK) {
        return status;
    }
    const mcuq_add_fast_params *p = params;
    const int32_t r = -p->output_shift;
    const int32_t neg_flag = r > 0 ? 1 : 0;
#if MCUQ_HAVE_MVE
    const int32x4_t mult = vdupq_n_s32(p->output_multiplier);
    const int32x4_t lo = vdupq_n_s32(p->activation.min);
    const int32x4_t hi = vdupq_n_s32(p->activation.max);
    const int32x4_t zp = vdupq_n_s32(p->output_zp);
    const int32_t *t1 = p->input1_table;
    const int32_t *t2 = p->input2_table;
    const uint8_t *in1 = (const uint8_t *)input1;
    const uint8_t *in2 = (const uint8_t *)input2;
    int8_t *out = output;
    int32_t left = p->size;
    for (; left >= 4; left -= 4) {
        const int32x4_t s = vaddq_s32(vldrwq_gather_shifted_offset_s32(t1, vldrbq_u32(in1)),
                                      vldrwq_gather_shifted_offset_s32(t2, vldrbq_u32(in2)));
        int32x4_t v = vrmulhq_s32(s, mult);
        v = vmlaq_n_s32(v, vshrq_n_s32(s, 31), neg_flag);
        v = vaddq_s32(vrshlq_n_s32(v, -r), zp);
        vstrbq_s32(out, vminq_s32(vmaxq_s32(v, lo), hi));
        in1 += 4;
        in2 += 4;
        out += 4;
    }
    if (left > 0) { /* the tail: the same lanes, predicated */
        const mve_pred16_t pred = vctp32q((uint32_t)left);
        const uint32x4_t x1 = vldrbq_z_u32(in1, pred);
        const uint32x4_t x2 = vldrbq_z_u32(in2, pred);
        const int32x4_t s = vaddq_s32(vldrwq_gather_shifted_offset_z_s32(t1, x1, pred),
                                      vldrwq_gather_shifted_offset_z_s32(t2, x2, pred));
        int32x4_t v = vrmulhq_s32(s, mult);
        v = vmlaq_n_s32(v, vshrq_n_s32(s, 31), neg_flag);
        v = vaddq_s32(vrshlq_n_s32(v, -r), zp);
        vstrbq_p_s32(out, vminq_s32(vmaxq_s32(v, lo), hi), pred);
    }
#else
    int32_t i = 0;
    for (; i + 4 <= p->size; i += 4) {
        /* one vector: all four lanes of both inputs are read before any output of the block is written */
        const int32_t v0 = add_fast_lane(p, input1[i], input2[i], neg_flag, r);
        const int32_t v1 = add_fast_lane(p, input1[i + 1], input2[i + 1], neg_flag, r);
        const int32_t v2 = add_fast_lane(p, input1[i + 2], input2[i + 2], neg_flag, r);
        const int32_t v3 = add_fast_lane(p, input1[i + 3], input2[i + 3], neg_flag, r);
        output[i] = (int8_t)v0;
        output[i + 1] = (int8_t)v1;
        output[i + 2] = (int8_t)v2;
        output[i + 3] = (int8_t)v3;
    }
    for (; i < p->size; ++i) {
        output[i] = (int8_t)add_fast_lane(p, input1[i], input2[i], neg_flag, r);
    }
#endif
    return MCUQ_OK;
}
