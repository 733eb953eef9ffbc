"""Post-training quantization: a float32 graph and calibration samples in, a standard int8 graph out.

The result follows TFLite's int8 spec, so it is an ordinary int8 model that the rest of mcuq (and TFLite's own
interpreter) runs: int8 inputs and outputs, asymmetric int8 activations, symmetric int8 weights (per channel for
conv and depthwise, per channel or per tensor for fully connected) in [-127, 127], int32 biases with scale
``input scale x weight scale``, TFLite's fixed output quantization for softmax, logistic and tanh, and one shared
quantization for the inputs and output of the ops that cannot requantize (pools, reshape, pad, transpose,
concatenation).

How it works, layer-major over the whole calibration set (``calibrator.Calibrator``, ``batch.BatchRunner``):
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

import hashlib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import McuqError, ModelError
from ..ir import (
    DType,
    Graph,
    OpKind,
    verify,
)
from ..reference.float_ops import FLOAT_OPS
from . import precision as precision_mod
from .calibrator import CALIBRATION_METHODS, WEIGHTED, Calibrator, Options
from .observers import sqnr_db
from .precision import LayerPrecision
from .report import QuantReport
from .values import float_data

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_METHOD", "METHODS", "Evaluation", "QuantizedModel", "Quantizer", "layer_names", "quantize"]

METHODS = (*CALIBRATION_METHODS, "auto")
DEFAULT_METHOD = "kl"  # the best overall in `make bench-ptq` (docs/benchmarks.md)


@dataclass(frozen=True, eq=False)
class QuantizedModel:
    """What ``quantize`` returns: the integer graph, the float graph it came from (after folding), the report and
    each layer's precision (``precision.LayerPrecision`` by layer name)."""

    graph: Graph
    float_graph: Graph
    report: QuantReport
    precision: Mapping[str, LayerPrecision] = field(default_factory=dict)

    def tflite_bytes(self, native_int4: bool = False) -> bytes:
        """The .tflite: sub-8-bit weights as int8 tensors of a narrow range plus the "mcuq_weight_bits" metadata
        (the int8-container file that tflite-runtime runs), or with ``native_int4`` 4-bit weights as TFLite INT4
        tensors (for newer LiteRT runtimes)."""
        from ..frontend.tflite_writer import write

        return write(self.graph, native_int4=True) if native_int4 else write(self.graph)

    def save(self, path: str | os.PathLike, native_int4: bool = False) -> Path:
        """Write the .tflite (``tflite_bytes``) to exactly ``path`` (through a temporary file beside it)."""
        from ..npyio import save_bytes

        return save_bytes(path, self.tflite_bytes(native_int4))


@dataclass(frozen=True, eq=False)
class Evaluation:
    """A quantized model against its float model on some data: end-to-end SQNR (dB, the lowest over the outputs;
    None: exact) and both models' outputs as float32 arrays with a leading sample axis."""

    sqnr_db: float | None
    outputs: tuple[np.ndarray, ...]
    float_outputs: tuple[np.ndarray, ...]


def layer_names(model) -> list[str]:
    """The names of ``model``'s layers (its conv, depthwise and fully-connected ops after the folding passes, in
    order): the keys of per-layer ``weight_bits`` and ``activations``."""
    return precision_mod.layer_names(_float_graph(model))


