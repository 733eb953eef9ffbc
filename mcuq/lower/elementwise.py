"""Lowering of the elementwise binary ops ADD, SUB and MUL, as TFLite 2.14's Prepare computes their parameters
(tensorflow/lite/kernels/add.cc, sub.cc, mul.cc). The unary ops (QUANTIZE and the activations) are in activations.py.

Float widths matter and are mirrored here:
  * ADD and SUB: ``twice_max_input_scale = 2 * max(s1, s2)`` (float32, exact), the three real multipliers in double;
  * MUL: ``s1 * s2 / s_out`` evaluated in float32, then widened to double for QuantizeMultiplier.

ADD, SUB and MUL use the same per-element function whether TFLite takes its elementwise path (equal shapes after
adding leading 1s) or its broadcast path, so one kernel with compile-time strides serves both.
"""

from __future__ import annotations

import math

import numpy as np

from ..ir import Graph, Op, OpKind, Tensor
from ..kernels.elementwise import ADD_S8, MUL_S8, SUB_S8, AddParams, Broadcast, MulParams
from ..quant.fixedpoint import INT32_MAX, quantize_multiplier, quantize_multiplier_smaller_than_one_exp
from .base import Layer, fail, lowering
from .common import activation_range, broadcast_layout, max_abs_offset, require_int8
from .elementwise16 import is_int16, lower_add_sub16, lower_mul16

# Largest rank TFLite 2.14 broadcasts for int8 (measured: its ADD broadcasts 5-D and 6-D shapes correctly, its SUB
# aborts beyond 5-D, its MUL beyond 4-D). Inputs of equal shape (after adding leading 1s) are elementwise at any rank.
TFLITE_ADD_BROADCAST_RANK = 6
TFLITE_SUB_BROADCAST_RANK = 5
TFLITE_MUL_BROADCAST_RANK = 4
TFLITE_BROADCAST_RANK = {
    OpKind.ADD: TFLITE_ADD_BROADCAST_RANK,
    OpKind.SUB: TFLITE_SUB_BROADCAST_RANK,
    OpKind.MUL: TFLITE_MUL_BROADCAST_RANK,
}
ADD_LEFT_SHIFT = 20  # add.cc and sub.cc: 20 for 8-bit inputs


def binary_broadcast(g: Graph, op: Op, t1: Tensor, t2: Tensor, out: Tensor) -> Broadcast:
    """The output walk of a binary op, after checking the shapes as TFLite does (``TFLITE_BROADCAST_RANK``)."""
    try:
        shape = np.broadcast_shapes(t1.shape, t2.shape)
    except ValueError:
        raise fail(g, op, f"input shapes {t1.shape} and {t2.shape} do not broadcast") from None
    if tuple(shape) != tuple(out.shape):
        raise fail(g, op, f"output shape {out.shape} is not the broadcast shape {tuple(shape)} of the inputs")
    rank = max(len(t1.shape), len(t2.shape))
    same = (1,) * (rank - len(t1.shape)) + t1.shape == (1,) * (rank - len(t2.shape)) + t2.shape
    limit = TFLITE_BROADCAST_RANK[op.kind]
    if not same and rank > limit:
        raise fail(g, op, f"TFLite 2.14 broadcasts int8 {op.type_name} up to {limit}-D; the inputs are {rank}-D")
    return broadcast_layout(tuple(out.shape), t1.shape, t2.shape)


