/* CONV_2D, int8, dsp path: im2col into q15 blocks of MCUQ_CONV_DSP_BLOCK output pixels, then SXTB16/SMLAD over
 * one output channel x four pixels per pass (see mcuq_conv.h, mcuq_conv2d_s8_dsp).
 *
 * Scratch (ctx->buf, 4-byte aligned): the q15 block, ceil(K / 4) groups x BLOCK pixels x 2 words, where
 * K = filter.h * filter.w * input.c; word 0 of a group holds the int16 pair (x0, x2) of four consecutive K
 * elements, word 1 the pair (x1, x3): exactly SXTB16(v) and SXTB16(v ror 8) of the four int8 values v, so the
 * weights are read raw from flash and expanded the same way. Pixels of a group are interleaved (group-major), so
 * one pass reads the block with a single pointer. A last partial group is padded with zeros, so the weights' last
 * word may be read whole (the bytes past the channel's K meet zeros), except where that word would end past the
 * filter (the last channel; more when K < 4), whose tail is read bytewise. When input.c % 4 != 0, 4 * ceil(K / 4) more bytes gather one pixel's
 * window as int8 first, filter row by filter row (filter.w * input.c contiguous bytes, copied a word at a time),
 * unless every filter row is whole groups and in the image (widened straight from the input, as for input.c % 4 == 0).
 * A last block of 2..BLOCK-1 pixels runs the 4-pixel loop on zeroed spare slots; one of a single pixel, one dot.
 *
 * Arithmetic: bias is folded (bias - input_zp * sum(w)), taps in the zero padding hold input_zp, and the sums
 * of raw int8 products wrap modulo 2^32 (SMLAD; uint32_t in C): the final sum is TFLite's int32 accumulator.
 *
 * Requantization (TFLite's MultiplyByQuantizedMultiplier, then + output_zp and the clamp), for a channel with
 * multiplier m >= 2^30 and a right shift r in [1, 23] (else the general form, `finish`, tested per channel only
 * when some channel needs it): the doubling high
 * multiply is SMMLAR(x, 2m - 2^32, x) = floor((x * m + 2^30) / 2^31), exact; gemmlowp's RoundingDivideByPOT plus
 * output_zp is QADD(h - (h < 0), 2^(r-1) + (output_zp << r)) >> r, whose saturation only happens where the result
 * is >= 255 or <= -256 either way (|output_zp << r| <= 2^30); the clamp is SSAT #8 for the full int8 range. About
 * 6 instructions per output, plus 7 per channel and block.
 *
 * Memory order (mcuq/kernels/conv_dsp.py, window_overlap): output pixels are walked in raster order in blocks;
 * a block's whole input is copied into the scratch before any of its outputs is written, and its outputs fill
 * [first pixel * output.c, (last pixel + 1) * output.c). */
#include <stddef.h>

#include "mcuq_conv.h"
#include "../internal/mcuq_conv_common.h"
#include "../internal/mcuq_simd.h"
#include "../internal/mcuq_util.h"
#include "../internal/mcuq_window.h"

#define BLOCK MCUQ_CONV_DSP_BLOCK

#if defined(__GNUC__)
#define MCUQ_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define MCUQ_ALWAYS_INLINE inline
#endif

static int32_t groups_of(const mcuq_conv2d_params *p)
{
    return (p->window.filter.h * p->window.filter.w * p->input.c + 3) / 4;
}

/* K % 4 != 0: the channels whose last weight word would end past the filter (the last one; more when K < 4)
 * copied to the scratch end with a zero word after them, so chans_full reads them whole too. */
static int32_t tail_chans(const mcuq_conv2d_params *p)
{
    const int32_t k = p->window.filter.h * p->window.filter.w * p->input.c;
    return k % 4 != 0 ? MCUQ_MIN(p->output.c, 1 + (4 * groups_of(p) - k - 1) / k) : 0;
}

static int32_t tail_bytes(const mcuq_conv2d_params *p)
{
    const int32_t t = tail_chans(p);
    return t > 0 ? (t * p->window.filter.h * p->window.filter.w * p->input.c + 7) / 4 * 4 : 0;
}

int32_t mcuq_conv2d_s8_dsp_scratch_size(const mcuq_conv2d_params *params)
{
    if (params == NULL || params->window.filter.h <= 0 || params->window.filter.w <= 0 || params->input.c <= 0) {
        return 0;
    }
    const int32_t groups = groups_of(params);
    return groups * BLOCK * 8 + ((params->input.c % 4) != 0 ? groups * 4 + 4 : 0) + tail_bytes(params);
}

/* n int8 from src (any alignment) widened into groups of two words, `stride` words apart; a last partial group is
 * padded with zeros. */
static MCUQ_ALWAYS_INLINE void widen(uint32_t *dst, int32_t stride, const int8_t *src, int32_t n)
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
static MCUQ_ALWAYS_INLINE void fill(uint32_t *dst, int32_t stride, uint32_t zp_pair, int32_t groups)
{
    for (int32_t g = 0; g < groups; ++g) {
        dst[0] = zp_pair;
        dst[1] = zp_pair;
        dst += stride;
    }
}

