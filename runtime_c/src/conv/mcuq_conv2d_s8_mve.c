/* CONV_2D, int8, Helium (MVE) path: the same bits as mcuq_conv2d_s8 (TFLite's ConvPerChannel); see mcuq_conv.h.
 *
 * Algorithm. Let K = filter.h * filter.w * input.c and KP = K rounded up to a multiple of 16. Output pixels are
 * taken in raster order (batch, y, x) in blocks of MCUQ_CONV_MVE_BLOCK = 2. For a block, im2col copies each
 * pixel's window (K int8 values in filter order, the padding taps filled with input_zp, then KP - K zeros) into
 * scratch, one row of KP bytes per pixel. Then for each group of 4 output channels the two rows are multiplied
 * with the group's 4 weight rows, 16 values per VMLADAVA: 8 accumulators, 16 instructions per 128 MACs. The
 * folded bias is added, the 2 x 4 accumulators are requantized as two vectors (VQRDMULH is gemmlowp's
 * SaturatingRoundingDoublingHighMul; VRSHL after a fix-up of negative values is its RoundingDivideByPOT) and
 * stored, 4 bytes per pixel. An odd last pixel runs the same with one row.
 *
 * Weights (mcuq/kernels/nn_mve.py, mve_weights): the OHWI rows of K values with KP - K zeros appended, zero rows
 * appended up to a multiple of 4 output channels, then each group of 4 rows interleaved by 16-value chunks:
 * chunk j of rows 0, 1, 2, 3 (64 bytes), then chunk j + 1, ... A group is 4 * KP bytes.
 * bias (never NULL) is the folded bias[c] - input_zp * sum(w[c]): the kernel multiplies raw int8 values, padding
 * taps contributing w * input_zp, and accumulates modulo 2^32; the final sum is TFLite's int32 accumulator.
 *
 * Memory order (the planner may overlap output and input, mcuq/kernels/nn_mve.py): every input byte a block
 * reads is read (copied to scratch) before any output of that block is written, and a block writes its
 * MCUQ_CONV_MVE_BLOCK * output.c bytes (fewer for the last), contiguous, and nothing else. Without MVE (host,
 * Cortex-M3/M4/M7/M33) the same algorithm runs in plain C with the same scratch and the same read/write order. */
#include "mcuq_conv.h"
#include "../internal/mcuq_simd.h"
#include "../internal/mcuq_util.h"
#include "../internal/mcuq_window.h"

#define MCUQ_CONV_MVE_BLOCK 2

/* K rounded up to a multiple of 16, 0 for an invalid filter. */
static int32_t padded_depth(const mcuq_conv2d_params *params)
{
    if (params->window.filter.h <= 0 || params->window.filter.w <= 0 || params->input.c <= 0) {
        return 0;
    }
    const int32_t k = params->window.filter.h * params->window.filter.w * params->input.c;
    return (k + 15) & ~15;
}

int32_t mcuq_conv2d_s8_mve_scratch_size(const mcuq_conv2d_params *params)
{
    return params == NULL ? 0 : MCUQ_CONV_MVE_BLOCK * padded_depth(params);
}

/* dst[0..n) = src[0..n) (n >= 0; dst and src do not overlap). */
static inline void copy_bytes(int8_t *dst, const int8_t *src, int32_t n)
{
#if MCUQ_HAVE_MVE
    for (; n >= 16; n -= 16) {
        vstrbq_s8(dst, vldrbq_s8(src));
        dst += 16;
        src += 16;
    }
    if (n > 0) {
        const mve_pred16_t p = vctp8q((uint32_t)n);
        vstrbq_p_s8(dst, vldrbq_z_s8(src, p), p);
    }
#else
    memcpy(dst, src, (size_t)n);
#endif
}

/* dst[0..n) = v (n >= 0). */
static inline void fill_bytes(int8_t *dst, int8_t v, int32_t n)
{
#if MCUQ_HAVE_MVE
    const int8x16_t d = vdupq_n_s8(v);
    for (; n >= 16; n -= 16) {
        vstrbq_s8(dst, d);
        dst += 16;
    }
    if (n > 0) {
        vstrbq_p_s8(dst, d, vctp8q((uint32_t)n));
    }
#else
    memset(dst, v, (size_t)n);
#endif
}

/* The window of output pixel (oy, ox) of `image` as one row of kp bytes at col: padding taps = input_zp, then
 * zeros up to kp. */
