"""numpy mirrors of runtime_c/src/lowbit/*.c: the packed-weight kernels compute what the int8 ones compute on the
unpacked values, which is what the IR holds (``Tensor.data`` of an INT4/INT2/INT1 weight is int8)."""

from __future__ import annotations

from types import SimpleNamespace

from .base import reference
from .conv import conv2d_s8, depthwise_conv2d_s8, fully_connected_s8


def _on_int8(mirror):
    def run(layer, inputs, out_shapes):
        return mirror(SimpleNamespace(params=layer.params), inputs, out_shapes)

    return run


reference("mcuq_conv2d_s8_lowbit")(_on_int8(conv2d_s8))
reference("mcuq_depthwise_conv2d_s8_lowbit")(_on_int8(depthwise_conv2d_s8))
reference("mcuq_fully_connected_s8_lowbit")(_on_int8(fully_connected_s8))
