"""ONNX converters of the ops that reshape, move or reduce axes (Reshape, Flatten, Squeeze, Unsqueeze, Transpose,
Concat, Softmax, ReduceMean, Pad), registered in ``onnx_build.CONVERTERS``. Each maps the model's axes onto the IR
tensor's layout (``onnx_layout``) or asks for the model's own order where it cannot."""

from __future__ import annotations

import math

import numpy as np

from .. import ir
from ..ir import OpKind
from .onnx_build import Builder, Node, converter, out_val
from .onnx_fold import reshape_target, squeeze_shape, unsqueeze_shape
from .onnx_layout import PLAIN, Layout, Val, flat_order_kept, ir_axis, ir_shape


def reshape_val(b: Builder, n: Node, v: Val, shape: tuple[int, ...]) -> Val:
    """``v`` reshaped to ``shape`` (ONNX order): a RESHAPE when the IR order is the model's, a flattening of an
    NHWC value to [N, C*H*W] kept in the IR's order (``FLAT``), else via the model's order."""
    if v.layout.kind in ("nhwc", "nwc") and not flat_order_kept(v) and len(shape) == 2 and shape[0] == v.shape[0]:
        name = b.emit(OpKind.RESHAPE, (v.ir,), shape, ir.ReshapeAttrs(), out=n.outputs[0])
        return Val(shape, Layout("flat", src=v), name)
    if not flat_order_kept(v):
        v = b.plain(v)
    if ir_shape(v.shape, v.layout) == shape:
        return Val(shape, PLAIN, v.ir)
    name = b.emit(OpKind.RESHAPE, (v.ir,), shape, ir.ReshapeAttrs(), out=n.outputs[0])
    return Val(shape, PLAIN, name)


@converter("Reshape")
def reshape(b: Builder, n: Node) -> list:
    x = n.act(0)
    return [reshape_val(b, n, x, reshape_target(n, x.shape, n.const(1, "shape")))]


@converter("Flatten")
def flatten(b: Builder, n: Node) -> list:
    x = n.act(0)
    axis = n.int("axis", 1)
    if not -x.rank <= axis <= x.rank:
        raise n.error(f"axis {axis} out of range for rank {x.rank}")
    axis %= x.rank + 1
    shape = (math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))
    return [reshape_val(b, n, x, shape)]


def _axes_of(n: Node, pos: int, rank: int) -> list[int] | None:
    raw = n.const(pos, "axes", optional=True)
    if raw is None:
        raw = n.ints("axes")
    if raw is None:
        return None
    axes = [int(a) for a in np.asarray(raw).reshape(-1)]
    if any(not -rank <= a < rank for a in axes):
        raise n.error(f"axes {axes} out of range for rank {rank}")
    return sorted({a % rank for a in axes})


@converter("Squeeze")
def squeeze(b: Builder, n: Node) -> list:
    x = n.act(0)
    return [reshape_val(b, n, x, squeeze_shape(n, x.shape, _axes_of(n, 1, x.rank)))]


@converter("Unsqueeze")
def unsqueeze(b: Builder, n: Node) -> list:
    x = n.act(0)
    raw = n.const(1, "axes", optional=True)
    count = np.asarray(raw if raw is not None else (n.ints("axes") or [])).size
    axes = _axes_of(n, 1, x.rank + count) or []
    return [reshape_val(b, n, x, unsqueeze_shape(n, x.shape, axes))]


@converter("Transpose")
def transpose(b: Builder, n: Node) -> list:
    x = n.act(0)
    perm = n.ints("perm") or list(range(x.rank - 1, -1, -1))
    if sorted(perm) != list(range(x.rank)):
        raise n.error(f"perm {perm} is not a permutation of {x.rank} axes")
    if x.layout.kind == "flat":
        x = b.plain(x)
    p = x.layout.perm or tuple(range(x.rank))  # the IR tensor (base) is the model's value transposed by p
    base = x.ir
    if x.layout.kind == "nwc":  # [N, 1, W, C] is [N, W, C] = NCW transposed by (0, 2, 1)
        base = b.emit(OpKind.RESHAPE, (x.ir,), (x.shape[0], x.shape[2], x.shape[1]), ir.ReshapeAttrs())
    inv = [p.index(i) for i in range(x.rank)]
    q = tuple(inv[a] for a in perm)
    shape = tuple(x.shape[a] for a in perm)
    if q == tuple(range(x.rank)):
        return [Val(shape, PLAIN, base)]
    return [out_val(b, n, OpKind.TRANSPOSE, (base,), shape, ir.TransposeAttrs(q), PLAIN)]


