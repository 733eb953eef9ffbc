"""Folds for float32 graphs, run before quantization (``FLOAT_PIPELINE``).

A converter's float model may still hold what int8 kernels have no room for: weights stored as float16 or int8
behind a DEQUANTIZE, a batch-norm left as a MUL and an ADD after a convolution, a RELU or RELU6 as an op of its
own. Quantizing those as they stand would cost a layer (and a rounding) each; folded, they vanish into the
weights, the bias and the producer's fused clamp, as TFLite's converter folds them. Each pass:

  * ``fold_dequantize``: a DEQUANTIZE of a constant becomes a float32 constant under the op's output name;
  * ``fold_batchnorm``: a MUL / ADD / SUB by a per-output-channel constant after a CONV2D, DEPTHWISE_CONV2D or
    FULLY_CONNECTED (fused activation NONE) scales the weights and shifts the bias;
  * ``fold_relu``: a RELU / RELU6 after an op with a fused-activation field becomes that field.

Each is a pure ``Graph -> Graph`` that returns its input itself when it finds nothing to fold, and leaves alone
what it cannot fold exactly: quantized tensors, a producer whose output has another reader or is a graph output,
constants that are not one value per output channel (or not finite), activations with no single fused
equivalent. Outputs of the graph keep their names and, within float32 rounding, their values.

A folded op stays where its first op was: the ops it absorbed read only its output and constants, and nothing
between reads their outputs, so the order stays topological. It takes the output tensor (and the activation) of
the last op it absorbed, and that tensor's name as its own name when it was named after its output, as the
TFLite frontend names ops.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from ..ir import Activation, DType, Graph, Op, OpKind, Tensor, fresh_name
from ..reference.float_ops import dequantize_problem, dequantize_values

__all__ = ["FLOAT_PIPELINE", "fold_batchnorm", "fold_dequantize", "fold_relu"]

_WEIGHTED = (OpKind.CONV2D, OpKind.DEPTHWISE_CONV2D, OpKind.FULLY_CONNECTED)
# The weights' output-channel axis: OHWI conv, 1HWC depthwise, [out, in] fully connected.
_OUT_AXIS = {OpKind.CONV2D: 0, OpKind.DEPTHWISE_CONV2D: 3, OpKind.FULLY_CONNECTED: 0}
# Producers whose attrs carry a fused activation that TFLite's float and int8 kernels apply. CONCAT has the field
# too, but TFLite's CONCATENATION refuses any activation but NONE (and so does mcuq's lowering): not listed.
_FUSES = (
    *_WEIGHTED,
    OpKind.ADD,
    OpKind.SUB,
    OpKind.MUL,
    OpKind.AVG_POOL2D,
    OpKind.MAX_POOL2D,
)
# (fused activation already there, standalone op) -> the one fused activation computing both; absent: no such.
_RELU_AFTER: dict[tuple[Activation, OpKind], Activation] = {
    (Activation.NONE, OpKind.RELU): Activation.RELU,
    (Activation.NONE, OpKind.RELU6): Activation.RELU6,
    (Activation.RELU, OpKind.RELU): Activation.RELU,
    (Activation.RELU, OpKind.RELU6): Activation.RELU6,
    (Activation.RELU6, OpKind.RELU): Activation.RELU6,
    (Activation.RELU6, OpKind.RELU6): Activation.RELU6,
}


@dataclass
class _Edit:
    """A graph under rewrite: the ops kept so far, tensors by name, the tensors whose data or role changed (their
    ``tflite_index`` meta no longer describes them) and constants a fold stopped reading (dropped at the end
    if nothing else reads them)."""

    g: Graph
    ops: list[Op] = field(default_factory=list)
    tensors: dict[str, Tensor] = field(default_factory=dict)
    stale: set[str] = field(default_factory=set)
    maybe_unused: set[str] = field(default_factory=set)

    def producer_at(self, name: str) -> int | None:
        """Index in ``ops`` of the kept op that writes ``name``."""
        return next((i for i in range(len(self.ops) - 1, -1, -1) if name in self.ops[i].outputs), None)

    def graph(self) -> Graph:
        read = {n for op in self.ops for n in op.inputs} | set(self.g.inputs) | set(self.g.outputs)
        for name in self.maybe_unused - read:
            self.tensors.pop(name, None)
            self.stale.add(name)
        meta = {k: v for k, v in self.g.meta.items() if not (k.startswith("tflite_index:") and k[13:] in self.stale)}
        return replace(self.g, tensors=self.tensors, ops=tuple(self.ops), meta=meta)


Rule = Callable[[_Edit, Op], bool]  # folds ``op`` into ``edit`` (True) or leaves it to be kept (False)


def _run(g: Graph, rule: Rule) -> Graph:
    """Walk ``g``'s ops in order, letting ``rule`` fold each into the ops kept so far; ``g`` itself when none."""
    edit = _Edit(g, tensors=dict(g.tensors))
    changed = False
    for op in g.ops:
        if rule(edit, op):
            changed = True
        else:
            edit.ops.append(op)
    return edit.graph() if changed else g


