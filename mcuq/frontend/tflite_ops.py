"""TFLite operator converters: builtin options and attribute-carrying inputs -> typed IR attrs.

One converter per builtin op name, in the ``CONVERTERS`` table. A converter receives an ``OpContext`` and
returns the op's attrs and the positions of its *data* inputs in the TFLite operator's input list (positions
past the end or holding -1 become ``""``, an absent optional input). Inputs that carry attributes (RESHAPE's
shape, PAD's paddings, MEAN's axes, TRANSPOSE's perm) are read as constants and folded into the attrs.

The enum tables here are shared with ``tflite_writer``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import tflite

from .. import ir
from ..errors import ModelError

# TFLite schema enums (schema.fbs) <-> IR enums.
ACTIVATIONS: dict[int, ir.Activation] = {
    tflite.ActivationFunctionType.NONE: ir.Activation.NONE,
    tflite.ActivationFunctionType.RELU: ir.Activation.RELU,
    tflite.ActivationFunctionType.RELU_N1_TO_1: ir.Activation.RELU_N1_TO_1,
    tflite.ActivationFunctionType.RELU6: ir.Activation.RELU6,
}
PADDINGS: dict[int, ir.Padding] = {tflite.Padding.SAME: ir.Padding.SAME, tflite.Padding.VALID: ir.Padding.VALID}
TENSOR_TYPES: dict[int, ir.DType] = {
    tflite.TensorType.FLOAT32: ir.DType.FLOAT32,
    tflite.TensorType.FLOAT16: ir.DType.FLOAT16,  # constant weights of float16 models, read by a DEQUANTIZE
    tflite.TensorType.INT32: ir.DType.INT32,
    tflite.TensorType.UINT8: ir.DType.UINT8,
    tflite.TensorType.INT64: ir.DType.INT64,
    tflite.TensorType.BOOL: ir.DType.BOOL,
    tflite.TensorType.INT16: ir.DType.INT16,
    tflite.TensorType.INT8: ir.DType.INT8,
    tflite.TensorType.INT4: ir.DType.INT4,  # packed, two per byte; ``Tensor.data`` holds them unpacked
}
# builtin operator code -> name, from the generated enum class (e.g. 3 -> "CONV_2D").
BUILTIN_NAMES: dict[int, str] = {
    v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_") and isinstance(v, int)
}
BUILTIN_CODES: dict[str, int] = {v: k for k, v in BUILTIN_NAMES.items()}
OPTION_NAMES: dict[int, str] = {
    v: k for k, v in vars(tflite.BuiltinOptions).items() if not k.startswith("_") and isinstance(v, int)
}


@dataclass
class OpContext:
    """What a converter sees of one TFLite operator."""

    source: str
    index: int
    name: str  # builtin op name, e.g. "CONV_2D"
    inputs: list[int]  # TFLite tensor indices, -1 for an absent optional input
    outputs: list[int]
    options_type: int
    options: Any  # flatbuffers Table or None
    shape_of: Callable[[int], tuple[int, ...]]  # TFLite tensor index -> shape
    const_of: Callable[[int], np.ndarray | None]  # TFLite tensor index -> data or None

    def error(self, message: str) -> ModelError:
        return ModelError(self.source, f"op {self.index} ({self.name}): {message}")

    def opts(self, cls: type) -> Any:
        """The builtin options as ``cls`` (e.g. ``tflite.Conv2DOptions``), or None when absent."""
        if self.options is None or self.options_type == 0:
            return None
        want = getattr(tflite.BuiltinOptions, cls.__name__, None)
        if want is not None and self.options_type != want:
            got = OPTION_NAMES.get(self.options_type, str(self.options_type))
            raise self.error(f"builtin options are {got}, expected {cls.__name__}")
        o = cls()
        o.Init(self.options.Bytes, self.options.Pos)
        return o

    def in_shape(self, pos: int) -> tuple[int, ...]:
        return self.shape_of(self.inputs[pos])

    def out_shape(self, pos: int = 0) -> tuple[int, ...]:
        return self.shape_of(self.outputs[pos])

    def const_input(self, pos: int, what: str) -> np.ndarray:
        """The constant data of input ``pos`` (an attribute-carrying input); ModelError if missing or not const."""
        if pos >= len(self.inputs) or self.inputs[pos] < 0:
            raise self.error(f"missing {what} input")
        data = self.const_of(self.inputs[pos])
        if data is None:
            raise self.error(f"{what} input (tensor {self.inputs[pos]}) must be a constant")
        return data

    def activation(self, code: int) -> ir.Activation:
        if code not in ACTIVATIONS:
            raise self.error(f"fused activation {code} not supported (supported: NONE, RELU, RELU_N1_TO_1, RELU6)")
        return ACTIVATIONS[code]

    def padding(self, code: int) -> ir.Padding:
        if code not in PADDINGS:
            raise self.error(f"padding {code} not supported")
        return PADDINGS[code]

    def positive(self, **values: int) -> None:
        for k, v in values.items():
            if v < 1:
                raise self.error(f"{k} must be >= 1, got {v}")


Converted = tuple[ir.Attrs, tuple[int, ...]]


def _conv_options(c: OpContext, cls: type) -> tuple[Any, dict[str, Any]]:
    """The ``cls`` options (Conv2DOptions or DepthwiseConv2DOptions, which share their window fields) and the
    keyword arguments for the window and activation fields of the op's attrs, checked."""
    o = c.opts(cls)
    if o is None:
        raise c.error(f"missing {cls.__name__}")
    padding = c.padding(o.Padding())
    window = {
        "stride_h": o.StrideH(),
        "stride_w": o.StrideW(),
        "dilation_h": o.DilationHFactor(),
        "dilation_w": o.DilationWFactor(),
    }
    activation = c.activation(o.FusedActivationFunction())
    c.positive(**window)
    return o, {"padding": padding, "activation": activation, **window}


