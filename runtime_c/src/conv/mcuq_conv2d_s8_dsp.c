/* CONV_2D, int8, dsp path: im2col into q15 blocks of MCUQ_CONV_DSP_BLOCK output pixels, then SXTB16/SMLAD over
 * one output channel x four pixels per pass (see mcuq_conv.h, mcuq_conv2d_s8_dsp).
 *
 * Scratch (ctx->buf, 4-byte aligned): the q15 block, ceil(K / 4) groups x BLOCK pixels x 2 words, where
 * K = filter.h * filter.w * input.c; word 0 of a group holds the int16 pair (x0, x2) of four consecutive K
 * elements, word 1 the pair (x1, x3): exactly SXTB16(v) and SXTB16(v ror 8) of the four int8 values v, so the
 * weights are read raw from flash and expanded the same way. Pixels of a group are interleaved (group-major), so
 * one pass reads the block with a single pointer. When input.c % 4 != 0, 4 * ceil(K / 4) more bytes gather one
 * pixel's window as int8 first.
 *
 * Arithmetic: bias is folded (bias - input_zp * sum(w)), taps in the zero padding hold input_zp, and the sums
 * of raw int8 products wrap modulo 2^32 (SMLAD; uint32_t in C): the final sum is TFLite's int32 accumulator.
 *
 * Memory order (mcuq/kernels/conv_dsp.py, window_overlap): output pixels are walked in raster order in blocks;
 * a block's whole input is copied into the scratch before any of its outputs is written, and its outputs fill
 * [first pixel * output.c, (last pixel + 1) * output.c). */
#include "mcuq_conv.h"
#include "../internal/mcuq_simd.h"
#include "../internal/mcuq_util.h"
#include "../internal/mcuq_window.h"

#define BLOCK MCUQ_CONV_DSP_BLOCK

static int32_t groups_of(const mcuq_conv2d_params *p)
{
    return (p->window.filter.h * p->window.filter.w * p->input.c + 3) / 4;
}

int32_t mcuq_conv2d_s8_dsp_scratch_size(const mcuq_conv2d_params *params)
{
    if (params == NULL || params->window.filter.h <= 0 || params->window.filter.w <= 0 || params->input.c <= 0) {
        return 0;
    }
    const int32_t groups = groups_of(params);
    return groups * BLOCK * 8 + ((params->input.c % 4) != 0 ? groups * 4 : 0);
}

/* n int8 from src (any alignment) widened into groups of two words, `stride` words apart; a last partial group is
 * padded with zeros (whose weights are zero-padded too). */
static void widen(uint32_t *dst, int32_t stride, const int8_t *src, int32_t n)
{
    int32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const uint32_t v = mcuq_read_u32(src + i);
        dst[0] = mcuq_sxtb16(v);
        dst[1] = mcuq_sxtb16_ror8(v);
        dst += stride;
    }
    if (i < n) {
        uint32_t v = 0;
        for (int32_t j = 0; i + j < n; ++j) {
            v |= (uint32_t)(uint8_t)src[i + j] << (8 * j);
        }
        dst[0] = mcuq_sxtb16(v);
        dst[1] = mcuq_sxtb16_ror8(v);
    }
}

/* `groups` groups of input_zp (padding taps), `stride` words apart. */
static void fill(uint32_t *dst, int32_t stride, uint32_t zp_pair, int32_t groups)
{
    for (int32_t g = 0; g < groups; ++g) {
        dst[0] = zp_pair;
        dst[1] = zp_pair;
        dst += stride;
    }
}

/* n int8 into dst: src[0..n) or, for a NULL src, input_zp. */
static void copy_bytes(int8_t *dst, const int8_t *src, int32_t n, int8_t zp)
{
    for (int32_t i = 0; i < n; ++i) {
        dst[i] = (src != NULL) ? src[i] : zp;
    }
}

/* The weights' last group (K % 4 != 0): the remaining bytes, zero-padded to a word. */
static uint32_t tail_word(const int8_t *w, int32_t n)
{
    uint32_t v = 0;
    for (int32_t j = 0; j < n; ++j) {
        v |= (uint32_t)(uint8_t)w[j] << (8 * j);
    }
    return v;
}

