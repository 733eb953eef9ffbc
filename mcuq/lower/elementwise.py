"""Lowering of the elementwise binary ops (ADD, MUL) and QUANTIZE (int8 -> int8), as TFLite 2.14's Prepare
computes their parameters (tensorflow/lite/kernels/add.cc, mul.cc, quantize.cc). The unary activations live in
activations.py, imported at the bottom so that importing this module registers them all.

Float widths matter and are mirrored here:
  * ADD: ``twice_max_input_scale = 2 * max(s1, s2)`` (float32, exact), the three real multipliers in double;
  * MUL: ``s1 * s2 / s_out`` evaluated in float32, then widened to double for QuantizeMultiplier;
  * QUANTIZE: ``double(s_in) / double(s_out)``. reference_ops::Requantize's only special case (an XOR with 0x80
    when int8 <-> uint8 differ by a zero point of 128 at equal scale) does not apply to int8 -> int8.

ADD and MUL use the same per-element function whether TFLite takes its elementwise path (equal shapes after
adding leading 1s) or its broadcast path, so one kernel with compile-time strides serves both.
"""

from __future__ import annotations

import numpy as np

from ..ir import Graph, Op, OpKind, Tensor
from ..quantize.fixedpoint import INT32_MAX, quantize_multiplier, quantize_multiplier_smaller_than_one_exp
from .base import Layer, fail, lowering
from .common import INT8_MAX, INT8_MIN, activation_bounds, require_int8

BROADCAST_DIMS = 6  # MCUQ_BROADCAST_DIMS in runtime_c/include/mcuq_elementwise.h
# Largest rank TFLite 2.14 broadcasts for int8 (measured: its ADD broadcasts 5-D and 6-D shapes correctly, its MUL
# aborts beyond 4-D). Inputs of equal shape (after adding leading 1s) are elementwise at any rank.
TFLITE_BROADCAST_RANK = {OpKind.ADD: 6, OpKind.MUL: 4}
ADD_LEFT_SHIFT = 20  # add.cc: 20 for 8-bit inputs


def max_abs_offset(zero_point: int) -> int:
    """The largest |x - zero_point| over int8 x."""
    return max(INT8_MAX - zero_point, zero_point - INT8_MIN)


