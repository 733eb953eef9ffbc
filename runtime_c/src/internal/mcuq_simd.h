/* SIMD helpers of the dsp and mve kernel variants: ACLE intrinsics where the compiler targets them
 * (__ARM_FEATURE_DSP: Cortex-M4, M7, M33, M55), plain C with the same results everywhere else (the host, the M3),
 * so that every variant compiles and gives the same bits on every target. Internal to the runtime.
 *
 * All arithmetic that may wrap is done on uint32_t: SMLAD wraps modulo 2^32, and so do the folded accumulators
 * of the fast kernels (bias - input_zp * sum(w) + sum(w * x)), whose final value is the exact int32 result. */
#ifndef MCUQ_SIMD_H
#define MCUQ_SIMD_H

#include <stdint.h>
#include <string.h>

#include "mcuq_fixedpoint.h"

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>
#define MCUQ_HAVE_DSP 1
#else
#define MCUQ_HAVE_DSP 0
#endif

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)
#include <arm_mve.h>
#define MCUQ_HAVE_MVE 1
#else
#define MCUQ_HAVE_MVE 0
#endif

/* Four int8 (or two int16) from any address, as one 32-bit word (little endian). */
static inline uint32_t mcuq_read_u32(const void *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void mcuq_write_u32(void *p, uint32_t v)
{
    memcpy(p, &v, sizeof v);
}

/* SXTB16: bytes 0 and 2 of x, sign-extended to the two int16 halves (byte 0 low). */
static inline uint32_t mcuq_sxtb16(uint32_t x)
{
#if MCUQ_HAVE_DSP
    return (uint32_t)__sxtb16((int32_t)x);
#else
    const uint32_t lo = (uint32_t)(int32_t)(int8_t)(x & 0xffu) & 0xffffu;
    const uint32_t hi = (uint32_t)(int32_t)(int8_t)((x >> 16) & 0xffu) & 0xffffu;
    return lo | (hi << 16);
#endif
}

/* SXTB16 of x rotated right by 8: bytes 1 and 3. */
static inline uint32_t mcuq_sxtb16_ror8(uint32_t x)
{
#if MCUQ_HAVE_DSP && defined(__GNUC__)
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
#else
    return mcuq_sxtb16((x >> 8) | (x << 24));
#endif
}

/* SMLAD: acc + lo16(a) * lo16(b) + hi16(a) * hi16(b), the halves signed, the sum modulo 2^32. */
static inline uint32_t mcuq_smlad(uint32_t a, uint32_t b, uint32_t acc)
{
#if MCUQ_HAVE_DSP
    return (uint32_t)__smlad((int32_t)a, (int32_t)b, (int32_t)acc);
#else
    const int32_t p0 = (int32_t)(int16_t)(a & 0xffffu) * (int32_t)(int16_t)(b & 0xffffu);
    const int32_t p1 = (int32_t)(int16_t)(a >> 16) * (int32_t)(int16_t)(b >> 16);
    return acc + (uint32_t)p0 + (uint32_t)p1;
#endif
}

/* SADD16: the two int16 halves added lane by lane, each modulo 2^16. */
static inline uint32_t mcuq_sadd16(uint32_t a, uint32_t b)
{
#if MCUQ_HAVE_DSP
    return (uint32_t)__sadd16((int16x2_t)a, (int16x2_t)b);
#else
    const uint32_t lo = (a + b) & 0xffffu;
    const uint32_t hi = ((a >> 16) + (b >> 16)) & 0xffffu;
    return lo | (hi << 16);
#endif
}

/* TFLite's MultiplyByQuantizedMultiplier (mcuq_fixedpoint.h), the same bits with fewer instructions: the
 * doubling high multiply as one 64-bit multiply-accumulate, floor((x * m + 2^30) / 2^31), which equals gemmlowp's
 * SaturatingRoundingDoublingHighMul whenever m != INT32_MIN (multipliers are in [0, 2^31)), then gemmlowp's
 * RoundingDivideByPOT in 32 bits, (v >> r) + ((v & mask) > (mask >> 1) + (v < 0)), mask = 2^r - 1. */
static inline int32_t mcuq_requantize(int32_t x, int32_t multiplier, int32_t shift)
{
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    const int32_t mask = (int32_t)((UINT32_C(1) << right) - 1u);
    const int32_t xs = (int32_t)((uint32_t)x << left);
    const int32_t high = (int32_t)(((int64_t)xs * multiplier + (INT64_C(1) << 30)) >> 31);
    const int32_t threshold = (mask >> 1) + (high < 0 ? 1 : 0);
    return (high >> right) + ((high & mask) > threshold ? 1 : 0);
}

#endif /* MCUQ_SIMD_H */
