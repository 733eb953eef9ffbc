"""Read an ONNX model (float, or QDQ) into an ``ir.Graph`` with NHWC activations.

The file is hostile input. In order, before any real work: its size is checked (``MAX_MODEL_BYTES``), it is
parsed without external data, the default-domain opset must be 13 to 21 and every node's domain the default
one (other domains that quantization tools declare are accepted when no node uses them); then external data is
read only from regular files inside the model's own folder (no absolute path, no ``..``, no symlink out), each
within its file and of the size its tensor needs. A symbolic batch dimension of an input becomes 1; any other
dynamic dimension is an error. The nodes must form an acyclic graph (they are ordered if they are not).

Then one pass over the nodes in order: shape-computing subgraphs are folded to constants (``onnx_fold``), every
other node is converted (``onnx_build.CONVERTERS``, filled by onnx_ops and onnx_order; QDQ nodes ``onnx_qdq``) into IR ops, and each result's shape is
checked against ONNX's own shape inference. Layouts (NCHW -> NHWC) are in ``onnx_layout``; how the graph's
inputs and outputs are stored is ``graph.meta["io_layout"]`` (JSON, read by ``mcuq.layout``).

Every error is a one-line ``ModelError`` naming the file and, where there is one, the node (index, name, type).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .. import ir
from ..errors import McuqError, ModelError
from ..layout import KEY as IO_LAYOUT  # graph.meta key (JSON) of the inputs and outputs stored in another layout
from .onnx_build import Builder, Node
from .onnx_fold import FOLD, MAX_FOLD_ELEMENTS, fold_shape
from .onnx_layout import NHWC, NWC, PLAIN, Val, io_entry, ir_shape
from .onnx_qdq import quantized_model
from .onnx_read import MAX_EXTERNAL_BYTES, Reader, where_node

__all__ = ["MAX_EXTERNAL_BYTES", "MAX_MODEL_BYTES", "OPSET_MAX", "OPSET_MIN", "load", "load_qdq"]

OPSET_MIN, OPSET_MAX = 13, 21
MAX_MODEL_BYTES = 1 << 30  # the .onnx file itself
DEFAULT_DOMAINS = ("", "ai.onnx")


def _import_onnx(src: str):
    try:
        import onnx
    except ImportError:
        raise McuqError(f"{src}: reading ONNX models needs the onnx package: pip install 'mcuq[onnx]'") from None
    return onnx


def load(model: str | os.PathLike | bytes, source: str | None = None, parts: bool = False) -> ir.Graph:
    """Parse an ONNX model (path or bytes) into an IR graph: float32 for a float model, the integer graph for a
    QDQ model (``load_qdq`` gives the whole ``QuantizedModel``). Raises ``ModelError`` on any problem.
    ``parts``: return (float graph, builder) instead, the builder holding a QDQ model's parameters."""
    folder: Path | None = None
    if isinstance(model, (bytes, bytearray, memoryview)):
        buf, src, name = bytes(model), source or "<memory>", "model"
        if len(buf) > MAX_MODEL_BYTES:
            raise ModelError(src, f"model of {len(buf):,} bytes is larger than {MAX_MODEL_BYTES:,}")
    else:
        path = Path(model)
        src, name, folder = source or str(path), path.stem or "model", path.parent
        try:
            size = path.stat().st_size
            if size > MAX_MODEL_BYTES:
                raise ModelError(src, f"model file of {size:,} bytes is larger than {MAX_MODEL_BYTES:,}")
            with open(path, "rb") as f:  # bounded: a device or pipe (/dev/zero) reports no size
                buf = f.read(MAX_MODEL_BYTES + 1)
            if len(buf) > MAX_MODEL_BYTES:
                raise ModelError(src, f"model file larger than {MAX_MODEL_BYTES:,} bytes")
        except OSError as e:
            raise ModelError(src, f"cannot read model file: {e.strerror or e}") from None
    onnx = _import_onnx(src)
    m = onnx.ModelProto()
    try:
        m.ParseFromString(buf)
    except Exception as e:
        raise ModelError(src, f"not a valid ONNX model: {type(e).__name__}: {e}") from None
    if not m.HasField("graph") or not m.graph.node:
        raise ModelError(src, "not a valid ONNX model: no graph or no nodes")
    opset = _check_opsets(m, src)
    try:
        with np.errstate(all="ignore"):  # hostile numbers (inf weights, overflowing shapes) are checked, not warned
            g, b = _Importer(m, src, name, folder, opset).graph()
    except McuqError:
        raise
    except RecursionError:
        raise ModelError(src, "model too deeply nested") from None
    except Exception as e:  # a combination of fields no check foresaw: still one line, and a bug to report
        raise ModelError(src, f"cannot read the model (internal error): {type(e).__name__}: {e}") from None
    return (g, b) if parts else (quantized_model(g, b).graph if b.qdq else g)


