"""Step 2 of calibration (``calibrator.Calibrator.build``): which integer type every activation has, which tensors
share one quantization, which are fixed by TFLite, and the candidate ranges of each group (one per calibration
method). ``RangePlan`` is made once per precision; the chosen (scale, zero point, method) of each group is filled
in by step 3 as the integer graph is built."""

from __future__ import annotations

from ..errors import ModelError
from ..ir import DType, Graph, Op, OpKind
from .observers import RANGE_METHODS, TensorStats, choose_qparams
from .precision import LayerPrecision
from .values import symmetric16_scale

CALIBRATION_METHODS = ("minmax", "percentile", "mse", "kl")  # and "auto": all of them, chosen per tensor
# TFLite's fixed output quantization (scale, zero point) for int8.
FIXED_OUTPUT = {
    OpKind.SOFTMAX: (1.0 / 256.0, -128),
    OpKind.SIGMOID: (1.0 / 256.0, -128),
    OpKind.TANH: (1.0 / 128.0, 0),
}
# ... and for int16 (TFLite's 16x8 spec: softmax, logistic and tanh Prepare in activations.cc).
FIXED_OUTPUT16 = {kind: (1.0 / 32768.0, 0) for kind in FIXED_OUTPUT}
# Ops whose int8 kernels do not requantize: the output shares the input's quantization.
PASS_THROUGH = {OpKind.MAX_POOL2D, OpKind.AVG_POOL2D, OpKind.RESHAPE, OpKind.COPY, OpKind.PAD, OpKind.TRANSPOSE}
WEIGHTED = {OpKind.CONV2D, OpKind.DEPTHWISE_CONV2D, OpKind.FULLY_CONNECTED}


