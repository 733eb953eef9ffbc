"""Reading an ONNX ModelProto safely: tensors with their sizes checked before anything is allocated, external data
only from inside the model's folder, static input shapes, the nodes in an order where each input exists (cycles
and missing initializers named), ONNX's shape inference with its errors put on the node they concern."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from .. import ir
from ..errors import ModelError

MAX_EXTERNAL_BYTES = 1 << 31  # all external data together
# ONNX TensorProto.DataType -> numpy, for initializers and constants.
_DTYPES = {1: np.float32, 2: np.uint8, 3: np.int8, 5: np.int16, 6: np.int32, 7: np.int64, 9: np.bool_,
           10: np.float16, 11: np.float64}  # fmt: skip


class Reader:
    def __init__(self, m: Any, source: str, name: str, folder: Path | None, opset: int) -> None:
        self.m, self.source, self.name, self.folder, self.opset = m, source, name, folder, opset
        self.external_bytes = 0

    def fail(self, message: str) -> ModelError:
        return ModelError(self.source, message)

    # -- constants ---------------------------------------------------------------------------------------------

    def array(self, t: Any, where: str) -> np.ndarray:
        """A TensorProto as a read-only numpy array, sizes checked before anything is allocated."""
        from onnx import numpy_helper

        if t.data_type not in _DTYPES:
            raise self.fail(f"{where}: tensor data type {t.data_type} not supported")
        dt = np.dtype(_DTYPES[t.data_type])
        dims = [int(d) for d in t.dims]
        if any(d < 0 for d in dims):
            raise self.fail(f"{where}: negative dimension in {dims}")
        n = math.prod(dims)
        if n * dt.itemsize > ir.INDEX_MAX:
            raise self.fail(f"{where}: shape {dims} holds {n * dt.itemsize:,} bytes, more than mcuq handles")
        if t.data_location == 1:  # EXTERNAL
            raw = self.external(t, where, n * dt.itemsize)
            a = np.frombuffer(raw, dtype=dt.newbyteorder("<")).astype(dt).reshape(dims)
        elif t.raw_data:
            if len(t.raw_data) != n * dt.itemsize:
                raise self.fail(
                    f"{where}: raw data of {len(t.raw_data):,} bytes, shape {dims} needs {n * dt.itemsize:,}"
                )
            a = np.frombuffer(t.raw_data, dtype=dt.newbyteorder("<")).astype(dt).reshape(dims)
        else:
            fields = {1: t.float_data, 7: t.int64_data, 11: t.double_data}
            got = len(fields.get(t.data_type, t.int32_data))
            if got != n:
                raise self.fail(f"{where}: holds {got} values, shape {dims} needs {n}")
            try:
                a = numpy_helper.to_array(t)
            except Exception as e:
                raise self.fail(f"{where}: unreadable tensor data: {e}") from None
        if a.dtype in (np.float16, np.float64):
            a = a.astype(np.float32)
        a = np.array(a)
        a.flags.writeable = False
        return a

    def external(self, t: Any, where: str, nbytes: int) -> bytes:
        """External tensor data, only from a regular file inside the model's folder."""
        info = {e.key: e.value for e in t.external_data}
        loc = info.get("location", "")
        if self.folder is None:
            raise self.fail(f"{where}: external data '{loc}' needs the model as a file, not bytes")
        parts = Path(loc).parts
        if not loc or os.path.isabs(loc) or Path(loc).drive or ".." in parts or "\\" in loc or "\0" in loc:
            raise self.fail(f"{where}: external data location '{loc}' must be a relative path inside the model's "
                            "folder")  # fmt: skip
        base = self.folder.resolve()
        target = (self.folder / loc).resolve()
        if not target.is_relative_to(base):
            raise self.fail(f"{where}: external data '{loc}' points outside the model's folder")
        if not target.is_file():
            raise self.fail(f"{where}: external data file '{loc}' does not exist or is not a regular file")
        try:
            offset = int(info.get("offset", 0))
            length = int(info.get("length", nbytes))
        except ValueError:
            raise self.fail(f"{where}: external data offset/length are not integers") from None
        size = target.stat().st_size
        if offset < 0 or length != nbytes or offset + length > size:
            raise self.fail(f"{where}: external data [{offset}, {offset + length}) of '{loc}' ({size:,} bytes): "
                            f"the tensor needs {nbytes:,} bytes inside the file")  # fmt: skip
        self.external_bytes += length
        if self.external_bytes > MAX_EXTERNAL_BYTES:
            raise self.fail(f"external data larger than {MAX_EXTERNAL_BYTES:,} bytes in all")
        with open(target, "rb") as f:
            f.seek(offset)
            return f.read(length)

    # -- graph ----------------------------------------------------------------------------------------------

    def input_shape(self, vi: Any) -> tuple[int, ...]:
        where = f"input '{vi.name}'"
        tt = vi.type.tensor_type if vi.type.HasField("tensor_type") else None
        if tt is None:
            raise self.fail(f"{where} is not a tensor")
        if tt.elem_type != 1:
            raise self.fail(f"{where} has element type {tt.elem_type}; mcuq takes float32 inputs (type 1)")
        if not tt.HasField("shape"):
            raise self.fail(f"{where} has no shape; export it with static sizes")
        shape = []
        for axis, d in enumerate(tt.shape.dim):
            if d.HasField("dim_value") and d.dim_value > 0:
                shape.append(int(d.dim_value))
            elif axis == 0 and not d.HasField("dim_value"):
                shape.append(1)  # a symbolic batch: one sample at a time
            else:
                what = d.dim_param if d.HasField("dim_param") else (d.dim_value if d.HasField("dim_value") else "?")
                raise self.fail(f"{where}: dimension {axis} is '{what}'; mcuq needs a static size there (only the "
                                "batch, dimension 0, may be symbolic)")  # fmt: skip
        if math.prod(shape) * 4 > ir.INDEX_MAX:
            raise self.fail(f"{where}: shape {shape} is too large")
        return tuple(shape)

    def ordered(self) -> list[tuple[int, Any]]:
        """The nodes with their indexes, in an order where every input is made before it is read; a cycle or an
        input that nothing makes is an error naming the node."""
        g = self.m.graph
        known = {t.name for t in g.initializer} | {i.name for i in g.input} | {""}
        makers: dict[str, int] = {}
        for i, node in enumerate(g.node):
            for o in node.output:
                if o and (o in makers or o in known):
                    raise self.fail(f"{where_node(i, node)}: output '{o}' is defined twice")
                if o:
                    makers[o] = i
        order: list[tuple[int, Any]] = []
        state = [0] * len(g.node)  # 0 new, 1 on the stack, 2 done
        for start in range(len(g.node)):
            if state[start]:
                continue
            stack = [(start, 0)]
            state[start] = 1
            while stack:
                i, k = stack.pop()
                node = g.node[i]
                if k < len(node.input):
                    stack.append((i, k + 1))
                    name = node.input[k]
                    if name in known:
                        continue
                    if name not in makers:
                        raise self.fail(f"{where_node(i, node)}: input '{name}' is no initializer, "
                                        "graph input or node output (a missing initializer?)")  # fmt: skip
                    j = makers[name]
                    if state[j] == 1:
                        raise self.fail(f"{where_node(i, node)}: the graph has a cycle through "
                                        f"'{name}'")  # fmt: skip
                    if state[j] == 0:
                        state[j] = 1
                        stack.append((j, 0))
                else:
                    state[i] = 2
                    order.append((i, node))
        return order

    def inferred_shapes(self, inputs: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
        """ONNX's shape inference, on a copy with the inputs' static shapes (external data left out)."""
        import onnx

        m = onnx.ModelProto()
        m.CopyFrom(self.m)
        for t in m.graph.initializer:
            if t.data_location == 1:
                del t.external_data[:]
                t.data_location = 0
                t.raw_data = b""
                t.ClearField("dims")
                t.dims.extend([int(d) for d in self.shapes_of_init[t.name]])
        for vi in m.graph.input:
            if vi.name in inputs:
                dims = vi.type.tensor_type.shape.dim
                for d, v in zip(dims, inputs[vi.name]):
                    d.Clear()
                    d.dim_value = v
        try:
            m = onnx.shape_inference.infer_shapes(m, check_type=True, strict_mode=True, data_prop=True)
        except Exception as e:
            raise self.inference_error(str(e)) from None
        out: dict[str, tuple[int, ...]] = {}
        for vi in (*m.graph.value_info, *m.graph.output):
            tt = vi.type.tensor_type
            if tt.HasField("shape") and all(d.HasField("dim_value") for d in tt.shape.dim):
                out[vi.name] = tuple(int(d.dim_value) for d in tt.shape.dim)
        return out

    def inference_error(self, text: str) -> ModelError:
        """ONNX's shape inference message, on the node it names (op_type and node name) when it names one."""
        lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
        msg = lines[-1] if lines else "unknown error"
        found = re.search(r"\(op_type:([^,)]*)(?:, node name: ([^)]*))?\)", msg)
        if found:
            op_type, name = found.group(1), found.group(2) or ""
            for i, node in enumerate(self.m.graph.node):
                if node.op_type == op_type and (not name or node.name == name):
                    detail = msg[found.end() :].lstrip(": ") or msg
                    where = f"node {i} '{node.name or f'{op_type}_{i}'}' ({op_type})"
                    return self.fail(f"{where}: ONNX shape inference: {detail}")
        return self.fail(f"ONNX shape inference failed: {msg}")

    def check_ops(self, supported: set[str]) -> None:
        """Every node's op is one mcuq reads (before shape inference, whose messages are less clear)."""
        for i, node in enumerate(self.m.graph.node):
            if node.op_type not in supported:
                from .onnx_ops import supported_ops

                raise self.fail(f"{where_node(i, node)}: op not "
                                f"supported; supported ops: {', '.join(supported_ops())}")  # fmt: skip


def where_node(i: int, node: Any) -> str:
    """How messages name a node: its index, its name (``<op_type>_<index>`` when it has none) and its op type."""
    return f"node {i} '{node.name or f'{node.op_type}_{i}'}' ({node.op_type})"
