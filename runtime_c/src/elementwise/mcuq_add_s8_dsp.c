/* ADD and SUB, int8, same shapes, for the dsp path (Cortex-M4/M7/M33/M55; plain C elsewhere): see
 * mcuq_elementwise.h (mcuq_add_fast_params).
 *
 * Per element: two byte loads, two table loads, then the output rescale of mcuq_add_s8 in four instructions.
 * With s = t1[x1] + t2[x2] (twice the combined value, |s| <= 2^30) and r = -output_shift:
 *   SMMLAR(s, m, b) = b + floor((s * m + 2^31) / 2^32) = b + SaturatingRoundingDoublingHighMul(s / 2, m) = b + h;
 *   RoundingDivideByPOT(h, r) + zp = (h + 2^(r-1) + zp * 2^r - (h < 0)) >> r       (r >= 1, arithmetic shift).
 * h < 0 implies s < 0, and s < 0 implies h <= 0, where (h - 1 + c) >> r == (h + c) >> r for h = 0 and any c that is
 * 2^(r-1) plus a multiple of 2^r: so (h < 0) may be replaced by (s < 0), i.e. -(s >> 31), and the whole rescale is
 * (SMMLAR(s, m, 2^(r-1) + zp * 2^r) + (s >> 31)) >> r ("folded", when that bias keeps the sum inside int32: r in
 * [1, 22]). Otherwise (r == 0, or r > 22) zp is added after the shift and the (s >> 31) term is masked off for r == 0.
 * The results are saturated to int8 (SSAT), packed four to a word and clamped to the activation with SSUB8/SEL.
 */
#include "mcuq_elementwise.h"
#include "../internal/mcuq_arithmetic.h"
#include "../internal/mcuq_simd.h"
#include "../internal/mcuq_util.h"

#if defined(__GNUC__)
#define ADD_FAST_INLINE static inline __attribute__((always_inline))
#else
#define ADD_FAST_INLINE static inline
#endif

