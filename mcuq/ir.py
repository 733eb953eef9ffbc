"""mcuq's intermediate representation: tensors, ops with typed attributes, graphs.

Layout conventions, fixed once for every frontend:
  * activations are NHWC (rank 1..4, TFLite shapes as stored),
  * CONV_2D weights are OHWI, DEPTHWISE_CONV_2D weights are 1HWC (C = in_ch * depth_multiplier),
  * FULLY_CONNECTED weights are [out, in].

Zero points are kept as the model stores them; kernels compute ``x - zp_in`` and ``acc + zp_out``.

Everything here is immutable: passes return new graphs built with ``dataclasses.replace``.
"""

from __future__ import annotations

import enum
from collections.abc import Collection
from dataclasses import dataclass, field

import numpy as np

from .dtypes import DType  # re-exported: the IR's types are looked up in mcuq.ir


@dataclass(frozen=True)
class QParams:
    """Affine quantization: real = scale * (q - zero_point).

    Per-tensor when ``len(scale) == 1``; otherwise per-channel along ``axis``.
    """

    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    axis: int = 0

    @property
    def per_channel(self) -> bool:
        return len(self.scale) > 1


@dataclass(frozen=True, eq=False)
class Tensor:
    """A named tensor. ``data`` is set (read-only numpy array) for constants only."""

    name: str
    shape: tuple[int, ...]
    dtype: DType
    qparams: QParams | None = None
    data: np.ndarray | None = None

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def nbytes(self) -> int:
        return self.dtype.nbytes(self.size)

    @property
    def scale(self) -> float:
        """Per-tensor scale (raises for per-channel tensors)."""
        assert self.qparams is not None and not self.qparams.per_channel, self.name
        return self.qparams.scale[0]

    @property
    def zero_point(self) -> int:
        assert self.qparams is not None and not self.qparams.per_channel, self.name
        return self.qparams.zero_point[0]


class OpKind(enum.Enum):
    """What an op computes, independent of the format it came from. Frontends map their op types onto these
    (``frontend/tflite_ops.CONVERTERS``: TFLite's SQUEEZE and RESHAPE both become RESHAPE, LOGISTIC becomes
    SIGMOID); ``Op.origin`` keeps the source format's name for messages."""

    CONV2D = "conv2d"
    DEPTHWISE_CONV2D = "depthwise_conv2d"
    FULLY_CONNECTED = "fully_connected"
    AVG_POOL2D = "avg_pool2d"
    MAX_POOL2D = "max_pool2d"
    ADD = "add"
    SUB = "sub"  # input1 - input2
    MUL = "mul"
    RESHAPE = "reshape"  # any change of shape that keeps the element order (TFLite RESHAPE, SQUEEZE)
    COPY = "copy"  # output = input (made by passes, e.g. a reshape between two caller-owned buffers)
    SOFTMAX = "softmax"
    MEAN = "mean"
    PAD = "pad"
    CONCAT = "concat"
    TRANSPOSE = "transpose"
    QUANTIZE = "quantize"  # (re)quantize to the output's quantization
    DEQUANTIZE = "dequantize"  # integer or float16 -> float32; float graphs only (passes/fold.py folds constant ones)
    SIGMOID = "sigmoid"
    TANH = "tanh"
    RELU = "relu"
    RELU6 = "relu6"
    HARD_SWISH = "hard_swish"
    LEAKY_RELU = "leaky_relu"  # x >= 0 ? x : alpha * x (TFLite LEAKY_RELU, ONNX LeakyRelu)
    HARD_SIGMOID = "hard_sigmoid"  # clamp(alpha * x + beta, 0, 1) (ONNX HardSigmoid; TFLite has no such op)
    CLIP = "clip"  # clamp(x, min, max) with any bounds (ONNX Clip; RELU / RELU6 where the bounds are theirs)


class Activation(enum.Enum):
    """Fused activation functions (TFLite's ActivationFunctionType)."""

    NONE = "NONE"
    RELU = "RELU"
    RELU_N1_TO_1 = "RELU_N1_TO_1"
    RELU6 = "RELU6"


class Padding(enum.Enum):
    SAME = "SAME"
    VALID = "VALID"


@dataclass(frozen=True)
class ConvWindowAttrs:
    """The sliding window CONV2D and DEPTHWISE_CONV2D share. A base of the two attrs classes, never an op's
    attrs itself; its fields come first, so both keep their positional order."""

    padding: Padding
    stride_h: int = 1
    stride_w: int = 1
    dilation_h: int = 1
    dilation_w: int = 1


@dataclass(frozen=True)
class Conv2DAttrs(ConvWindowAttrs):
    activation: Activation = Activation.NONE


@dataclass(frozen=True)
class DepthwiseConv2DAttrs(ConvWindowAttrs):
    depth_multiplier: int = 1
    activation: Activation = Activation.NONE


@dataclass(frozen=True)
class FullyConnectedAttrs:
    activation: Activation = Activation.NONE
    keep_num_dims: bool = False


@dataclass(frozen=True)
class Pool2DAttrs:
    padding: Padding
    stride_h: int
    stride_w: int
    filter_h: int
    filter_w: int
    activation: Activation = Activation.NONE


@dataclass(frozen=True)
class BinaryAttrs:
    """ADD, SUB and MUL. ``pot_scale_int16`` is TFLite's AddOptions/SubOptions flag: with int16 operands whose
    scales are all powers of two it selects TFLite's LSTM-only power-of-two path (mcuq refuses that); False, as
    TFLite's converter writes for 16x8 models, selects the general rescaling. Ignored for int8 and by MUL."""

    activation: Activation = Activation.NONE
    pot_scale_int16: bool = False


