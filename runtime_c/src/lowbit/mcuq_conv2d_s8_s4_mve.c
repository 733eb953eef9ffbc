/* CONV_2D, int8 activations, int4 weights, Helium (MVE) path: the same bits as mcuq_conv2d_s8_lowbit with bits 4;
 * see mcuq_lowbit.h.
 *
 * Algorithm. Blocks of MCUQ_S4_MVE_BLOCK output pixels: each pixel's window is copied (im2col) into scratch as int8,
 * padded taps as input_zp, K rounded up to KP, a multiple of 32, with zeros (pixel p's row at p * KP). Per output
 * channel, each 16-byte chunk of weights (32 values) is loaded once, unpacked with one VSHL and one VAND, and
 * multiplied into every pixel of the block with two VMLADAVA.S8 (mcuq_s4_mve.h). A channel's last K % 32 values
 * come from the tails (mcuq_s4_fast.h, G = 32), gathered into one chunk per channel and block.
 * bias (never NULL) is the folded bias[c] - input_zp * sum(w[c]); the sums wrap modulo 2^32 and the final sum is
 * TFLite's int32 accumulator. Without MVE the same algorithm runs in plain C. The output must not overlap the
 * input. */
#include <string.h>

#include "mcuq_lowbit.h"
#include "mcuq_lowbit_common.h"
#include "mcuq_s4_mve.h"

#define BLOCK MCUQ_S4_MVE_BLOCK

static int32_t depth_of(const mcuq_conv2d_lowbit_params *p)
{
    const int64_t k = (int64_t)p->window.filter.h * p->window.filter.w * p->input.c;
    return k >= MCUQ_S4_FAST_MAX_DEPTH ? 0 : (int32_t)k;
}

int32_t mcuq_conv2d_s8_s4_mve_scratch_size(const mcuq_conv2d_lowbit_params *params)
{
    if (params == NULL || params->window.filter.h <= 0 || params->window.filter.w <= 0 || params->input.c <= 0) {
        return 0;
    }
    return (depth_of(params) + 31) / 32 * 32 * BLOCK;
}

/* The window of output pixel (oy, ox) into row `row` (kp bytes). */
static void im2col(int8_t *row, const int8_t *image, const mcuq_conv2d_lowbit_params *p, int32_t oy, int32_t ox,
                   int32_t kp)
{
    const int32_t iy0 = oy * p->window.stride.h - p->window.pad.h;
    const int32_t ix0 = ox * p->window.stride.w - p->window.pad.w;
    const int32_t cin = p->input.c;
    int8_t *d = row;
    for (int32_t ky = 0; ky < p->window.filter.h; ++ky) {
        const int32_t iy = iy0 + ky * p->window.dilation.h;
        for (int32_t kx = 0; kx < p->window.filter.w; ++kx) {
            const int32_t ix = ix0 + kx * p->window.dilation.w;
            if (iy >= 0 && iy < p->input.h && ix >= 0 && ix < p->input.w) {
                memcpy(d, image + (iy * p->input.w + ix) * cin, (size_t)cin);
            } else {
                memset(d, p->input_zp, (size_t)cin);
            }
            d += cin;
        }
    }
    memset(d, 0, (size_t)(row + kp - d));
}

