"""Post-training quantization: a float32 graph and calibration samples in, a standard int8 graph out.

The result follows TFLite's int8 spec, so it is an ordinary int8 model that the rest of mcuq (and TFLite's own
interpreter) runs: int8 inputs and outputs, asymmetric int8 activations, symmetric int8 weights (per channel for
conv and depthwise, per channel or per tensor for fully connected) in [-127, 127], int32 biases with scale
``input scale x weight scale``, TFLite's fixed output quantization for softmax, logistic and tanh, and one shared
quantization for the inputs and output of the ops that cannot requantize (pools, reshape, pad, transpose,
concatenation).

How it works, layer-major over the whole calibration set (``_Calibrator``):
  1. the float graph runs op by op on all N samples at once (a copy of the graph with batch N; per sample where
     the graph does not allow that), and every activation's values become a ``TensorStats`` (histogram, min, max);
     each tensor is freed after its last reader, so memory is N x the largest live set, not the whole model;
  2. each tensor gets its range from the observer of the chosen method; tensors that must share quantization are
     grouped (union of their ranges), fixed outputs take TFLite's fixed parameters;
  3. the integer graph is then built op by op in topological order while the float graph runs again beside it, so
     each op sees the *quantized* outputs of the ops before it, exactly as on the device:
       * weights are quantized, and with bias correction the mean shift that weight rounding causes on this
         op's actual (quantized) inputs, E[(W_q - W) x], is subtracted from the float bias before it is quantized;
       * with ``method="auto"`` each candidate output range (one per observer) is tried through the op's integer
         kernel and the one with the least squared error against the float model's output is kept;
       * the op runs through the numpy mirror of its C kernel, and its output is compared with the float model's
         to give the report's per-layer SQNR (errors accumulate as they do on the device).
Everything is deterministic: no randomness, float64 math in the float kernels, and BLAS limited to one thread
while quantizing, so results do not depend on the machine's thread count.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import McuqError, ModelError
from ..ir import (
    Activation,
    ConcatAttrs,
    DType,
    Graph,
    NoAttrs,
    Op,
    OpKind,
    QParams,
    Tensor,
    verify,
)
from ..lower import lower_op
from ..reference import run_layer
from ..reference.float_ops import FLOAT_OPS
from .observers import RANGE_METHODS, TensorStats, choose_qparams, clipped_fraction, sqnr_db
from .report import LayerReport, QuantReport

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_METHOD", "METHODS", "QuantizedModel", "quantize"]

METHODS = ("minmax", "percentile", "mse", "kl", "auto")
DEFAULT_METHOD = "kl"  # the best overall in `make bench-ptq` (docs/benchmarks.md)
INT8_MIN, INT8_MAX = -128, 127
INT32_MAX = 2**31 - 1
WORK_MEMORY_ENV = "MCUQ_CALIB_MEMORY"
DEFAULT_WORK_MEMORY = 4 << 30  # bytes of activations held at once during calibration

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


@dataclass(frozen=True, eq=False)
class QuantizedModel:
    """What ``quantize`` returns: the int8 graph, the float graph it came from (after folding) and the report."""

    graph: Graph
    float_graph: Graph
    report: QuantReport

    def tflite_bytes(self) -> bytes:
        from ..frontend.tflite_writer import write

        return write(self.graph)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the int8 .tflite to exactly ``path`` (through a temporary file beside it)."""
        from ..npyio import save_bytes

        return save_bytes(path, self.tflite_bytes())


