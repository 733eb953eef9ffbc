"""The IR graph an ONNX import builds: tensors, ops, and the layout conversions between them (``onnx_layout``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import ir
from ..errors import ModelError
from .onnx_layout import NHWC, NWC, PLAIN, Layout, Val, flat_order_kept, ir_shape, to_ir_array


@dataclass
class Node:
    """One ONNX node as a converter sees it."""

    index: int
    op_type: str
    name: str
    inputs: list[Val | None]  # None for an absent optional input
    outputs: list[str]
    attrs: dict[str, Any]
    source: str

    def error(self, message: str) -> ModelError:
        return ModelError(self.source, f"node {self.index} '{self.name}' ({self.op_type}): {message}")

    def attr(self, key: str, default: Any = None) -> Any:
        return self.attrs.get(key, default)

    def int(self, key: str, default: int) -> int:
        v = self.attrs.get(key, default)
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise self.error(f"attribute {key} is {type(v).__name__}, expected an integer")
        return int(v)

    def float(self, key: str, default: float) -> float:
        v = self.attrs.get(key, default)
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise self.error(f"attribute {key} is {type(v).__name__}, expected a number")
        return float(v)

    def ints(self, key: str) -> list[int] | None:
        v = self.attrs.get(key)
        if v is None:
            return None
        if not isinstance(v, (list, tuple)) or not all(isinstance(x, (int, np.integer)) for x in v):
            raise self.error(f"attribute {key} is not a list of integers")
        return [int(x) for x in v]

    def string(self, key: str, default: str) -> str:
        v = self.attrs.get(key, default)
        if isinstance(v, bytes):
            return v.decode("utf-8", "replace")
        if not isinstance(v, str):
            raise self.error(f"attribute {key} is {type(v).__name__}, expected a string")
        return v

    def input(self, pos: int, what: str) -> Val:
        if pos >= len(self.inputs) or self.inputs[pos] is None:
            raise self.error(f"missing {what} (input {pos})")
        return self.inputs[pos]

    def const(self, pos: int, what: str, optional: bool = False) -> np.ndarray | None:
        """Input ``pos`` as a constant (an initializer or folded), or an error naming it."""
        if pos >= len(self.inputs) or self.inputs[pos] is None:
            if optional:
                return None
            raise self.error(f"missing {what} (input {pos})")
        v = self.inputs[pos]
        if v.const is None:
            raise self.error(f"the {what} (input {pos}) must be a constant (an initializer or computed from shapes)")
        return v.const

    def act(self, pos: int = 0, what: str = "input") -> Val:
        """Input ``pos`` as an activation (computed from the graph's inputs)."""
        v = self.input(pos, what)
        if v.const is not None:
            raise self.error(f"the {what} (input {pos}) is a constant; mcuq converts ops on computed values only")
        return v


@dataclass
class Builder:
    source: str
    tensors: dict[str, ir.Tensor] = field(default_factory=dict)
    ops: list[ir.Op] = field(default_factory=list)
    taken: set[str] = field(default_factory=set)  # every ONNX value name (IR names avoid them unless they are one)
    node: Node | None = None  # the node being converted (names and indexes the ops it makes)
    # QDQ models: the integer values behind constants (``onnx_qdq``), by IR tensor name
    qweights: dict[str, tuple[np.ndarray, np.ndarray, int]] = field(default_factory=dict)  # (values, scales, axis)
    qbiases: dict[str, np.ndarray] = field(default_factory=dict)
    acts: dict[str, Any] = field(default_factory=dict)  # activation IR name -> onnx_qdq.ActQ
    qdq: bool = False  # the model has QuantizeLinear / DequantizeLinear nodes

    def fresh(self, base: str) -> str:
        name = ir.fresh_name(base or "t", self.tensors, self.taken)
        self.taken.add(name)
        return name

    def tensor(self, name: str, shape: tuple[int, ...], data: np.ndarray | None = None) -> str:
        if data is not None:
            data = np.ascontiguousarray(data, dtype=np.float32)
            data.flags.writeable = False
        self.tensors[name] = ir.Tensor(name, tuple(int(d) for d in shape), ir.DType.FLOAT32, None, data)
        return name

    def const(self, a: np.ndarray, base: str) -> str:
        a = np.asarray(a, dtype=np.float32)
        return self.tensor(self.fresh(base), a.shape, a)

    def weight(self, v: Val, fn, base: str, axis: int, factor: float = 1.0) -> str:
        """A weight tensor ``fn(v.const) * factor`` in the IR's layout; for a QDQ weight, its integers get the same
        ``fn`` (``axis``: the output-channel axis after ``fn``) and ``factor`` goes into its scales (a negative one
        negates the integers), so that the integers stay the model's."""
        a = fn(np.asarray(v.const, dtype=np.float64))
        name = self.const(a if factor == 1.0 else np.asarray(a) * factor, base)
        q = v.quant
        if getattr(q, "why", None):  # onnx_qdq.Refused
            raise ModelError(self.source, q.why)
        if q is not None and getattr(q, "values", None) is not None:
            scales = np.asarray(q.scales, dtype=np.float64).reshape(-1) * abs(factor)
            if scales.size > 1:  # per-channel: the model's axis must become the layer's output-channel axis
                marks = np.asarray(fn(np.indices(q.values.shape)[q.axis].astype(np.float64)))
                rows = np.moveaxis(marks, axis, 0).reshape(marks.shape[axis], -1)
                if not (rows == np.arange(rows.shape[0])[:, None]).all():
                    assert self.node is not None
                    raise self.node.error(f"weights quantized per channel along axis {q.axis}, which is not the "
                                          "output-channel axis")  # fmt: skip
            sign = -1 if factor < 0 else 1
            self.qweights[name] = (sign * np.asarray(fn(q.values)).astype(np.int64), scales, axis)
        return name

    def bias(self, v: Val, base: str, fn=None, given: bool = True) -> str:
        """A bias tensor ``fn(v.const)``; a QDQ bias's integers are kept (``given``) only when ``fn`` moves values
        without scaling them (else the float bias is quantized at the implied scale, as for a float bias)."""
        f = fn or (lambda a: a)
        name = self.const(np.asarray(f(np.asarray(v.const, dtype=np.float64))).reshape(-1), base)
        q = v.quant
        if getattr(q, "why", None):  # onnx_qdq.Refused
            raise ModelError(self.source, q.why)
        if given and q is not None and getattr(q, "values", None) is not None:
            self.qbiases[name] = np.asarray(f(q.values)).reshape(-1).astype(np.int64)
        return name

    def emit(self, kind: ir.OpKind, inputs: tuple[str, ...], shape: tuple[int, ...], attrs: ir.Attrs,
             out: str | None = None) -> str:  # fmt: skip
        """Append an op writing a new float32 tensor ``out`` (default: a fresh name) of IR shape ``shape``."""
        n = self.node
        assert n is not None
        name = out if out is not None and out not in self.tensors else self.fresh(f"{n.name}/{kind.value}")
        self.tensor(name, shape)
        self.ops.append(ir.Op(kind, name, inputs, (name,), attrs, index=n.index, origin=n.op_type))
        return name

    # -- layouts ---------------------------------------------------------------------------------------------

    def ir_name(self, v: Val, layout: Layout | None = None) -> str:
        """The IR tensor of ``v`` (a constant is stored on first use, in ``layout`` or its own)."""
        if v.const is not None and not v.ir:
            lay = layout or v.layout
            v.ir = self.const(to_ir_array(v.const.astype(np.float32), lay), "const")
            v.layout = lay
        return v.ir

    def plain(self, v: Val) -> Val:
        """``v`` in the model's own order (TRANSPOSE / RESHAPE inserted once)."""
        if v.layout.kind == "plain" or v.const is not None:
            return v if v.layout.kind == "plain" else Val(v.shape, PLAIN, const=v.const)
        if "plain" in v.cache:
            return v.cache["plain"]
        if flat_order_kept(v):
            name = self.emit(ir.OpKind.RESHAPE, (v.ir,), v.shape, ir.ReshapeAttrs())
        elif v.layout.kind == "flat":  # back to the channels-last shape it was flattened from, then the model's order
            src = v.layout.src
            assert src is not None
            made = next((op for op in reversed(self.ops) if v.ir in op.outputs), None)
            if made is not None and made.kind is ir.OpKind.RESHAPE and made.inputs[0] == src.ir:
                p = self.plain(src)  # the flattening itself: start from what it flattened
            else:  # values changed since (an activation): unflatten them
                mid = self.emit(ir.OpKind.RESHAPE, (v.ir,), ir_shape(src.shape, src.layout), ir.ReshapeAttrs())
                p = self.plain(Val(src.shape, src.layout, mid))
            name = self.emit(ir.OpKind.RESHAPE, (p.ir,), v.shape, ir.ReshapeAttrs())
        elif v.layout.kind == "nhwc":
            name = self.emit(ir.OpKind.TRANSPOSE, (v.ir,), v.shape, ir.TransposeAttrs((0, 3, 1, 2)))
        else:  # nwc: [N, 1, W, C] -> [N, W, C] -> [N, C, W]
            n, c, w = v.shape
            mid = self.emit(ir.OpKind.RESHAPE, (v.ir,), (n, w, c), ir.ReshapeAttrs())
            name = self.emit(ir.OpKind.TRANSPOSE, (mid,), v.shape, ir.TransposeAttrs((0, 2, 1)))
        out = Val(v.shape, PLAIN, name)
        v.cache["plain"] = out
        return out

    def channels_last(self, v: Val, what: str = "input") -> Val:
        """``v`` as NHWC (rank 4) or NWC (rank 3), for convolutions, pools and batch norms."""
        assert self.node is not None
        if v.rank not in (3, 4):
            raise self.node.error(f"the {what} has shape {list(v.shape)}; expected rank 4 (NCHW) or 3 (NCW)")
        want = NHWC if v.rank == 4 else NWC
        if v.layout == want:
            return v
        if want.kind in v.cache:
            return v.cache[want.kind]
        p = self.plain(v)
        shape = ir_shape(v.shape, want)
        if flat_order_kept(Val(v.shape, want)):
            name = self.emit(ir.OpKind.RESHAPE, (p.ir,), shape, ir.ReshapeAttrs())
        elif want is NHWC:
            name = self.emit(ir.OpKind.TRANSPOSE, (p.ir,), shape, ir.TransposeAttrs((0, 2, 3, 1)))
        else:
            n, c, w = v.shape
            mid = self.emit(ir.OpKind.TRANSPOSE, (p.ir,), (n, w, c), ir.TransposeAttrs((0, 2, 1)))
            name = self.emit(ir.OpKind.RESHAPE, (mid,), shape, ir.ReshapeAttrs())
        out = Val(v.shape, want, name)
        v.cache[want.kind] = out
        return out

    def like(self, v: Val, layout: Layout) -> Val:
        """``v`` converted to ``layout`` (a constant is stored in it)."""
        if v.const is not None:
            c = Val(v.shape, layout, const=v.const)
            self.ir_name(c, layout)
            return c
        if v.layout == layout:
            return v
        if layout.kind in ("nhwc", "nwc") and v.rank in (3, 4):
            return self.channels_last(v)
        return self.plain(v)


# The converters of ONNX op types (onnx_ops.py, onnx_order.py): ``fn(builder, node) -> [Val per output]``.
Converter = Callable[[Builder, Node], list]
CONVERTERS: dict[str, Converter] = {}


def converter(*names: str):
    """Registers the decorated function as the converter of these ONNX op types."""

    def deco(fn: Converter) -> Converter:
        for n in names:
            CONVERTERS[n] = fn
        return fn

    return deco


def out_val(b: Builder, n: Node, kind: ir.OpKind, inputs, shape: tuple[int, ...], attrs, layout: Layout) -> Val:
    """Emits one IR op for node ``n`` whose single output has the ONNX ``shape`` stored in ``layout``."""
    name = b.emit(kind, inputs, ir_shape(shape, layout), attrs, out=n.outputs[0])
    return Val(shape, layout, name)
