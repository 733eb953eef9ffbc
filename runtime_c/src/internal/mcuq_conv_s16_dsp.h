/* Requantization of the 16x8 dsp kernels (mcuq_conv2d_s16_dsp.c, mcuq_fully_connected_s16_dsp.c): the bits of
 * mcuq_s16_requantize (mcuq_conv_s16.h) with the per-channel work done once per channel. Internal to the runtime. */
#ifndef MCUQ_CONV_S16_DSP_H
#define MCUQ_CONV_S16_DSP_H

#include "mcuq_conv_s16.h"
#include "mcuq_simd.h"

#if defined(__GNUC__)
#define MCUQ_S16_INLINE inline __attribute__((always_inline))
#else
#define MCUQ_S16_INLINE inline
#endif

/* One output channel's requantization. form 1: int64 accumulator, TFLite's reduced multiplier r = round(m / 2^16)
 * in [0, 2^15) and right shift ts = 15 - shift in [1, 63]: y = low 32 bits of (acc * r + 2^(ts-1)) >> ts, exactly
 * mcuq_multiply_by_quantized_multiplier_s64 (acc * r and the sum modulo 2^64 as there; split into 32-bit words,
 * ts < 32: (lo >> ts) | (hi << (32 - ts)), else hi >> (ts - 32) arithmetic). form 2: the int32 accumulator,
 * mcuq_requantize (mcuq_simd.h: mcuq_multiply_by_quantized_multiplier's bits for multipliers >= 0). form 0: any
 * other multiplier or shift (not made by mcuq's lowering), mcuq_s16_requantize's general helpers. */
typedef struct {
    int32_t form;
    int32_t acc64;
    int32_t multiplier;
    int32_t shift;
    uint32_t r;
    int32_t ts;
    uint64_t round;
} mcuq_s16_quant;

static inline mcuq_s16_quant mcuq_s16_quant_of(int32_t acc64, int32_t multiplier, int32_t shift)
{
    mcuq_s16_quant q;
    q.form = 0;
    q.acc64 = acc64;
    q.multiplier = multiplier;
    q.shift = shift;
    q.r = 0;
    q.ts = 0;
    q.round = 0;
    if (multiplier < 0) {
        return q;
    }
    if (acc64) {
        if (shift > 14 || shift < -48) {
            return q;
        }
        q.r = (uint32_t)(multiplier < 0x7FFF0000 ? (multiplier + (1 << 15)) >> 16 : 0x7FFF);
        q.ts = 15 - shift;
        q.round = UINT64_C(1) << (q.ts - 1);
        q.form = 1;
    } else if (shift >= -31 && shift <= 30) {
        q.form = 2;
    }
    return q;
}

/* acc (bias included) -> the output before the clamp, as mcuq_s16_requantize. */
static MCUQ_S16_INLINE int32_t mcuq_s16_requant(int64_t acc, const mcuq_s16_quant *q)
{
    if (q->form == 1) {
        const uint64_t sum = (uint64_t)acc * q->r + q->round;
        const uint32_t lo = (uint32_t)sum;
        const uint32_t hi = (uint32_t)(sum >> 32);
        if (q->ts < 32) {
            return (int32_t)((lo >> q->ts) | (hi << (32 - q->ts)));
        }
        /* arithmetic shift of a negative value: implementation-defined in C99, arithmetic in GCC and Clang */
        return (int32_t)hi >> (q->ts - 32);
    }
    if (q->form == 2) {
        return mcuq_requantize((int32_t)(uint32_t)(uint64_t)acc, q->multiplier, q->shift);
    }
    if (q->acc64) {
        return mcuq_multiply_by_quantized_multiplier_s64(acc, q->multiplier, q->shift);
    }
    return mcuq_multiply_by_quantized_multiplier((int32_t)(uint32_t)(uint64_t)acc, q->multiplier, q->shift);
}

#endif /* MCUQ_CONV_S16_DSP_H */
