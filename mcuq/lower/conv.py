"""Lowering of CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED to integer kernel parameters.

Every number mirrors TFLite 2.14's Prepare (tensorflow/lite/kernels/conv.cc, depthwise_conv.cc,
fully_connected.cc, kernel_util.cc, padding.h), including its float widths:

* conv, depthwise and per-channel FC: ``double(s_in) * double(s_w[c]) / double(s_out)`` per output channel
  (PopulateConvolutionQuantizationParams; a single weight scale is broadcast to every channel);
* per-tensor FC: ``double(float32(s_in * s_w)) / double(s_out)`` (GetQuantizedConvolutionMultipler multiplies
  the two float scales in float32 before widening);

each then goes through QuantizeMultiplier. Padding is ComputePaddingHeightWidth's floor half (the odd extra
pixel goes to the bottom/right and is implicit in the kernel's bounds).
"""

from __future__ import annotations

import numpy as np

from ..ir import (
    Conv2DAttrs,
    DepthwiseConv2DAttrs,
    DType,
    FullyConnectedAttrs,
    Graph,
    Op,
    OpKind,
    Tensor,
)
from ..kernels.conv import (
    CONV2D_S8,
    DEPTHWISE_CONV2D_S8,
    FULLY_CONNECTED_S8,
    Conv2DParams,
    FullyConnectedParams,
)
from ..kernels.types import Dims, PerChannelQuant
from ..quant.fixedpoint import INT32_MAX
from .base import Layer, fail, lowering
from .common import (
    activation_range,
    channel_multipliers,
    conv_window,
    per_tensor_fc_multiplier,
    require_int8,
    require_symmetric,
)
from .conv16 import is_16x8, lower_conv2d_s16, lower_fully_connected_s16
from .lowbit import packed_layer


def check_accumulator(g: Graph, op: Op, w_abs_sum: np.ndarray, bias: np.ndarray | None, input_zp: int) -> None:
    """Fail unless every output channel's worst-case int32 accumulator fits.

    w_abs_sum[c] = sum over channel c's taps of |w - weights_zp|; each tap multiplies it by at most
    max|x - input_zp| (<= 255); the bias is added on top. Every partial sum is bounded by the same total.
    """
    x_max = max(127 - input_zp, input_zp + 128)
    worst = w_abs_sum.astype(np.int64) * x_max
    if bias is not None:
        worst = worst + np.abs(bias.astype(np.int64))
    if int(worst.max(initial=0)) > INT32_MAX:
        c = int(worst.argmax())
        raise fail(
            g, op, f"int32 accumulator could overflow in output channel {c} (worst case {int(worst[c])} > 2^31-1)"
        )


def _bias(g: Graph, op: Op, name: str, channels: int) -> np.ndarray | None:
    if not name:
        return None
    t = g.tensors[name]
    if t.dtype != DType.INT32 or t.data is None:
        raise fail(g, op, f"bias '{name}' must be a constant int32 tensor (is {t.dtype.value})")
    if t.size != channels:
        raise fail(g, op, f"bias '{name}' has {t.size} elements for {channels} output channels")
    return np.asarray(t.data).reshape(-1).astype(np.int64)


def _weights(g: Graph, op: Op, name: str, rank: int) -> Tensor:
    t = g.tensors[name]
    if (t.dtype != DType.INT8 and not t.dtype.packed) or t.data is None:  # packed: mcuq.lower.lowbit
        raise fail(g, op, f"weights '{name}' must be a constant int8 tensor (is {t.dtype.value})")
    if t.qparams is None:
        raise fail(g, op, f"weights '{name}' have no quantization parameters")
    if len(t.shape) != rank:
        raise fail(g, op, f"weights '{name}' have rank {len(t.shape)}, expected {rank}")
    return t


def _operands(g: Graph, op: Op, weight_rank: int) -> tuple[tuple[str, str, str, str], Tensor, Tensor, Tensor]:
    """(input, weights, bias or "", output) names, then the checked input, weight and output tensors."""
    names = (op.inputs[0], op.inputs[1], op.inputs[2] if len(op.inputs) > 2 else "", op.outputs[0])
    x, y = require_int8(g, op, names[0], names[3])
    return names, x, _weights(g, op, names[1], weight_rank), y


