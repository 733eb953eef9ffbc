/* DEPTHWISE_CONV_2D, int8, depth multiplier 1, at most 16 filter taps, at least 4 channels: the Helium (MVE)
 * path, plain C with the same memory behaviour elsewhere (declared in mcuq_conv.h; its Python half is
 * mcuq/kernels/depthwise_mve.py).
 *
 * One output value is one VMLADAVA: a gather load (VLDRB.S8 with a vector of 16 byte offsets) picks the window's
 * kh * kw taps of one channel out of the scratch ring, and VMLADAVA multiplies them with the channel's 16 weights
 * (taps past kh * kw have weight 0) and adds them to the bias. The four lanes of a vector are four neighbouring
 * channels of one output pixel: one offset vector serves the four gathers, the requantization is vectorised with
 * per-lane multipliers and shifts (VQRDMULH == gemmlowp's SaturatingRoundingDoublingHighMul, VRSHL after a
 * ties-away fix-up) and the four int8 results are one contiguous store. A channel group's weights stay in
 * registers while it walks the row's pixels; when C % 4 != 0 the last group is channels C - 4 .. C - 1 (some
 * outputs are then written twice, with the same value). When every shift is negative and the activation bounds are
 * int8's own (general == 0: all of KWS and VWW), the row's pixels run through two inline-asm bodies (all 8 vector
 * registers, no spills): 24 instructions per 4 outputs inside the row, 35 at a border pixel.
 *
 * Data layouts:
 *  - filter: [C][16], channel c's taps in raster order (ky, kx), zero past kh * kw (made at compile time);
 *  - bias: folded, required: bias[c] - input_zp * sum over all kh * kw taps of w[c] (padding taps included);
 *  - scratch: a ring of `span` = (kh - 1) * dilation.h + 1 input rows, channel-planar [C][span][input.w]: input
 *    row v is ring row (v + pad.h) % span, and the rows of the top / bottom padding hold input_zp. The left and
 *    right padding columns are not stored: a tap there reads (gather offset 0, in bounds) and is then replaced by
 *    input_zp (VPSEL), so every padding tap contributes w * input_zp, which the folded bias cancels. Gather
 *    offsets are below span * input.w <= 255.
 *
 * In place: output row r is written only after every input row of its window has been copied into the ring (rows
 * are copied in order, each once), and the input is read nowhere else. So the output may start at input + d for
 * every d <= D, where D = min over output rows r but the last of (first input row not yet read after r) * in_row -
 * (r + 1) * out_row (mcuq/kernels/depthwise_mve.py; D >= 0 for the usual shapes). */
#include <string.h>

#include "mcuq_conv.h"
#include "../internal/mcuq_simd.h"
#include "../internal/mcuq_util.h"

#define DW_TAPS  16 /* gather lanes: filter.h * filter.w must not exceed it */
#define DW_LANES 4  /* channels per vector: input.c must be at least this */

static int dw_valid_window(const mcuq_conv2d_params *p)
{
    return p->window.filter.h > 0 && p->window.filter.w > 0 && p->window.dilation.h > 0 && p->window.dilation.w > 0 &&
           p->window.stride.w > 0 && p->window.stride.h > 0 && p->window.pad.w >= 0 && p->window.pad.h >= 0 &&
           p->input.w > 0 && p->input.c > 0;
}

static int32_t dw_span(const mcuq_conv2d_params *p)
{
    return (p->window.filter.h - 1) * p->window.dilation.h + 1;
}

int32_t mcuq_depthwise_conv2d_s8_mve_scratch_size(const mcuq_conv2d_params *params)
{
    if (params == NULL || !dw_valid_window(params)) {
        return 0;
    }
    return params->input.c * dw_span(params) * params->input.w;
}

