/* FULLY_CONNECTED, int8 activations, int4 weights, Helium (MVE) path: the same bits as
 * mcuq_fully_connected_s8_lowbit with bits 4 and weights_zp 0; see mcuq_lowbit.h.
 *
 * Algorithm. Four units per pass share each 32 input values (two loads); each unit's 16-byte chunk of 32 weights
 * is unpacked with one VSHL and one VAND and multiplied with two VMLADAVA.S8 (mcuq_s4_mve.h). Each unit's last
 * K % 32 weights come from the tails (mcuq_s4_fast.h, G = 32), gathered into one chunk, against the last inputs
 * loaded with a predicate (nothing past the row is read). No scratch. Weight layout: mcuq_s4_fast.h with G = 32,
 * rows one after another.
 * bias (never NULL) is the folded bias[o] - input_zp * sum(w[o]); the sums wrap modulo 2^32 and the final sum is
 * TFLite's int32 accumulator. Without MVE the same algorithm runs in plain C. The output must not overlap the
 * input. */
#include "mcuq_lowbit.h"
#include "mcuq_lowbit_common.h"
#include "mcuq_s4_mve.h"

int32_t mcuq_fully_connected_s8_s4_mve_scratch_size(const mcuq_fully_connected_lowbit_params *params)
{
    (void)params;
    return 0;
}

#if !MCUQ_HAVE_MVE
/* The last n < 32 inputs, zeros after, as 32 values (only the n are read, as the predicated loads do). */
static void tail_inputs(int8_t dst[32], const int8_t *x, int32_t n)
{
    for (int32_t i = 0; i < 32; ++i) {
        dst[i] = i < n ? x[i] : 0;
    }
}
#endif

/* acc[j] = 16 * sum of unit u0 + j's weights times x, j < width (1..4). */
static void pass(const uint8_t *filter, int32_t u0, int32_t width, const int8_t *x, int32_t cm, int32_t t,
                 int32_t tails, uint32_t acc[4])
{
    const int32_t row = cm * 16; /* bytes of a unit's whole chunks */
    uint8_t tail[4][16];
    for (int32_t j = 0; j < width && t != 0; ++j) {
        mcuq_s4_tail_chunk(tail[j], filter, tails + (u0 + j) * t, t);
    }
#if MCUQ_HAVE_MVE
    int32_t a[4] = {0, 0, 0, 0};
    const uint8_t *w = filter + u0 * row;
    if (width == 4) {
        const uint8_t *w1 = w + row;
        const uint8_t *w2 = w1 + row;
        const uint8_t *w3 = w2 + row;
        int32_t a0 = 0;
        int32_t a1 = 0;
        int32_t a2 = 0;
        int32_t a3 = 0;
        const int8_t *xp = x;
        for (int32_t c = 0; c < cm; ++c) {
            const int8x16_t xl = vldrbq_s8(xp);
            const int8x16_t xh = vldrbq_s8(xp + 16);
            xp += 32;
            a0 = mcuq_s4_mve_chunk(a0, w, xl, xh);
            a1 = mcuq_s4_mve_chunk(a1, w1, xl, xh);
            a2 = mcuq_s4_mve_chunk(a2, w2, xl, xh);
            a3 = mcuq_s4_mve_chunk(a3, w3, xl, xh);
            w += 16;
            w1 += 16;
            w2 += 16;
            w3 += 16;
        }
        a[0] = a0;
        a[1] = a1;
        a[2] = a2;
        a[3] = a3;
    } else {
        for (int32_t j = 0; j < width; ++j) {
            const uint8_t *wj = w + j * row;
            for (int32_t c = 0; c < cm; ++c) {
                a[j] = mcuq_s4_mve_chunk(a[j], wj + 16 * c, vldrbq_s8(x + 32 * c), vldrbq_s8(x + 32 * c + 16));
            }
        }
    }
    if (t != 0) {
        const int8_t *xt = x + 32 * cm;
        const int8x16_t xl = vldrbq_z_s8(xt, vctp8q((uint32_t)MCUQ_MIN(t, 16)));
        const int8x16_t xh = vldrbq_z_s8(xt + 16, vctp8q((uint32_t)(t > 16 ? t - 16 : 0)));
        for (int32_t j = 0; j < width; ++j) {
            a[j] = mcuq_s4_mve_chunk(a[j], tail[j], xl, xh);
        }
    }
    for (int32_t j = 0; j < 4; ++j) {
        acc[j] = (uint32_t)a[j];
    }
#else
    int8_t xt[32];
    if (t != 0) {
        tail_inputs(xt, x + 32 * cm, t);
    }
    for (int32_t j = 0; j < 4; ++j) {
        uint32_t a = 0;
        if (j < width) {
            const uint8_t *wj = filter + (u0 + j) * row;
            for (int32_t c = 0; c < cm; ++c) {
                a = mcuq_s4_c_chunk(a, wj + 16 * c, x + 32 * c);
            }
            if (t != 0) {
                a = mcuq_s4_c_chunk(a, tail[j], xt);
            }
        }
        acc[j] = a;
    }
#endif
}

mcuq_status mcuq_fully_connected_s8_s4_mve(const mcuq_context *ctx, const mcuq_fully_connected_lowbit_params *params,
                                           const int8_t *input, const uint8_t *filter, const int32_t *bias,
                                           int8_t *output)
{
    const mcuq_status status = mcuq_fully_connected_lowbit_check(
        ctx, params, input, filter, bias, output, mcuq_fully_connected_s8_s4_mve_scratch_size(params), 1);
    if (status != MCUQ_OK) {
        return status;
    }
    const mcuq_fully_connected_lowbit_params p = *params;
    if (p.bits != 4 || p.weights_zp != 0 || p.input_size >= MCUQ_S4_FAST_MAX_DEPTH) {
        return MCUQ_ERR_UNSUPPORTED;
    }
    const int32_t k = p.input_size;
    const int32_t cm = k / 32;
    const int32_t t = k - cm * 32;
    const int32_t tails = p.output_size * cm * 32;
    const int32_t step_q = p.per_channel;
    for (int32_t b = 0; b < p.batches; ++b) {
        const int8_t *x = input + b * k;
        int8_t *y = output + b * p.output_size;
        for (int32_t u0 = 0; u0 < p.output_size; u0 += 4) {
            const int32_t width = MCUQ_MIN(4, p.output_size - u0);
            uint32_t acc[4];
            pass(filter, u0, width, x, cm, t, tails, acc);
            for (int32_t j = 0; j < width; ++j) {
                const int32_t o = u0 + j;
                y[o] = mcuq_s4_finish(bias[o], acc[j], p.quant.multiplier[o * step_q], p.quant.shift[o * step_q],
                                      p.output_zp, p.activation.min, p.activation.max);
            }
        }
    }
    return MCUQ_OK;
}