/* n int8 from src to dst (any alignment, no overlap), a word at a time (no loop a compiler would make a memcpy
 * call of). */
static MCUQ_ALWAYS_INLINE void copy_row(int8_t *dst, const int8_t *src, int32_t n)
{
    for (; n >= 4; n -= 4, dst += 4, src += 4) {
        mcuq_write_u32(dst, mcuq_read_u32(src));
    }
    if (n & 2) {
        dst[0] = src[0];
        dst[1] = src[1];
        dst += 2;
        src += 2;
    }
    if (n & 1) {
        dst[0] = src[0];
    }
}

/* n bytes of input_zp; zp4 holds it in each byte. */
static MCUQ_ALWAYS_INLINE void fill_bytes(int8_t *dst, uint32_t zp4, int32_t n)
{
    for (; n >= 4; n -= 4, dst += 4) {
        mcuq_write_u32(dst, zp4);
    }
    if (n & 2) {
        dst[0] = (int8_t)zp4;
        dst[1] = (int8_t)zp4;
        dst += 2;
    }
    if (n & 1) {
        dst[0] = (int8_t)zp4;
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

/* acc[p] += sum over n groups of w[k] * x_p[k], for the four interleaved pixels of the block at x. */
#if MCUQ_HAVE_DSP && defined(__GNUC__)
/* Per group of 4 K: one LDR of weights, two SXTB16, two LDM of the block (two pixels each), eight SMLAD (16 MACs);
 * two groups per loop pass (one first when n is odd: LSRS puts n's low bit in C and sets Z for n < 2, and
 * nothing in a group touches the flags). The LDM register list must ascend, so the block words live in r8-r11. */
#define MCUQ_CONV_DSP_GROUP                                                                                            \
    "ldr %[wo], [%[w]], #4\n\t"                                                                                        \
    "ldmia %[x]!, {%[x0], %[x1], %[x2], %[x3]}\n\t"                                                                    \
    "sxtb16 %[we], %[wo]\n\t"                                                                                          \
    "sxtb16 %[wo], %[wo], ror #8\n\t"                                                                                  \
    "smlad %[a0], %[we], %[x0], %[a0]\n\t"                                                                             \
    "smlad %[a0], %[wo], %[x1], %[a0]\n\t"                                                                             \
    "smlad %[a1], %[we], %[x2], %[a1]\n\t"                                                                             \
    "smlad %[a1], %[wo], %[x3], %[a1]\n\t"                                                                             \
    "ldmia %[x]!, {%[x0], %[x1], %[x2], %[x3]}\n\t"                                                                    \
    "smlad %[a2], %[we], %[x0], %[a2]\n\t"                                                                             \
    "smlad %[a2], %[wo], %[x1], %[a2]\n\t"                                                                             \
    "smlad %[a3], %[we], %[x2], %[a3]\n\t"                                                                             \
    "smlad %[a3], %[wo], %[x3], %[a3]\n\t"

static MCUQ_ALWAYS_INLINE void dot4(const uint32_t *x, const int8_t *w, int32_t n, uint32_t acc[4])
{
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
        "lsrs %[n], %[n], #1\n\t"
        "bcc 2f\n\t" MCUQ_CONV_DSP_GROUP "2:\n\t"
        "beq 3f\n\t"
        "1:\n\t" MCUQ_CONV_DSP_GROUP MCUQ_CONV_DSP_GROUP "subs %[n], %[n], #1\n\t"
        "bne 1b\n\t"
        "3:\n\t"
        : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [x] "+r"(x), [w] "+r"(w), [n] "+r"(n),
          [x0] "=&r"(x0), [x1] "=&r"(x1), [x2] "=&r"(x2), [x3] "=&r"(x3), [we] "=&r"(we), [wo] "=&r"(wo)
        :
        : "cc", "memory");
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}
#undef MCUQ_CONV_DSP_GROUP
#else
static MCUQ_ALWAYS_INLINE void dot4(const uint32_t *x, const int8_t *w, int32_t n, uint32_t acc[4])
{
    uint32_t a0 = acc[0];
    uint32_t a1 = acc[1];
    uint32_t a2 = acc[2];
    uint32_t a3 = acc[3];
    for (int32_t g = 0; g < n; ++g) {
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

/* One pixel's dot product (a last block of one pixel): its groups are BLOCK * 2 words apart at x. */
static uint32_t dot1(const uint32_t *x, const int8_t *w, int32_t full, int32_t rest, uint32_t acc)
{
    for (int32_t g = 0; g < full; ++g) {
        const uint32_t v = mcuq_read_u32(w);
        w += 4;
        acc = mcuq_smlad(mcuq_sxtb16(v), x[0], acc);
        acc = mcuq_smlad(mcuq_sxtb16_ror8(v), x[1], acc);
        x += BLOCK * 2;
    }
    if (rest != 0) {
        const uint32_t v = tail_word(w, rest);
        acc = mcuq_smlad(mcuq_sxtb16(v), x[0], acc);
        acc = mcuq_smlad(mcuq_sxtb16_ror8(v), x[1], acc);
    }
    return acc;
}

/* The general requantization of one output, any multiplier and shift (mcuq_requantize), clamped. */
static int8_t finish(uint32_t acc, int32_t mult, int32_t shift, const mcuq_conv2d_params *p)
{
    const int32_t y = mcuq_requantize((int32_t)acc, mult, shift) + p->output_zp;
    return (int8_t)MCUQ_CLAMP(y, p->activation.min, p->activation.max);
}

/* -- the fast requantization (file header) ---------------------------------------------------------------------- */

/* floor((x * m + 2^30) / 2^31) for m2 = 2m mod 2^32, m in [2^30, 2^31): SMMLAR(x, m2, x) =
 * (x * 2^32 + x * (2m - 2^32) + 2^31) >> 32, exact in 64 bits. */
static inline int32_t high_mul(int32_t x, uint32_t m2)
{
#if MCUQ_HAVE_DSP && defined(__GNUC__)
    int32_t r;
    __asm__("smmlar %0, %1, %2, %1" : "=r"(r) : "r"(x), "r"(m2));
    return r;
#else
    return (int32_t)(((int64_t)x * (int64_t)(m2 >> 1) + (INT64_C(1) << 30)) >> 31);
#endif
}

static inline int32_t qadd(int32_t a, int32_t b)
{
#if MCUQ_HAVE_DSP
    return __qadd(a, b);
#else
    const int64_t s = (int64_t)a + b;
    return (int32_t)MCUQ_CLAMP(s, INT32_MIN, INT32_MAX);
#endif
}

static inline int32_t ssat8(int32_t v)
{
#if MCUQ_HAVE_DSP
    return __ssat(v, 8);
#else
    return MCUQ_CLAMP(v, -128, 127);
#endif
}

/* The requantization, chosen once per call: every channel in the fast form with the full int8 range (FULL) or any
 * clamp (ANY); with the full range, each channel tested (MIXED: dead channels have multiplier 0); else the general
 * form (SLOW). */
enum { CLAMP_FULL, CLAMP_ANY, CLAMP_MIXED, CLAMP_SLOW };

typedef struct {
    uint32_t m2;
    int32_t rnd;
    int32_t right;
    int32_t pre; /* CLAMP_MIXED: t >> pre first (see block_outputs) */
} fast_quant;

/* The requantized output of acc, rnd = 2^(r-1) + (output_zp << r) (so the shift adds output_zp, exactly; where
 * QADD saturates the result is >= 255 or <= -256 either way, as |output_zp << r| <= 2^30): y = v + output_zp. */
static MCUQ_ALWAYS_INLINE int8_t fast_finish(uint32_t acc, fast_quant q, int mode, int32_t lo, int32_t hi)
{
    const int32_t h = high_mul((int32_t)acc, q.m2);
    const int32_t t = (int32_t)((uint32_t)h - (h < 0 ? 1u : 0u)); /* h - (h < 0); h > INT32_MIN */
    const int32_t y = qadd(mode == CLAMP_MIXED ? t >> q.pre : t, q.rnd) >> q.right;
    if (mode == CLAMP_FULL || mode == CLAMP_MIXED) {
        return (int8_t)ssat8(y);
    }
    return (int8_t)MCUQ_CLAMP(y, lo, hi);
}

/* A channel in the fast form: multiplier in [2^30, 2^31), shift in [-23, -1]. */
static inline int is_fast(int32_t m, int32_t s)
{
    return m >= (INT32_C(1) << 30) && s <= -1 && s >= -23;
}

/* CLAMP_MIXED's fast channels: also shifts in [-31, -24] and dead channels (multiplier 0, any shift). */
static inline int is_fast_mixed(int32_t m, int32_t s)
{
    return (m >= (INT32_C(1) << 30) && s <= -1 && s >= -31) || m == 0;
}

static int all_fast(const mcuq_conv2d_params *p)
{
    for (int32_t oc = 0; oc < p->output.c; ++oc) {
        if (!is_fast(p->quant.multiplier[oc], p->quant.shift[oc])) {
            return 0;
        }
    }
    return 1;
}

/* A block: every output channel, dot product and requantization of the first nb (<= BLOCK) pixels; `mode` and nb
 * are constants in each call but the last block's, so each gets its own loop. */
static MCUQ_ALWAYS_INLINE void block_outputs(int8_t *out, const uint32_t *block, const int8_t *w, const int32_t *bias,
                                             const mcuq_conv2d_params *p, int32_t k, int mode, int32_t nb, int32_t oc0)
{
    const int32_t cout = p->output.c;
    const int32_t groups = (k + 3) / 4;
    const int32_t rest = k % 4;
    /* the tail group is read whole (the block's padding lanes are zero) where the word ends inside the filter,
     * (cout - 1 - oc) * k >= 4 * groups - k, else bytewise: the last channel, and more when k < 4 */
    const int32_t bytewise = rest != 0 ? MCUQ_MAX(0, cout - 1 - (4 * groups - k - 1) / k) : cout;
    const int32_t *mult = p->quant.multiplier;
    const int32_t *shift = p->quant.shift;
    const int32_t zp = p->output_zp;
    const int32_t lo = p->activation.min;
    const int32_t hi = p->activation.max;
    w += oc0 * k;
    for (int32_t oc = oc0; oc < cout; ++oc, w += k) {
        const uint32_t b = (uint32_t)bias[oc];
        uint32_t acc[4] = {b, b, b, b};
        if (oc < bytewise) {
            dot4(block, w, groups, acc);
        } else {
            dot4(block, w, groups - 1, acc);
            const uint32_t v = tail_word(w + (groups - 1) * 4, rest);
            const uint32_t we = mcuq_sxtb16(v);
            const uint32_t wo = mcuq_sxtb16_ror8(v);
            const uint32_t *x = block + (groups - 1) * 8;
            acc[0] = mcuq_smlad(wo, x[1], mcuq_smlad(we, x[0], acc[0]));
            acc[1] = mcuq_smlad(wo, x[3], mcuq_smlad(we, x[2], acc[1]));
            acc[2] = mcuq_smlad(wo, x[5], mcuq_smlad(we, x[4], acc[2]));
            acc[3] = mcuq_smlad(wo, x[7], mcuq_smlad(we, x[6], acc[3]));
        }
        int8_t *o = out + oc;
#if defined(__GNUC__)
        __asm__("" : "+r"(o)); /* one output pointer, not four spilled ones */
#endif
        if (mode == CLAMP_SLOW || (mode == CLAMP_MIXED && !is_fast_mixed(mult[oc], shift[oc]))) {
            for (int32_t q = 0; q < nb; ++q) {
                o[q * cout] = finish(acc[q], mult[oc], shift[oc], p);
            }
        } else {
            fast_quant q;
            q.m2 = (uint32_t)mult[oc] << 1;
            q.right = -shift[oc];
            q.pre = 0;
            /* CLAMP_MIXED, shifts to 31: floor((t + 2^(r-1)) / 2^r) = floor((floor(t / 2^a) + 2^(r-1-a)) / 2^(r-a))
             * for a = r - 23 (no QADD saturation: |t >> a| <= 2^30); a dead channel gives output_zp as m = 2^30 with
             * a = 31 (t >> 31 is 0 or -1) */
            if (mode == CLAMP_MIXED && q.right > 23) {
                q.pre = q.right - 23;
                q.right = 23;
            }
            if (mode == CLAMP_MIXED && mult[oc] == 0) {
                q.m2 = UINT32_C(1) << 31;
                q.pre = 31;
                q.right = 23;
            }
            q.rnd = (int32_t)((1u << (q.right - 1)) + ((uint32_t)zp << q.right));
            o[0] = fast_finish(acc[0], q, mode, lo, hi);
            o[cout] = fast_finish(acc[1], q, mode, lo, hi);
            o[2 * cout] = fast_finish(acc[2], q, mode, lo, hi);
            o[3 * cout] = fast_finish(acc[3], q, mode, lo, hi);
        }
    }
}

/* Channels [0, n) of a full block in the fast form with the full int8 range, each channel's weights read whole
 * (4 * groups bytes from w, the next channel k = 4 * groups + adj bytes on): one pass of the loop per channel
 * (dot4, then SMMLAR/QADD/SSAT as fast_finish, rnd = (2 * output_zp + 1) << (r - 1)). The asm walks the fields
 * from `block` on (pre-loop, LDM) and the seven before it (post-loop, LDMDB/STMDB), so their order is fixed;
 * w_end is where w stands after channel n - 1 (filter + (n - 1) * k + 4 * groups). */
typedef struct {
    int32_t zp21;
    int32_t o1; /* outputs at out + o1, + 2 * o1, + o3, then out: a store to out is a dropped spare slot's */
    int32_t o3;
    const int8_t *w_end;
    const int32_t *mult;  /* walked */
    const int32_t *shift; /* walked */
    int8_t *out;          /* walked */
    const uint32_t *block;
    int32_t groups;
    const int32_t *bias; /* walked */
    int32_t adj;
} chans;

#if MCUQ_HAVE_DSP && defined(__GNUC__)
/* r0-r3 the four sums, r4 the block, r5 the weights, r6 the group count, r7/r12 the widened weights, r8-r11 the
 * block words, lr the state (&s->block). */
#define MCUQ_CONV_DSP_GROUP                                                                                            \
    "ldr r12, [r5], #4\n\t"                                                                                            \
    "ldmia r4!, {r8, r9, r10, r11}\n\t"                                                                                \
    "sxtb16 r7, r12\n\t"                                                                                               \
    "sxtb16 r12, r12, ror #8\n\t"                                                                                      \
    "smlad r0, r7, r8, r0\n\t"                                                                                         \
    "smlad r0, r12, r9, r0\n\t"                                                                                        \
    "smlad r1, r7, r10, r1\n\t"                                                                                        \
    "smlad r1, r12, r11, r1\n\t"                                                                                       \
    "ldmia r4!, {r8, r9, r10, r11}\n\t"                                                                                \
    "smlad r2, r7, r8, r2\n\t"                                                                                         \
    "smlad r2, r12, r9, r2\n\t"                                                                                        \
    "smlad r3, r7, r10, r3\n\t"                                                                                        \
    "smlad r3, r12, r11, r3\n\t"

typedef char chans_layout_check[offsetof(chans, block) == 28 && offsetof(chans, adj) == 40 ? 1 : -1];

__attribute__((naked, noinline)) static void chans_full(chans *s __attribute__((unused)),
                                                        const int8_t *w __attribute__((unused)))
{
    __asm__ volatile("push {r4, r5, r6, r7, r8, r9, r10, r11, lr}\n\t"
                     "ldr r2, [r0, #40]\n\t"
                     "sub r5, r1, r2\n\t"
                     "add lr, r0, #28\n\t"
                     "10:\n\t"
                     "ldm lr, {r4, r6, r7, r8}\n\t"
                     "ldr r0, [r7], #4\n\t"
                     "str r7, [lr, #8]\n\t"
                     "add r5, r5, r8\n\t"
                     "mov r1, r0\n\t"
                     "mov r2, r0\n\t"
                     "mov r3, r0\n\t"
                     "lsrs r6, r6, #1\n\t"
                     "bcc 2f\n\t" MCUQ_CONV_DSP_GROUP "2:\n\t"
                     "beq 3f\n\t"
                     "1:\n\t" MCUQ_CONV_DSP_GROUP MCUQ_CONV_DSP_GROUP "subs r6, r6, #1\n\t"
                     "bne 1b\n\t"
                     "3:\n\t"
                     "ldmdb lr, {r6, r7, r8, r9, r10, r11, r12}\n\t"
                     "ldr r4, [r10], #4\n\t"
                     "lsls r4, r4, #1\n\t"
                     "smmlar r0, r0, r4, r0\n\t"
                     "smmlar r1, r1, r4, r1\n\t"
                     "smmlar r2, r2, r4, r2\n\t"
                     "smmlar r3, r3, r4, r3\n\t"
                     "ldr r4, [r11], #4\n\t"
                     "mvns r4, r4\n\t"
                     "lsls r6, r6, r4\n\t"
                     "adds r4, r4, #1\n\t"
                     "add r0, r0, r0, asr #31\n\t"
                     "add r1, r1, r1, asr #31\n\t"
                     "add r2, r2, r2, asr #31\n\t"
                     "add r3, r3, r3, asr #31\n\t"
                     "qadd r0, r0, r6\n\t"
                     "qadd r1, r1, r6\n\t"
                     "qadd r2, r2, r6\n\t"
                     "qadd r3, r3, r6\n\t"
                     "asrs r0, r0, r4\n\t"
                     "asrs r1, r1, r4\n\t"
                     "asrs r2, r2, r4\n\t"
                     "asrs r3, r3, r4\n\t"
                     "ssat r0, #8, r0\n\t"
                     "ssat r1, #8, r1\n\t"
                     "ssat r2, #8, r2\n\t"
                     "ssat r3, #8, r3\n\t"
                     "strb r1, [r12, r7]\n\t"
                     "strb r2, [r12, r7, lsl #1]\n\t"
                     "strb r3, [r12, r8]\n\t"
                     "strb r0, [r12], #1\n\t"
                     "stmdb lr, {r10, r11, r12}\n\t"
                     "cmp r5, r9\n\t"
                     "bne 10b\n\t"
                     "pop {r4, r5, r6, r7, r8, r9, r10, r11, pc}\n\t");
}
#undef MCUQ_CONV_DSP_GROUP
#else
static void chans_full(chans *s, const int8_t *w)
{
    for (;;) {
        const uint32_t b = (uint32_t)*s->bias++;
        uint32_t acc[4] = {b, b, b, b};
        dot4(s->block, w, s->groups, acc);
        w += 4 * s->groups;
        fast_quant q;
        q.m2 = (uint32_t)*s->mult++ << 1;
        const int32_t shift = *s->shift++;
        q.right = -shift;
        q.pre = 0;
        q.rnd = (int32_t)((uint32_t)s->zp21 << (~shift));
        int8_t *o = s->out++;
        o[s->o1] = fast_finish(acc[1], q, CLAMP_FULL, -128, 127);
        o[2 * s->o1] = fast_finish(acc[2], q, CLAMP_FULL, -128, 127);
        o[s->o3] = fast_finish(acc[3], q, CLAMP_FULL, -128, 127);
        o[0] = fast_finish(acc[0], q, CLAMP_FULL, -128, 127);
        if (w == s->w_end) {
            return;
        }
        w += s->adj;
    }
}
#endif

/* The output offsets of a block of nb (2..BLOCK) pixels for chans_full; of 2 pixels, the second also goes in slot 3
 * (the stores of slots 1 and 2 then go to out, rewritten by slot 0's; of 3, slot 3's). */
static void set_slots(chans *cs, uint32_t *block, int32_t nb, int32_t cout)
{
    cs->o1 = cout;
    cs->o3 = 3 * cout;
    if (nb == 3) {
        cs->o3 = 0;
    } else if (nb == 2) {
        cs->o1 = 0;
        cs->o3 = cout;
        for (int32_t g = 0; g < cs->groups; ++g) {
            block[g * BLOCK * 2 + 6] = block[g * BLOCK * 2 + 2];
            block[g * BLOCK * 2 + 7] = block[g * BLOCK * 2 + 3];
        }
    }
}

/* One pixel's window (cin % 4 != 0) as int8 into stage: each filter row's in-image taps are contiguous
 * (dilation.w 1), so they are copied a word at a time; padding taps hold input_zp. */
static void gather_rows(int8_t *stage, const int8_t *image, int32_t oy, int32_t ox, const mcuq_conv2d_params *p)
{
    const int32_t cin = p->input.c;
    const int32_t fw = p->window.filter.w;
    const int32_t filter_row = fw * cin;
    const int32_t in_row = p->input.w * cin;
    const int32_t iy0 = oy * p->window.stride.h - p->window.pad.h;
    const int32_t ix0 = ox * p->window.stride.w - p->window.pad.w;
    const uint32_t zp4 = ((uint32_t)p->input_zp & 0xffu) * 0x01010101u;
    int32_t kx_lo;
    int32_t kx_hi;
    mcuq_tap_range(ix0, p->window.dilation.w, p->input.w, fw, &kx_lo, &kx_hi);
    for (int32_t ky = 0; ky < p->window.filter.h; ++ky, stage += filter_row) {
        const int32_t iy = iy0 + ky * p->window.dilation.h;
        if (iy < 0 || iy >= p->input.h || kx_hi <= kx_lo) {
            fill_bytes(stage, zp4, filter_row);
            continue;
        }
        const int8_t *src = image + iy * in_row;
        fill_bytes(stage, zp4, kx_lo * cin);
        if (p->window.dilation.w == 1) {
            copy_row(stage + kx_lo * cin, src + (ix0 + kx_lo) * cin, (kx_hi - kx_lo) * cin);
        } else {
            for (int32_t kx = kx_lo; kx < kx_hi; ++kx) {
                copy_row(stage + kx * cin, src + (ix0 + kx * p->window.dilation.w) * cin, cin);
            }
        }
        fill_bytes(stage + kx_hi * cin, zp4, (fw - kx_hi) * cin);
    }
}

static void widen_stage(uint32_t *slot, const int8_t *stage, int32_t k);

/* What gather_words needs, fixed per call. */
typedef struct {
    int32_t fh;
    int32_t fr;       /* bytes per filter row: filter.w * input.c */
    int32_t row_step; /* bytes between the input rows of two filter rows: dilation.h * input.w * input.c */
    int32_t k;
} gather_geom;

/* One pixel's window (cin % 4 != 0, dilation.w 1, every tap in the image, src its first) as int8 into stage, each
 * filter row as whole words: a row's last word runs past it (into the next row's place, rewritten next, or the
 * stage's 4 spare bytes) and reads up to 3 bytes past it, which the caller checked stay inside the input. Then
 * stage's words widened into slot, the bytes past K masked off. */
static void gather_words(uint32_t *slot, int8_t *stage, const int8_t *src, const gather_geom *g)
{
    const int32_t fr = g->fr;
    int8_t *dst = stage;
    if (fr > 8 && fr <= 12) { /* three words a row (a 3x3 filter over 3 channels) */
        for (int32_t ky = g->fh; ky > 0; --ky, dst += fr, src += g->row_step) {
            const uint32_t a = mcuq_read_u32(src);
            const uint32_t b = mcuq_read_u32(src + 4);
            const uint32_t c = mcuq_read_u32(src + 8);
            mcuq_write_u32(dst, a);
            mcuq_write_u32(dst + 4, b);
            mcuq_write_u32(dst + 8, c);
        }
    } else {
        for (int32_t ky = g->fh; ky > 0; --ky, dst += fr, src += g->row_step) {
            const int8_t *s = src;
            int8_t *d = dst;
            for (int32_t n = fr; n > 0; n -= 4, s += 4, d += 4) {
                mcuq_write_u32(d, mcuq_read_u32(s));
            }
        }
    }
    widen_stage(slot, stage, g->k);
}

/* The int8 window at stage (4-byte aligned, k bytes) widened into slot, a last partial group padded with zeros. */
static void widen_stage(uint32_t *slot, const int8_t *stage, int32_t k)
{
    const uint32_t *st = (const uint32_t *)(const void *)stage;
    int32_t n = k;
    for (; n >= 8; n -= 8, st += 2, slot += BLOCK * 4) {
        const uint32_t v = st[0];
        const uint32_t u = st[1];
        slot[0] = mcuq_sxtb16(v);
        slot[1] = mcuq_sxtb16_ror8(v);
        slot[BLOCK * 2] = mcuq_sxtb16(u);
        slot[BLOCK * 2 + 1] = mcuq_sxtb16_ror8(u);
    }
    if (n >= 4) {
        const uint32_t v = *st++;
        slot[0] = mcuq_sxtb16(v);
        slot[1] = mcuq_sxtb16_ror8(v);
        slot += BLOCK * 2;
        n -= 4;
    }
    if (n > 0) {
        const uint32_t v = *st & ((1u << (8 * n)) - 1u);
        slot[0] = mcuq_sxtb16(v);
        slot[1] = mcuq_sxtb16_ror8(v);
    }
}

/* One pixel's window widened straight from the input, filter row by filter row, when every row is whole groups
 * (filter.w * input.c % 4 == 0) and its in-image taps start on group boundaries (input.c % 4 == 0, or all taps of
 * the row in the image): padding groups hold input_zp. */
static void direct_rows(uint32_t *slot, const int8_t *image, int32_t oy, int32_t ox, const mcuq_conv2d_params *p,
                        uint32_t zp_pair)
{
    const int32_t stride = BLOCK * 2;
    const int32_t cin = p->input.c;
    const int32_t fw = p->window.filter.w;
    const int32_t row_groups = fw * cin / 4;
    const int32_t in_row = p->input.w * cin;
    const int32_t iy0 = oy * p->window.stride.h - p->window.pad.h;
    const int32_t ix0 = ox * p->window.stride.w - p->window.pad.w;
    int32_t kx_lo;
    int32_t kx_hi;
    mcuq_tap_range(ix0, p->window.dilation.w, p->input.w, fw, &kx_lo, &kx_hi);
    for (int32_t ky = 0; ky < p->window.filter.h; ++ky, slot += row_groups * stride) {
        const int32_t iy = iy0 + ky * p->window.dilation.h;
        if (iy < 0 || iy >= p->input.h || kx_hi <= kx_lo) {
            fill(slot, stride, zp_pair, row_groups);
            continue;
        }
        const int8_t *src = image + iy * in_row;
        const int32_t lo = kx_lo * cin / 4; /* groups before the first in-image tap */
        fill(slot, stride, zp_pair, lo);
        if (p->window.dilation.w == 1) {
            widen(slot + lo * stride, stride, src + (ix0 + kx_lo) * cin, (kx_hi - kx_lo) * cin);
        } else {
            for (int32_t kx = kx_lo; kx < kx_hi; ++kx) {
                widen(slot + kx * (cin / 4) * stride, stride, src + (ix0 + kx * p->window.dilation.w) * cin, cin);
            }
        }
        const int32_t hi = kx_hi * cin / 4;
        fill(slot + hi * stride, stride, zp_pair, row_groups - hi);
    }
}

mcuq_status mcuq_conv2d_s8_dsp(const mcuq_context *ctx, const mcuq_conv2d_params *params, const int8_t *input,
                               const int8_t *filter, const int32_t *bias, int8_t *output)
{
    const mcuq_status status = mcuq_conv2d_check(ctx, params, input, filter, bias, output, 1);
    if (status != MCUQ_OK) {
        return status;
    }
    const mcuq_conv2d_params p = *params;
    if (ctx->buf == NULL || ctx->size < mcuq_conv2d_s8_dsp_scratch_size(params) || ((uintptr_t)ctx->buf & 3u) != 0) {
        return MCUQ_ERR_ARGUMENT;
    }
    const int32_t cin = p.input.c;
    const int32_t cout = p.output.c;
    const int32_t k = p.window.filter.h * p.window.filter.w * cin;
    const int32_t groups = groups_of(&p);
    const int32_t in_image = p.input.h * p.input.w * cin;
    const int32_t stride = BLOCK * 2; /* words between a pixel's groups */
    uint32_t *block = (uint32_t *)ctx->buf;
    int8_t *stage = (int8_t *)(block + groups * BLOCK * 2);
    const uint32_t zp_pair = ((uint32_t)p.input_zp & 0xffffu) * 0x10001u;
    /* 1x1, stride 1, no padding: output pixel i reads input pixel i, nothing to gather */
    const int pointwise = p.window.filter.h == 1 && p.window.filter.w == 1 && p.window.stride.h == 1 &&
                          p.window.stride.w == 1 && p.window.pad.h == 0 && p.window.pad.w == 0 &&
                          p.output.h == p.input.h && p.output.w == p.input.w;
    const int rows_whole = (p.window.filter.w * cin) % 4 == 0;
    const int full_range = p.activation.min == -128 && p.activation.max == 127;
    const int fast = all_fast(&p);
    const int mode = fast ? (full_range ? CLAMP_FULL : CLAMP_ANY) : (full_range ? CLAMP_MIXED : CLAMP_SLOW);
    const int32_t pixels = p.output.n * p.output.h * p.output.w;
    const int8_t *input_end = input + p.input.n * in_image;
    /* gather_words: a window whose first row iy0 is in [0, rows_ok) has every filter row in the image; its words
     * read from its first byte on end inside the input when input_end - first >= last_read */
    const int32_t in_row = p.input.w * cin;
    gather_geom gg;
    gg.fh = p.window.filter.h;
    gg.fr = p.window.filter.w * cin;
    gg.row_step = p.window.dilation.h * in_row;
    gg.k = k;
    const uint32_t rows_ok = (uint32_t)MCUQ_MAX(0, p.input.h - (p.window.filter.h - 1) * p.window.dilation.h);
    const int32_t last_read = (p.window.filter.h - 1) * gg.row_step + gg.fr + 3;
    /* channels whose last weight word may be read whole (block_outputs' `bytewise`) */
    const int32_t whole_chans = cout - tail_chans(&p);
    /* the rest's weights, copied to the scratch end (zero-padded), for a second chans_full call */
    int8_t *tail_w = (int8_t *)ctx->buf + (mcuq_conv2d_s8_dsp_scratch_size(&p) - tail_bytes(&p));
    const int8_t *tail_end = tail_w + (cout - whole_chans - 1) * k + 4 * groups;
    if (whole_chans < cout) {
        const int32_t n = (cout - whole_chans) * k;
        copy_row(tail_w, filter + whole_chans * k, n);
        mcuq_write_u32(tail_w + n, 0);
    }
    chans cs;
    cs.zp21 = (int32_t)(2u * (uint32_t)p.output_zp + 1u);
    cs.block = block;
    cs.groups = groups;
    cs.adj = k - 4 * groups;
    int32_t b = 0;
    int32_t oy = 0;
    int32_t ox = 0;

    for (int32_t first = 0; first < pixels; first += BLOCK) {
        const int32_t nb = MCUQ_MIN(BLOCK, pixels - first);
        const int single = pixels - first == 1; /* a last block of one pixel */
        /* 1. im2col: every input byte of the block, before any output of it is written */
        for (int32_t q = 0; q < nb; ++q) {
            uint32_t *slot = block + q * 2;
            if (pointwise) {
                widen(slot, stride, input + (first + q) * cin, cin);
                continue;
            }
            const int8_t *image = input + b * in_image;
            const int32_t ix0 = ox * p.window.stride.w - p.window.pad.w;
            const int whole = ix0 >= 0 && ix0 + (p.window.filter.w - 1) * p.window.dilation.w < p.input.w;
            if (rows_whole && (cin % 4 == 0 || (whole && p.window.dilation.w == 1))) {
                direct_rows(slot, image, oy, ox, &p, zp_pair);
            } else {
                const int32_t iy0 = oy * p.window.stride.h - p.window.pad.h;
                const int32_t first_tap = iy0 * in_row + ix0 * cin; /* gather_words' offset in image */
                if (whole && p.window.dilation.w == 1 && (uint32_t)iy0 < rows_ok &&
                    (input_end - image) - first_tap >= last_read) {
                    gather_words(slot, stage, image + first_tap, &gg);
                } else { /* gather the window as int8 first */
                    gather_rows(stage, image, oy, ox, &p);
                    widen_stage(slot, stage, k);
                }
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
        if (single) {
            const int8_t *w = filter;
            for (int32_t oc = 0; oc < cout; ++oc, w += k) {
                const uint32_t acc = dot1(block, w, k / 4, k % 4, (uint32_t)bias[oc]);
                out[oc] = finish(acc, p.quant.multiplier[oc], p.quant.shift[oc], &p);
            }
        } else {
            int32_t oc0 = 0;
            if (nb != BLOCK) {
                /* a last block: the unused pixel slots computed on zeros, their results dropped */
                for (int32_t q = nb; q < BLOCK; ++q) {
                    fill(block + q * 2, stride, 0, groups);
                }
            }
            if (mode == CLAMP_FULL) {
                /* every channel in one asm loop: those whose weights are read whole from the filter, then the
                 * rest from their copy */
                set_slots(&cs, block, nb, cout);
                cs.mult = p.quant.multiplier;
                cs.shift = p.quant.shift;
                cs.out = out;
                cs.bias = bias;
                if (whole_chans > 0) {
                    cs.w_end = filter + (whole_chans - 1) * k + 4 * groups;
                    chans_full(&cs, filter);
                }
                if (whole_chans < cout) {
                    cs.w_end = tail_end;
                    chans_full(&cs, tail_w);
                }
                oc0 = cout;
            }
            if (nb != BLOCK || mode == CLAMP_SLOW) {
                block_outputs(out, block, filter, bias, &p, k, CLAMP_SLOW, nb, oc0);
            } else if (mode == CLAMP_MIXED) {
                block_outputs(out, block, filter, bias, &p, k, CLAMP_MIXED, BLOCK, 0);
            } else {
                /* full range: the rest (a tail read bytewise) clamped to [-128, 127], the same as SSAT #8 */
                block_outputs(out, block, filter, bias, &p, k, CLAMP_ANY, BLOCK, oc0);
            }
        }
    }
    return MCUQ_OK;
}
