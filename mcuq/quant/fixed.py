"""Fixed quantization: a float graph plus *given* quantization parameters in, the standard integer graph out.

The seam that ONNX QDQ import (scales from the QuantizeLinear/DequantizeLinear pairs) and QAT export (scales learnt
in training) share: instead of calibrating, the caller says how each activation, weight and bias is quantized, and
``quantize_fixed`` builds the same integer graph the post-training quantizer would build with those parameters.
It is not a second quantizer: the calibrator (``calibrator.Calibrator``) builds the graph, with an ``Overrides``
object consumed where it would choose ranges (``ranges.RangePlan``), weights and biases
(``constants.ConstantQuantizer``); multipliers and shifts then come from the scales in the lowering, as for any
int8 model.

What the caller gives, by tensor name of the float graph (NHWC, OHWI conv, 1HWC depthwise, [out, in] FC):
  * ``ActQuant`` per activation: scale and zero point (int8 asymmetric, or int16 with zero point 0);
  * ``WeightQuant`` per layer weight tensor: the integer values in the narrow range of their width and one scale per
    output channel (or one for the tensor); weights not given are quantized as PTQ does at 8 bits;
  * int32 (int64 in 16x8) bias values, read at the implied scale ``input scale x weight scale[c]``.

An activation not given takes its neighbour's quantization where the op between cannot requantize (RESHAPE, COPY,
MAX_POOL2D, AVG_POOL2D, PAD, TRANSPOSE, CONCAT inputs) or where TFLite fixes it (SOFTMAX, SIGMOID, TANH); each such
edge is a note of the report (shown by ``mcuq inspect`` and ``mcuq quantize``). Where given parameters differ from
what TFLite's int8 kernel of an op produces (a softmax output not at 1/256, -128; a reshape whose input and output
were given differently), the op computes at its own and a QUANTIZE op requantizes to the given ones (also noted).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np

from ..errors import McuqError
from ..ir import DType, Graph, Op, OpKind, verify
from .precision import QMAX, LayerPrecision
from .ranges import FIXED_OUTPUT, FIXED_OUTPUT16, PASS_THROUGH, WEIGHTED

__all__ = ["ActQuant", "WeightQuant", "quantize_fixed"]

ACT_DTYPES = {"int8": DType.INT8, "int16": DType.INT16}
WEIGHT_BITS = (8, 4, 2, 1)
INT_LIMITS = {DType.INT32: (-(2**31) + 1, 2**31 - 1), DType.INT64: (-(2**62), 2**62)}
_CHANNEL_AXIS = {OpKind.CONV2D: 0, OpKind.DEPTHWISE_CONV2D: 3, OpKind.FULLY_CONNECTED: 0}
NOTES_META = "quant_notes"  # Graph.meta key of the integer graph: the report's notes as a JSON list of strings
# Relative float32 error of a float bias that is the dequantized given one: |b / s - q| stays within this of |q|.
BIAS_RTOL = 2.0**-20


@dataclass(frozen=True)
class ActQuant:
    """A given activation quantization: real = scale * (q - zero_point)."""

    scale: float  # > 0, finite (as float32 too)
    zero_point: int  # int8: [-128, 127]; int16: 0
    dtype: str = "int8"  # "int8" or "int16"


@dataclass(frozen=True, eq=False)
class WeightQuant:
    """A given weight quantization: integer ``values`` in the layout of the float weight tensor (OHWI conv, 1HWC
    depthwise, [out, in] FC), ``scales`` one per output channel or a single one, ``bits`` the width (values in its
    narrow range: 8 [-127, 127], 4 [-7, 7], 2 {-1, 0, 1}, 1 {-1, 1})."""

    values: np.ndarray
    scales: np.ndarray
    bits: int = 8


@dataclass(eq=False)
class Overrides:
    """What the calibrator takes as given instead of choosing (``Options.overrides``): ``acts`` (scale, zero point)
    of every activation by float tensor name (and of constant operands given one), ``weights`` by weight tensor
    name, ``biases`` (integer values) by bias tensor name; ``notes`` collects what was resolved or inserted."""

    acts: dict[str, tuple[float, int]]
    weights: dict[str, WeightQuant]
    biases: dict[str, np.ndarray]
    notes: list[str] = field(default_factory=list)

    def check_bias(self, op: Op, name: str, computed: np.ndarray, given: np.ndarray, dtype: DType) -> np.ndarray:
        """The given bias of ``op`` as ``dtype``, when it is the float graph's bias at the implied scale (within one
        step and float32 rounding); McuqError otherwise (refused: a bias quantized at another scale)."""
        q = np.asarray(given).astype(np.int64).reshape(-1)
        c = np.asarray(computed).astype(np.int64).reshape(-1)
        tol = 1.0 + np.abs(c).astype(np.float64) * BIAS_RTOL
        bad = np.flatnonzero(np.abs((q - c).astype(np.float64)) > tol)
        if bad.size:
            i = int(bad[0])
            raise McuqError(
                f"quantize_fixed: bias '{name}' of {op.where}: the given value {int(q[i])} of channel {i} is not the "
                f"float bias at the implied scale input scale x weight scale (that gives {int(c[i])}); give the bias "
                "at that scale, or leave it out to have the float bias quantized"
            )
        return q.astype(dtype.np)


def quantize_fixed(
    float_graph: Graph,
    activations: Mapping[str, ActQuant],
    weights: Mapping[str, WeightQuant] | None = None,
    biases: Mapping[str, np.ndarray] | None = None,
    *,
    calib=None,
):
    """The integer model of ``float_graph`` (a float32 ``ir.Graph``) with the given quantization: a
    ``ptq.QuantizedModel`` whose graph is a standard integer graph (verified), as ``mcuq.quantize`` makes.

    ``activations``: an ``ActQuant`` per activation tensor (model inputs and op outputs; a constant operand of an
    elementwise op may be given one too). Missing ones are taken from a neighbour across ops that cannot requantize
    and from TFLite's fixed outputs, with a note; one that cannot be resolved is a McuqError naming it and its op.
    ``weights``: a ``WeightQuant`` per layer weight tensor; layers not given get PTQ's 8-bit per-channel weights.
    ``biases``: integer bias values (int32; int64 for layers with int16 activations) by bias tensor name, read at
    the implied scale ``input scale x weight scale[c]`` and used as they are; a given bias must be the float
    graph's bias at that scale (within one step): a bias quantized at another scale is *refused* (McuqError), not
    re-quantized; leave it out and the float bias is quantized at the implied scale, rounding half away from zero as
    TFLite's converter does. A bias can only be given with its layer's weights. ``calib`` (calibration data, as
    ``mcuq.quantize`` takes it) only fills the report's per-layer SQNR against the float graph; without it the
    report has no SQNR (0 samples)."""
    from .calib import load_calibration
    from .calibrator import Calibrator, Options
    from .ptq import QuantizedModel, _float_graph, _one_blas_thread

    if not isinstance(float_graph, Graph):
        raise McuqError(f"quantize_fixed: float_graph must be an ir.Graph, got {type(float_graph).__name__}")
    source = float_graph
    acts = _mapping(activations, "activations")
    wts = _mapping(weights, "weights")
    bss = _mapping(biases, "biases")
    for what, keys in (("activations", acts), ("weights", wts), ("biases", bss)):
        for k in keys:
            if not isinstance(k, str) or k not in source.tensors:
                raise McuqError(f"quantize_fixed: {what} names tensor {k!r}, which the float graph does not have")
    g = _float_graph(source)
    ov = Overrides({}, {}, {})
    acts = _relu_outputs(source, acts, ov.notes)
    for op in source.ops:  # activations the float passes folded away (a RELU fused into its producer, a batch norm)
        for name in op.outputs:
            if name not in g.tensors and name not in acts:
                ov.notes.append(f"'{name}' (the output of {op.where}) is folded away by the float passes (an "
                                "activation fused into the op before it, a batch norm into a conv); it needs no "
                                "quantization")  # fmt: skip
    layers = _layers(g)
    for name, a in acts.items():
        _check_act(g, source, name, a, layers, ov)
    for name, w in wts.items():
        _check_weight(g, name, w, layers, ov)
        _unchanged(source, g, name, layers[name], "weights")
    for name, b in bss.items():
        _check_bias(g, name, b, layers, acts, ov)
        _unchanged(source, g, name, layers[name], "bias")
    given_dtype = {n: ACT_DTYPES[a.dtype] for n, a in acts.items() if n in ov.acts}
    _resolve(g, ov, {n for n, d in given_dtype.items() if d is DType.INT16})
    precision = {}
    for op in g.ops:
        if op.kind in WEIGHTED:
            w = ov.weights.get(op.inputs[1])
            act = "int16" if given_dtype.get(op.outputs[0]) is DType.INT16 else "int8"
            precision[op.name] = LayerPrecision(w.bits if w is not None else 8, act)
    io16 = bool(g.inputs) and all(given_dtype.get(n) is DType.INT16 for n in g.inputs)
    if calib is not None:
        arrays = [np.asarray(a) for a in load_calibration(calib, g, what="calibration data").arrays]
    else:
        arrays = [np.zeros((1, *g.tensors[n].shape), np.float32) for n in g.inputs]
    calibrator = Calibrator(g, arrays, Options("minmax", True, False, ov))
    with _one_blas_thread():
        qgraph, report = calibrator.build(precision, "nearest", io16)
    for name, d in given_dtype.items():
        t = qgraph.tensors.get(name)
        if t is not None and t.dtype is not d:
            raise McuqError(f"quantize_fixed: activation '{name}' is given as {d.value}, but its op computes in "
                            f"{t.dtype.value} (an int16 activation needs an int16 layer or int16 inputs)")  # fmt: skip
    if ov.notes:  # for whatever shows the integer graph without the report (a frontend's load, ``mcuq inspect``)
        qgraph = replace(qgraph, meta={**qgraph.meta, NOTES_META: json.dumps(ov.notes)})
    verify(qgraph)
    if calib is None:
        rows = tuple(replace(r, sqnr_db=None, clipped=0.0, worst=False, sqnr_nearest_db=None) for r in report.layers)
        report = replace(report, layers=rows, outputs=tuple((n, None) for n, _ in report.outputs), samples=0)
    report = replace(report, method="given", rounding="given", notes=tuple(ov.notes))
    return QuantizedModel(graph=qgraph, float_graph=g, report=report, precision=precision)


# -- checks ----------------------------------------------------------------------------------------------------


def _mapping(m, what: str) -> dict:
    if m is None:
        return {}
    if not isinstance(m, Mapping):
        raise McuqError(f"quantize_fixed: {what} must be a mapping from tensor names, got {type(m).__name__}")
    return dict(m)


def _layers(g: Graph) -> dict[str, Op]:
    """Weight and bias tensor names -> the layer reading them."""
    out: dict[str, Op] = {}
    for op in g.ops:
        if op.kind in WEIGHTED:
            for n in op.inputs[1:3]:
                if n:
                    out.setdefault(n, op)
    return out


def _check_act(g: Graph, source: Graph, name: str, a: ActQuant, layers: dict[str, Op], ov: Overrides) -> None:
    where = f"quantize_fixed: activation '{name}'"
    if not isinstance(a, ActQuant):
        raise McuqError(f"{where}: expected an ActQuant, got {type(a).__name__}")
    if a.dtype not in ACT_DTYPES:
        raise McuqError(f"{where}: dtype {a.dtype!r} is not 'int8' or 'int16'")
    s = a.scale
    if isinstance(s, bool) or not isinstance(s, (int, float, np.floating, np.integer)):
        raise McuqError(f"{where}: scale {s!r} is not a number")
    s = float(s)
    if not (math.isfinite(s) and s > 0 and np.isfinite(np.float32(s)) and np.float32(s) > 0):
        raise McuqError(f"{where}: scale {s!r} must be positive and finite (as float32 too)")
    z = a.zero_point
    if isinstance(z, bool) or not isinstance(z, (int, np.integer)):
        raise McuqError(f"{where}: zero point {z!r} is not an integer")
    z = int(z)
    lo, hi = (-128, 127) if a.dtype == "int8" else (0, 0)
    if not lo <= z <= hi:
        raise McuqError(f"{where}: zero point {z} is outside {a.dtype}'s [{lo}, {hi}]")
    if name in layers:
        raise McuqError(f"{where}: is a weight or bias of {layers[name].where}; give it in weights or biases")
    t = g.tensors.get(name)
    if t is None:  # folded away (a RELU fused into its producer, a batch-norm folded): its producer's output is kept
        ov.notes.append(f"activation '{name}' is folded away (e.g. an activation fused into the op before it); "
                        "its given quantization is not used")  # fmt: skip
        return
    if t.dtype is not DType.FLOAT32:
        raise McuqError(f"{where}: is {t.dtype.value}, not a float32 tensor of the float graph")
    ov.acts[name] = (float(np.float32(s)), z)


def _check_weight(g: Graph, name: str, w: WeightQuant, layers: dict[str, Op], ov: Overrides) -> None:
    where = f"quantize_fixed: weights '{name}'"
    if not isinstance(w, WeightQuant):
        raise McuqError(f"{where}: expected a WeightQuant, got {type(w).__name__}")
    op = layers.get(name)
    if op is None or op.inputs[1] != name:
        raise McuqError(f"{where}: is not the weight tensor of a conv, depthwise or fully-connected layer")
    if isinstance(w.bits, bool) or w.bits not in WEIGHT_BITS:
        raise McuqError(f"{where} of {op.where}: bits {w.bits!r} is not one of 8, 4, 2, 1")
    t = g.tensors[name]
    v = np.asarray(w.values)
    if not np.issubdtype(v.dtype, np.integer):
        raise McuqError(f"{where} of {op.where}: values are {v.dtype}, not integers")
    if tuple(v.shape) != tuple(t.shape):
        raise McuqError(f"{where} of {op.where}: values have shape {list(v.shape)}, the float weights "
                        f"{list(t.shape)}")  # fmt: skip
    qmax = QMAX[w.bits]
    bad = (v < -qmax) | (v > qmax) if w.bits != 1 else (v != 1) & (v != -1)
    if bad.any():
        i = int(np.flatnonzero(bad.reshape(-1))[0])
        allowed = {8: "[-127, 127]", 4: "[-7, 7]", 2: "{-1, 0, 1}", 1: "{-1, 1}"}[w.bits]
        raise McuqError(f"{where} of {op.where}: value {int(v.reshape(-1)[i])} is outside the {w.bits}-bit range "
                        f"{allowed}")  # fmt: skip
    s = np.asarray(w.scales)
    channels = t.shape[_CHANNEL_AXIS[op.kind]]
    if s.dtype.kind not in "fiu" or s.size not in (1, channels) or s.ndim > 1:
        raise McuqError(f"{where} of {op.where}: give 1 or {channels} scales (one per output channel), got "
                        f"{s.size} of shape {list(s.shape)}")  # fmt: skip
    s32 = s.astype(np.float32).reshape(-1)
    if not (np.isfinite(s.astype(np.float64)).all() and np.isfinite(s32).all() and (s32 > 0).all()):
        raise McuqError(f"{where} of {op.where}: scales must be positive and finite (as float32 too)")
    ov.weights[name] = WeightQuant(v.astype(np.int8), s32, int(w.bits))


def _check_bias(g: Graph, name: str, b, layers: dict[str, Op], acts: dict, ov: Overrides) -> None:
    where = f"quantize_fixed: bias '{name}'"
    op = layers.get(name)
    if op is None or len(op.inputs) < 3 or op.inputs[2] != name:
        raise McuqError(f"{where}: is not the bias tensor of a conv, depthwise or fully-connected layer")
    if op.inputs[1] not in ov.weights:
        raise McuqError(f"{where} of {op.where}: a bias is given only with its layer's weights "
                        f"('{op.inputs[1]}' is not in weights)")  # fmt: skip
    v = np.asarray(b)
    if not np.issubdtype(v.dtype, np.integer):
        raise McuqError(f"{where} of {op.where}: values are {v.dtype}, not integers")
    t = g.tensors[name]
    if v.size != t.size or v.ndim > 1:
        raise McuqError(f"{where} of {op.where}: {v.size} values of shape {list(v.shape)} for {t.size} channels")
    a = acts.get(op.outputs[0])
    dtype = DType.INT64 if isinstance(a, ActQuant) and a.dtype == "int16" else DType.INT32
    lo, hi = INT_LIMITS[dtype]
    v64 = v.astype(np.int64) if v.dtype != np.uint64 else v
    if v.size and (int(v64.min()) < lo or int(v64.max()) > hi):
        raise McuqError(f"{where} of {op.where}: values outside {dtype.value}'s range")
    ov.biases[name] = v.astype(np.int64).reshape(-1)


def _unchanged(source: Graph, g: Graph, name: str, op: Op, what: str) -> None:
    """Given weights or bias of a constant the float passes changed (a batch norm folded into the layer) would
    quantize another layer: refused."""
    old = source.tensors[name].data
    if old is not None and not np.array_equal(old, g.tensors[name].data):
        raise McuqError(f"quantize_fixed: {what} '{name}' of {op.where}: the float passes changed this constant (a "
                        f"batch norm folded into the layer); give the {what} of the folded layer")  # fmt: skip


# -- missing edges ---------------------------------------------------------------------------------------------


def _relu_outputs(source: Graph, acts: dict, notes: list[str]) -> dict:
    """A RELU or RELU6 output without parameters takes its input's (every value it computes is one of the input's
    grid), before the float passes fuse the RELU into its producer."""
    acts = dict(acts)
    for op in source.ops:
        if op.kind in (OpKind.RELU, OpKind.RELU6) and op.inputs and op.inputs[0] in acts:
            out = op.outputs[0]
            if out not in acts:
                acts[out] = acts[op.inputs[0]]
                notes.append(f"'{out}' has no given quantization: takes '{op.inputs[0]}''s across {op.where}, "
                             "whose outputs lie on its input's grid")  # fmt: skip
    return acts


# -- missing edges ---------------------------------------------------------------------------------------------


def _resolve(g: Graph, ov: Overrides, int16: set[str]) -> None:
    """Give every activation without a given quantization its neighbour's across an op that cannot requantize, or
    TFLite's fixed output; McuqError for one that stays unresolved."""
    given = ov.acts
    const = {n for n, t in g.tensors.items() if t.is_const}
    producer = {op.outputs[0]: op for op in g.ops}

    def take(dst: str, src: str, op: Op, why: str) -> None:
        given[dst] = given[src]
        if src in int16:
            int16.add(dst)
        ov.notes.append(f"'{dst}' has no given quantization: takes '{src}''s (scale {given[src][0]:g}, zero point "
                        f"{given[src][1]}) across {op.where}, {why}")  # fmt: skip

    changed = True
    while changed:
        changed = False
        for op in g.ops:
            out = op.outputs[0]
            ins = [x for x in op.inputs if x and x not in const]
            if op.kind in PASS_THROUGH and ins:
                x = ins[0]
                if out not in given and x in given:
                    take(out, x, op, "which cannot requantize")
                    changed = True
                elif x not in given and out in given:
                    take(x, out, op, "which cannot requantize")
                    changed = True
            elif op.kind is OpKind.CONCAT:
                for x in ins:
                    if x not in given and out in given:
                        take(x, out, op, "whose inputs share its quantization")
                        changed = True
                if out not in given and ins and all(x in given for x in ins):
                    if len({given[x] for x in ins}) == 1:
                        take(out, ins[0], op, "whose inputs share one quantization")
                        changed = True
            elif op.kind in FIXED_OUTPUT and out not in given and ins and ins[0] in given:
                wide = ins[0] in int16
                given[out] = (FIXED_OUTPUT16 if wide else FIXED_OUTPUT)[op.kind]
                ov.notes.append(f"'{out}' has no given quantization: takes TFLite's fixed output of {op.where} "
                                f"(scale {given[out][0]:g}, zero point {given[out][1]})")  # fmt: skip
                changed = True
    for name in [*g.inputs, *(op.outputs[0] for op in g.ops)]:
        if name not in given:
            op = producer.get(name)
            reader = next((r for r in g.ops if name in r.inputs), None)
            what = (f"the output of {op.where}" if op is not None
                    else "a model input" + (f" read by {reader.where}" if reader is not None else ""))  # fmt: skip
            raise McuqError(f"quantize_fixed: activation '{name}' ({what}) has no given quantization, and none can "
                            "be taken from a neighbour across an op that cannot requantize")  # fmt: skip
