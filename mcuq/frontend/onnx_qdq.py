"""QDQ models: QuantizeLinear / DequantizeLinear nodes become given quantization parameters of a float graph.

The float graph is the model with every Q/DQ pair removed (a DQ of a Q is its input again) and every DQ of a
constant replaced by the dequantized constant. What the pairs said is collected by IR tensor name and handed to
``mcuq.quant.fixed.quantize_fixed``, which builds the integer graph:

  * an activation's QuantizeLinear (per-tensor) gives its ``ActQuant``; a uint8 one becomes int8 by moving the
    zero point by 128 (``q8 = q - 128``, the same real values, exact);
  * a DequantizeLinear of an int8 (or uint8 with zero point 128) weight initializer gives the layer's
    ``WeightQuant``: the integers, transposed as the float weight is (OHWI, 1HWC, [out, in]), one scale per output
    channel or one; an asymmetric weight is an error; int8 values of -128, outside TFLite's [-127, 127], are
    clamped to -127 with a warning (a change of one step on those weights);
  * a DequantizeLinear of an int32 bias gives the bias integers, used as they are.

A Q/DQ on a float constant (weights quantized inside the graph) is folded first: Q computes the integers as ONNX
does (round half to even, saturate), the DQ above then reads them as an initializer.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import numpy as np

from .. import ir
from .onnx_build import Builder, Node
from .onnx_layout import Val

log = logging.getLogger(__name__)

_RANGES = {np.dtype(np.int8): (-128, 127), np.dtype(np.uint8): (0, 255), np.dtype(np.int32): (-(2**31), 2**31 - 1)}


@dataclass(frozen=True)
class ActQ:
    scale: float
    zero_point: int  # as int8 (uint8's moved by -128)


@dataclass(frozen=True)
class QConst:
    """A constant's integers (zero point removed) and scales (``values`` in the ONNX layout)."""

    values: np.ndarray
    scales: np.ndarray
    axis: int


@dataclass(frozen=True)
class Refused:
    """A dequantized constant that cannot be a layer's integer weights or bias (``why``, naming its node)."""

    why: str


def _params(n: Node, x_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, int]:
    scale = n.const(1, "scale").astype(np.float32)
    zp = n.const(2, "zero point", optional=True)
    if zp is None:
        zp = np.zeros(scale.shape, np.uint8)
    if n.int("block_size", 0):
        raise n.error("blocked quantization (block_size) not supported")
    axis = n.int("axis", 1)
    rank = len(x_shape)
    if zp.size != scale.size:
        raise n.error(f"{zp.size} zero points for {scale.size} scales")
    if scale.size == 1:
        scale, zp = scale.reshape(()), zp.reshape(())
    else:
        if not -rank <= axis < rank or scale.ndim != 1 or scale.size != x_shape[axis % rank]:
            raise n.error(f"{scale.size} scales along axis {axis} of shape {list(x_shape)}")
        axis %= rank
        scale, zp = scale.reshape(-1), zp.reshape(-1)
    if zp.size != scale.size or np.dtype(zp.dtype) not in _RANGES:
        raise n.error(f"zero point of type {zp.dtype} and shape {list(zp.shape)} for scales {list(scale.shape)}")
    if not (np.isfinite(scale).all() and (scale > 0).all()):
        raise n.error("scales must be positive and finite")
    if (scale < np.finfo(np.float32).tiny).any():  # subnormal: no integer multiplier represents what it implies
        raise n.error(f"scale {float(scale.min()):g} is subnormal (below {np.finfo(np.float32).tiny:g})")
    return scale, zp, axis


def _bcast(a: np.ndarray, axis: int, rank: int) -> np.ndarray:
    if a.size == 1:
        return a.reshape(())
    shape = [1] * rank
    shape[axis] = a.size
    return a.reshape(shape)


def quantize_linear(b: Builder, n: Node) -> list:
    x = n.input(0, "input")
    scale, zp, axis = _params(n, x.shape)
    lo, hi = _RANGES[np.dtype(zp.dtype)]
    if x.const is not None:  # a float weight quantized in the graph: fold as ONNX computes it
        r = x.rank
        q = np.rint(x.const.astype(np.float32) / _bcast(scale, axis, r)) + _bcast(zp.astype(np.float64), axis, r)
        return [Val(x.shape, const=np.clip(q, lo, hi).astype(zp.dtype))]
    if scale.size != 1:
        raise n.error("per-channel quantization of an activation is not supported")
    if zp.dtype == np.int32:
        raise n.error("int32 activations are not supported (int8 and uint8 are)")
    shift = 128 if zp.dtype == np.uint8 else 0
    q = ActQ(float(scale.reshape(-1)[0]), int(zp.reshape(-1)[0]) - shift)
    b.qdq = True
    prev = b.acts.get(x.ir)
    if prev is not None and prev != q:  # quantized a second time, differently: an identity op carries it
        name = b.emit(ir.OpKind.RESHAPE, (x.ir,), b.tensors[x.ir].shape, ir.ReshapeAttrs())
        b.acts[name] = q  # mcuq requantizes there (a QUANTIZE op), as the model does
        return [Val(x.shape, x.layout, name, quant=q)]
    b.acts[x.ir] = q  # a model output may end in a QuantizeLinear (its integers are mcuq's int8 output)
    return [Val(x.shape, x.layout, x.ir, quant=q, cache=x.cache)]


