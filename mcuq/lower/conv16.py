"""Lowering of CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED in TFLite's 16x8 mode: int16 activations, int8 or
packed sub-8-bit weights, an int64 (or int32) bias. ``mcuq.lower.conv`` hands an op here when its activations are
int16.

What TFLite 2.14's reference kernels do, measured against tflite-runtime (BUILTIN_REF) and read in
tensorflow/lite/kernels/{conv,depthwise_conv,fully_connected}.cc and reference/integer_ops/*.h:

* input and output zero points must be 0 (Prepare refuses others); the filter's is ignored by CONV_2D and
  DEPTHWISE_CONV_2D (mcuq refuses a non-zero one, as for int8) and honoured by per-tensor FULLY_CONNECTED;
* multipliers and float widths as for int8 (``channel_multipliers``, ``per_tensor_fc_multiplier``);
* the accumulator follows the bias type: an int64 bias gives the int64 accumulator requantized by
  MultiplyByQuantizedMultiplier(int64_t, ...) (a 16-bit reduced multiplier, one rounding; ``acc64 = 1``); an int32
  bias (CONV_2D, FULLY_CONNECTED) gives the int32 accumulator with the int8 kernels' double rounding
  (``acc64 = 0``). Without a bias, FULLY_CONNECTED takes the int32 path and DEPTHWISE_CONV_2D the int64 one;
  tflite-runtime 2.14's CONV_2D refuses a missing bias (``has_bias``), mcuq runs it on the int64 path as
  DEPTHWISE_CONV_2D does. DEPTHWISE_CONV_2D refuses an int32 bias, and so does mcuq.
* Bounds checked here so that the C computes TFLite's numbers: the int64 accumulator within TFLite's +-2^47 and
  shift <= 14 (``15 - shift`` is the right shift); the int32 accumulator within int32 for every int16 input.
"""

from __future__ import annotations

import numpy as np

from ..ir import Conv2DAttrs, DepthwiseConv2DAttrs, DType, FullyConnectedAttrs, Graph, Op, OpKind, Tensor
from ..kernels.conv16 import (
    CONV2D_S16,
    DEPTHWISE_CONV2D_S16,
    FULLY_CONNECTED_S16,
    Conv2DS16Params,
    FullyConnectedS16Params,
)
from ..kernels.types import Dims, PerChannelQuant
from ..quant.fixedpoint import INT32_MAX
from .base import Layer, fail
from .common import (
    activation_range,
    channel_multipliers,
    conv_window,
    per_tensor_fc_multiplier,
    require_act,
    require_symmetric,
)
from .lowbit import value_problem

ACC64_LIMIT = 2**47  # TFLite's documented input range of MultiplyByQuantizedMultiplier(int64_t, ...)
SHIFT64_MAX = 14  # 15 - shift is the right shift of the int64 requantization
X_MAX = 32768  # the largest |x| of an int16 input


def is_16x8(g: Graph, op: Op) -> bool:
    """True when the op's input or output is int16 (the 16x8 lowering handles it, and refuses mixed types)."""
    return any(g.tensors[n].dtype == DType.INT16 for n in (op.inputs[0], op.outputs[0]) if n)


def _weights(g: Graph, op: Op, name: str, rank: int) -> Tensor:
    t = g.tensors[name]
    if (t.dtype != DType.INT8 and not t.dtype.packed) or t.data is None:
        raise fail(g, op, f"weights '{name}' must be a constant int8 (or int4/int2/int1) tensor (is {t.dtype.value})")
    if t.qparams is None:
        raise fail(g, op, f"weights '{name}' have no quantization parameters")
    if len(t.shape) != rank:
        raise fail(g, op, f"weights '{name}' have rank {len(t.shape)}, expected {rank}")
    if t.dtype.packed:
        problem = value_problem(t)
        if problem:
            raise fail(g, op, problem)
    return t


