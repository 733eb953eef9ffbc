/* Convolution family: CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED (int8 activations and weights).
 *
 * Semantics are TFLite 2.14's reference kernels (reference_integer_ops::ConvPerChannel,
 * DepthwiseConvPerChannel, FullyConnected, FullyConnectedPerChannel):
 *   acc = sum over taps of w * (x - input_zp)  [+ bias[c]]          (int32, cannot overflow: checked at compile time)
 *   y   = clamp(MultiplyByQuantizedMultiplier(acc, multiplier[c], shift[c]) + output_zp, act_min, act_max)
 * Taps that fall into the zero padding are skipped (they contribute nothing).
 * Every integer parameter is computed at compile time by mcuq/lower/conv.py and mirrored by mcuq/kernels/conv.py.
 */
#ifndef MCUQ_CONV_H
#define MCUQ_CONV_H
#include "mcuq_types.h"

/* CONV_2D and DEPTHWISE_CONV_2D parameters (one struct for both kernels). Shapes: input [input.n, input.h,
 * input.w, input.c], output [output.n == input.n, output.h, output.w, output.c]; filter OHWI
 * [output.c, window.filter.h, window.filter.w, input.c] for CONV_2D, 1HWC [1, window.filter.h, window.filter.w,
 * output.c] for DEPTHWISE_CONV_2D, where output.c = input.c * depth_multiplier and output channel
 * c * depth_multiplier + m reads input channel c. depth_multiplier is 1 for CONV_2D.
 * window.pad is the top / left zero padding (TFLite's padding_values). quant has output.c entries (per-tensor
 * weights are broadcast at compile time). */
typedef struct {
    mcuq_dims input;
    mcuq_dims output;
    mcuq_window window;
    int32_t depth_multiplier; /* >= 1; 1 for CONV_2D */
    int32_t input_zp;         /* [-128, 127] */
    int32_t output_zp;        /* [-128, 127] */
    mcuq_activation activation;
    mcuq_per_channel_quant quant;
} mcuq_conv2d_params;

/* int8 2-D convolution, NHWC activations, OHWI per-channel symmetric int8 filter (zero point 0),
 * optional int32 bias [output.c] (NULL for none). Needs mcuq_conv2d_s8_scratch_size(params) bytes of scratch in
 * ctx (0 for this portable kernel). Returns MCUQ_ERR_ARGUMENT for a NULL pointer, too little scratch or a
 * non-positive size/stride/dilation. */
mcuq_status mcuq_conv2d_s8(const mcuq_context *ctx, const mcuq_conv2d_params *params, const int8_t *input,
                           const int8_t *filter, const int32_t *bias, int8_t *output);
int32_t mcuq_conv2d_s8_scratch_size(const mcuq_conv2d_params *params);

/* int8 depthwise 2-D convolution (depth multiplier >= 1), NHWC activations, 1HWC per-channel symmetric int8
 * filter, optional int32 bias [output.c] (NULL for none). Scratch and errors as mcuq_conv2d_s8. */
mcuq_status mcuq_depthwise_conv2d_s8(const mcuq_context *ctx, const mcuq_conv2d_params *params, const int8_t *input,
                                     const int8_t *filter, const int32_t *bias, int8_t *output);
int32_t mcuq_depthwise_conv2d_s8_scratch_size(const mcuq_conv2d_params *params);

/* The Helium (MVE) variant of mcuq_depthwise_conv2d_s8 (plain C with the same memory use elsewhere): depth
 * multiplier 1, at most 16 filter taps and at least 4 channels only (else MCUQ_ERR_UNSUPPORTED). filter [C][16]:
 * channel c's filter.h * filter.w taps in raster order, zero past them; bias required, folded: bias[c] - input_zp *
 * sum of channel c's taps. Scratch: a ring of (filter.h - 1) * dilation.h + 1 input rows. May run in place:
 * mcuq_depthwise_conv2d_s8_mve.c says how far the output may overlap the input. */
