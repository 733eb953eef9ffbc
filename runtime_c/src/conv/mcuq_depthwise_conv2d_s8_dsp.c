/* DEPTHWISE_CONV_2D, int8, dsp path: 3x3 filter, depth multiplier 1, dilation 1, stride 1 or 2, any padding.
 * Same bits as mcuq_depthwise_conv2d_s8 (TFLite's DepthwiseConvPerChannel); see mcuq_conv.h.
 *
 * Arguments (compile-time transforms by mcuq/kernels/depthwise_dsp.py):
 *   filter: per channel 8 words (MCUQ_DW_WORDS), 4-byte aligned: the int16 pairs A0 = (w00, w02), A1 = (w10, w12),
 *           A2 = (w20, w22), B01 = (w01, w11), B2 = (w21, 0) (w[ky][kx]), then the requantization constants
 *           M = 2 * multiplier - 2^32, R = 2^(r-1) + output_zp * 2^r and r (the right shift), r = 0 when the channel
 *           is outside the fast rounding (multiplier < 2^30, left shift, r > 24): such channels use mcuq_requantize;
 *   bias:   [C] int32, never NULL, the folded bias bias[c] - input_zp * sum(w[c]), so the loops multiply raw int8
 *           values; the zero padding then has to contribute w * input_zp, which it does because the padding is
 *           stored as input_zp bytes.
 *
 * Scratch: a FIFO of 2G + 1 regions (G = ceil(C / 4) channel groups), each 4 channels x `width` columns,
 * channel-major (the columns of one channel contiguous, padding columns holding input_zp): two input rows and one
 * group. Output row oy reads input rows iy0 .. iy0 + 2 (iy0 = oy * stride.h - pad.h): rows iy0 and iy0 + 1 are in
 * the FIFO before its first output byte is written; for each group g, row iy0 + 2's group g is copied
 * (transposed) into the free region, the group's outputs are computed and written, and row iy0's group g region
 * becomes the next free one. So the output may overlap the input as long as output row oy ends at or below input
 * row iy0 + 2 (mcuq/kernels/depthwise_dsp.py, overlap).
 *
 * Per channel and output row, two pixels per step from one input word per filter row (SXTB16 and SXTB16 ror 8
 * give (x0, x2), (x1, x3)): stride 1 is SMLAD + SMLAxB for pixel 0 and SMLAD + SMLATx for pixel 1, 7 instructions
 * for 6 MACs; stride 2 pairs (x2, x4) with PKHTB for SMLADX. The two sums are requantized at once (SMMLAR, QADD
 * with the rounding and zero point, ASR, SSAT) and stored. On the DSP path this loop is inline assembly with the
 * channel's constants in a stack frame reloaded by LDM (GCC otherwise spills them one by one). When all channels
 * have the fast rounding, C is a multiple of 4 and row iy0 + 2 is in the image, one call does the whole output row:
 * at each group it wraps the ring pointers and copies the group of row iy0 + 2 in (dw_group, dw_fill: the same
 * reads and writes, in the same order, as the C loop). */
#include "mcuq_conv.h"
#include "../internal/mcuq_simd.h"
#include "../internal/mcuq_util.h"

#define MCUQ_DW_WORDS 8 /* filter words per channel */

/* Ring columns: (output.w - 1) * stride.w + 3 are read (the word loads of the last pixel read one more: the next
 * channel's first column, or the 4 tail bytes). */
static int32_t ring_width(const mcuq_conv2d_params *p)
{
    return (p->output.w > 0 ? (p->output.w - 1) * p->window.stride.w : 0) + 3;
}

int32_t mcuq_depthwise_conv2d_s8_dsp_scratch_size(const mcuq_conv2d_params *params)
{
    if (params == NULL || params->output.w < 0 || params->input.c <= 0 || params->window.stride.w <= 0 ||
        params->window.stride.w > 0x100 || params->output.w > 0x100000 || params->input.c > 0x10000) {
        return 0;
    }
    const int64_t groups = (params->input.c + 3) / 4;
    /* 3 bytes to align the FIFO, 2G + 1 regions, 4 tail bytes */
    const int64_t n = 3 + (2 * groups + 1) * 4 * (int64_t)ring_width(params) + 4;
    return n > INT32_MAX ? INT32_MAX : (int32_t)n;
}