static void im2col(const mcuq_conv2d_params *p, const int8_t *image, int32_t oy, int32_t ox, int32_t kp, int8_t *col)
{
    const int32_t cin = p->input.c;
    const int32_t fw = p->window.filter.w;
    const int32_t row_bytes = fw * cin;
    const int8_t zp = (int8_t)p->input_zp;
    const int32_t iy0 = oy * p->window.stride.h - p->window.pad.h;
    const int32_t ix0 = ox * p->window.stride.w - p->window.pad.w;
    int32_t kx_lo;
    int32_t kx_hi;
    mcuq_tap_range(ix0, p->window.dilation.w, p->input.w, fw, &kx_lo, &kx_hi);
    int8_t *dst = col;
    const int32_t last_iy = iy0 + (p->window.filter.h - 1) * p->window.dilation.h;
    if (iy0 >= 0 && last_iy < p->input.h && kx_lo == 0 && kx_hi == fw && p->window.dilation.w == 1) {
        /* the whole window inside the input, rows contiguous: one copy per filter row */
        const int8_t *src = image + (iy0 * p->input.w + ix0) * cin;
        const int32_t src_step = p->window.dilation.h * p->input.w * cin;
        for (int32_t ky = 0; ky < p->window.filter.h; ++ky) {
            copy_bytes(dst, src, row_bytes);
            dst += row_bytes;
            src += src_step;
        }
        fill_bytes(dst, 0, kp - (int32_t)(dst - col));
        return;
    }
    for (int32_t ky = 0; ky < p->window.filter.h; ++ky) {
        const int32_t iy = iy0 + ky * p->window.dilation.h;
        if (iy < 0 || iy >= p->input.h || kx_hi <= kx_lo) {
            fill_bytes(dst, zp, row_bytes);
        } else {
            const int8_t *src = image + (iy * p->input.w + ix0 + kx_lo * p->window.dilation.w) * cin;
            fill_bytes(dst, zp, kx_lo * cin);
            if (p->window.dilation.w == 1) {
                copy_bytes(dst + kx_lo * cin, src, (kx_hi - kx_lo) * cin);
            } else {
                for (int32_t kx = kx_lo; kx < kx_hi; ++kx) {
                    copy_bytes(dst + kx * cin, src, cin);
                    src += p->window.dilation.w * cin;
                }
            }
            fill_bytes(dst + kx_hi * cin, zp, (fw - kx_hi) * cin);
        }
        dst += row_bytes;
    }
    fill_bytes(dst, 0, kp - (int32_t)(dst - col));
}

/* What every output channel group of a block shares. */
typedef struct {
    const int32_t *bias;
    const int32_t *multiplier;
    const int32_t *shift;
    int32_t channels; /* output.c */
    int32_t chunks;   /* KP / 16 */
    int32_t zp;
    int32_t act_min;
    int32_t act_max;
} block_job;

#if MCUQ_HAVE_MVE

/* Two rows x0, x1 (chunks >= 1 chunks of 16) times the 4 interleaved weight rows of a group at *w: acc_r[i] = row
 * r . weight row i (modulo 2^32); *w advances past the group. */