mcuq_status mcuq_depthwise_conv2d_s8_mve(const mcuq_context *ctx, const mcuq_conv2d_params *params, const int8_t *input,
                                         const int8_t *filter, const int32_t *bias, int8_t *output);
int32_t mcuq_depthwise_conv2d_s8_mve_scratch_size(const mcuq_conv2d_params *params);

/* FULLY_CONNECTED parameters. input [batches, input_size] (any rank, flattened), filter [output_size,
 * input_size], output [batches, output_size].
 * One kernel serves both quantization schemes: per_channel == 0 uses quant.multiplier[0] / quant.shift[0] for
 * every output (TFLite's per-tensor FullyConnected, which also honours a filter zero point through weights_zp);
 * per_channel == 1 uses multiplier[o] / shift[o] (FullyConnectedPerChannel; weights_zp is then 0). */
typedef struct {
    int32_t batches;
    int32_t input_size;
    int32_t output_size;
    int32_t input_zp;   /* [-128, 127] */
    int32_t weights_zp; /* [-128, 127]; 0 for per-channel weights */
    int32_t output_zp;  /* [-128, 127] */
    mcuq_activation activation;
    int32_t per_channel; /* 0: one multiplier/shift; 1: output_size of them */
    mcuq_per_channel_quant quant;
} mcuq_fully_connected_params;

/* int8 fully connected layer: output[b][o] = requantize(sum_i (filter[o][i] - weights_zp) * (input[b][i] -
 * input_zp) + bias[o]); bias is int32 [output_size] or NULL. Scratch and errors as mcuq_conv2d_s8. */
mcuq_status mcuq_fully_connected_s8(const mcuq_context *ctx, const mcuq_fully_connected_params *params,
                                    const int8_t *input, const int8_t *filter, const int32_t *bias, int8_t *output);
int32_t mcuq_fully_connected_s8_scratch_size(const mcuq_fully_connected_params *params);

/* -- dsp path (SXTB16/SMLAD on Cortex-M4/M7/M33/M55, the same arithmetic in plain C elsewhere) ---------------
 * Chosen at compile time by mcuq/lower/specialize.py. Both take a folded bias, never NULL:
 * bias[c] - input_zp * sum of channel c's weights, and multiply raw int8 inputs by raw int8 weights, summing
 * modulo 2^32 (the final sum is exactly TFLite's int32 accumulator). Results are bit-identical to the portable
 * kernels. */

/* Output pixels per im2col block of mcuq_conv2d_s8_dsp. */
#define MCUQ_CONV_DSP_BLOCK 4

/* CONV_2D as mcuq_conv2d_s8 (same params, OHWI filter as is) with a folded bias. Needs
 * mcuq_conv2d_s8_dsp_scratch_size(params) bytes of 4-byte aligned scratch: MCUQ_CONV_DSP_BLOCK output pixels'
 * windows as int16 (8 * MCUQ_CONV_DSP_BLOCK * ceil(K / 4) bytes, K = filter.h * filter.w * input.c), plus
 * 4 * ceil(K / 4) when input.c % 4 != 0. Output pixels are computed in raster order in blocks of
 * MCUQ_CONV_DSP_BLOCK; a block's inputs are all read before any of its outputs is written, so the output may
 * overlap the input as mcuq/kernels/overlap.py's window_overlap says. MCUQ_ERR_ARGUMENT as mcuq_conv2d_s8, and
 * for a NULL bias or misaligned scratch. */
mcuq_status mcuq_conv2d_s8_dsp(const mcuq_context *ctx, const mcuq_conv2d_params *params, const int8_t *input,
                               const int8_t *filter, const int32_t *bias, int8_t *output);
int32_t mcuq_conv2d_s8_dsp_scratch_size(const mcuq_conv2d_params *params);

