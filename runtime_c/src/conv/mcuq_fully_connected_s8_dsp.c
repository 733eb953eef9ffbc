/* FULLY_CONNECTED, int8, dsp path: four output units per pass share each input word (SXTB16/SMLAD), no scratch
 * (see mcuq_conv.h, mcuq_fully_connected_s8_dsp).
 *
 * Filter layout (mcuq/kernels/conv_dsp.py, fc_dsp_weights): rows zero-padded to P = 4 * ceil(input_size / 4),
 * then units in groups of four (the last group has output_size % 4 units when that is not 0); group u0 starts
 * at byte u0 * P and holds, for each 4-byte group of inputs, one word per unit of the group: the word of unit
 * u0 + j for inputs [4i, 4i + 4) is at u0 * P + (i * width + j) * 4. One load pointer walks a whole pass.
 *
 * Arithmetic: bias is folded (bias - input_zp * sum(w)), the sums of raw int8 products wrap modulo 2^32 (SMLAD;
 * uint32_t in C): the final sum is TFLite's int32 accumulator. Outputs are written while the input is still
 * being read: the output must not overlap the input. */
#include "mcuq_conv.h"
#include "../internal/mcuq_conv_common.h"
#include "../internal/mcuq_simd.h"
#include "../internal/mcuq_util.h"

#if defined(__GNUC__)
#define MCUQ_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define MCUQ_ALWAYS_INLINE inline
#endif

int32_t mcuq_fully_connected_s8_dsp_scratch_size(const mcuq_fully_connected_params *params)
{
    (void)params;
    return 0;
}

/* The general requantization of one output, any multiplier and shift (mcuq_requantize), clamped. */
static int8_t finish(uint32_t acc, int32_t mult, int32_t shift, const mcuq_fully_connected_params *p)
{
    const int32_t y = mcuq_requantize((int32_t)acc, mult, shift) + p->output_zp;
    return (int8_t)MCUQ_CLAMP(y, p->activation.min, p->activation.max);
}

/* The fast form, for multiplier m in [2^30, 2^31) and a right shift r in [1, 23] (mcuq_conv2d_s8_dsp.c's file
 * header): h = SMMLAR(acc, 2m - 2^32, acc) = floor((acc * m + 2^30) / 2^31), exact; then
 * QADD(h - (h < 0), 2^(r-1) + (output_zp << r)) >> r is RoundingDivideByPOT(h, r) + output_zp wherever the clamp
 * can tell (QADD saturates only where the result is >= 255 or <= -256 either way). */
typedef struct {
    uint32_t m2;
    int32_t rnd;
    int32_t right;
} fast_quant;

static int is_fast(int32_t mult, int32_t shift)
{
    return mult >= (INT32_C(1) << 30) && shift <= -1 && shift >= -23;
}

static fast_quant fast_of(int32_t mult, int32_t shift, int32_t zp)
{
    fast_quant q;
    q.m2 = (uint32_t)mult << 1;
    q.right = -shift;
    q.rnd = (int32_t)((1u << (q.right - 1)) + ((uint32_t)zp << q.right));
    return q;
}

/* The fast form before the clamp: the output plus output_zp. */
static MCUQ_ALWAYS_INLINE int32_t fast_requant(uint32_t acc, fast_quant q)
{
#if MCUQ_HAVE_DSP && defined(__GNUC__)
    int32_t h;
    __asm__("smmlar %0, %1, %2, %1" : "=r"(h) : "r"(acc), "r"(q.m2));
    const int32_t y = __qadd((int32_t)((uint32_t)h - (h < 0 ? 1u : 0u)), q.rnd) >> q.right;
#else
    const int32_t h = (int32_t)(((int64_t)(int32_t)acc * (int64_t)(q.m2 >> 1) + (INT64_C(1) << 30)) >> 31);
    const int64_t s = (int64_t)h - (h < 0 ? 1 : 0) + q.rnd;
    const int32_t y = (int32_t)MCUQ_CLAMP(s, INT32_MIN, INT32_MAX) >> q.right;
#endif
    return y;
}