def load_qdq(model: str | os.PathLike | bytes):
    """A QDQ model as the ``QuantizedModel`` (integer graph, float graph, report with notes) mcuq builds from it;
    None for a float model."""
    g, b = load(model, parts=True)
    return quantized_model(g, b) if b.qdq else None


def _check_opsets(m: Any, src: str) -> int:
    """The default domain's opset, checked to be 13..21; nodes of any other domain refused (by name)."""
    default = sorted({int(o.version) for o in m.opset_import if o.domain in DEFAULT_DOMAINS})
    if not default:
        raise ModelError(src, "the model imports no default-domain (ai.onnx) opset")
    if len(default) > 1:  # which one the ops mean is ambiguous (runtimes pick differently)
        raise ModelError(src, f"the model imports the default domain (ai.onnx) at several opsets {default}")
    opset = default[0]
    if not OPSET_MIN <= opset <= OPSET_MAX:
        raise ModelError(src, f"opset {opset} is not supported (mcuq reads opsets {OPSET_MIN} to {OPSET_MAX}; "
                         "re-export with another opset_version)")  # fmt: skip
    for i, node in enumerate(m.graph.node):
        if node.domain not in DEFAULT_DOMAINS:
            raise ModelError(src, f"{where_node(i, node)}: op of domain '{node.domain}' is not "
                             "supported (mcuq reads the default ai.onnx domain)")  # fmt: skip
    return opset


