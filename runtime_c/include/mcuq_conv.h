/* Convolution family: CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED (int8 activations and weights).
 *
 * Semantics are TFLite 2.14's reference kernels (reference_integer_ops::ConvPerChannel,
 * DepthwiseConvPerChannel, FullyConnected, FullyConnectedPerChannel):
 *   acc = sum over taps of w * (x - input_zp)  [+ bias[c]]          (int32, cannot overflow: checked at compile time)
 *   y   = clamp(MultiplyByQuantizedMultiplier(acc, multiplier[c], shift[c]) + output_zp, act_min, act_max)
 * Taps that fall into the zero padding are skipped (they contribute nothing).
 * Every integer parameter is computed at compile time by mcuq/lower/conv.py; shift is TFLite's signed
 * exponent (positive = left shift), in [-31, 30].
 */
#ifndef MCUQ_CONV_H
#define MCUQ_CONV_H
#include "mcuq.h"

/* CONV_2D parameters. Shapes: input [batches, input_h, input_w, input_c], filter OHWI
 * [output_c, filter_h, filter_w, input_c], output [batches, output_h, output_w, output_c].
 * pad_h / pad_w are the top / left zero padding (TFLite's padding_values). multiplier and shift have
 * output_c entries (per-tensor weights are broadcast at compile time). */
typedef struct {
    int32_t batches;
    int32_t input_h;
    int32_t input_w;
    int32_t input_c;
    int32_t output_h;
    int32_t output_w;
    int32_t output_c;
    int32_t filter_h;
    int32_t filter_w;
    int32_t stride_h;
    int32_t stride_w;
    int32_t dilation_h;
    int32_t dilation_w;
    int32_t pad_h;
    int32_t pad_w;
    int32_t input_zp;  /* [-128, 127] */
    int32_t output_zp; /* [-128, 127] */
    int32_t act_min;   /* [-128, 127], act_min <= act_max */
    int32_t act_max;
    const int32_t *multiplier; /* [output_c], in [2^30, 2^31) or 0 */
    const int32_t *shift;      /* [output_c], in [-31, 30] */
} mcuq_conv2d_params;

/* int8 2-D convolution, NHWC activations, OHWI per-channel symmetric int8 filter (zero point 0),
 * optional int32 bias [output_c] (NULL for none). Returns MCUQ_ERR_ARGUMENT for a NULL pointer or a
 * non-positive size/stride/dilation. */
mcuq_status mcuq_conv2d_s8(const mcuq_conv2d_params *params, const int8_t *input, const int8_t *filter,
                           const int32_t *bias, int8_t *output);

/* DEPTHWISE_CONV_2D parameters. Shapes: input [batches, input_h, input_w, input_c], filter 1HWC
 * [1, filter_h, filter_w, output_c], output [batches, output_h, output_w, output_c] with
 * output_c = input_c * depth_multiplier; output channel c * depth_multiplier + m reads input channel c. */
typedef struct {
    int32_t batches;
    int32_t input_h;
    int32_t input_w;
    int32_t input_c;
    int32_t output_h;
    int32_t output_w;
    int32_t output_c;
    int32_t depth_multiplier;
    int32_t filter_h;
    int32_t filter_w;
    int32_t stride_h;
    int32_t stride_w;
    int32_t dilation_h;
    int32_t dilation_w;
    int32_t pad_h;
    int32_t pad_w;
    int32_t input_zp;  /* [-128, 127] */
    int32_t output_zp; /* [-128, 127] */
    int32_t act_min;   /* [-128, 127], act_min <= act_max */
    int32_t act_max;
    const int32_t *multiplier; /* [output_c] */
    const int32_t *shift;      /* [output_c], in [-31, 30] */
} mcuq_depthwise_conv2d_params;

/* int8 depthwise 2-D convolution (depth multiplier >= 1), NHWC activations, 1HWC per-channel symmetric int8
 * filter, optional int32 bias [output_c] (NULL for none). */
mcuq_status mcuq_depthwise_conv2d_s8(const mcuq_depthwise_conv2d_params *params, const int8_t *input,
                                     const int8_t *filter, const int32_t *bias, int8_t *output);

/* FULLY_CONNECTED parameters. input [batches, input_size] (any rank, flattened), filter [output_size,
 * input_size], output [batches, output_size].
 * One kernel serves both quantization schemes: per_channel == 0 uses multiplier[0] / shift[0] for every output
 * (TFLite's per-tensor FullyConnected, which also honours a filter zero point through weights_zp);
 * per_channel == 1 uses multiplier[o] / shift[o] (FullyConnectedPerChannel; weights_zp is then 0). */
typedef struct {
    int32_t batches;
    int32_t input_size;
    int32_t output_size;
    int32_t input_zp;   /* [-128, 127] */
    int32_t weights_zp; /* [-128, 127]; 0 for per-channel weights */
    int32_t output_zp;  /* [-128, 127] */
    int32_t act_min;    /* [-128, 127], act_min <= act_max */
    int32_t act_max;
    int32_t per_channel; /* 0: one multiplier/shift; 1: output_size of them */
    const int32_t *multiplier;
    const int32_t *shift; /* in [-31, 30] */
} mcuq_fully_connected_params;

/* int8 fully connected layer: output[b][o] = requantize(sum_i (filter[o][i] - weights_zp) * (input[b][i] -
 * input_zp) + bias[o]); bias is int32 [output_size] or NULL. */
mcuq_status mcuq_fully_connected_s8(const mcuq_fully_connected_params *params, const int8_t *input,
                                    const int8_t *filter, const int32_t *bias, int8_t *output);

#endif /* MCUQ_CONV_H */