def dequantize_linear(b: Builder, n: Node) -> list:
    x = n.input(0, "input")
    scale, zp, axis = _params(n, x.shape)
    b.qdq = True
    if x.const is not None:
        v = np.asarray(x.const)
        if np.dtype(v.dtype) not in _RANGES or v.dtype != zp.dtype:
            raise n.error(f"dequantizes a constant of type {v.dtype} with a zero point of type {zp.dtype}")
        r = v.ndim
        ints = v.astype(np.int64) - _bcast(zp.astype(np.int64), axis, r)
        real = (ints.astype(np.float32) * _bcast(scale, axis, r)).astype(np.float32)
        why = ""
        if v.dtype == np.uint8 and np.any(zp != 128):
            why = "uint8 weights with a zero point other than 128 (asymmetric weights) are not supported"
        elif v.dtype == np.int8 and np.any(zp != 0):
            why = "int8 weights with a non-zero zero point (asymmetric weights) are not supported"
        if why:  # fine for a constant operand of Add, Concat...: an error only where it is a layer's weights
            return [Val(v.shape, const=real, quant=Refused(f"{n.error(why).message}"))]
        return [Val(v.shape, const=real, quant=QConst(ints, scale.astype(np.float64).reshape(-1), axis))]
    q = x.quant
    if not isinstance(q, ActQ):
        raise n.error("dequantizes a value that no QuantizeLinear made")
    shift = 128 if zp.dtype == np.uint8 else 0
    mine = ActQ(float(scale.reshape(-1)[0]), int(zp.reshape(-1)[0]) - shift)
    if scale.size != 1 or mine != q:
        raise n.error(f"scale and zero point {mine} differ from its QuantizeLinear's {q}")
    return [Val(x.shape, x.layout, x.ir, cache=x.cache)]


QDQ_CONVERTERS = {"QuantizeLinear": quantize_linear, "DequantizeLinear": dequantize_linear}


def _weights(g: ir.Graph, b: Builder):
    from ..quant.fixed import WeightQuant

    out = {}
    for name, (values, scales, _axis) in b.qweights.items():
        if name not in g.tensors:
            continue
        low = int((values < -127).sum())
        if low:
            log.warning("%s: weights '%s' hold %d value(s) of -128, outside TFLite's int8 weight range [-127, 127]: "
                        "clamped to -127", g.source, name, low)  # fmt: skip
        values = np.clip(values, -127, 127)
        out[name] = WeightQuant(values.astype(np.int64), scales, 8)
    return out


def qdq_parts(g: ir.Graph, b: Builder) -> tuple[dict, dict, dict]:
    """(activations, weights, biases) for ``quantize_fixed``, by tensor name of ``g``."""
    from ..quant.fixed import ActQuant

    acts = {k: ActQuant(q.scale, q.zero_point, "int8") for k, q in b.acts.items() if k in g.tensors}
    weights = _weights(g, b)
    biases = {k: v for k, v in b.qbiases.items() if k in g.tensors}
    return acts, weights, biases


def quantized_model(g: ir.Graph, b: Builder):
    """The ``QuantizedModel`` that ``quantize_fixed`` builds from a QDQ model's float graph and parameters; the
    integer graph keeps the float graph's ``io_layout`` and gets the notes of edges that had no Q/DQ in
    ``meta["quant_notes"]`` (JSON list)."""
    from dataclasses import replace

    from ..errors import McuqError, ModelError
    from ..quant.fixed import quantize_fixed

    acts, weights, biases = qdq_parts(g, b)
    try:
        qm = quantize_fixed(g, acts, weights, biases)
    except ModelError:
        raise
    except McuqError as e:  # the model's own Q/DQ parameters do not fit together: name the file
        raise ModelError(g.source, f"QDQ parameters: {str(e).removeprefix('quantize_fixed: ')}") from None
    meta = {**g.meta, **qm.graph.meta}
    if qm.report.notes:
        meta["quant_notes"] = json.dumps(list(qm.report.notes))
    return replace(qm, graph=replace(qm.graph, meta=meta, source=g.source))
