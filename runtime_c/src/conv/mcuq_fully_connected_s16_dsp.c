/* FULLY_CONNECTED, 16x8, dsp path: four output units per pass share each pair of input words (SXTB16 on the
 * weights, SMLAD on pairs of int16), no scratch (see mcuq_conv.h, mcuq_fully_connected_s16_dsp).
 *
 * Filter layout (mcuq/kernels/conv16_fast.py, fc16_dsp_weights): mcuq_fully_connected_s8_dsp's (rows zero-padded
 * to P = 4 * ceil(input_size / 4), units in groups of four, the last one output_size % 4 wide, the 4-byte words of
 * a group's units interleaved: the word of unit u0 + j for inputs [4i, 4i + 4) at byte u0 * P + (i * width + j) *
 * 4), with the bytes of every word in the order (w0, w2, w1, w3), so that SXTB16 gives (w0, w1) and SXTB16 ror 8
 * gives (w2, w3), the pairs of the input words (x0, x1) and (x2, x3).
 *
 * Arithmetic: |w * x| <= 2^22, so 32-bit SMLAD sums of at most CHUNK groups of four inputs cannot overflow; they
 * are added into an int64 accumulator that starts at the bias: the portable kernel's exact sum, for either
 * accumulator (acc64), requantized by mcuq_s16_requantize. Only weights_zp 0 (MCUQ_ERR_UNSUPPORTED otherwise). */
#include "mcuq_conv.h"
#include "../internal/mcuq_conv_s16.h"
#include "../internal/mcuq_conv_s16_dsp.h"
#include "../internal/mcuq_simd.h"

#define CHUNK 127 /* groups of 4 products per 32-bit partial sum: 508 * 2^22 < 2^31 */

#if defined(__GNUC__)
#define MCUQ_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define MCUQ_ALWAYS_INLINE inline
#endif

int32_t mcuq_fully_connected_s16_dsp_scratch_size(const mcuq_fully_connected_s16_params *params)
{
    (void)params;
    return 0;
}

/* Input words i (inputs 4i .. 4i + 3): full groups read in place; the last, partial one zero-padded. */
typedef struct {
    uint32_t lo; /* (x0, x1) */
    uint32_t hi; /* (x2, x3) */
} words;

static words tail_words(const int16_t *x, int32_t n)
{
    int16_t v[4] = {0, 0, 0, 0};
    for (int32_t j = 0; j < n; ++j) {
        v[j] = x[j];
    }
    words r;
    r.lo = mcuq_read_u32(v);
    r.hi = mcuq_read_u32(v + 2);
    return r;
}

/* a += the word w (bytes w0, w2, w1, w3) times the inputs xw. */
static MCUQ_ALWAYS_INLINE uint32_t mac4(uint32_t w, words xw, uint32_t a)
{
    return mcuq_smlad(mcuq_sxtb16_ror8(w), xw.hi, mcuq_smlad(mcuq_sxtb16(w), xw.lo, a));
}

/* Four units: acc[j] += unit j's dot product with x (full groups of four inputs, then rest 0..3 inputs). */
static MCUQ_ALWAYS_INLINE const int8_t *dot4(const int8_t *w, const int16_t *x, int32_t full, int32_t rest,
                                             int64_t acc[4])
{
    int32_t g = 0;
    while (g < full) {
        const int32_t n = MCUQ_MIN(CHUNK, full - g);
        uint32_t a0 = 0;
        uint32_t a1 = 0;
        uint32_t a2 = 0;
        uint32_t a3 = 0;
        for (int32_t i = 0; i < n; ++i) {
            words xw;
            xw.lo = mcuq_read_u32(x);
            xw.hi = mcuq_read_u32(x + 2);
            a0 = mac4(mcuq_read_u32(w), xw, a0);
            a1 = mac4(mcuq_read_u32(w + 4), xw, a1);
            a2 = mac4(mcuq_read_u32(w + 8), xw, a2);
            a3 = mac4(mcuq_read_u32(w + 12), xw, a3);
            w += 16;
            x += 4;
        }
        acc[0] += (int32_t)a0;
        acc[1] += (int32_t)a1;
        acc[2] += (int32_t)a2;
        acc[3] += (int32_t)a3;
        g += n;
    }
    if (rest != 0) {
        const words xw = tail_words(x, rest);
        acc[0] += (int32_t)mac4(mcuq_read_u32(w), xw, 0);
        acc[1] += (int32_t)mac4(mcuq_read_u32(w + 4), xw, 0);
        acc[2] += (int32_t)mac4(mcuq_read_u32(w + 8), xw, 0);
        acc[3] += (int32_t)mac4(mcuq_read_u32(w + 12), xw, 0);
        w += 16;
    }
    return w;
}