@dataclass(frozen=True)
class ReshapeAttrs:
    """RESHAPE: the output shape is the output tensor's shape."""


@dataclass(frozen=True)
class SoftmaxAttrs:
    beta: float = 1.0


@dataclass(frozen=True)
class MeanAttrs:
    axes: tuple[int, ...]  # normalised to non-negative, sorted, unique
    keep_dims: bool = False


@dataclass(frozen=True)
class PadAttrs:
    paddings: tuple[tuple[int, int], ...]  # (before, after) per input dimension


@dataclass(frozen=True)
class ConcatAttrs:
    axis: int  # normalised to non-negative
    activation: Activation = Activation.NONE


@dataclass(frozen=True)
class TransposeAttrs:
    perm: tuple[int, ...]


@dataclass(frozen=True)
class LeakyReluAttrs:
    alpha: float


@dataclass(frozen=True)
class HardSigmoidAttrs:
    alpha: float = 0.2
    beta: float = 0.5


@dataclass(frozen=True)
class ClipAttrs:
    """CLIP's bounds; -inf / inf where the source gave none."""

    min: float
    max: float


@dataclass(frozen=True)
class NoAttrs:
    """Ops without attributes (QUANTIZE, DEQUANTIZE, SIGMOID, TANH, RELU, RELU6, HARD_SWISH, COPY)."""


Attrs = (
    Conv2DAttrs
    | DepthwiseConv2DAttrs
    | FullyConnectedAttrs
    | Pool2DAttrs
    | BinaryAttrs
    | ReshapeAttrs
    | SoftmaxAttrs
    | MeanAttrs
    | PadAttrs
    | ConcatAttrs
    | TransposeAttrs
    | LeakyReluAttrs
    | HardSigmoidAttrs
    | ClipAttrs
    | NoAttrs
)


@dataclass(frozen=True)
class Op:
    """One operator.

    ``inputs`` and ``outputs`` are tensor names in the graph; an absent optional input (e.g. no bias) is ``""``.
    Only the *data* inputs that kernels read are listed: inputs that TFLite uses to carry attributes
    (RESHAPE's shape, PAD's paddings, MEAN's axes, TRANSPOSE's perm) are folded into ``attrs`` by the frontend.
    ``index`` is the op's position in the source model, used in error messages.
    """

    kind: OpKind
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: Attrs
    index: int = 0
    origin: str = ""  # the op type in the source format (e.g. TFLite "SQUEEZE"), for messages

    @property
    def type_name(self) -> str:
        """The name users know the op by: the source format's op type, else the IR kind in upper case."""
        return self.origin or self.kind.name

    @property
    def where(self) -> str:
        return f"op {self.index} ({self.type_name} '{self.name}')"


@dataclass(frozen=True, eq=False)
class Graph:
    name: str
    tensors: dict[str, Tensor]
    ops: tuple[Op, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    source: str = ""  # file the graph came from (for error messages)
    meta: dict[str, str] = field(default_factory=dict)

    def tensor(self, name: str) -> Tensor:
        return self.tensors[name]

    def producers(self) -> dict[str, Op]:
        return {t: op for op in self.ops for t in op.outputs}

    def consumers(self) -> dict[str, list[Op]]:
        out: dict[str, list[Op]] = {}
        for op in self.ops:
            for t in op.inputs:
                if t:
                    out.setdefault(t, []).append(op)
        return out


def fresh_name(base: str, *taken: Collection[str]) -> str:
    """``base``, or ``base_2``, ``base_3``, ... : the first that none of ``taken`` (graphs' tensor dicts, name sets)
    holds. Passes and the quantizer name the tensors they add with it."""
    name, k = base, 1
    while any(name in t for t in taken):
        k += 1
        name = f"{base}_{k}"
    return name


INDEX_MAX = 2**31 - 1  # kernels index and size tensors with int32_t


def verify(g: Graph) -> None:
    """Structural checks: every referenced tensor exists, ops are topologically ordered, one producer each, and
    every tensor is small enough for int32 indexing (non-negative dimensions, at most 2^31-1 bytes)."""
    from .errors import ModelError

    for name, t in g.tensors.items():
        if any(d < 0 for d in t.shape):
            raise ModelError(g.source, f"tensor '{name}' has a negative dimension: shape {list(t.shape)}")
        if t.nbytes > INDEX_MAX:
            raise ModelError(
                g.source,
                f"tensor '{name}' of shape {list(t.shape)} has {t.nbytes:,} bytes; mcuq's kernels index with int32 "
                f"(at most {INDEX_MAX:,})",
            )
    produced: set[str] = set(g.inputs)
    for name in g.inputs + g.outputs:
        if name not in g.tensors:
            raise ModelError(g.source, f"graph input/output '{name}' is not a tensor")
    for op in g.ops:
        for t in op.inputs:
            if not t:
                continue
            if t not in g.tensors:
                raise ModelError(g.source, f"{op.where}: input tensor '{t}' does not exist")
            if not g.tensors[t].is_const and t not in produced:
                raise ModelError(g.source, f"{op.where}: input '{t}' is used before it is produced")
        for t in op.outputs:
            if t not in g.tensors:
                raise ModelError(g.source, f"{op.where}: output tensor '{t}' does not exist")
            if t in produced:
                raise ModelError(g.source, f"{op.where}: tensor '{t}' is produced twice")
            produced.add(t)
    for name in g.outputs:
        if name not in produced:
            raise ModelError(g.source, f"graph output '{name}' is never produced")
