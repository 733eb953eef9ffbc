"""The forward value of a prepared model computed with mcuq's own integer arithmetic.

A float simulation of requantization (``round(acc * s_in * s_w / s_out)``) differs from the device's fixed-point
multiply (``mcuq.quant.fixedpoint``: TFLite's quantized multiplier, gemmlowp's double rounding) at near-ties, and
each such step propagates. So the value a layer passes on is computed as the device computes it: the int32
accumulator of the integer inputs and weights plus the int32 bias, requantized with the multipliers and shifts the
lowering derives (same float widths, ``lower.conv.channel_multipliers``), offset and clamped to the fused
activation's bounds (``lower.common.activation_bounds``); ADD uses the lowering's ``add_params`` and the numpy mirror
of its C kernel. The gradient is the float path's (straight-through): ``y_float + (y_int - y_float).detach()``.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F

from .. import ir
from ..lower.common import activation_bounds
from ..quant.fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier
from . import fake

_ACT = {"none": ir.Activation.NONE, "relu": ir.Activation.RELU, "relu6": ir.Activation.RELU6}


def _tensor(name: str, shape, scale: float, zp: int) -> ir.Tensor:
    return ir.Tensor(name, tuple(shape), ir.DType.INT8, ir.QParams((float(np.float32(scale)),), (int(zp),)))


def multipliers(s_in: float, s_w: np.ndarray, s_out: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (multiplier, shift): ``double(s_in) * double(s_w[c]) / double(s_out)`` as the lowering computes
    them (all three float32)."""
    ms, ss = [], []
    for s in np.asarray(s_w, dtype=np.float32).reshape(-1):
        real = float(np.float64(np.float32(s_in)) * np.float64(s) / np.float64(np.float32(s_out)))
        q, sh = quantize_multiplier(real)
        ms.append(q)
        ss.append(sh)
    return np.asarray(ms, dtype=np.int64), np.asarray(ss, dtype=np.int64)


def layer_output(layer, x: torch.Tensor, qp_in, w_int: np.ndarray, s_w: torch.Tensor, b_int: torch.Tensor,
                 qp_out) -> torch.Tensor:  # fmt: skip
    """The layer's output (real values, no gradient) as mcuq's integer kernel computes it from the fake-quantized
    input ``x``: int8 values in, int8 values out."""
    spec = layer.spec
    s_in = float(qp_in[0].detach())
    s_out, z_out = float(qp_out[0].detach()), int(qp_out[1])
    with torch.no_grad():
        xi = fake.round_half_away(x.detach().double() / np.float32(s_in))  # q - zp, exact integers
        w = torch.from_numpy(w_int.astype(np.float64))
        if spec.kind == "fc":
            acc = F.linear(xi, w)
        else:
            acc = F.conv2d(xi, w, None, spec.stride, spec.padding, spec.dilation, spec.groups)
        acc = acc + (b_int if acc.dim() == 2 else b_int[None, :, None, None])
    m, sh = multipliers(s_in, s_w.detach().numpy(), s_out)
    shape = (1, -1) if acc.dim() == 2 else (1, -1, 1, 1)
    a = acc.numpy().astype(np.int64)
    q = multiply_by_quantized_multiplier(a, m.reshape(shape), sh.reshape(shape)) + z_out
    lo, hi = activation_bounds(_ACT[spec.act], _tensor("out", (1,), s_out, z_out))
    q = np.clip(q, lo, hi).astype(np.float32)
    return (torch.from_numpy(q) - z_out) * np.float32(s_out)


def add_output(a: torch.Tensor, qa, b: torch.Tensor, qb, qp_out, act: str) -> torch.Tensor:
    """ADD of two fake-quantized tensors as mcuq's int8 ADD kernel computes it (real values, no gradient)."""
    from ..lower.elementwise import add_params
    from ..reference.elementwise import add_s8

    n = a[0].numel()
    t1, t2 = _tensor("a", (1, n), float(qa[0].detach()), qa[1]), _tensor("b", (1, n), float(qb[0].detach()), qb[1])
    out = _tensor("y", (1, n), float(qp_out[0].detach()), qp_out[1])
    op = ir.Op(ir.OpKind.ADD, "y", ("a", "b"), ("y",),
               ir.BinaryAttrs(_ACT[act]))  # fmt: skip
    g = ir.Graph("add", {"a": t1, "b": t2, "y": out}, (op,), ("a", "b"), ("y",))
    p = add_params(g, op)
    with torch.no_grad():
        qa_int = fake.act_int(a.detach(), qa[0].detach(), qa[1]).numpy().astype(np.int64)
        qb_int = fake.act_int(b.detach(), qb[0].detach(), qb[1]).numpy().astype(np.int64)
    rows = [add_s8(SimpleNamespace(params=p), [qa_int[i].reshape(1, n), qb_int[i].reshape(1, n)], [(1, n)])[0]
            for i in range(len(a))]  # fmt: skip
    q = np.stack(rows).reshape(a.shape).astype(np.float32)
    return (torch.from_numpy(q) - qp_out[1]) * np.float32(float(qp_out[0].detach()))