/* One unit of a group `width` units wide whose words start at w. */
static int64_t dot1(const int8_t *w, int32_t width, const int16_t *x, int32_t full, int32_t rest, int64_t acc)
{
    int32_t g = 0;
    while (g < full) {
        const int32_t n = MCUQ_MIN(CHUNK, full - g);
        uint32_t a = 0;
        for (int32_t i = 0; i < n; ++i) {
            words xw;
            xw.lo = mcuq_read_u32(x);
            xw.hi = mcuq_read_u32(x + 2);
            a = mac4(mcuq_read_u32(w), xw, a);
            w += 4 * width;
            x += 4;
        }
        acc += (int32_t)a;
        g += n;
    }
    if (rest != 0) {
        acc += (int32_t)mac4(mcuq_read_u32(w), tail_words(x, rest), 0);
    }
    return acc;
}

mcuq_status mcuq_fully_connected_s16_dsp(const mcuq_context *ctx, const mcuq_fully_connected_s16_params *params,
                                         const int16_t *input, const int8_t *filter, const int64_t *bias,
                                         int16_t *output)
{
    if (ctx == NULL || params == NULL || input == NULL || filter == NULL || output == NULL ||
        params->quant.multiplier == NULL || params->quant.shift == NULL ||
        ctx->size < mcuq_fully_connected_s16_dsp_scratch_size(params)) {
        return MCUQ_ERR_ARGUMENT;
    }
    const mcuq_fully_connected_s16_params p = *params;
    if (p.batches < 0 || p.input_size <= 0 || p.output_size <= 0 || !mcuq_s16_bits_ok(p.weight_bits) ||
        (p.acc64 != 0 && p.acc64 != 1) || !mcuq_s16_activation_ok(p.activation) ||
        (p.per_channel != 0 && p.per_channel != 1) || p.weights_zp < -128 || p.weights_zp > 127) {
        return MCUQ_ERR_ARGUMENT;
    }
    if (p.weight_bits != 8 || p.weights_zp != 0) {
        return MCUQ_ERR_UNSUPPORTED;
    }
    const int32_t full = p.input_size / 4;
    const int32_t rest = p.input_size % 4;
    const int32_t step = p.per_channel; /* stride through multiplier/shift: 0 for per-tensor */

    for (int32_t b = 0; b < p.batches; ++b) {
        const int16_t *x = input + b * p.input_size;
        int16_t *y = output + b * p.output_size;
        const int8_t *w = filter;
        int32_t o = 0;
        for (; o + 4 <= p.output_size; o += 4) {
            int64_t acc[4];
            for (int32_t j = 0; j < 4; ++j) {
                acc[j] = (bias != NULL) ? bias[o + j] : 0;
            }
            w = dot4(w, x, full, rest, acc);
            for (int32_t j = 0; j < 4; ++j) {
                const mcuq_s16_quant q =
                    mcuq_s16_quant_of(p.acc64, p.quant.multiplier[(o + j) * step], p.quant.shift[(o + j) * step]);
                const int32_t v = mcuq_s16_requant(acc[j], &q);
                y[o + j] = (int16_t)MCUQ_CLAMP(v, p.activation.min, p.activation.max);
            }
        }
        const int32_t width = p.output_size - o;
        for (int32_t j = 0; j < width; ++j) {
            const int64_t acc = dot1(w + 4 * j, width, x, full, rest, (bias != NULL) ? bias[o + j] : 0);
            y[o + j] = mcuq_s16_requantize(acc, p.acc64, p.quant.multiplier[(o + j) * step],
                                           p.quant.shift[(o + j) * step], p.activation);
        }
    }
    return MCUQ_OK;
}
