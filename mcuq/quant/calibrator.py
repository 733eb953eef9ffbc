"""The calibrator of post-training quantization (``mcuq.quant.ptq.quantize`` calls it): a float graph and N samples
in, the int8 graph and the per-layer report out. ``docs/quantization.md`` describes the scheme and the three steps:
observe every activation on all samples (here); choose ranges per group of tensors that share quantization
(``ranges.RangePlan``); build the int8 graph op by op beside the float one (here), with its constants quantized by
``constants.ConstantQuantizer`` (bias correction, low-bit rounding), int8 <-> int16 conversions made by
``convert.Views`` and, for "auto", the range with the least error at each layer's output."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np

from ..errors import McuqError, ModelError
from ..ir import DType, Graph, NoAttrs, Op, OpKind, QParams, Tensor, fresh_name
from .batch import BatchRunner, last_reads, peak_live_bytes
from .constants import ConstantQuantizer
from .convert import Views
from .observers import TensorStats, clipped_fraction, sqnr_db
from .precision import WEIGHT_DTYPE, LayerPrecision
from .ranges import CALIBRATION_METHODS, FIXED_OUTPUT, FIXED_OUTPUT16, PASS_THROUGH, WEIGHTED, RangePlan, qparams
from .report import LayerReport, QuantReport
from .values import affine_quantize, clipped_fraction16, dequantize, mse

__all__ = ["CALIBRATION_METHODS", "WEIGHTED", "WORK_MEMORY_ENV", "Calibrator", "Options", "work_memory_limit"]

WORK_MEMORY_ENV = "MCUQ_CALIB_MEMORY"
DEFAULT_WORK_MEMORY = 4 << 30  # bytes of activations held at once during calibration
# Working memory per byte of live float32 activations: the float model's values, the int8 ones, the float64
# temporaries of the float kernels and the candidates of one op (measured peaks: 8-15x on VWW, ResNet, a CNN).
MEMORY_FACTOR = 16
_UNITS = {"": 1, "k": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mib": 1 << 20, "g": 1 << 30, "gib": 1 << 30}
FLOAT_CACHE_SHARE = 4  # the float model's activations are kept between builds within 1/4 of the working memory
WIDEN_TRIES = 8  # a range the kernel cannot rescale to is widened 4x at a time, this often at most


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


@dataclass(frozen=True)
class Options:
    method: str
    per_channel_fc: bool
    bias_correction: bool
    # fixed quantization (``fixed.Overrides``): given activation parameters, weights and biases; None: calibrate
    overrides: object = None


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
        self.op_index = {op.name: i for i, op in enumerate(g.ops)}
        self.stats: dict[str, TensorStats] | None = None
        self._check_memory()

    # ------------------------------------------------------------------------------------------------ driver
    def run(self) -> tuple[Graph, QuantReport]:
        """All int8 weights and activations (the int8 quantizer's result)."""
        return self.build({}, "nearest")

    def prepare(self) -> None:
        """Step 1, once for any number of ``build`` calls: the float model's statistics (and, when they fit in
        memory, its activations)."""
        if self.stats is not None:
            return
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            self.stats = self._observe(iter(()))
        self.ranges: dict[tuple[str, str], tuple[float, float]] = {}  # (method, tensor) -> range

    def build(
        self, precision: dict[str, LayerPrecision], rounding: str, io16: bool = False
    ) -> tuple[Graph, QuantReport]:
        """Steps 2 and 3 for one precision per layer (missing layers: 8-bit weights, int8 activations) and one
        rounding ("auto", "nearest", "gptq", "adaround"). ``io16``: the model's inputs and outputs are int16 too
        (uniform 16x8); otherwise they stay int8, with QUANTIZE ops at the edges of int16 layers."""
        from ..progress import progress

        self.prepare()
        assert self.stats is not None
        steps = progress(range(len(self.g.ops) + 1), total=len(self.g.ops) + 1, desc="quantizing", unit="op")
        tick = iter(steps)
        # A float model that overflows is refused by name (_check_finite); numpy's own warnings would only add lines.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            given = getattr(self.opts.overrides, "acts", None)
            self.plan = RangePlan(self.g, precision, io16, self.stats, self.opts.method, self.ranges, given)
            graph, layers, outputs = self._build(precision, rounding, tick)
        for _ in tick:  # finish the bar
            pass
        report = QuantReport.build(layers, outputs, method=self.opts.method, bias_correction=self.opts.bias_correction,
                                   samples=self.n, rounding=rounding)  # fmt: skip
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
        every = sum(self.g.tensors[o].size for op in self.g.ops for o in op.outputs) * 4 * self.n
        keep = every <= work_memory_limit() // FLOAT_CACHE_SHARE
        self.float_cache: dict[str, np.ndarray] = {}
        for name in self.g.inputs:
            stats[name] = TensorStats.of(env[name], name=name)
        next(tick, None)
        for i, op in enumerate(self.g.ops):
            out = self.batch.float_op(op, self.g.tensors, env)
            _check_finite(self.g, op, out)
            env[op.outputs[0]] = out
            stats[op.outputs[0]] = TensorStats.of(out, name=op.outputs[0])
            if keep:
                self.float_cache[op.outputs[0]] = out
            self._free(env, op, i)
            next(tick, None)
        return stats

    def float_output(self, op: Op, fenv: dict[str, np.ndarray]) -> np.ndarray:
        """The float model's output of ``op`` on all samples (kept from step 1 when it fitted)."""
        cached = self.float_cache.get(op.outputs[0])
        return cached if cached is not None else self.batch.float_op(op, self.g.tensors, fenv)

    def _free(self, env: dict[str, np.ndarray], op: Op, i: int) -> None:
        for name in op.inputs:
            if name and self.last_read.get(name) == i and name not in self.g.outputs:
                env.pop(name, None)

    # ------------------------------------------------------------------------------------ 3. the integer graph
    def _build(self, precision: dict[str, LayerPrecision], rounding: str, tick: Iterable):
        g, dt = self.g, self.plan.dt
        qt: dict[str, Tensor] = {}  # the integer graph's tensors, unbatched
        ops: list[Op] = []
        fenv: dict[str, np.ndarray] = dict(self.inputs)  # float model values
        qenv: dict[str, np.ndarray] = {}  # integer values
        layers: list[LayerReport] = []
        self.views = views = Views(g, self.batch, self.plan, qt, qenv)
        self.consts = consts = ConstantQuantizer(g, self.batch, precision, rounding, qt,
                                                 per_channel_fc=self.opts.per_channel_fc,
                                                 bias_correction=self.opts.bias_correction,
                                                 overrides=self.opts.overrides)  # fmt: skip
        for name in g.inputs:
            t = g.tensors[name]
            s, z, how = self._input_qparams(name, fenv[name])
            qt[name] = Tensor(name, t.shape, dt[name], QParams((s,), (z,)))
            qenv[name] = affine_quantize(fenv[name], s, z, dt[name])
            views.names[(name, dt[name])] = name
            layers.append(self._layer_report(None, name, s, z, how, fenv[name], qenv[name]))
        next(tick, None)
        for i, op in enumerate(g.ops):
            out = op.outputs[0]
            fout = self.float_output(op, fenv)
            fenv[out] = fout
            op, pre = views.requantize_concat_inputs(op)
            ops.extend(pre)
            op = views.convert_inputs(op, fenv, ops)
            op = consts.quantize(op, dt[out], qenv)
            s, z, how, q = self._output(op, qt, qenv, fout)
            layer_op = op
            if self.plan.given is not None and (s, z) != self.plan.given[out]:
                op, q, how = self._requantize_output(op, ops, qt, qenv, s, z, q)
                s, z = self.plan.given[out]
            qt[out] = Tensor(out, g.tensors[out].shape, dt[out], QParams((s,), (z,)))
            qenv[out] = q
            views.names[(out, dt[out])] = out
            ops.append(op)
            op = layer_op
            near = None
            if op.kind in WEIGHTED and consts.nearest is not None:  # what the rounding gained, for the report
                near = self.batch.int_op(op, {**qt, **consts.nearest}, qenv)
            layers.append(self._layer_report(op, out, s, z, how, fout, q, near))
            self._free_all(fenv, op, i)
            next(tick, None)
        tensors = {name: qt[name] for name in _tensor_order(g, ops) if name in qt}
        tensors = {n: self._packed(t) for n, t in tensors.items()}
        graph = Graph(g.name, tensors, tuple(ops), g.inputs, g.outputs, source=g.source, meta=dict(g.meta))
        outputs = [(name, sqnr_db(fenv[name], _deq(qenv[name], qt[name]))) for name in g.outputs]
        return graph, layers, outputs

    def _packed(self, t: Tensor) -> Tensor:
        """A weight tensor in its packed type (the values were quantized and simulated as int8 of a narrow range)."""
        bits = self.consts.weight_bits.get(t.name)
        return t if bits is None or bits == 8 else replace(t, dtype=WEIGHT_DTYPE[bits])

    def _free_all(self, fenv, op: Op, i: int) -> None:
        """Free the float values and every integer view of the tensors the float graph's op ``i`` read last."""
        for name in self.g.ops[i].inputs:
            if name and self.last_read.get(name) == i and name not in self.g.outputs:
                fenv.pop(name, None)
                self.views.free(name)

    def _input_qparams(self, name: str, values: np.ndarray) -> tuple[float, int, str]:
        root = self.plan.groups.find(name)
        if root not in self.plan.chosen:
            dtype = self.plan.dt[name]

            def quantized(lo: float, hi: float) -> tuple[float, int, np.ndarray]:
                s, z = qparams(dtype, lo, hi)
                return s, z, affine_quantize(values, s, z, dtype)

            self._choose(root, values, quantized)
        return self.plan.chosen[root]

    def _choose(self, root: str, reference: np.ndarray, quantized) -> np.ndarray:
        """Among the group's candidate ranges, the one whose integer values (``quantized(lo, hi) -> (scale, zero
        point, values)``) are closest to ``reference`` in squared error; recorded for the group, its values returned."""
        best = None
        for m, (lo, hi) in self.plan.candidates[root].items():
            s, z, q = quantized(lo, hi)
            err = mse(reference, dequantize(q, s, z))
            if best is None or err < best[0]:
                best = (err, s, z, m, q)
        assert best is not None
        _, s, z, m, q = best
        self.plan.chosen[root] = (s, z, m)
        return q

    def _output(self, op: Op, qt: dict[str, Tensor], qenv, fout: np.ndarray) -> tuple[float, int, str, np.ndarray]:
        """The output's quantization and the op's integer result under it."""
        plan = self.plan
        out = self.g.ops[self.op_index[op.name]].outputs[0]  # the float graph's name
        if plan.given is not None:  # fixed quantization: the op's own output quantization (requantized after)
            s, z = plan.given[out]
            if op.kind in FIXED_OUTPUT:
                s, z = (FIXED_OUTPUT16 if plan.dt[out] is DType.INT16 else FIXED_OUTPUT)[op.kind]
            elif op.kind in PASS_THROUGH:
                s, z = qt[op.inputs[0]].scale, qt[op.inputs[0]].zero_point
            return s, z, "given", self._run(op, qt, qenv, s, z)
        root = plan.groups.find(out)
        fixed = plan.group_fixed.get(root)
        if fixed is not None:
            s, z = fixed
            return s, z, "fixed", self._run(op, qt, qenv, s, z)
        if op.kind in PASS_THROUGH:
            src = qt[op.inputs[0]]
            s, z = src.scale, src.zero_point
            return s, z, f"as input '{self.g.ops[self.op_index[op.name]].inputs[0]}'", self._run(op, qt, qenv, s, z)
        if root in plan.chosen:  # a concat output tied to inputs already quantized
            s, z, m = plan.chosen[root]
            return s, z, m, self._run(op, qt, qenv, s, z)
        q = self._choose(root, fout, lambda lo, hi: self._run_widening(op, qt, qenv, lo, hi))
        s, z, m = plan.chosen[root]
        return s, z, m, q

    def _requantize_output(self, op: Op, ops: list[Op], qt, qenv, s: float, z: int, q: np.ndarray):
        """Fixed quantization: ``op`` computes into a new tensor at its own output quantization (s, z) (TFLite's
        fixed one, or its input's where it cannot requantize), and a QUANTIZE brings that to the given one.
        Appends ``op``; returns the QUANTIZE, its values and the report's method text."""
        out = op.outputs[0]
        t = self.g.tensors[out]
        d = self.plan.dt[out]
        mid = fresh_name(f"{out}/{op.type_name.lower()}", self.g.tensors, qt)
        qt[mid] = Tensor(mid, t.shape, d, QParams((s,), (z,)))
        qenv[mid] = q
        ops.append(replace(op, outputs=(mid,)))
        gs, gz = self.plan.given[out]
        rq = Op(OpKind.QUANTIZE, fresh_name(f"{out}/requantize", self.g.tensors, qt), (mid,), (out,), NoAttrs(),
                op.index, "QUANTIZE")  # fmt: skip
        q2 = self.batch.int_op(rq, {**qt, out: Tensor(out, t.shape, d, QParams((gs,), (gz,)))}, qenv)
        own = "TFLite's fixed output" if op.kind in FIXED_OUTPUT else "its input's: the op cannot requantize"
        note = (f"{op.where}: computes '{out}' at scale {s:g}, zero point {z} ({own}); a QUANTIZE requantizes it "
                f"to the given scale {gs:g}, zero point {gz}")  # fmt: skip
        getattr(self.opts.overrides, "notes", []).append(note)
        return rq, q2, f"given, requantized from {s:g}/{z}"

    def _run(self, op: Op, qt: dict[str, Tensor], qenv, s: float, z: int) -> np.ndarray:
        out = op.outputs[0]
        src = self.g.ops[self.op_index[op.name]].outputs[0]
        tensors = {**qt, out: Tensor(out, self.g.tensors[src].shape, self.plan.dt[src], QParams((s,), (z,)))}
        return self.batch.int_op(op, tensors, qenv)

    def _run_widening(self, op: Op, qt, qenv, lo: float, hi: float) -> tuple[float, int, np.ndarray]:
        """Run with the range (lo, hi); a range the kernel cannot rescale to (a lowering error) is widened 4x at a
        time; the lowering's error is raised when no range within float32 works."""
        err: ModelError | None = None
        dtype = self.plan.dt[self.g.ops[self.op_index[op.name]].outputs[0]]
        for _ in range(WIDEN_TRIES):
            try:
                s, z = qparams(dtype, lo, hi)
            except ValueError:  # widened beyond what a float32 scale holds
                break
            try:
                return s, z, self._run(op, qt, qenv, s, z)
            except ModelError as e:
                err = e
                lo, hi = lo * 4.0, hi * 4.0 if hi > 0 or lo < 0 else 1.0
        if err is None:
            raise ModelError(self.g.source, f"{op.where}: its output range [{lo:g}, {hi:g}] has no {dtype.value} scale")
        raise err

    # ------------------------------------------------------------------------------------ report
    def _layer_report(self, op: Op | None, name: str, s, z, how, fvals, qvals, nearest=None) -> LayerReport:
        dtype = self.plan.dt[name]
        info = self.consts.layer_info
        bits, rounding = info.get(op.name, (None, None)) if op is not None else (None, None)
        return LayerReport(
            tensor=name,
            op=op.where if op is not None else "input",
            kind=op.type_name if op is not None else "INPUT",
            scale=float(s),
            zero_point=int(z),
            method=how,
            clipped=clipped_fraction16(fvals, s) if dtype is DType.INT16 else clipped_fraction(fvals, s, z),
            sqnr_db=sqnr_db(fvals, dequantize(qvals, s, z)),
            activations=dtype.value,
            weight_bits=bits,
            rounding=rounding,
            sqnr_nearest_db=None if nearest is None else sqnr_db(fvals, dequantize(nearest, s, z)),
        )


def _check_finite(g: Graph, op: Op, out: np.ndarray) -> None:
    if not np.isfinite(out).all():
        raise ModelError(
            g.source,
            f"{op.where}: the float model computes inf or NaN on the calibration data; check the data's scale",
        )


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
