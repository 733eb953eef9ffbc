/* CONV_2D, int8 activations, int4 weights, dsp path: the same bits as mcuq_conv2d_s8_lowbit with bits 4 (TFLite's
 * reference_integer_ops::ConvPerChannel on the unpacked values); see mcuq_lowbit.h.
 *
 * Algorithm. Blocks of MCUQ_S4_DSP_BLOCK (4) output pixels. Each pixel's window (padded taps input_zp, K rounded
 * up to a multiple of 8 with zeros) is widened into the block as SXTB16 pairs: for each 8 values x0..x7 the four
 * words (x0, x2), (x1, x3), (x4, x6), (x5, x7), and for each such pair the four pixels' words side by side (word
 * (q * 4 + p) of the block is pair q of pixel p), so one LDM reads a pair for the four pixels. Per output channel,
 * one word of 8 unsigned nibbles (mcuq_s4_fast.h: u = w + 8) gives the four matching weight pairs with one AND
 * each: per 32 MACs 1 LDR, 4 AND, 4 LDM, 16 SMLAD (hand-scheduled asm with the DSP extension, two groups a loop
 * pass). Weight layout: mcuq_s4_fast.h with G = 8 and pos = {0, 1, 4, 5, 2, 3, 6, 7}, channels one after another;
 * each channel's K % 8 tail values (stored after all channels) are gathered once per call into one word per
 * channel in the scratch.
 * Each accumulator starts at bias[c] - 8 * sum(window) (bias, never NULL, is the folded bias[c] - input_zp *
 * sum(w[c])); the sums wrap modulo 2^32 and the final one is TFLite's int32 accumulator. Requantization:
 * mcuq_s4_requant. Without the DSP extension the same algorithm runs in plain C.
 * Scratch (4-byte aligned): the block (ceil(K / 8) * 64 bytes), one pixel's int8 window (ceil(K / 8) * 8 bytes)
 * and, when K % 8 != 0, the tail words (4 * output.c bytes).
 * Memory order: blocks of output pixels in raster order, each block's whole input read before any of its outputs
 * is written. The output must not overlap the input otherwise. */
#include "mcuq_lowbit.h"
#include "mcuq_lowbit_common.h"
#include "mcuq_s4_fast.h"
#include "../internal/mcuq_window.h"

#if defined(__GNUC__)
#define MCUQ_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define MCUQ_ALWAYS_INLINE inline
#endif

#define BLOCK MCUQ_S4_DSP_BLOCK

static const uint8_t POS[8] = {0, 1, 4, 5, 2, 3, 6, 7};

static int32_t depth_of(const mcuq_conv2d_lowbit_params *p)
{
    const int64_t k = (int64_t)p->window.filter.h * p->window.filter.w * p->input.c;
    return k >= MCUQ_S4_FAST_MAX_DEPTH ? 0 : (int32_t)k;
}

int32_t mcuq_conv2d_s8_s4_dsp_scratch_size(const mcuq_conv2d_lowbit_params *params)
{
    if (params == NULL || params->window.filter.h <= 0 || params->window.filter.w <= 0 || params->input.c <= 0 ||
        params->output.c < 0) {
        return 0;
    }
    const int32_t k = depth_of(params);
    const int32_t groups = (k + 7) / 8;
    return groups * 8 * 2 * BLOCK + groups * 8 + (k % 8 != 0 ? 4 * params->output.c : 0);
}

/* n int8 at src (any alignment) widened into the block's slot (pairs 4 words apart), zeros up to `groups` groups;
 * returns their sum. */
static int32_t widen(uint32_t *slot, const int8_t *src, int32_t n, int32_t groups)
{
    uint32_t s = 0;
    int32_t i = 0;
    uint32_t *d = slot;
    for (; i + 4 <= n; i += 4, d += 2 * BLOCK) {
        const uint32_t v = mcuq_read_u32(src + i);
        const uint32_t e = mcuq_sxtb16(v);
        const uint32_t o = mcuq_sxtb16_ror8(v);
        d[0] = e;
        d[BLOCK] = o;
        s = mcuq_smlad(e, 0x00010001u, s);
        s = mcuq_smlad(o, 0x00010001u, s);
    }
    if (i < n) {
        uint32_t v = 0;
        for (int32_t j = 0; i + j < n; ++j) {
            v |= (uint32_t)(uint8_t)src[i + j] << (8 * j);
        }
        const uint32_t e = mcuq_sxtb16(v);
        const uint32_t o = mcuq_sxtb16_ror8(v);
        d[0] = e;
        d[BLOCK] = o;
        s = mcuq_smlad(e, 0x00010001u, s);
        s = mcuq_smlad(o, 0x00010001u, s);
        i += 4;
        d += 2 * BLOCK;
    }
    for (; i < groups * 8; i += 4, d += 2 * BLOCK) {
        d[0] = 0;
        d[BLOCK] = 0;
    }
    return (int32_t)s;
}