/* Input row `src` (w pixels of c channels, NHWC) into ring row `slot`, channel-planar. */
static void dw_fill_row(int8_t *ring, int32_t slot, const int8_t *src, int32_t w, int32_t c, int32_t plane)
{
    int8_t *dst = ring + slot * w;
    int32_t ch = 0;
#if MCUQ_HAVE_MVE
    /* 8 channels of a pixel per scatter store: offsets k * plane */
    const uint16x8_t offs = vmulq_n_u16(vidupq_n_u16(0, 1), (uint16_t)plane);
    for (; ch + 8 <= c; ch += 8) {
        const int8_t *s = src + ch;
        int8_t *d = dst + ch * plane;
        for (int32_t x = 0; x < w; ++x) {
            vstrbq_scatter_offset_s16(d + x, offs, vldrbq_s16(s));
            s += c;
        }
    }
#endif
    for (; ch < c; ++ch) {
        const int8_t *s = src + ch;
        int8_t *d = dst + ch * plane;
        for (int32_t x = 0; x < w; ++x) {
            d[x] = *s;
            s += c;
        }
    }
}

/* The zero-point row: every channel's ring row `slot` */
static void dw_fill_zp(int8_t *ring, int32_t slot, int32_t w, int32_t c, int8_t zp, int32_t plane)
{
    for (int32_t ch = 0; ch < c; ++ch) {
        memset(ring + ch * plane + slot * w, zp, (size_t)w);
    }
}

/* -- one output row ----------------------------------------------------------------------------------------------- */
typedef struct {
    const int8_t *filter; /* [C][16] */
    const int32_t *bias;  /* folded */
    const int32_t *mult;
    const int32_t *shift;
    int32_t c;
    int32_t ow;
    int32_t w;     /* input pixels per row (ring row length) */
    int32_t sw;    /* stride along a row, pixels */
    int32_t pad_w; /* left padding, pixels */
    int32_t plane; /* ring bytes per channel: span * w */
    int32_t left;  /* output pixels [0, left) have taps left of the row */
    int32_t right; /* output pixels [right, ow) have taps right of it (left <= right <= ow) */
    int32_t out_zp;
    int32_t act_min;
    int32_t act_max;
    int8_t in_zp;
} dw_row_args;

#if MCUQ_HAVE_MVE
/* Four sums into one vector: two VMOVs of two core registers each. */
static inline __attribute__((always_inline)) int32x4_t dw_vec4(int32_t s0, int32_t s1, int32_t s2, int32_t s3)
{
    int32x4_t v;
    __asm__("vmov %q0[2], %q0[0], %1, %2\n\tvmov %q0[3], %q0[1], %3, %4"
            : "=w"(v)
            : "r"(s0), "r"(s2), "r"(s1), "r"(s3));
    return v;
}

/* A channel group's constants: its four channels' ring planes, weights and biases, the requantization vectors */
typedef struct {
    const int8_t *x0, *x1, *x2, *x3;
    const int32_t *bias;  /* the group's four biases, read per pixel (no vector register left for them) */
    const int32_t *shift; /* the group's four shifts */
    int8x16_t w0, w1, w2, w3;
    int32x4_t mult;
    int32x4_t left;  /* max(shift, 0) */
    int32x4_t right; /* min(shift, 0) */
    int32x4_t fix;   /* -1 where shift < 0 (a right shift), else 0 */
} dw_group;

/* What the asm paths read from memory (on the stack, made once per group and row): biases as LDRD pairs (b0 b2,
 * b1 b3), shifts, the row's gather offsets and tap columns */
typedef struct {
    int32_t bias[4];
    int32_t shift[4];
    uint8_t offs[16];
    uint8_t cols[16];
} dw_mem;

/* Four channels of one output pixel: the gathers at `offs` (border: taps off the row, lanes not in `valid`, read
 * input_zp instead), the sums, (sum) requantized as TFLite's MultiplyByQuantizedMultiplier (VRSHL rounds ties up, so
 * for a right shift negatives go one down first: ties away from zero), + zp, clamped, stored at o.
 * general (a constant): 0 when every shift is negative (no left shift, every lane shifts right) and the activation
 * bounds are int8's own (the clamp is the saturating narrowing of two VQMOVNs). */
