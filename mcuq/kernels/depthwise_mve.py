"""The Helium (MVE) depthwise convolution (runtime_c/src/conv/mcuq_depthwise_conv2d_s8_mve.c): its registry entry,
scratch and overlap mirrors, and its variant row (depth multiplier 1, at most 16 taps per window, at least 4
channels)."""

from __future__ import annotations

import numpy as np

from .conv import Conv2DParams
from .overlap import NEVER
from .registry import Kernel, register
from .variants import Variant, variant

TAPS = 16  # DW_TAPS: gather lanes, one per filter tap
LANES = 4  # DW_LANES: channels per vector


def _span(p: Conv2DParams) -> int:
    """Input rows a window covers: the C kernel's ring rows (dw_span)."""
    return (p.window.filter.h - 1) * p.window.dilation.h + 1


def scratch(p: Conv2DParams) -> int:
    """mcuq_depthwise_conv2d_s8_mve_scratch_size: C channel planes of `span` ring rows of input.w pixels (the
    padding columns are not stored)."""
    win = p.window
    if min(win.filter.h, win.filter.w, win.dilation.h, win.dilation.w, win.stride.h, win.stride.w) <= 0:
        return 0
    if win.pad.h < 0 or win.pad.w < 0 or p.input.w <= 0 or p.input.c <= 0:
        return 0
    return p.input.c * _span(p) * p.input.w


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
    """Multiplier 1, at most 16 taps, at least 4 channels (one vector of 4 channels), and byte gather offsets: the
    ring plane (span * input.w) below 256, every column a window touches within 256 of the row (padding columns
    wrap modulo 256 above it)."""
    win = p.window
    reach = (max(p.output.w, 1) - 1) * win.stride.w + (win.filter.w - 1) * win.dilation.w
    return (
        p.depth_multiplier == 1
        and win.filter.h * win.filter.w <= TAPS
        and p.input.c >= LANES
        and _span(p) * p.input.w <= 255
        and win.pad.w + p.input.w <= 256
        and reach - win.pad.w <= 255
    )


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
        code_bytes=3240,
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
