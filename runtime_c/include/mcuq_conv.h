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

#endif /* MCUQ_CONV_H */
