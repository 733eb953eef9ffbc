"""The dsp path of the 16x8 CONV_2D and FULLY_CONNECTED (runtime_c/include/mcuq_conv.h, ``*_s16_dsp``): int16
activations read two at a time, int8 weights widened with SXTB16, SMLAD into 32-bit partial sums of at most 508
products (|w x| <= 2^22, so they cannot overflow) added into an int64 accumulator: the portable kernels' exact sums,
for both of TFLite's 16x8 accumulators (``acc64``), requantized the same way. Plain C with the same bits where the
target has no DSP extension (mcuq_simd.h). int8 weights only: packed (4/2/1-bit) 16x8 layers keep the portable
kernels, and so does a per-tensor FULLY_CONNECTED whose int8 filter has a zero point.

CONV_2D: im2col of ``BLOCK`` output pixels into interleaved int16 scratch, one output channel x four pixels per pass.
FULLY_CONNECTED: four units per pass share each pair of input words; no scratch. DEPTHWISE_CONV_2D (multiplier 1):
weights widened to int16 at compile time, groups of 4 channels, SMLABB/SMLATT on (x[c], x[c + 1]) words; no scratch. The mve path uses these too
(``mcuq.lower.specialize`` falls back to a dsp variant where no mve one is registered).
"""

from __future__ import annotations

import numpy as np

from .conv16 import Conv2DS16Params, FullyConnectedS16Params
from .conv_dsp import fc_dsp_weights
from .registry import Kernel, c_define, register
from .variants import Variant, variant

BLOCK = c_define("MCUQ_CONV_S16_DSP_BLOCK", 4)  # output pixels per im2col block
PAIR_ORDER = (0, 2, 1, 3)  # bytes of a weight word: SXTB16 -> (w0, w1), SXTB16 ror 8 -> (w2, w3)


def padded_depth(k: int) -> int:
    """K rounded up to a multiple of 4 (one weight word)."""
    return -(-k // 4) * 4


def _depth(p: Conv2DS16Params) -> int:
    return int(p.window.filter.h) * int(p.window.filter.w) * int(p.input.c)


def conv16_direct(p: Conv2DS16Params) -> bool:
    """Mirror of mcuq_conv2d_s16_dsp.c's ``direct``: a 1x1 filter without padding on input.c % 4 == 0, windows
    inside the input: the kernel reads the input in place (no im2col, no scratch)."""
    w = p.window
    return (
        (int(w.filter.h), int(w.filter.w), int(w.pad.h), int(w.pad.w)) == (1, 1, 0, 0)
        and int(p.input.c) % 4 == 0
        and int(p.output.h) >= 1
        and int(p.output.w) >= 1
        and (int(p.output.h) - 1) * int(w.stride.h) < int(p.input.h)
        and (int(p.output.w) - 1) * int(w.stride.w) < int(p.input.w)
    )


def conv16_dsp_scratch(p: Conv2DS16Params) -> int:
    """Mirror of mcuq_conv2d_s16_dsp_scratch_size: BLOCK pixels' windows as int16, each padded to KP values (none
    for the direct form)."""
    if p.window.filter.h <= 0 or p.window.filter.w <= 0 or p.input.c <= 0 or conv16_direct(p):
        return 0
    return padded_depth(_depth(p)) * BLOCK * 2


def _pairs(flat: np.ndarray) -> np.ndarray:
    """Every 4-byte word of ``flat`` (a multiple of 4 bytes) as (w0, w2, w1, w3)."""
    return np.ascontiguousarray(flat.reshape(-1, 4)[:, PAIR_ORDER]).reshape(-1)


def conv16_dsp_weights(w: np.ndarray, p: Conv2DS16Params) -> np.ndarray:
    """The OHWI filter as mcuq_conv2d_s16_dsp reads it: [output.c][KP] int8, rows zero-padded to KP =
    padded_depth(K), each 4-byte group stored (w0, w2, w1, w3)."""
    rows = np.asarray(w, dtype=np.int8).reshape(int(p.output.c), -1)
    k = rows.shape[1]
    rows = np.pad(rows, ((0, 0), (0, padded_depth(k) - k)))
    return _pairs(rows.reshape(-1)).astype(np.int8)


def fc16_dsp_weights(w: np.ndarray, p: FullyConnectedS16Params) -> np.ndarray:
    """The filter [output_size, input_size] as mcuq_fully_connected_s16_dsp reads it: fc_dsp_weights's interleaved
    groups of 4 units, each word's bytes stored (w0, w2, w1, w3)."""
    return _pairs(fc_dsp_weights(w, p)).astype(np.int8)  # type: ignore[arg-type]


def dw16_dsp_weights(w: np.ndarray, p: Conv2DS16Params) -> np.ndarray:
    """The 1HWC depthwise filter as mcuq_depthwise_conv2d_s16_dsp reads it: channels in groups of 4, per group the
    taps in HW order, each 4 little-endian int16 (channels beyond C zero): [ceil(C / 4)][H][W][4] int16 as bytes."""
    c = int(p.output.c)
    taps = np.asarray(w, dtype=np.int8).reshape(-1, c).astype("<i2")  # [H * W][C]
    groups = -(-c // 4)
    taps = np.pad(taps, ((0, 0), (0, 4 * groups - c)))
    return np.ascontiguousarray(taps.reshape(-1, groups, 4).transpose(1, 0, 2)).view(np.int8).reshape(-1)


def dw16_dsp_supports(p: Conv2DS16Params) -> bool:
    return int(p.weight_bits) == 8 and int(p.depth_multiplier) == 1


def conv16_dsp_supports(p: Conv2DS16Params) -> bool:
    return int(p.weight_bits) == 8 and int(p.depth_multiplier) == 1


def fc16_dsp_supports(p: FullyConnectedS16Params) -> bool:
    return int(p.weight_bits) == 8 and int(p.weights_zp) == 0


CONV2D_S16_DSP = register(
    Kernel(
        "mcuq_conv2d_s16_dsp",
        Conv2DS16Params,
        ("conv/mcuq_conv2d_s16_dsp.c",),
        code_bytes=3420,
        dtype="s16",
        variant="dsp",
        context=True,
        scratch=conv16_dsp_scratch,
    )
)
FULLY_CONNECTED_S16_DSP = register(
    Kernel(
        "mcuq_fully_connected_s16_dsp",
        FullyConnectedS16Params,
        ("conv/mcuq_fully_connected_s16_dsp.c",),
        code_bytes=2728,
        dtype="s16",
        variant="dsp",
        context=True,
    )
)

DEPTHWISE_CONV2D_S16_DSP = register(
    Kernel(
        "mcuq_depthwise_conv2d_s16_dsp",
        Conv2DS16Params,
        ("conv/mcuq_depthwise_conv2d_s16_dsp.c",),
        code_bytes=4428,
        dtype="s16",
        variant="dsp",
        context=True,
    )
)

variant(
    Variant(
        replaces="mcuq_conv2d_s16",
        path="dsp",
        kernel=CONV2D_S16_DSP,
        supports=conv16_dsp_supports,
        weights=conv16_dsp_weights,
    )
)
variant(
    Variant(
        replaces="mcuq_fully_connected_s16",
        path="dsp",
        kernel=FULLY_CONNECTED_S16_DSP,
        supports=fc16_dsp_supports,
        weights=fc16_dsp_weights,
    )
)
variant(
    Variant(
        replaces="mcuq_depthwise_conv2d_s16",
        path="dsp",
        kernel=DEPTHWISE_CONV2D_S16_DSP,
        supports=dw16_dsp_supports,
        weights=dw16_dsp_weights,
    )
)
