"""The dsp and mve paths of CONV_2D and FULLY_CONNECTED with int4 weights and int8 activations
(runtime_c/include/mcuq_lowbit.h, ``*_s4_dsp``, ``*_s4_mve``; runtime_c/src/lowbit/mcuq_s4_fast.h).

They replace the packed kernels (``mcuq.kernels.lowbit``) when the weights are 4 bits. The filter keeps its
``ceil(n * 4 / 8)`` bytes, its nibbles reordered at compile time (``s4_fast_weights``) so that one word (dsp) or one
16-byte vector (mve) unpacks into the lanes the kernel multiplies; the bias is folded (``fold_bias``). Unpacking
leaves each weight times 16 (the nibble in the high half of a byte): the kernels shift the sum right by 4, exact
while K < ``MAX_DEPTH``.

dsp: the nibbles hold w + 8 (``s4_unsigned``), so one AND with 0x000F000F of a word of 8 weights shifted right by
0, 4, 8 or 12 gives an int16 pair for SMLAD; the kernels start each sum at the folded bias minus 8 * sum(x). CONV_2D
im2col of ``DSP_BLOCK`` pixels into int16 SXTB16 pairs (one LDM reads a pair of the 4 pixels); FULLY_CONNECTED four
units a pass sharing each 8 inputs. The hot loops are inline asm (two groups a pass).
mve: CONV_2D im2col of ``MVE_BLOCK`` pixels into int8 scratch, each 16-byte chunk (32 weights) unpacked with VSHL and
VAND and multiplied into each pixel with two VMLADAVA.S8; FULLY_CONNECTED four units a pass sharing each 32 inputs.
"""

from __future__ import annotations

import numpy as np

from .lowbit import CONV2D_S8_LOWBIT, FULLY_CONNECTED_S8_LOWBIT, LowbitConv2DParams, LowbitFullyConnectedParams
from .overlap import window_overlap
from .registry import Kernel, c_define, register
from .variants import Variant, variant

MAX_DEPTH = c_define("MCUQ_S4_FAST_MAX_DEPTH", 131072)  # K below this: 16 * 8 * 128 * K < 2^31
DSP_BLOCK = c_define("MCUQ_S4_DSP_BLOCK", 4)  # output pixels per im2col block (dsp conv)
MVE_BLOCK = c_define("MCUQ_S4_MVE_BLOCK", 4)  # output pixels per im2col block (mve conv)

# nibble position of each value of a group (runtime_c/src/lowbit/*.c, POS)
# dsp: nibbles j and j + 4 are the pair AND 0x000F000F leaves of the word shifted right by 4j; the values they hold
# match SXTB16's pairs of the input words (x0, x2), (x1, x3), (x4, x6), (x5, x7) (the conv's im2col keeps them too)
POS_DSP_CONV = (0, 1, 4, 5, 2, 3, 6, 7)
POS_DSP_FC = POS_DSP_CONV
POS_MVE = tuple(2 * i for i in range(16)) + tuple(2 * i + 1 for i in range(16))  # byte i: values i, 16 + i


def s4_unsigned(w: np.ndarray) -> np.ndarray:
    """The int4 values whose nibbles hold u = w + 8 (0..15): the dsp kernels' encoding (mcuq_s4_fast.h). ``pack``
    stores a value's two's complement nibble, (w & 15) ^ 8 = (w + 8) & 15."""
    n = (np.asarray(w).astype(np.int16) & 15) ^ 8
    return np.where(n >= 8, n - 16, n).astype(np.int8)