/* acc + lo16(a) * lo16(b) */
static inline uint32_t mac_bb(uint32_t a, uint32_t b, uint32_t acc)
{
    return acc + (uint32_t)((int32_t)(int16_t)(a & 0xffffu) * (int32_t)(int16_t)(b & 0xffffu));
}

#if MCUQ_HAVE_DSP && defined(__GNUC__)
#define MCUQ_DW_ASM 1
/* One group of 4 channels of an input row into a ring region: r3 the input (post-incremented), r4 C, r5 the ring
 * width, r6 the region's first input column, r7 the columns (>= 1); 4 columns at a time by a 4x4 byte transpose
 * (UXTB16, ORR, PKHBT/PKHTB), then one by one. Uses r3-r12; r0-r2 kept. */
__attribute__((naked, noinline, used)) static void dw_fill(void)
{
    __asm__ volatile("push {lr}\n\t"
                     "subs r7, r7, #4\n\t"
                     "blt 2f\n\t"
                     "1:\n\t"
                     "ldr r8, [r3]\n\t"
                     "ldr r9, [r3, r4]\n\t"
                     "add r3, r3, r4, lsl #1\n\t"
                     "ldr r10, [r3]\n\t"
                     "ldr r11, [r3, r4]\n\t"
                     "add r3, r3, r4, lsl #1\n\t"
                     "uxtb16 r12, r8\n\t"
                     "uxtb16 lr, r9\n\t"
                     "orr r12, r12, lr, lsl #8\n\t"
                     "uxtb16 r8, r8, ror #8\n\t"
                     "uxtb16 r9, r9, ror #8\n\t"
                     "orr r8, r8, r9, lsl #8\n\t"
                     "uxtb16 r9, r10\n\t"
                     "uxtb16 lr, r11\n\t"
                     "orr r9, r9, lr, lsl #8\n\t"
                     "uxtb16 r10, r10, ror #8\n\t"
                     "uxtb16 r11, r11, ror #8\n\t"
                     "orr r10, r10, r11, lsl #8\n\t"
                     "pkhbt r11, r12, r9, lsl #16\n\t"
                     "str r11, [r6]\n\t"
                     "pkhbt r11, r8, r10, lsl #16\n\t"
                     "str r11, [r6, r5]\n\t"
                     "add lr, r6, r5, lsl #1\n\t"
                     "pkhtb r11, r9, r12, asr #16\n\t"
                     "str r11, [lr]\n\t"
                     "pkhtb r11, r10, r8, asr #16\n\t"
                     "str r11, [lr, r5]\n\t"
                     "add r6, r6, #4\n\t"
                     "subs r7, r7, #4\n\t"
                     "bge 1b\n\t"
                     "2:\n\t"
                     "adds r7, r7, #4\n\t"
                     "beq 4f\n\t"
                     "3:\n\t"
                     "ldr r8, [r3]\n\t"
                     "add r3, r3, r4\n\t"
                     "add lr, r6, r5, lsl #1\n\t"
                     "strb r8, [r6]\n\t"
                     "lsr r9, r8, #8\n\t"
                     "strb r9, [r6, r5]\n\t"
                     "lsr r9, r8, #16\n\t"
                     "strb r9, [lr]\n\t"
                     "lsr r9, r8, #24\n\t"
                     "strb r9, [lr, r5]\n\t"
                     "add r6, r6, #1\n\t"
                     "subs r7, r7, #1\n\t"
                     "bne 3b\n\t"
                     "4:\n\t"
                     "pop {pc}\n\t");
}

typedef struct {
    const int8_t *src; /* r3 .. r7 of dw_fill */
    int32_t c_n;
    int32_t width;
    int8_t *d;
    int32_t cols;
} dw_fill_args;

__attribute__((naked, noinline)) static void dw_fill_c(const dw_fill_args *a __attribute__((unused)))
{
    __asm__ volatile("push {r4, r5, r6, r7, r8, r9, r10, r11, lr}\n\t"
                     "ldm r0, {r3, r4, r5, r6, r7}\n\t"
                     "bl dw_fill\n\t"
                     "pop {r4, r5, r6, r7, r8, r9, r10, r11, pc}\n\t");
}
#else
#define MCUQ_DW_ASM 0
#endif

/* Input row iy (or input_zp where iy is outside the image), channels c0 .. c0 + cn - 1 (cn <= 4), into the
 * region dst: dst[ci * width + pad_w + ix] = image[iy][ix][c0 + ci] for the columns that fit. */