@lowering(OpKind.CONV2D, OpKind.DEPTHWISE_CONV2D)
def lower_conv2d(g: Graph, op: Op) -> Layer:
    """CONV_2D (weights OHWI) and DEPTHWISE_CONV_2D (weights 1HWC, C = in_ch * depth_multiplier): the same
    window, padding, per-channel requantization and checks; they differ in the weight layout and the kernel."""
    if is_16x8(g, op):
        return lower_conv2d_s16(g, op)
    attrs = op.attrs
    depthwise = op.kind == OpKind.DEPTHWISE_CONV2D
    assert isinstance(attrs, DepthwiseConv2DAttrs if depthwise else Conv2DAttrs)
    (x_name, w_name, b_name, y_name), x, wt, y = _operands(g, op, 4)
    require_symmetric(g, op, wt)
    if len(x.shape) != 4:
        raise fail(g, op, f"input must be NHWC (rank 4), has shape {x.shape}")
    n, h, w, cin = x.shape
    w_int = np.asarray(wt.data, dtype=np.int64)
    depth_multiplier = 1
    if depthwise:
        one, kh, kw, cout = wt.shape
        if one != 1:
            raise fail(g, op, f"depthwise weights must be 1HWC, have shape {wt.shape}")
        if cout % cin != 0:
            raise fail(g, op, f"{cout} output channels are not a multiple of {cin} input channels")
        if attrs.depth_multiplier not in (0, cout // cin):
            raise fail(g, op, f"depth_multiplier {attrs.depth_multiplier} != {cout} / {cin}")
        depth_multiplier = cout // cin
        w_abs = np.abs(w_int).reshape(-1, cout).sum(axis=0)
        macs_per_output = kh * kw
    else:
        cout, kh, kw, wcin = wt.shape
        if wcin != cin:
            raise fail(g, op, f"weights have {wcin} input channels, input has {cin} (grouped conv is not supported)")
        w_abs = np.abs(w_int).reshape(cout, -1).sum(axis=1)
        macs_per_output = kh * kw * cin
    oh, ow, win = conv_window(g, op, attrs, x, kh, kw, y)
    if y.shape[3] != cout:
        raise fail(g, op, f"output has {y.shape[3]} channels, weights {cout}")
    assert wt.qparams is not None
    mult, shift = channel_multipliers(g, op, x.scale, wt.qparams.scale, y.scale, cout)
    bias = _bias(g, op, b_name, cout)
    check_accumulator(g, op, w_abs, bias, x.zero_point)
    params = Conv2DParams(
        input=Dims(n, h, w, cin),
        output=Dims(n, oh, ow, cout),
        window=win,
        depth_multiplier=depth_multiplier,
        input_zp=x.zero_point,
        output_zp=y.zero_point,
        activation=activation_range(attrs.activation, y),
        quant=PerChannelQuant(mult, shift),
    )
    layer = Layer(
        op=op,
        kernel=DEPTHWISE_CONV2D_S8 if depthwise else CONV2D_S8,
        params=params,
        args=(x_name, w_name, b_name, y_name),
        macs=n * oh * ow * cout * macs_per_output,
    )
    return packed_layer(g, op, layer, wt)


@lowering(OpKind.FULLY_CONNECTED)
def lower_fully_connected(g: Graph, op: Op) -> Layer:

    if is_16x8(g, op):
        return lower_fully_connected_s16(g, op)
    attrs = op.attrs
    assert isinstance(attrs, FullyConnectedAttrs)
    (x_name, w_name, b_name, y_name), x, wt, y = _operands(g, op, 2)
    assert wt.qparams is not None
    units, depth = wt.shape
    if depth < 1 or x.size % depth != 0:
        raise fail(g, op, f"input of {x.size} elements is not a whole number of rows of {depth}")
    batches = x.size // depth
    if y.size != batches * units or (len(y.shape) > 0 and y.shape[-1] != units):
        raise fail(g, op, f"output shape {y.shape} does not match {batches} rows of {units} units")
    bias = _bias(g, op, b_name, units)
    w_data = np.asarray(wt.data, dtype=np.int64)
    if wt.qparams.per_channel:
        require_symmetric(g, op, wt)
        if len(wt.qparams.scale) != units:
            raise fail(g, op, f"weights have {len(wt.qparams.scale)} scales for {units} units")
        mult, shift = channel_multipliers(g, op, x.scale, wt.qparams.scale, y.scale, units)
        weights_zp = 0
    else:
        mult, shift = per_tensor_fc_multiplier(g, op, x.scale, wt.qparams.scale[0], y.scale)
        weights_zp = int(wt.qparams.zero_point[0])
    check_accumulator(g, op, np.abs(w_data - weights_zp).sum(axis=1), bias, x.zero_point)
    params = FullyConnectedParams(
        batches=batches,
        input_size=depth,
        output_size=units,
        input_zp=x.zero_point,
        weights_zp=weights_zp,
        output_zp=y.zero_point,
        activation=activation_range(attrs.activation, y),
        per_channel=int(wt.qparams.per_channel),
        quant=PerChannelQuant(mult, shift),
    )
    layer = Layer(
        op=op,
        kernel=FULLY_CONNECTED_S8,
        params=params,
        args=(x_name, w_name, b_name, y_name),
        macs=batches * units * depth,
    )
    return packed_layer(g, op, layer, wt)
