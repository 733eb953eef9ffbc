"""Convolution family, 16x8 (runtime_c/include/mcuq_conv.h): int16 activations, int8 or packed weights, int64
bias. One kernel per op serves every weight width (``weight_bits``) and both of TFLite's accumulators (``acc64``)."""

from __future__ import annotations

from dataclasses import dataclass

from .cstruct import INT8_MAX, INT8_MIN, CStruct, i32
from .registry import Kernel, register
from .types import ActivationRange16, Dims, PerChannelQuant, Window

WEIGHT_BITS = (8, 4, 2, 1)


def weight_bits() -> int:
    """An ``int32_t`` weight width: 8, or 4, 2, 1 for packed weights (the C checks the exact set)."""
    return i32(1, 8)


@dataclass(frozen=True, eq=False)
class Conv2DS16Params(CStruct, c_name="mcuq_conv2d_s16_params"):
    """CONV2D and DEPTHWISE_CONV2D with int16 activations (depth_multiplier is 1 for CONV2D)."""

    input: Dims
    output: Dims
    window: Window
    depth_multiplier: int = i32(1)
    weight_bits: int = weight_bits()
    acc64: int = i32(0, 1)
    activation: ActivationRange16
    quant: PerChannelQuant


@dataclass(frozen=True, eq=False)
class FullyConnectedS16Params(CStruct, c_name="mcuq_fully_connected_s16_params"):
    batches: int = i32(0)
    input_size: int = i32(1)
    output_size: int = i32(1)
    weights_zp: int = i32(INT8_MIN, INT8_MAX)
    weight_bits: int = weight_bits()
    acc64: int = i32(0, 1)
    activation: ActivationRange16
    per_channel: int = i32(0, 1)
    quant: PerChannelQuant


CONV2D_S16 = register(
    Kernel(
        "mcuq_conv2d_s16",
        Conv2DS16Params,
        ("conv/mcuq_conv2d_s16.c",),
        code_bytes=1672,
        dtype="s16",
        context=True,
    )
)
DEPTHWISE_CONV2D_S16 = register(
    Kernel(
        "mcuq_depthwise_conv2d_s16",
        Conv2DS16Params,
        ("conv/mcuq_depthwise_conv2d_s16.c",),
        code_bytes=1828,
        dtype="s16",
        context=True,
    )
)
FULLY_CONNECTED_S16 = register(
    Kernel(
        "mcuq_fully_connected_s16",
        FullyConnectedS16Params,
        ("conv/mcuq_fully_connected_s16.c",),
        code_bytes=1164,
        dtype="s16",
        context=True,
    )
)