static void fill_group(int8_t *dst, const int8_t *image, int32_t iy, int32_t c0, int32_t cn,
                       const mcuq_conv2d_params *p, int32_t width)
{
    const int32_t c_n = p->input.c;
    const int32_t pad_w = p->window.pad.w;
    const int32_t cols = MCUQ_MIN(p->input.w, width - pad_w); /* input columns kept */
    if (cols <= 0) {
        return;
    }
    if (iy < 0 || iy >= p->input.h) { /* the whole region (its padding columns hold input_zp already) */
        memset(dst, (int)(int8_t)p->input_zp, (size_t)(4 * width));
        return;
    }
    int8_t *d = dst + pad_w;
    const int8_t *s = image + iy * p->input.w * c_n + c0;
    if (cn < 4) {
        for (int32_t ci = 0; ci < cn; ++ci) {
            for (int32_t x = 0; x < cols; ++x) {
                d[ci * width + x] = s[x * c_n + ci];
            }
        }
        return;
    }
#if MCUQ_DW_ASM
    const dw_fill_args a = {s, c_n, width, d, cols};
    dw_fill_c(&a);
#else
    int32_t x = 0;
    for (; x + 4 <= cols; x += 4) { /* 4x4 byte transpose: 4 pixels x 4 channels */
        const uint32_t r0 = mcuq_read_u32(s);
        const uint32_t r1 = mcuq_read_u32(s + c_n);
        const uint32_t r2 = mcuq_read_u32(s + 2 * c_n);
        const uint32_t r3 = mcuq_read_u32(s + 3 * c_n);
        s += 4 * c_n;
        const uint32_t t0 = (r0 & 0x00ff00ffu) | ((r1 & 0x00ff00ffu) << 8);
        const uint32_t t1 = ((r0 >> 8) & 0x00ff00ffu) | (r1 & 0xff00ff00u);
        const uint32_t t2 = (r2 & 0x00ff00ffu) | ((r3 & 0x00ff00ffu) << 8);
        const uint32_t t3 = ((r2 >> 8) & 0x00ff00ffu) | (r3 & 0xff00ff00u);
        mcuq_write_u32(d + x, (t0 & 0xffffu) | (t2 << 16));
        mcuq_write_u32(d + width + x, (t1 & 0xffffu) | (t3 << 16));
        mcuq_write_u32(d + 2 * width + x, (t0 >> 16) | (t2 & 0xffff0000u));
        mcuq_write_u32(d + 3 * width + x, (t1 >> 16) | (t3 & 0xffff0000u));
    }
    for (; x < cols; ++x, s += c_n) {
        const uint32_t v = mcuq_read_u32(s);
        d[x] = (int8_t)(v & 0xffu);
        d[width + x] = (int8_t)((v >> 8) & 0xffu);
        d[2 * width + x] = (int8_t)((v >> 16) & 0xffu);
        d[3 * width + x] = (int8_t)(v >> 24);
    }
#endif
}

/* One output value from its accumulator: the fast rounding when the channel has one (k[7] = r != 0), else
 * mcuq_requantize; then the activation bounds. */
static inline int8_t requantize(uint32_t acc, const uint32_t *k, int32_t mult, int32_t shift,
                                const mcuq_conv2d_params *p)
{
    int32_t v;
    if (k[7] != 0) {
        /* floor((acc * m + 2^30) / 2^31) (m = M / 2 mod 2^31, in [2^30, 2^31)); minus 1 if negative; plus R,
         * saturated (SMMLAR, ADD asr 31, QADD): a saturated sum shifted by r <= 24 is still beyond [-128, 127] */
        const int64_t h = ((int64_t)(int32_t)acc * (int64_t)(k[5] >> 1) + (INT64_C(1) << 30)) >> 31;
        int64_t t = h - (h < 0) + (int64_t)(int32_t)k[6];
        t = MCUQ_CLAMP(t, (int64_t)INT32_MIN, (int64_t)INT32_MAX);
        v = (int32_t)t >> k[7];
        v = MCUQ_CLAMP(v, -128, 127);
    } else {
        v = mcuq_requantize((int32_t)acc, mult, shift) + p->output_zp;
    }
    return (int8_t)MCUQ_CLAMP(v, p->activation.min, p->activation.max);
}