static MCUQ_ALWAYS_INLINE int8_t fast_finish(uint32_t acc, fast_quant q, int32_t lo, int32_t hi)
{
    const int32_t y = fast_requant(acc, q);
    return (int8_t)MCUQ_CLAMP(y, lo, hi);
}

/* The same, clamped to the full int8 range. */
static MCUQ_ALWAYS_INLINE int8_t fast_finish8(uint32_t acc, fast_quant q)
{
#if MCUQ_HAVE_DSP
    return (int8_t)__ssat(fast_requant(acc, q), 8);
#else
    const int32_t y = fast_requant(acc, q);
    return (int8_t)MCUQ_CLAMP(y, -128, 127);
#endif
}

/* The last n (1..3) input bytes, zero-padded to a word. */
static uint32_t tail_word(const int8_t *x, int32_t n)
{
    uint32_t v = 0;
    for (int32_t j = 0; j < n; ++j) {
        v |= (uint32_t)(uint8_t)x[j] << (8 * j);
    }
    return v;
}

/* One word of inputs v times the four units' words at w, into a[0..3]. */
static inline void step4(const uint32_t *w, uint32_t v, uint32_t a[4])
{
    const uint32_t xe = mcuq_sxtb16(v);
    const uint32_t xo = mcuq_sxtb16_ror8(v);
    const uint32_t w0 = w[0];
    const uint32_t w1 = w[1];
    const uint32_t w2 = w[2];
    const uint32_t w3 = w[3];
    a[0] = mcuq_smlad(mcuq_sxtb16_ror8(w0), xo, mcuq_smlad(mcuq_sxtb16(w0), xe, a[0]));
    a[1] = mcuq_smlad(mcuq_sxtb16_ror8(w1), xo, mcuq_smlad(mcuq_sxtb16(w1), xe, a[1]));
    a[2] = mcuq_smlad(mcuq_sxtb16_ror8(w2), xo, mcuq_smlad(mcuq_sxtb16(w2), xe, a[2]));
    a[3] = mcuq_smlad(mcuq_sxtb16_ror8(w3), xo, mcuq_smlad(mcuq_sxtb16(w3), xe, a[3]));
}

#if MCUQ_HAVE_DSP && defined(__GNUC__)
/* Per input word (16 MACs): LDR of the inputs, two LDM of two weight words, ten SXTB16, eight SMLAD; two words per
 * loop pass (one first when n is odd: LSRS puts n's low bit in C and sets Z for n < 2, and nothing in a step
 * touches the flags). The LDM register list must ascend: the weight words live in r8, r9. */
#define MCUQ_FC_DSP_WORD                                                                                               \
    "ldr %[xo], [%[x]], #4\n\t"                                                                                        \
    "ldmia %[w]!, {%[w0], %[w1]}\n\t"                                                                                  \
    "sxtb16 %[xe], %[xo]\n\t"                                                                                          \
    "sxtb16 %[xo], %[xo], ror #8\n\t"                                                                                  \
    "sxtb16 %[t], %[w0]\n\t"                                                                                           \
    "sxtb16 %[w0], %[w0], ror #8\n\t"                                                                                  \
    "smlad %[a0], %[t], %[xe], %[a0]\n\t"                                                                              \
    "smlad %[a0], %[w0], %[xo], %[a0]\n\t"                                                                             \
    "sxtb16 %[t], %[w1]\n\t"                                                                                           \
    "sxtb16 %[w1], %[w1], ror #8\n\t"                                                                                  \
    "smlad %[a1], %[t], %[xe], %[a1]\n\t"                                                                              \
    "smlad %[a1], %[w1], %[xo], %[a1]\n\t"                                                                             \
    "ldmia %[w]!, {%[w0], %[w1]}\n\t"                                                                                  \
    "sxtb16 %[t], %[w0]\n\t"                                                                                           \
    "sxtb16 %[w0], %[w0], ror #8\n\t"                                                                                  \
    "smlad %[a2], %[t], %[xe], %[a2]\n\t"                                                                              \
    "smlad %[a2], %[w0], %[xo], %[a2]\n\t"                                                                             \
    "sxtb16 %[t], %[w1]\n\t"                                                                                           \
    "sxtb16 %[w1], %[w1], ror #8\n\t"                                                                                  \
    "smlad %[a3], %[t], %[xe], %[a3]\n\t"                                                                              \
    "smlad %[a3], %[w1], %[xo], %[a3]\n\t"