class Groups:
    """Union-find over tensor names: tensors that must share one quantization."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, a: str) -> str:
        self.parent.setdefault(a, a)
        while self.parent[a] != a:
            self.parent[a] = self.parent[self.parent[a]]
            a = self.parent[a]
        return a

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)  # deterministic representative


def qparams(dtype: DType, lo: float, hi: float) -> tuple[float, int]:
    """(scale, zero point) of the range [lo, hi]: int16 symmetric, int8 asymmetric."""
    if dtype is DType.INT16:
        return symmetric16_scale(lo, hi), 0
    return choose_qparams(lo, hi)


class RangePlan:
    """Types, groups and candidate ranges for one precision per layer. ``ranges`` caches (method, tensor) ->
    range across plans (it depends on the statistics only)."""

    def __init__(
        self,
        g: Graph,
        precision: dict[str, LayerPrecision],
        io16: bool,
        stats: dict[str, TensorStats],
        method: str,
        ranges: dict[tuple[str, str], tuple[float, float]],
        given: dict[str, tuple[float, int]] | None = None,
    ) -> None:
        self.g, self.precision, self.io16 = g, precision, io16
        self.stats, self.method, self.ranges = stats, method, ranges
        # Fixed quantization (``fixed.quantize_fixed``): every activation's (scale, zero point) is given; tensors
        # share a group only where they are given the same, and nothing is fixed by TFLite's spec here (the
        # calibrator requantizes after an op whose own output quantization differs from the given one).
        self.given = given
        self._plan_dtypes()
        self._plan_groups()
        self._choose_ranges()

    def _plan_dtypes(self) -> None:
        """The integer type of every activation: a layer's output has its precision's type; any other op computes in
        the type of its inputs (int16 when they differ: the narrower ones are requantized to it by a QUANTIZE). A
        model input is int16 in uniform 16x8 (``io16``), or when every op reading it is an int16 layer (TFLite
        2.14's QUANTIZE has no int8 -> int16: a model whose int16 layers start at its input stays checkable by the
        oracle); a model output has the type of the op computing it."""
        g = self.g
        readers: dict[str, list[Op]] = {}
        for op in g.ops:
            for x in op.inputs:
                readers.setdefault(x, []).append(op)

        def int16_layer(op: Op) -> bool:
            return op.kind in WEIGHTED and self.precision.get(op.name, LayerPrecision()).activations == "int16"

        self.dt: dict[str, DType] = {}
        for n in g.inputs:
            wide = self.io16 or (bool(readers.get(n)) and all(int16_layer(op) for op in readers[n]))
            self.dt[n] = DType.INT16 if wide else DType.INT8
        for op in g.ops:
            if op.kind in WEIGHTED:
                d = self.precision.get(op.name, LayerPrecision()).act_dtype
            else:
                ins = [self.dt[x] for x in op.inputs if x and not g.tensors[x].is_const]
                d = DType.INT16 if DType.INT16 in ins else DType.INT8
            self.dt[op.outputs[0]] = d

    def _plan_groups(self) -> None:
        """Which tensors share quantization, which are fixed, and which concat inputs need a requantize first."""
        g = self.g
        self.groups = Groups()
        self.fixed: dict[str, tuple[float, int]] = {}
        for name in g.inputs:
            self.groups.find(name)
        for op in g.ops:
            out = op.outputs[0]
            self.groups.find(out)
            if self.given is not None:
                if op.kind in PASS_THROUGH and self.given.get(op.inputs[0]) == self.given[out]:
                    self.groups.union(op.inputs[0], out)
            elif op.kind in FIXED_OUTPUT:
                self.fixed[out] = (FIXED_OUTPUT16 if self.dt[out] is DType.INT16 else FIXED_OUTPUT)[op.kind]
            elif op.kind in PASS_THROUGH:
                self.groups.union(op.inputs[0], out)
        self.requant: set[tuple[str, str]] = set()  # (concat op name, input) pairs that get a QUANTIZE first
        for op in g.ops:
            if op.kind is not OpKind.CONCAT:
                continue
            for x in op.inputs:
                if (
                    self._group_fixed(x) is not None
                    or g.tensors[x].is_const
                    or self.dt[x] is not self.dt[op.outputs[0]]
                    or (self.given is not None and self.given[x] != self.given[op.outputs[0]])
                ):
                    self.requant.add((op.name, x))
                else:
                    self.groups.union(x, op.outputs[0])
        self.group_fixed: dict[str, tuple[float, int]] = {}
        for name, fq in self.fixed.items():
            root = self.groups.find(name)
            prev = self.group_fixed.setdefault(root, fq)
            if prev != fq:  # two different fixed outputs tied through pass-through ops cannot happen: say so
                raise ModelError(g.source, f"tensor '{name}' must share quantization with a differently fixed tensor")

    def _group_fixed(self, name: str) -> tuple[float, int] | None:
        root = self.groups.find(name)
        for member, fq in self.fixed.items():
            if self.groups.find(member) == root:
                return fq
        return None

    def _members(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for name in [*self.g.inputs, *(op.outputs[0] for op in self.g.ops)]:
            out.setdefault(self.groups.find(name), []).append(name)
        return out

    def range(self, method: str, name: str) -> tuple[float, float]:
        key = (method, name)
        if key not in self.ranges:
            self.ranges[key] = RANGE_METHODS[method](self.stats[name])
        return self.ranges[key]

    def methods(self, dtype: DType) -> list[str]:
        """int8: the chosen method (all for "auto"); int16: min/max (the 16x8 grid is fine enough not to clip)."""
        if dtype is DType.INT16:
            return ["minmax"]
        return list(CALIBRATION_METHODS) if self.method == "auto" else [self.method]

    def _choose_ranges(self) -> None:
        """Per group: the candidate ranges (one per method; one when a method is given) as the union over members."""
        self.candidates: dict[str, dict[str, tuple[float, float]]] = {}
        for root, members in self._members().items():
            dtype = self.dt[members[0]]
            cands: dict[str, tuple[float, float]] = {}
            for m in self.methods(dtype):
                ranges = [self.range(m, t) for t in members]
                cands[m] = (min(lo for lo, _ in ranges), max(hi for _, hi in ranges))
            self.candidates[root] = cands
        self.chosen: dict[str, tuple[float, int, str]] = {}  # group root -> (scale, zero point, method)
        if self.given is not None:
            for root, members in self._members().items():
                self.chosen[root] = (*self.given[members[0]], "given")