/* One channel's output row in plain C, pixel by pixel (the DSP path's assembly computes the same sums, two or
 * three pixels at a time, for channels with the fast rounding): rows r0, r1, r2 of the channel in the ring, the
 * output pixels at out[ox * step]. */
static void chan_row_c(const int8_t *r0, const int8_t *r1, const int8_t *r2, int8_t *out, int32_t step, int32_t ow,
                       int32_t stride, const int8_t *filter, int32_t bias, int32_t mult, int32_t shift,
                       const mcuq_conv2d_params *p)
{
    uint32_t k[MCUQ_DW_WORDS];
    for (int32_t i = 0; i < MCUQ_DW_WORDS; ++i) {
        k[i] = mcuq_read_u32(filter + 4 * i);
    }
    const int8_t *rows[3] = {r0, r1, r2};
    const uint32_t mid[3] = {k[3], k[3] >> 16, k[4]}; /* w_k1 in the low half */
    for (int32_t ox = 0; ox < ow; ++ox) {
        uint32_t s = (uint32_t)bias;
        for (int32_t r = 0; r < 3; ++r) {
            const int8_t *x = rows[r] + ox * stride;
            s = mac_bb((uint32_t)(int32_t)x[0], k[r], s);
            s = mac_bb((uint32_t)(int32_t)x[1], mid[r], s);
            s = mac_bb((uint32_t)(int32_t)x[2], k[r] >> 16, s);
        }
        out[ox * step] = requantize(s, k, mult, shift, p);
    }
}

#if MCUQ_DW_ASM
/* What the assembly needs for the channels c0 .. c0 + n - 1 of one group and one output row (field order is the
 * order of the assembly's frame). */
typedef struct {
    const int8_t *row0; /* ring row iy0 of channel c0 (rows iy0 + 1, iy0 + 2 below) */
    const int8_t *row1;
    const int8_t *row2;
    int32_t step;        /* output bytes between pixels: C */
    int8_t *out;         /* channel c0's first output pixel */
    int32_t pairs;       /* ring bytes the pair loop advances: pixel pairs before the tail * 2 * stride */
    const int32_t *bias; /* bias[c0] */
    const int8_t *k;     /* channel c0's filter words */
    int32_t next;        /* ring bytes from where the pair loop ends to the next channel's row: width - pairs */
    const int8_t *k_end; /* the filter words after the last channel */
    int32_t triple;      /* a three-pixel tail (odd output width) */
    const int8_t *gend;  /* whole-row calls: the filter words of the next group (first: k), else NULL */
    const int8_t *src;   /* whole-row calls: input row iy0 + 2 at the group's first channel */
    int32_t c_n;         /* input bytes between pixels */
    int32_t width;       /* ring row width */
    int32_t pad_w;       /* left padding columns */
    int32_t cols;        /* input columns copied into a ring row (>= 1) */
    const int8_t *end;   /* the end of the ring regions */
    int32_t ring;        /* the bytes of the ring regions */
} dw_job;
/* The assembly of chan_row_c for the channels of a job, all with the fast rounding and activation bounds
 * [-128, 127], output width >= 2: pixel pairs, then three pixels when the width is odd.
 * Registers in the loops: r0-r2 the ring rows (post-incremented), r3 out, r4-r6/r8/r9 A0 A1 A2 B01 B2, r10/r11
 * (and r7 in the tail) the sums, r12/lr x02/x13, r7 the end of the pairs. The frame: sp+0 A0 A1 A2 B01 B2 bias
 * bias, sp+28 M R r, sp+40 step out pairs bias k next k_end triple (the job from `step` on). */
#define DW_REQ(s)                                                                                                      \
    "smmlar " s ", " s ", r4, " s "\n\t"                                                                               \
    "add " s ", " s ", " s ", asr #31\n\t"                                                                             \
    "qadd " s ", " s ", r5\n\t"                                                                                        \
    "asr " s ", " s ", r6\n\t"                                                                                         \
    "ssat " s ", #8, " s "\n\t"
