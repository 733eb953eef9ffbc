/* DEPTHWISE_CONV_2D, 16x8, dsp path: depth multiplier 1, int8 weights widened to int16 at compile time, any filter
 * size, stride, dilation and padding. The same bits as mcuq_depthwise_conv2d_s16 (see mcuq_conv.h,
 * mcuq_depthwise_conv2d_s16_dsp).
 *
 * Filter layout (mcuq/kernels/conv16_fast.py, dw16_dsp_weights): the channels in groups of 4 (G = ceil(C / 4)); per
 * group the filter.h * filter.w taps in 1HWC order, each 4 little-endian int16 (channels beyond C hold 0):
 * [G][filter.h][filter.w][4] int16 = 8 bytes a tap, 4-byte aligned. In NHWC the input word (x[c], x[c + 1]) meets the
 * weight word (w[c], w[c + 1]): SMLABB gives channel c, SMLATT channel c + 1, with no unpacking of either side.
 *
 * Loop order: a group of 4 channels outermost (its requantization constants computed once, mcuq_conv_s16_dsp.h),
 * then the output pixels, then the taps of the window that lie inside the input (activations are symmetric, so the
 * zero padding adds nothing and is skipped). Per tap and group: two input words, two weight words, four SMLAxy. A
 * last group of 1 to 3 channels reads its int16 values one by one (no read beyond the pixel's channels).
 *
 * Arithmetic: every product |w * x| <= 2^22, so a 32-bit sum of at most CHUNK = 508 products cannot overflow; such
 * partial sums are added into an int64 accumulator that starts at the bias: the exact sum, as the portable kernel
 * computes it, for either accumulator (acc64), then requantized with the portable kernel's bits. No scratch. The
 * output must not overlap the input. */
#include "mcuq_conv.h"
#include "../internal/mcuq_conv_s16.h"
#include "../internal/mcuq_conv_s16_dsp.h"
#include "../internal/mcuq_simd.h"
#include "../internal/mcuq_window.h"

#define CHUNK     508 /* taps per 32-bit partial sum: 508 * 2^22 < 2^31 */
#define TAP_BYTES 8   /* 4 int16 weights */

/* acc + lo16(a) * lo16(b), the halves signed, modulo 2^32 (SMLABB) */
static MCUQ_S16_INLINE uint32_t smlabb(uint32_t a, uint32_t b, uint32_t acc)
{
#if MCUQ_HAVE_DSP
    return (uint32_t)__smlabb((int32_t)a, (int32_t)b, (int32_t)acc);
#else
    return acc + (uint32_t)((int32_t)(int16_t)(a & 0xffffu) * (int32_t)(int16_t)(b & 0xffffu));
#endif
}

/* acc + hi16(a) * hi16(b) (SMLATT) */
static MCUQ_S16_INLINE uint32_t smlatt(uint32_t a, uint32_t b, uint32_t acc)
{
#if MCUQ_HAVE_DSP
    return (uint32_t)__smlatt((int32_t)a, (int32_t)b, (int32_t)acc);
#else
    return acc + (uint32_t)((int32_t)(int16_t)(a >> 16) * (int32_t)(int16_t)(b >> 16));
#endif
}

/* The four 32-bit partial sums of a group. */
typedef struct {
    uint32_t a0;
    uint32_t a1;
    uint32_t a2;
    uint32_t a3;
} sums4;

/* s plus, for i < 4, the sum over t < n of x[t * xstep + i] * w[t][i] (w: n taps of 4 int16). */
static MCUQ_S16_INLINE sums4 taps4(sums4 s, const int16_t *x, int32_t xstep, const int8_t *w, int32_t n)
{
    for (int32_t t = 0; t < n; ++t) {
        const uint32_t x01 = mcuq_read_u32(x);
        const uint32_t x23 = mcuq_read_u32(x + 2);
        const uint32_t w01 = mcuq_read_u32(w);
        const uint32_t w23 = mcuq_read_u32(w + 4);
        s.a0 = smlabb(x01, w01, s.a0);
        s.a1 = smlatt(x01, w01, s.a1);
        s.a2 = smlabb(x23, w23, s.a2);
        s.a3 = smlatt(x23, w23, s.a3);
        x += xstep;
        w += TAP_BYTES;
    }
    return s;
}

/* One lane of the fast path's requantization (mcuq_conv_s16_dsp.h form 1 with the bias folded in): base =
 * bias * r + 2^(ts - 1) modulo 2^64, so that acc * r + 2^(ts - 1) = base + s * r (s the 32-bit partial sum, one
 * SMLAL); then the low 32 bits of that sum >> ts, as mcuq_s16_requant. */
typedef struct {
    uint64_t base;
    int32_t r;
    int32_t ts;
} lane;

static lane lane_of(int64_t bias, const mcuq_s16_quant *q)
{
    lane l;
    l.base = (uint64_t)bias * q->r + q->round;
    l.r = (int32_t)q->r;
    l.ts = q->ts;
    return l;
}

