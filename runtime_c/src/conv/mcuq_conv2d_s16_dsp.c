/* CONV_2D, 16x8, dsp path: im2col of MCUQ_CONV_S16_DSP_BLOCK output pixels into int16 scratch, then one output
 * channel x four pixels per pass, SXTB16 on the weights and SMLAD on pairs of int16 (see mcuq_conv.h,
 * mcuq_conv2d_s16_dsp).
 *
 * Filter layout (mcuq/kernels/conv16_fast.py, conv16_dsp_weights): int8 OHWI rows of K = filter.h * filter.w *
 * input.c values, each zero-padded to KP = 4 * ceil(K / 4) bytes, and within every 4-byte group the bytes
 * (w0, w2, w1, w3): SXTB16 of the word gives the int16 pair (w0, w1), SXTB16 ror 8 the pair (w2, w3), which meet
 * the input words (x0, x1) and (x2, x3) as they lie in memory.
 *
 * Scratch (ctx->buf, 4-byte aligned): KP / 4 groups x BLOCK pixels x 4 int16; group g of pixel j holds the window
 * values 4g .. 4g + 3 of that pixel at int16 offset (g * BLOCK + j) * 4 (pixels interleaved, so one pointer walks a
 * pass). Taps in the zero padding and the KP - K tail hold 0 (int16 activations are symmetric: zero point 0). A last
 * block of fewer pixels runs on zeroed spare slots. A 1x1 filter without padding on input.c % 4 == 0 (`direct`)
 * needs no scratch: the dot products read each pixel's input.c values in place (spare slots repeat a pixel).
 *
 * Arithmetic: every product |w * x| <= 2^22, so a 32-bit SMLAD sum of at most CHUNK groups (4 * CHUNK = 508
 * products) cannot overflow; those partial sums are added into an int64 accumulator that starts at the bias: the
 * exact sum, as the portable kernel computes it, for either accumulator (acc64 1: TFLite's int64; acc64 0: the
 * int32 sum that lowering proved cannot overflow). Requantization gives mcuq_s16_requantize's bits
 * (mcuq_conv_s16_dsp.h: its per-channel constants computed once per channel and block).
 *
 * Memory order: a block's input is copied into the scratch before any of its outputs is written; the output must
 * not overlap the input (no overlap is declared to the planner). */
#include "mcuq_conv.h"
#include "../internal/mcuq_conv_s16.h"
#include "../internal/mcuq_conv_s16_dsp.h"
#include "../internal/mcuq_simd.h"
#include "../internal/mcuq_window.h"

#define BLOCK MCUQ_CONV_S16_DSP_BLOCK
#define CHUNK 127 /* groups of 4 products per 32-bit partial sum: 508 * 2^22 < 2^31 */

#if defined(__GNUC__)
#define MCUQ_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define MCUQ_ALWAYS_INLINE inline
#endif

static int32_t padded_depth(const mcuq_conv2d_s16_params *p)
{
    return (p->window.filter.h * p->window.filter.w * p->input.c + 3) / 4 * 4;
}

/* 1 when every window is one run of input.c % 4 == 0 values inside the input (1x1, no padding): the dot products
 * read the input in place, without im2col or scratch. */
static int direct(const mcuq_conv2d_s16_params *p)
{
    return p->window.filter.h == 1 && p->window.filter.w == 1 && p->window.pad.h == 0 && p->window.pad.w == 0 &&
           p->input.c % 4 == 0 && p->output.h >= 1 && p->output.w >= 1 &&
           (int64_t)(p->output.h - 1) * p->window.stride.h < p->input.h &&
           (int64_t)(p->output.w - 1) * p->window.stride.w < p->input.w;
}

int32_t mcuq_conv2d_s16_dsp_scratch_size(const mcuq_conv2d_s16_params *params)
{
    if (params == NULL || params->window.filter.h <= 0 || params->window.filter.w <= 0 || params->input.c <= 0 ||
        direct(params)) {
        return 0;
    }
    return padded_depth(params) * BLOCK * 2;
}

