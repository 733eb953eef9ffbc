/* CONV_2D, int8 activations, int4 weights, dsp path: the same bits as mcuq_conv2d_s8_lowbit with bits 4 (TFLite's
 * reference_integer_ops::ConvPerChannel on the unpacked values); see mcuq_lowbit.h.
 *
 * Algorithm. Blocks of MCUQ_S4_DSP_BLOCK output pixels: each pixel's window is copied (im2col) into scratch as
 * int16, padded taps as input_zp, K rounded up to a multiple of 8 with zeros, the block's pixels interleaved by
 * groups of 8 values (group g of pixel p at int16 (g * BLOCK + p) * 8). Then per output channel, one word of
 * weights (8 values) is unpacked into four SXTB16 pairs (two ANDs, four SXTB16) that each pixel multiplies with
 * four SMLAD. Weight layout: mcuq_s4_fast.h with G = 8 and pos = {0, 4, 2, 6, 1, 5, 3, 7}, so that the pairs
 * are (w0, w1), (w2, w3), (w4, w5), (w6, w7): the input's natural order.
 * bias (never NULL) is the folded bias[c] - input_zp * sum(w[c]); the products of raw int8 values wrap modulo
 * 2^32 and the final sum is TFLite's int32 accumulator. Without the DSP extension the same algorithm runs in plain
 * C. The output must not overlap the input. */
#include "mcuq_lowbit.h"
#include "mcuq_lowbit_common.h"
#include "mcuq_s4_fast.h"
#include "../internal/mcuq_window.h"

#define BLOCK MCUQ_S4_DSP_BLOCK

static const uint8_t POS[8] = {0, 4, 2, 6, 1, 5, 3, 7};

static int32_t depth_of(const mcuq_conv2d_lowbit_params *p)
{
    const int64_t k = (int64_t)p->window.filter.h * p->window.filter.w * p->input.c;
    return k >= MCUQ_S4_FAST_MAX_DEPTH ? 0 : (int32_t)k;
}

int32_t mcuq_conv2d_s8_s4_dsp_scratch_size(const mcuq_conv2d_lowbit_params *params)
{
    if (params == NULL || params->window.filter.h <= 0 || params->window.filter.w <= 0 || params->input.c <= 0) {
        return 0;
    }
    const int32_t k = depth_of(params);
    return (k + 7) / 8 * 8 * 2 * BLOCK;
}

/* The window of output pixel (oy, ox) into the block's slot `slot`. */
static void im2col(int16_t *col, int32_t slot, const int8_t *image, const mcuq_conv2d_lowbit_params *p, int32_t oy,
                   int32_t ox)
{
    const int32_t iy0 = oy * p->window.stride.h - p->window.pad.h;
    const int32_t ix0 = ox * p->window.stride.w - p->window.pad.w;
    const int32_t cin = p->input.c;
    const int16_t zp = (int16_t)p->input_zp;
    int16_t *d = col + slot * 8;
    int32_t i = 0; /* index within the current group of 8 */
    for (int32_t ky = 0; ky < p->window.filter.h; ++ky) {
        const int32_t iy = iy0 + ky * p->window.dilation.h;
        for (int32_t kx = 0; kx < p->window.filter.w; ++kx) {
            const int32_t ix = ix0 + kx * p->window.dilation.w;
            const int inside = iy >= 0 && iy < p->input.h && ix >= 0 && ix < p->input.w;
            const int8_t *src = image + (inside ? (iy * p->input.w + ix) * cin : 0);
            for (int32_t c = 0; c < cin; ++c) {
                d[i] = inside ? (int16_t)src[c] : zp;
                if (++i == 8) {
                    i = 0;
                    d += 8 * BLOCK;
                }
            }
        }
    }
    if (i != 0) {
        for (; i < 8; ++i) {
            d[i] = 0;
        }
    }
}

/* Zeros into slot `slot` (a block's unused pixels: computed, never stored). */
static void zero_slot(int16_t *col, int32_t slot, int32_t groups)
{
    for (int32_t g = 0; g < groups; ++g) {
        for (int32_t i = 0; i < 8; ++i) {
            col[(g * BLOCK + slot) * 8 + i] = 0;
        }
    }
}

