/* FULLY_CONNECTED, int8 activations, int4 weights, dsp path: the same bits as mcuq_fully_connected_s8_lowbit with
 * bits 4 and weights_zp 0 (TFLite's FullyConnected / FullyConnectedPerChannel on the unpacked values); see
 * mcuq_lowbit.h.
 *
 * Algorithm. Four units per pass share each 8 inputs (two words, four SXTB16: the pairs (x0, x2), (x1, x3),
 * (x4, x6), (x5, x7)); each unit's word of 8 unsigned nibbles (mcuq_s4_fast.h: u = w + 8) gives the four
 * matching pairs with one AND each (0x000F000F & word >> 0, 4, 8, 12), four SMLAD: per 32 MACs 2 LDR, 4 SXTB16,
 * 4 LDR, 16 AND, 16 SMLAD (hand-scheduled asm with the DSP extension, two groups per loop pass).
 * Weight layout: mcuq_s4_fast.h with G = 8 and pos = {0, 1, 4, 5, 2, 3, 6, 7} (value i at nibble pos[i]), the
 * whole groups of a pass of `width` units (4, the last pass output_size % 4) interleaved: the word of group g of
 * unit u0 + j at byte u0 * Km / 2 + (g * width + j) * 4; then every unit's K % 8 tail nibbles in order.
 * Each accumulator starts at bias[o] - 8 * sum(x) (bias, never NULL, is the folded bias[o] - input_zp * sum(w[o]));
 * the sums wrap modulo 2^32 and the final one is TFLite's int32 accumulator. Requantization: mcuq_s4_requant.
 * Without the DSP extension the same algorithm runs in plain C. No scratch. The output must not overlap the
 * input. */
#include "mcuq_lowbit.h"
#include "mcuq_lowbit_common.h"
#include "mcuq_s4_fast.h"

#if defined(__GNUC__)
#define MCUQ_ALWAYS_INLINE inline __attribute__((always_inline))
#define MCUQ_NOINLINE      __attribute__((noinline))
#else
#define MCUQ_ALWAYS_INLINE inline
#define MCUQ_NOINLINE
#endif

static const uint8_t POS[8] = {0, 1, 4, 5, 2, 3, 6, 7};

int32_t mcuq_fully_connected_s8_s4_dsp_scratch_size(const mcuq_fully_connected_lowbit_params *params)
{
    (void)params;
    return 0;
}

/* acc += one word of 8 unsigned nibbles times the input pairs p0..p3. */
static MCUQ_ALWAYS_INLINE uint32_t unit_step(uint32_t word, const uint32_t p[4], uint32_t acc)
{
    acc = mcuq_smlad(word & MCUQ_S4U_MASK, p[0], acc);
    acc = mcuq_smlad((word >> 4) & MCUQ_S4U_MASK, p[1], acc);
    acc = mcuq_smlad((word >> 8) & MCUQ_S4U_MASK, p[2], acc);
    return mcuq_smlad((word >> 12) & MCUQ_S4U_MASK, p[3], acc);
}

static MCUQ_ALWAYS_INLINE void pairs_of(uint32_t v0, uint32_t v1, uint32_t p[4])
{
    p[0] = mcuq_sxtb16(v0);
    p[1] = mcuq_sxtb16_ror8(v0);
    p[2] = mcuq_sxtb16(v1);
    p[3] = mcuq_sxtb16_ror8(v1);
}

#if MCUQ_HAVE_DSP && defined(__GNUC__)
#define MCUQ_S4_FC_UNIT(a)                                                                                             \
    "ldr %[wd], [%[w]], #4\n\t"                                                                                        \
    "and %[t], %[m], %[wd]\n\t"                                                                                        \
    "smlad %[" #a "], %[t], %[p0], %[" #a "]\n\t"                                                                      \
    "and %[t], %[m], %[wd], lsr #4\n\t"                                                                                \
    "smlad %[" #a "], %[t], %[p1], %[" #a "]\n\t"                                                                      \
    "and %[t], %[m], %[wd], lsr #8\n\t"                                                                                \
    "smlad %[" #a "], %[t], %[p2], %[" #a "]\n\t"                                                                      \
    "and %[wd], %[m], %[wd], lsr #12\n\t"                                                                              \
    "smlad %[" #a "], %[wd], %[p3], %[" #a "]\n\t"

