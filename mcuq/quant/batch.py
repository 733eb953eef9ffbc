"""Running one op of a graph on all N calibration samples at once, float or integer.

The quantizer works layer-major: each op runs once on the whole calibration set. Where the graph allows it (every
activation has a leading dimension of 1 that no op moves, reduces or pads), that is one call on a copy of the op's
tensors with batch N; otherwise the op runs sample by sample and the results are stacked. Float ops run through
``mcuq.reference.float_ops``; integer ops are lowered like for code generation and run by the numpy mirror of their
C kernel, so the quantizer sees the device's integers.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..errors import ModelError
from ..ir import Graph, Op, OpKind, Tensor
from ..lower import lower_op
from ..reference import run_layer
from ..reference.float_ops import FLOAT_OPS

__all__ = ["BatchRunner", "batchable", "last_reads", "peak_live_bytes"]


class BatchRunner:
    """Runs one op on all N samples: on a copy of the graph whose activations have batch N when the graph allows
    it (every activation has a leading dimension of 1 that no op moves or reduces), else sample by sample."""

    def __init__(self, g: Graph, n: int) -> None:
        self.g, self.n = g, n
        self.batched = n == 1 or batchable(g)

    def shape(self, t: Tensor) -> tuple[int, ...]:
        return t.shape if self.n == 1 or not self.batched else (self.n, *t.shape[1:])

    def with_batch(self, t: Tensor) -> Tensor:
        return t if t.is_const else replace(t, shape=self.shape(t))

    def graph_for(self, op: Op, tensors: dict[str, Tensor]) -> Graph:
        """A one-op graph with ``tensors`` (unbatched) shaped for this run."""
        names = [n for n in (*op.inputs, *op.outputs) if n]
        ts = {n: self.with_batch(tensors[n]) for n in names}
        ins = tuple(n for n in op.inputs if n and not ts[n].is_const)
        return Graph(self.g.name, ts, (op,), ins, op.outputs, source=self.g.source)

    def float_op(self, op: Op, tensors: dict[str, Tensor], env: dict[str, np.ndarray]) -> np.ndarray:
        """The op's float kernel on all samples. A kernel that fails on a malformed op (shapes that do not fit, which
        the float kernels do not all check) is a ModelError naming the op, not a traceback."""
        try:
            return self._float_op(op, tensors, env)
        except (ValueError, IndexError, TypeError, MemoryError) as e:
            what = "needs more memory than there is" if isinstance(e, MemoryError) else f"fails ({e})"
            raise ModelError(self.g.source, f"{op.where}: its float kernel {what}; check its tensor shapes") from None

    def _float_op(self, op: Op, tensors: dict[str, Tensor], env: dict[str, np.ndarray]) -> np.ndarray:
        fn = FLOAT_OPS[op.kind]
        if self.batched:
            g1 = self.graph_for(op, tensors)
            return fn(g1, op, [self._value(g1, n, env) for n in op.inputs])
        g1 = Graph(self.g.name, tensors, (op,), (), op.outputs, source=self.g.source)
        outs = [fn(g1, op, [self._value(g1, n, env, i) for n in op.inputs]) for i in range(self.n)]
        return np.stack(outs)

    def int_op(self, op: Op, tensors: dict[str, Tensor], env: dict[str, np.ndarray]) -> np.ndarray:
        """The op lowered with ``tensors``' quantization and run by its kernel's numpy mirror (ModelError from
        lowering propagates)."""
        g1 = (
            self.graph_for(op, tensors)
            if self.batched
            else Graph(self.g.name, tensors, (op,), (), op.outputs, source=self.g.source)
        )
        layer = lower_op(g1, op)
        shapes = [g1.tensors[o].shape for o in layer.outputs]

        def one(i: int | None) -> np.ndarray:
            args = [
                [self._value(g1, n, env, i, layer.consts) for n in a]
                if isinstance(a, tuple)
                else self._value(g1, a, env, i, layer.consts)
                for a in layer.inputs
            ]
            return np.asarray(run_layer(layer, args, shapes)[0]).reshape(shapes[0])

        if self.batched:
            return one(None)
        return np.stack([one(i) for i in range(self.n)])

    def _value(self, g1: Graph, name: str, env, i: int | None = None, consts=None) -> np.ndarray | None:
        if not name:
            return None
        if name in env:
            return env[name] if i is None else env[name][i]
        t = consts[name] if consts and name in consts else g1.tensors[name]
        assert t.data is not None, name
        return t.data


def batchable(g: Graph) -> bool:
    """Whether every op of ``g`` computes each sample apart when the leading 1 of its activations becomes N."""
    for t in g.tensors.values():
        if not t.is_const and (len(t.shape) < 2 or t.shape[0] != 1):
            return False
    for op in g.ops:
        a = op.attrs
        if op.kind is OpKind.MEAN and 0 in a.axes:
            return False
        if op.kind is OpKind.TRANSPOSE and a.perm[0] != 0:
            return False
        if op.kind is OpKind.CONCAT and (a.axis == 0 or any(g.tensors[n].is_const for n in op.inputs)):
            return False  # a constant input has batch 1
        if op.kind is OpKind.PAD and tuple(a.paddings[0]) != (0, 0):
            return False
        if op.kind is OpKind.FULLY_CONNECTED:
            w = g.tensors[op.inputs[1]]
            x = g.tensors[op.inputs[0]]
            if len(w.shape) != 2 or x.size % w.shape[1] != 0:
                return False
    return True


def last_reads(g: Graph) -> dict[str, int]:
    """For each activation, the index of the last op that reads it."""
    last: dict[str, int] = {}
    for i, op in enumerate(g.ops):
        for n in op.inputs:
            if n and not g.tensors[n].is_const:
                last[n] = i
    return last


def peak_live_bytes(g: Graph, last_read: dict[str, int]) -> int:
    """The largest sum of float32 activation bytes alive at one op, for one sample."""
    live = {n: g.tensors[n].size * 4 for n in g.inputs}
    peak = sum(live.values())
    for i, op in enumerate(g.ops):
        for o in op.outputs:
            live[o] = g.tensors[o].size * 4
        peak = max(peak, sum(live.values()))
        for n in op.inputs:
            if n in live and last_read.get(n) == i and n not in g.outputs:
                del live[n]
    return peak