static inline void dot_2x4(const int8_t *x0, const int8_t *x1, const int8_t **w, int32_t chunks, int32x4_t *acc0,
                           int32x4_t *acc1)
{
    const int8_t *wp = *w;
#if defined(__GNUC__) && !defined(__clang__)
    /* VMLADAV writes even registers only: 8 accumulators take all of r0, r2, ..., r12 and lr, so the loop counts
     * with subs/bne rather than a low-overhead loop (with intrinsics GCC spills an accumulator). Fixed registers:
     * GCC's allocator does not always find 8 even ones by itself. The first chunk starts the sums. */
    register int32_t a0 __asm__("r0");
    register int32_t a1 __asm__("r2");
    register int32_t a2 __asm__("r4");
    register int32_t a3 __asm__("r6");
    register int32_t b0 __asm__("r8");
    register int32_t b1 __asm__("r10");
    register int32_t b2 __asm__("r12");
    register int32_t b3 __asm__("lr");
    register const int8_t *r_x0 __asm__("r1") = x0;
    register const int8_t *r_x1 __asm__("r3") = x1;
    register const int8_t *r_w __asm__("r5") = wp;
    register int32_t r_n __asm__("r9") = chunks;
    int32x4_t va, vb;
    __asm__("vldrb.8 q0, [%[x0]], #16\n\t"
            "vldrb.8 q1, [%[x1]], #16\n\t"
            "vldrb.8 q2, [%[w]], #16\n\t"
            "vmladav.s8 %[a0], q0, q2\n\t"
            "vmladav.s8 %[b0], q1, q2\n\t"
            "vldrb.8 q2, [%[w]], #16\n\t"
            "vmladav.s8 %[a1], q0, q2\n\t"
            "vmladav.s8 %[b1], q1, q2\n\t"
            "vldrb.8 q2, [%[w]], #16\n\t"
            "vmladav.s8 %[a2], q0, q2\n\t"
            "vmladav.s8 %[b2], q1, q2\n\t"
            "vldrb.8 q2, [%[w]], #16\n\t"
            "vmladav.s8 %[a3], q0, q2\n\t"
            "vmladav.s8 %[b3], q1, q2\n\t"
            "subs %[n], %[n], #1\n\t"
            "beq 2f\n"
            "1:\n\t"
            "vldrb.8 q0, [%[x0]], #16\n\t"
            "vldrb.8 q1, [%[x1]], #16\n\t"
            "vldrb.8 q2, [%[w]], #16\n\t"
            "vmladava.s8 %[a0], q0, q2\n\t"
            "vmladava.s8 %[b0], q1, q2\n\t"
            "vldrb.8 q2, [%[w]], #16\n\t"
            "vmladava.s8 %[a1], q0, q2\n\t"
            "vmladava.s8 %[b1], q1, q2\n\t"
            "vldrb.8 q2, [%[w]], #16\n\t"
            "vmladava.s8 %[a2], q0, q2\n\t"
            "vmladava.s8 %[b2], q1, q2\n\t"
            "vldrb.8 q2, [%[w]], #16\n\t"
            "vmladava.s8 %[a3], q0, q2\n\t"
            "vmladava.s8 %[b3], q1, q2\n\t"
            "subs %[n], %[n], #1\n\t"
            "bne 1b\n"
            "2:\n\t" /* vmov Q[2], Q[0], Rt, Rt2 puts Rt in lane 0 and Rt2 in lane 2 (QEMU, GCC 13's vcreateq) */
            "vmov %q[va][2], %q[va][0], %[a0], %[a2]\n\t"
            "vmov %q[va][3], %q[va][1], %[a1], %[a3]\n\t"
            "vmov %q[vb][2], %q[vb][0], %[b0], %[b2]\n\t"
            "vmov %q[vb][3], %q[vb][1], %[b1], %[b3]"
            : [a0] "=&Te"(a0), [a1] "=&Te"(a1), [a2] "=&Te"(a2), [a3] "=&Te"(a3), [b0] "=&Te"(b0), [b1] "=&Te"(b1),
              [b2] "=&Te"(b2), [b3] "=&Te"(b3), [va] "=&w"(va), [vb] "=&w"(vb), [x0] "+r"(r_x0), [x1] "+r"(r_x1),
              [w] "+r"(r_w), [n] "+r"(r_n)
            :
            : "q0", "q1", "q2", "cc"); /* no "memory": nothing the asm reads is written while a block's
                                           * channels are computed (the rows were written before the call) */
    *acc0 = va;
    *acc1 = vb;
    wp = r_w;
#else
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, b0 = 0, b1 = 0, b2 = 0, b3 = 0;
    for (int32_t j = 0; j < chunks; ++j) {
        const int8x16_t v0 = vldrbq_s8(x0);
        const int8x16_t v1 = vldrbq_s8(x1);
        int8x16_t k = vldrbq_s8(wp);
        a0 = vmladavaq_s8(a0, v0, k);
        b0 = vmladavaq_s8(b0, v1, k);
        k = vldrbq_s8(wp + 16);
        a1 = vmladavaq_s8(a1, v0, k);
        b1 = vmladavaq_s8(b1, v1, k);
        k = vldrbq_s8(wp + 32);
        a2 = vmladavaq_s8(a2, v0, k);
        b2 = vmladavaq_s8(b2, v1, k);
        k = vldrbq_s8(wp + 48);
        a3 = vmladavaq_s8(a3, v0, k);
        b3 = vmladavaq_s8(b3, v1, k);
        x0 += 16;
        x1 += 16;
        wp += 64;
    }
    int32x4_t va = vdupq_n_s32(a0);
    va = vsetq_lane_s32(a1, va, 1);
    va = vsetq_lane_s32(a2, va, 2);
    *acc0 = vsetq_lane_s32(a3, va, 3);
    int32x4_t vb = vdupq_n_s32(b0);
    vb = vsetq_lane_s32(b1, vb, 1);
    vb = vsetq_lane_s32(b2, vb, 2);
    *acc1 = vsetq_lane_s32(b3, vb, 3);
#endif
    *w = wp;
}