/* One group: 8 inputs (two LDR, any alignment), four units' words. */
#define MCUQ_S4_FC_GROUP                                                                                               \
    "ldr %[p0], [%[x]], #4\n\t"                                                                                        \
    "ldr %[p2], [%[x]], #4\n\t"                                                                                        \
    "sxtb16 %[p1], %[p0], ror #8\n\t"                                                                                  \
    "sxtb16 %[p0], %[p0]\n\t"                                                                                          \
    "sxtb16 %[p3], %[p2], ror #8\n\t"                                                                                  \
    "sxtb16 %[p2], %[p2]\n\t" MCUQ_S4_FC_UNIT(a0) MCUQ_S4_FC_UNIT(a1) MCUQ_S4_FC_UNIT(a2) MCUQ_S4_FC_UNIT(a3)

#define MCUQ_S4_FC_OPERANDS                                                                                            \
    [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [x] "+r"(x), [w] "+r"(w), [p0] "=&r"(p0),              \
        [p1] "=&r"(p1), [p2] "=&r"(p2), [p3] "=&r"(p3), [wd] "=&r"(wd), [t] "+&r"(t)

/* Four units over gm groups: acc[j] += unit j's words (interleaved at w) times x; the loop ends when w reaches
 * its end, pushed on the stack (no register is left for a counter). */
/* (one copy for both requantization modes: the code stays small) */
static MCUQ_NOINLINE void dot4(const uint8_t *w, const int8_t *x, int32_t gm, uint32_t acc[4])
{
    uint32_t a0 = acc[0];
    uint32_t a1 = acc[1];
    uint32_t a2 = acc[2];
    uint32_t a3 = acc[3];
    uint32_t p0;
    uint32_t p1;
    uint32_t p2;
    uint32_t p3;
    uint32_t wd;
    uint32_t t = 0;
    const uint32_t m = MCUQ_S4U_MASK;
    MCUQ_S4_ASM_GROUPS(MCUQ_S4_FC_GROUP, MCUQ_S4_FC_OPERANDS, gm, w + (gm & ~1) * 16);
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}
#undef MCUQ_S4_FC_UNIT
#undef MCUQ_S4_FC_GROUP
#undef MCUQ_S4_FC_OPERANDS
#else
/* (one copy for both requantization modes: the code stays small) */
static MCUQ_NOINLINE void dot4(const uint8_t *w, const int8_t *x, int32_t gm, uint32_t acc[4])
{
    uint32_t a0 = acc[0];
    uint32_t a1 = acc[1];
    uint32_t a2 = acc[2];
    uint32_t a3 = acc[3];
    for (int32_t g = 0; g < gm; ++g) {
        uint32_t p[4];
        pairs_of(mcuq_read_u32(x), mcuq_read_u32(x + 4), p);
        x += 8;
        a0 = unit_step(mcuq_read_u32(w), p, a0);
        a1 = unit_step(mcuq_read_u32(w + 4), p, a1);
        a2 = unit_step(mcuq_read_u32(w + 8), p, a2);
        a3 = unit_step(mcuq_read_u32(w + 12), p, a3);
        w += 16;
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}
#endif

/* Up to 8 int8 inputs (n of them, zeros after) as two words. */
static void tail_words(const int8_t *x, int32_t n, uint32_t v[2])
{
    v[0] = 0;
    v[1] = 0;
    for (int32_t j = 0; j < n; ++j) {
        v[j >> 2] |= (uint32_t)(uint8_t)x[j] << (8 * (j & 3));
    }
}

/* sum(x[0..n)), exact in int32 (n < MCUQ_S4_FAST_MAX_DEPTH). */
static int32_t input_sum(const int8_t *x, int32_t n)
{
    uint32_t s = 0;
    int32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const uint32_t v = mcuq_read_u32(x + i);
        s = mcuq_smlad(mcuq_sxtb16(v), 0x00010001u, s);
        s = mcuq_smlad(mcuq_sxtb16_ror8(v), 0x00010001u, s);
    }
    for (; i < n; ++i) {
        s += (uint32_t)(int32_t)x[i];
    }
    return (int32_t)s;
}

/* The requantization, chosen once per call: one multiplier in the fast form with the full int8 range (FULL), else
 * per output (mcuq_s4_requant). */
enum { FC_FULL, FC_EACH };

/* One batch row: the passes of four units, then the last output_size % 4 units. */
static MCUQ_ALWAYS_INLINE void row(int8_t *y, const int8_t *x, const uint8_t *filter, const int32_t *bias,
                                   const mcuq_fully_connected_lowbit_params *p, const mcuq_s4_quant *q0, int mode)
{
    const int32_t k = p->input_size;
    const int32_t gm = k / 8;
    const int32_t t = k - gm * 8;
    const int32_t tails = p->output_size * gm * 8; /* nibble index of unit 0's tail */
    const uint32_t x8 = (uint32_t)input_sum(x, k) << 3;
    uint32_t xt[4] = {0, 0, 0, 0};
    if (t != 0) {
        uint32_t v[2];
        tail_words(x + 8 * gm, t, v);
        pairs_of(v[0], v[1], xt);
    }
    const uint8_t *w = filter;
    int32_t o = 0;
    for (; o + 4 <= p->output_size; o += 4) {
        uint32_t acc[4] = {(uint32_t)bias[o] - x8, (uint32_t)bias[o + 1] - x8, (uint32_t)bias[o + 2] - x8,
                           (uint32_t)bias[o + 3] - x8};
        dot4(w, x, gm, acc);
        w += gm * 16;
        if (t != 0) {
            for (int32_t j = 0; j < 4; ++j) {
                acc[j] = unit_step(mcuq_s4u_tail_word(filter, tails + (o + j) * t, t, POS), xt, acc[j]);
            }
        }
        if (mode == FC_FULL) {
            y[o] = mcuq_s4_ssat8(mcuq_s4_requant_fast(acc[0], q0));
            y[o + 1] = mcuq_s4_ssat8(mcuq_s4_requant_fast(acc[1], q0));
            y[o + 2] = mcuq_s4_ssat8(mcuq_s4_requant_fast(acc[2], q0));
            y[o + 3] = mcuq_s4_ssat8(mcuq_s4_requant_fast(acc[3], q0));
        } else {
            for (int32_t j = 0; j < 4; ++j) {
                const int32_t c = o + j;
                const mcuq_s4_quant q = p->per_channel != 0
                                            ? mcuq_s4_quant_of(p->quant.multiplier[c], p->quant.shift[c], p->output_zp)
                                            : *q0;
                const int32_t v = mcuq_s4_requant(acc[j], &q);
                y[o + j] = (int8_t)MCUQ_CLAMP(v, p->activation.min, p->activation.max);
            }
        }
    }
    const int32_t width = p->output_size - o;
    for (int32_t j = 0; j < width; ++j) {
        uint32_t acc = (uint32_t)bias[o + j] - x8;
        for (int32_t g = 0; g < gm; ++g) {
            uint32_t pr[4];
            pairs_of(mcuq_read_u32(x + 8 * g), mcuq_read_u32(x + 8 * g + 4), pr);
            acc = unit_step(mcuq_read_u32(w + (g * width + j) * 4), pr, acc);
        }
        if (t != 0) {
            acc = unit_step(mcuq_s4u_tail_word(filter, tails + (o + j) * t, t, POS), xt, acc);
        }
        const int32_t c = (o + j) * p->per_channel;
        const mcuq_s4_quant q = mcuq_s4_quant_of(p->quant.multiplier[c], p->quant.shift[c], p->output_zp);
        const int32_t v = mcuq_s4_requant(acc, &q);
        y[o + j] = (int8_t)MCUQ_CLAMP(v, p->activation.min, p->activation.max);
    }
}

mcuq_status mcuq_fully_connected_s8_s4_dsp(const mcuq_context *ctx, const mcuq_fully_connected_lowbit_params *params,
                                           const int8_t *input, const uint8_t *filter, const int32_t *bias,
                                           int8_t *output)
{
    const mcuq_status status = mcuq_fully_connected_lowbit_check(
        ctx, params, input, filter, bias, output, mcuq_fully_connected_s8_s4_dsp_scratch_size(params), 1);
    if (status != MCUQ_OK) {
        return status;
    }
    const mcuq_fully_connected_lowbit_params p = *params;
    if (p.bits != 4 || p.weights_zp != 0 || p.input_size >= MCUQ_S4_FAST_MAX_DEPTH) {
        return MCUQ_ERR_UNSUPPORTED;
    }
    const mcuq_s4_quant q0 = mcuq_s4_quant_of(p.quant.multiplier[0], p.quant.shift[0], p.output_zp);
    const int full = q0.fast && p.per_channel == 0 && p.activation.min == -128 && p.activation.max == 127;
    for (int32_t b = 0; b < p.batches; ++b) {
        const int8_t *x = input + b * p.input_size;
        int8_t *y = output + b * p.output_size;
        if (full) {
            row(y, x, filter, bias, &p, &q0, FC_FULL);
        } else {
            row(y, x, filter, bias, &p, &q0, FC_EACH);
        }
    }
    return MCUQ_OK;
}