/* FULLY_CONNECTED as mcuq_fully_connected_s8 for weights_zp == 0 (MCUQ_ERR_UNSUPPORTED otherwise), with a folded
 * bias and the filter, 4-byte aligned, in the layout of mcuq/kernels/conv_dsp.py's fc_dsp_weights: rows zero-padded
 * to P = 4 * ceil(input_size / 4) bytes, units in groups of 4 (the last one output_size % 4 wide), within a group
 * one 4-byte word per unit for each 4 inputs. No scratch (0 bytes). The output must not overlap the input.
 * MCUQ_ERR_ARGUMENT as mcuq_fully_connected_s8, and for a NULL bias or a misaligned filter. */
mcuq_status mcuq_fully_connected_s8_dsp(const mcuq_context *ctx, const mcuq_fully_connected_params *params,
                                        const int8_t *input, const int8_t *filter, const int32_t *bias, int8_t *output);
int32_t mcuq_fully_connected_s8_dsp_scratch_size(const mcuq_fully_connected_params *params);

/* int8 depthwise 3x3 convolution, dsp path: depth multiplier 1, dilation 1, stride.w 1 or 2, pad >= 0 (else
 * MCUQ_ERR_UNSUPPORTED). The filter [C][3][4] (mcuq/kernels/depthwise_dsp.py's depthwise_dsp_weights) and the
 * folded bias bias[c] - input_zp * sum(w[c]) (never NULL). Needs mcuq_depthwise_conv2d_s8_dsp_scratch_size(params)
 * bytes of scratch (a ring of 3 input rows); the output may overlap the input as depthwise_dsp_overlap computes
 * (output == input is fine for stride 1 and 2 with SAME padding). */
mcuq_status mcuq_depthwise_conv2d_s8_dsp(const mcuq_context *ctx, const mcuq_conv2d_params *params, const int8_t *input,
                                         const int8_t *filter, const int32_t *bias, int8_t *output);
int32_t mcuq_depthwise_conv2d_s8_dsp_scratch_size(const mcuq_conv2d_params *params);

/* CONV_2D, Helium (MVE) path; plain C with the same algorithm elsewhere. Same bits as mcuq_conv2d_s8, with the
 * filter in mcuq/kernels/nn_mve.py's mve_weights layout (rows zero-padded to KP = K rounded up to 16 and to a multiple
 * of 4 output channels, groups of 4 rows interleaved by 16-value chunks) and the folded bias
 * bias[c] - input_zp * sum(w[c]) (never NULL). Needs mcuq_conv2d_s8_mve_scratch_size(params) = 2 * KP bytes of
 * scratch (any alignment). Output pixels go in raster order in blocks of 2, each block's input read before its
 * output is written, so the output may overlap the input as mcuq/kernels/nn_mve.py's conv2d_mve_overlap says. */
mcuq_status mcuq_conv2d_s8_mve(const mcuq_context *ctx, const mcuq_conv2d_params *params, const int8_t *input,
                               const int8_t *filter, const int32_t *bias, int8_t *output);
int32_t mcuq_conv2d_s8_mve_scratch_size(const mcuq_conv2d_params *params);

/* FULLY_CONNECTED, Helium (MVE) path; plain C elsewhere. Same bits as mcuq_fully_connected_s8 for weights_zp == 0
 * (else MCUQ_ERR_UNSUPPORTED), with the filter in the mve_weights layout and the folded bias (never NULL). No
 * scratch; the output must not overlap the input. */
mcuq_status mcuq_fully_connected_s8_mve(const mcuq_context *ctx, const mcuq_fully_connected_params *params,
                                        const int8_t *input, const int8_t *filter, const int32_t *bias, int8_t *output);
int32_t mcuq_fully_connected_s8_mve_scratch_size(const mcuq_fully_connected_params *params);

