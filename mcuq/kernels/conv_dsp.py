"""The dsp path of CONV_2D and FULLY_CONNECTED (runtime_c/include/mcuq_conv.h, ``*_dsp``): SXTB16/SMLAD on
Cortex-M4/M7/M33/M55, the same algorithm in plain C elsewhere. Both take the folded bias (``fold_bias``).

CONV_2D: im2col of ``BLOCK`` output pixels into int16 scratch (small input.c: whole filter rows copied a word at a
time), then one output channel x four pixels per pass (inline-asm LDM/SMLAD loop, two groups of 4 K per pass); with
full-range activations and fast-form channels, one asm call per block runs every channel's loop and requantization
from a small state block (bias, multiplier, shift, output pointers).
FULLY_CONNECTED: four units per pass share each input word (inline-asm loop, LDM of the weights); no scratch; its
filter is re-laid out at compile time (``fc_dsp_weights``) so that one pointer walks a pass.
Both requantize with SMMLAR/QADD/SSAT (about 6 instructions an output) when every multiplier is >= 2^30 and every
shift in [-23, -1] (what quantize_multiplier gives for output/accumulator scale ratios in [2^-23, 0.5)); the conv
also per channel for shifts down to -31 (a pre-shift) and dead channels (multiplier 0); else the general form; same
bits either way (tests/kernels/test_conv_dsp.py).
"""

from __future__ import annotations

import numpy as np

from .conv import Conv2DParams, FullyConnectedParams
from .overlap import window_overlap
from .registry import Kernel, c_define, register
from .variants import Variant, variant

BLOCK = c_define("MCUQ_CONV_DSP_BLOCK", 4)  # output pixels per im2col block


def conv2d_dsp_scratch(p: Conv2DParams) -> int:
    """Mirror of mcuq_conv2d_s8_dsp_scratch_size: BLOCK pixels' windows as int16 in groups of 4 (a partial last
    group padded), plus an int8 gather row when input.c % 4 != 0, plus (K % 4 != 0) a zero-padded copy of the
    weights of the channels whose last word would end past the filter."""
    fh, fw, cin = p.window.filter.h, p.window.filter.w, p.input.c
    if fh <= 0 or fw <= 0 or cin <= 0:
        return 0
    k = fh * fw * cin
    groups = (k + 3) // 4
    tail = min(p.output.c, 1 + (4 * groups - k - 1) // k) if k % 4 else 0
    return groups * BLOCK * 8 + (groups * 4 + 4 if cin % 4 else 0) + ((tail * k + 7) // 4 * 4 if tail > 0 else 0)


def conv2d_dsp_overlap(p: Conv2DParams) -> tuple[int | None, ...]:
    return (window_overlap(p.input, p.output, p.window, BLOCK), None, None)


def conv2d_dsp_supports(p: Conv2DParams) -> bool:
    return int(p.depth_multiplier) == 1


def fc_dsp_weights(w: np.ndarray, p: FullyConnectedParams) -> np.ndarray:
    """The filter [output_size, input_size] in mcuq_fully_connected_s8_dsp's layout: rows zero-padded to a
    multiple of 4 bytes, then per group of 4 units (the last one output_size % 4 wide) the 4-byte words of its
    units interleaved: word (k group i, unit j) at group start + (i * width + j) * 4."""
    units, size = int(p.output_size), int(p.input_size)
    rows = np.asarray(w, dtype=np.int8).reshape(units, size)
    padded = (size + 3) // 4 * 4
    rows = np.pad(rows, ((0, 0), (0, padded - size)))
    parts = []
    for u0 in range(0, units, 4):
        g = rows[u0 : u0 + 4]  # [width, padded]
        parts.append(g.reshape(g.shape[0], padded // 4, 4).transpose(1, 0, 2).reshape(-1))
    return np.concatenate(parts).astype(np.int8)


def fc_dsp_supports(p: FullyConnectedParams) -> bool:
    return int(p.weights_zp) == 0


CONV2D_S8_DSP = register(
    Kernel(
        "mcuq_conv2d_s8_dsp",
        Conv2DParams,
        ("conv/mcuq_conv2d_s8_dsp.c",),
        code_bytes=9192,
        variant="dsp",
        context=True,
        scratch=conv2d_dsp_scratch,
        overlap=conv2d_dsp_overlap,
    )
)
FULLY_CONNECTED_S8_DSP = register(
    Kernel(
        "mcuq_fully_connected_s8_dsp",
        FullyConnectedParams,
        ("conv/mcuq_fully_connected_s8_dsp.c",),
        code_bytes=2808,
        variant="dsp",
        context=True,
    )
)

variant(
    Variant(replaces="mcuq_conv2d_s8", path="dsp", kernel=CONV2D_S8_DSP, supports=conv2d_dsp_supports, fold_bias=True)
)
variant(
    Variant(
        replaces="mcuq_fully_connected_s8",
        path="dsp",
        kernel=FULLY_CONNECTED_S8_DSP,
        supports=fc_dsp_supports,
        fold_bias=True,
        weights=fc_dsp_weights,
    )
)
