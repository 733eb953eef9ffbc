"""The integer views of the float model's activations while calibration builds the integer graph (step 3 of
``calibrator.Calibrator.build``): each float tensor has its integer tensor in its planned type, and, where an op
computes in the other type (int8 <-> int16) or a concatenation needs its inputs in its own quantization, a QUANTIZE
op makes a further view. Each view is made once per tensor and type, and freed with the float tensor."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..ir import ConcatAttrs, DType, Graph, NoAttrs, Op, OpKind, QParams, Tensor, fresh_name
from .batch import BatchRunner
from .ranges import RangePlan, qparams
from .values import affine_quantize, dequantize, mse


class Views:
    """``names[(x, dtype)]``: the integer tensor that holds float tensor ``x`` as ``dtype``. ``qt`` (the integer
    graph's tensors) and ``qenv`` (their values on all samples) are the build's, filled in place."""

    def __init__(
        self, g: Graph, batch: BatchRunner, plan: RangePlan, qt: dict[str, Tensor], qenv: dict[str, np.ndarray]
    ) -> None:
        self.g, self.batch, self.plan, self.qt, self.qenv = g, batch, plan, qt, qenv
        self.names: dict[tuple[str, DType], str] = {}

    def free(self, name: str) -> None:
        """Forget every integer view of ``name`` and its values."""
        for d in (DType.INT8, DType.INT16):
            view = self.names.pop((name, d), None)
            if view is not None:
                self.qenv.pop(view, None)

    def convert_inputs(self, op: Op, fenv: dict[str, np.ndarray], ops: list[Op]) -> Op:
        """``op``'s activation inputs as the integer tensors of its own type: a QUANTIZE (appended to ``ops``) where
        an input has the other type (made once per tensor and type); inputs a concat requantized already are kept."""
        dt = self.plan.dt
        d = dt[op.outputs[0]]
        new = []
        for x in op.inputs:
            if not x or x not in dt or (op.name, x) in self.plan.requant:
                new.append(x)
                continue
            view = self.names.get((x, d))
            if view is None:
                view, conv = self._convert(x, d, op, fenv[x])
                ops.append(conv)
            new.append(view)
        return replace(op, inputs=tuple(new))

    def _convert(self, x: str, d: DType, op: Op, fvals: np.ndarray) -> tuple[str, Op]:
        """A QUANTIZE of tensor ``x`` to type ``d``: int16 symmetric over x's min/max, or int8 with the candidate
        range (of the calibration method) closest to the float values."""
        qt = self.qt
        src = self.names[(x, self.plan.dt[x])]
        name = fresh_name(f"{x}/{d.value}", self.g.tensors, qt)
        conv = Op(OpKind.QUANTIZE, name, (src,), (name,), NoAttrs(), op.index, "QUANTIZE")
        best = None
        for m in self.plan.methods(d):
            s, z = qparams(d, *self.plan.range(m, x))
            qt[name] = Tensor(name, self.g.tensors[x].shape, d, QParams((s,), (z,)))
            q = self.batch.int_op(conv, qt, self.qenv)
            err = mse(fvals, dequantize(q, s, z))
            if best is None or err < best[0]:
                best = (err, s, z, q)
        assert best is not None
        _, s, z, q = best
        qt[name] = Tensor(name, self.g.tensors[x].shape, d, QParams((s,), (z,)))
        self.qenv[name] = q
        self.names[(x, d)] = name
        return name, conv

    def requantize_concat_inputs(self, op: Op) -> tuple[Op, list[Op]]:
        """Concat inputs with fixed quantization (or of the other integer type) go through a QUANTIZE to the
        concat's own."""
        plan, qt = self.plan, self.qt
        if op.kind is not OpKind.CONCAT or not any((op.name, x) in plan.requant for x in op.inputs):
            return op, []
        assert isinstance(op.attrs, ConcatAttrs)
        root = plan.groups.find(op.outputs[0])
        d = plan.dt[op.outputs[0]]
        if root not in plan.chosen:
            m, (lo, hi) = next(iter(plan.candidates[root].items()))
            s, z = qparams(d, lo, hi)
            plan.chosen[root] = (s, z, m)
        s, z, _ = plan.chosen[root]
        new_inputs, pre = [], []
        for x in op.inputs:
            if (op.name, x) not in plan.requant:
                new_inputs.append(self.names.get((x, d), x))
                continue
            src = self.g.tensors[x]
            if src.is_const:
                qt[x] = Tensor(x, src.shape, d, QParams((s,), (z,)), affine_quantize(src.data, s, z, d))
                new_inputs.append(x)
                continue
            name = fresh_name(f"{x}/requantized", self.g.tensors, qt)
            qt[name] = Tensor(name, src.shape, d, QParams((s,), (z,)))
            rq = Op(OpKind.QUANTIZE, name, (self.names[(x, plan.dt[x])],), (name,), NoAttrs(), op.index, "QUANTIZE")
            self.qenv[name] = self.batch.int_op(rq, qt, self.qenv)
            pre.append(rq)
            new_inputs.append(name)
        return replace(op, inputs=tuple(new_inputs)), pre