def _uses(g: Graph) -> dict[str, int]:
    """How many op inputs read each tensor (an op reading a tensor twice counts twice)."""
    n: dict[str, int] = {}
    for op in g.ops:
        for t in op.inputs:
            if t:
                n[t] = n.get(t, 0) + 1
    return n


def _float_out(g: Graph, name: str) -> bool:
    """``name`` is an unquantized float32 activation."""
    t = g.tensors[name]
    return t.dtype is DType.FLOAT32 and t.qparams is None and not t.is_const


def _sole_private_reader(g: Graph, uses: dict[str, int], name: str) -> bool:
    """Exactly one op input reads ``name`` and the graph does not expose it: folding may remove it."""
    return uses.get(name, 0) == 1 and name not in g.outputs and name not in g.inputs


def _activation(op: Op) -> Activation | None:
    """The op's fused activation, None for ops without the field."""
    return getattr(op.attrs, "activation", None)


def _const(data: np.ndarray, name: str) -> Tensor:
    arr = np.ascontiguousarray(data, dtype=np.float32)
    arr.flags.writeable = False
    return Tensor(name, arr.shape, DType.FLOAT32, None, arr)


def _absorb(edit: _Edit, at: int, op: Op, absorbed: Op, **changes: object) -> None:
    """Replace the kept op at ``at`` by ``op`` writing ``absorbed``'s output (its activation set by the caller
    in ``changes``), drop the tensor between them."""
    old_out, new_out = op.outputs[0], absorbed.outputs[0]
    name = new_out if op.name == old_out else op.name
    edit.ops[at] = replace(op, name=name, outputs=(new_out,), **changes)
    del edit.tensors[old_out]
    edit.stale.add(old_out)


# -- DEQUANTIZE of constants ----------------------------------------------------------------------------------


def fold_dequantize(g: Graph) -> Graph:
    """Each DEQUANTIZE of a constant (float16, or int8/uint8/int16/int4 with quantization parameters, per-channel
    included) becomes a float32 constant named as the op's output; readers are unchanged. A DEQUANTIZE of an
    activation, of a constant DEQUANTIZE cannot read, or whose output is a graph output stays."""

    def rule(edit: _Edit, op: Op) -> bool:
        if op.kind is not OpKind.DEQUANTIZE or len(op.inputs) != 1 or len(op.outputs) != 1:
            return False
        src, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
        if not src.is_const or dequantize_problem(src) is not None or out.name in g.outputs:
            return False
        if out.dtype is not DType.FLOAT32 or out.shape != src.shape:
            return False
        assert src.data is not None
        edit.tensors[out.name] = _const(dequantize_values(src, src.data), out.name)
        edit.stale.add(out.name)
        edit.maybe_unused.update((src.name, out.name))  # the source once no reader is left; the result if unread
        return True

    return _run(g, rule)


# -- batch-norm (MUL / ADD / SUB by a per-channel constant) into weights and bias ------------------------------


def _per_channel(g: Graph, name: str, y: Tensor) -> np.ndarray | None:
    """The finite float32 constant ``name`` as one value per channel of ``y`` (its last dimension), when it
    broadcasts that way onto ``y`` without changing ``y``'s shape: a scalar, (C,), (1, C), (1, 1, 1, C), or any
    of those with a 1 for C. None otherwise."""
    t = g.tensors[name]
    if not t.is_const or t.dtype is not DType.FLOAT32 or t.qparams is not None or not y.shape:
        return None
    assert t.data is not None
    channels = y.shape[-1]
    if (
        len(t.shape) > len(y.shape)
        or any(d != 1 for d in t.shape[:-1])
        or (t.shape and t.shape[-1] not in (1, channels))
    ):
        return None
    data = np.asarray(t.data, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(data)):
        return None
    return np.broadcast_to(data, (channels,))


def _affine(g: Graph, op: Op, y: str) -> tuple[np.ndarray, np.ndarray] | None:
    """``op`` (reading ``y`` once) as ``a * y + d`` per channel of ``y``, or None when it is not one."""
    if op.kind not in (OpKind.MUL, OpKind.ADD, OpKind.SUB) or len(op.inputs) != 2 or op.inputs.count(y) != 1:
        return None
    first = op.inputs[0] == y
    other = op.inputs[1] if first else op.inputs[0]
    out = g.tensors[op.outputs[0]]
    if out.shape != g.tensors[y].shape or not _float_out(g, out.name):
        return None
    c = _per_channel(g, other, g.tensors[y])
    if c is None:
        return None
    ones, zeros = np.ones_like(c), np.zeros_like(c)
    if op.kind is OpKind.MUL:
        return c, zeros
    if op.kind is OpKind.ADD:
        return ones, c
    return (ones, -c) if first else (-ones, c)  # y - c, or c - y