def broadcast_layout(
    out_shape: tuple[int, ...], shape1: tuple[int, ...], shape2: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Output dims and per-input element strides (0 where an input is broadcast) for the kernels' 6-D loop.

    Shapes are right-aligned as in numpy; size-1 output dimensions are dropped and neighbouring dimensions that
    both inputs traverse contiguously (or both broadcast) are merged, then leading 1s pad the result to
    BROADCAST_DIMS. Equal shapes collapse to one flat loop.
    """
    rank = len(out_shape)
    s1 = (1,) * (rank - len(shape1)) + tuple(shape1)
    s2 = (1,) * (rank - len(shape2)) + tuple(shape2)

    def strides(shape: tuple[int, ...]) -> list[int]:
        st, acc = [0] * rank, 1
        for d in reversed(range(rank)):
            st[d] = 0 if shape[d] == 1 else acc
            acc *= shape[d]
        return st

    st1, st2 = strides(s1), strides(s2)
    dims: list[list[int]] = []  # [dim, stride1, stride2], outermost first
    for d in range(rank):
        if out_shape[d] == 1:
            continue
        if dims:
            n, a, b = dims[-1]
            if a == st1[d] * out_shape[d] and b == st2[d] * out_shape[d]:
                dims[-1] = [n * out_shape[d], st1[d], st2[d]]
                continue
        dims.append([out_shape[d], st1[d], st2[d]])
    if len(dims) > BROADCAST_DIMS:
        raise ValueError(f"broadcast of {shape1} and {shape2} needs {len(dims)} loops (at most {BROADCAST_DIMS})")
    dims = [[1, 0, 0]] * (BROADCAST_DIMS - len(dims)) + dims
    cols = np.array(dims, dtype=np.int32).T
    return cols[0].copy(), cols[1].copy(), cols[2].copy()


def _broadcast(g: Graph, op: Op, t1: Tensor, t2: Tensor, out: Tensor) -> dict[str, np.ndarray]:
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
    dims, st1, st2 = broadcast_layout(tuple(out.shape), t1.shape, t2.shape)
    return {"out_dims": dims, "input1_strides": st1, "input2_strides": st2}


@lowering(OpKind.ADD)
def lower_add(g: Graph, op: Op) -> Layer:
    """reference_integer_ops::Add / BroadcastAdd6DSlow with add.cc's 8-bit Prepare."""
    t1, t2, out = require_int8(g, op, *op.inputs, *op.outputs)
    s1, s2, so = np.float32(t1.scale), np.float32(t2.scale), np.float32(out.scale)
    twice_max = float(np.float32(2.0) * max(s1, s2))  # float32 (exact), then widened to double
    reals = {
        "input1": float(s1) / twice_max,
        "input2": float(s2) / twice_max,
        "output": twice_max / float(np.float32(1 << ADD_LEFT_SHIFT) * so),
    }
    q: dict[str, tuple[int, int]] = {}
    for k, real in reals.items():
        if not 0.0 < real < 1.0:
            raise fail(g, op, f"{k} rescale factor {real:.6g} is outside (0, 1) (TFLite rejects it)")
        q[k] = quantize_multiplier_smaller_than_one_exp(real)
    act_min, act_max = activation_bounds(op.attrs.activation, out)
    params: dict = {
        "input1_zp": t1.zero_point,
        "input2_zp": t2.zero_point,
        "output_zp": out.zero_point,
        "left_shift": ADD_LEFT_SHIFT,
        "input1_multiplier": q["input1"][0],
        "input1_shift": q["input1"][1],
        "input2_multiplier": q["input2"][0],
        "input2_shift": q["input2"][1],
        "output_multiplier": q["output"][0],
        "output_shift": q["output"][1],
        "act_min": act_min,
        "act_max": act_max,
        **_broadcast(g, op, t1, t2, out),
    }
    return Layer(op, "mcuq_add_s8", "mcuq_add_params", params, (*op.inputs, *op.outputs))


@lowering(OpKind.MUL)
def lower_mul(g: Graph, op: Op) -> Layer:
    """reference_integer_ops::Mul / BroadcastMul4DSlow with mul.cc's Prepare."""
    t1, t2, out = require_int8(g, op, *op.inputs, *op.outputs)
    real = float(np.float32(np.float32(t1.scale) * np.float32(t2.scale)) / np.float32(out.scale))
    mult, shift = quantize_multiplier(real)
    if shift > 30:
        raise fail(g, op, f"output rescale factor {real:.6g} is too large")
    biggest = max_abs_offset(t1.zero_point) * max_abs_offset(t2.zero_point)
    if shift > 0 and biggest << shift > INT32_MAX:
        raise fail(g, op, f"product of inputs shifted left by {shift} overflows int32 (rescale factor {real:.6g})")
    act_min, act_max = activation_bounds(op.attrs.activation, out)
    params: dict = {
        "input1_zp": t1.zero_point,
        "input2_zp": t2.zero_point,
        "output_zp": out.zero_point,
        "output_multiplier": mult,
        "output_shift": shift,
        "act_min": act_min,
        "act_max": act_max,
        **_broadcast(g, op, t1, t2, out),
    }
    return Layer(op, "mcuq_mul_s8", "mcuq_mul_params", params, (*op.inputs, *op.outputs), macs=out.size)


def requantize_params(
    g: Graph, op: Op, inp: Tensor, out: Tensor, real: float, act_min: int, act_max: int
) -> dict[str, int]:
    """Parameters of mcuq_requantize_s8 for y = clamp(zp_out + (x - zp_in) * real, act_min, act_max)."""
    if inp.shape != out.shape:
        raise fail(g, op, f"output shape {out.shape} differs from input shape {inp.shape}")
    mult, shift = quantize_multiplier(real)
    if shift > 30:
        raise fail(g, op, f"rescale factor {real:.6g} is too large")
    if shift > 0 and max_abs_offset(inp.zero_point) << shift > INT32_MAX:
        raise fail(g, op, f"input shifted left by {shift} overflows int32 (rescale factor {real:.6g})")
    return {
        "size": out.size,
        "input_zp": inp.zero_point,
        "output_zp": out.zero_point,
        "multiplier": mult,
        "shift": shift,
        "act_min": act_min,
        "act_max": act_max,
    }


@lowering(OpKind.QUANTIZE)
def lower_quantize(g: Graph, op: Op) -> Layer:
    """QUANTIZE int8 -> int8: reference_ops::Requantize with quantize.cc's double effective scale."""
    from ..ir import DType

    src, dst = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    if src.dtype != DType.INT8 or dst.dtype != DType.INT8:
        raise fail(
            g,
            op,
            f"QUANTIZE {src.dtype.value} -> {dst.dtype.value} is not supported; mcuq compiles int8 -> int8 "
            "requantization (give the model int8 inputs and outputs)",
        )
    inp, out = require_int8(g, op, *op.inputs, *op.outputs)
    real = float(np.float64(np.float32(inp.scale)) / np.float64(np.float32(out.scale)))
    params = requantize_params(g, op, inp, out, real, INT8_MIN, INT8_MAX)
    return Layer(op, "mcuq_requantize_s8", "mcuq_requantize_params", params, (*op.inputs, *op.outputs))


from . import activations  # noqa: E402, F401  (registers RELU, RELU6, LOGISTIC, TANH, HARD_SWISH)