/* Window values k0 .. k0 + n - 1 of the pixel whose slots start at dst: copied from src (or zeros when src is NULL)
 * into the interleaved layout (value k at dst[(k / 4) * 4 * BLOCK + k % 4]). */
static void put_run(int16_t *dst, int32_t k0, const int16_t *src, int32_t n)
{
    int32_t k = k0;
    int32_t i = 0;
    while (i < n && (k & 3) != 0) {
        dst[(k >> 2) * 4 * BLOCK + (k & 3)] = src != NULL ? src[i] : 0;
        ++i;
        ++k;
    }
    int16_t *d = dst + (k >> 2) * 4 * BLOCK;
    if (src != NULL) {
        for (; i + 4 <= n; i += 4) {
            mcuq_write_u32(d, mcuq_read_u32(src + i));
            mcuq_write_u32(d + 2, mcuq_read_u32(src + i + 2));
            d += 4 * BLOCK;
            k += 4;
        }
    } else {
        for (; i + 4 <= n; i += 4) {
            mcuq_write_u32(d, 0);
            mcuq_write_u32(d + 2, 0);
            d += 4 * BLOCK;
            k += 4;
        }
    }
    for (; i < n; ++i, ++k) {
        dst[(k >> 2) * 4 * BLOCK + (k & 3)] = src != NULL ? src[i] : 0;
    }
}

/* The window of output pixel (oy, ox) into slot j of the block. */
static void gather(const mcuq_conv2d_s16_params *p, const int16_t *image, int32_t oy, int32_t ox, int16_t *slot)
{
    const int32_t cin = p->input.c;
    const int32_t fw = p->window.filter.w;
    const int32_t row = fw * cin; /* window values per filter row */
    const int32_t iy0 = oy * p->window.stride.h - p->window.pad.h;
    const int32_t ix0 = ox * p->window.stride.w - p->window.pad.w;
    int32_t ky_lo;
    int32_t ky_hi;
    int32_t kx_lo;
    int32_t kx_hi;
    mcuq_tap_range(iy0, p->window.dilation.h, p->input.h, p->window.filter.h, &ky_lo, &ky_hi);
    mcuq_tap_range(ix0, p->window.dilation.w, p->input.w, fw, &kx_lo, &kx_hi);
    for (int32_t ky = 0; ky < p->window.filter.h; ++ky) {
        const int32_t k = ky * row;
        if (ky < ky_lo || ky >= ky_hi) {
            put_run(slot, k, NULL, row);
            continue;
        }
        const int16_t *src = image + ((iy0 + ky * p->window.dilation.h) * p->input.w + ix0) * cin;
        put_run(slot, k, NULL, kx_lo * cin);
        if (p->window.dilation.w == 1) {
            put_run(slot, k + kx_lo * cin, src + kx_lo * cin, (kx_hi - kx_lo) * cin);
        } else {
            for (int32_t kx = kx_lo; kx < kx_hi; ++kx) {
                put_run(slot, k + kx * cin, src + kx * p->window.dilation.w * cin, cin);
            }
        }
        put_run(slot, k + kx_hi * cin, NULL, (fw - kx_hi) * cin);
    }
    const int32_t kk = p->window.filter.h * row;
    put_run(slot, kk, NULL, padded_depth(p) - kk);
}

/* a[j] = the 32-bit sum over n >= 1 groups of the weight words at w times the values of slot j of the block x. */
#if MCUQ_HAVE_DSP && defined(__GNUC__)
/* Per group (16 MACs): LDR of the weight word, two LDM of two pixels' words each, two SXTB16, eight SMLAD. The LDM
 * register lists must ascend: the input words live in r8 to r11. */