/* SMMLAR: acc + ((a * b + 2^31) >> 32), modulo 2^32. */
ADD_FAST_INLINE int32_t add_fast_smmlar(int32_t a, int32_t b, int32_t acc)
{
#if MCUQ_HAVE_DSP && defined(__GNUC__)
    int32_t r;
    __asm__("smmlar %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
    return r;
#else
    return (int32_t)((uint32_t)acc + (uint32_t)(int32_t)(((int64_t)a * b + (INT64_C(1) << 31)) >> 32));
#endif
}

/* x saturated to [-128, 127]. */
ADD_FAST_INLINE int32_t add_fast_ssat8(int32_t x)
{
#if MCUQ_HAVE_DSP
    return __ssat(x, 8);
#else
    return MCUQ_CLAMP(x, -128, 127);
#endif
}

/* Four int8 lanes of w clamped to the lanes of lo and hi (each lo lane <= its hi lane). */
ADD_FAST_INLINE uint32_t add_fast_clamp4(uint32_t w, uint32_t lo, uint32_t hi)
{
#if MCUQ_HAVE_DSP
    (void)__ssub8((int8x4_t)w, (int8x4_t)lo); /* GE lanes: w >= lo */
    w = (uint32_t)__sel((uint8x4_t)w, (uint8x4_t)lo);
    (void)__ssub8((int8x4_t)w, (int8x4_t)hi); /* GE lanes: w >= hi */
    return (uint32_t)__sel((uint8x4_t)hi, (uint8x4_t)w);
#else
    uint32_t out = 0;
    for (int32_t k = 0; k < 32; k += 8) {
        const int32_t v = (int8_t)((w >> k) & 0xffu);
        const int32_t l = (int8_t)((lo >> k) & 0xffu);
        const int32_t h = (int8_t)((hi >> k) & 0xffu);
        out |= ((uint32_t)MCUQ_CLAMP(v, l, h) & 0xffu) << k;
    }
    return out;
#endif
}

/* Four int8 values (each already in [-128, 127]) as one little-endian word: three BFIs. */
ADD_FAST_INLINE uint32_t add_fast_pack4(int32_t v0, int32_t v1, int32_t v2, int32_t v3)
{
#if MCUQ_HAVE_DSP && defined(__GNUC__)
    uint32_t w = (uint32_t)v0;
    __asm__("bfi %0, %1, #8, #8" : "+r"(w) : "r"(v1));
    __asm__("bfi %0, %1, #16, #8" : "+r"(w) : "r"(v2));
    __asm__("bfi %0, %1, #24, #8" : "+r"(w) : "r"(v3));
    return w;
#else
    return ((uint32_t)v0 & 0xffu) | (((uint32_t)v1 & 0xffu) << 8) | (((uint32_t)v2 & 0xffu) << 16) |
           ((uint32_t)v3 << 24);
#endif
}

/* The rescale of one element (see the file comment); neg_mask is -1 or 0 (r == 0), zp_after 0 when folded. */
ADD_FAST_INLINE int32_t add_fast_one(const int32_t *t1, const int32_t *t2, const int8_t *x1, const int8_t *x2,
                                     int32_t k, int32_t mult, int32_t bias, int32_t neg_mask, int32_t shift,
                                     int32_t zp_after)
{
    const int32_t s = t1[(uint8_t)x1[k]] + t2[(uint8_t)x2[k]];
    const int32_t g = add_fast_smmlar(s, mult, bias);
    /* Arithmetic right shift of a negative value: implementation-defined in C99, arithmetic in GCC and Clang. */
    return add_fast_ssat8(((g + ((s < 0 ? -1 : 0) & neg_mask)) >> shift) + zp_after);
}

ADD_FAST_INLINE void add_fast_loop(const mcuq_add_fast_params *p, const int8_t *input1, const int8_t *input2,
                                   int8_t *output, int32_t bias, int32_t neg_mask, int32_t shift, int32_t zp_after,
                                   int clamp)
{
    const int32_t *t1 = p->input1_table;
    const int32_t *t2 = p->input2_table;
    const int32_t mult = p->output_multiplier;
    const int32_t lo = p->activation.min;
    const int32_t hi = p->activation.max;
    const uint32_t lo4 = ((uint32_t)lo & 0xffu) * 0x01010101u;
    const uint32_t hi4 = ((uint32_t)hi & 0xffu) * 0x01010101u;
    const int32_t size = p->size;
    int32_t i = 0;
    for (; i + 4 <= size; i += 4) {
        /* all four elements of both inputs are read before the output word is written (in place) */
        const int32_t v0 = add_fast_one(t1, t2, input1, input2, i, mult, bias, neg_mask, shift, zp_after);
        const int32_t v1 = add_fast_one(t1, t2, input1, input2, i + 1, mult, bias, neg_mask, shift, zp_after);
        const int32_t v2 = add_fast_one(t1, t2, input1, input2, i + 2, mult, bias, neg_mask, shift, zp_after);
        const int32_t v3 = add_fast_one(t1, t2, input1, input2, i + 3, mult, bias, neg_mask, shift, zp_after);
        uint32_t w = add_fast_pack4(v0, v1, v2, v3);
        if (clamp) {
            w = add_fast_clamp4(w, lo4, hi4);
        }
        mcuq_write_u32(&output[i], w);
    }
    for (; i < size; ++i) {
        const int32_t v = add_fast_one(t1, t2, input1, input2, i, mult, bias, neg_mask, shift, zp_after);
        output[i] = (int8_t)MCUQ_CLAMP(v, lo, hi);
    }
}

mcuq_status mcuq_add_s8_dsp(const mcuq_add_fast_params *params, const int8_t *input1, const int8_t *input2,
                            int8_t *output)
{
    const mcuq_status status = mcuq_add_fast_check(params, input1, input2, output);
    if (status != MCUQ_OK) {
        return status;
    }
    const mcuq_add_fast_params *p = params;
    const int32_t r = -p->output_shift;
    const int clamp = p->activation.min > -128 || p->activation.max < 127;
    if (r >= 1 && r <= 22) {
        /* |2^(r-1) + zp * 2^r| <= 2^30 and |h| <= 2^29: the folded sum stays inside int32 */
        const int32_t bias = (int32_t)((INT64_C(1) << (r - 1)) + (int64_t)p->output_zp * (INT64_C(1) << r));
        if (clamp) {
            add_fast_loop(p, input1, input2, output, bias, -1, r, 0, 1);
        } else {
            add_fast_loop(p, input1, input2, output, bias, -1, r, 0, 0);
        }
    } else {
        const int32_t half = r > 0 ? (int32_t)(INT64_C(1) << (r - 1)) : 0;
        add_fast_loop(p, input1, input2, output, half, r > 0 ? -1 : 0, r, p->output_zp, 1);
    }
    return MCUQ_OK;
}