def quantize(
    model,
    calib,
    *,
    method: str = DEFAULT_METHOD,
    per_channel_fc: bool = True,
    bias_correction: bool = True,
    dump_ir: str | os.PathLike | None = None,
) -> QuantizedModel:
    """Quantize the float32 ``model`` (a .tflite path, its bytes or an ``ir.Graph``) to int8 with ``calib``
    (``mcuq.quant.calib.load_calibration``: a .npy/.npz path, a folder of .npy, an array, or an iterable of samples).

    ``method``: how activation ranges are chosen (``METHODS``; "auto" picks per tensor). ``per_channel_fc``:
    per-channel fully-connected weights (per-tensor otherwise). ``bias_correction``: compensate the mean output
    shift that weight rounding causes. ``dump_ir``: a folder for the float graph before and after each folding pass
    and the int8 graph. Raises ``McuqError`` (one line) for bad arguments, data or models."""
    from ..api import load_graph
    from ..passes import FLOAT_PIPELINE, run_passes
    from .calib import load_calibration

    if method not in METHODS:
        raise McuqError(f"unknown calibration method {method!r}; choose one of {', '.join(METHODS)}")
    if not isinstance(per_channel_fc, bool) or not isinstance(bias_correction, bool):
        raise McuqError("quantize: per_channel_fc and bias_correction must be True or False")
    g = load_graph(model)
    verify(g)
    _require_float(g)
    g = run_passes(g, FLOAT_PIPELINE, dump_dir=dump_ir)
    _require_supported(g)
    cs = load_calibration(calib, g, what="calibration data")
    options = _Options(method, per_channel_fc, bias_correction)
    with _one_blas_thread():
        qgraph, report = _Calibrator(g, [np.asarray(a) for a in cs.arrays], options).run()
    verify(qgraph)
    if dump_ir is not None and str(dump_ir) != "":
        from ..passes import run_passes as dump_only

        dump_only(qgraph, (), dump_dir=Path(dump_ir) / "quantized")
    return QuantizedModel(graph=qgraph, float_graph=g, report=report)


# -- checks --------------------------------------------------------------------------------------------------


def _require_float(g: Graph) -> None:
    """A float model: float32 inputs and no op that already computes in integers."""
    for name in g.inputs:
        t = g.tensors[name]
        if t.dtype is not DType.FLOAT32:
            raise ModelError(
                g.source,
                f"input '{name}' is {t.dtype.value}: mcuq quantizes float32 models"
                + (" (this one is already quantized: compile it directly, without --calib)" if t.qparams else ""),
            )
    for op in g.ops:
        if op.kind is OpKind.QUANTIZE:
            raise ModelError(g.source, f"{op.where}: the model is already (partly) quantized; give its float version")


def _require_supported(g: Graph) -> None:
    from ..lower import LOWERINGS, supported_ops

    for op in g.ops:
        if op.kind not in LOWERINGS or op.kind not in FLOAT_OPS or op.kind is OpKind.QUANTIZE:
            raise ModelError(
                g.source,
                f"{op.where}: cannot be quantized to int8 by mcuq; supported ops: {', '.join(supported_ops())}",
            )
        for name in op.inputs:
            t = g.tensors[name] if name else None
            if t is not None and t.is_const and not np.isfinite(_float_data(g, t)).all():
                raise ModelError(g.source, f"{op.where}: constant '{name}' holds NaN or inf; a float model to quantize "
                                 "needs finite weights")  # fmt: skip
        for name in op.outputs:
            if g.tensors[name].dtype is not DType.FLOAT32:
                raise ModelError(g.source, f"{op.where}: output '{name}' is {g.tensors[name].dtype.value}, not float32")


class _one_blas_thread:
    """BLAS limited to one thread (threadpoolctl), so that sums do not depend on the machine's thread count."""

    def __enter__(self):
        from threadpoolctl import threadpool_limits

        self._limits = threadpool_limits(limits=1, user_api="blas")
        return self

    def __exit__(self, *exc):
        self._limits.restore_original_limits()
        return False


# -- the calibrator -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Options:
    method: str
    per_channel_fc: bool
    bias_correction: bool


class _Groups:
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


class _Batch:
    """Runs one op on all N samples: on a copy of the graph whose activations have batch N when the graph allows
    it (every activation has a leading dimension of 1 that no op moves or reduces), else sample by sample."""

    def __init__(self, g: Graph, n: int) -> None:
        self.g, self.n = g, n
        self.batched = n == 1 or _batchable(g)

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


