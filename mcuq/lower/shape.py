"""Lowering of the data-movement ops: RESHAPE (an alias; TFLite's RESHAPE and SQUEEZE), COPY, PAD, CONCAT, TRANSPOSE.

What TFLite 2.14 (kernels/*.cc Prepare, BUILTIN_REF) does with int8, checked against the interpreter:
  * RESHAPE (TFLite RESHAPE, SQUEEZE): the data is reinterpreted; TFLite does not compare quantization parameters, but mcuq
    requires them equal (an alias cannot requantize, and a mismatch means a malformed model).
  * PAD: up to 5-D; the padding value is the *output's* zero point; the data is copied unchanged, and TFLite
    does not require the input's quantization parameters to equal the output's (mirrored here).
  * CONCATENATION: int8 requires every input's scale (float32 ==) and zero point to equal the output's and
    refuses any fused activation, so it is a pure copy.
  * TRANSPOSE: up to 6-D, negative perm entries count from the end; the data is copied unchanged and 2.14
    does not compare quantization parameters (mirrored here).

16x8 mode (int16 tensors, zero points 0; TFLite 2.14 runs the same reference ops on int16): PAD pads with the
output zero point, 0; CONCATENATION checks only that every zero point is 0 and copies values unchanged even when
the scales differ (mirrored, with a warning); RESHAPE and TRANSPOSE as for int8. The ``_s16`` kernels
(mcuq/kernels/pool16.py) take the same parameters, counted in elements.

Shapes are simplified at compile time (size-1 axes dropped, axes that stay contiguous merged) so the kernels
loop over few, long dimensions; an op that turns out to move nothing becomes ``mcuq_copy_s8`` (``_s16``).
"""

from __future__ import annotations

import logging

import numpy as np

from ..ir import Activation, DType, Graph, Op, OpKind
from ..kernels.pool16 import CONCATENATION_S16, COPY_S16, PAD_S16, TRANSPOSE_S16, PadS16Params
from ..kernels.shape import (
    CONCATENATION_S8,
    COPY_S8,
    PAD_DIMS,
    PAD_S8,
    TRANSPOSE_DIMS,
    TRANSPOSE_S8,
    ConcatenationParams,
    CopyParams,
    PadParams,
    TransposeParams,
)
from .base import Layer, fail, lowering
from .common import require_act

log = logging.getLogger(__name__)


def _size(shape: tuple[int, ...] | list[int]) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def _require_same_qparams(g: Graph, op: Op, x: str, out: str, why: str) -> None:
    """TFLite's check that input ``x`` is quantized as ``out``: float32 scales compare equal, zero points are equal."""
    tx, to = g.tensors[x], g.tensors[out]
    if np.float32(tx.scale) != np.float32(to.scale) or tx.zero_point != to.zero_point:
        raise fail(
            g,
            op,
            f"input '{x}' (scale {tx.scale}, zero point {tx.zero_point}) differs from the output's "
            f"(scale {to.scale}, zero point {to.zero_point}); {why}",
        )


def copy_layer(op: Op, src: str, dst: str, size: int, dtype: DType = DType.INT8) -> Layer:
    """A ``mcuq_copy_s8`` (int16: ``mcuq_copy_s16``) call copying ``size`` values from tensor ``src`` to ``dst``.

    Used for COPY ops and for PAD / TRANSPOSE that move nothing.
    """
    kernel = COPY_S16 if dtype == DType.INT16 else COPY_S8
    return Layer(op=op, kernel=kernel, params=CopyParams(size=int(size)), args=(src, dst))


@lowering(OpKind.RESHAPE)
def lower_alias(g: Graph, op: Op) -> Layer:
    x, out = op.inputs[0], op.outputs[0]
    require_act(g, op, x, out)
    tx, to = g.tensors[x], g.tensors[out]
    if tx.size != to.size:
        raise fail(g, op, f"input {tx.shape} has {tx.size} elements but output {to.shape} has {to.size}")
    _require_same_qparams(g, op, x, out, "a reshape cannot requantize")
    return Layer(op=op, kernel=None, params=None, args=(x, out))


