/* FULLY_CONNECTED, int8, Helium (MVE) path: the same bits as mcuq_fully_connected_s8 (TFLite's FullyConnected and
 * FullyConnectedPerChannel) for weights_zp == 0; see mcuq_conv.h.
 *
 * Algorithm. For each batch row x (input_size = K values) and each group of 4 outputs: one load of 16 x values,
 * four of weights, four VMLADAVA (64 MACs in 10 instructions with a low-overhead loop); the last K % 16 values
 * of x with a predicated (zeroing) load, so nothing past the row is read. The folded bias is added and the 4
 * accumulators are requantized as one vector (VQRDMULH is gemmlowp's SaturatingRoundingDoublingHighMul; VRSHL after
 * a fix-up of negative values is its RoundingDivideByPOT) and stored. No scratch.
 *
 * Weights (mcuq/kernels/nn_mve.py, mve_weights): the [output_size][K] rows with KP - K zeros appended (KP = K
 * rounded up to 16), zero rows appended up to a multiple of 4 outputs, then each group of 4 rows interleaved by
 * 16-value chunks: chunk j of rows 0, 1, 2, 3 (64 bytes), then chunk j + 1, ... A group is 4 * KP bytes.
 * bias (never NULL) is the folded bias[o] - input_zp * sum(w[o]); the kernel multiplies raw int8 values and
 * accumulates modulo 2^32; the final sum is TFLite's int32 accumulator. Without MVE (host, Cortex-M3/M4/M7/M33)
 * the same algorithm runs in plain C. The output must not overlap the input. */
#include "mcuq_conv.h"
#include "../internal/mcuq_conv_common.h"
#include "../internal/mcuq_simd.h"
#include "../internal/mcuq_util.h"

int32_t mcuq_fully_connected_s8_mve_scratch_size(const mcuq_fully_connected_params *params)
{
    (void)params;
    return 0;
}

#if MCUQ_HAVE_MVE

/* clamp(MultiplyByQuantizedMultiplier(acc) + zp) per lane; left = max(shift, 0), right = min(shift, 0). */
static inline int32x4_t requantize4(int32x4_t x, int32x4_t mult, int32x4_t left, int32x4_t right, int32_t zp,
                                    int32_t act_min, int32_t act_max)
{
    x = vshlq_s32(x, left);     /* wraps, as the portable (uint32) x << left */
    x = vqrdmulhq_s32(x, mult); /* gemmlowp SaturatingRoundingDoublingHighMul */
    /* RoundingDivideByPOT rounds ties away from zero, VRSHL rounds them up: first subtract 1 from the negative
     * values where right < 0 (the sign bit of x & right) */
    x = vqaddq_s32(x, vshrq_n_s32(vandq_s32(x, right), 31));
    x = vrshlq_s32(x, right);
    return vminq_s32(vmaxq_s32(vaddq_n_s32(x, zp), vdupq_n_s32(act_min)), vdupq_n_s32(act_max));
}

#endif

