/* DEPTHWISE_CONV_2D, int8, depth multiplier 1, at most 16 filter taps: the Helium (MVE) path, plain C with the
 * same memory behaviour elsewhere (declared in mcuq_conv.h; its Python half is mcuq/kernels/depthwise_mve.py).
 *
 * One output value is one VMLADAVA: a gather load (VLDRB.S8 with a vector of 16 byte offsets) picks the window's
 * kh * kw taps of one channel out of the scratch ring, and VMLADAVA multiplies them with the channel's 16 weights
 * (taps past kh * kw have weight 0) and adds them to the bias. Four outputs of one channel (4 neighbouring pixels)
 * then go through a vectorised requantization (VQRDMULH == gemmlowp's SaturatingRoundingDoublingHighMul, a
 * rounding right shift with TFLite's ties-away fix-up) and one scatter store narrowing to int8.
 *
 * Data layouts:
 *  - filter: [C][16], channel c's taps in raster order (ky, kx), zero past kh * kw (made at compile time);
 *  - bias: folded, required: bias[c] - input_zp * sum over all kh * kw taps of w[c] (padding taps included);
 *  - scratch: a ring of `span` = (kh - 1) * dilation.h + 1 input rows, channel-planar [C][span][cols]: row v of
 *    the (zero-point padded) input is ring row (v + pad.h) % span; each holds `cols` pixels, the left padding, the
 *    input row, the right padding. Padding pixels and the rows of the top / bottom padding hold input_zp, so every
 *    tap of every window is read without a bounds test and the padding contributes w * input_zp, which the folded
 *    bias cancels. The gather offsets of a window, (ring row of tap ky) * cols + kx * dilation.w, must fit a byte.
 *
 * In place: output row r is written only after every input row of its window has been copied into the ring (rows
 * are copied in order, each once), and the input is read nowhere else. So the output may start at input + d for
 * every d <= D, where D = min over output rows r but the last of (first input row not yet read after r) * in_row -
 * (r + 1) * out_row (mcuq/kernels/depthwise_mve.py; D >= 0 for the usual shapes). */
#include <string.h>

#include "mcuq_conv.h"
#include "../internal/mcuq_simd.h"
#include "../internal/mcuq_util.h"

#define DW_TAPS 16 /* gather lanes: filter.h * filter.w must not exceed it */

typedef struct {
    int32_t span; /* input rows a window covers */
    int32_t cols; /* pixels per ring row: left padding, the input row, right padding */
    int32_t max_offset;
} dw_ring;

static dw_ring dw_ring_of(const mcuq_conv2d_params *p)
{
    dw_ring r;
    const int32_t ow = MCUQ_MAX(p->output.w, 1);
    const int32_t need = (ow - 1) * p->window.stride.w + (p->window.filter.w - 1) * p->window.dilation.w + 1;
    r.span = (p->window.filter.h - 1) * p->window.dilation.h + 1;
    r.cols = MCUQ_MAX(p->window.pad.w + p->input.w, need);
    r.max_offset = (r.span - 1) * r.cols + (p->window.filter.w - 1) * p->window.dilation.w;
    return r;
}

static int dw_valid_window(const mcuq_conv2d_params *p)
{
    return p->window.filter.h > 0 && p->window.filter.w > 0 && p->window.dilation.h > 0 && p->window.dilation.w > 0 &&
           p->window.stride.w > 0 && p->window.stride.h > 0 && p->window.pad.w >= 0 && p->window.pad.h >= 0 &&
           p->input.w > 0 && p->input.c > 0;
}

int32_t mcuq_depthwise_conv2d_s8_mve_scratch_size(const mcuq_conv2d_params *params)
{
    if (params == NULL || !dw_valid_window(params)) {
        return 0;
    }
    const dw_ring r = dw_ring_of(params);
    return params->input.c * r.span * r.cols;
}