@lowering(OpKind.COPY)
def lower_copy(g: Graph, op: Op) -> Layer:
    """A RESHAPE that ``passes.reshape_to_copy`` made a copy (its input and output are two caller buffers)."""
    lower_alias(g, op)  # the same checks
    to = g.tensors[op.outputs[0]]
    return copy_layer(op, op.inputs[0], op.outputs[0], to.size, to.dtype)


def pad_plan(shape: tuple[int, ...], paddings: tuple[tuple[int, int], ...]) -> list[tuple[int, int, int]] | None:
    """Simplify a constant PAD to at most ``len(shape)`` (dim, before, after) triples; None when nothing pads.

    Size-1 unpadded axes are dropped; an unpadded axis merges into the axis before it (whose paddings scale by
    its size), so every remaining axis but the first is padded.
    """
    dims = [
        (int(d), int(b), int(a))
        for d, (b, a) in zip(shape, paddings, strict=True)
        if not (d == 1 and b == 0 and a == 0)
    ]
    merged: list[tuple[int, int, int]] = []
    for d, b, a in reversed(dims):
        if merged and merged[-1][1] == 0 and merged[-1][2] == 0:
            inner = merged.pop()[0]
            d, b, a = d * inner, b * inner, a * inner
        merged.append((d, b, a))
    merged.reverse()
    if all(b == 0 and a == 0 for _, b, a in merged):
        return None
    return merged


@lowering(OpKind.PAD)
def lower_pad(g: Graph, op: Op) -> Layer:
    x, out = op.inputs[0], op.outputs[0]
    require_act(g, op, x, out)
    tx, to = g.tensors[x], g.tensors[out]
    paddings = op.attrs.paddings
    rank = len(tx.shape)
    if rank > PAD_DIMS:
        raise fail(g, op, f"{rank}-D input; TFLite's PAD supports at most {PAD_DIMS} dimensions")
    if len(paddings) != rank:
        raise fail(g, op, f"{len(paddings)} padding pairs for a {rank}-D input")
    if any(b < 0 or a < 0 for b, a in paddings):
        raise fail(g, op, f"negative paddings {paddings}")
    if any(d < 1 for d in tx.shape):
        raise fail(g, op, f"input shape {tx.shape} has an empty dimension")
    want = tuple(d + b + a for d, (b, a) in zip(tx.shape, paddings, strict=True))
    if tuple(to.shape) != want:
        raise fail(g, op, f"output shape {to.shape} does not match input {tx.shape} padded by {paddings} = {want}")
    plan = pad_plan(tx.shape, paddings)
    if plan is None:
        return copy_layer(op, x, out, tx.size, tx.dtype)
    plan = [(1, 0, 0)] * (PAD_DIMS - len(plan)) + plan
    s16 = tx.dtype == DType.INT16
    params = (PadS16Params if s16 else PadParams)(
        # TFLite 2.14 pad.cc, int8/int16 without constant_values: pad_value = output->params.zero_point.
        pad_value=int(to.zero_point),
        in_dims=np.array([d for d, _, _ in plan], dtype=np.int32),
        pad_before=np.array([b for _, b, _ in plan], dtype=np.int32),
        pad_after=np.array([a for _, _, a in plan], dtype=np.int32),
    )
    return Layer(op=op, kernel=PAD_S16 if s16 else PAD_S8, params=params, args=(x, out))