/* One row: as dot_2x4. */
static inline int32x4_t dot_1x4(const int8_t *x0, const int8_t **w, int32_t chunks)
{
    const int8_t *wp = *w;
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    for (int32_t j = 0; j < chunks; ++j) {
        const int8x16_t v0 = vldrbq_s8(x0);
        a0 = vmladavaq_s8(a0, v0, vldrbq_s8(wp));
        a1 = vmladavaq_s8(a1, v0, vldrbq_s8(wp + 16));
        a2 = vmladavaq_s8(a2, v0, vldrbq_s8(wp + 32));
        a3 = vmladavaq_s8(a3, v0, vldrbq_s8(wp + 48));
        x0 += 16;
        wp += 64;
    }
    *w = wp;
    int32x4_t v = vdupq_n_s32(a0);
    v = vsetq_lane_s32(a1, v, 1);
    v = vsetq_lane_s32(a2, v, 2);
    return vsetq_lane_s32(a3, v, 3);
}

/* clamp(MultiplyByQuantizedMultiplier(acc + bias) + zp) per lane; left = max(shift, 0), right = min(shift, 0). */
typedef struct {
    int32_t zp;
    int32_t act_min;
    int32_t act_max;
} out_quant;

static inline int32x4_t requantize4(int32x4_t acc, int32x4_t bias, int32x4_t mult, int32x4_t left, int32x4_t right,
                                    const out_quant *q)
{
    int32x4_t x = vshlq_s32(vaddq_s32(acc, bias), left); /* wraps, as the portable (uint32) x << left */
    x = vqrdmulhq_s32(x, mult);                          /* gemmlowp SaturatingRoundingDoublingHighMul */
    /* RoundingDivideByPOT rounds ties away from zero, VRSHL rounds them up: first subtract 1 from the negative
     * values where right < 0 (the sign bit of x & right) */
    x = vqaddq_s32(x, vshrq_n_s32(vandq_s32(x, right), 31));
    x = vrshlq_s32(x, right);
    return vminq_s32(vmaxq_s32(vaddq_n_s32(x, q->zp), vdupq_n_s32(q->act_min)), vdupq_n_s32(q->act_max));
}

/* Output channels of one block: rows (1 or 2) im2col rows at col0, col1; outputs at out0, out0 + channels.
 * Not inlined: the 8 accumulators of dot_2x4 need every register but sp and pc. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void
block_channels(const block_job *job, const int8_t *col0, const int8_t *col1, int32_t rows, const int8_t *filter,
               int8_t *out0)
{
    const int8_t *w = filter;
    const int32_t *bp = job->bias;
    const int32_t *mp = job->multiplier;
    const int32_t *sp = job->shift;
    int8_t *out1 = out0 + job->channels;
    const int32x4_t zero = vdupq_n_s32(0);
    const int32_t chunks = job->chunks;
    const int32_t channels = job->channels;
    out_quant oq;
    oq.zp = job->zp;
    oq.act_min = job->act_min;
    oq.act_max = job->act_max;
    const out_quant *q = &oq;
    int32x4_t acc0;
    int32x4_t acc1;
    int32_t c = 0;
    if (rows == 2) {
        for (; c + 4 <= channels; c += 4) {
            dot_2x4(col0, col1, &w, chunks, &acc0, &acc1);
            const int32x4_t bias = vldrwq_s32(bp);
            const int32x4_t mult = vldrwq_s32(mp);
            const int32x4_t shift = vldrwq_s32(sp);
            bp += 4;
            mp += 4;
            sp += 4;
            const int32x4_t left = vmaxq_s32(shift, zero);
            const int32x4_t right = vminq_s32(shift, zero);
            vstrbq_s32(out0, requantize4(acc0, bias, mult, left, right, q));
            vstrbq_s32(out1, requantize4(acc1, bias, mult, left, right, q));
            out0 += 4;
            out1 += 4;
        }
    } else {
        for (; c + 4 <= channels; c += 4) {
            acc0 = dot_1x4(col0, &w, chunks);
            const int32x4_t bias = vldrwq_s32(bp);
            const int32x4_t mult = vldrwq_s32(mp);
            const int32x4_t shift = vldrwq_s32(sp);
            bp += 4;
            mp += 4;
            sp += 4;
            vstrbq_s32(out0, requantize4(acc0, bias, mult, vmaxq_s32(shift, zero), vminq_s32(shift, zero), q));
            out0 += 4;
        }
    }
    if (c < channels) { /* the last 1..3 channels: the weights have zero rows up to 4 */
        const mve_pred16_t p = vctp32q((uint32_t)(channels - c));
        if (rows == 2) {
            dot_2x4(col0, col1, &w, chunks, &acc0, &acc1);
        } else {
            acc0 = dot_1x4(col0, &w, chunks);
            acc1 = acc0;
        }
        const int32x4_t bias = vldrwq_z_s32(bp, p);
        const int32x4_t mult = vldrwq_z_s32(mp, p);
        const int32x4_t shift = vldrwq_z_s32(sp, p);
        const int32x4_t left = vmaxq_s32(shift, zero);
        const int32x4_t right = vminq_s32(shift, zero);
        vstrbq_p_s32(out0, requantize4(acc0, bias, mult, left, right, q), p);
        if (rows == 2) {
            vstrbq_p_s32(out1, requantize4(acc1, bias, mult, left, right, q), p);
        }
    }
}