def s4_fast_weights(w: np.ndarray, rows: int, pos: tuple[int, ...], interleave: int = 1) -> np.ndarray:
    """The int4 values of ``w`` ([rows, K] in C order, unpacked) reordered into the fast kernels' nibble order
    (runtime_c/src/lowbit/mcuq_s4_fast.h), the same count: with G = len(pos), Km = K - K % G, first each row's
    Km values, group by group, value i of a group at nibble pos[i] of the group; with ``interleave`` n > 1, the
    groups of each n rows (the last pass rows % n) interleaved, group g of row r0 + j at group g * width + j of the
    pass; then each row's last K % G values in order. ``mcuq.quant.packing.pack`` then stores it."""
    g = len(pos)
    w2 = np.asarray(w).reshape(rows, -1)
    k = w2.shape[1]
    km = k - k % g
    inv = np.argsort(np.asarray(pos))  # nibble j holds value inv[j]
    main = w2[:, :km].reshape(rows, km // g, g)[:, :, inv]  # [rows, groups, G] in nibble order
    parts = []
    for r0 in range(0, rows, interleave):
        part = main[r0 : r0 + interleave]  # [width, groups, G]
        parts.append(part.transpose(1, 0, 2).reshape(-1))
    parts.append(w2[:, km:].reshape(-1))
    return np.concatenate(parts).astype(np.int8)


def _depth(p: LowbitConv2DParams) -> int:
    return int(p.window.filter.h) * int(p.window.filter.w) * int(p.input.c)


def conv2d_s4_dsp_scratch(p: LowbitConv2DParams) -> int:
    """Mirror of mcuq_conv2d_s8_s4_dsp_scratch_size: DSP_BLOCK pixels' windows as int16, K rounded up to 8, one
    window as int8, and the channels' tail words when K % 8 != 0."""
    if p.window.filter.h <= 0 or p.window.filter.w <= 0 or p.input.c <= 0 or p.output.c < 0:
        return 0
    k = _depth(p)
    k = 0 if k >= MAX_DEPTH else k
    groups = (k + 7) // 8
    return groups * 8 * 2 * DSP_BLOCK + groups * 8 + (4 * int(p.output.c) if k % 8 else 0)


def conv2d_s4_mve_scratch(p: LowbitConv2DParams) -> int:
    """Mirror of mcuq_conv2d_s8_s4_mve_scratch_size: MVE_BLOCK pixels' windows as int8, K rounded up to 32."""
    if p.window.filter.h <= 0 or p.window.filter.w <= 0 or p.input.c <= 0:
        return 0
    k = _depth(p)
    k = 0 if k >= MAX_DEPTH else k
    return (k + 31) // 32 * 32 * MVE_BLOCK


def conv_supports(p: LowbitConv2DParams) -> bool:
    return int(p.bits) == 4 and int(p.depth_multiplier) == 1 and 0 < _depth(p) < MAX_DEPTH


def fc_supports(p: LowbitFullyConnectedParams) -> bool:
    return int(p.bits) == 4 and int(p.weights_zp) == 0 and 0 < int(p.input_size) < MAX_DEPTH


# Below one chunk (K < 32) every mve weight comes from the gathered tail: the dsp variant is faster there (the mve
# path falls back to it).
def conv_mve_supports(p: LowbitConv2DParams) -> bool:
    return conv_supports(p) and _depth(p) >= 32


def fc_mve_supports(p: LowbitFullyConnectedParams) -> bool:
    return fc_supports(p) and int(p.input_size) >= 32


def conv_overlap(block: int):
    """Blocks of ``block`` pixels in raster order, each read (to scratch) before it is written."""
    return lambda p: (window_overlap(p.input, p.output, p.window, block), None, None)


def _kernel(name: str, params: type, path: str, code_bytes: int, scratch=None, block: int = 0) -> Kernel:
    family = "conv2d" if "conv2d" in name else "fully_connected"
    extra = {"scratch": scratch, "overlap": conv_overlap(block)} if scratch is not None else {}
    return register(
        Kernel(
            name,
            params,
            (f"lowbit/mcuq_{family}_s8_s4_{path}.c",),
            code_bytes=code_bytes,
            dtype="s8_packed",
            variant=path,
            context=True,
            **extra,
        )
    )


CONV2D_S8_S4_DSP = _kernel("mcuq_conv2d_s8_s4_dsp", LowbitConv2DParams, "dsp", 3904, conv2d_s4_dsp_scratch, DSP_BLOCK)
FULLY_CONNECTED_S8_S4_DSP = _kernel("mcuq_fully_connected_s8_s4_dsp", LowbitFullyConnectedParams, "dsp", 5732)
CONV2D_S8_S4_MVE = _kernel("mcuq_conv2d_s8_s4_mve", LowbitConv2DParams, "mve", 1568, conv2d_s4_mve_scratch, MVE_BLOCK)
FULLY_CONNECTED_S8_S4_MVE = _kernel("mcuq_fully_connected_s8_s4_mve", LowbitFullyConnectedParams, "mve", 1276)

variant(
    Variant(
        CONV2D_S8_LOWBIT.name,
        "dsp",
        CONV2D_S8_S4_DSP,
        supports=conv_supports,
        fold_bias=True,
        weights=lambda w, p: s4_unsigned(s4_fast_weights(w, int(p.output.c), POS_DSP_CONV)),
    )
)
variant(
    Variant(
        FULLY_CONNECTED_S8_LOWBIT.name,
        "dsp",
        FULLY_CONNECTED_S8_S4_DSP,
        supports=fc_supports,
        fold_bias=True,
        weights=lambda w, p: s4_unsigned(s4_fast_weights(w, int(p.output_size), POS_DSP_FC, interleave=4)),
    )
)
variant(
    Variant(
        CONV2D_S8_LOWBIT.name,
        "mve",
        CONV2D_S8_S4_MVE,
        supports=conv_mve_supports,
        fold_bias=True,
        weights=lambda w, p: s4_fast_weights(w, int(p.output.c), POS_MVE),
    )
)
variant(
    Variant(
        FULLY_CONNECTED_S8_LOWBIT.name,
        "mve",
        FULLY_CONNECTED_S8_S4_MVE,
        supports=fc_mve_supports,
        fold_bias=True,
        weights=lambda w, p: s4_fast_weights(w, int(p.output_size), POS_MVE),
    )
)