static MCUQ_S16_INLINE int16_t out1(const lane *l, uint32_t s, mcuq_activation act)
{
    const uint64_t sum = l->base + (uint64_t)((int64_t)(int32_t)s * l->r);
    const uint32_t lo = (uint32_t)sum;
    const uint32_t hi = (uint32_t)(sum >> 32);
    int32_t y;
    if (l->ts < 32) {
        y = (int32_t)((lo >> l->ts) | (hi << (32 - l->ts)));
    } else {
        y = (int32_t)hi >> (l->ts - 32); /* arithmetic in GCC and Clang, as mcuq_s16_requant */
    }
    return (int16_t)MCUQ_CLAMP(y, act.min, act.max);
}

/* taps4 for the last group's m < 4 channels, value by value. */
static void taps_tail(const int16_t *x, int32_t xstep, const int8_t *w, int32_t n, int32_t m, uint32_t a[4])
{
    for (int32_t t = 0; t < n; ++t) {
        for (int32_t i = 0; i < m; ++i) {
            const uint32_t wi = (uint32_t)(uint8_t)w[2 * i] | ((uint32_t)(uint8_t)w[2 * i + 1] << 8);
            a[i] = smlabb((uint32_t)(uint16_t)x[i], wi, a[i]);
        }
        x += xstep;
        w += TAP_BYTES;
    }
}

int32_t mcuq_depthwise_conv2d_s16_dsp_scratch_size(const mcuq_conv2d_s16_params *params)
{
    (void)params;
    return 0;
}

/* One group's window at one output pixel, any group width m and window size: the partial sums of at most CHUNK
 * products each added into acc (which holds the biases). x, w: the first tap inside the input; rows taps of span
 * columns. */
static void window_chunked(int64_t acc[4], const int16_t *x, int32_t row_step, int32_t col_step, const int8_t *w,
                           int32_t w_row, int32_t rows, int32_t span, int32_t m)
{
    uint32_t a[4] = {0, 0, 0, 0};
    int32_t pending = 0; /* products in a */
    for (int32_t r = 0; r < rows; ++r, x += row_step, w += w_row) {
        const int16_t *xr = x;
        const int8_t *wr = w;
        int32_t left = span;
        while (left > 0) {
            if (pending == CHUNK) {
                for (int32_t i = 0; i < 4; ++i) {
                    acc[i] += (int32_t)a[i];
                    a[i] = 0;
                }
                pending = 0;
            }
            const int32_t n = MCUQ_MIN(left, CHUNK - pending);
            if (m == 4) {
                sums4 s = {a[0], a[1], a[2], a[3]};
                s = taps4(s, xr, col_step, wr, n);
                a[0] = s.a0;
                a[1] = s.a1;
                a[2] = s.a2;
                a[3] = s.a3;
            } else {
                taps_tail(xr, col_step, wr, n, m, a);
            }
            xr += n * col_step;
            wr += n * TAP_BYTES;
            left -= n;
            pending += n;
        }
    }
    for (int32_t i = 0; i < 4; ++i) {
        acc[i] += (int32_t)a[i];
    }
}

/* What the fast path needs of one group of 4 channels: all with form 1 (lanes), the window within one partial sum. */
typedef struct {
    lane ln[4];
    mcuq_activation act;
    int32_t row_step; /* input values between filter rows */
    int32_t col_step; /* input values between filter columns */
    int32_t px_step;  /* input values between output pixels */
    int32_t w_row;    /* weight bytes per filter row */
    int32_t c_n;      /* output values between output pixels */
} fast_group;

/* n output pixels of a group that share their taps (rows x span, x and w at the first of them), the outputs at out. */
static void run_fast(const fast_group *g, const int16_t *x, const int8_t *w, int32_t rows, int32_t span, int16_t *out,
                     int32_t n)
{
    const int32_t col = g->col_step;
    for (int32_t px = 0; px < n; ++px, x += g->px_step, out += g->c_n) {
        sums4 s = {0, 0, 0, 0};
        const int16_t *xr = x;
        const int8_t *wr = w;
        if (span == 3) { /* the common full row of a 3-wide filter: straight-line code */
            for (int32_t r = 0; r < rows; ++r, xr += g->row_step, wr += g->w_row) {
                s = taps4(s, xr, col, wr, 1);
                s = taps4(s, xr + col, col, wr + TAP_BYTES, 1);
                s = taps4(s, xr + 2 * col, col, wr + 2 * TAP_BYTES, 1);
            }
        } else {
            for (int32_t r = 0; r < rows; ++r, xr += g->row_step, wr += g->w_row) {
                s = taps4(s, xr, col, wr, span);
            }
        }
        out[0] = out1(&g->ln[0], s.a0, g->act);
        out[1] = out1(&g->ln[1], s.a1, g->act);
        out[2] = out1(&g->ln[2], s.a2, g->act);
        out[3] = out1(&g->ln[3], s.a3, g->act);
    }
}