/* -- 16x8: int16 activations, int8 or packed sub-8-bit weights (TFLite's 16x8 mode) -------------------------------
 * TFLite 2.14's reference_integer_ops ConvPerChannel / DepthwiseConvPerChannel / FullyConnected(PerChannel) for
 * int16 data. Activations are symmetric (no zero points). Which accumulator TFLite uses depends on the bias:
 *   acc64 == 1 (an int64 bias; CONV_2D and DEPTHWISE_CONV_2D without bias too):
 *     acc = sum w * x [+ bias[c]] in int64,
 *     y = clamp(mcuq_multiply_by_quantized_multiplier_s64(acc, multiplier[c], shift[c]), act_min, act_max)
 *     (TFLite's 16-bit reduced multiplier, one rounding; |acc| < 2^47 and shift <= 14, checked at compile time);
 *   acc64 == 0 (an int32 bias, or FULLY_CONNECTED without bias):
 *     acc = sum w * x [+ bias[c]] in int32 (cannot overflow: checked at compile time), y as the int8 kernels
 *     (gemmlowp double rounding), without zero points.
 * The bias is int64 in both (lowering widens an int32 bias). The filter is int8 (weight_bits 8) or the packed
 * uint8_t stream of runtime_c/src/internal/mcuq_packed.h (weight_bits 4, 2 or 1: one bit stream over the whole
 * filter in C order, channels not byte aligned); either may be passed, hence `const void *`. Scratch: 0 bytes.
 * MCUQ_ERR_ARGUMENT for a NULL pointer, too little scratch, a size/filter/stride/dilation below 1, weight_bits not
 * in {1, 2, 4, 8}, acc64 not 0 or 1, or an activation range that is empty or outside [-32768, 32767]. */

/* CONV_2D and DEPTHWISE_CONV_2D 16x8 parameters; shapes and layouts as mcuq_conv2d_params. */
typedef struct {
    mcuq_dims input;
    mcuq_dims output;
    mcuq_window window;
    int32_t depth_multiplier;     /* >= 1; 1 for CONV_2D */
    int32_t weight_bits;          /* 8, 4, 2 or 1 */
    int32_t acc64;                /* 1: int64 accumulator, reduced multiplier; 0: int32 accumulator */
    mcuq_activation activation;   /* within [-32768, 32767] */
    mcuq_per_channel_quant quant; /* output.c entries; shift <= 14 when acc64 */
} mcuq_conv2d_s16_params;

/* CONV_2D, int16 NHWC activations, OHWI per-channel symmetric filter (int8 or packed), optional int64 bias
 * [output.c] (NULL for none). */
mcuq_status mcuq_conv2d_s16(const mcuq_context *ctx, const mcuq_conv2d_s16_params *params, const int16_t *input,
                            const void *filter, const int64_t *bias, int16_t *output);
int32_t mcuq_conv2d_s16_scratch_size(const mcuq_conv2d_s16_params *params);

/* DEPTHWISE_CONV_2D (depth multiplier >= 1), int16 NHWC activations, 1HWC per-channel symmetric filter (int8 or
 * packed), optional int64 bias [output.c]. */
mcuq_status mcuq_depthwise_conv2d_s16(const mcuq_context *ctx, const mcuq_conv2d_s16_params *params,
                                      const int16_t *input, const void *filter, const int64_t *bias, int16_t *output);
int32_t mcuq_depthwise_conv2d_s16_scratch_size(const mcuq_conv2d_s16_params *params);

/* FULLY_CONNECTED 16x8 parameters; shapes as mcuq_fully_connected_params. weights_zp: the per-tensor int8
 * filter's zero point (TFLite honours it in 16x8 too), 0 for per-channel or packed filters. */
typedef struct {
    int32_t batches;
    int32_t input_size;
    int32_t output_size;
    int32_t weights_zp;  /* [-128, 127]; 0 unless per-tensor int8 */
    int32_t weight_bits; /* 8, 4, 2 or 1 */
    int32_t acc64;       /* as mcuq_conv2d_s16_params */
    mcuq_activation activation;
    int32_t per_channel; /* 0: one multiplier/shift; 1: output_size of them */
    mcuq_per_channel_quant quant;
} mcuq_fully_connected_s16_params;

/* FULLY_CONNECTED, int16 input [batches, input_size], filter [output_size, input_size] (int8 or packed), optional
 * int64 bias [output_size], int16 output [batches, output_size]. MCUQ_ERR_ARGUMENT also for a non-zero weights_zp
 * with packed weights. */
