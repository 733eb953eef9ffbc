/* Sliding windows (convolution, depthwise convolution): internal to the runtime. */
#ifndef MCUQ_WINDOW_H
#define MCUQ_WINDOW_H

#include <stdint.h>

/* First and one-past-last filter tap k with 0 <= origin + dilation * k < size, for a window of `taps` taps
 * starting at `origin` (negative in the top/left zero padding). Taps in the padding are skipped, so the inner
 * loops need no bounds test. dilation >= 1. */
static inline void mcuq_tap_range(int32_t origin, int32_t dilation, int32_t size, int32_t taps, int32_t *lo,
                                  int32_t *hi)
{
    int32_t first = 0;
    int32_t last;
    if (origin < 0) {
        first = (-origin + dilation - 1) / dilation;
    }
    if (origin >= size) {
        last = 0;
    } else {
        const int32_t fit = (size - origin + dilation - 1) / dilation;
        last = fit < taps ? fit : taps;
    }
    *lo = first;
    *hi = last > first ? last : first;
}

#endif /* MCUQ_WINDOW_H */