class _Importer(Reader):
    def graph(self) -> tuple[ir.Graph, Builder]:
        from onnx import helper

        g = self.m.graph
        b = Builder(self.source)
        vals: dict[str, Val] = {}
        for t in g.initializer:
            a = self.array(t, f"initializer '{t.name}'")
            vals[t.name] = Val(a.shape, const=a)
        if g.sparse_initializer:
            raise self.fail("sparse initializers are not supported")
        self.shapes_of_init = {k: v.shape for k, v in vals.items()}
        b.taken.update(vals)
        for node in g.node:
            b.taken.update(o for o in node.output if o)
        conv1d = any(
            (n.op_type in ("Conv", "MaxPool", "AveragePool") and len(_attr_list(n, "kernel_shape")) == 1)
            or (n.op_type == "Conv" and n.input[1:2] and n.input[1] in vals and vals[n.input[1]].rank == 3)
            for n in g.node
        )
        inputs: list[str] = []
        in_shapes: dict[str, tuple[int, ...]] = {}
        io: dict[str, dict] = {"inputs": {}, "outputs": {}}
        for vi in g.input:
            if vi.name in vals:
                continue  # an initializer listed as an input (older exporters)
            shape = self.input_shape(vi)
            in_shapes[vi.name] = shape
            lay = NHWC if len(shape) == 4 else NWC if len(shape) == 3 and conv1d else PLAIN
            v = Val(shape, lay, b.tensor(vi.name, ir_shape(shape, lay)))
            b.taken.add(vi.name)
            vals[vi.name] = v
            inputs.append(vi.name)
            if io_entry(v):
                io["inputs"][vi.name] = io_entry(v)
        if not inputs:
            raise self.fail("the model has no inputs (every graph input is an initializer)")
        from .onnx_ops import CONVERTERS, supported_ops
        from .onnx_qdq import QDQ_CONVERTERS

        self.check_ops({*CONVERTERS, *FOLD, *QDQ_CONVERTERS, "Constant", "Shape"})
        order = self.ordered()
        inferred = self.inferred_shapes(in_shapes)

        for i, node in order:
            name = node.name or f"{node.op_type}_{i}"  # as _where names it
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            ins = [vals[x] if x else None for x in node.input]
            n = Node(i, node.op_type, name, ins, list(node.output), attrs, self.source)
            b.node = n
            outs = self.convert(b, n, CONVERTERS, QDQ_CONVERTERS, supported_ops)
            for o, v in zip(node.output, outs):
                if not o:
                    continue
                if v is None:
                    raise n.error(f"output '{o}' is not supported")
                want = inferred.get(o)
                if want is not None and tuple(want) != tuple(v.shape):
                    raise n.error(f"output '{o}': mcuq computes shape {list(v.shape)}, ONNX shape inference "
                                  f"{list(want)}")  # fmt: skip
                vals[o] = v
        outputs: list[str] = []
        renamed: dict[str, str] = {}
        for vi in g.output:
            if vi.name not in vals:
                raise self.fail(f"graph output '{vi.name}' is never computed")
            v = vals[vi.name]
            if v.const is not None:
                raise self.fail(f"graph output '{vi.name}' is a constant; nothing to compute")
            b.node = Node(len(g.node), "Output", vi.name, [v], [vi.name], {}, self.source)
            if v.layout.kind == "flat":
                v = b.plain(v)
            if v.ir in renamed:  # an earlier output took this tensor's name
                v = Val(v.shape, v.layout, renamed[v.ir])
            if v.ir in outputs or v.ir in inputs:  # an input (or another output) given out again: a copy, so that
                shape = b.tensors[v.ir].shape  # every output is computed and has its own buffer
                out = vi.name if vi.name not in b.tensors else None
                v = Val(v.shape, v.layout, b.emit(ir.OpKind.RESHAPE, (v.ir,), shape, ir.ReshapeAttrs(), out=out))
            ir_name = v.ir
            free = vi.name in b.tensors and vi.name not in (*inputs, *outputs)
            if ir_name != vi.name and free and not any(vi.name in op.inputs for op in b.ops):
                # the model's name is on a value nothing reads (a flattening left for the model's order): free it
                b.ops = [op for op in b.ops if vi.name not in op.outputs]
                del b.tensors[vi.name]
            if ir_name != vi.name and ir_name not in inputs and vi.name not in b.tensors:
                _rename(b, ir_name, vi.name)  # the output keeps the model's name (a DQ or a layout change moved it)
                renamed[ir_name] = vi.name
                ir_name = vi.name
            outputs.append(ir_name)
            if io_entry(v):
                io["outputs"][ir_name] = io_entry(v)
        return self.finish(b, inputs, outputs, io)  # type: ignore[return-value]

    def convert(self, b: Builder, n: Node, converters, qdq, supported) -> list:
        op = n.op_type
        if op == "Constant":
            return [self.constant(n)]
        if op in qdq:
            return qdq[op](b, n)
        if op == "Shape" and n.inputs and n.inputs[0] is not None:
            return [Val((n.inputs[0].rank,), const=fold_shape(n, n.inputs[0].shape))]
        present = [v for v in n.inputs if v is not None]
        if op in FOLD and present and all(v.const is not None for v in present):
            results = FOLD[op](n, [v.const if v is not None else None for v in n.inputs])
            return [Val(np.shape(r), const=np.asarray(r)) for r in results]
        if op not in converters:
            raise n.error(f"op not supported; supported ops: {', '.join(supported())}")
        return converters[op](b, n)

    def constant(self, n: Node) -> Val:
        if "value" in n.attrs:
            a = self.array(n.attrs["value"], f"node {n.index} '{n.name}' (Constant)")
        elif "value_float" in n.attrs or "value_int" in n.attrs:
            a = np.asarray(n.attrs.get("value_float", n.attrs.get("value_int")))
        elif "value_floats" in n.attrs or "value_ints" in n.attrs:
            a = np.asarray(n.attrs.get("value_floats", n.attrs.get("value_ints")))
            if a.size > MAX_FOLD_ELEMENTS:
                raise n.error("constant too large")
        else:
            raise n.error(f"constant of kind {sorted(n.attrs)} not supported")
        return Val(a.shape, const=a)

    def finish(self, b: Builder, inputs: list[str], outputs: list[str], io: dict) -> tuple[ir.Graph, Builder]:
        live = set(outputs)
        ops = []
        for op in reversed(b.ops):  # ops whose results nothing reads (a layout made but not used) go
            if any(o in live for o in op.outputs):
                ops.append(op)
                live.update(t for t in op.inputs if t)
        b.ops = ops[::-1]
        used = set(inputs) | set(outputs)
        for op in b.ops:
            used.update(t for t in (*op.inputs, *op.outputs) if t)
        tensors = {k: t for k, t in b.tensors.items() if k in used}
        meta = {"onnx_opset": str(self.opset)}
        if io["inputs"] or io["outputs"]:
            meta[IO_LAYOUT] = json.dumps(io, sort_keys=True)
        graph = ir.Graph(self.name, tensors, tuple(b.ops), tuple(inputs), tuple(outputs), self.source, meta)
        ir.verify(graph)
        return graph, b


def _rename(b: Builder, old: str, new: str) -> None:
    """Tensor ``old`` called ``new`` everywhere in ``b`` (ops, tensors, QDQ activation parameters)."""
    from dataclasses import replace

    def sub(names: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(new if t == old else t for t in names)

    b.tensors[new] = replace(b.tensors.pop(old), name=new)
    b.ops = [replace(op, inputs=sub(op.inputs), outputs=sub(op.outputs), name=new if op.name == old else op.name)
             for op in b.ops]  # fmt: skip
    if old in b.acts:
        b.acts[new] = b.acts.pop(old)


def _attr_list(node: Any, key: str) -> list:
    for a in node.attribute:
        if a.name == key:
            return list(a.ints)
    return []
