/* CONV_2D, int8, Helium (MVE) path: the same bits as mcuq_conv2d_s8 (TFLite's ConvPerChannel); see mcuq_conv.h.
 *
 * Algorithm. Let K = filter.h * filter.w * input.c and KP = K rounded up to a multiple of 16. Output pixels are
 * taken in raster order (batch, y, x) in blocks of MCUQ_CONV_MVE_BLOCK = 2. For a block, im2col copies each
 * pixel's window (K int8 values in filter order, the padding taps filled with input_zp) into scratch, one row of
 * KP bytes per pixel whose last KP - K bytes are zero (written once per call). A window inside the input is
 * filter.h copies of filter.w * input.c contiguous bytes (tail-predicated vector loops); a window reaching into
 * the padding is built row by row (one masked load per row when a filter row fits in 16 bytes). Then for each group of 4 output channels the two rows are multiplied with the group's 4
 * weight rows, 16 values per VMLADAVA: 8 accumulators, 16 instructions per 128 MACs. The folded bias is added,
 * the 2 x 4 accumulators are requantized as two vectors (VQRDMULH is gemmlowp's SaturatingRoundingDoublingHighMul;
 * VRSHL after a fix-up of negative values is its RoundingDivideByPOT) and stored, 4 bytes per pixel: with GCC the
 * whole loop over the groups is one asm block, 35 instructions per group besides the 16 per chunk. The last 1..3
 * output channels and an odd last pixel run the same with intrinsics.
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
#include <stddef.h>
#include <stdint.h>

#include "mcuq_conv.h"
#include "../internal/mcuq_conv_common.h"
#include "../internal/mcuq_simd.h"
#include "../internal/mcuq_util.h"
#include "../internal/mcuq_window.h"

#define MCUQ_CONV_MVE_BLOCK 2

#if MCUQ_HAVE_MVE && defined(__GNUC__) && !defined(__clang__)
#define MCUQ_CONV_MVE_ASM 1 /* GCC's inline asm: fixed registers, "p0" (VPR) clobbers */
#else
#define MCUQ_CONV_MVE_ASM 0
#endif

#if defined(__GNUC__)
#define MCUQ_ALWAYS_INLINE __attribute__((always_inline)) inline
#else
#define MCUQ_ALWAYS_INLINE inline
#endif

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

/* rows >= 1 rows of n >= 1 bytes: dst + r * n = src + r * step, r = 0 .. rows - 1 (dst does not overlap src). */
static MCUQ_ALWAYS_INLINE void copy_rows(int8_t *dst, const int8_t *src, int32_t n, int32_t rows, int32_t step)
{
#if MCUQ_CONV_MVE_ASM
    if (n <= 16) { /* one predicated load and store per row (first layers: input.c 1..3) */
        __asm__ volatile("vctp.8 %[n]\n"
                         "1:\n\t"
                         "vpstt\n\t"
                         "vldrbt.u8 q0, [%[s]]\n\t"
                         "vstrbt.8 q0, [%[d]]\n\t"
                         "add %[s], %[s], %[step]\n\t"
                         "add %[d], %[d], %[n]\n\t"
                         "subs %[r], %[r], #1\n\t"
                         "bne 1b"
                         : [s] "+r"(src), [d] "+r"(dst), [r] "+r"(rows)
                         : [n] "r"(n), [step] "r"(step)
                         : "q0", "p0", "cc", "memory");
    } else { /* a tail-predicated loop per row: 3 instructions per 16 bytes */
        const int8_t *s;
        int8_t *d;
        __asm__ volatile("1:\n\t"
                         "mov %[s], %[src]\n\t"
                         "mov %[d], %[dst]\n\t"
                         "dlstp.8 lr, %[n]\n"
                         "2:\n\t"
                         "vldrb.u8 q0, [%[s]], #16\n\t"
                         "vstrb.8 q0, [%[d]], #16\n\t"
                         "letp lr, 2b\n\t"
                         "add %[src], %[src], %[step]\n\t"
                         "add %[dst], %[dst], %[n]\n\t"
                         "subs %[r], %[r], #1\n\t"
                         "bne 1b"
                         : [s] "=&r"(s), [d] "=&r"(d), [src] "+r"(src), [dst] "+r"(dst), [r] "+r"(rows)
                         : [n] "r"(n), [step] "r"(step)
                         : "q0", "lr", "cc", "memory");
    }
#elif MCUQ_HAVE_MVE
    const mve_pred16_t p = vctp8q((uint32_t)(n & 15));
    do {
        const int8_t *s = src;
        int8_t *d = dst;
        for (int32_t j = 16; j <= n; j += 16) {
            vstrbq_s8(d, vldrbq_s8(s));
            d += 16;
            s += 16;
        }
        if ((n & 15) != 0) {
            vstrbq_p_s8(d, vldrbq_z_s8(s, p), p);
        }
        dst += n;
        src += step;
    } while (--rows > 0);
#else
    do {
        memcpy(dst, src, (size_t)n);
        dst += n;
        src += step;
    } while (--rows > 0);
#endif
}