/* Input row `src` (w pixels of c channels, NHWC) into ring row `slot`, channel-planar, from column pad_w. */
static void dw_fill_row(int8_t *ring, int32_t slot, const int8_t *src, int32_t w, int32_t c, int32_t pad_w,
                        const dw_ring *r)
{
    const int32_t plane = r->span * r->cols; /* bytes between two channels' ring rows */
    int8_t *dst = ring + slot * r->cols + pad_w;
    int32_t ch = 0;
#if MCUQ_HAVE_MVE
    /* 8 channels of a pixel per scatter store: offsets k * plane */
    const uint16x8_t offs = vmulq_n_u16(vidupq_n_u16(0, 1), (uint16_t)plane);
    for (; ch + 8 <= c; ch += 8) {
        const int8_t *s = src + ch;
        int8_t *d = dst + ch * plane;
        for (int32_t x = 0; x < w; ++x) {
            vstrbq_scatter_offset_s16(d + x, offs, vldrbq_s16(s));
            s += c;
        }
    }
#endif
    for (; ch < c; ++ch) {
        const int8_t *s = src + ch;
        int8_t *d = dst + ch * plane;
        for (int32_t x = 0; x < w; ++x) {
            d[x] = *s;
            s += c;
        }
    }
}

/* The zero-point row: every channel's ring row `slot` */
static void dw_fill_zp(int8_t *ring, int32_t slot, int32_t c, int8_t zp, const dw_ring *r)
{
    for (int32_t ch = 0; ch < c; ++ch) {
        memset(ring + (ch * r->span + slot) * r->cols, zp, (size_t)r->cols);
    }
}

/* -- one output row ----------------------------------------------------------------------------------------------- */
typedef struct {
    const int8_t *filter; /* [C][16] */
    const int32_t *bias;  /* folded */
    const int32_t *mult;
    const int32_t *shift;
    int32_t c;
    int32_t ow;
    int32_t sw;    /* stride along a row, pixels */
    int32_t plane; /* ring bytes per channel: span * cols */
    int32_t out_zp;
    int32_t act_min;
    int32_t act_max;
} dw_row_args;

#if MCUQ_HAVE_MVE
/* Four sums into one vector: two VMOVs of two core registers each. */
static inline int32x4_t dw_vec4(int32_t s0, int32_t s1, int32_t s2, int32_t s3)
{
    int32x4_t v;
    __asm__("vmov %q0[2], %q0[0], %1, %2\n\tvmov %q0[3], %q0[1], %3, %4"
            : "=w"(v)
            : "r"(s0), "r"(s2), "r"(s1), "r"(s3));
    return v;
}

/* (acc + bias) requantized as TFLite's MultiplyByQuantizedMultiplier (VQRDMULH == SaturatingRoundingDoublingHighMul;
 * VRSHL rounds ties up, so for a right shift negatives go one down first: ties away from zero), + zp, clamped.
 * mode (a constant): 1 shift > 0 (left shift only), 0 shift == 0, -1 shift < 0 (right shift only). */
static inline __attribute__((always_inline)) int32x4_t
dw_finish(int32x4_t acc, int32_t bias, int32_t mult, int32_t shift, int mode, int32_t zp, int32x4_t lo, int32x4_t hi)
{
    acc = vaddq_n_s32(acc, bias);
    if (mode > 0) {
        acc = vshlq_r_s32(acc, shift);
    }
    acc = vqrdmulhq_n_s32(acc, mult);
    if (mode < 0) {
        acc = vqaddq_s32(acc, vshrq_n_s32(acc, 31));
        acc = vrshlq_n_s32(acc, shift);
    }
    return vminq_s32(vmaxq_s32(vaddq_n_s32(acc, zp), lo), hi);
}