/* Four units: acc[j] += unit j's weights (interleaved at w) times x; returns w past the group. */
static MCUQ_ALWAYS_INLINE const uint32_t *dot4(const uint32_t *w, const int8_t *x, int32_t full, int32_t rest,
                                               uint32_t acc[4])
{
    register uint32_t w0 __asm__("r8");
    register uint32_t w1 __asm__("r9");
    uint32_t a0 = acc[0];
    uint32_t a1 = acc[1];
    uint32_t a2 = acc[2];
    uint32_t a3 = acc[3];
    uint32_t xe;
    uint32_t xo;
    uint32_t t;
    int32_t n = full;
    __asm__ volatile("lsrs %[n], %[n], #1\n\t"
                     "bcc 2f\n\t" MCUQ_FC_DSP_WORD "2:\n\t"
                     "beq 3f\n\t"
                     "1:\n\t" MCUQ_FC_DSP_WORD MCUQ_FC_DSP_WORD "subs %[n], %[n], #1\n\t"
                     "bne 1b\n\t"
                     "3:\n\t"
                     : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [x] "+r"(x), [w] "+r"(w),
                       [n] "+r"(n), [w0] "=&r"(w0), [w1] "=&r"(w1), [xe] "=&r"(xe), [xo] "=&r"(xo), [t] "=&r"(t)
                     :
                     : "cc", "memory");
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
    if (rest != 0) {
        step4(w, tail_word(x, rest), acc);
        w += 4;
    }
    return w;
}
#undef MCUQ_FC_DSP_WORD
#else
/* Four units: acc[j] += unit j's weights (interleaved at w) times x; returns w past the group. */
static MCUQ_ALWAYS_INLINE const uint32_t *dot4(const uint32_t *w, const int8_t *x, int32_t full, int32_t rest,
                                               uint32_t acc[4])
{
    uint32_t a[4] = {acc[0], acc[1], acc[2], acc[3]};
    for (int32_t g = 0; g < full; ++g) {
        step4(w, mcuq_read_u32(x), a);
        x += 4;
        w += 4;
    }
    if (rest != 0) {
        step4(w, tail_word(x, rest), a);
        w += 4;
    }
    acc[0] = a[0];
    acc[1] = a[1];
    acc[2] = a[2];
    acc[3] = a[3];
    return w;
}
#endif

/* Unit j of a group of `width` units at w. */
static uint32_t dot1(const uint32_t *w, int32_t width, const int8_t *x, int32_t full, int32_t rest, uint32_t acc)
{
    for (int32_t g = 0; g < full; ++g) {
        const uint32_t v = mcuq_read_u32(x + 4 * g);
        acc = mcuq_smlad(mcuq_sxtb16(*w), mcuq_sxtb16(v), acc);
        acc = mcuq_smlad(mcuq_sxtb16_ror8(*w), mcuq_sxtb16_ror8(v), acc);
        w += width;
    }
    if (rest != 0) {
        const uint32_t v = tail_word(x + 4 * full, rest);
        acc = mcuq_smlad(mcuq_sxtb16(*w), mcuq_sxtb16(v), acc);
        acc = mcuq_smlad(mcuq_sxtb16_ror8(*w), mcuq_sxtb16_ror8(v), acc);
    }
    return acc;
}

