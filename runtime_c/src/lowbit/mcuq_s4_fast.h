/* Shared by the int4 fast kernels (mcuq_lowbit.h, *_s4_dsp.c and *_s4_mve.c). Internal to the runtime.
 *
 * Weight layout (mcuq/kernels/lowbit_fast.py, s4_fast_weights): the same ceil(rows * K * 4 / 8) bytes as the
 * portable packed layout, the nibbles reordered. With G values a group (8 for dsp, 32 for mve), Km = K - K % G
 * and t = K % G: first every row's Km values, group by group, each group's G values placed at the nibbles
 * pos[i] of its G / 2 bytes (the kernel's table, so that one word or vector unpacks into the lanes it multiplies);
 * then every row's last t values in their own order (row r's at nibble rows * Km + r * t), which the kernels
 * gather into one zero-filled group per row. The dsp kernels (G = 8) store w + 8 in each nibble (below); the mve
 * kernels (G = 32) w's two's complement, whose unpacking leaves each value times 16 (the nibble in the high half of
 * a byte): the sums of w * 16 * x wrap modulo 2^32 and are exact while |sum(w * x)| < 2^27, which
 * K < MCUQ_S4_FAST_MAX_DEPTH guarantees (|w * x| <= 8 * 128). */
#ifndef MCUQ_S4_FAST_H
#define MCUQ_S4_FAST_H

#include "mcuq_lowbit.h"
#include "../internal/mcuq_packed.h"
#include "../internal/mcuq_fixedpoint.h"
#include "../internal/mcuq_simd.h"
#include "../internal/mcuq_util.h"

/* Row r's tail (t < 8 values at nibble k0) as one word of the dsp layout: value i at nibble pos[i], zeros
 * elsewhere. */
static inline uint32_t mcuq_s4_tail_word(const uint8_t *w, int32_t k0, int32_t t, const uint8_t *pos)
{
    uint32_t v = 0;
    for (int32_t i = 0; i < t; ++i) {
        v |= ((uint32_t)mcuq_packed_weight(w, 4, k0 + i) & 0xFu) << (4u * pos[i]);
    }
    return v;
}

/* Row r's tail (t < 32 values at nibble k0) as one 16-byte chunk of the mve layout: value i < 16 in the low
 * nibble of byte i, value 16 + i in the high nibble of byte i, zeros elsewhere. */
static inline void mcuq_s4_tail_chunk(uint8_t chunk[16], const uint8_t *w, int32_t k0, int32_t t)
{
    for (int32_t i = 0; i < 16; ++i) {
        chunk[i] = 0;
    }
    for (int32_t i = 0; i < t; ++i) {
        const uint32_t nib = (uint32_t)mcuq_packed_weight(w, 4, k0 + i) & 0xFu;
        chunk[i & 15] = (uint8_t)(chunk[i & 15] | (i < 16 ? nib : nib << 4));
    }
}

/* -- the dsp kernels' unsigned nibbles ---------------------------------------------------------------------------
 * The dsp layouts (G = 8) store u = w + 8 (0..15) in each nibble instead of w's two's complement (the same bits
 * with the top one flipped), so that one AND with 0x000F000F (of the word shifted right by 0, 4, 8 or 12) leaves
 * two values as the int16 pair SMLAD multiplies: nibbles j and j + 4. The sums are sum((w + 8) * x) =
 * sum(w * x) + 8 * sum(x); the kernels start each accumulator at the folded bias minus 8 * sum(x) (modulo 2^32,
 * exact: no 16-times scaling, so no depth limit beyond MCUQ_S4_FAST_MAX_DEPTH's). */
#define MCUQ_S4U_MASK 0x000F000Fu

/* The dsp kernels' inner loop (GNU asm): GROUP once when n is odd, then GROUP twice a trip until %[w] reaches end,
 * which stays on the stack (no register is left). OPERANDS name at least w and t; m holds MCUQ_S4U_MASK. */
#define MCUQ_S4_ASM_GROUPS(GROUP, OPERANDS, n, end)                                                                    \
    do {                                                                                                               \
        if ((n)&1) {                                                                                                   \
            __asm__ volatile(GROUP:OPERANDS : [m] "r"(m) : "memory");                                                  \
        }                                                                                                              \
        if ((n) >= 2) {                                                                                                \
            t = (uint32_t)(uintptr_t)(end);                                                                            \
            __asm__ volatile("push {%[t]}\n\t"                                                                         \
                             "1:\n\t" GROUP GROUP "ldr %[t], [sp]\n\t"                                                 \
                             "cmp %[w], %[t]\n\t"                                                                      \
                             "bne 1b\n\t"                                                                              \
                             "add sp, sp, #4\n\t"                                                                      \
                             : OPERANDS                                                                                \
                             : [m] "r"(m)                                                                              \
                             : "cc", "memory");                                                                        \
        }                                                                                                              \
    } while (0)