mcuq_status mcuq_conv2d_s8_s4_mve(const mcuq_context *ctx, const mcuq_conv2d_lowbit_params *params, const int8_t *input,
                                  const uint8_t *filter, const int32_t *bias, int8_t *output)
{
    const mcuq_status status =
        mcuq_conv2d_lowbit_check(ctx, params, input, filter, output, mcuq_conv2d_s8_s4_mve_scratch_size(params), 0);
    if (status != MCUQ_OK) {
        return status;
    }
    if (bias == NULL) {
        return MCUQ_ERR_ARGUMENT;
    }
    const mcuq_conv2d_lowbit_params p = *params;
    const int32_t k = depth_of(&p);
    if (p.bits != 4 || k == 0) {
        return MCUQ_ERR_UNSUPPORTED;
    }
    const int32_t km = k / 32 * 32;
    const int32_t t = k - km;
    const int32_t cm = km / 32; /* whole chunks a channel */
    const int32_t kp = (k + 31) / 32 * 32;
    const int32_t tails = p.output.c * km;
    int8_t *col = (int8_t *)ctx->buf;
    const int32_t in_image = p.input.h * p.input.w * p.input.c;
    const int32_t pixels = p.output.h * p.output.w;
    uint8_t tail[16];

    for (int32_t b = 0; b < p.input.n; ++b) {
        const int8_t *image = input + b * in_image;
        int8_t *out = output + b * pixels * p.output.c;
        for (int32_t px = 0; px < pixels; px += BLOCK) {
            const int32_t n = MCUQ_MIN(BLOCK, pixels - px);
            for (int32_t s = 0; s < BLOCK; ++s) {
                /* cppcheck-suppress knownConditionTrueFalse ; MCUQ_MIN(...) >= 1: a false positive */
                if (s < n) {
                    im2col(col + s * kp, image, &p, (px + s) / p.output.w, (px + s) % p.output.w, kp);
                } else {
                    memset(col + s * kp, 0, (size_t)kp); /* computed, never stored */
                }
            }
            for (int32_t oc = 0; oc < p.output.c; ++oc) {
                const uint8_t *w = filter + oc * (km / 2);
                if (t != 0) {
                    mcuq_s4_tail_chunk(tail, filter, tails + oc * t, t);
                }
                uint32_t acc[BLOCK];
#if MCUQ_HAVE_MVE
                const int8_t *x = col;
                int32_t a0 = 0;
                int32_t a1 = 0;
                int32_t a2 = 0;
                int32_t a3 = 0;
                for (int32_t c = 0; c <= cm; ++c) {
                    const uint8_t *wc = w + 16 * c;
                    if (c == cm) {
                        if (t == 0) {
                            break;
                        }
                        wc = tail;
                    }
                    const int8x16_t v = vldrbq_s8((const int8_t *)wc);
                    const int8x16_t lo = vshlq_n_s8(v, 4);
                    const int8x16_t hi = vandq_s8(v, vdupq_n_s8((int8_t)0xF0));
                    a0 = vmladavaq_s8(a0, lo, vldrbq_s8(x));
                    a0 = vmladavaq_s8(a0, hi, vldrbq_s8(x + 16));
                    a1 = vmladavaq_s8(a1, lo, vldrbq_s8(x + kp));
                    a1 = vmladavaq_s8(a1, hi, vldrbq_s8(x + kp + 16));
                    a2 = vmladavaq_s8(a2, lo, vldrbq_s8(x + 2 * kp));
                    a2 = vmladavaq_s8(a2, hi, vldrbq_s8(x + 2 * kp + 16));
                    a3 = vmladavaq_s8(a3, lo, vldrbq_s8(x + 3 * kp));
                    a3 = vmladavaq_s8(a3, hi, vldrbq_s8(x + 3 * kp + 16));
                    x += 32;
                }
                acc[0] = (uint32_t)a0;
                acc[1] = (uint32_t)a1;
                acc[2] = (uint32_t)a2;
                acc[3] = (uint32_t)a3;
#else
                for (int32_t s = 0; s < BLOCK; ++s) {
                    uint32_t a = 0;
                    for (int32_t c = 0; c < cm; ++c) {
                        a = mcuq_s4_c_chunk(a, w + 16 * c, col + s * kp + 32 * c);
                    }
                    if (t != 0) {
                        a = mcuq_s4_c_chunk(a, tail, col + s * kp + 32 * cm);
                    }
                    acc[s] = a;
                }
#endif
                for (int32_t s = 0; s < n; ++s) {
                    out[(px + s) * p.output.c + oc] =
                        mcuq_s4_finish(bias[oc], acc[s], p.quant.multiplier[oc], p.quant.shift[oc], p.output_zp,
                                       p.activation.min, p.activation.max);
                }
            }
        }
    }
    return MCUQ_OK;
}