/* acc[p] += sum over K of w[k] * x_p[k], for the four interleaved pixels of the block at x (full groups only). */
#if MCUQ_HAVE_DSP && defined(__GNUC__)
/* Per group of 4 K: one LDR of weights, two SXTB16, two LDM of the block (two pixels each), eight SMLAD (16 MACs);
 * the LDM register list must ascend, so the four block words live in r8-r11. */
static void dot4(const uint32_t *x, const int8_t *w, int32_t full, uint32_t acc[4])
{
    if (full <= 0) {
        return;
    }
    register uint32_t x0 __asm__("r8");
    register uint32_t x1 __asm__("r9");
    register uint32_t x2 __asm__("r10");
    register uint32_t x3 __asm__("r11");
    uint32_t a0 = acc[0];
    uint32_t a1 = acc[1];
    uint32_t a2 = acc[2];
    uint32_t a3 = acc[3];
    uint32_t we;
    uint32_t wo;
    __asm__ volatile(
        "1:\n\t"
        "ldr %[wo], [%[w]], #4\n\t"
        "ldmia %[x]!, {%[x0], %[x1], %[x2], %[x3]}\n\t"
        "sxtb16 %[we], %[wo]\n\t"
        "sxtb16 %[wo], %[wo], ror #8\n\t"
        "smlad %[a0], %[we], %[x0], %[a0]\n\t"
        "smlad %[a0], %[wo], %[x1], %[a0]\n\t"
        "smlad %[a1], %[we], %[x2], %[a1]\n\t"
        "smlad %[a1], %[wo], %[x3], %[a1]\n\t"
        "ldmia %[x]!, {%[x0], %[x1], %[x2], %[x3]}\n\t"
        "smlad %[a2], %[we], %[x0], %[a2]\n\t"
        "smlad %[a2], %[wo], %[x1], %[a2]\n\t"
        "smlad %[a3], %[we], %[x2], %[a3]\n\t"
        "smlad %[a3], %[wo], %[x3], %[a3]\n\t"
        "subs %[n], %[n], #1\n\t"
        "bne 1b\n\t"
        : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [x] "+r"(x), [w] "+r"(w), [n] "+r"(full),
          [x0] "=&r"(x0), [x1] "=&r"(x1), [x2] "=&r"(x2), [x3] "=&r"(x3), [we] "=&r"(we), [wo] "=&r"(wo)
        :
        : "cc", "memory");
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}
#else
static void dot4(const uint32_t *x, const int8_t *w, int32_t full, uint32_t acc[4])
{
    uint32_t a0 = acc[0];
    uint32_t a1 = acc[1];
    uint32_t a2 = acc[2];
    uint32_t a3 = acc[3];
    for (int32_t g = 0; g < full; ++g) {
        const uint32_t v = mcuq_read_u32(w);
        w += 4;
        const uint32_t we = mcuq_sxtb16(v);
        const uint32_t wo = mcuq_sxtb16_ror8(v);
        a0 = mcuq_smlad(we, x[0], a0);
        a0 = mcuq_smlad(wo, x[1], a0);
        a1 = mcuq_smlad(we, x[2], a1);
        a1 = mcuq_smlad(wo, x[3], a1);
        a2 = mcuq_smlad(we, x[4], a2);
        a2 = mcuq_smlad(wo, x[5], a2);
        a3 = mcuq_smlad(we, x[6], a3);
        a3 = mcuq_smlad(wo, x[7], a3);
        x += 8;
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}
#endif

/* One pixel's dot product: its groups are `stride` words apart at x. */
static uint32_t dot1(const uint32_t *x, int32_t stride, const int8_t *w, int32_t full, int32_t rest, uint32_t acc)
{
    for (int32_t g = 0; g < full; ++g) {
        const uint32_t v = mcuq_read_u32(w);
        w += 4;
        acc = mcuq_smlad(mcuq_sxtb16(v), x[0], acc);
        acc = mcuq_smlad(mcuq_sxtb16_ror8(v), x[1], acc);
        x += stride;
    }
    if (rest != 0) {
        const uint32_t v = tail_word(w, rest);
        acc = mcuq_smlad(mcuq_sxtb16(v), x[0], acc);
        acc = mcuq_smlad(mcuq_sxtb16_ror8(v), x[1], acc);
    }
    return acc;
}

/* One output channel's requantization, split once per channel: TFLite's MultiplyByQuantizedMultiplier as
 * mcuq_requantize computes it (the doubling high multiply in 64 bits), with gemmlowp's RoundingDivideByPOT in
 * 32 bits: (x >> r) + ((x & mask) > (mask >> 1) + (x < 0)), mask = 2^r - 1; the same bits, fewer instructions. */
typedef struct {
    int32_t mult;
    int32_t left;
    int32_t right;
    int32_t mask;
    int32_t zp;
    int32_t lo;
    int32_t hi;
} requant;

static inline requant requant_of(int32_t mult, int32_t shift, const mcuq_conv2d_params *p)
{
    requant r;
    r.mult = mult;
    r.left = shift > 0 ? shift : 0;
    r.right = shift > 0 ? 0 : -shift;
    r.mask = (int32_t)((1u << r.right) - 1u);
    r.zp = p->output_zp;
    r.lo = p->activation.min;
    r.hi = p->activation.max;
    return r;
}

static inline int8_t finish(uint32_t acc, const requant *r)
{
    const int32_t xs = (int32_t)(acc << r->left);
    const int32_t high = (int32_t)(((int64_t)xs * r->mult + (INT64_C(1) << 30)) >> 31);
    const int32_t threshold = (r->mask >> 1) + (high < 0 ? 1 : 0);
    int32_t y = (high >> r->right) + ((high & r->mask) > threshold ? 1 : 0) + r->zp;
    y = MCUQ_CLAMP(y, r->lo, r->hi);
    return (int8_t)y;
}

mcuq_status mcuq_conv2d_s8_dsp(const mcuq_context *ctx, const mcuq_conv2d_params *params, const int8_t *input,
                               const int8_t *filter, const int32_t *bias, int8_t *output)
{
    if (ctx == NULL || params == NULL || input == NULL || filter == NULL || bias == NULL || output == NULL ||
        params->quant.multiplier == NULL || params->quant.shift == NULL) {
        return MCUQ_ERR_ARGUMENT;
    }
    const mcuq_conv2d_params p = *params;
    if (p.input.n < 0 || p.output.n != p.input.n || p.depth_multiplier != 1 || p.input.h <= 0 || p.input.w <= 0 ||
        p.input.c <= 0 || p.output.h < 0 || p.output.w < 0 || p.output.c <= 0 || p.window.filter.h <= 0 ||
        p.window.filter.w <= 0 || p.window.stride.h <= 0 || p.window.stride.w <= 0 || p.window.dilation.h <= 0 ||
        p.window.dilation.w <= 0 || p.activation.min > p.activation.max) {
        return MCUQ_ERR_ARGUMENT;
    }
    if (ctx->buf == NULL || ctx->size < mcuq_conv2d_s8_dsp_scratch_size(params) || ((uintptr_t)ctx->buf & 3u) != 0) {
        return MCUQ_ERR_ARGUMENT;
    }
    const int32_t cin = p.input.c;
    const int32_t cout = p.output.c;
    const int32_t k = p.window.filter.h * p.window.filter.w * cin;
    const int32_t groups = groups_of(&p);
    const int32_t full = k / 4;
    const int32_t rest = k % 4;
    const int32_t in_row = p.input.w * cin;
    const int32_t in_image = p.input.h * in_row;
    const int32_t filter_row = p.window.filter.w * cin;
    uint32_t *block = (uint32_t *)ctx->buf;
    int8_t *stage = (int8_t *)(block + groups * BLOCK * 2);
    const int8_t zp = (int8_t)p.input_zp;
    const uint32_t zp_pair = ((uint32_t)p.input_zp & 0xffffu) * 0x10001u;
    /* 1x1, stride 1, no padding: output pixel i reads input pixel i, nothing to gather */
    const int pointwise = p.window.filter.h == 1 && p.window.filter.w == 1 && p.window.stride.h == 1 &&
                          p.window.stride.w == 1 && p.window.pad.h == 0 && p.window.pad.w == 0 &&
                          p.output.h == p.input.h && p.output.w == p.input.w;
    const int32_t pixels = p.output.n * p.output.h * p.output.w;
    int32_t b = 0;
    int32_t oy = 0;
    int32_t ox = 0;

    for (int32_t first = 0; first < pixels; first += BLOCK) {
        const int32_t nb = MCUQ_MIN(BLOCK, pixels - first);
        const int32_t stride = nb * 2; /* words between a pixel's groups */
        /* 1. im2col: every input byte of the block, before any output of it is written */
        for (int32_t q = 0; q < nb; ++q) {
            uint32_t *slot = block + q * 2;
            if (pointwise) {
                widen(slot, stride, input + (first + q) * cin, cin);
                continue;
            }
            const int8_t *image = input + b * in_image;
            const int32_t iy0 = oy * p.window.stride.h - p.window.pad.h;
            const int32_t ix0 = ox * p.window.stride.w - p.window.pad.w;
            int32_t kx_lo;
            int32_t kx_hi;
            mcuq_tap_range(ix0, p.window.dilation.w, p.input.w, p.window.filter.w, &kx_lo, &kx_hi);
            for (int32_t ky = 0; ky < p.window.filter.h; ++ky) {
                const int32_t iy = iy0 + ky * p.window.dilation.h;
                const int row_in = iy >= 0 && iy < p.input.h;
                const int32_t lo = row_in ? kx_lo : p.window.filter.w; /* taps [lo, hi) read the input */
                const int32_t hi = row_in ? kx_hi : p.window.filter.w;
                const int8_t *src = image + (row_in ? iy * in_row : 0);
                if (cin % 4 == 0) { /* taps start on group boundaries: widen straight from the input */
                    const int32_t g_cin = cin / 4;
                    uint32_t *d = slot + ky * (filter_row / 4) * stride;
                    fill(d, stride, zp_pair, lo * g_cin);
                    if (p.window.dilation.w == 1 && hi > lo) {
                        widen(d + lo * g_cin * stride, stride, src + (ix0 + lo) * cin, (hi - lo) * cin);
                    } else {
                        for (int32_t kx = lo; kx < hi; ++kx) {
                            widen(d + kx * g_cin * stride, stride, src + (ix0 + kx * p.window.dilation.w) * cin, cin);
                        }
                    }
                    fill(d + hi * g_cin * stride, stride, zp_pair, (p.window.filter.w - hi) * g_cin);
                } else { /* gather the window as int8 first */
                    int8_t *d = stage + ky * filter_row;
                    copy_bytes(d, NULL, lo * cin, zp);
                    for (int32_t kx = lo; kx < hi; ++kx) {
                        copy_bytes(d + kx * cin, src + (ix0 + kx * p.window.dilation.w) * cin, cin, zp);
                    }
                    copy_bytes(d + hi * cin, NULL, (p.window.filter.w - hi) * cin, zp);
                }
            }
            if (cin % 4 != 0) {
                widen(slot, stride, stage, k);
            }
            if (++ox == p.output.w) {
                ox = 0;
                if (++oy == p.output.h) {
                    oy = 0;
                    ++b;
                }
            }
        }
        /* 2. one output channel x the block's pixels per pass */
        int8_t *out = output + first * cout;
        const int8_t *w = filter;
        for (int32_t oc = 0; oc < cout; ++oc, w += k) {
            const requant r = requant_of(p.quant.multiplier[oc], p.quant.shift[oc], &p);
            const uint32_t init = (uint32_t)bias[oc];
            if (nb == BLOCK) {
                uint32_t acc[4] = {init, init, init, init};
                dot4(block, w, full, acc);
                if (rest != 0) {
                    const uint32_t v = tail_word(w + full * 4, rest);
                    const uint32_t we = mcuq_sxtb16(v);
                    const uint32_t wo = mcuq_sxtb16_ror8(v);
                    const uint32_t *x = block + full * 8;
                    acc[0] = mcuq_smlad(wo, x[1], mcuq_smlad(we, x[0], acc[0]));
                    acc[1] = mcuq_smlad(wo, x[3], mcuq_smlad(we, x[2], acc[1]));
                    acc[2] = mcuq_smlad(wo, x[5], mcuq_smlad(we, x[4], acc[2]));
                    acc[3] = mcuq_smlad(wo, x[7], mcuq_smlad(we, x[6], acc[3]));
                }
                out[oc] = finish(acc[0], &r);
                out[cout + oc] = finish(acc[1], &r);
                out[2 * cout + oc] = finish(acc[2], &r);
                out[3 * cout + oc] = finish(acc[3], &r);
            } else {
                for (int32_t q = 0; q < nb; ++q) {
                    out[q * cout + oc] = finish(dot1(block + q * 2, stride, w, full, rest, init), &r);
                }
            }
        }
    }
    return MCUQ_OK;
}