class Quantizer:
    """Post-training quantization of one float model on one calibration set, for many precisions: the float model's
    statistics (and activations, when they fit in memory) are computed once, and each ``quantize`` call only builds
    the integer graph (mcuq's mixed-precision search calls it once per candidate). ``quantize(model, calib, ...)``
    is ``Quantizer(model, calib, ...).quantize(...)``."""

    def __init__(
        self,
        model,
        calib,
        *,
        method: str = DEFAULT_METHOD,
        per_channel_fc: bool = True,
        bias_correction: bool = True,
        dump_ir: str | os.PathLike | None = None,
    ) -> None:
        from .calib import load_calibration

        if method not in METHODS:
            raise McuqError(f"unknown calibration method {method!r}; choose one of {', '.join(METHODS)}")
        if not isinstance(per_channel_fc, bool) or not isinstance(bias_correction, bool):
            raise McuqError("quantize: per_channel_fc and bias_correction must be True or False")
        self.dump_ir = dump_ir
        g = _float_graph(model, dump_ir)
        self.float_graph = g
        self.layer_names = precision_mod.layer_names(g)
        cs = load_calibration(calib, g, what="calibration data")
        self.calibrator = Calibrator(g, [np.asarray(a) for a in cs.arrays], Options(method, per_channel_fc,
                                                                                     bias_correction))  # fmt: skip
        self._float_outputs: dict[bytes, tuple[np.ndarray, ...]] = {}

    def precision(
        self, weight_bits: int | Mapping[str, int] = 8, activations: str | Mapping[str, str] = "int8"
    ) -> dict[str, LayerPrecision]:
        """One ``LayerPrecision`` per layer (``precision.resolve``); McuqError for unknown names or bad values."""
        return precision_mod.resolve(self.layer_names, weight_bits, activations)

    def quantize(
        self,
        *,
        weight_bits: int | Mapping[str, int] = 8,
        activations: str | Mapping[str, str] = "int8",
        rounding: str = "auto",
    ) -> QuantizedModel:
        """The integer model at these precisions (see ``quantize``)."""
        precision = self.precision(weight_bits, activations)
        precision_mod.check_rounding(rounding)
        io16 = activations == "int16" if isinstance(activations, str) else (
            bool(precision) and all(p.activations == "int16" for p in precision.values()))  # fmt: skip
        with _one_blas_thread():
            qgraph, report = self.calibrator.build(precision, rounding, io16)
        verify(qgraph)
        if self.dump_ir is not None and str(self.dump_ir) != "":
            from ..passes import run_passes as dump_only

            dump_only(qgraph, (), dump_dir=Path(self.dump_ir) / "quantized")
        return QuantizedModel(graph=qgraph, float_graph=self.float_graph, report=report, precision=precision)

    def evaluate(self, qm: QuantizedModel, data=None) -> Evaluation:
        """``qm`` (made by this quantizer) against the float model on ``data`` (as calibration data is given; None:
        the calibration set): the integer model runs through the numpy mirrors of its kernels, batched, and the
        float model's outputs are computed once per data set."""
        from .calib import load_calibration
        from .evaluate import run_float, run_integer

        if qm.float_graph is not self.float_graph:
            raise McuqError("evaluate: the quantized model was not made by this Quantizer")
        if data is None:
            arrays = [self.calibrator.inputs[n] for n in self.float_graph.inputs]
            arrays = [a.reshape(self.calibrator.n, *self.float_graph.tensors[n].shape)
                      for a, n in zip(arrays, self.float_graph.inputs)]  # fmt: skip
        else:
            arrays = list(load_calibration(data, self.float_graph, what="evaluation data").arrays)
        key = b"".join(np.ascontiguousarray(a).tobytes() for a in arrays)
        key = hashlib.sha256(key).digest()
        with _one_blas_thread(), np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            if key not in self._float_outputs:
                self._float_outputs[key] = run_float(self.float_graph, arrays)
            ref = self._float_outputs[key]
            outs = run_integer(qm.graph, arrays)
        sqnrs = [v for v in (sqnr_db(r, o) for r, o in zip(ref, outs)) if v is not None]
        return Evaluation(min(sqnrs) if sqnrs else None, tuple(outs), tuple(ref))


def quantize(
    model,
    calib,
    *,
    method: str = DEFAULT_METHOD,
    per_channel_fc: bool = True,
    bias_correction: bool = True,
    dump_ir: str | os.PathLike | None = None,
    weight_bits: int | Mapping[str, int] = 8,
    activations: str | Mapping[str, str] = "int8",
    rounding: str = "auto",
) -> QuantizedModel:
    """Quantize the float32 ``model`` (a .tflite path, its bytes or an ``ir.Graph``) with ``calib``
    (``mcuq.quant.calib.load_calibration``: a .npy/.npz path, a folder of .npy, an array, or an iterable of samples).

    ``method``: how activation ranges are chosen (``METHODS``; "auto" picks per tensor). ``per_channel_fc``:
    per-channel fully-connected weights (per-tensor otherwise). ``bias_correction``: compensate the mean output
    shift that weight rounding causes. ``dump_ir``: a folder for the float graph before and after each folding pass
    and the integer graph.

    Precision per layer (a layer is a conv, depthwise or fully-connected op; ``layer_names(model)`` lists them):
    ``weight_bits`` 8, 4, 2 (ternary) or 1 (binary), per-channel symmetric in the narrow range; ``activations``
    "int8" or "int16" (TFLite's 16x8 mode: int16 symmetric activations, int64 biases). Each is one value for every
    layer or a dict by layer name (layers not named: 8 bits, int8). Uniform "int16" makes the whole model 16x8,
    its inputs and outputs included. In a mixed model an op that is not a layer computes in the type of its inputs,
    QUANTIZE ops convert where an int8 tensor feeds an int16 op or the reverse, a model input is int16 when only
    int16 layers read it, and an output has the type of the op computing it. ``rounding`` of the weights: "nearest", "gptq", "adaround", or "auto" (GPTQ at
    4 bits and below, nearest at 8). Raises ``McuqError`` (one line) for bad arguments, data or models."""
    q = Quantizer(model, calib, method=method, per_channel_fc=per_channel_fc, bias_correction=bias_correction,
                  dump_ir=dump_ir)  # fmt: skip
    return q.quantize(weight_bits=weight_bits, activations=activations, rounding=rounding)


