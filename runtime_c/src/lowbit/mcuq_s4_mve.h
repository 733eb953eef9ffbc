/* Shared by the int4 Helium kernels (*_s4_mve.c): one chunk of 32 weights (16 bytes) times 32 int8 inputs.
 * Internal to the runtime.
 *
 * Byte i of a chunk holds value i in its low nibble and value 16 + i in its high one (mcuq_s4_fast.h, G = 32).
 * VSHL #4 leaves the low values times 16, VAND 0xF0 the high ones; two VMLADAVA.S8 multiply them with the 16
 * inputs each. Without MVE the same arithmetic runs lane by lane in plain C. */
#ifndef MCUQ_S4_MVE_H
#define MCUQ_S4_MVE_H

#include "mcuq_s4_fast.h"

#if MCUQ_HAVE_MVE
static inline int32_t mcuq_s4_mve_chunk(int32_t acc, const uint8_t *w, int8x16_t xl, int8x16_t xh)
{
    const int8x16_t v = vldrbq_s8((const int8_t *)w);
    acc = vmladavaq_s8(acc, vshlq_n_s8(v, 4), xl);
    return vmladavaq_s8(acc, vandq_s8(v, vdupq_n_s8((int8_t)0xF0)), xh);
}
#endif

/* acc + 16 * sum of the chunk's 32 weights at w times x[0..31] (plain C, modulo 2^32). */
static inline uint32_t mcuq_s4_c_chunk(uint32_t acc, const uint8_t *w, const int8_t *x)
{
    for (int32_t i = 0; i < 16; ++i) {
        const int32_t lo = (int32_t)(int8_t)(uint8_t)(w[i] << 4);
        const int32_t hi = (int32_t)(int8_t)(uint8_t)(w[i] & 0xF0u);
        acc += (uint32_t)(lo * x[i]) + (uint32_t)(hi * x[16 + i]);
    }
    return acc;
}

#endif /* MCUQ_S4_MVE_H */
