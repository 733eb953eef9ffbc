/* FULLY_CONNECTED, int8 activations, int4 weights, dsp path: the same bits as mcuq_fully_connected_s8_lowbit with
 * bits 4 and weights_zp 0 (TFLite's FullyConnected / FullyConnectedPerChannel on the unpacked values); see
 * mcuq_lowbit.h.
 *
 * Algorithm. Four units per pass share each 8 input values (two words, four SXTB16); each unit's word of 8
 * weights is unpacked with two ANDs and four SXTB16 into the matching pairs, four SMLAD. No scratch.
 * Weight layout: mcuq_s4_fast.h with G = 8 and pos = {0, 2, 4, 6, 1, 3, 5, 7} (byte i holds values i and i + 4,
 * so the pairs are (w0, w2), (w1, w3), (w4, w6), (w5, w7), SXTB16's pairs of the input words), and the whole
 * groups of a pass of `width` units (4, the last pass output_size % 4) interleaved: the word of group g of unit
 * u0 + j at byte u0 * Km / 2 + (g * width + j) * 4.
 * bias (never NULL) is the folded bias[o] - input_zp * sum(w[o]); the products of raw int8 values wrap modulo 2^32
 * and the final sum is TFLite's int32 accumulator. Without the DSP extension the same algorithm runs in plain C.
 * The output must not overlap the input. */
#include "mcuq_lowbit.h"
#include "mcuq_lowbit_common.h"
#include "mcuq_s4_fast.h"

#if defined(__GNUC__)
#define MCUQ_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define MCUQ_ALWAYS_INLINE inline
#endif

static const uint8_t POS[8] = {0, 2, 4, 6, 1, 3, 5, 7};

int32_t mcuq_fully_connected_s8_s4_dsp_scratch_size(const mcuq_fully_connected_lowbit_params *params)
{
    (void)params;
    return 0;
}

/* Up to 8 int8 inputs (n of them, zeros after) as two words. */
static void tail_words(const int8_t *x, int32_t n, uint32_t v[2])
{
    v[0] = 0;
    v[1] = 0;
    for (int32_t j = 0; j < n; ++j) {
        v[j >> 2] |= (uint32_t)(uint8_t)x[j] << (8 * (j & 3));
    }
}

/* acc += the 8 weights of `word` times the inputs' pairs xe0, xo0, xe1, xo1 (16 times each). */
static MCUQ_ALWAYS_INLINE uint32_t step(uint32_t word, uint32_t xe0, uint32_t xo0, uint32_t xe1, uint32_t xo1,
                                        uint32_t acc)
{
    const uint32_t lo = (word << 4) & 0xF0F0F0F0u;
    const uint32_t hi = word & 0xF0F0F0F0u;
    acc = mcuq_smlad(mcuq_sxtb16(lo), xe0, acc);
    acc = mcuq_smlad(mcuq_sxtb16_ror8(lo), xo0, acc);
    acc = mcuq_smlad(mcuq_sxtb16(hi), xe1, acc);
    return mcuq_smlad(mcuq_sxtb16_ror8(hi), xo1, acc);
}

/* A pass of `width` (1..4) units: acc[j] = 16 * sum of unit u0 + j's weights times x. */
static MCUQ_ALWAYS_INLINE void pass(const uint8_t *filter, int32_t u0, int32_t width, const int8_t *x, int32_t gm,
                                    int32_t t, int32_t tails, uint32_t acc[4])
{
    const uint8_t *w = filter + u0 * gm * 4;
    uint32_t a[4] = {0, 0, 0, 0};
    for (int32_t g = 0; g < gm; ++g) {
        const uint32_t x0 = mcuq_read_u32(x + 8 * g);
        const uint32_t x1 = mcuq_read_u32(x + 8 * g + 4);
        const uint32_t xe0 = mcuq_sxtb16(x0);
        const uint32_t xo0 = mcuq_sxtb16_ror8(x0);
        const uint32_t xe1 = mcuq_sxtb16(x1);
        const uint32_t xo1 = mcuq_sxtb16_ror8(x1);
        for (int32_t j = 0; j < width; ++j) {
            a[j] = step(mcuq_read_u32(w + 4 * j), xe0, xo0, xe1, xo1, a[j]);
        }
        w += 4 * width;
    }
    if (t != 0) {
        uint32_t v[2];
        tail_words(x + 8 * gm, t, v);
        const uint32_t xe0 = mcuq_sxtb16(v[0]);
        const uint32_t xo0 = mcuq_sxtb16_ror8(v[0]);
        const uint32_t xe1 = mcuq_sxtb16(v[1]);
        const uint32_t xo1 = mcuq_sxtb16_ror8(v[1]);
        for (int32_t j = 0; j < width; ++j) {
            const uint32_t word = mcuq_s4_tail_word(filter, tails + (u0 + j) * t, t, POS);
            a[j] = step(word, xe0, xo0, xe1, xo1, a[j]);
        }
    }
    for (int32_t j = 0; j < 4; ++j) {
        acc[j] = a[j];
    }
}

mcuq_status mcuq_fully_connected_s8_s4_dsp(const mcuq_context *ctx, const mcuq_fully_connected_lowbit_params *params,
                                           const int8_t *input, const uint8_t *filter, const int32_t *bias,
                                           int8_t *output)
{
    const mcuq_status status = mcuq_fully_connected_lowbit_check(
        ctx, params, input, filter, bias, output, mcuq_fully_connected_s8_s4_dsp_scratch_size(params), 1);
    if (status != MCUQ_OK) {
        return status;
    }
    const mcuq_fully_connected_lowbit_params p = *params;
    if (p.bits != 4 || p.weights_zp != 0 || p.input_size >= MCUQ_S4_FAST_MAX_DEPTH) {
        return MCUQ_ERR_UNSUPPORTED;
    }
    const int32_t k = p.input_size;
    const int32_t gm = k / 8;
    const int32_t t = k - gm * 8;
    const int32_t tails = p.output_size * gm * 8;
    const int32_t step_q = p.per_channel;
    for (int32_t b = 0; b < p.batches; ++b) {
        const int8_t *x = input + b * k;
        int8_t *y = output + b * p.output_size;
        for (int32_t u0 = 0; u0 < p.output_size; u0 += 4) {
            const int32_t width = MCUQ_MIN(4, p.output_size - u0);
            uint32_t acc[4];
            /* cppcheck-suppress knownConditionTrueFalse ; MCUQ_MIN(...) >= 1: a false positive */
            if (width == 4) {
                pass(filter, u0, 4, x, gm, t, tails, acc);
            } else {
                pass(filter, u0, width, x, gm, t, tails, acc);
            }
            for (int32_t j = 0; j < width; ++j) {
                const int32_t o = u0 + j;
                y[o] = mcuq_s4_finish(bias[o], acc[j], p.quant.multiplier[o * step_q], p.quant.shift[o * step_q],
                                      p.output_zp, p.activation.min, p.activation.max);
            }
        }
    }
    return MCUQ_OK;
}