/* The first K values of a window that reaches into the padding, at col: the window's top-left tap is input row
 * iy0, column ix0 of `image` (either may be negative); padding taps = input_zp. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void
im2col_border(const mcuq_conv2d_params *p, const int8_t *image, int32_t iy0, int32_t ix0, int8_t *col)
{
    const int32_t cin = p->input.c;
    const int32_t fw = p->window.filter.w;
    const int32_t row_bytes = fw * cin;
    const int8_t zp = (int8_t)p->input_zp;
    int32_t kx_lo;
    int32_t kx_hi;
    mcuq_tap_range(ix0, p->window.dilation.w, p->input.w, fw, &kx_lo, &kx_hi);
    int8_t *dst = col;
#if MCUQ_HAVE_MVE
    if (p->window.dilation.w == 1 && row_bytes <= 16) {
        /* a filter row is one vector: input_zp, with the bytes of taps [kx_lo, kx_hi) of a row inside the input
         * loaded under the predicate m (the lanes outside it are not accessed, so the row's start may lie outside
         * the input: it is computed as an integer). Each row is stored as 16 bytes, the bytes past it rewritten by
         * the next row; the last row under a predicate, so nothing past the window is written. */
        const mve_pred16_t m = (mve_pred16_t)(vctp8q((uint32_t)(kx_hi * cin)) & ~vctp8q((uint32_t)(kx_lo * cin)));
        const int8x16_t zpv = vdupq_n_s8(zp);
        const int8x16_t fill = vpselq_s8(vdupq_n_s8(0), zpv, m); /* 0 where loaded, input_zp elsewhere */
        int32_t ky_lo;
        int32_t ky_hi;
        mcuq_tap_range(iy0, p->window.dilation.h, p->input.h, p->window.filter.h, &ky_lo, &ky_hi);
        if (kx_hi <= kx_lo) {
            ky_hi = ky_lo;
        }
        const int32_t last = p->window.filter.h - 1;
        const intptr_t step = (intptr_t)p->window.dilation.h * p->input.w * cin;
        uintptr_t src = (uintptr_t)image + (uintptr_t)((intptr_t)(iy0 * p->input.w + ix0) * cin + ky_lo * step);
        for (int32_t ky = 0; ky < last; ++ky) {
            int8x16_t v = zpv;
            if (ky >= ky_lo && ky < ky_hi) {
                v = vaddq_s8(vldrbq_z_s8((const int8_t *)src, m), fill);
                src += (uintptr_t)step;
            }
            vstrbq_s8(dst, v);
            dst += row_bytes;
        }
        const int8x16_t v = last >= ky_lo && last < ky_hi ? vaddq_s8(vldrbq_z_s8((const int8_t *)src, m), fill) : zpv;
        vstrbq_p_s8(dst, v, vctp8q((uint32_t)row_bytes));
        return;
    }
#endif
    for (int32_t ky = 0; ky < p->window.filter.h; ++ky) {
        const int32_t iy = iy0 + ky * p->window.dilation.h;
        if (iy < 0 || iy >= p->input.h || kx_hi <= kx_lo) {
            fill_bytes(dst, zp, row_bytes);
        } else {
            const int8_t *src = image + (iy * p->input.w + ix0 + kx_lo * p->window.dilation.w) * cin;
            fill_bytes(dst, zp, kx_lo * cin);
            if (p->window.dilation.w == 1) {
                copy_rows(dst + kx_lo * cin, src, (kx_hi - kx_lo) * cin, 1, 0);
            } else {
                copy_rows(dst + kx_lo * cin, src, cin, kx_hi - kx_lo, p->window.dilation.w * cin);
            }
            fill_bytes(dst + kx_hi * cin, zp, (fw - kx_hi) * cin);
        }
        dst += row_bytes;
    }
}