@lowering(OpKind.CONCAT)
def lower_concatenation(g: Graph, op: Op) -> Layer:
    out = op.outputs[0]
    ins = tuple(op.inputs)
    if not ins or any(not n for n in ins):
        raise fail(g, op, "CONCATENATION needs at least one input and no absent ones")
    require_act(g, op, *ins, out)
    to = g.tensors[out]
    s16 = to.dtype == DType.INT16
    axis = op.attrs.axis
    rank = len(to.shape)
    if not 0 <= axis < rank:
        raise fail(g, op, f"axis {axis} is outside the {rank}-D output")
    if op.attrs.activation != Activation.NONE:
        raise fail(g, op, f"fused activation {op.attrs.activation.value}: TFLite's CONCATENATION only supports NONE")
    axis_sum = 0
    for n in ins:
        t = g.tensors[n]
        if len(t.shape) != rank or any(t.shape[d] != to.shape[d] for d in range(rank) if d != axis):
            raise fail(g, op, f"input '{n}' shape {t.shape} does not fit output {to.shape} along axis {axis}")
        if not s16:
            _require_same_qparams(g, op, n, out, "TFLite's int8 CONCATENATION requires them equal")
        elif np.float32(t.scale) != np.float32(to.scale):
            log.warning(
                "%s: input '%s' has scale %g, the output %g; TFLite's int16 CONCATENATION copies values unchanged "
                "and so does mcuq",
                op.where,
                n,
                t.scale,
                to.scale,
            )
        axis_sum += t.shape[axis]
    if axis_sum != to.shape[axis]:
        raise fail(g, op, f"inputs sum to {axis_sum} along axis {axis} but the output has {to.shape[axis]}")
    params = ConcatenationParams(
        num_inputs=len(ins),
        outer_size=_size(to.shape[:axis]),
        copy_sizes=np.array([_size(g.tensors[n].shape[axis:]) for n in ins], dtype=np.int32),
    )
    return Layer(op=op, kernel=CONCATENATION_S16 if s16 else CONCATENATION_S8, params=params, args=(ins, out))


def transpose_plan(shape: tuple[int, ...], perm: tuple[int, ...]) -> tuple[list[int], list[int]]:
    """Simplify a transpose to (output dims, input stride of each output dim), size-1 axes dropped and runs of
    output axes that are consecutive input axes merged. One dim with stride 1 means a plain copy."""
    keep = [a for a in range(len(shape)) if shape[a] > 1]
    groups: list[list[int]] = []  # runs of input axes, in output order
    for a in perm:
        if shape[a] == 1:
            continue
        if groups and keep.index(a) == keep.index(groups[-1][-1]) + 1:
            groups[-1].append(a)
        else:
            groups.append([a])
    by_input = sorted(groups, key=lambda grp: grp[0])
    sizes = {grp[0]: _size([shape[a] for a in grp]) for grp in groups}
    stride, strides = 1, {}
    for grp in reversed(by_input):
        strides[grp[0]] = stride
        stride *= sizes[grp[0]]
    if not groups:
        return [1], [1]
    return [sizes[grp[0]] for grp in groups], [strides[grp[0]] for grp in groups]


@lowering(OpKind.TRANSPOSE)
def lower_transpose(g: Graph, op: Op) -> Layer:
    x, out = op.inputs[0], op.outputs[0]
    require_act(g, op, x, out)
    tx, to = g.tensors[x], g.tensors[out]
    rank = len(tx.shape)
    if rank > TRANSPOSE_DIMS:
        raise fail(g, op, f"{rank}-D input; TFLite's TRANSPOSE supports at most {TRANSPOSE_DIMS} dimensions")
    raw = tuple(op.attrs.perm)
    if len(raw) != rank or any(not -rank <= p < rank for p in raw):
        raise fail(g, op, f"perm {raw} does not fit a {rank}-D input")
    perm = tuple(p + rank if p < 0 else p for p in raw)
    if sorted(perm) != list(range(rank)):
        raise fail(g, op, f"perm {raw} is not a permutation")
    if any(d < 1 for d in tx.shape):
        raise fail(g, op, f"input shape {tx.shape} has an empty dimension")
    want = tuple(tx.shape[p] for p in perm)
    if tuple(to.shape) != want:
        raise fail(g, op, f"output shape {to.shape} is not input {tx.shape} permuted by {raw} = {want}")
    dims, strides = transpose_plan(tuple(tx.shape), perm)
    if len(dims) == 1:
        return copy_layer(op, x, out, tx.size, tx.dtype)
    pad = TRANSPOSE_DIMS - len(dims)
    params = TransposeParams(
        out_dims=np.array([1] * pad + dims, dtype=np.int32),
        in_strides=np.array([0] * pad + strides, dtype=np.int32),
    )
    kernel = TRANSPOSE_S16 if tx.dtype == DType.INT16 else TRANSPOSE_S8
    return Layer(op=op, kernel=kernel, params=params, args=(x, out))
