"""Sliding-window geometry shared by convolution, depthwise convolution and pooling (TFLite's padding.h)."""

from __future__ import annotations

from ..ir import Padding
from ..kernels.types import Hw, Window


def out_size(padding: Padding, size: int, taps: int, stride: int, dilation: int) -> int:
    """TFLite's ComputeOutSize."""
    effective = (taps - 1) * dilation + 1
    if padding == Padding.SAME:
        return (size + stride - 1) // stride
    return (size + stride - effective) // stride


def pad_before(size: int, taps: int, stride: int, dilation: int, out: int) -> int:
    """TFLite's ComputePaddingWithOffset: the leading (top/left) half of the total padding, floored."""
    effective = (taps - 1) * dilation + 1
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2


def window(
    padding: Padding, in_hw: tuple[int, int], taps: tuple[int, int], stride: tuple[int, int], dilation=(1, 1)
) -> tuple[tuple[int, int], Window]:
    """((out_h, out_w), the Window struct) of a window with ``taps`` over an input of ``in_hw``; TFLite's floor
    half padding: the odd extra pixel goes to the bottom/right and is implicit in the kernel's bounds."""
    oh = out_size(padding, in_hw[0], taps[0], stride[0], dilation[0])
    ow = out_size(padding, in_hw[1], taps[1], stride[1], dilation[1])
    pad = Hw(
        pad_before(in_hw[0], taps[0], stride[0], dilation[0], oh),
        pad_before(in_hw[1], taps[1], stride[1], dilation[1], ow),
    )
    return (oh, ow), Window(Hw(*taps), Hw(*stride), Hw(*dilation), pad)