def _conv(c: OpContext) -> Converted:
    _, kw = _conv_options(c, tflite.Conv2DOptions)
    return ir.Conv2DAttrs(**kw), (0, 1, 2)


def _depthwise(c: OpContext) -> Converted:
    o, kw = _conv_options(c, tflite.DepthwiseConv2DOptions)
    return ir.DepthwiseConv2DAttrs(depth_multiplier=o.DepthMultiplier(), **kw), (0, 1, 2)


def _fully_connected(c: OpContext) -> Converted:
    o = c.opts(tflite.FullyConnectedOptions)
    if o is None:
        return ir.FullyConnectedAttrs(), (0, 1, 2)
    if o.WeightsFormat() != tflite.FullyConnectedOptionsWeightsFormat.DEFAULT:
        raise c.error(f"weights format {o.WeightsFormat()} not supported (only DEFAULT)")
    act = c.activation(o.FusedActivationFunction())
    return ir.FullyConnectedAttrs(activation=act, keep_num_dims=bool(o.KeepNumDims())), (0, 1, 2)


def _pool(c: OpContext) -> Converted:
    o = c.opts(tflite.Pool2DOptions)
    if o is None:
        raise c.error("missing Pool2DOptions")
    a = ir.Pool2DAttrs(
        padding=c.padding(o.Padding()),
        stride_h=o.StrideH(),
        stride_w=o.StrideW(),
        filter_h=o.FilterHeight(),
        filter_w=o.FilterWidth(),
        activation=c.activation(o.FusedActivationFunction()),
    )
    c.positive(stride_h=a.stride_h, stride_w=a.stride_w, filter_h=a.filter_h, filter_w=a.filter_w)
    return a, (0,)


def _add(c: OpContext) -> Converted:
    # AddOptions.pot_scale_int16 (schema default true) only matters for int16 operands; absent options are false.
    o = c.opts(tflite.AddOptions)
    act = c.activation(o.FusedActivationFunction()) if o is not None else ir.Activation.NONE
    return ir.BinaryAttrs(activation=act, pot_scale_int16=bool(o.PotScaleInt16()) if o is not None else False), (0, 1)


def _sub(c: OpContext) -> Converted:
    # SubOptions.pot_scale_int16, as ADD's.
    o = c.opts(tflite.SubOptions)
    act = c.activation(o.FusedActivationFunction()) if o is not None else ir.Activation.NONE
    return ir.BinaryAttrs(activation=act, pot_scale_int16=bool(o.PotScaleInt16()) if o is not None else False), (0, 1)


def _mul(c: OpContext) -> Converted:
    o = c.opts(tflite.MulOptions)
    act = c.activation(o.FusedActivationFunction()) if o is not None else ir.Activation.NONE
    return ir.BinaryAttrs(activation=act), (0, 1)


def _reshape(c: OpContext) -> Converted:
    # The output tensor's shape is authoritative; a shape input, if present, must still be a constant.
    if len(c.inputs) > 1 and c.inputs[1] >= 0:
        c.const_input(1, "shape")
    return ir.ReshapeAttrs(), (0,)


def _squeeze(c: OpContext) -> Converted:
    return ir.ReshapeAttrs(), (0,)


def _softmax(c: OpContext) -> Converted:
    o = c.opts(tflite.SoftmaxOptions)
    beta = float(np.float32(o.Beta())) if o is not None else 1.0
    return ir.SoftmaxAttrs(beta=beta), (0,)


def _normalise_axis(c: OpContext, axis: int, rank: int, what: str) -> int:
    if not -rank <= axis < max(rank, 1):
        raise c.error(f"{what} {axis} out of range for rank {rank}")
    return axis + rank if axis < 0 else axis


