"""The calibrator of post-training quantization (``mcuq.quant.ptq.quantize`` calls it): a float graph and N samples
in, the int8 graph and the per-layer report out. ``docs/quantization.md`` describes the scheme and the three steps:
observe every activation on all samples; choose ranges per group of tensors that share quantization; build the int8
graph op by op beside the float one, with bias correction and, for "auto", the range with the least error at each
layer's output."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np

from ..errors import McuqError, ModelError
from ..ir import Activation, ConcatAttrs, DType, Graph, NoAttrs, Op, OpKind, QParams, Tensor, fresh_name
from .batch import BatchRunner, last_reads, peak_live_bytes
from .observers import RANGE_METHODS, TensorStats, choose_qparams, clipped_fraction, sqnr_db
from .report import LayerReport, QuantReport
from .values import (
    INT32_MAX,
    affine_quantize,
    dequantize,
    expand,
    float_data,
    mse,
    quantize_symmetric,
    readonly,
    round_half_away,
    weight_scales,
)

CALIBRATION_METHODS = ("minmax", "percentile", "mse", "kl")  # and "auto": all of them, chosen per tensor
WORK_MEMORY_ENV = "MCUQ_CALIB_MEMORY"
DEFAULT_WORK_MEMORY = 4 << 30  # bytes of activations held at once during calibration
# Working memory per byte of live float32 activations: the float model's values, the int8 ones, the float64
# temporaries of the float kernels and the candidates of one op (measured peaks: 8-15x on VWW, ResNet, a CNN).
MEMORY_FACTOR = 16
_UNITS = {"": 1, "k": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mib": 1 << 20, "g": 1 << 30, "gib": 1 << 30}


def work_memory_limit() -> int:
    """``$MCUQ_CALIB_MEMORY`` in bytes (a number with an optional K/KiB, M/MiB or G/GiB suffix), else 4 GiB."""
    text = os.environ.get(WORK_MEMORY_ENV, "").strip()
    if not text:
        return DEFAULT_WORK_MEMORY
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([a-zA-Z]*)", text)
    unit = _UNITS.get(m.group(2).lower()) if m else None
    if m is None or unit is None:
        raise McuqError(f"${WORK_MEMORY_ENV}={text!r}: give a size in bytes, such as 8GiB, 512MiB or 1000000")
    return int(float(m.group(1)) * unit)


# TFLite's fixed output quantization (scale, zero point) for int8.
FIXED_OUTPUT = {
    OpKind.SOFTMAX: (1.0 / 256.0, -128),
    OpKind.SIGMOID: (1.0 / 256.0, -128),
    OpKind.TANH: (1.0 / 128.0, 0),
}
# Ops whose int8 kernels do not requantize: the output shares the input's quantization.
PASS_THROUGH = {OpKind.MAX_POOL2D, OpKind.AVG_POOL2D, OpKind.RESHAPE, OpKind.COPY, OpKind.PAD, OpKind.TRANSPOSE}
WEIGHTED = {OpKind.CONV2D, OpKind.DEPTHWISE_CONV2D, OpKind.FULLY_CONNECTED}
# The axis of the output channel in each weight layout (OHWI, 1HWC, [out, in]).
CHANNEL_AXIS = {OpKind.CONV2D: 0, OpKind.DEPTHWISE_CONV2D: 3, OpKind.FULLY_CONNECTED: 0}
WIDEN_TRIES = 8  # a range the kernel cannot rescale to is widened 4x at a time, this often at most


@dataclass(frozen=True)
class Options:
    method: str
    per_channel_fc: bool
    bias_correction: bool


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


class Calibrator:
    def __init__(self, g: Graph, arrays: list[np.ndarray], options: Options) -> None:
        self.g = g
        self.opts = options
        self.n = int(arrays[0].shape[0])
        self.batch = BatchRunner(g, self.n)
        # (N, *S) per input; batched, the sample axis replaces the leading 1 of S
        self.inputs = {
            name: np.asarray(a, dtype=np.float32).reshape(
                self.batch.shape(g.tensors[name]) if self.batch.batched else (self.n, *g.tensors[name].shape)
            )
            for name, a in zip(g.inputs, arrays)
        }
        self.last_read = last_reads(g)
        self._check_memory()

    # ------------------------------------------------------------------------------------------------ driver
    def run(self) -> tuple[Graph, QuantReport]:
        from ..progress import progress

        steps = progress(range(2 * len(self.g.ops) + 2), total=2 * len(self.g.ops) + 2, desc="calibrating", unit="op")
        tick = iter(steps)
        # A float model that overflows is refused by name (_check_finite); numpy's own warnings would only add lines.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            stats = self._observe(tick)
            self._plan_groups()
            self._choose_ranges(stats)
            graph, layers, outputs = self._build(tick)
        for _ in tick:  # finish the bar
            pass
        report = QuantReport.build(layers, outputs, method=self.opts.method, bias_correction=self.opts.bias_correction,
                                   samples=self.n)  # fmt: skip
        return graph, report

    def _check_memory(self) -> None:
        per_sample = peak_live_bytes(self.g, self.last_read)
        need = per_sample * self.n * MEMORY_FACTOR
        limit = work_memory_limit()
        if need > limit:
            raise McuqError(
                f"calibration with {self.n} samples needs about {need / 2**30:.1f} GiB of working memory "
                f"({per_sample:,} bytes of live float32 activations per sample); give fewer samples or raise "
                f"${WORK_MEMORY_ENV} (now {limit:,} bytes)"
            )

    # ------------------------------------------------------------------------------------ 1. float statistics
    def _observe(self, tick: Iterable) -> dict[str, TensorStats]:
        stats: dict[str, TensorStats] = {}
        env: dict[str, np.ndarray] = dict(self.inputs)
        for name in self.g.inputs:
            stats[name] = TensorStats.of(env[name], name=name)
        next(tick, None)
        for i, op in enumerate(self.g.ops):
            out = self.batch.float_op(op, self.g.tensors, env)
            _check_finite(self.g, op, out)
            env[op.outputs[0]] = out
            stats[op.outputs[0]] = TensorStats.of(out, name=op.outputs[0])
            self._free(env, op, i)
            next(tick, None)
        return stats

    def _free(self, env: dict[str, np.ndarray], op: Op, i: int) -> None:
        for name in op.inputs:
            if name and self.last_read.get(name) == i and name not in self.g.outputs:
                env.pop(name, None)

    # ------------------------------------------------------------------------------------ 2. groups and ranges
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
            if op.kind in FIXED_OUTPUT:
                self.fixed[out] = FIXED_OUTPUT[op.kind]
            elif op.kind in PASS_THROUGH:
                self.groups.union(op.inputs[0], out)
        self.requant: set[tuple[str, str]] = set()  # (concat op name, input) pairs that get a QUANTIZE first
        for op in g.ops:
            if op.kind is not OpKind.CONCAT:
                continue
            for x in op.inputs:
                if self._group_fixed(x) is not None or g.tensors[x].is_const:
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

    def _choose_ranges(self, stats: dict[str, TensorStats]) -> None:
        """Per group: the candidate ranges (one per method; one when a method is given) as the union over members."""
        methods = list(CALIBRATION_METHODS) if self.opts.method == "auto" else [self.opts.method]
        self.candidates: dict[str, dict[str, tuple[float, float]]] = {}
        for root, members in self._members().items():
            cands: dict[str, tuple[float, float]] = {}
            for m in methods:
                ranges = [RANGE_METHODS[m](stats[t]) for t in members]
                cands[m] = (min(lo for lo, _ in ranges), max(hi for _, hi in ranges))
            self.candidates[root] = cands
        self.chosen: dict[str, tuple[float, int, str]] = {}  # group root -> (scale, zero point, method)

    # ------------------------------------------------------------------------------------ 3. the int8 graph
    def _build(self, tick: Iterable):
        g = self.g
        qt: dict[str, Tensor] = {}  # the int8 graph's tensors, unbatched
        ops: list[Op] = []
        fenv: dict[str, np.ndarray] = dict(self.inputs)  # float model values
        qenv: dict[str, np.ndarray] = {}  # int8 values
        layers: list[LayerReport] = []
        for name in g.inputs:
            t = g.tensors[name]
            s, z, how = self._input_qparams(name, fenv[name])
            qt[name] = Tensor(name, t.shape, DType.INT8, QParams((s,), (z,)))
            qenv[name] = affine_quantize(fenv[name], s, z)
            layers.append(self._layer_report(None, name, s, z, how, fenv[name], qenv[name]))
        next(tick, None)
        for i, op in enumerate(g.ops):
            out = op.outputs[0]
            fout = self.batch.float_op(op, g.tensors, fenv)
            fenv[out] = fout
            op, pre = self._requantize_concat_inputs(op, qt, qenv)
            ops.extend(pre)
            op = self._quantize_constants(op, qt, qenv)
            s, z, how, q = self._output(op, qt, qenv, fout)
            qt[out] = Tensor(out, g.tensors[out].shape, DType.INT8, QParams((s,), (z,)))
            qenv[out] = q
            ops.append(op)
            layers.append(self._layer_report(op, out, s, z, how, fout, q))
            for env in (fenv, qenv):
                self._free(env, op, i)
            next(tick, None)
        tensors = {name: qt[name] for name in _tensor_order(g, ops) if name in qt}
        graph = Graph(g.name, tensors, tuple(ops), g.inputs, g.outputs, source=g.source, meta=dict(g.meta))
        outputs = [(name, sqnr_db(fenv[name], _deq(qenv[name], qt[name]))) for name in g.outputs]
        return graph, layers, outputs

    def _input_qparams(self, name: str, values: np.ndarray) -> tuple[float, int, str]:
        root = self.groups.find(name)
        if root not in self.chosen:

            def quantized(lo: float, hi: float) -> tuple[float, int, np.ndarray]:
                s, z = choose_qparams(lo, hi)
                return s, z, affine_quantize(values, s, z)

            self._choose(root, values, quantized)
        return self.chosen[root]

    def _choose(self, root: str, reference: np.ndarray, quantized) -> np.ndarray:
        """Among the group's candidate ranges, the one whose int8 values (``quantized(lo, hi) -> (scale, zero point,
        values)``) are closest to ``reference`` in squared error; recorded for the group, its values returned."""
        best = None
        for m, (lo, hi) in self.candidates[root].items():
            s, z, q = quantized(lo, hi)
            err = mse(reference, dequantize(q, s, z))
            if best is None or err < best[0]:
                best = (err, s, z, m, q)
        assert best is not None
        _, s, z, m, q = best
        self.chosen[root] = (s, z, m)
        return q

    def _output(self, op: Op, qt: dict[str, Tensor], qenv, fout: np.ndarray) -> tuple[float, int, str, np.ndarray]:
        """The output's quantization and the op's int8 result under it."""
        out = op.outputs[0]
        root = self.groups.find(out)
        fixed = self.group_fixed.get(root)
        if fixed is not None:
            s, z = fixed
            return s, z, "fixed", self._run(op, qt, qenv, s, z)
        if op.kind in PASS_THROUGH:
            src = qt[op.inputs[0]]
            s, z = src.scale, src.zero_point
            return s, z, f"as input '{op.inputs[0]}'", self._run(op, qt, qenv, s, z)
        if root in self.chosen:  # a concat output tied to inputs already quantized
            s, z, m = self.chosen[root]
            return s, z, m, self._run(op, qt, qenv, s, z)
        q = self._choose(root, fout, lambda lo, hi: self._run_widening(op, qt, qenv, lo, hi))
        s, z, m = self.chosen[root]
        return s, z, m, q

    def _run(self, op: Op, qt: dict[str, Tensor], qenv, s: float, z: int) -> np.ndarray:
        out = op.outputs[0]
        tensors = {**qt, out: Tensor(out, self.g.tensors[out].shape, DType.INT8, QParams((s,), (z,)))}
        return self.batch.int_op(op, tensors, qenv)

    def _run_widening(self, op: Op, qt, qenv, lo: float, hi: float) -> tuple[float, int, np.ndarray]:
        """Run with the range (lo, hi); a range the kernel cannot rescale to (a lowering error) is widened 4x at a
        time; the lowering's error is raised when no range within float32 works."""
        err: ModelError | None = None
        for _ in range(WIDEN_TRIES):
            try:
                s, z = choose_qparams(lo, hi)
            except ValueError:  # widened beyond what a float32 scale holds
                break
            try:
                return s, z, self._run(op, qt, qenv, s, z)
            except ModelError as e:
                err = e
                lo, hi = lo * 4.0, hi * 4.0 if hi > 0 or lo < 0 else 1.0
        if err is None:
            raise ModelError(self.g.source, f"{op.where}: its output range [{lo:g}, {hi:g}] has no int8 scale")
        raise err

    # ------------------------------------------------------------------------------------ constants
    def _requantize_concat_inputs(self, op: Op, qt: dict[str, Tensor], qenv) -> tuple[Op, list[Op]]:
        """Concat inputs with fixed quantization go through an int8 QUANTIZE to the concat's own."""
        if op.kind is not OpKind.CONCAT or not any((op.name, x) in self.requant for x in op.inputs):
            return op, []
        assert isinstance(op.attrs, ConcatAttrs)
        root = self.groups.find(op.outputs[0])
        if root not in self.chosen:
            lo, hi = next(iter(self.candidates[root].values()))
            s, z = choose_qparams(lo, hi)
            self.chosen[root] = (s, z, next(iter(self.candidates[root])))
        s, z, _ = self.chosen[root]
        new_inputs, pre = [], []
        for x in op.inputs:
            if (op.name, x) not in self.requant:
                new_inputs.append(x)
                continue
            src = self.g.tensors[x]
            if src.is_const:
                qt[x] = Tensor(x, src.shape, DType.INT8, QParams((s,), (z,)), affine_quantize(src.data, s, z))
                new_inputs.append(x)
                continue
            name = fresh_name(f"{x}/requantized", self.g.tensors, qt)
            qt[name] = Tensor(name, src.shape, DType.INT8, QParams((s,), (z,)))
            rq = Op(OpKind.QUANTIZE, name, (x,), (name,), NoAttrs(), op.index, "QUANTIZE")
            qenv[name] = self.batch.int_op(rq, qt, qenv)
            pre.append(rq)
            new_inputs.append(name)
        return replace(op, inputs=tuple(new_inputs)), pre

    def _quantize_constants(self, op: Op, qt: dict[str, Tensor], qenv) -> Op:
        """Weights, biases and constant operands of ``op`` as int8/int32 tensors in ``qt``."""
        g = self.g
        if op.kind in WEIGHTED:
            return self._quantize_weights(op, qt, qenv)
        for name in op.inputs:
            if name and name not in qt and g.tensors[name].is_const:
                data = float_data(g, g.tensors[name])
                lo, hi = float(min(data.min(initial=0.0), 0.0)), float(max(data.max(initial=0.0), 0.0))
                s, z = choose_qparams(lo, hi)
                qt[name] = Tensor(name, g.tensors[name].shape, DType.INT8, QParams((s,), (z,)),
                                  readonly(affine_quantize(data, s, z)))  # fmt: skip
        return op

    def _quantize_weights(self, op: Op, qt: dict[str, Tensor], qenv) -> Op:
        """Quantize ``op``'s weights and bias into ``qt``; returns the op (with a new bias input if it had none)."""
        g = self.g
        x_name, w_name = op.inputs[0], op.inputs[1]
        b_name = op.inputs[2] if len(op.inputs) > 2 else ""
        wt = g.tensors[w_name]
        w = float_data(g, wt).astype(np.float64)
        axis = CHANNEL_AXIS[op.kind]
        channels = wt.shape[axis]
        b = float_data(g, g.tensors[b_name]).astype(np.float64).reshape(-1) if b_name else np.zeros(channels)
        s_in = qt[x_name].scale
        per_channel = op.kind is not OpKind.FULLY_CONNECTED or self.opts.per_channel_fc
        s_w = weight_scales(w, axis, per_channel, b, s_in)
        wq = quantize_symmetric(w, s_w, axis)
        if self.opts.bias_correction:
            b = b - self._weight_error_shift(op, w, wq.astype(np.float64) * expand(s_w, axis, w.ndim), qt, qenv)
            s_w = weight_scales(w, axis, per_channel, b, s_in)  # a corrected bias may need more room
            wq = quantize_symmetric(w, s_w, axis)
        qparams = QParams(tuple(float(v) for v in s_w), (0,) * len(s_w), axis if per_channel else 0)
        wq_name = _place(qt, Tensor(w_name, wt.shape, DType.INT8, qparams, readonly(wq)), op, g.tensors)
        bias_scales = (np.float32(s_in) * s_w.astype(np.float32)).astype(np.float64)  # one, or one per channel
        bq = np.clip(round_half_away(b / bias_scales), -INT32_MAX, INT32_MAX).astype(np.int32)
        bqp = QParams(tuple(float(v) for v in bias_scales), (0,) * len(bias_scales), 0)
        bname = b_name or fresh_name(f"{op.name}/bias", g.tensors, qt)
        bq_name = _place(qt, Tensor(bname, (channels,), DType.INT32, bqp, readonly(bq)), op, g.tensors)
        return replace(op, inputs=(x_name, wq_name, bq_name))

    def _weight_error_shift(self, op: Op, w: np.ndarray, w_deq: np.ndarray, qt, qenv) -> np.ndarray:
        """Per output channel, the mean over the calibration data (samples and positions) of ``(W_q - W) x``, with
        ``x`` the op's actual quantized input, dequantized: the bias shift that weight rounding causes."""
        x_name, w_name = op.inputs[0], op.inputs[1]
        xt = qt[x_name]
        x = _deq(qenv[x_name], xt)
        delta = Tensor(w_name, w.shape, DType.FLOAT32, None, (w_deq - w).astype(np.float32))
        tensors = {
            x_name: replace(self.g.tensors[x_name], dtype=DType.FLOAT32, qparams=None),
            w_name: delta,
            op.outputs[0]: self.g.tensors[op.outputs[0]],
        }
        probe = replace(op, inputs=(x_name, w_name), attrs=replace(op.attrs, activation=Activation.NONE))
        y = self.batch.float_op(probe, tensors, {x_name: x})
        return y.reshape(-1, y.shape[-1]).astype(np.float64).mean(axis=0)

    # ------------------------------------------------------------------------------------ report
    def _layer_report(self, op: Op | None, name: str, s, z, how, fvals, qvals) -> LayerReport:
        return LayerReport(
            tensor=name,
            op=op.where if op is not None else "input",
            kind=op.type_name if op is not None else "INPUT",
            scale=float(s),
            zero_point=int(z),
            method=how,
            clipped=clipped_fraction(fvals, s, z),
            sqnr_db=sqnr_db(fvals, dequantize(qvals, s, z)),
        )