def _bias(g: Graph, op: Op, name: str, channels: int) -> tuple[np.ndarray | None, bool | None]:
    """(the bias as int64 or None, acc64: True for an int64 bias, False for int32, None when absent)."""
    if not name:
        return None, None
    t = g.tensors[name]
    if t.dtype not in (DType.INT64, DType.INT32) or t.data is None:
        raise fail(g, op, f"bias '{name}' must be a constant int64 tensor with int16 activations (is {t.dtype.value})")
    if t.size != channels:
        raise fail(g, op, f"bias '{name}' has {t.size} elements for {channels} output channels")
    if t.qparams is not None and any(z != 0 for z in t.qparams.zero_point):
        raise fail(g, op, f"bias '{name}' must have zero point 0")
    return np.asarray(t.data).reshape(-1).astype(np.int64), t.dtype == DType.INT64


def _check_accumulator(g: Graph, op: Op, w_abs_sum: np.ndarray, bias: np.ndarray | None, acc64: bool) -> None:
    """Every output channel's worst-case accumulator (|w| sums times 32768, plus |bias|) within the bound of the
    accumulator TFLite uses: +-2^47 for int64, int32 for int32. Computed on Python ints (a bias may be near 2^63)."""
    limit = ACC64_LIMIT - 1 if acc64 else INT32_MAX
    b = [0] * len(w_abs_sum) if bias is None else [abs(int(v)) for v in bias]
    for c, (s, bc) in enumerate(zip(w_abs_sum.tolist(), b, strict=True)):
        worst = int(s) * X_MAX + bc
        if worst > limit:
            what = "int64 accumulator could exceed TFLite's 2^47 range" if acc64 else "int32 accumulator could overflow"
            hint = "" if acc64 else " (an int64 bias selects TFLite's int64 accumulator)"
            raise fail(g, op, f"{what} in output channel {c} (worst case {worst} > {limit}){hint}")


def _check_shifts(g: Graph, op: Op, shift: np.ndarray, acc64: bool) -> None:
    if acc64 and shift.size and int(shift.max()) > SHIFT64_MAX:
        c = int(shift.argmax())
        raise fail(
            g,
            op,
            f"effective output scale of channel {c} is too large for 16x8 requantization (shift {int(shift[c])} > "
            f"{SHIFT64_MAX})",
        )


def _bias_arg(b_name: str, bias: np.ndarray | None, widened: bool, op: Op) -> tuple[str, dict[str, Tensor]]:
    """The bias argument: the model's int64 tensor, or an int32 one widened to an int64 constant of the layer."""
    if bias is None or not widened:
        return b_name, {}
    name = f"{b_name}/int64"
    return name, {name: Tensor(name, (bias.size,), DType.INT64, None, bias)}


def lower_conv2d_s16(g: Graph, op: Op) -> Layer:
    """CONV_2D / DEPTHWISE_CONV_2D with int16 activations (see the module docstring)."""
    attrs = op.attrs
    depthwise = op.kind == OpKind.DEPTHWISE_CONV2D
    assert isinstance(attrs, DepthwiseConv2DAttrs if depthwise else Conv2DAttrs)
    x_name, w_name, y_name = op.inputs[0], op.inputs[1], op.outputs[0]
    b_name = op.inputs[2] if len(op.inputs) > 2 else ""
    x, y = require_act(g, op, x_name, y_name)
    wt = _weights(g, op, w_name, 4)
    require_symmetric(g, op, wt)
    if len(x.shape) != 4:
        raise fail(g, op, f"input must be NHWC (rank 4), has shape {x.shape}")
    n, h, w, cin = x.shape
    w_abs = np.abs(np.asarray(wt.data, dtype=np.int64))
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
        w_abs_sum = w_abs.reshape(-1, cout).sum(axis=0)
        macs_per_output = kh * kw
    else:
        cout, kh, kw, wcin = wt.shape
        if wcin != cin:
            raise fail(g, op, f"weights have {wcin} input channels, input has {cin} (grouped conv is not supported)")
        w_abs_sum = w_abs.reshape(cout, -1).sum(axis=1)
        macs_per_output = kh * kw * cin
    oh, ow, win = conv_window(g, op, attrs, x, kh, kw, y)
    if y.shape[3] != cout:
        raise fail(g, op, f"output has {y.shape[3]} channels, weights {cout}")
    bias, bias64 = _bias(g, op, b_name, cout)
    if depthwise and bias64 is False:
        raise fail(g, op, f"bias '{b_name}' is int32; TFLite's DEPTHWISE_CONV_2D needs an int64 bias with int16 data")
    acc64 = bias64 is not False  # int64 or no bias: the int64 path
    assert wt.qparams is not None
    mult, shift = channel_multipliers(g, op, x.scale, wt.qparams.scale, y.scale, cout)
    _check_shifts(g, op, shift, acc64)
    _check_accumulator(g, op, w_abs_sum, bias, acc64)
    bias_arg, consts = _bias_arg(b_name, bias, bias64 is False, op)
    params = Conv2DS16Params(
        input=Dims(n, h, w, cin),
        output=Dims(n, oh, ow, cout),
        window=win,
        depth_multiplier=depth_multiplier,
        weight_bits=wt.dtype.bits,
        acc64=int(acc64),
        activation=activation_range(attrs.activation, y),
        quant=PerChannelQuant(mult, shift),
    )
    return Layer(
        op=op,
        kernel=DEPTHWISE_CONV2D_S16 if depthwise else CONV2D_S16,
        params=params,
        args=(x_name, w_name, bias_arg, y_name),
        macs=n * oh * ow * cout * macs_per_output,
        consts=consts,
    )


