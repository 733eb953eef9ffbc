/* mcuq runtime: common types and status codes.
 *
 * Integer-only C99: no float, no malloc, no stdio. Every kernel returns an mcuq_status.
 * Tensor layouts: activations NHWC, conv weights OHWI, depthwise weights 1HWC, fully connected [out][in].
 */
#ifndef MCUQ_H
#define MCUQ_H

#include <stddef.h>
#include <stdint.h>

typedef int32_t mcuq_status;

#define MCUQ_OK 0
#define MCUQ_ERR_ARGUMENT 1 /* a NULL pointer or an impossible parameter */
#define MCUQ_ERR_UNSUPPORTED 2 /* a parameter combination this kernel does not implement */

#define MCUQ_MIN(a, b) ((a) < (b) ? (a) : (b))
#define MCUQ_MAX(a, b) ((a) > (b) ? (a) : (b))
#define MCUQ_CLAMP(x, lo, hi) MCUQ_MIN(MCUQ_MAX((x), (lo)), (hi))

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

#include "mcuq_kernels.h"

#endif /* MCUQ_H */