/* sum over one group of 8 of the pixel's int16 values at x times the unpacked weight word w (16 times each). */
#define MCUQ_S4_GROUP(acc, x)                                                                                          \
    acc = mcuq_smlad(l0, mcuq_read_u32((x) + 0), acc);                                                                 \
    acc = mcuq_smlad(l1, mcuq_read_u32((x) + 2), acc);                                                                 \
    acc = mcuq_smlad(h0, mcuq_read_u32((x) + 4), acc);                                                                 \
    acc = mcuq_smlad(h1, mcuq_read_u32((x) + 6), acc);

#define MCUQ_S4_UNPACK(word)                                                                                           \
    const uint32_t lo = ((word) << 4) & 0xF0F0F0F0u;                                                                   \
    const uint32_t hi = (word)&0xF0F0F0F0u;                                                                            \
    const uint32_t l0 = mcuq_sxtb16(lo);                                                                               \
    const uint32_t l1 = mcuq_sxtb16_ror8(lo);                                                                          \
    const uint32_t h0 = mcuq_sxtb16(hi);                                                                               \
    const uint32_t h1 = mcuq_sxtb16_ror8(hi);

mcuq_status mcuq_conv2d_s8_s4_dsp(const mcuq_context *ctx, const mcuq_conv2d_lowbit_params *params, const int8_t *input,
                                  const uint8_t *filter, const int32_t *bias, int8_t *output)
{
    const mcuq_status status =
        mcuq_conv2d_lowbit_check(ctx, params, input, filter, output, mcuq_conv2d_s8_s4_dsp_scratch_size(params), 0);
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
    const int32_t km = k / 8 * 8; /* values a channel in whole groups */
    const int32_t t = k - km;     /* the rest, gathered from the tails */
    const int32_t gm = km / 8;
    const int32_t groups = (k + 7) / 8;
    const int32_t tails = p.output.c * km; /* nibble index of channel 0's tail */
    int16_t *col = (int16_t *)ctx->buf;
    const int32_t in_image = p.input.h * p.input.w * p.input.c;
    const int32_t pixels = p.output.h * p.output.w;

    for (int32_t b = 0; b < p.input.n; ++b) {
        const int8_t *image = input + b * in_image;
        int8_t *out = output + b * pixels * p.output.c;
        for (int32_t px = 0; px < pixels; px += BLOCK) {
            const int32_t n = MCUQ_MIN(BLOCK, pixels - px);
            for (int32_t s = 0; s < n; ++s) {
                im2col(col, s, image, &p, (px + s) / p.output.w, (px + s) % p.output.w);
            }
            for (int32_t s = n; s < BLOCK; ++s) {
                zero_slot(col, s, groups);
            }
            for (int32_t oc = 0; oc < p.output.c; ++oc) {
                const uint8_t *w = filter + oc * (km / 2);
                const int16_t *x = col;
                uint32_t a0 = 0;
                uint32_t a1 = 0;
                uint32_t a2 = 0;
                uint32_t a3 = 0;
                for (int32_t g = 0; g < gm; ++g) {
                    const uint32_t word = mcuq_read_u32(w);
                    w += 4;
                    MCUQ_S4_UNPACK(word)
                    MCUQ_S4_GROUP(a0, x)
                    MCUQ_S4_GROUP(a1, x + 8)
                    MCUQ_S4_GROUP(a2, x + 16)
                    MCUQ_S4_GROUP(a3, x + 24)
                    x += 8 * BLOCK;
                }
                if (t != 0) {
                    const uint32_t word = mcuq_s4_tail_word(filter, tails + oc * t, t, POS);
                    MCUQ_S4_UNPACK(word)
                    MCUQ_S4_GROUP(a0, x)
                    MCUQ_S4_GROUP(a1, x + 8)
                    MCUQ_S4_GROUP(a2, x + 16)
                    MCUQ_S4_GROUP(a3, x + 24)
                }
                const uint32_t acc[BLOCK] = {a0, a1, a2, a3};
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