def lower_fully_connected_s16(g: Graph, op: Op) -> Layer:
    """FULLY_CONNECTED with int16 activations (see the module docstring)."""
    attrs = op.attrs
    assert isinstance(attrs, FullyConnectedAttrs)
    x_name, w_name, y_name = op.inputs[0], op.inputs[1], op.outputs[0]
    b_name = op.inputs[2] if len(op.inputs) > 2 else ""
    x, y = require_act(g, op, x_name, y_name)
    wt = _weights(g, op, w_name, 2)
    assert wt.qparams is not None
    units, depth = wt.shape
    if depth < 1 or x.size % depth != 0:
        raise fail(g, op, f"input of {x.size} elements is not a whole number of rows of {depth}")
    batches = x.size // depth
    if y.size != batches * units or (len(y.shape) > 0 and y.shape[-1] != units):
        raise fail(g, op, f"output shape {y.shape} does not match {batches} rows of {units} units")
    bias, bias64 = _bias(g, op, b_name, units)
    acc64 = bias64 is True  # FULLY_CONNECTED: int32 path for an int32 bias and without a bias
    if wt.qparams.per_channel:
        require_symmetric(g, op, wt)
        if len(wt.qparams.scale) != units:
            raise fail(g, op, f"weights have {len(wt.qparams.scale)} scales for {units} units")
        mult, shift = channel_multipliers(g, op, x.scale, wt.qparams.scale, y.scale, units)
        weights_zp = 0
    else:
        mult, shift = per_tensor_fc_multiplier(g, op, x.scale, wt.qparams.scale[0], y.scale)
        weights_zp = int(wt.qparams.zero_point[0])
        if wt.dtype.packed and weights_zp != 0:
            raise fail(g, op, f"packed weights '{w_name}' must be symmetric (zero point 0)")
    _check_shifts(g, op, shift, acc64)
    w_data = np.asarray(wt.data, dtype=np.int64)
    _check_accumulator(g, op, np.abs(w_data - weights_zp).sum(axis=1), bias, acc64)
    bias_arg, consts = _bias_arg(b_name, bias, bias64 is False, op)
    params = FullyConnectedS16Params(
        batches=batches,
        input_size=depth,
        output_size=units,
        weights_zp=weights_zp,
        weight_bits=wt.dtype.bits,
        acc64=int(acc64),
        activation=activation_range(attrs.activation, y),
        per_channel=int(wt.qparams.per_channel),
        quant=PerChannelQuant(mult, shift),
    )
    return Layer(
        op=op,
        kernel=FULLY_CONNECTED_S16,
        params=params,
        args=(x_name, w_name, bias_arg, y_name),
        macs=batches * units * depth,
        consts=consts,
    )
