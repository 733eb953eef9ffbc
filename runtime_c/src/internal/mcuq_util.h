/* Small helpers shared by the kernels: internal to the runtime, not part of the public API. */
#ifndef MCUQ_UTIL_H
#define MCUQ_UTIL_H

#define MCUQ_MIN(a, b)        ((a) < (b) ? (a) : (b))
#define MCUQ_MAX(a, b)        ((a) > (b) ? (a) : (b))
#define MCUQ_CLAMP(x, lo, hi) MCUQ_MIN(MCUQ_MAX((x), (lo)), (hi))

#endif /* MCUQ_UTIL_H */