/* Where im2col finds the windows: the geometry, and the next output pixel in raster order. */
typedef struct {
    const mcuq_conv2d_params *p;
    const int8_t *image; /* the next pixel's batch image */
    int32_t ox;          /* the next pixel's column */
    int32_t oy;          /* and row */
    int32_t off;         /* its window's top-left tap: image + off, when the window is inside */
    int32_t lo;          /* the columns of this output row whose windows are inside: [lo, hi] (empty: lo > hi) */
    int32_t hi;
    int32_t row_bytes; /* filter.w * input.c: a filter row, contiguous in the input when dilation.w == 1 */
    int32_t src_step;  /* dilation.h * input.w * input.c: from one filter row to the next */
    int32_t off_x;     /* stride.w * input.c: from one output column to the next */
    int32_t ox_lo;     /* the output columns and rows whose windows are inside: [ox_lo, ox_hi], [oy_lo, oy_hi] */
    int32_t ox_hi;
    int32_t oy_lo;
    int32_t oy_hi;
} cursor;

/* The cursor at the start of output row oy of image. */
static void cursor_row(cursor *cur, const int8_t *image, int32_t oy)
{
    const mcuq_conv2d_params *p = cur->p;
    const int32_t inside = cur->oy_lo <= oy && oy <= cur->oy_hi;
    cur->image = image;
    cur->ox = 0;
    cur->oy = oy;
    cur->off = ((oy * p->window.stride.h - p->window.pad.h) * p->input.w - p->window.pad.w) * p->input.c;
    cur->lo = inside ? cur->ox_lo : 1;
    cur->hi = inside ? cur->ox_hi : 0;
}

/* The cursor at the next pixel after the last of an output row. */
static void cursor_next_row(cursor *cur)
{
    const mcuq_conv2d_params *p = cur->p;
    if (cur->oy + 1 == p->output.h) {
        cursor_row(cur, cur->image + p->input.h * p->input.w * p->input.c, 0);
    } else {
        cursor_row(cur, cur->image, cur->oy + 1);
    }
}

/* The first K values of the window of the cursor's pixel at col; the cursor moves to the next pixel. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void
im2col(cursor *cur, int8_t *col)
{
    const mcuq_conv2d_params *p = cur->p;
    const int32_t ox = cur->ox;
    if (ox >= cur->lo && ox <= cur->hi) {
        copy_rows(col, cur->image + cur->off, cur->row_bytes, p->window.filter.h, cur->src_step);
    } else {
        im2col_border(p, cur->image, cur->oy * p->window.stride.h - p->window.pad.h,
                      ox * p->window.stride.w - p->window.pad.w, col);
    }
    cur->off += cur->off_x;
    cur->ox = ox + 1;
    if (ox + 1 == p->output.w) {
        cursor_next_row(cur);
    }
}

/* im2col of the cursor's next two pixels at col0, col1: when both windows are inside (the same output row), one
 * test for both. */
static MCUQ_ALWAYS_INLINE void im2col_pair(cursor *cur, int8_t *col0, int8_t *col1)
{
    const int32_t ox = cur->ox;
    if (ox >= cur->lo && ox < cur->hi) {
        const int8_t *src = cur->image + cur->off;
        const int32_t fh = cur->p->window.filter.h;
        copy_rows(col0, src, cur->row_bytes, fh, cur->src_step);
        copy_rows(col1, src + cur->off_x, cur->row_bytes, fh, cur->src_step);
        cur->off += 2 * cur->off_x;
        cur->ox = ox + 2;
        if (ox + 2 == cur->p->output.w) {
            cursor_next_row(cur);
        }
    } else {
        im2col(cur, col0);
        im2col(cur, col1);
    }
}

/* What every block shares; with GCC on Helium the first 13 fields are read by pair_groups' asm, in this order
 * (the registers in the comments). */
typedef struct {
    int8_t *out0;              /* r0: the block's first output pixel (VSTRB.32 takes a low register) */
    const int8_t *col0;        /* r1: its im2col row */
    int8_t *out1;              /* r2: the second pixel's output, out0 + channels */
    const int8_t *col1;        /* r3: its im2col row */
    const int32_t *bias;       /* r4 */
    const int32_t *multiplier; /* r6 */
    const int32_t *shift;      /* r8 */
    int32_t chunks;            /* r9: KP / 16 >= 1 */
    int32_t groups;            /* r10: output.c / 4 */
    int32_t zp;                /* r12 */
    int32_t act_min;           /* byte 40 */
    int32_t act_max;           /* byte 44 */
    const int8_t *filter;      /* byte 48 */
    int32_t channels;          /* output.c */
} block_job;

