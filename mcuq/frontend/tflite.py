"""Read a .tflite flatbuffer (subgraph 0) into an ``ir.Graph``.

The flatc-generated reader (the ``tflite`` package) does no verification: on a damaged file it raises
arbitrary exceptions or reads garbage. So the reader checks the identifier, checks every vector length against
the file size before iterating, checks every index it follows, and turns any failure into a ``ModelError``.

Tensor names are made unique (TFLite allows repeated and empty names): the first use of a name keeps it,
later ones get ``_<tflite index>``. ``graph.meta["tflite_index:<ir name>"]`` gives each tensor's TFLite index
(to match the oracle's intermediate tensors). Only tensors that ops or the graph interface use are kept.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Any

import numpy as np
import tflite

from .. import ir
from ..errors import ModelError
from ..quant.packing import unpack
from . import weight_bits
from .quant_spec import qparams_problem
from .tflite_ops import BUILTIN_NAMES, CONVERTERS, INPUT_NAMES, OPTIONAL_INPUTS, TENSOR_TYPES, OpContext

SUPPORTED_OPS = tuple(CONVERTERS)
_CUSTOM = 32  # BuiltinOperator.CUSTOM


def _stored_builtin_code(oc: Any) -> int:
    """OperatorCode.builtin_code as the file stores it (0 when absent). The tflite package's ``BuiltinCode()``
    returns deprecated_builtin_code instead whenever the stored value is below 127, so an op code that sets only
    builtin_code (AI Edge Quantizer writes the QUANTIZE and DEQUANTIZE it inserts so) would read as 0, ADD.
    TFLite's rule is the larger of the two fields."""
    off = oc._tab.Offset(10)  # builtin_code is field 3 of OperatorCode: vtable slot 4 + 2 * 3
    return int(struct.unpack_from("<i", oc._tab.Bytes, oc._tab.Pos + off)[0]) if off else 0


class _Invalid(Exception):
    """A structural problem found while parsing; becomes 'not a valid TFLite flatbuffer: ...'."""


def load(model: str | os.PathLike | bytes, source: str | None = None) -> ir.Graph:
    """Parse a .tflite model (path or bytes) into an IR graph. Raises ``ModelError`` on any problem."""
    if isinstance(model, (bytes, bytearray, memoryview)):
        buf = bytes(model)
        src = source if source is not None else "<memory>"
        name = "model"
    else:
        path = Path(model)
        src = source if source is not None else str(path)
        try:
            buf = path.read_bytes()
        except OSError as e:
            raise ModelError(src, f"cannot read model file: {e.strerror or e}") from None
        name = path.stem or "model"
    try:
        return _Reader(buf, src, name).graph()
    except ModelError:
        raise
    except Exception as e:  # the generated reader can raise anything on damaged input
        raise ModelError(src, f"not a valid TFLite flatbuffer: {type(e).__name__}: {e}") from None