/* stride 1, one filter row: pixel 0 (x0, x2).(w0, w2) + x1 w1, pixel 1 (x1, x3).(w0, w2) + x2 w1 */
#define DW_ROW1(rp, a, bw, b0, b1)                                                                                     \
    "ldr lr, [" rp "], #2\n\t"                                                                                         \
    "sxtb16 r12, lr\n\t"                                                                                               \
    "sxtb16 lr, lr, ror #8\n\t"                                                                                        \
    "smlad r10, r12, " a ", r10\n\t"                                                                                   \
    "smla" b0 " r10, lr, " bw ", r10\n\t"                                                                              \
    "smlad r11, lr, " a ", r11\n\t"                                                                                    \
    "smla" b1 " r11, r12, " bw ", r11\n\t"
/* stride 2, one filter row: pixel 0 as for stride 1, pixel 1 (x4, x2) x (w0, w2) crosswise + x3 w1 */
#define DW_ROW2(rp, a, bw, b0, b1)                                                                                     \
    "ldr lr, [" rp "], #4\n\t"                                                                                         \
    "sxtb16 r12, lr\n\t"                                                                                               \
    "sxtb16 lr, lr, ror #8\n\t"                                                                                        \
    "smlad r10, r12, " a ", r10\n\t"                                                                                   \
    "smla" b0 " r10, lr, " bw ", r10\n\t"                                                                              \
    "smla" b1 " r11, lr, " bw ", r11\n\t"                                                                              \
    "ldrsb lr, [" rp "]\n\t"                                                                                           \
    "pkhtb lr, r12, lr\n\t"                                                                                            \
    "smladx r11, lr, " a ", r11\n\t"
/* stride 1, three pixels, one filter row: as DW_ROW1, and pixel 2 (x4, x2) x (w0, w2) crosswise + x3 w1 */
#define DW_TRI1(rp, a, bw, b0, b1)                                                                                     \
    "ldr lr, [" rp "]\n\t"                                                                                             \
    "sxtb16 r12, lr\n\t"                                                                                               \
    "sxtb16 lr, lr, ror #8\n\t"                                                                                        \
    "smlad r10, r12, " a ", r10\n\t"                                                                                   \
    "smla" b0 " r10, lr, " bw ", r10\n\t"                                                                              \
    "smlad r11, lr, " a ", r11\n\t"                                                                                    \
    "smla" b1 " r11, r12, " bw ", r11\n\t"                                                                             \
    "smla" b1 " r7, lr, " bw ", r7\n\t"                                                                                \
    "ldrsb lr, [" rp ", #4]\n\t"                                                                                       \
    "pkhtb lr, r12, lr\n\t"                                                                                            \
    "smladx r7, lr, " a ", r7\n\t"
/* stride 2, three pixels, one filter row: pixel 0 as DW_ROW2, pixel 1 (x4, x2) x (w0, w2) crosswise + x3 w1,
 * pixel 2 (x4, x6).(w0, w2) + x5 w1 */
#define DW_TRI2(rp, a, bw, b0, b1)                                                                                     \
    "ldr lr, [" rp "]\n\t"                                                                                             \
    "sxtb16 r12, lr\n\t"                                                                                               \
    "sxtb16 lr, lr, ror #8\n\t"                                                                                        \
    "smlad r10, r12, " a ", r10\n\t"                                                                                   \
    "smla" b0 " r10, lr, " bw ", r10\n\t"                                                                              \
    "smla" b1 " r11, lr, " bw ", r11\n\t"                                                                              \
    "ldr lr, [" rp ", #4]\n\t"                                                                                         \
    "sxtb16 lr, lr\n\t"                                                                                                \
    "pkhtb r12, r12, lr\n\t"                                                                                           \
    "smladx r11, r12, " a ", r11\n\t"                                                                                  \
    "smlad r7, lr, " a ", r7\n\t"                                                                                      \
    "ldrsb lr, [" rp ", #5]\n\t"                                                                                       \
    "smla" b0 " r7, lr, " bw ", r7\n\t"
