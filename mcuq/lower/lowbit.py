"""Packed sub-8-bit weights: a CONV2D, DEPTHWISE_CONV2D or FULLY_CONNECTED whose weight tensor is INT4, INT2 or
INT1 runs the packed kernel of its int8 kernel (``mcuq.kernels.lowbit``) with the same integer parameters plus
the width. Codegen stores such a weight packed (``mcuq.quant.packing``), so flash holds 4, 2 or 1 bits a value."""

from __future__ import annotations

import dataclasses

import numpy as np

from ..ir import Graph, Op, Tensor
from ..kernels.conv import Conv2DParams
from ..kernels.lowbit import PACKED_OF, LowbitConv2DParams, LowbitFullyConnectedParams
from .base import Layer, fail


def value_problem(t: Tensor) -> str:
    """ "" when every value of the packed tensor ``t`` can be stored in its width, else the first that cannot."""
    assert t.data is not None
    v = np.asarray(t.data).reshape(-1).astype(np.int64)
    lo, hi = t.dtype.int_range
    bad = (v < lo) | (v > hi) | ((v == 0) if t.dtype.bits == 1 else False)
    if not bad.any():
        return ""
    i = int(np.argmax(bad))
    what = "{-1, +1}" if t.dtype.bits == 1 else f"[{lo}, {hi}]"
    return f"weights '{t.name}' ({t.dtype.value}): value {int(v[i])} at flat index {i} is outside {what}"


def packed_layer(g: Graph, op: Op, layer: Layer, wt: Tensor) -> Layer:
    """``layer`` (the int8 lowering) on its packed kernel when ``wt`` is packed; ``layer`` itself otherwise."""
    if not wt.dtype.packed:
        return layer
    assert layer.kernel is not None and layer.params is not None
    if layer.kernel.name not in PACKED_OF:
        raise fail(g, op, f"weights '{wt.name}' are {wt.dtype.value}; {layer.kernel.name} has no packed form")
    problem = value_problem(wt)
    if problem:
        raise fail(g, op, problem)
    if int(getattr(layer.params, "weights_zp", 0)) != 0:
        raise fail(g, op, f"packed weights '{wt.name}' must be symmetric (zero point 0)")
    p = layer.params
    cls = LowbitConv2DParams if isinstance(p, Conv2DParams) else LowbitFullyConnectedParams
    fields = {f.name: getattr(p, f.name) for f in dataclasses.fields(p)}
    params = cls(**fields, bits=wt.dtype.bits)
    return dataclasses.replace(layer, kernel=PACKED_OF[layer.kernel.name], params=params)
