/* DEPTHWISE_CONV_2D, int8, dsp path: 3x3 filter, depth multiplier 1, dilation 1, stride 1 or 2, any padding.
 * Same bits as mcuq_depthwise_conv2d_s8 (TFLite's DepthwiseConvPerChannel); see mcuq_conv.h.
 *
 * Arguments (compile-time transforms by mcuq/kernels/depthwise_dsp.py):
 *   filter: [C][3][4] int8, per channel and filter row the taps kx = 0, 1, 2 and a zero byte (one word per row);
 *   bias:   [C] int32, never NULL, the folded bias bias[c] - input_zp * sum(w[c]), so the loops multiply raw int8
 *           values; the zero padding then has to contribute w * input_zp, which it does because the padding is
 *           stored as input_zp bytes.
 *
 * In place: input rows are copied, as they are first needed, into a ring of 3 rows in scratch, transposed to
 * channel-major ([slot][c][column], padding columns and padding rows holding input_zp), and every tap is read
 * from there. Output row oy is written (all channels) only after input rows up to oy * stride.h - pad.h + 2 have
 * been copied, so the output may overlap the input as mcuq/kernels/depthwise_dsp.py (overlap) computes.
 *
 * Per channel and output row: the taps of one filter row as int16 pairs, (w0, w2) and (w1, 0), then two output
 * pixels per step from one input word (SXTB16 and SXTB16 ror 8 give (x0, x2), (x1, x3)): stride 1 is
 * SMLAD + SMLABB for pixel 0 and SMLAD + SMLATB for pixel 1, 7 instructions for 6 MACs per filter row; stride 2
 * pairs (x2, x4) with PKHTB for SMLADX. The int32 accumulators of the row go to scratch, then one requantizing
 * loop with the channel's constants in registers writes the channel's outputs (stride input.c). */
#include "mcuq_conv.h"
#include "../internal/mcuq_simd.h"
#include "../internal/mcuq_util.h"

#define MCUQ_DW_RING 3 /* input rows in the ring */

/* Ring columns: (output.w - 1) * stride.w + 3 are read; one more (read, never used) by the word loads of the
 * last pixel; rounded up to a multiple of 4. */
static int32_t ring_width(const mcuq_conv2d_params *p)
{
    const int32_t need = (p->output.w > 0 ? (p->output.w - 1) * p->window.stride.w : 0) + 3 + 1;
    return (need + 3) & ~3;
}

int32_t mcuq_depthwise_conv2d_s8_dsp_scratch_size(const mcuq_conv2d_params *params)
{
    if (params == NULL || params->output.w < 0 || params->input.c <= 0 || params->window.stride.w <= 0 ||
        params->output.w > 0x100000 || params->input.c > 0x10000) {
        return 0;
    }
    /* int32 accumulators of one output row (plus 3 bytes to align them), then the ring */
    return 3 + 4 * params->output.w + MCUQ_DW_RING * params->input.c * ring_width(params);
}

/* acc + lo16(a) * lo16(b) */
static inline uint32_t smlabb(uint32_t a, uint32_t b, uint32_t acc)
{
#if MCUQ_HAVE_DSP
    return (uint32_t)__smlabb((int32_t)a, (int32_t)b, (int32_t)acc);
#else
    return acc + (uint32_t)((int32_t)(int16_t)(a & 0xffffu) * (int32_t)(int16_t)(b & 0xffffu));
#endif
}

/* acc + hi16(a) * lo16(b) */
static inline uint32_t smlatb(uint32_t a, uint32_t b, uint32_t acc)
{
#if MCUQ_HAVE_DSP
    return (uint32_t)__smlatb((int32_t)a, (int32_t)b, (int32_t)acc);
#else
    return acc + (uint32_t)((int32_t)(int16_t)(a >> 16) * (int32_t)(int16_t)(b & 0xffffu));
#endif
}

/* acc + lo16(a) * hi16(b) + hi16(a) * lo16(b) */
static inline uint32_t smladx(uint32_t a, uint32_t b, uint32_t acc)
{
#if MCUQ_HAVE_DSP
    return (uint32_t)__smladx((int16x2_t)a, (int16x2_t)b, (int32_t)acc);
#else
    const int32_t p0 = (int32_t)(int16_t)(a & 0xffffu) * (int32_t)(int16_t)(b >> 16);
    const int32_t p1 = (int32_t)(int16_t)(a >> 16) * (int32_t)(int16_t)(b & 0xffffu);
    return acc + (uint32_t)p0 + (uint32_t)p1;
#endif
}

/* PKHTB without shift: the top half of a, the bottom half of b */
static inline uint32_t pkhtb(uint32_t a, uint32_t b)
{
    return (a & 0xffff0000u) | (b & 0xffffu);
}