#if MCUQ_HAVE_MVE

/* One row x0 (chunks >= 1 chunks of 16) times the 4 interleaved weight rows of a group at *w: lane i = x0 . weight
 * row i (modulo 2^32); *w advances past the group. */
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
static inline int32x4_t requantize4(int32x4_t acc, int32x4_t bias, int32x4_t mult, int32x4_t left, int32x4_t right,
                                    int32_t zp, int32x4_t lo, int32x4_t hi)
{
    int32x4_t x = vshlq_s32(vaddq_s32(acc, bias), left); /* wraps, as the portable (uint32) x << left */
    x = vqrdmulhq_s32(x, mult);                          /* gemmlowp SaturatingRoundingDoublingHighMul */
    /* RoundingDivideByPOT rounds ties away from zero, VRSHL rounds them up: first subtract 1 from the negative
     * values where right < 0 (the sign bit of x & right) */
    x = vqaddq_s32(x, vshrq_n_s32(vandq_s32(x, right), 31));
    x = vrshlq_s32(x, right);
    return vminq_s32(vmaxq_s32(vaddq_n_s32(x, zp), lo), hi);
}

#if MCUQ_CONV_MVE_ASM
/* job->groups >= 1 groups of 4 output channels of the block's two pixels: per group the 2 x 4 dot products (16
 * instructions per chunk of 16 values), then both pixels' 4 outputs requantized as two vectors (as requantize4)
 * and stored at out0, out1.
 *
 * VMLADAV writes even registers only, so the 8 accumulators take all of r0, r2, ..., r12 and lr and the chunk loop
 * counts with subs/bne. After the dot products the accumulators move to q0, q1 and one LDM reloads the pointers,
 * the rows and the chunk count (the job's first 10 fields, copied below sp); one STM saves them. The first chunk
 * starts the sums (VMLADAV), the others add (VMLADAVA). Only r5 carries an operand (the job, then the weights), so
 * r7 may stay the frame pointer. */
typedef char block_job_layout_for_pair_groups[offsetof(block_job, filter) == 48 ? 1 : -1];

