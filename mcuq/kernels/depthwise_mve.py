"""The Helium (MVE) depthwise convolution (runtime_c/src/conv/mcuq_depthwise_conv2d_s8_mve.c): its registry entry,
scratch and overlap mirrors, and its variant row (depth multiplier 1, at most 16 taps per window)."""

from __future__ import annotations

import numpy as np

from .conv import Conv2DParams
from .overlap import NEVER
from .registry import Kernel, register
from .variants import Variant, variant

TAPS = 16  # DW_TAPS: gather lanes, one per filter tap


def _ring(p: Conv2DParams) -> tuple[int, int, int]:
    """(span, cols, largest gather offset) of the C kernel's scratch ring (dw_ring_of)."""
    win = p.window
    ow = max(p.output.w, 1)
    need = (ow - 1) * win.stride.w + (win.filter.w - 1) * win.dilation.w + 1
    span = (win.filter.h - 1) * win.dilation.h + 1
    cols = max(win.pad.w + p.input.w, need)
    return span, cols, (span - 1) * cols + (win.filter.w - 1) * win.dilation.w


def scratch(p: Conv2DParams) -> int:
    """mcuq_depthwise_conv2d_s8_mve_scratch_size: C channel planes of `span` ring rows of `cols` pixels."""
    win = p.window
    if min(win.filter.h, win.filter.w, win.dilation.h, win.dilation.w, win.stride.h, win.stride.w) <= 0:
        return 0
    if win.pad.h < 0 or win.pad.w < 0 or p.input.w <= 0 or p.input.c <= 0:
        return 0
    span, cols, _ = _ring(p)
    return p.input.c * span * cols


def overlap(p: Conv2DParams) -> tuple[int | None, ...]:
    """(D, None, None): output row r is written once input rows up to its window's last are in the ring (rows are
    copied in order, each once); the output's row r must end below the first input row still to be read."""
    win = p.window
    span = (win.filter.h - 1) * win.dilation.h + 1
    in_row = p.input.w * p.input.c
    out_row = p.output.w * p.output.c
    total = p.input.n * p.output.h
    d = NEVER
    g = 0
    for n in range(p.input.n):
        read = -1  # last input row of image n copied so far
        for oy in range(p.output.h):
            top = oy * win.stride.h - win.pad.h
            read = max(read, min(top + span - 1, p.input.h - 1))
            g += 1
            if g < total:
                d = min(d, (n * p.input.h + read + 1) * in_row - g * out_row)
    return (d, None, None)


def supports(p: Conv2DParams) -> bool:
    win = p.window
    return p.depth_multiplier == 1 and win.filter.h * win.filter.w <= TAPS and _ring(p)[2] <= 255


def weights(w: np.ndarray, p: Conv2DParams) -> np.ndarray:
    """1HWC [1, kh, kw, C] -> [C, 16]: each channel's taps in raster order, zero past kh * kw."""
    c = int(w.shape[-1])
    taps = np.asarray(w).reshape(-1, c).T  # [C, kh * kw]
    out = np.zeros((c, TAPS), dtype=np.int8)
    out[:, : taps.shape[1]] = taps
    return out


DEPTHWISE_CONV2D_S8_MVE = register(
    Kernel(
        "mcuq_depthwise_conv2d_s8_mve",
        Conv2DParams,
        ("conv/mcuq_depthwise_conv2d_s8_mve.c",),
        code_bytes=2240,
        variant="mve",
        context=True,
        scratch=scratch,
        overlap=overlap,
    )
)

variant(
    Variant(
        replaces="mcuq_depthwise_conv2d_s8",
        path="mve",
        kernel=DEPTHWISE_CONV2D_S8_MVE,
        supports=supports,
        fold_bias=True,
        weights=weights,
    )
)