/* floor((x * m + 2^30) / 2^31), the doubling high multiply of mcuq_requantize, for m in [2^30, 2^31): on the DSP
 * path SMMLAR(x, m2, x) with m2 = 2m - 2^32: (x * 2^32 + x * (2m - 2^32) + 2^31) >> 32, exact in 64 bits. */
static inline int32_t high_mul(int32_t x, int32_t m, int32_t m2)
{
#if MCUQ_HAVE_DSP && defined(__GNUC__)
    int32_t r;
    (void)m;
    __asm__("smmlar %0, %1, %2, %1" : "=r"(r) : "r"(x), "r"(m2));
    return r;
#else
    (void)m2;
    return (int32_t)(((int64_t)x * m + (INT64_C(1) << 30)) >> 31);
#endif
}

/* h clamped to [-2^30, 2^30 - 1]: with a right shift of at most 20 the clamped output is the same (|result| >=
 * 1024 either way), and h + 2^(r-1) cannot overflow. */
static inline int32_t sat31(int32_t h)
{
#if MCUQ_HAVE_DSP
    return __ssat(h, 31);
#else
    return MCUQ_CLAMP(h, -(INT32_C(1) << 30), (INT32_C(1) << 30) - 1);
#endif
}

/* Input row iy (or input_zp where iy is outside the image) into ring slot `slot`, channel-major:
 * ring[slot][c][pad_w + ix] = image[iy][ix][c] for the columns that fit. */
static void fill_row(int8_t *slot, const int8_t *image, int32_t iy, const mcuq_conv2d_params *p, int32_t width)
{
    const int32_t c_n = p->input.c;
    const int32_t pad_w = p->window.pad.w;
    const int32_t cols = MCUQ_MIN(p->input.w, width - pad_w); /* input columns kept */
    if (cols <= 0) {
        return;
    }
    if (iy < 0 || iy >= p->input.h) {
        for (int32_t c = 0; c < c_n; ++c) {
            memset(slot + c * width + pad_w, (int)(int8_t)p->input_zp, (size_t)cols);
        }
        return;
    }
    const int8_t *row = image + iy * p->input.w * c_n;
    int32_t c0 = 0;
    const int32_t cols4 = cols & ~3;
    for (; c0 + 4 <= c_n; c0 += 4) {
        int8_t *d0 = slot + c0 * width + pad_w;
        const int8_t *s = row + c0;
        int32_t x = 0;
        for (; x < cols4; x += 4) { /* 4x4 byte transpose: 4 pixels x 4 channels */
            const uint32_t r0 = mcuq_read_u32(s);
            const uint32_t r1 = mcuq_read_u32(s + c_n);
            const uint32_t r2 = mcuq_read_u32(s + 2 * c_n);
            const uint32_t r3 = mcuq_read_u32(s + 3 * c_n);
            s += 4 * c_n;
            const uint32_t t0 = (r0 & 0x00ff00ffu) | ((r1 & 0x00ff00ffu) << 8);
            const uint32_t t1 = ((r0 >> 8) & 0x00ff00ffu) | (r1 & 0xff00ff00u);
            const uint32_t t2 = (r2 & 0x00ff00ffu) | ((r3 & 0x00ff00ffu) << 8);
            const uint32_t t3 = ((r2 >> 8) & 0x00ff00ffu) | (r3 & 0xff00ff00u);
            mcuq_write_u32(d0 + x, (t0 & 0xffffu) | (t2 << 16));
            mcuq_write_u32(d0 + width + x, (t1 & 0xffffu) | (t3 << 16));
            mcuq_write_u32(d0 + 2 * width + x, (t0 >> 16) | (t2 & 0xffff0000u));
            mcuq_write_u32(d0 + 3 * width + x, (t1 >> 16) | (t3 & 0xffff0000u));
        }
        for (; x < cols; ++x, s += c_n) {
            d0[x] = s[0];
            d0[width + x] = s[1];
            d0[2 * width + x] = s[2];
            d0[3 * width + x] = s[3];
        }
    }
    for (; c0 < c_n; ++c0) {
        int8_t *d = slot + c0 * width + pad_w;
        const int8_t *s = row + c0;
        for (int32_t x = 0; x < cols; ++x, s += c_n) {
            d[x] = *s;
        }
    }
}

