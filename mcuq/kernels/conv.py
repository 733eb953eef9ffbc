"""Convolution family (runtime_c/include/mcuq_conv.h): CONV2D, DEPTHWISE_CONV2D, FULLY_CONNECTED, int8."""

from __future__ import annotations

from dataclasses import dataclass

from .cstruct import INT8_MAX, INT8_MIN, CStruct, i32, zero_point
from .registry import Kernel, register
from .types import ActivationRange, Dims, PerChannelQuant, Window


@dataclass(frozen=True, eq=False)
class Conv2DParams(CStruct, c_name="mcuq_conv2d_params"):
    """CONV2D and DEPTHWISE_CONV2D (depth_multiplier is 1 for CONV2D)."""

    input: Dims
    output: Dims
    window: Window
    depth_multiplier: int = i32(1)
    input_zp: int = zero_point()
    output_zp: int = zero_point()
    activation: ActivationRange
    quant: PerChannelQuant


@dataclass(frozen=True, eq=False)
class FullyConnectedParams(CStruct, c_name="mcuq_fully_connected_params"):
    batches: int = i32(0)
    input_size: int = i32(1)
    output_size: int = i32(1)
    input_zp: int = zero_point()
    weights_zp: int = i32(INT8_MIN, INT8_MAX)
    output_zp: int = zero_point()
    activation: ActivationRange
    per_channel: int = i32(0, 1)
    quant: PerChannelQuant


CONV2D_S8 = register(Kernel("mcuq_conv2d_s8", Conv2DParams, ("conv/mcuq_conv2d_s8.c",), code_bytes=1180, context=True))
DEPTHWISE_CONV2D_S8 = register(
    Kernel(
        "mcuq_depthwise_conv2d_s8",
        Conv2DParams,
        ("conv/mcuq_depthwise_conv2d_s8.c",),
        code_bytes=1196,
        context=True,
    )
)
FULLY_CONNECTED_S8 = register(
    Kernel(
        "mcuq_fully_connected_s8",
        FullyConnectedParams,
        ("conv/mcuq_fully_connected_s8.c",),
        code_bytes=552,
        context=True,
    )
)