/* The whole job: ROW is DW_ROW1 or DW_ROW2, TRI DW_TRI1 or DW_TRI2. */
#define DW_JOB(ROW, TRI)                                                                                               \
    "push {r4, r5, r6, r7, r8, r9, r10, r11, lr}\n\t"                                                                  \
    "sub sp, sp, #104\n\t"                                                                                             \
    "add r12, r0, #12\n\t"                                                                                             \
    "ldm r12, {r3, r4, r5, r6, r7, r8, r9, r10}\n\t"                                                                   \
    "add r12, sp, #40\n\t"                                                                                             \
    "stm r12, {r3, r4, r5, r6, r7, r8, r9, r10}\n\t"                                                                   \
    "add r12, r0, #44\n\t"                                                                                             \
    "ldm r12, {r3, r4, r5, r6, r7, r8, r9, r10}\n\t"                                                                   \
    "add r12, sp, #72\n\t"                                                                                             \
    "stm r12, {r3, r4, r5, r6, r7, r8, r9, r10}\n\t"                                                                   \
    "ldm r0, {r0, r1, r2}\n\t"                                                                                         \
    "4:\n\t"                                                                                                           \
    "ldr r4, [sp, #56]\n\t"                                                                                            \
    "ldr r5, [sp, #72]\n\t"                                                                                            \
    "cmp r4, r5\n\t"                                                                                                   \
    "it eq\n\t"                                                                                                        \
    "bleq dw_group\n\t"                                                                                                \
    "add lr, sp, #44\n\t"                                                                                              \
    "ldm lr, {r3, r7, r10, r12}\n\t"                                                                                   \
    "ldm r12!, {r4, r5, r6, r8, r9}\n\t"                                                                               \
    "ldr r11, [r10], #4\n\t"                                                                                           \
    "stm sp, {r4, r5, r6, r8, r9, r11}\n\t"                                                                            \
    "str r11, [sp, #24]\n\t"                                                                                           \
    "ldm r12!, {r4, r5, r6}\n\t"                                                                                       \
    "add r8, sp, #28\n\t"                                                                                              \
    "stm r8, {r4, r5, r6}\n\t"                                                                                         \
    "add r4, r3, #1\n\t"                                                                                               \
    "stm lr, {r4, r7, r10, r12}\n\t"                                                                                   \
    "cmp r7, #0\n\t"                                                                                                   \
    "beq 5f\n\t"                                                                                                       \
    "add r7, r0, r7\n\t"                                                                                               \
    "1:\n\t"                                                                                                           \
    "ldm sp, {r4, r5, r6, r8, r9, r10, r11}\n\t" ROW("r0", "r4", "r8", "bb", "tb") ROW("r1", "r5", "r8", "bt", "tt")   \
        ROW("r2", "r6", "r9", "bb",                                                                                    \
            "tb") "add r12, sp, #28\n\t"                                                                               \
                  "ldm r12, {r4, r5, r6, r8}\n\t" DW_REQ("r10") DW_REQ(                                                \
                      "r11") "strb r10, [r3]\n\t"                                                                      \
                             "strb r11, [r3, r8]\n\t"                                                                  \
                             "add r3, r3, r8, lsl #1\n\t"                                                              \
                             "cmp r0, r7\n\t"                                                                          \
                             "bne 1b\n\t"                                                                              \
                             "5:\n\t"                                                                                  \
                             "ldr r4, [sp, #68]\n\t"                                                                   \
                             "cmp r4, #0\n\t"                                                                          \
                             "beq 6f\n\t"                                                                              \
                             "ldm sp, {r4, r5, r6, r8, r9, r10, r11}\n\t"                                              \
                             "mov r7, r10\n\t" TRI("r0", "r4", "r8", "bb", "tb") TRI("r1", "r5", "r8", "bt", "tt")     \
                                 TRI("r2", "r6", "r9", "bb",                                                           \
                                     "tb") "add r12, sp, #28\n\t"                                                      \
                                           "ldm r12, {r4, r5, r6, r8}\n\t" DW_REQ("r10") DW_REQ("r11")                 \
                                               DW_REQ("r7") "strb r10, [r3]\n\t"                                       \
                                                            "strb r11, [r3, r8]\n\t"                                   \
                                                            "strb r7, [r3, r8, lsl #1]\n\t"                            \
                                                            "6:\n\t"                                                   \
                                                            "add lr, sp, #56\n\t"                                      \
                                                            "ldm lr, {r4, r5, r6}\n\t"                                 \
                                                            "add r0, r0, r5\n\t"                                       \
                                                            "add r1, r1, r5\n\t"                                       \
                                                            "add r2, r2, r5\n\t"                                       \
                                                            "cmp r4, r6\n\t"                                           \
                                                            "bne 4b\n\t"                                               \
                                                            "add sp, sp, #104\n\t"                                     \
                                                            "pop {r4, r5, r6, r7, r8, r9, r10, r11, pc}\n\t"