/* One channel of one output row: x points at its ring plane, o at its first output. */
static inline __attribute__((always_inline)) void dw_channel(const int8_t *x, int8_t *o, int8x16_t w, uint8x16_t offs,
                                                             uint32x4_t out_offs, int32_t bias, int32_t mult,
                                                             int32_t shift, int mode, const dw_row_args *a,
                                                             int32x4_t lo, int32x4_t hi)
{
    const int32_t sw = a->sw;
    const int32_t ow = a->ow;
    const int32_t zp = a->out_zp;
    const int32_t step = 4 * a->c;
    int32_t ox = 0;
    for (; ox + 4 <= ow; ox += 4) {
        const int32_t s0 = vmladavq_s8(vldrbq_gather_offset_s8(x, offs), w);
        const int32_t s1 = vmladavq_s8(vldrbq_gather_offset_s8(x + sw, offs), w);
        const int32_t s2 = vmladavq_s8(vldrbq_gather_offset_s8(x + 2 * sw, offs), w);
        const int32_t s3 = vmladavq_s8(vldrbq_gather_offset_s8(x + 3 * sw, offs), w);
        vstrbq_scatter_offset_s32(o, out_offs, dw_finish(dw_vec4(s0, s1, s2, s3), bias, mult, shift, mode, zp, lo, hi));
        x += 4 * sw;
        o += step;
    }
    if (ox < ow) { /* 1 to 3 pixels left */
        const int32_t n = ow - ox;
        const int32_t s0 = vmladavq_s8(vldrbq_gather_offset_s8(x, offs), w);
        const int32_t s1 = n > 1 ? vmladavq_s8(vldrbq_gather_offset_s8(x + sw, offs), w) : 0;
        const int32_t s2 = n > 2 ? vmladavq_s8(vldrbq_gather_offset_s8(x + 2 * sw, offs), w) : 0;
        const int32x4_t acc = dw_finish(dw_vec4(s0, s1, s2, 0), bias, mult, shift, mode, zp, lo, hi);
        vstrbq_scatter_offset_p_s32(o, out_offs, acc, vctp32q((uint32_t)n));
    }
}

static void dw_row(const dw_row_args *a, const int8_t *ring, const uint8_t *offsets, int8_t *out)
{
    const uint8x16_t offs = vldrbq_u8(offsets);
    const int32x4_t lo = vdupq_n_s32(a->act_min);
    const int32x4_t hi = vdupq_n_s32(a->act_max);
    const uint32x4_t out_offs = vmulq_n_u32(vidupq_n_u32(0, 1), (uint32_t)a->c);
    for (int32_t ch = 0; ch < a->c; ++ch) {
        const int8x16_t w = vldrbq_s8(a->filter + ch * DW_TAPS);
        const int32_t shift = a->shift[ch];
        const int8_t *x = ring + ch * a->plane;
        if (shift < 0) {
            dw_channel(x, out + ch, w, offs, out_offs, a->bias[ch], a->mult[ch], shift, -1, a, lo, hi);
        } else if (shift == 0) {
            dw_channel(x, out + ch, w, offs, out_offs, a->bias[ch], a->mult[ch], shift, 0, a, lo, hi);
        } else {
            dw_channel(x, out + ch, w, offs, out_offs, a->bias[ch], a->mult[ch], shift, 1, a, lo, hi);
        }
    }
}
#else
static void dw_row(const dw_row_args *a, const int8_t *ring, const uint8_t *offsets, int8_t *out)
{
    const int32_t c = a->c;
    for (int32_t ch = 0; ch < c; ++ch) {
        const int8_t *w = a->filter + ch * DW_TAPS;
        const int8_t *x = ring + ch * a->plane;
        for (int32_t ox = 0; ox < a->ow; ++ox) {
            uint32_t acc = (uint32_t)a->bias[ch];
            for (int32_t t = 0; t < DW_TAPS; ++t) {
                acc += (uint32_t)((int32_t)w[t] * (int32_t)x[offsets[t]]);
            }
            int32_t y = mcuq_requantize((int32_t)acc, a->mult[ch], a->shift[ch]) + a->out_zp;
            out[ox * c + ch] = (int8_t)MCUQ_CLAMP(y, a->act_min, a->act_max);
            x += a->sw;
        }
    }
}
#endif

