"""Packed sub-8-bit weights (runtime_c/include/mcuq_lowbit.h): CONV2D, DEPTHWISE_CONV2D and FULLY_CONNECTED with
int8 activations and 4-, 2- or 1-bit weights, read packed from flash (``mcuq.quant.packing``'s layout).

The params are the int8 kernels' plus ``bits``; the numpy mirrors (``mcuq/reference/lowbit.py``) are the int8
kernels' mirrors, since the IR holds packed weights unpacked (int8 values of the narrow range) and the arithmetic
is the same.
"""

from __future__ import annotations

from dataclasses import dataclass

from .conv import Conv2DParams, FullyConnectedParams
from .cstruct import i32
from .registry import Kernel, register

BITS = (4, 2, 1)


@dataclass(frozen=True, eq=False)
class LowbitConv2DParams(Conv2DParams, c_name="mcuq_conv2d_lowbit_params"):
    """``Conv2DParams`` plus the weight width (4, 2 or 1)."""

    bits: int = i32(1, 4)


@dataclass(frozen=True, eq=False)
class LowbitFullyConnectedParams(FullyConnectedParams, c_name="mcuq_fully_connected_lowbit_params"):
    """``FullyConnectedParams`` plus the weight width (4, 2 or 1)."""

    bits: int = i32(1, 4)


CONV2D_S8_LOWBIT = register(
    Kernel(
        "mcuq_conv2d_s8_lowbit",
        LowbitConv2DParams,
        ("lowbit/mcuq_conv2d_s8_lowbit.c",),
        code_bytes=1412,
        dtype="s8_packed",
        context=True,
    )
)
DEPTHWISE_CONV2D_S8_LOWBIT = register(
    Kernel(
        "mcuq_depthwise_conv2d_s8_lowbit",
        LowbitConv2DParams,
        ("lowbit/mcuq_depthwise_conv2d_s8_lowbit.c",),
        code_bytes=1392,
        dtype="s8_packed",
        context=True,
    )
)
FULLY_CONNECTED_S8_LOWBIT = register(
    Kernel(
        "mcuq_fully_connected_s8_lowbit",
        LowbitFullyConnectedParams,
        ("lowbit/mcuq_fully_connected_s8_lowbit.c",),
        code_bytes=912,
        dtype="s8_packed",
        context=True,
    )
)

# the packed kernel of each int8 kernel (lowering swaps it in when the weights are packed)
PACKED_OF = {
    "mcuq_conv2d_s8": CONV2D_S8_LOWBIT,
    "mcuq_depthwise_conv2d_s8": DEPTHWISE_CONV2D_S8_LOWBIT,
    "mcuq_fully_connected_s8": FULLY_CONNECTED_S8_LOWBIT,
}