/* Called by the jobs of whole rows at each group's first channel (r5 = k there): the next group's ring rows (r0,
 * r1 wrapped at the ring's end, r2 the region just freed), then dw_fill copies the group's row iy0 + 2 into r2 (+ pad_w). Reads and updates
 * the job's frame; uses r3-r12; r0-r2 out. */
__attribute__((naked, noinline, used)) static void dw_group(void)
{
    __asm__ volatile("add r5, r5, #128\n\t"
                     "str r5, [sp, #72]\n\t"
                     "ldr r5, [sp, #84]\n\t"
                     "sub r2, r0, r5, lsl #2\n\t"
                     "ldrd r7, r8, [sp, #96]\n\t"
                     "cmp r0, r7\n\t"
                     "it eq\n\t"
                     "subeq r0, r0, r8\n\t"
                     "cmp r1, r7\n\t"
                     "it eq\n\t"
                     "subeq r1, r1, r8\n\t"
                     "ldrd r3, r4, [sp, #76]\n\t"
                     "add r6, r3, #4\n\t"
                     "str r6, [sp, #76]\n\t"
                     "ldrd r6, r7, [sp, #88]\n\t"
                     "add r6, r2, r6\n\t"
                     "b dw_fill\n\t");
}

__attribute__((naked, noinline)) static void dw_job_s1(const dw_job *job __attribute__((unused)))
{
    __asm__ volatile(DW_JOB(DW_ROW1, DW_TRI1));
}

__attribute__((naked, noinline)) static void dw_job_s2(const dw_job *job __attribute__((unused)))
{
    __asm__ volatile(DW_JOB(DW_ROW2, DW_TRI2));
}
#endif