__attribute__((noinline)) static void pair_groups(const block_job *job)
{
    register const void *r5 __asm__("r5") = job;
    __asm__ volatile("ldrd r0, r1, [r5, #40]\n\t"
                     "vdup.32 q6, r0\n\t"
                     "vdup.32 q7, r1\n\t"
                     "vmov.i32 q5, #0\n\t"
                     "ldm r5, {r0, r1, r2, r3, r4, r6, r8, r9, r10, r12}\n\t"
                     "ldr r5, [r5, #48]\n\t"
                     "sub sp, sp, #40\n\t"
                     "stm sp, {r0, r1, r2, r3, r4, r6, r8, r9, r10, r12}\n"
                     "1:\n\t"
                     "vldrb.u8 q0, [r1], #16\n\t"
                     "vldrb.u8 q1, [r3], #16\n\t"
                     "vldrb.u8 q2, [r5], #16\n\t"
                     "vmladav.s8 r0, q0, q2\n\t"
                     "vmladav.s8 r8, q1, q2\n\t"
                     "vldrb.u8 q2, [r5], #16\n\t"
                     "vmladav.s8 r2, q0, q2\n\t"
                     "vmladav.s8 r10, q1, q2\n\t"
                     "vldrb.u8 q2, [r5], #16\n\t"
                     "vmladav.s8 r4, q0, q2\n\t"
                     "vmladav.s8 r12, q1, q2\n\t"
                     "vldrb.u8 q2, [r5], #16\n\t"
                     "vmladav.s8 r6, q0, q2\n\t"
                     "vmladav.s8 lr, q1, q2\n\t"
                     "subs r9, r9, #1\n\t"
                     "beq 3f\n"
                     "2:\n\t"
                     "vldrb.u8 q0, [r1], #16\n\t"
                     "vldrb.u8 q1, [r3], #16\n\t"
                     "vldrb.u8 q2, [r5], #16\n\t"
                     "vmladava.s8 r0, q0, q2\n\t"
                     "vmladava.s8 r8, q1, q2\n\t"
                     "vldrb.u8 q2, [r5], #16\n\t"
                     "vmladava.s8 r2, q0, q2\n\t"
                     "vmladava.s8 r10, q1, q2\n\t"
                     "vldrb.u8 q2, [r5], #16\n\t"
                     "vmladava.s8 r4, q0, q2\n\t"
                     "vmladava.s8 r12, q1, q2\n\t"
                     "vldrb.u8 q2, [r5], #16\n\t"
                     "vmladava.s8 r6, q0, q2\n\t"
                     "vmladava.s8 lr, q1, q2\n\t"
                     "subs r9, r9, #1\n\t"
                     "bne 2b\n"
                     "3:\n\t" /* vmov Q[2], Q[0], Rt, Rt2 puts Rt in lane 0, Rt2 in lane 2 (QEMU, GCC 13's vcreateq) */
                     "vmov q0[2], q0[0], r0, r4\n\t"
                     "vmov q0[3], q0[1], r2, r6\n\t"
                     "vmov q1[2], q1[0], r8, r12\n\t"
                     "vmov q1[3], q1[1], r10, lr\n\t"
                     "ldm sp, {r0, r1, r2, r3, r4, r6, r8, r9, r10, r12}\n\t"
                     "vldrw.u32 q2, [r4], #16\n\t" /* bias */
                     "vadd.i32 q0, q0, q2\n\t"
                     "vadd.i32 q1, q1, q2\n\t"
                     "vldrw.u32 q4, [r8], #16\n\t" /* shift: left = max(shift, 0), right = min(shift, 0) */
                     "vmax.s32 q3, q4, q5\n\t"
                     "vmin.s32 q4, q4, q5\n\t"
                     "vshl.s32 q0, q0, q3\n\t"
                     "vshl.s32 q1, q1, q3\n\t"
                     "vldrw.u32 q2, [r6], #16\n\t" /* multiplier */
                     "vqrdmulh.s32 q0, q0, q2\n\t"
                     "vqrdmulh.s32 q1, q1, q2\n\t"
                     "vand q2, q0, q4\n\t"
                     "vand q3, q1, q4\n\t"
                     "vshr.s32 q2, q2, #31\n\t"
                     "vshr.s32 q3, q3, #31\n\t"
                     "vqadd.s32 q0, q0, q2\n\t"
                     "vqadd.s32 q1, q1, q3\n\t"
                     "vrshl.s32 q0, q0, q4\n\t"
                     "vrshl.s32 q1, q1, q4\n\t"
                     "vadd.i32 q0, q0, r12\n\t"
                     "vadd.i32 q1, q1, r12\n\t"
                     "vmax.s32 q0, q0, q6\n\t"
                     "vmax.s32 q1, q1, q6\n\t"
                     "vmin.s32 q0, q0, q7\n\t"
                     "vmin.s32 q1, q1, q7\n\t"
                     "vstrb.32 q0, [r0], #4\n\t"
                     "vstrb.32 q1, [r2], #4\n\t"
                     "subs r10, r10, #1\n\t"
                     "stm sp, {r0, r1, r2, r3, r4, r6, r8, r9, r10}\n\t"
                     "bne 1b\n\t"
                     "add sp, sp, #40"
                     : "+r"(r5)
                     :
                     : "r0", "r1", "r2", "r3", "r4", "r6", "r8", "r9", "r10", "r12", "lr", "q0", "q1", "q2", "q3", "q4",
                       "q5", "q6", "q7", "cc", "memory");
}
#endif

/* Output channels [c, output.c) of one block: rows (1 or 2) pixels, im2col rows at job->col0, col1; outputs at
 * job->out0, out1. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void
block_channels_from(const block_job *job, int32_t rows, int32_t c)
{
    const int32_t chunks = job->chunks;
    const int32_t channels = job->channels;
    const int8_t *w = job->filter + c * chunks * 16; /* 4 * KP bytes per group of 4 channels */
    const int32x4_t zero = vdupq_n_s32(0);
    const int32x4_t lo = vdupq_n_s32(job->act_min);
    const int32x4_t hi = vdupq_n_s32(job->act_max);
    for (; c < channels; c += 4) { /* the last group may have 1..3 channels: the weights have zero rows up to 4 */
        const mve_pred16_t p = vctp32q((uint32_t)(channels - c));
        const int8_t *w1 = w;
        const int32x4_t acc0 = dot_1x4(job->col0, &w, chunks);
        const int32x4_t bias = vldrwq_z_s32(job->bias + c, p);
        const int32x4_t mult = vldrwq_z_s32(job->multiplier + c, p);
        const int32x4_t shift = vldrwq_z_s32(job->shift + c, p);
        const int32x4_t left = vmaxq_s32(shift, zero);
        const int32x4_t right = vminq_s32(shift, zero);
        vstrbq_p_s32(job->out0 + c, requantize4(acc0, bias, mult, left, right, job->zp, lo, hi), p);
        if (rows == 2) {
            const int32x4_t acc1 = dot_1x4(job->col1, &w1, chunks);
            vstrbq_p_s32(job->out1 + c, requantize4(acc1, bias, mult, left, right, job->zp, lo, hi), p);
        }
    }
}

