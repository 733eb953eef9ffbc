"""Serialise an ``ir.Graph`` to .tflite bytes: the inverse of ``tflite.load``.

Used by tests (one-op models for the oracle) and later by post-training quantization export, so it writes any
dtype the IR has (float32 included). What it synthesises:
  * the attribute-carrying int32 constant inputs TFLite expects: RESHAPE's shape (from the output tensor),
    PAD's paddings, MEAN's axes, TRANSPOSE's perm; SQUEEZE's squeeze_dims option (from the shapes),
  * builtin options from the typed attrs, and op versions high enough for int8 (TFLite's op_version rules),
  * buffer 0 empty (TFLite's convention), one buffer per constant tensor, data 16-byte aligned;
  * packed sub-8-bit weights (INT4/INT2/INT1) as INT8 tensors of the same values plus the ``mcuq_weight_bits``
    metadata (``weight_bits.py``), so that tflite-runtime 2.14 runs the model; with ``native_int4`` INT4 weights
    as TFLite INT4 tensors (packed, op versions 7/7/10 for CONV_2D/DEPTHWISE_CONV_2D/FULLY_CONNECTED).

The output is deterministic: tensors in the graph's order, then synthesised ones in op order.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import flatbuffers
import numpy as np
import tflite

from .. import ir
from ..errors import ModelError
from ..quant.packing import pack
from . import weight_bits
from .tflite_ops import ACTIVATIONS, BUILTIN_CODES, CONVERTERS, PADDINGS, TENSOR_TYPES

_ACT = {v: k for k, v in ACTIVATIONS.items()}
_PAD = {v: k for k, v in PADDINGS.items()}
_TYPE = {v: k for k, v in TENSOR_TYPES.items()}
# IR kind -> the TFLite builtin written for it (the first converter of that kind); an op whose ``origin`` is another
# TFLite builtin of the same kind (SQUEEZE for RESHAPE) is written as that builtin.
_BUILTIN_OF: dict[ir.OpKind, str] = {}
for _name, (_kind, _) in CONVERTERS.items():
    _BUILTIN_OF.setdefault(_kind, _name)
_BUILTIN_OF[ir.OpKind.COPY] = "RESHAPE"  # a COPY (made by passes) computes what a RESHAPE does


# CLIP bounds that a TFLite activation op has (written as that op); other CLIPs and HARD_SIGMOID have no TFLite op.
_CLIP_BUILTINS = {(0.0, float("inf")): "RELU", (0.0, 6.0): "RELU6", (-1.0, 1.0): "RELU_N1_TO_1"}


def builtin_name(op: ir.Op, source: str = "") -> str:
    if op.kind is ir.OpKind.CLIP:
        with np.errstate(over="ignore"):
            bounds = (float(np.float32(op.attrs.min)), float(np.float32(op.attrs.max)))
        if bounds not in _CLIP_BUILTINS:
            raise ModelError(source, f"{op.where}: CLIP({op.attrs.min:g}, {op.attrs.max:g}) has no TFLite op: "
                             "compile the model directly")  # fmt: skip
        return _CLIP_BUILTINS[bounds]
    if op.kind is ir.OpKind.HARD_SIGMOID:
        raise ModelError(source, f"{op.where}: HARD_SIGMOID has no TFLite op: compile the model directly")
    if op.origin in CONVERTERS and CONVERTERS[op.origin][0] is op.kind:
        return op.origin
    if op.kind not in _BUILTIN_OF:
        raise ValueError(f"{op.where}: no TFLite builtin for {op.kind.name}")
    return _BUILTIN_OF[op.kind]


# Op versions for int8 operands, from TFLite 2.14's op_version rules (float ops are version 1).
_INT8_VERSION: dict[str, int] = {
    **dict.fromkeys(CONVERTERS, 2),
    **{"CONV_2D": 3, "DEPTHWISE_CONV_2D": 3, "FULLY_CONNECTED": 4},
    **dict.fromkeys(("RESHAPE", "SQUEEZE", "HARD_SWISH", "LEAKY_RELU", "RELU_N1_TO_1"), 1),
}


# op_version.cc for int16 operands (16x8) of the elementwise ops; ADD and SUB as with pot_scale_int16 false.
_INT16_ELEMENTWISE_VERSION = {"ADD": 3, "SUB": 5, "MUL": 4, "LOGISTIC": 3, "TANH": 3, "SOFTMAX": 3}

# op_version.cc for int16 operands of the pooling and data-movement ops (PAD: 4 beyond 4-D; TRANSPOSE stays 5, the
# highest version tflite-runtime 2.14's reference resolver registers, also for 6-D).
_INT16_POOL_SHAPE_VERSION = {
    **dict.fromkeys(("AVERAGE_POOL_2D", "MAX_POOL_2D", "MEAN", "PAD", "CONCATENATION"), 3),
    **{"TRANSPOSE": 5, "RESHAPE": 1, "SQUEEZE": 1},
}


# op_version.cc for the 16x8 conv family (int16 activations, int8 filter).
_INT16_CONV_VERSION = {"CONV_2D": 4, "DEPTHWISE_CONV_2D": 5, "FULLY_CONNECTED": 7}


# op_version.cc: int8 activations with an INT4 filter.
_INT4_VERSION = {ir.OpKind.CONV2D: 7, ir.OpKind.DEPTHWISE_CONV2D: 7, ir.OpKind.FULLY_CONNECTED: 10}


def _dequantize_version(t: ir.Tensor) -> int:
    """DEQUANTIZE's version by input type, from op_version.cc: int4 6; int16 or float16 3; int8 2, per-channel
    int8 4 (op_version.cc now writes 5, which tflite-runtime 2.14's reference resolver does not register; it runs
    per-channel int8 at version 4 with the same bits); uint8 1."""
    if t.dtype is ir.DType.INT4:
        return 6
    if t.dtype in (ir.DType.INT16, ir.DType.FLOAT16):
        return 3
    if t.dtype is ir.DType.INT8:
        return 4 if t.qparams is not None and t.qparams.per_channel else 2
    return 1


def _broadcasts_beyond_4d(g: ir.Graph, op: ir.Op) -> bool:
    """op_version.cc's SUB rule: inputs of different shapes, one of rank > 4, make version 3."""
    s1, s2 = (_shape(g, n) for n in op.inputs[:2])
    return s1 != s2 and max(len(s1), len(s2)) > 4