static void part4(const int8_t *w, const int16_t *x, int32_t n, uint32_t a[BLOCK])
{
    register uint32_t x0 __asm__("r8");
    register uint32_t x1 __asm__("r9");
    register uint32_t x2 __asm__("r10");
    register uint32_t x3 __asm__("r11");
    uint32_t a0 = 0;
    uint32_t a1 = 0;
    uint32_t a2 = 0;
    uint32_t a3 = 0;
    uint32_t wv;
    uint32_t lo;
    __asm__ volatile(
        "1:\n\t"
        "ldr %[wv], [%[w]], #4\n\t"
        "ldmia %[x]!, {%[x0], %[x1], %[x2], %[x3]}\n\t"
        "sxtb16 %[lo], %[wv]\n\t"
        "sxtb16 %[wv], %[wv], ror #8\n\t"
        "smlad %[a0], %[lo], %[x0], %[a0]\n\t"
        "smlad %[a0], %[wv], %[x1], %[a0]\n\t"
        "smlad %[a1], %[lo], %[x2], %[a1]\n\t"
        "smlad %[a1], %[wv], %[x3], %[a1]\n\t"
        "ldmia %[x]!, {%[x0], %[x1], %[x2], %[x3]}\n\t"
        "smlad %[a2], %[lo], %[x0], %[a2]\n\t"
        "smlad %[a2], %[wv], %[x1], %[a2]\n\t"
        "smlad %[a3], %[lo], %[x2], %[a3]\n\t"
        "smlad %[a3], %[wv], %[x3], %[a3]\n\t"
        "subs %[n], %[n], #1\n\t"
        "bne 1b\n\t"
        : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [w] "+r"(w), [x] "+r"(x), [n] "+r"(n),
          [wv] "=&r"(wv), [lo] "=&r"(lo), [x0] "=&r"(x0), [x1] "=&r"(x1), [x2] "=&r"(x2), [x3] "=&r"(x3)
        :
        : "cc", "memory");
    a[0] = a0;
    a[1] = a1;
    a[2] = a2;
    a[3] = a3;
}
#else
static void part4(const int8_t *w, const int16_t *x, int32_t n, uint32_t a[BLOCK])
{
    uint32_t a0 = 0;
    uint32_t a1 = 0;
    uint32_t a2 = 0;
    uint32_t a3 = 0;
    for (int32_t i = 0; i < n; ++i) {
        const uint32_t wv = mcuq_read_u32(w);
        const uint32_t lo = mcuq_sxtb16(wv);
        const uint32_t hi = mcuq_sxtb16_ror8(wv);
        a0 = mcuq_smlad(hi, mcuq_read_u32(x + 2), mcuq_smlad(lo, mcuq_read_u32(x), a0));
        a1 = mcuq_smlad(hi, mcuq_read_u32(x + 6), mcuq_smlad(lo, mcuq_read_u32(x + 4), a1));
        a2 = mcuq_smlad(hi, mcuq_read_u32(x + 10), mcuq_smlad(lo, mcuq_read_u32(x + 8), a2));
        a3 = mcuq_smlad(hi, mcuq_read_u32(x + 14), mcuq_smlad(lo, mcuq_read_u32(x + 12), a3));
        w += 4;
        x += 4 * BLOCK;
    }
    a[0] = a0;
    a[1] = a1;
    a[2] = a2;
    a[3] = a3;
}
#endif

/* part4 for the direct form: pixel j's values start at x[j] (words read in place). */
static void part4_direct(const int8_t *w, const int16_t *const x[BLOCK], int32_t n, uint32_t a[BLOCK])
{
    const int16_t *x0 = x[0];
    const int16_t *x1 = x[1];
    const int16_t *x2 = x[2];
    const int16_t *x3 = x[3];
    uint32_t a0 = 0;
    uint32_t a1 = 0;
    uint32_t a2 = 0;
    uint32_t a3 = 0;
    for (int32_t i = 0; i < n; ++i) {
        const uint32_t wv = mcuq_read_u32(w);
        const uint32_t lo = mcuq_sxtb16(wv);
        const uint32_t hi = mcuq_sxtb16_ror8(wv);
        a0 = mcuq_smlad(hi, mcuq_read_u32(x0 + 2), mcuq_smlad(lo, mcuq_read_u32(x0), a0));
        a1 = mcuq_smlad(hi, mcuq_read_u32(x1 + 2), mcuq_smlad(lo, mcuq_read_u32(x1), a1));
        a2 = mcuq_smlad(hi, mcuq_read_u32(x2 + 2), mcuq_smlad(lo, mcuq_read_u32(x2), a2));
        a3 = mcuq_smlad(hi, mcuq_read_u32(x3 + 2), mcuq_smlad(lo, mcuq_read_u32(x3), a3));
        w += 4;
        x0 += 4;
        x1 += 4;
        x2 += 4;
        x3 += 4;
    }
    a[0] = a0;
    a[1] = a1;
    a[2] = a2;
    a[3] = a3;
}

