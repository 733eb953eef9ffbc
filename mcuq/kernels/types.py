"""Mirrors of the shared structs in runtime_c/include/mcuq_types.h."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cstruct import INT8_MAX, INT8_MIN, INT32_MAX, RESCALE_HINT, SHIFT_MIN, CStruct, array, i32


@dataclass(frozen=True)
class Dims(CStruct, c_name="mcuq_dims"):
    """An NHWC shape."""

    n: int = i32(0)
    h: int = i32(1)
    w: int = i32(1)
    c: int = i32(1)


@dataclass(frozen=True)
class Hw(CStruct, c_name="mcuq_hw"):
    h: int = i32(0)
    w: int = i32(0)


@dataclass(frozen=True)
class Window(CStruct, c_name="mcuq_window"):
    """Filter taps, stride, dilation and top/left padding of a sliding window (conv, depthwise, pool)."""

    filter: Hw
    stride: Hw
    dilation: Hw
    pad: Hw


@dataclass(frozen=True)
class ActivationRange(CStruct, c_name="mcuq_activation"):
    """Output clamp bounds (a fused activation), int8 values."""

    min: int = i32(INT8_MIN, INT8_MAX)
    max: int = i32(INT8_MIN, INT8_MAX)


@dataclass(frozen=True)
class ActivationRange16(ActivationRange, c_name="mcuq_activation"):
    """The same C struct holding int16 clamp bounds (the 16x8 kernels' outputs)."""

    min: int = i32(-32768, 32767)
    max: int = i32(-32768, 32767)


@dataclass(frozen=True, eq=False)
class PerChannelQuant(CStruct, c_name="mcuq_per_channel_quant"):
    """Per-channel requantization multipliers and shifts (int32 arrays of one length)."""

    multiplier: np.ndarray = array("int32_t", 0, INT32_MAX)
    shift: np.ndarray = array("int32_t", SHIFT_MIN, 30, RESCALE_HINT)  # as mcuq_types.h documents