static inline __attribute__((always_inline)) void dw_pixel(const dw_group *g, uint8x16_t offs, int border,
                                                           mve_pred16_t valid, int8x16_t zpv, int general,
                                                           const dw_row_args *a, int8_t *o)
{
    int8x16_t x0 = vldrbq_gather_offset_s8(g->x0, offs);
    int8x16_t x1 = vldrbq_gather_offset_s8(g->x1, offs);
    int8x16_t x2 = vldrbq_gather_offset_s8(g->x2, offs);
    int8x16_t x3 = vldrbq_gather_offset_s8(g->x3, offs);
    if (border) {
        x0 = vpselq_s8(x0, zpv, valid);
        x1 = vpselq_s8(x1, zpv, valid);
        x2 = vpselq_s8(x2, zpv, valid);
        x3 = vpselq_s8(x3, zpv, valid);
    }
    const int32_t s0 = vmladavaq_s8(g->bias[0], x0, g->w0);
    const int32_t s1 = vmladavaq_s8(g->bias[1], x1, g->w1);
    const int32_t s2 = vmladavaq_s8(g->bias[2], x2, g->w2);
    const int32_t s3 = vmladavaq_s8(g->bias[3], x3, g->w3);
    int32x4_t acc = dw_vec4(s0, s1, s2, s3);
    if (general) {
        acc = vshlq_s32(acc, g->left);
    }
    acc = vqrdmulhq_s32(acc, g->mult);
    if (general) {
        acc = vqaddq_s32(acc, vandq_s32(vshrq_n_s32(acc, 31), g->fix));
    } else {
        acc = vqaddq_s32(acc, vshrq_n_s32(acc, 31));
    }
    /* all shifts right (general == 0): read them from params again, a vector register fewer */
    acc = vrshlq_s32(acc, general ? g->right : vldrwq_s32(g->shift));
    acc = vaddq_n_s32(acc, a->out_zp);
    if (general) {
        acc = vminq_s32(vmaxq_s32(acc, vdupq_n_s32(a->act_min)), vdupq_n_s32(a->act_max));
    } else { /* saturate to int16 in the low halves, then to int8 in the low bytes of each 32-bit lane, in place */
        __asm__("vqmovnb.s32 %q0, %q0\n\tvqmovnb.s16 %q0, %q0" : "+w"(acc));
    }
    vstrbq_s32(o, acc);
}

/* dw_pixel (general == 0) over n >= 1 interior pixels, as one loop the compiler cannot spill from: 24 instructions
 * per 4 outputs, all 8 vector registers in use (4 weights, multipliers, offsets, 2 temporaries). The biases go
 * through the two core registers VMLADAVA accumulates into (LDRD, ordered b0 b2 b1 b3), the shifts are reloaded. */
static inline __attribute__((always_inline)) void dw_interior(const dw_group *g, const dw_mem *m, uint8x16_t offs,
                                                              int32_t n, const dw_row_args *a, int8_t *o)
{
    register int32_t count __asm__("lr") = n;
    int32_t ra; /* VMLADAVA accumulates into even registers only: constraint Te */
    int32_t rb;
    int32x4_t t0;
    int8x16_t t1;
    __asm__ volatile("dls lr, lr\n"
                     "1:\n\t"
                     "ldrd %[ra], %[rb], %[b02]\n\t"
                     "vldrb.u8 %q[t1], [%[x0], %q[offs]]\n\t"
                     "vmladava.s8 %[ra], %q[t1], %q[w0]\n\t"
                     "vldrb.u8 %q[t1], [%[x2], %q[offs]]\n\t"
                     "vmladava.s8 %[rb], %q[t1], %q[w2]\n\t"
                     "vmov %q[t0][2], %q[t0][0], %[ra], %[rb]\n\t"
                     "ldrd %[ra], %[rb], %[b13]\n\t"
                     "vldrb.u8 %q[t1], [%[x1], %q[offs]]\n\t"
                     "vmladava.s8 %[ra], %q[t1], %q[w1]\n\t"
                     "vldrb.u8 %q[t1], [%[x3], %q[offs]]\n\t"
                     "vmladava.s8 %[rb], %q[t1], %q[w3]\n\t"
                     "vmov %q[t0][3], %q[t0][1], %[ra], %[rb]\n\t"
                     "vqrdmulh.s32 %q[t0], %q[t0], %q[mult]\n\t"
                     "vshr.s32 %q[t1], %q[t0], #31\n\t"
                     "vqadd.s32 %q[t0], %q[t0], %q[t1]\n\t"
                     "vldrw.u32 %q[t1], %[shift]\n\t"
                     "vrshl.s32 %q[t0], %q[t0], %q[t1]\n\t"
                     "vadd.i32 %q[t0], %q[t0], %[zp]\n\t"
                     "vqmovnb.s32 %q[t0], %q[t0]\n\t"
                     "vqmovnb.s16 %q[t0], %q[t0]\n\t"
                     "vstrb.32 %q[t0], [%[o]]\n\t"
                     "add %[o], %[o], %[c]\n\t"
                     "vadd.i8 %q[offs], %q[offs], %[step]\n\t"
                     "le lr, 1b"
                     : [t0] "=&w"(t0), [t1] "=&w"(t1), [ra] "=&Te"(ra), [rb] "=&Te"(rb), [o] "+l"(o), [offs] "+w"(offs),
                       "+r"(count)
                     : [b02] "m"(*(const int32_t(*)[2]) & m->bias[0]), [b13] "m"(*(const int32_t(*)[2]) & m->bias[2]),
                       [shift] "m"(m->shift), [x0] "r"(g->x0), [x1] "r"(g->x1), [x2] "r"(g->x2), [x3] "r"(g->x3),
                       [w0] "w"(g->w0), [w1] "w"(g->w1), [w2] "w"(g->w2), [w3] "w"(g->w3), [mult] "w"(g->mult),
                       [zp] "r"(a->out_zp), [c] "r"(a->c), [step] "r"(a->sw)
                     : "memory");
}