@converter("Concat")
def concat(b: Builder, n: Node) -> list:
    vals = [v for v in n.inputs if v is not None]
    acts = [v for v in vals if v.const is None]
    if not acts:
        raise n.error("every input is a constant")
    rank = acts[0].rank
    if any(v.rank != rank for v in vals):
        raise n.error(f"inputs of ranks {[v.rank for v in vals]}")
    axis = n.int("axis", 0)
    if not -rank <= axis < rank:
        raise n.error(f"axis {axis} out of range for rank {rank}")
    axis %= rank
    for v in vals:
        if any(d != e for i, (d, e) in enumerate(zip(v.shape, acts[0].shape)) if i != axis):
            raise n.error(f"input shapes {[list(v.shape) for v in vals]} differ off axis {axis}")
    shape = tuple(sum(v.shape[axis] for v in vals) if i == axis else d for i, d in enumerate(acts[0].shape))
    vals = [v for v in vals if v.shape[axis]]  # zero-size inputs add nothing (and the IR holds no empty tensor)
    acts = [v for v in vals if v.const is None]
    if not acts:
        raise n.error(f"every input with values along axis {axis} is a constant (or none has values)")
    if len(vals) == 1:
        return [vals[0]]
    lay = acts[0].layout if acts[0].layout.kind in ("nhwc", "nwc") else PLAIN
    ins = tuple(b.ir_name(b.like(v, lay)) for v in vals)
    return [out_val(b, n, OpKind.CONCAT, ins, shape, ir.ConcatAttrs(ir_axis(lay, axis)), lay)]


@converter("Softmax")
def softmax(b: Builder, n: Node) -> list:
    x = n.act(0)
    axis = n.int("axis", -1)
    if not -x.rank <= axis < x.rank:
        raise n.error(f"axis {axis} out of range for rank {x.rank}")
    axis %= x.rank
    if x.layout.kind in ("nhwc", "nwc") and ir_axis(x.layout, axis) == 3:
        return [out_val(b, n, OpKind.SOFTMAX, (x.ir,), x.shape, ir.SoftmaxAttrs(), x.layout)]
    if axis != x.rank - 1:
        raise n.error(f"softmax over axis {axis} of rank {x.rank}: mcuq's SOFTMAX works on the last axis")
    x = b.plain(x)
    return [out_val(b, n, OpKind.SOFTMAX, (x.ir,), x.shape, ir.SoftmaxAttrs(), PLAIN)]


@converter("ReduceMean")
def reduce_mean(b: Builder, n: Node) -> list:
    x = n.act(0)
    axes = _axes_of(n, 1, x.rank)
    if axes is None or not axes:
        if n.int("noop_with_empty_axes", 0):
            return [x]
        axes = list(range(x.rank))
    keep = bool(n.int("keepdims", 1))
    kept_shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
    if x.layout.kind == "flat":
        x = b.plain(x)
    lay = x.layout
    ir_axes = tuple(sorted(ir_axis(lay, a) for a in axes))
    if lay.kind == "plain":
        shape = kept_shape if keep else tuple(d for i, d in enumerate(x.shape) if i not in axes)
        return [out_val(b, n, OpKind.MEAN, (x.ir,), shape, ir.MeanAttrs(ir_axes, keep), PLAIN)]
    if keep:
        return [out_val(b, n, OpKind.MEAN, (x.ir,), kept_shape, ir.MeanAttrs(ir_axes, True), lay)]
    mid = b.emit(OpKind.MEAN, (x.ir,), ir_shape(kept_shape, lay), ir.MeanAttrs(ir_axes, True))
    shape = tuple(d for i, d in enumerate(x.shape) if i not in axes)
    return [reshape_val(b, n, Val(kept_shape, lay, mid), shape)]


@converter("Pad")
def pad(b: Builder, n: Node) -> list:
    x = n.act(0)
    mode = n.string("mode", "constant")
    if mode != "constant":
        raise n.error(f"mode {mode!r} not supported (constant is)")
    p = [int(v) for v in n.const(1, "pads").reshape(-1)]
    value = n.const(2, "constant_value", optional=True)
    if value is not None and (value.size != 1 or float(value.reshape(-1)[0]) != 0.0):
        raise n.error("a non-zero constant_value is not supported")
    axes = _axes_of(n, 3, x.rank) if len(n.inputs) > 3 else None
    axes = axes if axes is not None else list(range(x.rank))
    if len(p) != 2 * len(axes):
        raise n.error(f"pads {p} for {len(axes)} axes")
    if min(p, default=0) < 0:
        raise n.error(f"negative pads {p} (cropping) not supported")
    per = {a: (p[i], p[i + len(axes)]) for i, a in enumerate(axes)}
    if x.layout.kind == "flat":
        x = b.plain(x)
    lay = x.layout
    irs = ir_shape(x.shape, lay)
    paddings = [(0, 0)] * len(irs)
    for a, pr in per.items():
        paddings[ir_axis(lay, a)] = pr
    shape = tuple(d + sum(per.get(i, (0, 0))) for i, d in enumerate(x.shape))
    return [out_val(b, n, OpKind.PAD, (x.ir,), shape, ir.PadAttrs(tuple(paddings)), lay)]