/* All output channels of one block. */
static inline void block_channels(const block_job *job, int32_t rows)
{
#if MCUQ_CONV_MVE_ASM
    if (rows == 2 && job->groups > 0) {
        pair_groups(job);
        if (job->groups * 4 != job->channels) {
            block_channels_from(job, rows, job->groups * 4);
        }
        return;
    }
#endif
    block_channels_from(job, rows, 0);
}

#else /* plain C: the same algorithm, the same memory accesses */

static void block_channels(const block_job *job, int32_t rows)
{
    const int8_t *col0 = job->col0;
    const int8_t *col1 = job->col1;
    int8_t *out0 = job->out0;
    const int8_t *w = job->filter;
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
    const mcuq_status status = mcuq_conv2d_check(ctx, params, input, filter, bias, output, 1);
    if (status != MCUQ_OK) {
        return status;
    }
    const mcuq_conv2d_params p = *params;
    if (ctx->buf == NULL || ctx->size < mcuq_conv2d_s8_mve_scratch_size(params)) {
        return MCUQ_ERR_ARGUMENT;
    }
    const int32_t kp = padded_depth(params);
    int8_t *col0 = (int8_t *)ctx->buf;
    int8_t *col1 = col0 + kp;
    block_job job;
    job.col0 = col0;
    job.col1 = col1;
    job.bias = bias;
    job.multiplier = p.quant.multiplier;
    job.shift = p.quant.shift;
    job.chunks = kp / 16;
    job.groups = p.output.c / 4;
    job.zp = p.output_zp;
    job.act_min = p.activation.min;
    job.act_max = p.activation.max;
    job.filter = filter;
    job.channels = p.output.c;

    cursor cur = {.p = &p};
    cur.row_bytes = p.window.filter.w * p.input.c;
    cur.src_step = p.window.dilation.h * p.input.w * p.input.c;
    cur.off_x = p.window.stride.w * p.input.c;
    const int32_t ix_max = p.window.dilation.w == 1 ? p.input.w - p.window.filter.w : -1; /* -1: none inside */
    const int32_t iy_max = p.input.h - 1 - (p.window.filter.h - 1) * p.window.dilation.h;
    cur.ox_lo = (p.window.pad.w + p.window.stride.w - 1) / p.window.stride.w;
    cur.ox_hi = ix_max < 0 ? -1 : MCUQ_MIN((ix_max + p.window.pad.w) / p.window.stride.w, p.output.w - 1);
    cur.oy_lo = (p.window.pad.h + p.window.stride.h - 1) / p.window.stride.h;
    cur.oy_hi = iy_max < 0 ? -1 : (iy_max + p.window.pad.h) / p.window.stride.h;
    cursor_row(&cur, input, 0);
    /* the rows' last KP - K values: zero, once (im2col writes the first K) */
    const int32_t k = p.window.filter.h * cur.row_bytes;
    fill_bytes(col0 + k, 0, kp - k);
    fill_bytes(col1 + k, 0, kp - k);

    const int32_t pixels = p.input.n * p.output.h * p.output.w;
    const int32_t block_bytes = MCUQ_CONV_MVE_BLOCK * p.output.c;
    job.out0 = output;
    job.out1 = output + p.output.c;
    for (int32_t px = 0; px + 1 < pixels; px += MCUQ_CONV_MVE_BLOCK) {
        /* read: the block's windows into scratch; then write its 2 * output.c bytes */
        im2col_pair(&cur, col0, col1);
        block_channels(&job, 2);
        job.out0 += block_bytes;
        job.out1 += block_bytes;
    }
    if (pixels % 2 != 0) { /* the last pixel alone */
        im2col(&cur, col0);
        block_channels(&job, 1);
    }
    return MCUQ_OK;
}