/* Border pixels [from, to) of one group: the taps off the row are masked per pixel */
/* dw_pixel (general == 0) for one border pixel whose window starts at column col (modulo 256): the lanes whose
 * column is off the row gather offset 0 and then take input_zp (VDUP under a VPT predicate). */
static inline __attribute__((always_inline)) void dw_border_fast(const dw_group *g, const dw_mem *m, uint32_t col,
                                                                 const dw_row_args *a, int8_t *o)
{
    int32_t ra; /* VMLADAVA accumulates into even registers only: constraint Te */
    int32_t rb;
    int32x4_t t0;
    int8x16_t t1;
    uint8x16_t offs;
    __asm__ volatile(
        "vldrw.u32 %q[offs], %[offs0]\n\t"
        "vadd.i8 %q[offs], %q[offs], %[col]\n\t"
        "vldrw.u32 %q[t1], %[cols]\n\t"
        "vadd.i8 %q[t1], %q[t1], %[col]\n\t"
        "vcmp.u8 cs, %q[t1], %[w]\n\t"
        "vpst\n\t"
        "vmovt.i8 %q[offs], #0\n\t"
        "ldrd %[ra], %[rb], %[b02]\n\t"
        "vldrb.u8 %q[t1], [%[x0], %q[offs]]\n\t"
        "vpst\n\t"
        "vdupt.8 %q[t1], %[zpi]\n\t"
        "vmladava.s8 %[ra], %q[t1], %q[w0]\n\t"
        "vldrb.u8 %q[t1], [%[x2], %q[offs]]\n\t"
        "vpst\n\t"
        "vdupt.8 %q[t1], %[zpi]\n\t"
        "vmladava.s8 %[rb], %q[t1], %q[w2]\n\t"
        "vmov %q[t0][2], %q[t0][0], %[ra], %[rb]\n\t"
        "ldrd %[ra], %[rb], %[b13]\n\t"
        "vldrb.u8 %q[t1], [%[x1], %q[offs]]\n\t"
        "vpst\n\t"
        "vdupt.8 %q[t1], %[zpi]\n\t"
        "vmladava.s8 %[ra], %q[t1], %q[w1]\n\t"
        "vldrb.u8 %q[t1], [%[x3], %q[offs]]\n\t"
        "vpst\n\t"
        "vdupt.8 %q[t1], %[zpi]\n\t"
        "vmladava.s8 %[rb], %q[t1], %q[w3]\n\t"
        "vmov %q[t0][3], %q[t0][1], %[ra], %[rb]\n\t"
        "vqrdmulh.s32 %q[t0], %q[t0], %q[mult]\n\t"
        "vshr.s32 %q[t1], %q[t0], #31\n\t"
        "vqadd.s32 %q[t0], %q[t0], %q[t1]\n\t"
        "vldrw.u32 %q[t1], %[shift]\n\t"
        "vrshl.s32 %q[t0], %q[t0], %q[t1]\n\t"
        "vadd.i32 %q[t0], %q[t0], %[zp]\n\t"
        "vqmovnb.s32 %q[t0], %q[t0]\n\t"
        "vqmovnb.s16 %q[t0], %q[t0]\n\t"
        "vstrb.32 %q[t0], [%[o]]"
        : [t0] "=&w"(t0), [t1] "=&w"(t1), [offs] "=&w"(offs), [ra] "=&Te"(ra), [rb] "=&Te"(rb)
        : [b02] "m"(*(const int32_t(*)[2]) & m->bias[0]), [b13] "m"(*(const int32_t(*)[2]) & m->bias[2]),
          [shift] "m"(m->shift), [offs0] "m"(m->offs), [cols] "m"(m->cols), [col] "r"(col), [w] "r"(a->w),
          [zpi] "r"((int32_t)a->in_zp), [o] "l"(o), [x0] "r"(g->x0), [x1] "r"(g->x1), [x2] "r"(g->x2), [x3] "r"(g->x3),
          [w0] "w"(g->w0), [w1] "w"(g->w1), [w2] "w"(g->w2), [w3] "w"(g->w3), [mult] "w"(g->mult), [zp] "r"(a->out_zp)
        : "memory");
}

