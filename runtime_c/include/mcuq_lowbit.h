/* Sub-8-bit weights: CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED with int8 activations and packed int4,
 * ternary (2-bit) or binary (1-bit) weights.
 *
 * Every weight is an int8 value of a narrower range (4 bits: [-7, 7], or -8 from a native TFLite INT4 tensor;
 * 2 bits: {-1, 0, 1}; 1 bit: {-1, +1}), so these kernels compute exactly what mcuq_conv.h's int8 kernels compute
 * with those values (TFLite 2.14's reference kernels on the int8-container model):
 *   acc = sum over taps of w * (x - input_zp)  [+ bias[c]]          (int32, cannot overflow: checked at compile time)
 *   y   = clamp(MultiplyByQuantizedMultiplier(acc, multiplier[c], shift[c]) + output_zp, act_min, act_max)
 * Only the filter's storage differs: `bits` bits a value, the whole tensor one bit stream in the int8 kernel's
 * element order (OHWI, 1HWC or [output_size, input_size]), little end first, no padding at channel boundaries
 * (so a channel may start in the middle of a byte); 4- and 2-bit fields are two's complement, a 1-bit field is
 * 1 for +1 and 0 for -1. mcuq/quant/packing.py writes this layout.
 */
#ifndef MCUQ_LOWBIT_H
#define MCUQ_LOWBIT_H
#include "mcuq_types.h"

/* mcuq_conv2d_params (mcuq_conv.h) plus the weight width. */
typedef struct {
    mcuq_dims input;
    mcuq_dims output;
    mcuq_window window;
    int32_t depth_multiplier; /* >= 1; 1 for CONV_2D */
    int32_t input_zp;         /* [-128, 127] */
    int32_t output_zp;        /* [-128, 127] */
    mcuq_activation activation;
    mcuq_per_channel_quant quant;
    int32_t bits; /* 4, 2 or 1 */
} mcuq_conv2d_lowbit_params;

/* mcuq_fully_connected_params (mcuq_conv.h) plus the weight width. */
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
    int32_t bits; /* 4, 2 or 1 */
} mcuq_fully_connected_lowbit_params;

/* CONV_2D as mcuq_conv2d_s8 with a packed OHWI filter of ceil(output.c * K * bits / 8) bytes, K = filter.h *
 * filter.w * input.c; optional int32 bias [output.c] (NULL for none). No scratch (0 bytes). Returns
 * MCUQ_ERR_ARGUMENT as mcuq_conv2d_s8 does, and for bits other than 4, 2 or 1. */
mcuq_status mcuq_conv2d_s8_lowbit(const mcuq_context *ctx, const mcuq_conv2d_lowbit_params *params, const int8_t *input,
                                  const uint8_t *filter, const int32_t *bias, int8_t *output);
int32_t mcuq_conv2d_s8_lowbit_scratch_size(const mcuq_conv2d_lowbit_params *params);

/* DEPTHWISE_CONV_2D (depth multiplier >= 1) as mcuq_depthwise_conv2d_s8 with a packed 1HWC filter of
 * ceil(filter.h * filter.w * output.c * bits / 8) bytes. Scratch and errors as mcuq_conv2d_s8_lowbit. */
mcuq_status mcuq_depthwise_conv2d_s8_lowbit(const mcuq_context *ctx, const mcuq_conv2d_lowbit_params *params,
                                            const int8_t *input, const uint8_t *filter, const int32_t *bias,
                                            int8_t *output);
int32_t mcuq_depthwise_conv2d_s8_lowbit_scratch_size(const mcuq_conv2d_lowbit_params *params);

/* FULLY_CONNECTED as mcuq_fully_connected_s8 with a packed [output_size, input_size] filter of
 * ceil(output_size * input_size * bits / 8) bytes; weights_zp is subtracted from each unpacked value. Scratch
 * and errors as mcuq_conv2d_s8_lowbit. */
mcuq_status mcuq_fully_connected_s8_lowbit(const mcuq_context *ctx, const mcuq_fully_connected_lowbit_params *params,
                                           const int8_t *input, const uint8_t *filter, const int32_t *bias,
                                           int8_t *output);
int32_t mcuq_fully_connected_s8_lowbit_scratch_size(const mcuq_fully_connected_lowbit_params *params);

/* The int4 fast paths (bits 4 only; MCUQ_ERR_UNSUPPORTED for other widths, weights_zp != 0, or K = filter.h *
 * filter.w * input.c (input_size for FC) >= MCUQ_S4_FAST_MAX_DEPTH). They take the bias with the input zero point
 * folded in (bias[c] - input_zp * sum(w[c]), never NULL: MCUQ_ERR_ARGUMENT) and the filter's nibbles reordered
 * at compile time into the layout each reads (runtime_c/src/lowbit/mcuq_s4_fast.h; mcuq/kernels/lowbit_fast.py),
 * in the same ceil(n * 4 / 8) bytes. _dsp: SXTB16/SMLAD (plain C without the DSP extension); _mve: VMLADAVA
 * (plain C without MVE). The conv kernels need scratch (their _scratch_size), the FC kernels none; the output
 * must not overlap the input. Other errors as mcuq_conv2d_s8_lowbit / mcuq_fully_connected_s8_lowbit. */
#define MCUQ_S4_FAST_MAX_DEPTH 131072 /* 16 * 8 * 128 * K < 2^31: the 16-times sums cannot wrap */
#define MCUQ_S4_DSP_BLOCK      4      /* output pixels per im2col block of mcuq_conv2d_s8_s4_dsp */
#define MCUQ_S4_MVE_BLOCK      4      /* output pixels per im2col block of mcuq_conv2d_s8_s4_mve */
mcuq_status mcuq_conv2d_s8_s4_dsp(const mcuq_context *ctx, const mcuq_conv2d_lowbit_params *params, const int8_t *input,
                                  const uint8_t *filter, const int32_t *bias, int8_t *output);
int32_t mcuq_conv2d_s8_s4_dsp_scratch_size(const mcuq_conv2d_lowbit_params *params);
mcuq_status mcuq_fully_connected_s8_s4_dsp(const mcuq_context *ctx, const mcuq_fully_connected_lowbit_params *params,
                                           const int8_t *input, const uint8_t *filter, const int32_t *bias,
                                           int8_t *output);
int32_t mcuq_fully_connected_s8_s4_dsp_scratch_size(const mcuq_fully_connected_lowbit_params *params);
mcuq_status mcuq_conv2d_s8_s4_mve(const mcuq_context *ctx, const mcuq_conv2d_lowbit_params *params, const int8_t *input,
                                  const uint8_t *filter, const int32_t *bias, int8_t *output);
int32_t mcuq_conv2d_s8_s4_mve_scratch_size(const mcuq_conv2d_lowbit_params *params);
mcuq_status mcuq_fully_connected_s8_s4_mve(const mcuq_context *ctx, const mcuq_fully_connected_lowbit_params *params,
                                           const int8_t *input, const uint8_t *filter, const int32_t *bias,
                                           int8_t *output);
int32_t mcuq_fully_connected_s8_s4_mve_scratch_size(const mcuq_fully_connected_lowbit_params *params);

#endif /* MCUQ_LOWBIT_H */