/* n bytes of v at dst. */
static void fill_bytes(int8_t *dst, int8_t v, int32_t n)
{
    for (int32_t i = 0; i < n; ++i) {
        dst[i] = v;
    }
}

/* The window of output pixel (oy, ox) as int8 into stage (K bytes), padded taps input_zp. */
static void gather(int8_t *stage, const int8_t *image, const mcuq_conv2d_lowbit_params *p, int32_t oy, int32_t ox)
{
    const int32_t cin = p->input.c;
    const int32_t fw = p->window.filter.w;
    const int32_t row = fw * cin;
    const int32_t iy0 = oy * p->window.stride.h - p->window.pad.h;
    const int32_t ix0 = ox * p->window.stride.w - p->window.pad.w;
    const int8_t zp = (int8_t)p->input_zp;
    int32_t kx_lo;
    int32_t kx_hi;
    mcuq_tap_range(ix0, p->window.dilation.w, p->input.w, fw, &kx_lo, &kx_hi);
    for (int32_t ky = 0; ky < p->window.filter.h; ++ky, stage += row) {
        const int32_t iy = iy0 + ky * p->window.dilation.h;
        if (iy < 0 || iy >= p->input.h || kx_hi <= kx_lo) {
            fill_bytes(stage, zp, row);
            continue;
        }
        const int8_t *src = image + iy * p->input.w * cin;
        fill_bytes(stage, zp, kx_lo * cin);
        for (int32_t kx = kx_lo; kx < kx_hi; ++kx) {
            const int8_t *s = src + (ix0 + kx * p->window.dilation.w) * cin;
            int8_t *d = stage + kx * cin;
            for (int32_t c = 0; c < cin; ++c) {
                d[c] = s[c];
            }
        }
        fill_bytes(stage + kx_hi * cin, zp, (fw - kx_hi) * cin);
    }
}

/* acc[p] += sum over n groups of the channel's weights (words at w) times pixel p's values (the block at x). */
#if MCUQ_HAVE_DSP && defined(__GNUC__)
#define MCUQ_S4_CONV_PAIR(shift_op)                                                                                    \
    "and %[t], %[m], %[wd]" shift_op "\n\t"                                                                            \
    "ldmia %[x]!, {%[x0], %[x1], %[x2], %[x3]}\n\t"                                                                    \
    "smlad %[a0], %[t], %[x0], %[a0]\n\t"                                                                              \
    "smlad %[a1], %[t], %[x1], %[a1]\n\t"                                                                              \
    "smlad %[a2], %[t], %[x2], %[a2]\n\t"                                                                              \
    "smlad %[a3], %[t], %[x3], %[a3]\n\t"

#define MCUQ_S4_CONV_GROUP                                                                                             \
    "ldr %[wd], [%[w]], #4\n\t" MCUQ_S4_CONV_PAIR("") MCUQ_S4_CONV_PAIR(", lsr #4") MCUQ_S4_CONV_PAIR(", lsr #8")      \
        MCUQ_S4_CONV_PAIR(", lsr #12")