def _batchable(g: Graph) -> bool:
    for t in g.tensors.values():
        if not t.is_const and (len(t.shape) < 2 or t.shape[0] != 1):
            return False
    for op in g.ops:
        a = op.attrs
        if op.kind is OpKind.MEAN and 0 in a.axes:
            return False
        if op.kind is OpKind.TRANSPOSE and a.perm[0] != 0:
            return False
        if op.kind is OpKind.CONCAT and a.axis == 0:
            return False
        if op.kind is OpKind.PAD and tuple(a.paddings[0]) != (0, 0):
            return False
        if op.kind is OpKind.FULLY_CONNECTED:
            w = g.tensors[op.inputs[1]]
            x = g.tensors[op.inputs[0]]
            if len(w.shape) != 2 or x.size % w.shape[1] != 0:
                return False
    return True


class _Calibrator:
    def __init__(self, g: Graph, arrays: list[np.ndarray], options: _Options) -> None:
        self.g = g
        self.opts = options
        self.n = int(arrays[0].shape[0])
        self.batch = _Batch(g, self.n)
        # (N, *S) per input; batched, the sample axis replaces the leading 1 of S
        self.inputs = {
            name: np.asarray(a, dtype=np.float32).reshape(
                self.batch.shape(g.tensors[name]) if self.batch.batched else (self.n, *g.tensors[name].shape)
            )
            for name, a in zip(g.inputs, arrays)
        }
        self.last_read = _last_reads(g)
        self._check_memory()

    # ------------------------------------------------------------------------------------------------ driver
    def run(self) -> tuple[Graph, QuantReport]:
        from ..progress import progress

        steps = progress(range(2 * len(self.g.ops) + 2), total=2 * len(self.g.ops) + 2, desc="calibrating", unit="op")
        tick = iter(steps)
        stats = self._observe(tick)
        self._plan_groups()
        self._choose_ranges(stats)
        graph, layers, outputs = self._build(tick, stats)
        for _ in tick:  # finish the bar
            pass
        report = QuantReport.build(layers, outputs, method=self.opts.method, bias_correction=self.opts.bias_correction,
                                   samples=self.n)  # fmt: skip
        return graph, report

    def _check_memory(self) -> None:
        per_sample = _peak_live_bytes(self.g, self.last_read)
        need = per_sample * self.n * 3  # float reference + quantized int8 + candidates during one op
        limit = int(os.environ.get(WORK_MEMORY_ENV, DEFAULT_WORK_MEMORY) or DEFAULT_WORK_MEMORY)
        if need > limit:
            raise McuqError(
                f"calibration with {self.n} samples needs about {need / 2**30:.1f} GiB of working memory "
                f"({per_sample:,} bytes of live activations per sample); give fewer samples or raise "
                f"${WORK_MEMORY_ENV} (bytes, now {limit:,})"
            )

    # ------------------------------------------------------------------------------------ 1. float statistics
    def _observe(self, tick: Iterable) -> dict[str, TensorStats]:
        stats: dict[str, TensorStats] = {}
        env: dict[str, np.ndarray] = dict(self.inputs)
        for name in self.g.inputs:
            stats[name] = TensorStats.of(env[name])
        next(tick, None)
        for i, op in enumerate(self.g.ops):
            out = self.batch.float_op(op, self.g.tensors, env)
            _check_finite(self.g, op, out)
            env[op.outputs[0]] = out
            stats[op.outputs[0]] = TensorStats.of(out)
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
        self.groups = _Groups()
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
        methods = [m for m in METHODS if m != "auto"] if self.opts.method == "auto" else [self.opts.method]
        self.candidates: dict[str, dict[str, tuple[float, float]]] = {}
        for root, members in self._members().items():
            cands: dict[str, tuple[float, float]] = {}
            for m in methods:
                ranges = [RANGE_METHODS[m](stats[t]) for t in members]
                cands[m] = (min(lo for lo, _ in ranges), max(hi for _, hi in ranges))
            self.candidates[root] = cands
        self.chosen: dict[str, tuple[float, int, str]] = {}  # group root -> (scale, zero point, method)

    # ------------------------------------------------------------------------------------ 3. the int8 graph
    def _build(self, tick: Iterable, stats: dict[str, TensorStats]):
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
            qenv[name] = _quantize_values(fenv[name], s, z)
            layers.append(self._layer_report(None, name, s, z, how, fenv[name], qenv[name]))
        next(tick, None)
        for i, op in enumerate(g.ops):
            out = op.outputs[0]
            fout = self.batch.float_op(op, g.tensors, fenv)
            fenv[out] = fout
            op, pre = self._requantize_concat_inputs(op, qt, qenv)
            ops.extend(pre)
            op = self._quantize_constants(op, qt, fenv, qenv)
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
        outputs = [(name, sqnr_db(fenv[name], _dequantize(qenv[name], qt[name]))) for name in g.outputs]
        return graph, layers, outputs

    def _input_qparams(self, name: str, values: np.ndarray) -> tuple[float, int, str]:
        root = self.groups.find(name)
        if root in self.chosen:
            s, z, m = self.chosen[root]
            return s, z, m
        cands = self.candidates[root]
        best = None
        for m, (lo, hi) in cands.items():
            s, z = choose_qparams(lo, hi)
            err = _mse(values, _dequantize_sz(_quantize_values(values, s, z), s, z))
            if best is None or err < best[0]:
                best = (err, s, z, m)
        assert best is not None
        self.chosen[root] = best[1:]
        return best[1], best[2], best[3]

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
        best = None
        for m, (lo, hi) in self.candidates[root].items():
            s, z, q = self._run_widening(op, qt, qenv, lo, hi)
            err = _mse(fout, _dequantize_sz(q, s, z))
            if best is None or err < best[0]:
                best = (err, s, z, m, q)
        assert best is not None
        _, s, z, m, q = best
        self.chosen[root] = (s, z, m)
        return s, z, m, q

    def _run(self, op: Op, qt: dict[str, Tensor], qenv, s: float, z: int) -> np.ndarray:
        out = op.outputs[0]
        tensors = {**qt, out: Tensor(out, self.g.tensors[out].shape, DType.INT8, QParams((s,), (z,)))}
        return self.batch.int_op(op, tensors, qenv)

    def _run_widening(self, op: Op, qt, qenv, lo: float, hi: float) -> tuple[float, int, np.ndarray]:
        """Run with the range (lo, hi); a range the kernel cannot rescale to (a lowering error) is widened."""
        err: ModelError | None = None
        for _ in range(WIDEN_TRIES):
            s, z = choose_qparams(lo, hi)
            try:
                return s, z, self._run(op, qt, qenv, s, z)
            except ModelError as e:
                err = e
                lo, hi = lo * 4.0, hi * 4.0 if hi > 0 or lo < 0 else 1.0
        assert err is not None
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
                qt[x] = Tensor(x, src.shape, DType.INT8, QParams((s,), (z,)), _quantize_values(src.data, s, z))
                new_inputs.append(x)
                continue
            name = _fresh(f"{x}/requantized", self.g.tensors, qt)
            qt[name] = Tensor(name, src.shape, DType.INT8, QParams((s,), (z,)))
            rq = Op(OpKind.QUANTIZE, name, (x,), (name,), NoAttrs(), op.index, "QUANTIZE")
            qenv[name] = self.batch.int_op(rq, qt, qenv)
            pre.append(rq)
            new_inputs.append(name)
        return replace(op, inputs=tuple(new_inputs)), pre

    def _quantize_constants(self, op: Op, qt: dict[str, Tensor], fenv, qenv) -> Op:
        """Weights, biases and constant operands of ``op`` as int8/int32 tensors in ``qt``."""
        g = self.g
        if op.kind in WEIGHTED:
            return self._quantize_weights(op, qt, qenv)
        for name in op.inputs:
            if name and name not in qt and g.tensors[name].is_const:
                data = _float_data(g, g.tensors[name])
                lo, hi = float(min(data.min(initial=0.0), 0.0)), float(max(data.max(initial=0.0), 0.0))
                s, z = choose_qparams(lo, hi)
                qt[name] = Tensor(name, g.tensors[name].shape, DType.INT8, QParams((s,), (z,)),
                                  _readonly(_quantize_values(data, s, z)))  # fmt: skip
        return op

    def _quantize_weights(self, op: Op, qt: dict[str, Tensor], qenv) -> Op:
        """Quantize ``op``'s weights and bias into ``qt``; returns the op (with a new bias input if it had none)."""
        g = self.g
        x_name, w_name = op.inputs[0], op.inputs[1]
        b_name = op.inputs[2] if len(op.inputs) > 2 else ""
        wt = g.tensors[w_name]
        w = _float_data(g, wt).astype(np.float64)
        axis = CHANNEL_AXIS[op.kind]
        channels = wt.shape[axis]
        b = _float_data(g, g.tensors[b_name]).astype(np.float64).reshape(-1) if b_name else np.zeros(channels)
        s_in = qt[x_name].scale
        per_channel = op.kind is not OpKind.FULLY_CONNECTED or self.opts.per_channel_fc
        s_w = _weight_scales(w, axis, per_channel, b, s_in)
        wq = _quantize_symmetric(w, s_w, axis)
        if self.opts.bias_correction:
            b = b - self._weight_error_shift(op, w, wq.astype(np.float64) * _expand(s_w, axis, w.ndim), qt, qenv)
            s_w = _weight_scales(w, axis, per_channel, b, s_in)  # a corrected bias may need more room
            wq = _quantize_symmetric(w, s_w, axis)
        qparams = QParams(tuple(float(v) for v in s_w), (0,) * len(s_w), axis if per_channel else 0)
        qt[w_name] = Tensor(w_name, wt.shape, DType.INT8, qparams, _readonly(wq))
        bias_scales = np.float32(s_in) * s_w.astype(np.float32)
        bias_scales = np.broadcast_to(bias_scales, (channels,)).astype(np.float64)
        bq = np.clip(_round_half_away(b / bias_scales), -INT32_MAX, INT32_MAX).astype(np.int32)
        bname = b_name or _fresh(f"{op.name}/bias", g.tensors, qt)
        qt[bname] = Tensor(bname, (channels,), DType.INT32,
                           QParams(tuple(float(v) for v in bias_scales), (0,) * channels, 0), _readonly(bq))  # fmt: skip
        return op if b_name else replace(op, inputs=(*op.inputs[:2], bname))

    def _weight_error_shift(self, op: Op, w: np.ndarray, w_deq: np.ndarray, qt, qenv) -> np.ndarray:
        """Per output channel, the mean over the calibration data (samples and positions) of ``(W_q - W) x``, with
        ``x`` the op's actual quantized input, dequantized: the bias shift that weight rounding causes."""
        x_name, w_name = op.inputs[0], op.inputs[1]
        xt = qt[x_name]
        x = _dequantize(qenv[x_name], xt)
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
            sqnr_db=sqnr_db(fvals, _dequantize_sz(qvals, s, z)),
        )