#else /* plain C: the same algorithm, the same memory accesses */

static void block_channels(const block_job *job, const int8_t *col0, const int8_t *col1, int32_t rows,
                           const int8_t *filter, int8_t *out0)
{
    const int8_t *w = filter;
    for (int32_t c = 0; c < job->channels; c += 4) {
        uint32_t acc[2][4] = {{0}};
        for (int32_t j = 0; j < job->chunks; ++j) {
            for (int32_t i = 0; i < 4; ++i) {
                for (int32_t r = 0; r < rows; ++r) {
                    const int8_t *x = (r == 0 ? col0 : col1) + j * 16;
                    uint32_t s = 0;
                    for (int32_t e = 0; e < 16; ++e) {
                        s += (uint32_t)((int32_t)x[e] * (int32_t)w[i * 16 + e]);
                    }
                    acc[r][i] += s;
                }
            }
            w += 64;
        }
        const int32_t n = MCUQ_MIN(4, job->channels - c);
        for (int32_t r = 0; r < rows; ++r) {
            int8_t *out = out0 + r * job->channels + c;
            for (int32_t i = 0; i < n; ++i) {
                const int32_t a = (int32_t)(acc[r][i] + (uint32_t)job->bias[c + i]);
                int32_t y = mcuq_requantize(a, job->multiplier[c + i], job->shift[c + i]) + job->zp;
                out[i] = (int8_t)MCUQ_CLAMP(y, job->act_min, job->act_max);
            }
        }
    }
}

#endif /* MCUQ_HAVE_MVE */

mcuq_status mcuq_conv2d_s8_mve(const mcuq_context *ctx, const mcuq_conv2d_params *params, const int8_t *input,
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
    if (ctx->buf == NULL || ctx->size < mcuq_conv2d_s8_mve_scratch_size(params)) {
        return MCUQ_ERR_ARGUMENT;
    }
    const int32_t kp = padded_depth(params);
    int8_t *col0 = (int8_t *)ctx->buf;
    int8_t *col1 = col0 + kp;
    const int32_t in_image = p.input.h * p.input.w * p.input.c;
    const int32_t pixels = p.input.n * p.output.h * p.output.w;
    block_job job;
    job.bias = bias;
    job.multiplier = p.quant.multiplier;
    job.shift = p.quant.shift;
    job.channels = p.output.c;
    job.chunks = kp / 16;
    job.zp = p.output_zp;
    job.act_min = p.activation.min;
    job.act_max = p.activation.max;

    int32_t b = 0; /* (b, oy, ox): the next pixel, in raster order */
    int32_t oy = 0;
    int32_t ox = 0;
    for (int32_t px = 0; px < pixels; px += MCUQ_CONV_MVE_BLOCK) {
        const int32_t rows = MCUQ_MIN(MCUQ_CONV_MVE_BLOCK, pixels - px);
        /* read: the block's windows into scratch */
        for (int32_t r = 0; r < rows; ++r) {
            im2col(&p, input + b * in_image, oy, ox, kp, r == 0 ? col0 : col1);
            if (++ox == p.output.w) {
                ox = 0;
                if (++oy == p.output.h) {
                    oy = 0;
                    ++b;
                }
            }
        }
        /* then write: the block's rows * output.c bytes */
        block_channels(&job, col0, col1, rows, filter, output + px * p.output.c);
    }
    return MCUQ_OK;
}
