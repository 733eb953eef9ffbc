"""The dsp path of DEPTHWISE_CONV_2D (runtime_c/src/conv/mcuq_depthwise_conv2d_s8_dsp.c): 3x3 filter, depth
multiplier 1, dilation 1, horizontal stride 1 or 2, any vertical stride and padding. SXTB16/SMLAD on
Cortex-M4/M7/M33/M55, the same algorithm in plain C elsewhere.

It takes the folded bias (``fold_bias``: ``bias - input_zp * sum(w)``): the inner loops then multiply raw int8
values, which saves the SADD16 of the input offset per input word, and the zero padding, stored as input_zp bytes
in the kernel's row ring, contributes exactly the ``w * input_zp`` that the fold subtracted. The filter is laid out
[C][3][4] (``depthwise_dsp_weights``): one word per channel and filter row.

In place: the kernel copies input rows into a 3-row ring (scratch) before it writes the output row that needs
them, so the output may overlap the input (``depthwise_dsp_overlap``).
"""

from __future__ import annotations

import numpy as np

from .conv import Conv2DParams
from .overlap import NEVER
from .registry import Kernel, register
from .variants import Variant, variant

RING = 3  # input rows held in scratch (MCUQ_DW_RING in the .c; the scratch test checks the mirror)


def _ring_width(p: Conv2DParams) -> int:
    need = (int(p.output.w) - 1) * int(p.window.stride.w) + 4 if int(p.output.w) > 0 else 4
    return (need + 3) & ~3


def depthwise_dsp_scratch(p: Conv2DParams) -> int:
    """Mirror of mcuq_depthwise_conv2d_s8_dsp_scratch_size: one output row of int32 accumulators (+3 bytes to
    align them) and the ring of 3 input rows, channel-major, padded to ``_ring_width`` columns."""
    if int(p.output.w) < 0 or int(p.input.c) <= 0 or int(p.window.stride.w) <= 0:
        return 0
    return 3 + 4 * int(p.output.w) + RING * int(p.input.c) * _ring_width(p)


def depthwise_dsp_overlap(p: Conv2DParams) -> tuple[int | None, ...]:
    """D for the input (see ``Kernel.overlap``): after output row (b, oy) is written the kernel still reads input
    rows from ``oy * stride.h - pad.h + 3`` of image b on (or image b + 1's first row), so the end of that output
    row must stay at or below the start of the first of them. The weights and bias must not overlap."""
    n, h, oh = int(p.input.n), int(p.input.h), int(p.output.h)
    in_row = int(p.input.w) * int(p.input.c)
    out_row = int(p.output.w) * int(p.output.c)
    sh, pad = int(p.window.stride.h), int(p.window.pad.h)
    d = NEVER
    for b in range(n):
        for oy in range(oh):
            if b == n - 1 and oy == oh - 1:
                break  # nothing is read after the last row
            nxt = oy * sh - pad + 3
            first = b * h + max(nxt, 0) if (oy < oh - 1 and nxt < h) else (b + 1) * h
            d = min(d, first * in_row - (b * oh + oy + 1) * out_row)
    return (d, None, None)


def depthwise_dsp_supports(p: Conv2DParams) -> bool:
    w = p.window
    return (
        int(p.depth_multiplier) == 1
        and (int(w.filter.h), int(w.filter.w)) == (3, 3)
        and (int(w.dilation.h), int(w.dilation.w)) == (1, 1)
        and int(w.stride.w) in (1, 2)
        and int(w.stride.h) in (1, 2)
        and 0 <= int(w.pad.h) <= 2
        and 0 <= int(w.pad.w) <= 2
    )


def depthwise_dsp_weights(w: np.ndarray, p: Conv2DParams) -> np.ndarray:
    """The 1HWC [1, 3, 3, C] filter as [C][3][4]: per channel and filter row the taps kx = 0, 1, 2 and a zero."""
    c = int(p.output.c)
    f = np.asarray(w, dtype=np.int8).reshape(3, 3, c).transpose(2, 0, 1)  # [C][ky][kx]
    return np.pad(f, ((0, 0), (0, 0), (0, 1))).reshape(-1).astype(np.int8)


DEPTHWISE_CONV2D_S8_DSP = register(
    Kernel(
        "mcuq_depthwise_conv2d_s8_dsp",
        Conv2DParams,
        ("conv/mcuq_depthwise_conv2d_s8_dsp.c",),
        code_bytes=2816,
        variant="dsp",
        context=True,
        scratch=depthwise_dsp_scratch,
        overlap=depthwise_dsp_overlap,
    )
)

variant(
    Variant(
        replaces="mcuq_depthwise_conv2d_s8",
        path="dsp",
        kernel=DEPTHWISE_CONV2D_S8_DSP,
        supports=depthwise_dsp_supports,
        fold_bias=True,
        weights=depthwise_dsp_weights,
    )
)