/* Border pixels [from, to) of one group: the taps off the row are masked per pixel */
static inline __attribute__((always_inline)) void dw_border(const dw_group *g, uint8x16_t offs0, uint8x16_t cols,
                                                            const dw_mem *m, int32_t from, int32_t to, int general,
                                                            const dw_row_args *a, int8_t *out)
{
    const int8x16_t zpv = vdupq_n_s8(a->in_zp);
    for (int32_t ox = from; ox < to; ++ox) {
        const uint8_t col = (uint8_t)(ox * a->sw - a->pad_w); /* modulo 256: columns left of the row wrap */
        if (general) {
            const mve_pred16_t valid = vpnot(vcmpcsq_n_u8(vaddq_n_u8(cols, col), (uint8_t)a->w));
            const uint8x16_t offs = vpselq_u8(vaddq_n_u8(offs0, col), vdupq_n_u8(0), valid);
            dw_pixel(g, offs, 1, valid, zpv, general, a, out + ox * a->c);
        } else {
            dw_border_fast(g, m, col, a, out + ox * a->c);
        }
    }
}

static inline __attribute__((always_inline)) void dw_row_mve(const dw_row_args *a, const int8_t *ring,
                                                             const uint8_t *offsets, const uint8_t *columns,
                                                             int general, int8_t *out)
{
    const uint8x16_t offs0 = vldrbq_u8(offsets);
    const uint8x16_t cols = vldrbq_u8(columns);
    const int32_t c = a->c;
    const int32_t plane = a->plane;
    const int32_t step = a->sw;
    dw_mem m __attribute__((aligned(8)));
    memcpy(m.offs, offsets, sizeof m.offs);
    memcpy(m.cols, columns, sizeof m.cols);
    for (int32_t g0 = 0; g0 < c; g0 += DW_LANES) {
        const int32_t ch = g0 + DW_LANES <= c ? g0 : c - DW_LANES;
        const int8_t *f = a->filter + ch * DW_TAPS;
        dw_group g;
        g.x0 = ring + ch * plane;
        g.x1 = g.x0 + plane;
        g.x2 = g.x1 + plane;
        g.x3 = g.x2 + plane;
        g.bias = a->bias + ch;
        g.shift = a->shift + ch;
        g.w0 = vldrbq_s8(f);
        g.w1 = vldrbq_s8(f + DW_TAPS);
        g.w2 = vldrbq_s8(f + 2 * DW_TAPS);
        g.w3 = vldrbq_s8(f + 3 * DW_TAPS);
        g.mult = vldrwq_s32(a->mult + ch);
        const int32x4_t shift = vldrwq_s32(a->shift + ch);
        const int32x4_t zero = vdupq_n_s32(0);
        g.left = vmaxq_s32(shift, zero);
        g.right = vminq_s32(shift, zero);
        g.fix = vshrq_n_s32(g.right, 31);
        m.bias[0] = g.bias[0];
        m.bias[1] = g.bias[2];
        m.bias[2] = g.bias[1];
        m.bias[3] = g.bias[3];
        memcpy(m.shift, g.shift, sizeof m.shift);
        dw_border(&g, offs0, cols, &m, 0, a->left, general, a, out + ch);
        if (a->left < a->right) {
            uint8x16_t offs = vaddq_n_u8(offs0, (uint8_t)(a->left * step - a->pad_w));
            int8_t *o = out + a->left * c + ch;
            if (general) {
                for (int32_t ox = a->left; ox < a->right; ++ox) {
                    dw_pixel(&g, offs, 0, 0, vdupq_n_s8(0), general, a, o);
                    offs = vaddq_n_u8(offs, (uint8_t)step);
                    o += c;
                }
            } else {
                dw_interior(&g, &m, offs, a->right - a->left, a, o);
            }
        }
        dw_border(&g, offs0, cols, &m, a->right, a->ow, general, a, out + ch);
    }
}