# -- helpers -------------------------------------------------------------------------------------------------


def _last_reads(g: Graph) -> dict[str, int]:
    last: dict[str, int] = {}
    for i, op in enumerate(g.ops):
        for n in op.inputs:
            if n and not g.tensors[n].is_const:
                last[n] = i
    return last


def _peak_live_bytes(g: Graph, last_read: dict[str, int]) -> int:
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


def _check_finite(g: Graph, op: Op, out: np.ndarray) -> None:
    if not np.isfinite(out).all():
        raise ModelError(
            g.source,
            f"{op.where}: the float model computes inf or NaN on the calibration data; check the data's scale",
        )


def _float_data(g: Graph, t: Tensor) -> np.ndarray:
    """A constant as float32: float16 and (hybrid models') quantized integer constants are dequantized."""
    assert t.data is not None
    if t.dtype is DType.FLOAT32:
        return np.asarray(t.data, dtype=np.float32)
    if t.dtype is DType.FLOAT16:
        return np.asarray(t.data, dtype=np.float32)
    if t.qparams is None:
        raise ModelError(g.source, f"constant '{t.name}' is {t.dtype.value} without quantization parameters")
    scale = _expand(np.asarray(t.qparams.scale, dtype=np.float32), t.qparams.axis, t.data.ndim)
    zp = _expand(np.asarray(t.qparams.zero_point, dtype=np.float32), t.qparams.axis, t.data.ndim)
    return ((np.asarray(t.data, dtype=np.float32) - zp) * scale).astype(np.float32)


