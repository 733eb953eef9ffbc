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

#endif /* MCUQ_CONV_H */