def _weights_and_bias(tensors: dict[str, Tensor], op: Op) -> tuple[Tensor, Tensor | None] | None:
    """The float32 constant weights and bias (None if absent) of a weighted op, or None if either is not one."""
    w = tensors[op.inputs[1]] if len(op.inputs) > 1 and op.inputs[1] else None
    b = tensors[op.inputs[2]] if len(op.inputs) > 2 and op.inputs[2] else None
    for t in (w, b):
        if t is not None and (not t.is_const or t.dtype is not DType.FLOAT32 or t.qparams is not None):
            return None
    return (w, b) if w is not None else None


def _scaled(edit: _Edit, op: Op, a: np.ndarray, d: np.ndarray, uses: dict[str, int]) -> tuple[str, str] | None:
    """New (weights, bias) names in ``edit.tensors`` for ``a * op(x) + d``; None when the weights' channel
    count does not match ``a``. A tensor only ``op`` reads is replaced under its name; one shared gets a copy."""
    found = _weights_and_bias(edit.tensors, op)
    if found is None:
        return None
    w, b = found
    axis = _OUT_AXIS[op.kind]
    if len(w.shape) <= axis or w.shape[axis] != a.size:
        return None
    shape = [1] * len(w.shape)
    shape[axis] = a.size
    assert w.data is not None
    new_w = np.asarray(w.data, dtype=np.float64) * a.reshape(shape)
    old_b = np.zeros(a.size) if b is None else np.asarray(b.data, dtype=np.float64).reshape(-1)
    if old_b.size != a.size:
        return None
    new_b = old_b * a + d
    names = []
    for old, data, suffix in ((w, new_w, "weights"), (b, new_b, "bias")):
        shared = old is not None and uses.get(old.name, 0) > 1
        name = (
            old.name
            if old is not None and not shared
            else fresh_name(f"{op.name}/folded_{suffix}", edit.tensors, edit.g.tensors)
        )
        edit.tensors[name] = _const(data.reshape(old.shape if old is not None else (a.size,)), name)
        edit.stale.add(name)
        names.append(name)
    return names[0], names[1]


def fold_batchnorm(g: Graph) -> Graph:
    """A MUL by, or an ADD of, or a SUB of (either operand order) a per-output-channel constant after a CONV2D,
    DEPTHWISE_CONV2D or FULLY_CONNECTED folds into that op's weights and bias (a bias is made if absent) when the
    op's fused activation is NONE and its output is read by that one op only and is no graph output. Chains
    fold one after another (MUL then ADD: a batch-norm); the folded op takes the last one's activation and
    output. Folding computes in float64 and rounds the new weights and bias to float32 once."""
    uses = _uses(g)

    def rule(edit: _Edit, op: Op) -> bool:
        if op.kind not in (OpKind.MUL, OpKind.ADD, OpKind.SUB):
            return False
        for y in dict.fromkeys(op.inputs):
            at = edit.producer_at(y) if y else None
            if at is None:
                continue
            p = edit.ops[at]
            if p.kind not in _WEIGHTED or _activation(p) is not Activation.NONE:
                continue
            if not _sole_private_reader(g, uses, y) or not _float_out(g, y):
                continue
            ab = _affine(g, op, y)
            if ab is None:
                continue
            names = _scaled(edit, p, *ab, uses)
            if names is None:
                continue
            others = [n for n in op.inputs if n != y]
            inputs = (p.inputs[0], *names)
            _absorb(edit, at, p, op, inputs=inputs, attrs=replace(p.attrs, activation=_activation(op)))
            edit.maybe_unused.update(n for n in (*p.inputs[1:], *others) if n)
            return True
        return False

    return _run(g, rule)


# -- standalone RELU / RELU6 into the producer's fused activation -------------------------------------------


def fold_relu(g: Graph) -> Graph:
    """A RELU or RELU6 whose input comes from an op with a fused activation (conv, depthwise, fully connected,
    ADD, SUB, MUL, pools) and is read by that RELU alone and is no graph output becomes that op's fused
    activation, when one activation computes both (NONE or RELU then RELU: RELU; any RELU/RELU6 pair with a
    RELU6: RELU6). The producer then writes the RELU's output tensor."""
    uses = _uses(g)

    def rule(edit: _Edit, op: Op) -> bool:
        if op.kind not in (OpKind.RELU, OpKind.RELU6) or len(op.inputs) != 1 or len(op.outputs) != 1:
            return False
        x = op.inputs[0]
        at = edit.producer_at(x)
        if at is None or not _sole_private_reader(g, uses, x) or not _float_out(g, x):
            return False
        if not _float_out(g, op.outputs[0]) or g.tensors[op.outputs[0]].shape != g.tensors[x].shape:
            return False
        p = edit.ops[at]
        if p.kind not in _FUSES or len(p.outputs) != 1:
            return False
        act = _RELU_AFTER.get((_activation(p), op.kind))
        if act is None:
            return False
        _absorb(edit, at, p, op, attrs=replace(p.attrs, activation=act))
        return True

    return _run(g, rule)


FLOAT_PIPELINE: tuple[Callable[[Graph], Graph], ...] = (fold_dequantize, fold_batchnorm, fold_relu)