def _check_finite(g: Graph, op: Op, out: np.ndarray) -> None:
    if not np.isfinite(out).all():
        raise ModelError(
            g.source,
            f"{op.where}: the float model computes inf or NaN on the calibration data; check the data's scale",
        )


def _place(qt: dict[str, Tensor], t: Tensor, op: Op, taken: dict[str, Tensor]) -> str:
    """Put the constant ``t`` into ``qt`` under its name, or, when another op already quantized a constant of that
    name differently (a weight or bias shared by two layers), under a new name for ``op``; returns the name."""
    old = qt.get(t.name)
    if old is None:
        qt[t.name] = t
        return t.name
    if old.qparams == t.qparams and old.dtype is t.dtype and np.array_equal(old.data, t.data):
        return t.name
    name = fresh_name(f"{t.name}/{op.name}", qt, taken)
    qt[name] = replace(t, name=name)
    return name


def _tensor_order(g: Graph, ops: list[Op]) -> list[str]:
    """Tensor names in a deterministic order: the float graph's, then new ones in op order."""
    names = list(g.tensors)
    seen = set(names)
    for op in ops:
        for n in (*op.inputs, *op.outputs):
            if n and n not in seen:
                seen.add(n)
                names.append(n)
    return names


def _deq(q: np.ndarray, t: Tensor) -> np.ndarray:
    return dequantize(q, t.scale, t.zero_point)