mcuq_status mcuq_fully_connected_s8_mve(const mcuq_context *ctx, const mcuq_fully_connected_params *params,
                                        const int8_t *input, const int8_t *filter, const int32_t *bias, int8_t *output)
{
    const mcuq_status status = mcuq_fully_connected_check(ctx, params, input, filter, bias, output,
                                                          mcuq_fully_connected_s8_mve_scratch_size(params), 1);
    if (status != MCUQ_OK) {
        return status;
    }
    const mcuq_fully_connected_params p = *params;
    if (p.weights_zp != 0) {
        return MCUQ_ERR_UNSUPPORTED;
    }
    const int32_t k = p.input_size;
    const int32_t chunks = k / 16;
    const int32_t tail = k % 16;

#if MCUQ_HAVE_MVE
    const int32x4_t zero = vdupq_n_s32(0);
    int32x4_t mult = vdupq_n_s32(p.quant.multiplier[0]);
    int32x4_t shift = vdupq_n_s32(p.quant.shift[0]);
    int32x4_t left = vmaxq_s32(shift, zero);
    int32x4_t right = vminq_s32(shift, zero);
    const mve_pred16_t tail_p = vctp8q((uint32_t)tail);
    for (int32_t b = 0; b < p.batches; ++b) {
        const int8_t *x = input + b * k;
        int8_t *y = output + b * p.output_size;
        const int8_t *w = filter;
        for (int32_t o = 0; o < p.output_size; o += 4) {
            int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
            const int8_t *xp = x;
#if defined(__GNUC__) && !defined(__clang__)
            if (chunks > 0) { /* GCC's intrinsics take 12 instructions per 64 MACs here, this loop 10 */
                __asm__("dls lr, %[n]\n"
                        "1:\n\t"
                        "vldrb.8 q0, [%[x]], #16\n\t"
                        "vldrb.8 q1, [%[w]], #16\n\t"
                        "vmladava.s8 %[a0], q0, q1\n\t"
                        "vldrb.8 q1, [%[w]], #16\n\t"
                        "vmladava.s8 %[a1], q0, q1\n\t"
                        "vldrb.8 q1, [%[w]], #16\n\t"
                        "vmladava.s8 %[a2], q0, q1\n\t"
                        "vldrb.8 q1, [%[w]], #16\n\t"
                        "vmladava.s8 %[a3], q0, q1\n\t"
                        "le lr, 1b"
                        : [a0] "+Te"(a0), [a1] "+Te"(a1), [a2] "+Te"(a2), [a3] "+Te"(a3), [x] "+r"(xp), [w] "+r"(w)
                        : [n] "r"(chunks)
                        : "q0", "q1", "lr"); /* reads x and the weights, which nothing here writes */
            }
#else
            for (int32_t j = 0; j < chunks; ++j) {
                const int8x16_t v = vldrbq_s8(xp);
                a0 = vmladavaq_s8(a0, v, vldrbq_s8(w));
                a1 = vmladavaq_s8(a1, v, vldrbq_s8(w + 16));
                a2 = vmladavaq_s8(a2, v, vldrbq_s8(w + 32));
                a3 = vmladavaq_s8(a3, v, vldrbq_s8(w + 48));
                xp += 16;
                w += 64;
            }
#endif
            if (tail > 0) { /* the weights are zero-padded to 16: only x needs the predicate */
                const int8x16_t v = vldrbq_z_s8(xp, tail_p);
                a0 = vmladavaq_s8(a0, v, vldrbq_s8(w));
                a1 = vmladavaq_s8(a1, v, vldrbq_s8(w + 16));
                a2 = vmladavaq_s8(a2, v, vldrbq_s8(w + 32));
                a3 = vmladavaq_s8(a3, v, vldrbq_s8(w + 48));
                w += 64;
            }
            int32x4_t acc = vdupq_n_s32(a0);
            acc = vsetq_lane_s32(a1, acc, 1);
            acc = vsetq_lane_s32(a2, acc, 2);
            acc = vsetq_lane_s32(a3, acc, 3);
            const int32_t n = MCUQ_MIN(4, p.output_size - o);
            const mve_pred16_t out_p = vctp32q((uint32_t)n);
            acc = vaddq_s32(acc, vldrwq_z_s32(bias + o, out_p));
            if (p.per_channel) {
                mult = vldrwq_z_s32(p.quant.multiplier + o, out_p);
                shift = vldrwq_z_s32(p.quant.shift + o, out_p);
                left = vmaxq_s32(shift, zero);
                right = vminq_s32(shift, zero);
            }
            acc = requantize4(acc, mult, left, right, p.output_zp, p.activation.min, p.activation.max);
            vstrbq_p_s32(y + o, acc, out_p);
        }
    }
#else /* plain C: the same algorithm, the same memory accesses */
    for (int32_t b = 0; b < p.batches; ++b) {
        const int8_t *x = input + b * k;
        int8_t *y = output + b * p.output_size;
        const int8_t *w = filter;
        for (int32_t o = 0; o < p.output_size; o += 4) {
            uint32_t acc[4] = {0, 0, 0, 0};
            for (int32_t j = 0; j < chunks + (tail > 0); ++j) {
                const int32_t len = j < chunks ? 16 : tail;
                for (int32_t i = 0; i < 4; ++i) {
                    uint32_t s = 0;
                    for (int32_t e = 0; e < len; ++e) {
                        s += (uint32_t)((int32_t)x[j * 16 + e] * (int32_t)w[i * 16 + e]);
                    }
                    acc[i] += s;
                }
                w += 64;
            }
            const int32_t n = MCUQ_MIN(4, p.output_size - o);
            for (int32_t i = 0; i < n; ++i) {
                const int32_t q = p.per_channel ? o + i : 0;
                const int32_t a = (int32_t)(acc[i] + (uint32_t)bias[o + i]);
                const int32_t v = mcuq_requantize(a, p.quant.multiplier[q], p.quant.shift[q]) + p.output_zp;
                y[o + i] = (int8_t)MCUQ_CLAMP(v, p.activation.min, p.activation.max);
            }
        }
    }
#endif
    return MCUQ_OK;
}