static void dw_row_fast(const dw_row_args *a, const int8_t *ring, const uint8_t *offsets, const uint8_t *columns,
                        int8_t *out)
{
    dw_row_mve(a, ring, offsets, columns, 0, out);
}

static void dw_row_general(const dw_row_args *a, const int8_t *ring, const uint8_t *offsets, const uint8_t *columns,
                           int8_t *out)
{
    dw_row_mve(a, ring, offsets, columns, 1, out);
}

static void dw_row(const dw_row_args *a, const int8_t *ring, const uint8_t *offsets, const uint8_t *columns,
                   int general, int8_t *out)
{
    if (general) {
        dw_row_general(a, ring, offsets, columns, out);
    } else {
        dw_row_fast(a, ring, offsets, columns, out);
    }
}
#else
/* Offsets as the MVE path reads them: a tap whose column (offsets[t] - col, modulo 256) is off the row reads
 * offset 0 and uses input_zp. */
static void dw_row(const dw_row_args *a, const int8_t *ring, const uint8_t *offsets, const uint8_t *columns,
                   int general, int8_t *out)
{
    const int32_t c = a->c;
    (void)general;
    for (int32_t ch = 0; ch < c; ++ch) {
        const int8_t *w = a->filter + ch * DW_TAPS;
        const int8_t *x = ring + ch * a->plane;
        for (int32_t ox = 0; ox < a->ow; ++ox) {
            const uint8_t col = (uint8_t)(ox * a->sw - a->pad_w);
            uint32_t acc = (uint32_t)a->bias[ch];
            const int border = ox < a->left || ox >= a->right; /* else every tap is on the row */
            for (int32_t t = 0; t < DW_TAPS; ++t) {
                const int valid = !border || (uint8_t)(columns[t] + col) < a->w;
                const int32_t v = valid ? x[(uint8_t)(offsets[t] + col)] : a->in_zp;
                acc += (uint32_t)((int32_t)w[t] * v);
            }
            int32_t y = mcuq_requantize((int32_t)acc, a->mult[ch], a->shift[ch]) + a->out_zp;
            out[ox * c + ch] = (int8_t)MCUQ_CLAMP(y, a->act_min, a->act_max);
        }
    }
}
#endif

