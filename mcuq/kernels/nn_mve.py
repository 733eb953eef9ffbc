"""Helium (MVE) kernel variants (runtime_c/src/conv/*_mve.c), registered in the variant table
(``mcuq.kernels.variants``). On a core without MVE the same C files run the same algorithm in plain C."""

from __future__ import annotations

import numpy as np

from .conv import Conv2DParams, FullyConnectedParams
from .overlap import window_overlap
from .registry import Kernel, register
from .variants import Variant, variant

# -- CONV_2D and FULLY_CONNECTED (im2col + VMLADAVA over interleaved weight groups) ---------------------------------

CONV_MVE_BLOCK = 2  # output pixels per block (MCUQ_CONV_MVE_BLOCK in mcuq_conv2d_s8_mve.c)


def padded_depth(k: int) -> int:
    """K rounded up to a multiple of 16 (one VMLADAVA.S8 takes 16 values)."""
    return -(-k // 16) * 16


def mve_weights(w: np.ndarray, rows: int) -> np.ndarray:
    """The weight layout of the MVE conv and FC kernels: ``rows`` rows of K values, each padded with zeros to
    KP = padded_depth(K), zero rows appended up to a multiple of 4, then each group of 4 rows interleaved by
    16-value chunks (chunk j of rows 0, 1, 2, 3, then chunk j + 1, ...): 4 * KP bytes per group, flat."""
    w2 = np.asarray(w).reshape(rows, -1)
    k = w2.shape[1]
    kp = padded_depth(k)
    groups = -(-rows // 4)
    out = np.zeros((groups * 4, kp), dtype=np.int8)
    out[:rows, :k] = w2
    return np.ascontiguousarray(out.reshape(groups, 4, kp // 16, 16).transpose(0, 2, 1, 3)).reshape(-1)


def conv2d_mve_scratch(p: Conv2DParams) -> int:
    """Mirror of mcuq_conv2d_s8_mve_scratch_size: one im2col row of KP bytes per pixel of a block."""
    return CONV_MVE_BLOCK * padded_depth(p.window.filter.h * p.window.filter.w * p.input.c)


def conv2d_mve_overlap(p: Conv2DParams) -> tuple[int | None, ...]:
    """Blocks of CONV_MVE_BLOCK pixels in raster order, each read (to scratch) before it is written."""
    return (window_overlap(p.input, p.output, p.window, CONV_MVE_BLOCK), None, None)


CONV2D_S8_MVE = register(
    Kernel(
        "mcuq_conv2d_s8_mve",
        Conv2DParams,
        ("conv/mcuq_conv2d_s8_mve.c",),
        code_bytes=3376,
        variant="mve",
        context=True,
        scratch=conv2d_mve_scratch,
        overlap=conv2d_mve_overlap,
    )
)
FULLY_CONNECTED_S8_MVE = register(
    Kernel(
        "mcuq_fully_connected_s8_mve",
        FullyConnectedParams,
        ("conv/mcuq_fully_connected_s8_mve.c",),
        code_bytes=672,
        variant="mve",
        context=True,
    )
)

variant(
    Variant(
        "mcuq_conv2d_s8",
        "mve",
        CONV2D_S8_MVE,
        supports=lambda p: p.depth_multiplier == 1,
        fold_bias=True,
        weights=lambda w, p: mve_weights(w, p.output.c),
    )
)
variant(
    Variant(
        "mcuq_fully_connected_s8",
        "mve",
        FULLY_CONNECTED_S8_MVE,
        supports=lambda p: p.weights_zp == 0,
        fold_bias=True,
        weights=lambda w, p: mve_weights(w, p.output_size),
    )
)

# -- end of CONV_2D and FULLY_CONNECTED ------------------------------------------------------------------------------