def _expand(v: np.ndarray, axis: int, ndim: int) -> np.ndarray:
    v = np.asarray(v)
    if v.size == 1:
        return v.reshape(())
    shape = [1] * ndim
    shape[axis] = v.size
    return v.reshape(shape)


def _round_half_away(x: np.ndarray) -> np.ndarray:
    return np.copysign(np.floor(np.abs(x) + 0.5), x)


def _quantize_values(x: np.ndarray, s: float, z: int) -> np.ndarray:
    """float -> int8 as TFLite's AffineQuantize: x / scale in float32, rounded half away from zero, + zero point."""
    q = (np.asarray(x, dtype=np.float32) / np.float32(s)).astype(np.float64)
    q = _round_half_away(q) + z
    return np.clip(q, INT8_MIN, INT8_MAX).astype(np.int8)


def _dequantize_sz(q: np.ndarray, s: float, z: int) -> np.ndarray:
    return (np.asarray(q, dtype=np.float64) - z) * s


def _dequantize(q: np.ndarray, t: Tensor) -> np.ndarray:
    return _dequantize_sz(q, t.scale, t.zero_point)


def _mse(a: np.ndarray, b: np.ndarray) -> float:
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    return float(np.mean(d * d)) if d.size else 0.0


def _weight_scales(w: np.ndarray, axis: int, per_channel: bool, bias: np.ndarray, s_in: float) -> np.ndarray:
    """Symmetric int8 scales (max |w| / 127) per output channel, or one for the tensor. A channel of zeros gets
    the median scale of the others (1/127 when all are zero), so that its multiplier stays ordinary; a scale is
    raised where the bias would not fit int32 at scale ``s_in * s_w``."""
    if per_channel:
        red = tuple(a for a in range(w.ndim) if a != axis)
        m = np.abs(w).max(axis=red) if w.size else np.zeros(w.shape[axis])
    else:
        m = np.array([np.abs(w).max(initial=0.0)])
    s = m / 127.0
    nonzero = s[s > 0]
    s = np.where(s > 0, s, float(np.median(nonzero)) if nonzero.size else 1.0 / 127.0)
    need = np.abs(bias) / (float(s_in) * (INT32_MAX - 1024))
    s = np.maximum(s, need.max(initial=0.0) if not per_channel else need)
    return s.astype(np.float32)


def _quantize_symmetric(w: np.ndarray, s: np.ndarray, axis: int) -> np.ndarray:
    q = _round_half_away(w / _expand(s.astype(np.float64), axis, w.ndim))
    return np.clip(q, -127, 127).astype(np.int8)


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


def _fresh(base: str, *spaces: dict) -> str:
    name, k = base, 1
    while any(name in s for s in spaces):
        k += 1
        name = f"{base}_{k}"
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
