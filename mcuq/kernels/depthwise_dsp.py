"""The dsp path of DEPTHWISE_CONV_2D (runtime_c/src/conv/mcuq_depthwise_conv2d_s8_dsp.c): 3x3 filter, depth
multiplier 1, dilation 1, horizontal stride 1 or 2, any vertical stride and padding. SXTB16/SMLAD on
Cortex-M4/M7/M33/M55, the same algorithm in plain C elsewhere.

It takes the folded bias (``fold_bias``: ``bias - input_zp * sum(w)``): the inner loops then multiply raw int8
values, which saves the SADD16 of the input offset per input word, and the zero padding, stored as input_zp bytes
in the kernel's row ring, contributes exactly the ``w * input_zp`` that the fold subtracted. The filter is laid out
as 8 words per channel (``depthwise_dsp_weights``): the taps as int16 pairs the SMLADs take, and the channel's
requantization constants, computed here.

In place: the kernel keeps two input rows (and one group of 4 channels of a third) in a FIFO in scratch, copied
before the output that overwrites them is written, so the output may overlap the input
(``depthwise_dsp_overlap``).
"""

from __future__ import annotations

import numpy as np

from .conv import Conv2DParams
from .overlap import NEVER
from .registry import Kernel, register
from .variants import Variant, variant

WORDS = 8  # filter words per channel (MCUQ_DW_WORDS in the .c)
MAX_FAST_SHIFT = 24  # right shifts up to this take the fast rounding


def _ring_width(p: Conv2DParams) -> int:
    return (int(p.output.w) - 1) * int(p.window.stride.w) + 3 if int(p.output.w) > 0 else 3


def depthwise_dsp_scratch(p: Conv2DParams) -> int:
    """Mirror of mcuq_depthwise_conv2d_s8_dsp_scratch_size: a FIFO of 2G + 1 regions (G = ceil(C / 4) channel
    groups) of 4 channels x ``_ring_width`` columns, i.e. two input rows and one group, channel-major, plus 3 bytes
    to align it and 4 tail bytes (read, never used, by the last pixel's word loads)."""
    sw = int(p.window.stride.w)
    if int(p.output.w) < 0 or int(p.input.c) <= 0 or sw <= 0 or sw > 0x100:
        return 0
    groups = (int(p.input.c) + 3) // 4
    return min(3 + (2 * groups + 1) * 4 * _ring_width(p) + 4, 2**31 - 1)


def depthwise_dsp_overlap(p: Conv2DParams) -> tuple[int | None, ...]:
    """D for the input (see ``Kernel.overlap``): input rows up to iy0 + 1 (iy0 = oy * stride.h - pad.h) are in
    the scratch before output row (b, oy) is written, and row iy0 + 2 is read group by group while it is written;
    later rows are read after it. So the end of output row oy must stay at or below the start of the first input
    row still read from the image: iy0 + 2 (or the next one of the image, or image b + 1's first row). The weights
    and bias must not overlap."""
    n, h, oh = int(p.input.n), int(p.input.h), int(p.output.h)
    in_row = int(p.input.w) * int(p.input.c)
    out_row = int(p.output.w) * int(p.output.c)
    sh, pad = int(p.window.stride.h), int(p.window.pad.h)
    d = NEVER
    for b in range(n):
        for oy in range(oh):
            nxt = max(oy * sh - pad + 2, 0)
            if nxt < h:
                first = b * h + nxt
            elif b < n - 1:
                first = (b + 1) * h
            else:
                continue  # nothing of this image or a later one is read any more
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


def _pair(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return (lo.astype(np.int64) & 0xFFFF) | ((hi.astype(np.int64) & 0xFFFF) << 16)


def depthwise_dsp_weights(w: np.ndarray, p: Conv2DParams) -> np.ndarray:
    """The 1HWC [1, 3, 3, C] filter as 8 little-endian words per channel: the int16 pairs (w00, w02), (w10, w12),
    (w20, w22), (w01, w11), (w21, 0), then the requantization constants M = 2 * multiplier - 2^32,
    R = 2^(r-1) + output_zp * 2^r and r (the right shift); r = 0 (and M = R = 0) where the fast rounding does not
    apply (multiplier < 2^30, a left shift or none, r > 24): the kernel then calls mcuq_requantize."""
    c = int(p.output.c)
    f = np.asarray(w, dtype=np.int8).reshape(3, 3, c).astype(np.int64)  # [ky][kx][c]
    mult = np.asarray(p.quant.multiplier, dtype=np.int64).reshape(-1)
    r = -np.asarray(p.quant.shift, dtype=np.int64).reshape(-1)
    fast = (mult >= 1 << 30) & (r >= 1) & (r <= MAX_FAST_SHIFT)
    rs = np.where(fast, r, 1)
    words = np.zeros((c, WORDS), dtype=np.int64)
    for k in range(3):
        words[:, k] = _pair(f[k, 0], f[k, 2])
    words[:, 3] = _pair(f[0, 1], f[1, 1])
    words[:, 4] = _pair(f[2, 1], np.zeros(c, dtype=np.int64))
    words[:, 5] = np.where(fast, 2 * mult, 0)
    words[:, 6] = np.where(fast, (1 << (rs - 1)) + int(p.output_zp) * (1 << rs), 0)
    words[:, 7] = np.where(fast, r, 0)
    return (words % 2**32).astype("<u4").view(np.int8).reshape(-1)


DEPTHWISE_CONV2D_S8_DSP = register(
    Kernel(
        "mcuq_depthwise_conv2d_s8_dsp",
        Conv2DParams,
        ("conv/mcuq_depthwise_conv2d_s8_dsp.c",),
        code_bytes=3232,
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