mcuq_status mcuq_depthwise_conv2d_s16_dsp(const mcuq_context *ctx, const mcuq_conv2d_s16_params *params,
                                          const int16_t *input, const int8_t *filter, const int64_t *bias,
                                          int16_t *output)
{
    const mcuq_status status = mcuq_conv2d_s16_check(ctx, params, input, filter, output,
                                                     mcuq_depthwise_conv2d_s16_dsp_scratch_size(params), 1);
    if (status != MCUQ_OK) {
        return status;
    }
    if (params->weight_bits != 8 || params->depth_multiplier != 1) {
        return MCUQ_ERR_UNSUPPORTED;
    }
    const mcuq_conv2d_s16_params p = *params;
    const int32_t c_n = p.input.c;
    const int32_t fw = p.window.filter.w;
    const int32_t dw = p.window.dilation.w;
    const int32_t sw = p.window.stride.w;
    const int32_t w_row = fw * TAP_BYTES;
    const int32_t group_bytes = p.window.filter.h * w_row;
    const int32_t in_row = p.input.w * c_n;
    const int32_t in_image = p.input.h * in_row;
    const int32_t out_image = p.output.h * p.output.w * c_n;
    /* the whole window in one 32-bit partial sum per channel */
    const int small = (int64_t)p.window.filter.h * fw <= CHUNK;
    /* the output columns [ox_a, ox_b) whose windows lie inside the input's columns */
    const int64_t last = (int64_t)p.input.w - 1 - (int64_t)(fw - 1) * dw + p.window.pad.w;
    const int32_t ox_a = (int32_t)MCUQ_MIN(p.output.w, p.window.pad.w > 0 ? (p.window.pad.w + sw - 1) / sw : 0);
    const int32_t ox_b = last < 0 ? ox_a : (int32_t)MCUQ_MAX(ox_a, MCUQ_MIN((int64_t)p.output.w, last / sw + 1));
    fast_group fg;
    fg.act = p.activation;
    fg.row_step = p.window.dilation.h * in_row;
    fg.col_step = dw * c_n;
    fg.px_step = sw * c_n;
    fg.w_row = w_row;
    fg.c_n = c_n;

    for (int32_t b = 0; b < p.input.n; ++b) {
        const int16_t *image = input + b * in_image;
        for (int32_t c0 = 0; c0 < c_n; c0 += 4) {
            const int32_t m = MCUQ_MIN(4, c_n - c0);
            const int8_t *wg = filter + (c0 / 4) * group_bytes;
            mcuq_s16_quant q[4];
            int64_t b0[4] = {0, 0, 0, 0};
            int fast = small && m == 4;
            for (int32_t i = 0; i < 4; ++i) {
                const int32_t c = c0 + MCUQ_MIN(i, m - 1); /* spare lanes repeat the last channel, never stored */
                q[i] = mcuq_s16_quant_of(p.acc64, p.quant.multiplier[c], p.quant.shift[c]);
                b0[i] = bias != NULL ? bias[c] : 0;
                fast = fast && q[i].form == 1;
                fg.ln[i] = lane_of(b0[i], &q[i]);
            }
            int16_t *out_g = output + b * out_image + c0;
            for (int32_t oy = 0; oy < p.output.h; ++oy) {
                const int32_t iy0 = oy * p.window.stride.h - p.window.pad.h;
                int32_t ky_lo;
                int32_t ky_hi;
                mcuq_tap_range(iy0, p.window.dilation.h, p.input.h, p.window.filter.h, &ky_lo, &ky_hi);
                int16_t *out_row = out_g + oy * p.output.w * c_n;
                for (int32_t ox = 0; ox < p.output.w; ++ox) {
                    /* the interior columns in one call */
                    const int run = fast && ox == ox_a && ox_b > ox_a;
                    const int32_t ix0 = ox * sw - p.window.pad.w;
                    int32_t kx_lo;
                    int32_t kx_hi;
                    mcuq_tap_range(ix0, dw, p.input.w, fw, &kx_lo, &kx_hi);
                    const int32_t span = kx_hi - kx_lo;
                    const int32_t rows = span > 0 ? ky_hi - ky_lo : 0;
                    const int16_t *x =
                        image + ((iy0 + ky_lo * p.window.dilation.h) * in_row + (ix0 + kx_lo * dw) * c_n + c0);
                    const int8_t *w = wg + (ky_lo * fw + kx_lo) * TAP_BYTES;
                    int16_t *out = out_row + ox * c_n;
                    if (fast) {
                        const int32_t n = run ? ox_b - ox_a : 1;
                        run_fast(&fg, x, w, rows, span, out, n);
                        ox += n - 1;
                        continue;
                    }
                    int64_t acc[4] = {b0[0], b0[1], b0[2], b0[3]};
                    window_chunked(acc, x, fg.row_step, fg.col_step, w, w_row, rows, span, m);
                    for (int32_t i = 0; i < m; ++i) {
                        const int32_t y = mcuq_s16_requant(acc[i], &q[i]);
                        out[i] = (int16_t)MCUQ_CLAMP(y, p.activation.min, p.activation.max);
                    }
                }
            }
        }
    }
    return MCUQ_OK;
}
