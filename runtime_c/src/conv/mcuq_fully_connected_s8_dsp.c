/* FULLY_CONNECTED, int8, dsp path: four output units per pass share each input word (SXTB16/SMLAD), no scratch
 * (see mcuq_conv.h, mcuq_fully_connected_s8_dsp).
 *
 * Filter layout (mcuq/kernels/conv_dsp.py, fc_dsp_weights): rows zero-padded to P = 4 * ceil(input_size / 4),
 * then units in groups of four (the last group has output_size % 4 units when that is not 0); group u0 starts
 * at byte u0 * P and holds, for each 4-byte group of inputs, one word per unit of the group: the word of unit
 * u0 + j for inputs [4i, 4i + 4) is at u0 * P + (i * width + j) * 4. One load pointer walks a whole pass.
 *
 * Arithmetic: bias is folded (bias - input_zp * sum(w)), the sums of raw int8 products wrap modulo 2^32 (SMLAD;
 * uint32_t in C): the final sum is TFLite's int32 accumulator. Outputs are written while the input is still
 * being read: the output must not overlap the input. */
#include "mcuq_conv.h"
#include "../internal/mcuq_simd.h"
#include "../internal/mcuq_util.h"

int32_t mcuq_fully_connected_s8_dsp_scratch_size(const mcuq_fully_connected_params *params)
{
    (void)params;
    return 0;
}

/* TFLite's MultiplyByQuantizedMultiplier as mcuq_requantize computes it (the doubling high multiply in 64 bits),
 * with gemmlowp's RoundingDivideByPOT in 32 bits, (x >> r) + ((x & mask) > (mask >> 1) + (x < 0)), mask = 2^r - 1:
 * the same bits, fewer instructions (as mcuq_conv2d_s8_dsp.c). */
static int8_t finish(uint32_t acc, int32_t mult, int32_t shift, const mcuq_fully_connected_params *p)
{
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    const int32_t mask = (int32_t)((1u << right) - 1u);
    const int32_t xs = (int32_t)(acc << left);
    const int32_t high = (int32_t)(((int64_t)xs * mult + (INT64_C(1) << 30)) >> 31);
    const int32_t threshold = (mask >> 1) + (high < 0 ? 1 : 0);
    int32_t y = (high >> right) + ((high & mask) > threshold ? 1 : 0) + p->output_zp;
    y = MCUQ_CLAMP(y, p->activation.min, p->activation.max);
    return (int8_t)y;
}

/* The last n (1..3) input bytes, zero-padded to a word. */
static uint32_t tail_word(const int8_t *x, int32_t n)
{
    uint32_t v = 0;
    for (int32_t j = 0; j < n; ++j) {
        v |= (uint32_t)(uint8_t)x[j] << (8 * j);
    }
    return v;
}

/* One word of inputs v times the four units' words at w, into a[0..3]. */
static inline void step4(const uint32_t *w, uint32_t v, uint32_t a[4])
{
    const uint32_t xe = mcuq_sxtb16(v);
    const uint32_t xo = mcuq_sxtb16_ror8(v);
    const uint32_t w0 = w[0];
    const uint32_t w1 = w[1];
    const uint32_t w2 = w[2];
    const uint32_t w3 = w[3];
    a[0] = mcuq_smlad(mcuq_sxtb16_ror8(w0), xo, mcuq_smlad(mcuq_sxtb16(w0), xe, a[0]));
    a[1] = mcuq_smlad(mcuq_sxtb16_ror8(w1), xo, mcuq_smlad(mcuq_sxtb16(w1), xe, a[1]));
    a[2] = mcuq_smlad(mcuq_sxtb16_ror8(w2), xo, mcuq_smlad(mcuq_sxtb16(w2), xe, a[2]));
    a[3] = mcuq_smlad(mcuq_sxtb16_ror8(w3), xo, mcuq_smlad(mcuq_sxtb16(w3), xe, a[3]));
}

