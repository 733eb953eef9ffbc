/* Shared by the int4 fast kernels (mcuq_lowbit.h, *_s4_dsp.c and *_s4_mve.c). Internal to the runtime.
 *
 * Weight layout (mcuq/kernels/lowbit_fast.py, s4_fast_weights): the same ceil(rows * K * 4 / 8) bytes as the
 * portable packed layout, the nibbles reordered. With G values a group (8 for dsp, 32 for mve), Km = K - K % G
 * and t = K % G: first every row's Km values, group by group, each group's G values placed at the nibbles
 * pos[i] of its G / 2 bytes (the kernel's table, so that one word or vector unpacks into the lanes it multiplies);
 * then every row's last t values in their own order (row r's at nibble rows * Km + r * t), which the kernels
 * gather into one zero-filled group per row. Unpacking leaves each value times 16 (the nibble in the high half of
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