def _mean(c: OpContext) -> Converted:
    rank = len(c.in_shape(0))
    raw = c.const_input(1, "axes").reshape(-1)
    axes = tuple(sorted({_normalise_axis(c, int(a), rank, "axis") for a in raw}))
    o = c.opts(tflite.ReducerOptions)
    keep = bool(o.KeepDims()) if o is not None else False
    return ir.MeanAttrs(axes=axes, keep_dims=keep), (0,)


def _pad(c: OpContext) -> Converted:
    rank = len(c.in_shape(0))
    p = c.const_input(1, "paddings")
    if p.shape != (rank, 2):
        raise c.error(f"paddings shape {p.shape} does not match input rank {rank} (expected ({rank}, 2))")
    if (p < 0).any():
        raise c.error("negative paddings")
    return ir.PadAttrs(paddings=tuple((int(b), int(e)) for b, e in p)), (0,)


def _concat(c: OpContext) -> Converted:
    o = c.opts(tflite.ConcatenationOptions)
    axis = o.Axis() if o is not None else 0
    act = c.activation(o.FusedActivationFunction()) if o is not None else ir.Activation.NONE
    axis = _normalise_axis(c, axis, len(c.out_shape(0)), "axis")
    return ir.ConcatAttrs(axis=axis, activation=act), tuple(range(len(c.inputs)))


def _transpose(c: OpContext) -> Converted:
    rank = len(c.in_shape(0))
    perm = tuple(int(v) for v in c.const_input(1, "perm").reshape(-1))
    if sorted(perm) != list(range(rank)):
        raise c.error(f"perm {perm} is not a permutation of the {rank} input dimensions")
    return ir.TransposeAttrs(perm=perm), (0,)


def _unary(c: OpContext) -> Converted:
    return ir.NoAttrs(), (0,)


def _leaky_relu(c: OpContext) -> Converted:
    o = c.opts(tflite.LeakyReluOptions)
    return ir.LeakyReluAttrs(alpha=float(np.float32(o.Alpha())) if o is not None else 0.0), (0,)


# The data inputs that may be absent (tensor index -1, or past the end of the list), by op: the bias of the ops
# with weights. Every other data input is required: an absent one is refused at import, naming op and input.
_WITH_WEIGHTS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
OPTIONAL_INPUTS: dict[str, tuple[int, ...]] = dict.fromkeys(_WITH_WEIGHTS, (2,))
INPUT_NAMES: dict[str, tuple[str, ...]] = dict.fromkeys(_WITH_WEIGHTS, ("input", "weights", "bias"))


# TFLite builtin op name -> (the IR kind it becomes, its converter). Several TFLite ops may map onto one kind.
CONVERTERS: dict[str, tuple[ir.OpKind, Callable[[OpContext], Converted]]] = {
    "CONV_2D": (ir.OpKind.CONV2D, _conv),
    "DEPTHWISE_CONV_2D": (ir.OpKind.DEPTHWISE_CONV2D, _depthwise),
    "FULLY_CONNECTED": (ir.OpKind.FULLY_CONNECTED, _fully_connected),
    "AVERAGE_POOL_2D": (ir.OpKind.AVG_POOL2D, _pool),
    "MAX_POOL_2D": (ir.OpKind.MAX_POOL2D, _pool),
    "ADD": (ir.OpKind.ADD, _add),
    "SUB": (ir.OpKind.SUB, _sub),
    "MUL": (ir.OpKind.MUL, _mul),
    "RESHAPE": (ir.OpKind.RESHAPE, _reshape),
    "SQUEEZE": (ir.OpKind.RESHAPE, _squeeze),
    "SOFTMAX": (ir.OpKind.SOFTMAX, _softmax),
    "MEAN": (ir.OpKind.MEAN, _mean),
    "PAD": (ir.OpKind.PAD, _pad),
    "CONCATENATION": (ir.OpKind.CONCAT, _concat),
    "TRANSPOSE": (ir.OpKind.TRANSPOSE, _transpose),
    "QUANTIZE": (ir.OpKind.QUANTIZE, _unary),
    "DEQUANTIZE": (ir.OpKind.DEQUANTIZE, _unary),
    "LOGISTIC": (ir.OpKind.SIGMOID, _unary),
    "TANH": (ir.OpKind.TANH, _unary),
    "RELU": (ir.OpKind.RELU, _unary),
    "RELU6": (ir.OpKind.RELU6, _unary),
    "HARD_SWISH": (ir.OpKind.HARD_SWISH, _unary),
    "LEAKY_RELU": (ir.OpKind.LEAKY_RELU, _leaky_relu),
    "RELU_N1_TO_1": (ir.OpKind.CLIP, lambda c: (ir.ClipAttrs(-1.0, 1.0), (0,))),
}