def _mod(name: str) -> Any:
    """A generated schema module (its builder functions are module-level: ``Start``, ``AddX``, ``End``)."""
    return importlib.import_module(f"tflite.{name}")


@dataclass
class _OpSpec:
    code: int
    version: int
    inputs: list[int]
    outputs: list[int]
    options_type: int = 0
    options: Callable[[flatbuffers.Builder], int] | None = None


@dataclass
class _Writer:
    graph: ir.Graph
    native_int4: bool = False
    tensors: list[ir.Tensor] = field(default_factory=list)
    index: dict[str, int] = field(default_factory=dict)

    def add_tensor(self, t: ir.Tensor) -> int:
        self.index[t.name] = len(self.tensors)
        self.tensors.append(t)
        return self.index[t.name]

    def add_const(self, op: ir.Op, suffix: str, data: np.ndarray) -> int:
        name = ir.fresh_name(f"{op.name}/{suffix}", self.index, self.graph.tensors)
        arr = np.ascontiguousarray(data, dtype=np.int32)
        return self.add_tensor(ir.Tensor(name, arr.shape, ir.DType.INT32, None, arr))

    def ref(self, name: str) -> int:
        return self.index[name] if name else -1

    # -- top level -----------------------------------------------------------------------------------
    def build(self) -> bytes:
        g = self.graph
        container: dict[int, int] = {}  # tensor index -> bits of a packed tensor written as int8 (the metadata)
        for t in g.tensors.values():
            if t.dtype.packed and t.data is not None and not (self.native_int4 and t.dtype is ir.DType.INT4):
                container[len(self.tensors)] = t.dtype.bits
                t = ir.Tensor(t.name, t.shape, ir.DType.INT8, t.qparams, t.data)
            self.add_tensor(t)
        specs = [self.op_spec(op) for op in g.ops]
        codes: list[tuple[int, int]] = []  # (builtin code, version), one per kind, first-use order
        for s in specs:
            if s.code not in [c for c, _ in codes]:
                codes.append((s.code, max(x.version for x in specs if x.code == s.code)))
        code_index = {c: i for i, (c, _) in enumerate(codes)}

        b = flatbuffers.Builder(1024)
        # Buffers: 0 is empty, then one per constant tensor.
        buffer_of: list[int] = []
        blobs: list[bytes] = []
        for t in self.tensors:
            if t.data is None:
                buffer_of.append(0)
            else:
                if t.dtype.packed:  # TFLite's dense packing: element 2i in the low nibble of byte i (int4)
                    blobs.append(pack(np.asarray(t.data), t.dtype.bits).tobytes())
                else:
                    blobs.append(np.ascontiguousarray(t.data, dtype=t.dtype.np.newbyteorder("<")).tobytes())
                buffer_of.append(len(blobs))
        if container:
            blobs.append(weight_bits.encode(container))
        buffer_offsets = [self.buffer(b, None)] + [self.buffer(b, d) for d in blobs]
        tensor_offsets = [self.tensor(b, t, buffer_of[i]) for i, t in enumerate(self.tensors)]
        op_offsets = [self.operator(b, s, code_index[s.code]) for s in specs]

        sg = _mod("SubGraph")
        tvec = self.vector(b, sg.StartTensorsVector, tensor_offsets)
        ivec = b.CreateNumpyVector(np.array([self.index[n] for n in g.inputs], dtype=np.int32))
        ovec = b.CreateNumpyVector(np.array([self.index[n] for n in g.outputs], dtype=np.int32))
        opvec = self.vector(b, sg.StartOperatorsVector, op_offsets)
        sname = b.CreateString(g.name or "main")
        sg.Start(b)
        sg.AddTensors(b, tvec)
        sg.AddInputs(b, ivec)
        sg.AddOutputs(b, ovec)
        sg.AddOperators(b, opvec)
        sg.AddName(b, sname)
        subgraph = sg.End(b)

        oc = _mod("OperatorCode")
        code_offsets = []
        for c, v in codes:
            oc.Start(b)
            oc.AddDeprecatedBuiltinCode(b, min(c, 127))
            oc.AddBuiltinCode(b, c)
            oc.AddVersion(b, v)
            code_offsets.append(oc.End(b))

        m = _mod("Model")
        codes_vec = self.vector(b, m.StartOperatorCodesVector, code_offsets)
        subs_vec = self.vector(b, m.StartSubgraphsVector, [subgraph])
        bufs_vec = self.vector(b, m.StartBuffersVector, buffer_offsets)
        desc = b.CreateString("mcuq")
        meta_vec = None
        if container:
            md = _mod("Metadata")
            md_name = b.CreateString(weight_bits.NAME)
            md.Start(b)
            md.AddName(b, md_name)
            md.AddBuffer(b, len(blobs))  # the last buffer
            meta_vec = self.vector(b, m.StartMetadataVector, [md.End(b)])
        m.Start(b)
        m.AddVersion(b, 3)
        m.AddOperatorCodes(b, codes_vec)
        m.AddSubgraphs(b, subs_vec)
        m.AddDescription(b, desc)
        m.AddBuffers(b, bufs_vec)
        if meta_vec is not None:
            m.AddMetadata(b, meta_vec)
        b.Finish(m.End(b), b"TFL3")
        return bytes(b.Output())

    # -- flatbuffer pieces ---------------------------------------------------------------------------
    @staticmethod
    def vector(b: flatbuffers.Builder, start: Callable[[Any, int], Any], offsets: list[int]) -> int:
        start(b, len(offsets))
        for off in reversed(offsets):
            b.PrependUOffsetTRelative(off)
        return b.EndVector()

    @staticmethod
    def buffer(b: flatbuffers.Builder, data: bytes | None) -> int:
        m = _mod("Buffer")
        vec = None
        if data is not None:
            b.StartVector(1, len(data), 16)
            b.head = b.Head() - len(data)
            b.Bytes[b.head : b.head + len(data)] = data
            b.vectorNumElems = len(data)
            vec = b.EndVector()
        m.Start(b)
        if vec is not None:
            m.AddData(b, vec)
        return m.End(b)

    @staticmethod
    def tensor(b: flatbuffers.Builder, t: ir.Tensor, buffer: int) -> int:
        m = _mod("Tensor")
        name = b.CreateString(t.name)
        shape = b.CreateNumpyVector(np.array(t.shape, dtype=np.int32))
        quant = None
        if t.qparams is not None:
            q = _mod("QuantizationParameters")
            scale = b.CreateNumpyVector(np.array(t.qparams.scale, dtype=np.float32))
            zp = b.CreateNumpyVector(np.array(t.qparams.zero_point, dtype=np.int64))
            q.Start(b)
            q.AddScale(b, scale)
            q.AddZeroPoint(b, zp)
            # tflite-runtime rejects an axis beyond a rank-1 tensor (some converters write the weights' axis)
            q.AddQuantizedDimension(b, t.qparams.axis if len(t.shape) > 1 else 0)
            quant = q.End(b)
        m.Start(b)
        m.AddShape(b, shape)
        if t.dtype not in _TYPE:
            raise ValueError(f"tensor '{t.name}': TFLite has no {t.dtype.value} tensor type")
        m.AddType(b, _TYPE[t.dtype])
        m.AddBuffer(b, buffer)
        m.AddName(b, name)
        if quant is not None:
            m.AddQuantization(b, quant)
        return m.End(b)

    @staticmethod
    def operator(b: flatbuffers.Builder, s: _OpSpec, opcode_index: int) -> int:
        m = _mod("Operator")
        ins = b.CreateNumpyVector(np.array(s.inputs, dtype=np.int32))
        outs = b.CreateNumpyVector(np.array(s.outputs, dtype=np.int32))
        opts = s.options(b) if s.options is not None else None
        m.Start(b)
        m.AddOpcodeIndex(b, opcode_index)
        m.AddInputs(b, ins)
        m.AddOutputs(b, outs)
        if opts is not None:
            m.AddBuiltinOptionsType(b, s.options_type)
            m.AddBuiltinOptions(b, opts)
        return m.End(b)

    # -- ops -----------------------------------------------------------------------------------------
    def op_spec(self, op: ir.Op) -> _OpSpec:
        first = self.graph.tensors[op.inputs[0]] if op.inputs and op.inputs[0] else None
        builtin = builtin_name(op, self.graph.source)
        version = 1
        if first is not None and first.dtype not in (ir.DType.FLOAT32, ir.DType.UINT8):
            version = _INT8_VERSION[builtin]
        if op.kind is ir.OpKind.QUANTIZE and first is not None and first.dtype is ir.DType.FLOAT32:
            version = 1
        if op.kind is ir.OpKind.DEQUANTIZE and first is not None:
            version = _dequantize_version(first)
        if op.kind is ir.OpKind.FULLY_CONNECTED and isinstance(op.attrs, ir.FullyConnectedAttrs):
            version = max(version, 5) if op.attrs.keep_num_dims else version
        if op.kind in _INT4_VERSION and len(op.inputs) > 1 and op.inputs[1]:
            w = self.tensors[self.index[op.inputs[1]]]
            version = max(version, _INT4_VERSION[op.kind]) if w.dtype is ir.DType.INT4 else version
        if first is not None and first.dtype is ir.DType.INT16 and builtin in _INT16_ELEMENTWISE_VERSION:
            version = _INT16_ELEMENTWISE_VERSION[builtin]
        if first is not None and first.dtype is ir.DType.INT16 and builtin in _INT16_POOL_SHAPE_VERSION:
            version = _INT16_POOL_SHAPE_VERSION[builtin]
            version = 4 if builtin == "PAD" and len(first.shape) > 4 else version
        if first is not None and first.dtype is ir.DType.INT16 and builtin in _INT16_CONV_VERSION:
            version = max(version, _INT16_CONV_VERSION[builtin])
        if builtin == "SUB" and _broadcasts_beyond_4d(self.graph, op):
            version = max(version, 3)
        spec = _OpSpec(
            code=BUILTIN_CODES[builtin],
            version=version,
            inputs=[self.ref(n) for n in op.inputs],
            outputs=[self.ref(n) for n in op.outputs],
        )
        while spec.inputs and spec.inputs[-1] == -1:  # TFLite's conv kernels want no bias slot, not -1
            spec.inputs.pop()
        if builtin in _ATTR_INPUTS:
            suffix, data = _ATTR_INPUTS[builtin]
            spec.inputs.append(self.add_const(op, suffix, np.array(data(op.attrs, self.graph, op), dtype=np.int32)))
        table, fields = _OPTIONS[builtin]
        if table is not None:
            spec.options_type = getattr(tflite.BuiltinOptions, table)
            spec.options = _table(table, fields(op.attrs, self.graph, op))
        return spec


