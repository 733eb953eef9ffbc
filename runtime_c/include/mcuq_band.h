/* Band execution ("patches" without recomputation): two convolutions run row band by row band, so that the
 * tensor between them never exists whole. Internal scheduling only: every MAC is done by the conv-family kernels
 * the band calls (any path: portable, dsp or mve), with the parameters of a band of rows. */
#ifndef MCUQ_BAND_H
#define MCUQ_BAND_H
#include "mcuq_conv.h"

/* The signature every CONV_2D and DEPTHWISE_CONV_2D kernel has (mcuq_conv2d_s8, mcuq_depthwise_conv2d_s8 and
 * their dsp and mve variants). */
typedef mcuq_status (*mcuq_conv_fn)(const mcuq_context *ctx, const mcuq_conv2d_params *params, const int8_t *input,
                                    const int8_t *filter, const int32_t *bias, int8_t *output);

/* first: a 1x1, stride-1, unpadded CONV_2D over the whole input (batch 1); second: a CONV_2D or
 * DEPTHWISE_CONV_2D (dilation 1 in height, batch 1) over first's output. Both with the geometry of the whole
 * tensors, as the layers alone would have. band_rows: output rows of second per call of second_kernel (a
 * compile-time choice: more rows, fewer calls, a larger ring); ring_rows: rows of first's output kept at once (the
 * most that one band of output rows of second reads); kernel_scratch: the scratch either kernel needs for one
 * band (the larger). */
typedef struct {
    mcuq_conv2d_params first;
    mcuq_conv2d_params second;
    mcuq_conv_fn first_kernel;
    mcuq_conv_fn second_kernel;
    int32_t ring_rows;      /* >= 1 */
    int32_t kernel_scratch; /* >= 0 */
    int32_t band_rows;      /* >= 1 */
} mcuq_band_conv_params;

/* For each band of band_rows output rows of second: compute the rows of first's output that the band needs and
 * the ring lacks (first on those input rows), then second on the ring's rows for the band's output rows. The ring
 * is in the scratch, then the kernels' scratch. A band's output rows are written only after the input rows below
 * the last one they need were read, so the output may overlap the input (see mcuq/kernels/band.py). Returns the kernels' status, MCUQ_ERR_ARGUMENT for a
 * NULL pointer, too little scratch or a geometry outside the above. */
mcuq_status mcuq_band_conv_s8(const mcuq_context *ctx, const mcuq_band_conv_params *params, const int8_t *input,
                              const int8_t *first_filter, const int32_t *first_bias, const int8_t *second_filter,
                              const int32_t *second_bias, int8_t *output);
int32_t mcuq_band_conv_s8_scratch_size(const mcuq_band_conv_params *params);

#endif /* MCUQ_BAND_H */