/* The int32 accumulators of one channel's output row: bias + the 3x3 taps read from the ring rows r0, r1, r2. */
static void row_macs(int32_t *acc, int32_t ow, int32_t stride, const int8_t *r0, const int8_t *r1, const int8_t *r2,
                     const int8_t *w, int32_t bias)
{
    const uint32_t wa0 = mcuq_read_u32(w);
    const uint32_t wa1 = mcuq_read_u32(w + 4);
    const uint32_t wa2 = mcuq_read_u32(w + 8);
    const uint32_t a0 = mcuq_sxtb16(wa0);      /* (w0, w2) of filter row 0 */
    const uint32_t b0 = mcuq_sxtb16_ror8(wa0); /* (w1, 0) */
    const uint32_t a1 = mcuq_sxtb16(wa1);
    const uint32_t b1 = mcuq_sxtb16_ror8(wa1);
    const uint32_t a2 = mcuq_sxtb16(wa2);
    const uint32_t b2 = mcuq_sxtb16_ror8(wa2);
    const uint32_t b = (uint32_t)bias;
    int32_t ox = 0;
    if (stride == 1) {
        for (; ox + 2 <= ow; ox += 2) {
            uint32_t s0 = b;
            uint32_t s1 = b;
            uint32_t v = mcuq_read_u32(r0 + ox);
            uint32_t x02 = mcuq_sxtb16(v);
            uint32_t x13 = mcuq_sxtb16_ror8(v);
            s0 = mcuq_smlad(x02, a0, s0);
            s0 = smlabb(x13, b0, s0);
            s1 = mcuq_smlad(x13, a0, s1);
            s1 = smlatb(x02, b0, s1);
            v = mcuq_read_u32(r1 + ox);
            x02 = mcuq_sxtb16(v);
            x13 = mcuq_sxtb16_ror8(v);
            s0 = mcuq_smlad(x02, a1, s0);
            s0 = smlabb(x13, b1, s0);
            s1 = mcuq_smlad(x13, a1, s1);
            s1 = smlatb(x02, b1, s1);
            v = mcuq_read_u32(r2 + ox);
            x02 = mcuq_sxtb16(v);
            x13 = mcuq_sxtb16_ror8(v);
            s0 = mcuq_smlad(x02, a2, s0);
            s0 = smlabb(x13, b2, s0);
            s1 = mcuq_smlad(x13, a2, s1);
            s1 = smlatb(x02, b2, s1);
            acc[ox] = (int32_t)s0;
            acc[ox + 1] = (int32_t)s1;
        }
    } else {
        for (; ox + 2 <= ow; ox += 2) {
            const int32_t j = 2 * ox;
            uint32_t s0 = b;
            uint32_t s1 = b;
            uint32_t v = mcuq_read_u32(r0 + j);
            uint32_t x02 = mcuq_sxtb16(v);
            uint32_t x13 = mcuq_sxtb16_ror8(v);
            s0 = mcuq_smlad(x02, a0, s0);
            s0 = smlabb(x13, b0, s0);
            s1 = smladx(pkhtb(x02, (uint32_t)(int32_t)r0[j + 4]), a0, s1); /* (x4, x2) . (w0, w2) */
            s1 = smlatb(x13, b0, s1);
            v = mcuq_read_u32(r1 + j);
            x02 = mcuq_sxtb16(v);
            x13 = mcuq_sxtb16_ror8(v);
            s0 = mcuq_smlad(x02, a1, s0);
            s0 = smlabb(x13, b1, s0);
            s1 = smladx(pkhtb(x02, (uint32_t)(int32_t)r1[j + 4]), a1, s1);
            s1 = smlatb(x13, b1, s1);
            v = mcuq_read_u32(r2 + j);
            x02 = mcuq_sxtb16(v);
            x13 = mcuq_sxtb16_ror8(v);
            s0 = mcuq_smlad(x02, a2, s0);
            s0 = smlabb(x13, b2, s0);
            s1 = smladx(pkhtb(x02, (uint32_t)(int32_t)r2[j + 4]), a2, s1);
            s1 = smlatb(x13, b2, s1);
            acc[ox] = (int32_t)s0;
            acc[ox + 1] = (int32_t)s1;
        }
    }
    if (ox < ow) { /* the last pixel of an odd row */
        const int32_t j = ox * stride;
        uint32_t s0 = b;
        uint32_t v = mcuq_read_u32(r0 + j);
        s0 = smlabb(mcuq_sxtb16_ror8(v), b0, mcuq_smlad(mcuq_sxtb16(v), a0, s0));
        v = mcuq_read_u32(r1 + j);
        s0 = smlabb(mcuq_sxtb16_ror8(v), b1, mcuq_smlad(mcuq_sxtb16(v), a1, s0));
        v = mcuq_read_u32(r2 + j);
        s0 = smlabb(mcuq_sxtb16_ror8(v), b2, mcuq_smlad(mcuq_sxtb16(v), a2, s0));
        acc[ox] = (int32_t)s0;
    }
}