mcuq_status mcuq_conv2d_s16_dsp(const mcuq_context *ctx, const mcuq_conv2d_s16_params *params, const int16_t *input,
                                const int8_t *filter, const int64_t *bias, int16_t *output)
{
    const mcuq_status status =
        mcuq_conv2d_s16_check(ctx, params, input, filter, output, mcuq_conv2d_s16_dsp_scratch_size(params), 0);
    if (status != MCUQ_OK) {
        return status;
    }
    if (params->weight_bits != 8) {
        return MCUQ_ERR_UNSUPPORTED;
    }
    if (!direct(params) && ((uintptr_t)ctx->buf & 3u) != 0) { /* the scratch is read a word at a time */
        return MCUQ_ERR_ARGUMENT;
    }
    const mcuq_conv2d_s16_params p = *params;
    const int32_t kp = padded_depth(&p);
    const int32_t groups = kp / 4;
    const int32_t in_image = p.input.h * p.input.w * p.input.c;
    const int32_t pixels = p.output.h * p.output.w;
    const int dir = direct(&p);
    int16_t *block = (int16_t *)ctx->buf;

    for (int32_t b = 0; b < p.input.n; ++b) {
        const int16_t *image = input + b * in_image;
        int16_t *out_image = output + b * pixels * p.output.c;
        for (int32_t pix = 0; pix < pixels; pix += BLOCK) {
            const int32_t count = MCUQ_MIN(BLOCK, pixels - pix);
            const int16_t *xs[BLOCK];
            for (int32_t j = 0; j < BLOCK; ++j) {
                /* cppcheck-suppress knownConditionTrueFalse ; MCUQ_MIN(...) >= 1: a false positive */
                const int32_t q = pix + (j < count ? j : 0); /* a spare slot repeats the first pixel */
                const int32_t oy = q / p.output.w;
                const int32_t ox = q % p.output.w;
                if (dir) {
                    xs[j] = image + (oy * p.window.stride.h * p.input.w + ox * p.window.stride.w) * p.input.c;
                    /* cppcheck-suppress knownConditionTrueFalse ; MCUQ_MIN(...) >= 1: a false positive */
                } else if (j < count) {
                    gather(&p, image, oy, ox, block + 4 * j);
                } else {
                    put_run(block + 4 * j, 0, NULL, kp);
                }
            }
            int16_t *out = out_image + pix * p.output.c;
            const int8_t *w = filter;
            for (int32_t oc = 0; oc < p.output.c; ++oc) {
                const int64_t b0 = (bias != NULL) ? bias[oc] : 0;
                int64_t acc[BLOCK] = {b0, b0, b0, b0};
                for (int32_t g = 0; g < groups; g += CHUNK) {
                    const int32_t n = MCUQ_MIN(CHUNK, groups - g);
                    uint32_t a[BLOCK];
                    if (dir) {
                        const int16_t *const xg[BLOCK] = {xs[0] + 4 * g, xs[1] + 4 * g, xs[2] + 4 * g, xs[3] + 4 * g};
                        part4_direct(w + 4 * g, xg, n, a);
                    } else {
                        part4(w + 4 * g, block + 4 * BLOCK * g, n, a);
                    }
                    for (int32_t j = 0; j < BLOCK; ++j) {
                        acc[j] += (int32_t)a[j];
                    }
                }
                w += kp;
                const mcuq_s16_quant q = mcuq_s16_quant_of(p.acc64, p.quant.multiplier[oc], p.quant.shift[oc]);
                for (int32_t j = 0; j < count; ++j) {
                    const int32_t y = mcuq_s16_requant(acc[j], &q);
                    out[j * p.output.c + oc] = (int16_t)MCUQ_CLAMP(y, p.activation.min, p.activation.max);
                }
            }
        }
    }
    return MCUQ_OK;
}