def _float_graph(model, dump_ir: str | os.PathLike | None = None) -> Graph:
    """The float model as a checked graph after the folding passes."""
    from ..frontend import load
    from ..passes import FLOAT_PIPELINE, run_passes

    if isinstance(model, QuantizedModel):
        raise McuqError("quantize: the model is already quantized (a QuantizedModel); to quantize its float model "
                        "again, pass its .float_graph")  # fmt: skip
    if not isinstance(model, (str, os.PathLike, bytes, bytearray, memoryview, Graph)):
        raise McuqError(f"quantize: model must be a .tflite path, its bytes or a Graph, got {type(model).__name__}")
    g = model if isinstance(model, Graph) else load(model)
    verify(g)
    _require_float(g)
    g = run_passes(g, FLOAT_PIPELINE, dump_dir=dump_ir)
    _require_supported(g)
    return g


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
    """What calibration needs before it runs a float kernel: ops mcuq lowers, float32 outputs, finite constants,
    non-empty tensors, weights that are constants of the right shape, outputs that some op computes."""
    from ..lower import LOWERINGS, supported_ops

    for name in g.outputs:
        if name in g.inputs:
            raise ModelError(g.source, f"tensor '{name}' is both a graph input and a graph output; nothing computes it")
    for name, t in g.tensors.items():
        if t.size == 0:
            raise ModelError(g.source, f"tensor '{name}' of shape {list(t.shape)} holds no values")
    for op in g.ops:
        if op.kind in WEIGHTED:
            _check_weights(g, op)
        if op.kind not in LOWERINGS or op.kind not in FLOAT_OPS or op.kind is OpKind.QUANTIZE:
            raise ModelError(
                g.source,
                f"{op.where}: cannot be quantized to int8 by mcuq; supported ops: {', '.join(supported_ops())}",
            )
        for name in op.inputs:
            t = g.tensors[name] if name else None
            if t is not None and t.is_const and not np.isfinite(float_data(g, t)).all():
                raise ModelError(g.source, f"{op.where}: constant '{name}' holds NaN or inf; a float model to quantize "
                                 "needs finite weights")  # fmt: skip
        for name in op.outputs:
            if g.tensors[name].dtype is not DType.FLOAT32:
                raise ModelError(g.source, f"{op.where}: output '{name}' is {g.tensors[name].dtype.value}, not float32")


WEIGHTED_RANK = {OpKind.CONV2D: 4, OpKind.DEPTHWISE_CONV2D: 4, OpKind.FULLY_CONNECTED: 2}


def _check_weights(g: Graph, op) -> None:
    """Constant weights of the layout the float kernels read (OHWI, 1HWC, [out, in]) and a bias per channel."""
    names = [n for n in op.inputs[1:3] if n]
    if len(op.inputs) < 2 or not op.inputs[1]:
        raise ModelError(g.source, f"{op.where}: has no weights")
    for what, name in zip(("weights", "bias"), names):
        if not g.tensors[name].is_const:
            raise ModelError(g.source, f"{op.where}: its {what} '{name}' are not a constant tensor")
    x, w = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]]
    if len(w.shape) != WEIGHTED_RANK[op.kind]:
        raise ModelError(g.source, f"{op.where}: weights '{w.name}' have shape {list(w.shape)}, "
                         f"expected rank {WEIGHTED_RANK[op.kind]}")  # fmt: skip
    if op.kind is OpKind.FULLY_CONNECTED:
        channels, ok = w.shape[0], w.shape[1] > 0 and x.size % w.shape[1] == 0
    elif op.kind is OpKind.CONV2D:
        channels, ok = w.shape[0], len(x.shape) == 4 and w.shape[3] == x.shape[3]
    else:
        channels, ok = w.shape[3], len(x.shape) == 4 and w.shape[0] == 1 and w.shape[3] % max(x.shape[3], 1) == 0
    if not ok:
        raise ModelError(g.source, f"{op.where}: weights of shape {list(w.shape)} do not fit its input of shape "
                         f"{list(x.shape)}")  # fmt: skip
    if len(names) > 1 and g.tensors[names[1]].size != channels:
        b = g.tensors[names[1]]
        raise ModelError(g.source, f"{op.where}: bias '{b.name}' has {b.size} values for {channels} output channels")


class _one_blas_thread:
    """BLAS limited to one thread (threadpoolctl), so that sums do not depend on the machine's thread count."""

    def __enter__(self):
        from threadpoolctl import threadpool_limits

        self._limits = threadpool_limits(limits=1, user_api="blas")
        return self

    def __exit__(self, *exc):
        self._limits.restore_original_limits()
        return False