/* The unsigned nibble k of w (low nibble first). */
static inline uint32_t mcuq_s4u_nibble(const uint8_t *w, int32_t k)
{
    return ((uint32_t)w[k >> 1] >> (4u * ((uint32_t)k & 1u))) & 0xFu;
}

/* t < 8 unsigned nibbles from nibble k0 as one word: value i at nibble pos[i], zeros elsewhere (their inputs are
 * zero). */
static inline uint32_t mcuq_s4u_tail_word(const uint8_t *w, int32_t k0, int32_t t, const uint8_t *pos)
{
    uint32_t v = 0;
    for (int32_t i = 0; i < t; ++i) {
        v |= mcuq_s4u_nibble(w, k0 + i) << (4u * pos[i]);
    }
    return v;
}

/* The requantization of one output channel, chosen once: TFLite's MultiplyByQuantizedMultiplier + output_zp.
 * Fast form (as mcuq_conv2d_s8_dsp.c's) for a multiplier in [2^30, 2^31) and a right shift r in [1, 23]:
 * h = SMMLAR(acc, 2m - 2^32, acc) = floor((acc * m + 2^30) / 2^31) (exact), then
 * QADD(h - (h < 0), 2^(r-1) + (output_zp << r)) >> r = RoundingDivideByPOT(h, r) + output_zp wherever the clamp
 * can tell (QADD saturates only where the result is >= 255 or <= -256 either way); else mcuq_requantize. */
typedef struct {
    uint32_t m2;
    int32_t rnd;
    int32_t right;
    int32_t mult;
    int32_t shift;
    int32_t zp;
    int fast;
} mcuq_s4_quant;

static inline mcuq_s4_quant mcuq_s4_quant_of(int32_t mult, int32_t shift, int32_t zp)
{
    mcuq_s4_quant q;
    q.fast = mult >= (INT32_C(1) << 30) && shift <= -1 && shift >= -23;
    q.mult = mult;
    q.shift = shift;
    q.zp = zp;
    q.m2 = (uint32_t)mult << 1;
    q.right = q.fast ? -shift : 1;
    q.rnd = (int32_t)((1u << (q.right - 1)) + ((uint32_t)zp << q.right));
    return q;
}

/* The fast form alone (q->fast set): the output of acc before the clamp. */
static inline int32_t mcuq_s4_requant_fast(uint32_t acc, const mcuq_s4_quant *q)
{
#if MCUQ_HAVE_DSP && defined(__GNUC__)
    int32_t h;
    __asm__("smmlar %0, %1, %2, %1" : "=r"(h) : "r"(acc), "r"(q->m2));
    return __qadd((int32_t)((uint32_t)h - (h < 0 ? 1u : 0u)), q->rnd) >> q->right;
#else
    const int32_t h = (int32_t)(((int64_t)(int32_t)acc * (int64_t)(q->m2 >> 1) + (INT64_C(1) << 30)) >> 31);
    const int64_t s = (int64_t)h - (h < 0 ? 1 : 0) + q->rnd;
    return (int32_t)MCUQ_CLAMP(s, INT32_MIN, INT32_MAX) >> q->right;
#endif
}

/* The output of acc before the clamp (the requantized value plus output_zp). */
static inline int32_t mcuq_s4_requant(uint32_t acc, const mcuq_s4_quant *q)
{
    if (!q->fast) {
        return mcuq_requantize((int32_t)acc, q->mult, q->shift) + q->zp;
    }
    return mcuq_s4_requant_fast(acc, q);
}

/* v clamped to [-128, 127] (SSAT #8 with the DSP extension). */
static inline int8_t mcuq_s4_ssat8(int32_t v)
{
#if MCUQ_HAVE_DSP
    return (int8_t)__ssat(v, 8);
#else
    return (int8_t)MCUQ_CLAMP(v, -128, 127);
#endif
}

/* The accumulator of one output: folded bias plus the 16-times sum (arithmetic shift: exact, see above), then
 * TFLite's requantization and clamp. */
static inline int8_t mcuq_s4_finish(int32_t bias, uint32_t sum16, int32_t mult, int32_t shift, int32_t zp, int32_t lo,
                                    int32_t hi)
{
    const int32_t acc = (int32_t)((uint32_t)bias + (uint32_t)((int32_t)sum16 >> 4));
    const int32_t y = mcuq_requantize(acc, mult, shift) + zp;
    return (int8_t)MCUQ_CLAMP(y, lo, hi);
}

#endif /* MCUQ_S4_FAST_H */