def add_params(g: Graph, op: Op) -> AddParams:
    """add.cc's 8-bit Prepare (TFLite's ArithmeticParams): each input rescaled by s_i / (2 max(s1, s2)) after a
    left shift of 20 bits, the sum by 2 max(s1, s2) / (2^20 s_out). sub.cc's PrepareGeneralSubOp computes the
    same for int8 SUB (input2's multiplier stays positive: the kernel subtracts)."""
    t1, t2, out = require_int8(g, op, *op.inputs, *op.outputs)
    s1, s2, so = np.float32(t1.scale), np.float32(t2.scale), np.float32(out.scale)
    with np.errstate(over="ignore"):  # an overflow to inf is refused below, with the op named
        twice_max = float(np.float32(2.0) * max(s1, s2))  # float32 (exact), then widened to double
        shifted_out = float(np.float32(1 << ADD_LEFT_SHIFT) * so)
    if not (math.isfinite(twice_max) and math.isfinite(shifted_out)):
        raise fail(g, op, f"scales {float(s1):g}, {float(s2):g}, {float(so):g} overflow float32 in TFLite's rescaling")
    reals = {
        "input1": float(s1) / twice_max,
        "input2": float(s2) / twice_max,
        "output": twice_max / shifted_out,
    }
    q: dict[str, tuple[int, int]] = {}
    for k, real in reals.items():
        if not 0.0 < real < 1.0:
            raise fail(g, op, f"{k} rescale factor {real:.6g} is outside (0, 1) (TFLite rejects it)")
        q[k] = quantize_multiplier_smaller_than_one_exp(real)
    return AddParams(
        input1_zp=t1.zero_point,
        input2_zp=t2.zero_point,
        output_zp=out.zero_point,
        left_shift=ADD_LEFT_SHIFT,
        input1_multiplier=q["input1"][0],
        input1_shift=q["input1"][1],
        input2_multiplier=q["input2"][0],
        input2_shift=q["input2"][1],
        output_multiplier=q["output"][0],
        output_shift=q["output"][1],
        activation=activation_range(op.attrs.activation, out),
        broadcast=binary_broadcast(g, op, t1, t2, out),
    )


@lowering(OpKind.ADD)
def lower_add(g: Graph, op: Op) -> Layer:
    """reference_integer_ops::Add / BroadcastAdd6DSlow with add.cc's 8-bit Prepare (int16: elementwise16.py)."""
    if is_int16(g, op):
        return lower_add_sub16(g, op)
    return Layer(op, ADD_S8, add_params(g, op), (*op.inputs, *op.outputs))


@lowering(OpKind.SUB)
def lower_sub(g: Graph, op: Op) -> Layer:
    """reference_ops::SubElementwise / BroadcastQuantSubSlow with sub.cc's int8 Prepare (ADD's parameters)."""
    if is_int16(g, op):
        return lower_add_sub16(g, op)
    return Layer(op, SUB_S8, add_params(g, op), (*op.inputs, *op.outputs))


@lowering(OpKind.MUL)
def lower_mul(g: Graph, op: Op) -> Layer:
    """reference_integer_ops::Mul / BroadcastMul4DSlow with mul.cc's Prepare."""
    if is_int16(g, op):
        return lower_mul16(g, op)
    t1, t2, out = require_int8(g, op, *op.inputs, *op.outputs)
    with np.errstate(over="ignore"):  # float32, as mul.cc; an overflow to inf is refused below
        real = float(np.float32(np.float32(t1.scale) * np.float32(t2.scale)) / np.float32(out.scale))
    if not np.isfinite(real):
        raise fail(g, op, f"scales {t1.scale:g} x {t2.scale:g} / {out.scale:g} overflow float32 in TFLite's rescaling")
    mult, shift = quantize_multiplier(real)
    if shift > 30:
        raise fail(g, op, f"output rescale factor {real:.6g} is too large")
    biggest = max_abs_offset(t1.zero_point) * max_abs_offset(t2.zero_point)
    if shift > 0 and biggest << shift > INT32_MAX:
        raise fail(g, op, f"product of inputs shifted left by {shift} overflows int32 (rescale factor {real:.6g})")
    params = MulParams(
        input1_zp=t1.zero_point,
        input2_zp=t2.zero_point,
        output_zp=out.zero_point,
        output_multiplier=mult,
        output_shift=shift,
        activation=activation_range(op.attrs.activation, out),
        broadcast=binary_broadcast(g, op, t1, t2, out),
    )
    return Layer(op, MUL_S8, params, (*op.inputs, *op.outputs), macs=out.size)