/* Requantize one channel's row of accumulators into out[ox * step]. */
static void row_requantize(int8_t *out, int32_t step, const int32_t *acc, int32_t ow, int32_t multiplier, int32_t shift,
                           int32_t zp, int32_t lo, int32_t hi)
{
    const int32_t right = -shift;
    if (multiplier >= (INT32_C(1) << 30) && right >= 1 && right <= 20) {
        const int32_t m2 = (int32_t)((uint32_t)multiplier << 1);
        const int32_t rnd = INT32_C(1) << (right - 1);
        const int32_t vlo = lo - zp;
        const int32_t vhi = hi - zp;
        for (int32_t ox = 0; ox < ow; ++ox) {
            const int32_t h = sat31(high_mul(acc[ox], multiplier, m2));
            int32_t v = (h + rnd - (h < 0)) >> right;
            v = MCUQ_CLAMP(v, vlo, vhi);
            *out = (int8_t)(v + zp);
            out += step;
        }
    } else {
        for (int32_t ox = 0; ox < ow; ++ox) {
            int32_t v = mcuq_requantize(acc[ox], multiplier, shift) + zp;
            *out = (int8_t)MCUQ_CLAMP(v, lo, hi);
            out += step;
        }
    }
}

mcuq_status mcuq_depthwise_conv2d_s8_dsp(const mcuq_context *ctx, const mcuq_conv2d_params *params, const int8_t *input,
                                         const int8_t *filter, const int32_t *bias, int8_t *output)
{
    if (ctx == NULL || params == NULL || input == NULL || filter == NULL || bias == NULL || output == NULL ||
        params->quant.multiplier == NULL || params->quant.shift == NULL) {
        return MCUQ_ERR_ARGUMENT;
    }
    const mcuq_conv2d_params p = *params;
    if (p.input.n < 0 || p.output.n != p.input.n || p.input.h <= 0 || p.input.w <= 0 || p.input.c <= 0 ||
        p.output.h < 0 || p.output.w < 0 || p.depth_multiplier <= 0 || p.output.c != p.input.c * p.depth_multiplier ||
        p.window.filter.h <= 0 || p.window.filter.w <= 0 || p.window.stride.h <= 0 || p.window.stride.w <= 0 ||
        p.window.dilation.h <= 0 || p.window.dilation.w <= 0 || p.activation.min > p.activation.max ||
        p.output.w > 0x100000 || p.input.c > 0x10000) {
        return MCUQ_ERR_ARGUMENT;
    }
    if (ctx->size < mcuq_depthwise_conv2d_s8_dsp_scratch_size(params) || ctx->buf == NULL) {
        return MCUQ_ERR_ARGUMENT;
    }
    if (p.window.filter.h != 3 || p.window.filter.w != 3 || p.depth_multiplier != 1 || p.window.dilation.h != 1 ||
        p.window.dilation.w != 1 || p.window.stride.w > 2 || p.window.pad.h < 0 || p.window.pad.w < 0) {
        return MCUQ_ERR_UNSUPPORTED;
    }
    const int32_t c_n = p.input.c;
    const int32_t ow = p.output.w;
    const int32_t width = ring_width(&p);
    const int32_t plane = c_n * width; /* one ring slot */
    uint8_t *base = (uint8_t *)ctx->buf;
    int32_t *acc = (int32_t *)(void *)(base + ((4u - ((uintptr_t)base & 3u)) & 3u));
    int8_t *ring = (int8_t *)(void *)(acc + ow);
    const int32_t in_image = p.input.h * p.input.w * c_n;
    const int32_t out_row = ow * c_n;

    memset(ring, (int)(int8_t)p.input_zp, (size_t)(MCUQ_DW_RING * plane)); /* the padding columns stay */
    int8_t *out = output;
    for (int32_t b = 0; b < p.input.n; ++b) {
        const int8_t *image = input + b * in_image;
        int32_t next = -p.window.pad.h; /* the next input row to copy into the ring */
        for (int32_t oy = 0; oy < p.output.h; ++oy, out += out_row) {
            const int32_t iy0 = oy * p.window.stride.h - p.window.pad.h;
            if (next < iy0) {
                next = iy0;
            }
            for (; next < iy0 + 3; ++next) {
                fill_row(ring + ((next + p.window.pad.h) % MCUQ_DW_RING) * plane, image, next, &p, width);
            }
            const int8_t *r0 = ring + ((iy0 + p.window.pad.h) % MCUQ_DW_RING) * plane;
            const int8_t *r1 = ring + ((iy0 + p.window.pad.h + 1) % MCUQ_DW_RING) * plane;
            const int8_t *r2 = ring + ((iy0 + p.window.pad.h + 2) % MCUQ_DW_RING) * plane;
            for (int32_t c = 0; c < c_n; ++c) {
                row_macs(acc, ow, p.window.stride.w, r0 + c * width, r1 + c * width, r2 + c * width, filter + c * 12,
                         bias[c]);
                row_requantize(out + c, c_n, acc, ow, p.quant.multiplier[c], p.quant.shift[c], p.output_zp,
                               p.activation.min, p.activation.max);
            }
        }
    }
    return MCUQ_OK;
}