/* Four units: acc[j] += unit j's weights (interleaved at w) times x; returns w past the group. */
static const uint32_t *dot4(const uint32_t *w, const int8_t *x, int32_t full, int32_t rest, uint32_t acc[4])
{
    uint32_t a[4] = {acc[0], acc[1], acc[2], acc[3]};
    for (int32_t g = 0; g < full; ++g) {
        step4(w, mcuq_read_u32(x), a);
        x += 4;
        w += 4;
    }
    if (rest != 0) {
        step4(w, tail_word(x, rest), a);
        w += 4;
    }
    acc[0] = a[0];
    acc[1] = a[1];
    acc[2] = a[2];
    acc[3] = a[3];
    return w;
}

/* Unit j of a group of `width` units at w. */
static uint32_t dot1(const uint32_t *w, int32_t width, const int8_t *x, int32_t full, int32_t rest, uint32_t acc)
{
    for (int32_t g = 0; g < full; ++g) {
        const uint32_t v = mcuq_read_u32(x + 4 * g);
        acc = mcuq_smlad(mcuq_sxtb16(*w), mcuq_sxtb16(v), acc);
        acc = mcuq_smlad(mcuq_sxtb16_ror8(*w), mcuq_sxtb16_ror8(v), acc);
        w += width;
    }
    if (rest != 0) {
        const uint32_t v = tail_word(x + 4 * full, rest);
        acc = mcuq_smlad(mcuq_sxtb16(*w), mcuq_sxtb16(v), acc);
        acc = mcuq_smlad(mcuq_sxtb16_ror8(*w), mcuq_sxtb16_ror8(v), acc);
    }
    return acc;
}

mcuq_status mcuq_fully_connected_s8_dsp(const mcuq_context *ctx, const mcuq_fully_connected_params *params,
                                        const int8_t *input, const int8_t *filter, const int32_t *bias, int8_t *output)
{
    if (ctx == NULL || params == NULL || input == NULL || filter == NULL || bias == NULL || output == NULL ||
        params->quant.multiplier == NULL || params->quant.shift == NULL || ((uintptr_t)filter & 3u) != 0 ||
        ctx->size < mcuq_fully_connected_s8_dsp_scratch_size(params)) {
        return MCUQ_ERR_ARGUMENT;
    }
    const mcuq_fully_connected_params p = *params;
    if (p.batches < 0 || p.input_size <= 0 || p.output_size <= 0 || p.activation.min > p.activation.max ||
        (p.per_channel != 0 && p.per_channel != 1)) {
        return MCUQ_ERR_ARGUMENT;
    }
    if (p.weights_zp != 0) {
        return MCUQ_ERR_UNSUPPORTED;
    }
    const int32_t full = p.input_size / 4;
    const int32_t rest = p.input_size % 4;
    const int32_t step = p.per_channel;

    for (int32_t b = 0; b < p.batches; ++b) {
        const int8_t *x = input + b * p.input_size;
        int8_t *y = output + b * p.output_size;
        const uint32_t *w = (const uint32_t *)(const void *)filter;
        int32_t o = 0;
        for (; o + 4 <= p.output_size; o += 4) {
            uint32_t acc[4] = {(uint32_t)bias[o], (uint32_t)bias[o + 1], (uint32_t)bias[o + 2], (uint32_t)bias[o + 3]};
            w = dot4(w, x, full, rest, acc);
            for (int32_t j = 0; j < 4; ++j) {
                y[o + j] = finish(acc[j], p.quant.multiplier[(o + j) * step], p.quant.shift[(o + j) * step], &p);
            }
        }
        const int32_t width = p.output_size - o;
        for (int32_t j = 0; j < width; ++j) {
            const uint32_t acc = dot1(w + j, width, x, full, rest, (uint32_t)bias[o + j]);
            y[o + j] = finish(acc, p.quant.multiplier[(o + j) * step], p.quant.shift[(o + j) * step], &p);
        }
    }
    return MCUQ_OK;
}