mcuq_status mcuq_depthwise_conv2d_s8_mve(const mcuq_context *ctx, const mcuq_conv2d_params *params, const int8_t *input,
                                         const int8_t *filter, const int32_t *bias, int8_t *output)
{
    if (ctx == NULL || params == NULL || input == NULL || filter == NULL || bias == NULL || output == NULL ||
        params->quant.multiplier == NULL || params->quant.shift == NULL) {
        return MCUQ_ERR_ARGUMENT;
    }
    const mcuq_conv2d_params p = *params;
    if (p.input.n < 0 || p.output.n != p.input.n || p.input.h <= 0 || p.output.h < 0 || p.output.w < 0 ||
        p.depth_multiplier <= 0 || p.output.c != p.input.c * p.depth_multiplier || !dw_valid_window(&p) ||
        p.activation.min > p.activation.max) {
        return MCUQ_ERR_ARGUMENT;
    }
    const int32_t scratch = mcuq_depthwise_conv2d_s8_mve_scratch_size(params);
    if (ctx->size < scratch || ctx->buf == NULL) {
        return MCUQ_ERR_ARGUMENT;
    }
    const dw_ring ring = dw_ring_of(&p);
    if (p.depth_multiplier != 1 || p.window.filter.h * p.window.filter.w > DW_TAPS || ring.max_offset > 255) {
        return MCUQ_ERR_UNSUPPORTED;
    }
    if (p.input.n == 0 || p.output.h == 0 || p.output.w == 0) {
        return MCUQ_OK;
    }
    int8_t *const buf = (int8_t *)ctx->buf;
    const int32_t c = p.input.c;
    const int32_t in_row = p.input.w * c;
    const int32_t out_row = p.output.w * c;
    const int32_t kh = p.window.filter.h;
    const int32_t kw = p.window.filter.w;
    const int8_t zp = (int8_t)p.input_zp;
    const dw_row_args args = {filter,
                              bias,
                              p.quant.multiplier,
                              p.quant.shift,
                              c,
                              p.output.w,
                              p.window.stride.w,
                              ring.span * ring.cols,
                              p.output_zp,
                              p.activation.min,
                              p.activation.max};
    uint8_t offsets[DW_TAPS];
    int8_t *out = output;

    /* Every ring byte starts as input_zp: the padding columns stay so. */
    memset(buf, zp, (size_t)scratch);
    for (int32_t n = 0; n < p.input.n; ++n) {
        const int8_t *image = input + n * p.input.h * in_row;
        int32_t next = -p.window.pad.h; /* the next row to copy (rows of the padding are < 0 or >= input.h) */
        for (int32_t oy = 0; oy < p.output.h; ++oy) {
            const int32_t top = oy * p.window.stride.h - p.window.pad.h;
            if (next < top) {
                next = top;
            }
            for (; next < top + ring.span; ++next) {
                const int32_t slot = (next + p.window.pad.h) % ring.span;
                if (next < 0 || next >= p.input.h) {
                    dw_fill_zp(buf, slot, c, zp, &ring);
                } else {
                    dw_fill_row(buf, slot, image + next * in_row, p.input.w, c, p.window.pad.w, &ring);
                }
            }
            for (int32_t t = 0; t < DW_TAPS; ++t) { /* the taps past kh * kw read offset 0 with weight 0 */
                const int32_t ky = t / kw;
                const int32_t kx = t % kw;
                const int32_t slot = (top + ky * p.window.dilation.h + p.window.pad.h) % ring.span;
                offsets[t] = (uint8_t)(t < kh * kw ? slot * ring.cols + kx * p.window.dilation.w : 0);
            }
            dw_row(&args, buf, offsets, out);
            out += out_row;
        }
    }
    return MCUQ_OK;
}
