/* mcuq runtime: the types every kernel shares.
 *
 * Integer-only C99: no float, no malloc, no stdio. Every kernel returns an mcuq_status.
 * Tensor layouts: activations NHWC, conv weights OHWI, depthwise weights 1HWC, fully connected [out][in].
 * mcuq/kernels/ mirrors each struct here field for field (tests/unit/test_kernel_registry.py checks it).
 */
#ifndef MCUQ_TYPES_H
#define MCUQ_TYPES_H

#include <stddef.h>
#include <stdint.h>

/* What a kernel returns. */
typedef enum {
    MCUQ_OK = 0,
    MCUQ_ERR_ARGUMENT = 1,    /* a NULL pointer, an impossible parameter or too little scratch */
    MCUQ_ERR_UNSUPPORTED = 2, /* a valid parameter combination this kernel does not implement */
} mcuq_status;

/* Scratch memory for a kernel call: `size` bytes at `buf` (NULL when size is 0). A kernel that takes a context
 * needs at least its <kernel>_scratch_size(params) bytes; generated code points buf into the model's arena. */
typedef struct {
    void *buf;
    int32_t size;
} mcuq_context;

/* An NHWC activation shape. */
typedef struct {
    int32_t n;
    int32_t h;
    int32_t w;
    int32_t c;
} mcuq_dims;

/* A height/width pair (filter size, stride, dilation, padding). */
typedef struct {
    int32_t h;
    int32_t w;
} mcuq_hw;

/* A sliding window over an NHWC input: filter taps, stride, dilation and the top/left zero padding
 * (TFLite's padding_values; the bottom/right padding is implied by the output size). */
typedef struct {
    mcuq_hw filter;
    mcuq_hw stride;
    mcuq_hw dilation;
    mcuq_hw pad;
} mcuq_window;

/* Output clamp: a fused activation (ReLU, ReLU6, ...) as integer bounds, min <= max. */
typedef struct {
    int32_t min;
    int32_t max;
} mcuq_activation;

/* Per-channel requantization: y = MultiplyByQuantizedMultiplier(acc, multiplier[c], shift[c]); shift is TFLite's
 * signed exponent (positive = left shift). */
typedef struct {
    const int32_t *multiplier; /* [channels], in [2^30, 2^31) or 0 */
    const int32_t *shift;      /* [channels], in [-31, 30] */
} mcuq_per_channel_quant;

#if defined(__GNUC__) || defined(__clang__)
#define MCUQ_ALIGNED(n) __attribute__((aligned(n)))
#else
#define MCUQ_ALIGNED(n)
#endif

#ifdef MCUQ_LAYER_HOOKS
/* Per-layer hooks, called by generated code compiled with -DMCUQ_LAYER_HOOKS; the application defines them.
 * index counts layers from 0; output points to the layer's output (bytes long) once it is computed. */
void mcuq_layer_begin(int32_t index, const char *name);
void mcuq_layer_end(int32_t index, const char *name, const void *output, int32_t bytes);
#endif

#endif /* MCUQ_TYPES_H */
