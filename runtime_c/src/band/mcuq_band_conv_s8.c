/* Band execution of a 1x1 convolution feeding a convolution (see mcuq_band.h). */
#include "mcuq_band.h"

#include <string.h>

/* The ring's bytes, rounded up to 16 so that the kernels' scratch after it stays aligned as the arena is. */
static int32_t ring_bytes(const mcuq_band_conv_params *p)
{
    return (p->ring_rows * p->first.output.w * p->first.output.c + 15) / 16 * 16;
}

int32_t mcuq_band_conv_s8_scratch_size(const mcuq_band_conv_params *params)
{
    return ring_bytes(params) + params->kernel_scratch;
}

/* Rows [from, from + n) of the ring move to its top (n rows of row_bytes; the regions may overlap: memmove, word
 * by word when aligned). */
static void move_rows(int8_t *ring, int32_t from, int32_t n, int32_t row_bytes)
{
    memmove(ring, ring + from * row_bytes, (size_t)(n * row_bytes));
}

mcuq_status mcuq_band_conv_s8(const mcuq_context *ctx, const mcuq_band_conv_params *params, const int8_t *input,
                              const int8_t *first_filter, const int32_t *first_bias, const int8_t *second_filter,
                              const int32_t *second_bias, int8_t *output)
{
    if (ctx == NULL || params == NULL || input == NULL || output == NULL || params->first_kernel == NULL ||
        params->second_kernel == NULL || params->ring_rows < 1 || params->kernel_scratch < 0 || params->band_rows < 1) {
        return MCUQ_ERR_ARGUMENT;
    }
    const mcuq_conv2d_params *a = &params->first;
    const mcuq_conv2d_params *b = &params->second;
    if (a->input.n != 1 || a->output.n != 1 || b->input.n != 1 || b->output.n != 1 || a->input.h <= 0 ||
        a->output.h != a->input.h || a->output.w != a->input.w || a->window.filter.h != 1 || a->window.filter.w != 1 ||
        a->window.stride.h != 1 || a->window.stride.w != 1 || a->window.pad.h != 0 || a->window.pad.w != 0 ||
        b->input.h != a->output.h || b->input.w != a->output.w || b->input.c != a->output.c ||
        b->window.dilation.h != 1 || b->window.stride.h <= 0 || b->window.filter.h <= 0 || b->output.h <= 0 ||
        a->output.w <= 0 || a->output.c <= 0 || a->input.c <= 0 || b->output.w <= 0 || b->output.c <= 0 ||
        a->output.w > INT32_MAX / a->output.c || params->ring_rows > (INT32_MAX - 15) / (a->output.w * a->output.c) ||
        ring_bytes(params) > INT32_MAX - params->kernel_scratch) {
        return MCUQ_ERR_ARGUMENT;
    }
    if (ctx->buf == NULL || ctx->size < mcuq_band_conv_s8_scratch_size(params)) {
        return MCUQ_ERR_ARGUMENT;
    }
    int8_t *ring = (int8_t *)ctx->buf;
    const int32_t mid_row = a->output.w * a->output.c; /* bytes per row of first's output */
    const int32_t in_row = a->input.w * a->input.c;
    const int32_t out_row = b->output.w * b->output.c;
    mcuq_context inner = {NULL, params->kernel_scratch};
    if (params->kernel_scratch > 0) {
        inner.buf = ring + ring_bytes(params);
    }
    int32_t ring_lo = 0; /* the ring holds rows [ring_lo, ring_hi) of first's output */
    int32_t ring_hi = 0;
    int32_t r0 = 0;
    while (r0 < b->output.h) {
        /* output rows [r0, r1) of second read rows [lo, hi) of first's output */
        const int32_t r1 = b->output.h - r0 > params->band_rows ? r0 + params->band_rows : b->output.h;
        const int32_t top = r0 * b->window.stride.h - b->window.pad.h;
        const int32_t lo = top > 0 ? top : 0;
        const int32_t end = (r1 - 1) * b->window.stride.h - b->window.pad.h + b->window.filter.h;
        const int32_t hi = end < a->output.h ? end : a->output.h;
        if (hi <= lo || hi - lo > params->ring_rows) {
            return MCUQ_ERR_ARGUMENT;
        }
        if (lo >= ring_hi) {
            ring_lo = lo;
            ring_hi = lo;
        } else if (lo > ring_lo) {
            move_rows(ring, lo - ring_lo, ring_hi - lo, mid_row);
            ring_lo = lo;
        }
        if (hi > ring_hi) {
            mcuq_conv2d_params pa = *a;
            pa.input.h = hi - ring_hi;
            pa.output.h = hi - ring_hi;
            const mcuq_status s = params->first_kernel(&inner, &pa, input + ring_hi * in_row, first_filter, first_bias,
                                                       ring + (ring_hi - ring_lo) * mid_row);
            if (s != MCUQ_OK) {
                return s;
            }
            ring_hi = hi;
        }
        {
            mcuq_conv2d_params pb = *b;
            pb.input.h = hi - lo;
            pb.output.h = r1 - r0;
            pb.window.pad.h = lo - top;
            const mcuq_status s =
                params->second_kernel(&inner, &pb, ring, second_filter, second_bias, output + r0 * out_row);
            if (s != MCUQ_OK) {
                return s;
            }
        }
        r0 = r1;
    }
    return MCUQ_OK;
}