/* The LDM register list must ascend: the block words live in r8-r11. */
#define MCUQ_S4_CONV_OPERANDS                                                                                          \
    [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [x] "+r"(x), [w] "+r"(w), [x0] "=&r"(x0),              \
        [x1] "=&r"(x1), [x2] "=&r"(x2), [x3] "=&r"(x3), [wd] "=&r"(wd), [t] "+&r"(t)

static MCUQ_ALWAYS_INLINE void dot4(const uint32_t *x, const uint8_t *w, int32_t n, uint32_t acc[4])
{
    register uint32_t x0 __asm__("r8");
    register uint32_t x1 __asm__("r9");
    register uint32_t x2 __asm__("r10");
    register uint32_t x3 __asm__("r11");
    uint32_t a0 = acc[0];
    uint32_t a1 = acc[1];
    uint32_t a2 = acc[2];
    uint32_t a3 = acc[3];
    uint32_t wd;
    uint32_t t = 0;
    const uint32_t m = MCUQ_S4U_MASK;
    MCUQ_S4_ASM_GROUPS(MCUQ_S4_CONV_GROUP, MCUQ_S4_CONV_OPERANDS, n, w + (n & ~1) * 4);
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}
#undef MCUQ_S4_CONV_PAIR
#undef MCUQ_S4_CONV_GROUP
#undef MCUQ_S4_CONV_OPERANDS
#else
static MCUQ_ALWAYS_INLINE void dot4(const uint32_t *x, const uint8_t *w, int32_t n, uint32_t acc[4])
{
    uint32_t a0 = acc[0];
    uint32_t a1 = acc[1];
    uint32_t a2 = acc[2];
    uint32_t a3 = acc[3];
    for (int32_t g = 0; g < n; ++g) {
        const uint32_t wd = mcuq_read_u32(w);
        w += 4;
        for (uint32_t j = 0; j < 4; ++j) {
            const uint32_t t = (wd >> (4u * j)) & MCUQ_S4U_MASK;
            a0 = mcuq_smlad(t, x[0], a0);
            a1 = mcuq_smlad(t, x[1], a1);
            a2 = mcuq_smlad(t, x[2], a2);
            a3 = mcuq_smlad(t, x[3], a3);
            x += BLOCK;
        }
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}
#endif

/* The requantization, chosen once per call: every channel in the fast form with the full int8 range (FULL), else
 * per channel (mcuq_s4_requant). */
enum { CONV_FULL, CONV_EACH };

/* A block: every output channel's dot products with the block's pixels, requantized; the first nb stored. */
static MCUQ_ALWAYS_INLINE void block_outputs(int8_t *o, const uint32_t *block, const uint8_t *filter,
                                             const uint32_t *tail_w, const int32_t *bias, const uint32_t x8[BLOCK],
                                             const mcuq_conv2d_lowbit_params *p, int32_t gm, int32_t t, int32_t nb,
                                             int mode)
{
    const int32_t cout = p->output.c;
    const uint8_t *w = filter;
    for (int32_t oc = 0; oc < cout; ++oc, ++o) {
        const uint32_t bc = (uint32_t)bias[oc];
        uint32_t acc[BLOCK] = {bc - x8[0], bc - x8[1], bc - x8[2], bc - x8[3]};
        dot4(block, w, gm, acc);
        w += gm * 4;
        if (t != 0) {
            dot4(block + gm * 4 * BLOCK, (const uint8_t *)(const void *)(tail_w + oc), 1, acc);
        }
        if (mode == CONV_FULL) {
            mcuq_s4_quant q; /* the fast form only: the caller checked every channel has it */
            q.mult = p->quant.multiplier[oc];
            q.shift = p->quant.shift[oc];
            q.zp = p->output_zp;
            q.fast = 1;
            q.m2 = (uint32_t)p->quant.multiplier[oc] << 1;
            q.right = -p->quant.shift[oc];
            q.rnd = (int32_t)((1u << (q.right - 1)) + ((uint32_t)p->output_zp << q.right));
            if (nb == BLOCK) {
                o[0] = mcuq_s4_ssat8(mcuq_s4_requant_fast(acc[0], &q));
                o[cout] = mcuq_s4_ssat8(mcuq_s4_requant_fast(acc[1], &q));
                o[2 * cout] = mcuq_s4_ssat8(mcuq_s4_requant_fast(acc[2], &q));
                o[3 * cout] = mcuq_s4_ssat8(mcuq_s4_requant_fast(acc[3], &q));
            } else {
                for (int32_t s = 0; s < nb; ++s) {
                    o[s * cout] = mcuq_s4_ssat8(mcuq_s4_requant_fast(acc[s], &q));
                }
            }
        } else {
            const mcuq_s4_quant q = mcuq_s4_quant_of(p->quant.multiplier[oc], p->quant.shift[oc], p->output_zp);
            for (int32_t s = 0; s < nb; ++s) {
                const int32_t v = mcuq_s4_requant(acc[s], &q);
                o[s * cout] = (int8_t)MCUQ_CLAMP(v, p->activation.min, p->activation.max);
            }
        }
    }
}

mcuq_status mcuq_conv2d_s8_s4_dsp(const mcuq_context *ctx, const mcuq_conv2d_lowbit_params *params, const int8_t *input,
                                  const uint8_t *filter, const int32_t *bias, int8_t *output)
{
    const mcuq_status status =
        mcuq_conv2d_lowbit_check(ctx, params, input, filter, output, mcuq_conv2d_s8_s4_dsp_scratch_size(params), 0);
    if (status != MCUQ_OK) {
        return status;
    }
    if (bias == NULL || ctx->buf == NULL || ((uintptr_t)ctx->buf & 3u) != 0) {
        return MCUQ_ERR_ARGUMENT;
    }
    const mcuq_conv2d_lowbit_params p = *params;
    const int32_t k = depth_of(&p);
    if (p.bits != 4 || k == 0) {
        return MCUQ_ERR_UNSUPPORTED;
    }
    const int32_t gm = k / 8;     /* whole groups of a channel */
    const int32_t t = k - gm * 8; /* the rest, gathered from the tails */
    const int32_t groups = (k + 7) / 8;
    const int32_t cout = p.output.c;
    uint32_t *block = (uint32_t *)ctx->buf;
    int8_t *stage = (int8_t *)(block + groups * 4 * BLOCK);
    uint32_t *tail_w = (uint32_t *)(void *)(stage + groups * 8);
    if (t != 0) {
        const int32_t tails = cout * gm * 8; /* nibble index of channel 0's tail */
        for (int32_t oc = 0; oc < cout; ++oc) {
            tail_w[oc] = mcuq_s4u_tail_word(filter, tails + oc * t, t, POS);
        }
    }
    int full = p.activation.min == -128 && p.activation.max == 127;
    for (int32_t oc = 0; oc < cout && full; ++oc) {
        full = mcuq_s4_quant_of(p.quant.multiplier[oc], p.quant.shift[oc], 0).fast;
    }
    const int32_t in_image = p.input.h * p.input.w * p.input.c;
    const int32_t pixels = p.output.h * p.output.w;
    /* 1x1 with no padding: the window is the input pixel's channels, widened straight from the input */
    const int direct = p.window.filter.h == 1 && p.window.filter.w == 1 && p.window.pad.h == 0 && p.window.pad.w == 0;

    for (int32_t b = 0; b < p.input.n; ++b) {
        const int8_t *image = input + b * in_image;
        int8_t *out = output + b * pixels * cout;
        for (int32_t px = 0; px < pixels; px += BLOCK) {
            const int32_t nb = MCUQ_MIN(BLOCK, pixels - px);
            uint32_t x8[BLOCK];
            for (int32_t s = 0; s < BLOCK; ++s) {
                /* cppcheck-suppress knownConditionTrueFalse ; nb is in [1, BLOCK], so s >= nb holds only for spare slots */
                if (s >= nb) { /* spare slots: computed on zeros, never stored */
                    x8[s] = 0;
                    (void)widen(block + s, image, 0, groups);
                    continue;
                }
                const int32_t oy = (px + s) / p.output.w;
                const int32_t ox = (px + s) % p.output.w;
                int32_t sum;
                if (direct) {
                    const int8_t *src =
                        image + (oy * p.window.stride.h * p.input.w + ox * p.window.stride.w) * p.input.c;
                    sum = widen(block + s, src, k, groups);
                } else {
                    gather(stage, image, &p, oy, ox);
                    sum = widen(block + s, stage, k, groups);
                }
                x8[s] = (uint32_t)sum << 3;
            }
            int8_t *o = out + px * cout;
            if (full) {
                block_outputs(o, block, filter, tail_w, bias, x8, &p, gm, t, nb, CONV_FULL);
            } else {
                block_outputs(o, block, filter, tail_w, bias, x8, &p, gm, t, nb, CONV_EACH);
            }
        }
    }
    return MCUQ_OK;
}