mcuq_status mcuq_depthwise_conv2d_s8_mve(const mcuq_context *ctx, const mcuq_conv2d_params *params, const int8_t *input,
                                         const int8_t *filter, const int32_t *bias, int8_t *output)
{
    if (ctx == NULL || params == NULL || input == NULL || filter == NULL || bias == NULL || output == NULL ||
        params->quant.multiplier == NULL || params->quant.shift == NULL) {
        return MCUQ_ERR_ARGUMENT;
    }
    const mcuq_conv2d_params p = *params;
    if (p.input.n < 0 || p.output.n != p.input.n || p.input.h <= 0 || p.output.h < 0 || p.output.w < 0 ||
        p.depth_multiplier <= 0 || p.output.c != p.input.c * p.depth_multiplier || !dw_valid_window(&p) ||
        p.activation.min > p.activation.max) {
        return MCUQ_ERR_ARGUMENT;
    }
    const int32_t scratch = mcuq_depthwise_conv2d_s8_mve_scratch_size(params);
    if (ctx->size < scratch || ctx->buf == NULL) {
        return MCUQ_ERR_ARGUMENT;
    }
    const int32_t kh = p.window.filter.h;
    const int32_t kw = p.window.filter.w;
    const int32_t span = dw_span(&p);
    const int32_t ow = p.output.w;
    /* u8 offsets: the plane and every column a window touches (a padding column wraps modulo 256 above the row) */
    const int32_t reach = (MCUQ_MAX(ow, 1) - 1) * p.window.stride.w + (kw - 1) * p.window.dilation.w;
    if (p.depth_multiplier != 1 || kh * kw > DW_TAPS || p.input.c < DW_LANES || span * p.input.w > 255 ||
        p.window.pad.w + p.input.w > 256 || reach - p.window.pad.w > 255) {
        return MCUQ_ERR_UNSUPPORTED;
    }
    if (p.input.n == 0 || p.output.h == 0 || ow == 0) {
        return MCUQ_OK;
    }
    int8_t *const ring = (int8_t *)ctx->buf;
    const int32_t c = p.input.c;
    const int32_t w = p.input.w;
    const int32_t in_row = w * c;
    const int32_t out_row = ow * c;
    const int32_t sw = p.window.stride.w;
    const int32_t last_col = (kw - 1) * p.window.dilation.w;
    const int8_t zp = (int8_t)p.input_zp;
    int32_t left = 0;
    while (left < ow && left * sw < p.window.pad.w) {
        ++left;
    }
    int32_t right = ow;
    while (right > left && (right - 1) * sw - p.window.pad.w + last_col >= w) {
        --right;
    }
    const dw_row_args args = {
        filter, bias,        p.quant.multiplier, p.quant.shift,    c, ow, w, sw, p.window.pad.w, span * w, left,
        right,  p.output_zp, p.activation.min,   p.activation.max, zp};
    int general = p.activation.min > -128 || p.activation.max < 127; /* or some shift >= 0 */
    for (int32_t ch = 0; ch < c; ++ch) {
        general |= p.quant.shift[ch] >= 0;
    }
    uint8_t offsets[DW_TAPS];
    uint8_t columns[DW_TAPS]; /* column of tap t relative to the window's first: kx * dilation.w (0 past kh * kw) */
    for (int32_t t = 0; t < DW_TAPS; ++t) {
        columns[t] = (uint8_t)(t < kh * kw ? (t % kw) * p.window.dilation.w : 0);
    }
    int8_t *out = output;
    for (int32_t n = 0; n < p.input.n; ++n) {
        const int8_t *image = input + n * p.input.h * in_row;
        int32_t next = -p.window.pad.h; /* the next row to copy (rows of the padding are < 0 or >= input.h) */
        for (int32_t oy = 0; oy < p.output.h; ++oy) {
            const int32_t top = oy * p.window.stride.h - p.window.pad.h;
            if (next < top) {
                next = top;
            }
            for (; next < top + span; ++next) {
                const int32_t slot = (next + p.window.pad.h) % span;
                if (next < 0 || next >= p.input.h) {
                    dw_fill_zp(ring, slot, w, c, zp, span * w);
                } else {
                    dw_fill_row(ring, slot, image + next * in_row, w, c, span * w);
                }
            }
            for (int32_t t = 0; t < DW_TAPS; ++t) { /* the taps past kh * kw read the window's column, weight 0 */
                const int32_t slot = (top + (t / kw) * p.window.dilation.h + p.window.pad.h) % span;
                offsets[t] = (uint8_t)(t < kh * kw ? slot * w + columns[t] : 0);
            }
            dw_row(&args, ring, offsets, columns, general, out);
            out += out_row;
        }
    }
    return MCUQ_OK;
}