mcuq_status mcuq_depthwise_conv2d_s8_dsp(const mcuq_context *ctx, const mcuq_conv2d_params *params, const int8_t *input,
                                         const int8_t *filter, const int32_t *bias, int8_t *output)
{
    if (ctx == NULL || params == NULL || input == NULL || filter == NULL || bias == NULL || output == NULL ||
        params->quant.multiplier == NULL || params->quant.shift == NULL) {
        return MCUQ_ERR_ARGUMENT;
    }
    const mcuq_conv2d_params p = *params;
    if (p.input.n < 0 || p.output.n != p.input.n || p.input.h <= 0 || p.input.w <= 0 || p.input.c <= 0 ||
        p.output.h < 0 || p.output.w < 0 || p.depth_multiplier <= 0 || p.output.c != p.input.c * p.depth_multiplier ||
        p.window.filter.h <= 0 || p.window.filter.w <= 0 || p.window.stride.h <= 0 || p.window.stride.w <= 0 ||
        p.window.dilation.h <= 0 || p.window.dilation.w <= 0 || p.activation.min > p.activation.max ||
        p.output.w > 0x100000 || p.input.c > 0x10000) {
        return MCUQ_ERR_ARGUMENT;
    }
    if (p.window.filter.h != 3 || p.window.filter.w != 3 || p.depth_multiplier != 1 || p.window.dilation.h != 1 ||
        p.window.dilation.w != 1 || p.window.stride.w > 2 || p.window.pad.h < 0 || p.window.pad.w < 0) {
        return MCUQ_ERR_UNSUPPORTED;
    }
    if (ctx->size < mcuq_depthwise_conv2d_s8_dsp_scratch_size(params) || ctx->buf == NULL) {
        return MCUQ_ERR_ARGUMENT;
    }
    const int32_t c_n = p.input.c;
    const int32_t ow = p.output.w;
    const int32_t sw = p.window.stride.w;
    const int32_t width = ring_width(&p);
    const int32_t groups = (c_n + 3) / 4;
    const int32_t n_regions = 2 * groups + 1;
    const int32_t region = 4 * width;
    uint8_t *base = (uint8_t *)ctx->buf;
    int8_t *fifo = (int8_t *)(void *)(base + ((4u - ((uintptr_t)base & 3u)) & 3u));
    const int32_t in_image = p.input.h * p.input.w * c_n;
    const int32_t out_row = ow * c_n;
#if MCUQ_DW_ASM
    /* the assembly takes whole groups when every channel has the fast rounding, else the channels that have it */
    const int fast = p.activation.min <= -128 && p.activation.max >= 127 && ow >= 2;
    int all_fast = fast;
    for (int32_t c = 0; c < c_n && all_fast; ++c) {
        all_fast = mcuq_read_u32(filter + c * 4 * MCUQ_DW_WORDS + 28) != 0;
    }
    void (*const run)(const dw_job *) = sw == 1 ? dw_job_s1 : dw_job_s2;
    dw_job job;
    job.step = c_n;
    job.triple = ow & 1;
    job.pairs = (ow - 3 * (ow & 1)) * sw; /* (pixels before the tail) / 2 pairs of 2 * stride bytes */
    job.next = width - job.pairs;
    job.gend = NULL;
    job.c_n = c_n;
    job.width = width;
    job.pad_w = p.window.pad.w;
    job.cols = MCUQ_MIN(p.input.w, width - p.window.pad.w);
    job.end = fifo + n_regions * region;
    job.ring = n_regions * region;
    /* whole rows in one call (the assembly fills each group's new row): full groups, all fast */
    const int whole = all_fast && (c_n & 3) == 0 && job.cols >= 1;
#endif

    memset(fifo, (int)(int8_t)p.input_zp, (size_t)(n_regions * region + 4)); /* the padding columns stay */
    int32_t head = 0; /* the region of the oldest row's group 0 */
    int8_t *out = output;
    for (int32_t b = 0; b < p.input.n; ++b) {
        const int8_t *image = input + b * in_image;
        int32_t next = -p.window.pad.h; /* the next input row to enter the FIFO */
        for (int32_t oy = 0; oy < p.output.h; ++oy, out += out_row) {
            const int32_t iy0 = oy * p.window.stride.h - p.window.pad.h;
            if (next < iy0) {
                next = iy0;
            }
            for (; next <= iy0 + 2; ++next) {
#if MCUQ_DW_ASM
                if (whole && next == iy0 + 2 && next >= 0 && next < p.input.h) {
                    const int32_t i_mid = head + groups >= n_regions ? head + groups - n_regions : head + groups;
                    job.row0 = fifo + (head == 0 ? n_regions : head) * region; /* the free region's end */
                    job.row1 = fifo + i_mid * region;
                    job.row2 = job.row0;
                    job.out = out;
                    job.bias = bias;
                    job.k = filter;
                    job.k_end = filter + c_n * 4 * MCUQ_DW_WORDS;
                    job.gend = filter;
                    job.src = image + next * p.input.w * c_n;
                    run(&job);
                    job.gend = NULL;
                    head = i_mid;
                    continue;
                }
#endif
                /* each group of row `next` into the free region, which then holds it; the oldest group is freed */
                int32_t i_old = head;
                int32_t i_mid = head + groups;
                int32_t i_new = head == 0 ? n_regions - 1 : head - 1;
                for (int32_t g = 0; g < groups; ++g) {
                    int8_t *nw = fifo + i_new * region;
                    const int32_t c0 = 4 * g;
                    fill_group(nw, image, next, c0, MCUQ_MIN(4, c_n - c0), &p, width);
                    if (next == iy0 + 2) { /* the output row's group g: rows iy0, iy0 + 1, iy0 + 2 */
                        const int8_t *r0 = fifo + i_old * region;
                        const int8_t *r1 = fifo + (i_mid >= n_regions ? i_mid - n_regions : i_mid) * region;
                        const int32_t c1 = MCUQ_MIN(c0 + 4, c_n);
                        for (int32_t c = c0; c < c1; ++c, r0 += width, r1 += width, nw += width) {
                            const int8_t *k = filter + c * 4 * MCUQ_DW_WORDS;
#if MCUQ_DW_ASM
                            if (fast && mcuq_read_u32(k + 28) != 0) { /* the whole group when all are fast */
                                job.row0 = r0;
                                job.row1 = r1;
                                job.row2 = nw;
                                job.out = out + c;
                                job.bias = bias + c;
                                job.k = k;
                                job.k_end = filter + (all_fast ? c1 : c + 1) * 4 * MCUQ_DW_WORDS;
                                run(&job);
                                if (all_fast) {
                                    break;
                                }
                                continue;
                            }
#endif
                            chan_row_c(r0, r1, nw, out + c, c_n, ow, sw, k, bias[c], p.quant.multiplier[c],
                                       p.quant.shift[c], &p);
                        }
                    }
                    i_new = i_old;
                    i_old = i_old + 1 == n_regions ? 0 : i_old + 1;
                    ++i_mid;
                }
                head = i_old;
            }
        }
    }
    return MCUQ_OK;
}