/* The requantization, chosen once per call: one multiplier in the fast form with the full int8 range (FULL), else
 * per output (fast or general). */
enum { FC_FULL, FC_EACH };

/* One batch row: all groups of four units, then the last output_size % 4 units one by one. */
static MCUQ_ALWAYS_INLINE void row(int8_t *y, const uint32_t *w, const int8_t *x, const int32_t *bias,
                                   const mcuq_fully_connected_params *p, fast_quant q, int fast, int mode)
{
    const int32_t full = p->input_size / 4;
    const int32_t rest = p->input_size % 4;
    const int32_t lo = p->activation.min;
    const int32_t hi = p->activation.max;
    const int32_t step = p->per_channel;
    int32_t o = 0;
    for (; o + 4 <= p->output_size; o += 4) {
        uint32_t acc[4] = {(uint32_t)bias[o], (uint32_t)bias[o + 1], (uint32_t)bias[o + 2], (uint32_t)bias[o + 3]};
        w = dot4(w, x, full, rest, acc);
        if (mode == FC_FULL) {
            y[o] = fast_finish8(acc[0], q);
            y[o + 1] = fast_finish8(acc[1], q);
            y[o + 2] = fast_finish8(acc[2], q);
            y[o + 3] = fast_finish8(acc[3], q);
        } else {
            for (int32_t j = 0; j < 4; ++j) {
                const int32_t m = p->quant.multiplier[(o + j) * step];
                const int32_t s = p->quant.shift[(o + j) * step];
                y[o + j] = fast ? fast_finish(acc[j], fast_of(m, s, p->output_zp), lo, hi) : finish(acc[j], m, s, p);
            }
        }
    }
    const int32_t width = p->output_size - o;
    for (int32_t j = 0; j < width; ++j) {
        const uint32_t acc = dot1(w + j, width, x, full, rest, (uint32_t)bias[o + j]);
        y[o + j] = finish(acc, p->quant.multiplier[(o + j) * step], p->quant.shift[(o + j) * step], p);
    }
}

mcuq_status mcuq_fully_connected_s8_dsp(const mcuq_context *ctx, const mcuq_fully_connected_params *params,
                                        const int8_t *input, const int8_t *filter, const int32_t *bias, int8_t *output)
{
    const mcuq_status status = mcuq_fully_connected_check(ctx, params, input, filter, bias, output,
                                                          mcuq_fully_connected_s8_dsp_scratch_size(params), 1);
    if (status != MCUQ_OK) {
        return status;
    }
    if (((uintptr_t)filter & 3u) != 0) { /* the interleaved weight words are read whole */
        return MCUQ_ERR_ARGUMENT;
    }
    const mcuq_fully_connected_params p = *params;
    if (p.weights_zp != 0) {
        return MCUQ_ERR_UNSUPPORTED;
    }
    int fast = 1;
    for (int32_t o = 0; o < (p.per_channel != 0 ? p.output_size : 1); ++o) {
        fast = fast && is_fast(p.quant.multiplier[o], p.quant.shift[o]);
    }
    const fast_quant q = fast_of(p.quant.multiplier[0], fast ? p.quant.shift[0] : -1, p.output_zp);
    const int full_range = p.activation.min == -128 && p.activation.max == 127;
    const uint32_t *w = (const uint32_t *)(const void *)filter;
    for (int32_t b = 0; b < p.batches; ++b) {
        const int8_t *x = input + b * p.input_size;
        int8_t *y = output + b * p.output_size;
        if (fast && p.per_channel == 0 && full_range) {
            row(y, w, x, bias, &p, q, fast, FC_FULL);
        } else {
            row(y, w, x, bias, &p, q, fast, FC_EACH);
        }
    }
    return MCUQ_OK;
}
