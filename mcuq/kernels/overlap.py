"""How far a kernel's output may overlap its input (``Kernel.overlap``), computed from the kernel's read and write
order. These functions are the Python half of a contract each overlap-capable C kernel documents; the kernel
tests run every such kernel with its output at exactly ``input + D`` and compare bits.
"""

from __future__ import annotations

import numpy as np

from .types import Dims, Window

NEVER = 1 << 62  # "no later read": larger than any buffer


def _first_tap(o: int, stride: int, pad: int, dilation: int, taps: int, size: int) -> int:
    """Index of the first input row (or column) that output row ``o`` reads, NEVER if all its taps are padding."""
    i0 = o * stride - pad
    lo = 0 if i0 >= 0 else (-i0 + dilation - 1) // dilation  # first tap inside the input
    if lo >= taps or i0 + lo * dilation >= size:
        return NEVER
    return i0 + lo * dilation


def first_reads(inp: Dims, out: Dims, win: Window) -> np.ndarray:
    """For each output pixel in raster order (n, y, x), the byte index of the first input byte the window
    reads (its top-left valid tap, channel 0); NEVER for a window entirely in the padding."""
    ys = [_first_tap(y, win.stride.h, win.pad.h, win.dilation.h, win.filter.h, inp.h) for y in range(out.h)]
    xs = [_first_tap(x, win.stride.w, win.pad.w, win.dilation.w, win.filter.w, inp.w) for x in range(out.w)]
    first = np.full((out.n, out.h, out.w), NEVER, dtype=np.int64)
    for b in range(out.n):
        for y, iy in enumerate(ys):
            if iy == NEVER:
                continue
            for x, ix in enumerate(xs):
                if ix != NEVER:
                    first[b, y, x] = ((b * inp.h + iy) * inp.w + ix) * inp.c
    return first.reshape(-1)


def window_overlap(inp: Dims, out: Dims, win: Window, block: int) -> int:
    """D for a window kernel (conv, depthwise, pool) that walks output pixels in raster order in blocks of
    ``block`` pixels, reads everything a block needs before it writes any output of that block, and writes the
    block's ``block * out.c`` bytes contiguously. The write of block b's last byte must land below every byte a
    later block still reads: D = min over blocks of (first byte read by any later pixel) - (end of block)."""
    first = first_reads(inp, out, win)
    n = first.size
    # later_min[k] = min(first[k:]), for k in 0..n (n: nothing later)
    later_min = np.minimum.accumulate(np.append(first, NEVER)[::-1])[::-1]
    ends = np.arange(block, n, block, dtype=np.int64)  # pixel index after each block but the last
    if ends.size == 0:
        return NEVER
    return int((later_min[ends] - ends * out.c).min())