mcuq_status mcuq_fully_connected_s16(const mcuq_context *ctx, const mcuq_fully_connected_s16_params *params,
                                     const int16_t *input, const void *filter, const int64_t *bias, int16_t *output);
int32_t mcuq_fully_connected_s16_scratch_size(const mcuq_fully_connected_s16_params *params);

/* -- 16x8 dsp path (SXTB16 on the weights, SMLAD on int16 pairs; plain C with the same bits elsewhere) ----------
 * int8 weights only (weight_bits 8, else MCUQ_ERR_UNSUPPORTED), re-laid out at compile time by
 * mcuq/kernels/conv16_fast.py: rows zero-padded to a multiple of 4 bytes, and every 4-byte group stored as
 * (w0, w2, w1, w3). Exact sums (32-bit partial sums of at most 508 products, added into int64), so both
 * accumulators (acc64) give the portable kernels' bits. */

/* Output pixels per im2col block of mcuq_conv2d_s16_dsp. */
#define MCUQ_CONV_S16_DSP_BLOCK 4

/* CONV_2D as mcuq_conv2d_s16 with the filter [output.c][KP] (KP = 4 * ceil(K / 4), K = filter.h * filter.w *
 * input.c) in the layout above. Needs mcuq_conv2d_s16_dsp_scratch_size(params) = 2 * MCUQ_CONV_S16_DSP_BLOCK *
 * KP bytes of 4-byte aligned scratch (an im2col block of int16), none for a 1x1 filter without padding on
 * input.c % 4 == 0 (read in place). The output must not overlap the input.
 * MCUQ_ERR_ARGUMENT as mcuq_conv2d_s16, and for misaligned scratch. */
mcuq_status mcuq_conv2d_s16_dsp(const mcuq_context *ctx, const mcuq_conv2d_s16_params *params, const int16_t *input,
                                const int8_t *filter, const int64_t *bias, int16_t *output);
int32_t mcuq_conv2d_s16_dsp_scratch_size(const mcuq_conv2d_s16_params *params);

/* FULLY_CONNECTED as mcuq_fully_connected_s16 for weights_zp 0 (else MCUQ_ERR_UNSUPPORTED), the filter in
 * mcuq_fully_connected_s8_dsp's interleaved layout of groups of 4 units with the byte order above. No scratch
 * (0 bytes). The output must not overlap the input. MCUQ_ERR_ARGUMENT as mcuq_fully_connected_s16. */
mcuq_status mcuq_fully_connected_s16_dsp(const mcuq_context *ctx, const mcuq_fully_connected_s16_params *params,
                                         const int16_t *input, const int8_t *filter, const int64_t *bias,
                                         int16_t *output);
int32_t mcuq_fully_connected_s16_dsp_scratch_size(const mcuq_fully_connected_s16_params *params);

/* DEPTHWISE_CONV_2D as mcuq_depthwise_conv2d_s16 for depth_multiplier 1 and int8 weights (else
 * MCUQ_ERR_UNSUPPORTED), any filter, stride, dilation and padding, the filter widened at compile time
 * (mcuq/kernels/conv16_fast.py, dw16_dsp_weights): channels in groups of 4, [ceil(C / 4)][filter.h][filter.w][4]
 * little-endian int16 (channels beyond C zero), 4-byte aligned; SMLABB/SMLATT on (x[c], x[c + 1]) word pairs. No
 * scratch (0 bytes). The output must not overlap the input. MCUQ_ERR_ARGUMENT as mcuq_depthwise_conv2d_s16. */
mcuq_status mcuq_depthwise_conv2d_s16_dsp(const mcuq_context *ctx, const mcuq_conv2d_s16_params *params,
                                          const int16_t *input, const int8_t *filter, const int64_t *bias,
                                          int16_t *output);
int32_t mcuq_depthwise_conv2d_s16_dsp_scratch_size(const mcuq_conv2d_s16_params *params);

#endif /* MCUQ_CONV_H */