class _Reader:
    def __init__(self, buf: bytes, source: str, name: str) -> None:
        self.buf = buf
        self.source = source
        self.name = name
        if len(buf) < 8:
            raise ModelError(source, f"not a valid TFLite flatbuffer: file is too short ({len(buf)} bytes)")
        if buf[4:8] != b"TFL3":
            hint = "; it looks like an ONNX model: name the file .onnx" if buf[:1] == b"\x08" else ""
            raise ModelError(source, f"not a valid TFLite flatbuffer: identifier {buf[4:8]!r}, expected b'TFL3'{hint}")
        (root,) = struct.unpack_from("<I", buf, 0)
        if root + 4 > len(buf):
            raise ModelError(source, "not a valid TFLite flatbuffer: root offset beyond the end of the file")
        self.model = tflite.Model.GetRootAs(buf, 0)

    # -- helpers -------------------------------------------------------------------------------------
    def fail(self, message: str) -> ModelError:
        return ModelError(self.source, message)

    def count(self, n: int, elem_size: int, what: str) -> int:
        """A vector length, checked against the file size (garbage lengths would make loops endless)."""
        if n < 0 or n * elem_size > len(self.buf):
            raise ModelError(self.source, f"not a valid TFLite flatbuffer: {what} length {n} exceeds the file")
        return n

    def ints(self, arr: Any, what: str) -> list[int]:
        if isinstance(arr, int):  # the generated *AsNumpy returns 0 for an absent vector
            return []
        self.count(arr.size, arr.itemsize, what)
        return [int(v) for v in arr]

    # -- model ---------------------------------------------------------------------------------------
    def graph(self) -> ir.Graph:
        m = self.model
        nsub = self.count(m.SubgraphsLength(), 4, "subgraphs")
        if nsub < 1:
            raise self.fail("model has no subgraph")
        self.sub = m.Subgraphs(0)
        self.opcodes = [self.opcode(i) for i in range(self.count(m.OperatorCodesLength(), 4, "operator codes"))]
        self.nbuffers = self.count(m.BuffersLength(), 4, "buffers")
        for b in range(self.nbuffers):  # touch every buffer table: catches files cut short at the end
            buffer = m.Buffers(b)
            self.count(buffer.DataLength(), 1, f"buffer {b}")
            if not buffer.DataIsNone():
                buffer.DataAsNumpy()
            buffer.Offset()
        self.ntensors = self.count(self.sub.TensorsLength(), 4, "tensors")
        self.tensor_cache: dict[int, ir.Tensor] = {}
        self.names = self.unique_names()

        nops = self.count(self.sub.OperatorsLength(), 4, "operators")
        ops = tuple(self.op(i) for i in range(nops))
        inputs = tuple(self.tensor(i).name for i in self.ints(self.sub.InputsAsNumpy(), "inputs"))
        outputs = tuple(self.tensor(i).name for i in self.ints(self.sub.OutputsAsNumpy(), "outputs"))
        referenced = {self.index_of[t] for t in inputs + outputs}
        referenced.update(self.index_of[t] for op in ops for t in op.inputs + op.outputs if t)
        used = sorted(referenced)
        tensors = weight_bits.apply(
            {self.names[i]: self.tensor(i) for i in used}, ops, self.weight_bits(set(used)), self.fail
        )
        meta = {f"tflite_index:{self.names[i]}": str(i) for i in used}
        desc = m.Description()
        if desc:
            meta["tflite_description"] = desc.decode("utf-8", "replace")
        g = ir.Graph(self.name, tensors, ops, inputs, outputs, source=self.source, meta=meta)
        ir.verify(g)
        return g

    def weight_bits(self, used: set[int]) -> dict[str, int]:
        """The ``mcuq_weight_bits`` metadata (``weight_bits``): {tensor name: bits}, or {} without it."""
        m = self.model
        found = None
        for k in range(self.count(m.MetadataLength(), 4, "metadata")):
            md = m.Metadata(k)
            if (md.Name() or b"") != weight_bits.NAME.encode():
                continue
            if found is not None:
                raise self.fail(f"{weight_bits.NAME}: the model has two metadata entries of that name")
            found = int(md.Buffer())
        if found is None:
            return {}
        if not 0 <= found < self.nbuffers:
            raise self.fail(f"{weight_bits.NAME}: buffer index {found} out of range ({self.nbuffers} buffers)")
        buffer = m.Buffers(found)
        offset, size = int(buffer.Offset()), int(buffer.Size())
        if offset > 1:
            raw = self.buf[offset : offset + size] if offset + size <= len(self.buf) else None
            if raw is None:
                raise self.fail(f"{weight_bits.NAME}: buffer {found} data beyond the end of the file")
        else:
            arr = buffer.DataAsNumpy()
            raw = b"" if isinstance(arr, int) else arr.tobytes()
        try:
            by_index = weight_bits.parse(raw, self.ntensors)
        except ValueError as e:
            raise self.fail(f"{weight_bits.NAME} metadata: {e}") from None
        for i in by_index:
            if i not in used:
                raise self.fail(f"{weight_bits.NAME}: tensor {i} '{self.names[i]}' is not used by any op")
        return {self.names[i]: bits for i, bits in by_index.items()}

    def opcode(self, i: int) -> str:
        oc = self.model.OperatorCodes(i)
        code = max(int(oc.DeprecatedBuiltinCode()), _stored_builtin_code(oc))
        if code == _CUSTOM:
            custom = (oc.CustomCode() or b"").decode("utf-8", "replace")
            return f"CUSTOM:{custom}"
        return BUILTIN_NAMES.get(code, f"<unknown builtin code {code}>")

    def unique_names(self) -> list[str]:
        taken: set[str] = set()
        names = []
        for i in range(self.ntensors):
            raw = self.sub.Tensors(i).Name()
            base = raw.decode("utf-8", "replace") if raw else ""
            name = base if base and base not in taken else f"{base or 'tensor'}_{i}"
            while name in taken:
                name += f"_{i}"
            taken.add(name)
            names.append(name)
        self.index_of = {n: i for i, n in enumerate(names)}
        return names

    # -- tensors -------------------------------------------------------------------------------------
    def check_tensor_index(self, i: int, where: str) -> None:
        if not 0 <= i < self.ntensors:
            raise self.fail(f"{where}: tensor index {i} out of range (the subgraph has {self.ntensors} tensors)")

    def tensor(self, i: int) -> ir.Tensor:
        if i in self.tensor_cache:
            return self.tensor_cache[i]
        self.check_tensor_index(i, "graph")
        t = self.sub.Tensors(i)
        name = self.names[i]
        where = f"tensor {i} '{name}'"
        if t.Type() not in TENSOR_TYPES:
            tname = {v: k for k, v in vars(tflite.TensorType).items() if isinstance(v, int)}.get(t.Type(), t.Type())
            raise self.fail(f"{where}: tensor type {tname} not supported")
        dtype = TENSOR_TYPES[t.Type()]
        shape = tuple(self.ints(t.ShapeAsNumpy(), f"{where} shape"))
        if any(d < 0 for d in shape):
            raise self.fail(f"{where}: negative dimension in shape {shape}")
        if t.Sparsity() is not None:
            raise self.fail(f"{where}: sparse tensors are not supported")
        tensor = ir.Tensor(name, shape, dtype, self.qparams(t, shape, dtype, where), self.data(t, shape, dtype, where))
        self.tensor_cache[i] = tensor
        return tensor

    def qparams(self, t: Any, shape: tuple[int, ...], dtype: ir.DType, where: str) -> ir.QParams | None:
        """The tensor's quantization, checked against TFLite's spec (``quant_spec``)."""
        q = t.Quantization()
        if q is None:
            return None
        scale = q.ScaleAsNumpy()
        if isinstance(scale, int) or scale.size == 0:
            return None
        self.count(scale.size, 4, f"{where} scales")
        zp = q.ZeroPointAsNumpy()
        zps = [0] * scale.size if isinstance(zp, int) or zp.size == 0 else self.ints(zp, f"{where} zero points")
        if len(zps) != scale.size:
            raise self.fail(f"{where}: {scale.size} scales but {len(zps)} zero points")
        axis = int(q.QuantizedDimension())
        if len(shape) <= 1:
            axis = 0  # rank-1 per-channel biases sometimes carry the weights' axis (TFLM accepts them)
        scales = tuple(float(s) for s in scale)
        problem = qparams_problem(dtype, shape, scales, zps, axis)
        if problem:
            raise self.fail(f"{where}: {problem}")
        return ir.QParams(scales, tuple(zps), axis)

    def data(self, t: Any, shape: tuple[int, ...], dtype: ir.DType, where: str) -> np.ndarray | None:
        b = int(t.Buffer())
        if b == 0:
            return None
        if not 0 <= b < self.nbuffers:
            raise self.fail(f"{where}: buffer index {b} out of range ({self.nbuffers} buffers)")
        buffer = self.model.Buffers(b)
        offset, size = int(buffer.Offset()), int(buffer.Size())
        if offset > 1:  # large models keep buffer data after the flatbuffer
            if offset + size > len(self.buf):
                raise self.fail(f"{where}: buffer {b} data beyond the end of the file")
            raw = self.buf[offset : offset + size]
        else:
            arr = buffer.DataAsNumpy()
            if isinstance(arr, int):
                return None
            raw = arr.tobytes()
        if not raw:
            return None
        n = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if len(raw) != dtype.nbytes(n):
            raise self.fail(f"{where}: buffer {b} holds {len(raw)} bytes, shape {shape} needs {dtype.nbytes(n)}")
        if dtype.packed:
            data = unpack(np.frombuffer(raw, dtype=np.uint8), dtype.bits, n).reshape(shape)
        else:
            data = np.frombuffer(raw, dtype=dtype.np.newbyteorder("<")).astype(dtype.np).reshape(shape)
        data.flags.writeable = False
        return data

    # -- operators -----------------------------------------------------------------------------------
    def op(self, i: int) -> ir.Op:
        o = self.sub.Operators(i)
        oc = int(o.OpcodeIndex())
        if not 0 <= oc < len(self.opcodes):
            raise self.fail(f"op {i}: opcode index {oc} out of range ({len(self.opcodes)} operator codes)")
        name = self.opcodes[oc]
        if name.startswith("CUSTOM:"):
            raise self.fail(f"op {i}: custom op '{name[7:]}' not supported; supported ops: {', '.join(SUPPORTED_OPS)}")
        if name not in CONVERTERS:
            raise self.fail(f"op {i} ({name}): not supported; supported ops: {', '.join(SUPPORTED_OPS)}")
        ins = self.ints(o.InputsAsNumpy(), f"op {i} inputs")
        outs = self.ints(o.OutputsAsNumpy(), f"op {i} outputs")
        for t in ins + outs:
            if t != -1:
                self.check_tensor_index(t, f"op {i} ({name})")
        if not outs or -1 in outs:
            raise self.fail(f"op {i} ({name}): missing output tensor")
        if not ins or ins[0] < 0:
            raise self.fail(f"op {i} ({name}): missing input tensor")
        ctx = OpContext(
            source=self.source,
            index=i,
            name=name,
            inputs=ins,
            outputs=outs,
            options_type=int(o.BuiltinOptionsType()),
            options=o.BuiltinOptions(),
            shape_of=lambda k: self.tensor(k).shape,
            const_of=lambda k: self.tensor(k).data,
        )
        kind, convert = CONVERTERS[name]
        attrs, data_pos = convert(ctx)
        for p in data_pos:
            if p not in OPTIONAL_INPUTS.get(name, ()) and (p >= len(ins) or ins[p] < 0):
                names = INPUT_NAMES.get(name, ())
                what = f"{names[p]} (input {p})" if p < len(names) else f"input {p}"
                raise self.fail(f"op {i} ({name}): the {what} is missing (tensor index -1); only a bias may be absent")
        inputs = tuple(self.names[ins[p]] if p < len(ins) and ins[p] >= 0 else "" for p in data_pos)
        outputs = tuple(self.names[k] for k in outs)
        return ir.Op(kind, outputs[0], inputs, outputs, attrs, index=i, origin=name)