def _table(name: str, fields: list[tuple[str, Any]]) -> Callable[[flatbuffers.Builder], int]:
    """An options table of scalar fields and int32 vectors (tuples): ``fields`` are (AddX suffix, value)."""

    def build(b: flatbuffers.Builder) -> int:
        m = _mod(name)
        vecs = [(k, b.CreateNumpyVector(np.array(v, dtype=np.int32)) if isinstance(v, tuple) else v) for k, v in fields]
        m.Start(b)
        for k, v in vecs:
            getattr(m, f"Add{k}")(b, v)
        return m.End(b)

    return build


def _squeeze_dims(in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The size-1 input dimensions to drop so that ``in_shape`` becomes ``out_shape`` (first match kept)."""
    dims, j = [], 0
    for i, d in enumerate(in_shape):
        if j < len(out_shape) and d == out_shape[j]:
            j += 1
        elif d == 1:
            dims.append(i)
        else:
            raise ValueError(f"SQUEEZE cannot turn {in_shape} into {out_shape}")
    if j != len(out_shape):
        raise ValueError(f"SQUEEZE cannot turn {in_shape} into {out_shape}")
    return tuple(dims)


def _window(a: Any) -> list[tuple[str, Any]]:
    return [("Padding", _PAD[a.padding]), ("StrideW", a.stride_w), ("StrideH", a.stride_h)]


def _act(a: Any) -> list[tuple[str, Any]]:
    return [("FusedActivationFunction", _ACT[a.activation])]


def _dilation(a: Any) -> list[tuple[str, Any]]:
    return [("DilationWFactor", a.dilation_w), ("DilationHFactor", a.dilation_h)]


def _shape(g: ir.Graph, name: str) -> tuple[int, ...]:
    return tuple(g.tensors[name].shape)


# kind -> (builtin options table or None, its fields from (attrs, graph, op)).
_Fields = Callable[[Any, ir.Graph, ir.Op], list[tuple[str, Any]]]
_OPTIONS: dict[str, tuple[str | None, _Fields]] = {
    "CONV_2D": ("Conv2DOptions", lambda a, g, op: _window(a) + _act(a) + _dilation(a)),
    "DEPTHWISE_CONV_2D": (
        "DepthwiseConv2DOptions",
        lambda a, g, op: _window(a) + [("DepthMultiplier", a.depth_multiplier)] + _act(a) + _dilation(a),
    ),
    "FULLY_CONNECTED": ("FullyConnectedOptions", lambda a, g, op: _act(a) + [("KeepNumDims", a.keep_num_dims)]),
    "AVERAGE_POOL_2D": (
        "Pool2DOptions",
        lambda a, g, op: _window(a) + [("FilterWidth", a.filter_w), ("FilterHeight", a.filter_h)] + _act(a),
    ),
    "ADD": ("AddOptions", lambda a, g, op: _act(a) + [("PotScaleInt16", a.pot_scale_int16)]),
    "SUB": ("SubOptions", lambda a, g, op: _act(a) + [("PotScaleInt16", a.pot_scale_int16)]),
    "MUL": ("MulOptions", lambda a, g, op: _act(a)),
    "RESHAPE": ("ReshapeOptions", lambda a, g, op: [("NewShape", _shape(g, op.outputs[0]))]),
    "SQUEEZE": (
        "SqueezeOptions",
        lambda a, g, op: [("SqueezeDims", _squeeze_dims(_shape(g, op.inputs[0]), _shape(g, op.outputs[0])))],
    ),
    "SOFTMAX": ("SoftmaxOptions", lambda a, g, op: [("Beta", a.beta)]),
    "MEAN": ("ReducerOptions", lambda a, g, op: [("KeepDims", a.keep_dims)]),
    "PAD": ("PadOptions", lambda a, g, op: []),
    "CONCATENATION": ("ConcatenationOptions", lambda a, g, op: [("Axis", a.axis)] + _act(a)),
    "TRANSPOSE": ("TransposeOptions", lambda a, g, op: []),
    "QUANTIZE": ("QuantizeOptions", lambda a, g, op: []),
    "DEQUANTIZE": (None, lambda a, g, op: []),
    "LOGISTIC": (None, lambda a, g, op: []),
    "TANH": (None, lambda a, g, op: []),
    "RELU": (None, lambda a, g, op: []),
    "RELU6": (None, lambda a, g, op: []),
    "HARD_SWISH": ("HardSwishOptions", lambda a, g, op: []),
    "LEAKY_RELU": ("LeakyReluOptions", lambda a, g, op: [("Alpha", a.alpha)]),
    "RELU_N1_TO_1": (None, lambda a, g, op: []),
}
_OPTIONS["MAX_POOL_2D"] = _OPTIONS["AVERAGE_POOL_2D"]

# kind -> (name suffix, data) of the int32 constant input that carries an attribute in TFLite.
_ATTR_INPUTS: dict[str, tuple[str, Callable[[Any, ir.Graph, ir.Op], Any]]] = {
    "RESHAPE": ("shape", lambda a, g, op: _shape(g, op.outputs[0])),
    "MEAN": ("axes", lambda a, g, op: a.axes),
    "PAD": ("paddings", lambda a, g, op: np.array(a.paddings, dtype=np.int32).reshape(-1, 2)),
    "TRANSPOSE": ("perm", lambda a, g, op: a.perm),
}


def write(graph: ir.Graph, native_int4: bool = False) -> bytes:
    """Serialise ``graph`` to .tflite bytes (deterministic for a given graph).

    Tensor ``i`` of the written model is the ``i``-th tensor of ``graph.tensors`` (so oracle tensor indices
    map back to IR names); synthesised attribute inputs come after them. Packed weights (INT4, INT2, INT1) are
    written as INT8 tensors plus the ``mcuq_weight_bits`` metadata (the model tflite-runtime 2.14 runs); with
    ``native_int4`` INT4 ones are TFLite INT4 tensors instead (for runtimes that take INT4 filters; INT2 and
    INT1 stay int8 containers).
    """
    return _Writer(graph, native_int4=native_int4).build()
