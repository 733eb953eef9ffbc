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

import logging
import os
from dataclasses import dataclass
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
from .calibrator import CALIBRATION_METHODS, WEIGHTED, Calibrator, Options
from .report import QuantReport
from .values import float_data

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_METHOD", "METHODS", "QuantizedModel", "quantize"]

METHODS = (*CALIBRATION_METHODS, "auto")
DEFAULT_METHOD = "kl"  # the best overall in `make bench-ptq` (docs/benchmarks.md)


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
    from ..frontend import load
    from ..passes import FLOAT_PIPELINE, run_passes
    from .calib import load_calibration

    if method not in METHODS:
        raise McuqError(f"unknown calibration method {method!r}; choose one of {', '.join(METHODS)}")
    if not isinstance(per_channel_fc, bool) or not isinstance(bias_correction, bool):
        raise McuqError("quantize: per_channel_fc and bias_correction must be True or False")
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
    cs = load_calibration(calib, g, what="calibration data")
    options = Options(method, per_channel_fc, bias_correction)
    with _one_blas_thread():
        qgraph, report = Calibrator(g, [np.asarray(a) for a in cs.arrays], options).run()
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
