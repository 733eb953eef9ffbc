"""Lowering of the 16x8 (int16 activation) elementwise ops and SOFTMAX, as TFLite 2.14's Prepare computes their
parameters for int16 (add.cc, sub.cc, mul.cc, quantize.cc, activations.cc). lower/elementwise.py,
lower/activations.py and lower/softmax.py call these when an op's activations are int16.

  * ADD, SUB: the general int16 path (pot_scale_int16 false, as TFLite's converter writes 16x8 models): int8's
    rescaling with a left shift of 15 instead of 20. A model whose AddOptions/SubOptions keep pot_scale_int16 true
    with power-of-two scales selects TFLite's LSTM-only power-of-two path instead, which mcuq refuses.
  * MUL: mul.cc's float32 ``s1 * s2 / s_out`` and QuantizeMultiplier; zero points 0.
  * QUANTIZE int8 -> int16, int16 -> int8, int16 -> int16: reference_ops::Requantize with ``double(s_in) /
    double(s_out)``, clamped to the output type.
  * LOGISTIC, TANH: output scale 2^-15 and zero point 0; the input is rescaled by an integer multiplier and a right
    shift onto the sigmoid table's grid (a power-of-two input scale takes TFLite's multiplier-3 path).
  * SOFTMAX: output scale 1/32768 and zero point 0; the input rescale ``s_in * beta / (10 / 65535)`` and the two
    interpolation tables (lower/lut16.py).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

import numpy as np

from ..ir import DType, Graph, Op, OpKind, SoftmaxAttrs, Tensor
from ..kernels.elementwise16 import (
    ADD_S16,
    ADD_S16_LEFT_SHIFT,
    LOGISTIC_S16,
    MUL_S16,
    REQUANTIZE_S8_S16,
    REQUANTIZE_S16,
    REQUANTIZE_S16_S8,
    SOFTMAX_S16,
    SOFTMAX_S16_MAX_DEPTH,
    SUB_S16,
    TANH_S16,
    AddS16Params,
    MulS16Params,
    RequantizeS16Params,
    SoftmaxS16Params,
    TanhLogisticS16Params,
)
from ..kernels.pool16 import ActivationRange16
from ..quant.fixedpoint import INT32_MAX, quantize_multiplier, quantize_multiplier_smaller_than_one_exp
from .base import Layer, fail
from .common import activation_bounds, broadcast_layout, dtype_range, max_abs_offset, require_act
from .lut16 import softmax_luts

# Largest rank TFLite 2.14 broadcasts int16 operands to (measured: ADD and SUB as for int8; MUL aborts beyond 4-D).
# Equal shapes (after adding leading 1s) are elementwise at any rank.
INT16_BROADCAST_RANK = {OpKind.ADD: 6, OpKind.SUB: 5, OpKind.MUL: 4}


def is_int16(g: Graph, op: Op) -> bool:
    """Whether any activation the op reads or writes is int16 (the op then lowers here)."""
    return any(n and not isinstance(n, tuple) and g.tensors[n].dtype == DType.INT16 for n in (*op.inputs, *op.outputs))


def _range16(out: Tensor, op: Op) -> ActivationRange16:
    return ActivationRange16(*activation_bounds(op.attrs.activation, out))


def _broadcast(g: Graph, op: Op, t1: Tensor, t2: Tensor, out: Tensor):
    try:
        shape = np.broadcast_shapes(t1.shape, t2.shape)
    except ValueError:
        raise fail(g, op, f"input shapes {t1.shape} and {t2.shape} do not broadcast") from None
    if tuple(shape) != tuple(out.shape):
        raise fail(g, op, f"output shape {out.shape} is not the broadcast shape {tuple(shape)} of the inputs")
    rank = max(len(t1.shape), len(t2.shape))
    same = (1,) * (rank - len(t1.shape)) + t1.shape == (1,) * (rank - len(t2.shape)) + t2.shape
    limit = INT16_BROADCAST_RANK[op.kind]
    if not same and rank > limit:
        raise fail(g, op, f"TFLite 2.14 broadcasts int16 {op.type_name} up to {limit}-D; the inputs are {rank}-D")
    return broadcast_layout(tuple(out.shape), t1.shape, t2.shape)


@functools.lru_cache(maxsize=1)
def _logf():
    name = ctypes.util.find_library("m")
    try:
        f = ctypes.CDLL(name).logf if name else None
    except (OSError, AttributeError):
        return None
    f.restype, f.argtypes = ctypes.c_float, [ctypes.c_float]
    return f


def checked_log2(x: float) -> tuple[bool, int]:
    """TFLite's CheckedLog2 in float32: (whether x is a power of two within 1e-3 in log2, the rounded log2)."""
    f = _logf()
    ln = np.float32(f(float(x))) if f is not None else np.float32(np.log(np.float32(x)))
    log2 = ln * (np.float32(1.0) / np.float32(f(2.0) if f is not None else np.log(np.float32(2.0))))
    rounded = np.float32(np.sign(log2) * np.floor(abs(log2) + np.float32(0.5)))
    return bool(abs(np.float32(log2 - rounded)) < np.float32(1e-3)), int(rounded)


def _pot_int16_path(g: Graph, op: Op, tensors: tuple[Tensor, ...]) -> bool:
    """Whether TFLite would take its power-of-two int16 path (pot_scale_int16 true and every scale a power of two;
    add.cc also needs zero points 0, which int16 tensors have)."""
    return bool(getattr(op.attrs, "pot_scale_int16", False)) and all(checked_log2(t.scale)[0] for t in tensors)


def lower_add_sub16(g: Graph, op: Op) -> Layer:
    """add.cc / sub.cc, general int16 path: ArithmeticParams with left_shift 15."""
    t1, t2, out = require_act(g, op, *op.inputs, *op.outputs, allow=(DType.INT16,))
    if _pot_int16_path(g, op, (t1, t2, out)):
        raise fail(
            g,
            op,
            "pot_scale_int16 is set and every scale is a power of two: TFLite's LSTM-only power-of-two int16 "
            "path, which mcuq does not implement (write the op with pot_scale_int16 false, as TFLite's converter does)",
        )
    s1, s2, so = np.float32(t1.scale), np.float32(t2.scale), np.float32(out.scale)
    with np.errstate(over="ignore"):
        twice_max = float(np.float32(2.0) * max(s1, s2))
        shifted_out = float(np.float32(1 << ADD_S16_LEFT_SHIFT) * so)
    if not (np.isfinite(twice_max) and np.isfinite(shifted_out)):
        raise fail(g, op, f"scales {float(s1):g}, {float(s2):g}, {float(so):g} overflow float32 in TFLite's rescaling")
    reals = {"input1": float(s1) / twice_max, "input2": float(s2) / twice_max, "output": twice_max / shifted_out}
    q: dict[str, tuple[int, int]] = {}
    for k, real in reals.items():
        if not 0.0 < real < 1.0:
            raise fail(g, op, f"{k} rescale factor {real:.6g} is outside (0, 1) (TFLite rejects it)")
        q[k] = quantize_multiplier_smaller_than_one_exp(real)
    params = AddS16Params(
        input1_zp=t1.zero_point,
        input2_zp=t2.zero_point,
        output_zp=out.zero_point,
        left_shift=ADD_S16_LEFT_SHIFT,
        input1_multiplier=q["input1"][0],
        input1_shift=q["input1"][1],
        input2_multiplier=q["input2"][0],
        input2_shift=q["input2"][1],
        output_multiplier=q["output"][0],
        output_shift=q["output"][1],
        activation=_range16(out, op),
        broadcast=_broadcast(g, op, t1, t2, out),
    )
    kernel = ADD_S16 if op.kind == OpKind.ADD else SUB_S16
    return Layer(op, kernel, params, (*op.inputs, *op.outputs))


def lower_mul16(g: Graph, op: Op) -> Layer:
    """mul.cc for int16: reference_integer_ops::Mul (MulElementwise) with zero points 0."""
    t1, t2, out = require_act(g, op, *op.inputs, *op.outputs, allow=(DType.INT16,))
    with np.errstate(over="ignore"):
        real = float(np.float32(np.float32(t1.scale) * np.float32(t2.scale)) / np.float32(out.scale))
    if not np.isfinite(real):
        raise fail(g, op, f"scales {t1.scale:g} x {t2.scale:g} / {out.scale:g} overflow float32 in TFLite's rescaling")
    mult, shift = quantize_multiplier(real)
    if shift > 0:  # |x1 * x2| reaches 2^30: any left shift can overflow int32
        raise fail(
            g, op, f"output rescale factor {real:.6g} >= 1: the int16 product shifted left by {shift} overflows int32"
        )
    params = MulS16Params(
        input1_zp=0,
        input2_zp=0,
        output_zp=0,
        output_multiplier=mult,
        output_shift=shift,
        activation=_range16(out, op),
        broadcast=_broadcast(g, op, t1, t2, out),
    )
    return Layer(op, MUL_S16, params, (*op.inputs, *op.outputs), macs=out.size)


_REQUANTIZE = {
    (DType.INT16, DType.INT16): REQUANTIZE_S16,
    (DType.INT8, DType.INT16): REQUANTIZE_S8_S16,
    (DType.INT16, DType.INT8): REQUANTIZE_S16_S8,
}


def lower_quantize16(g: Graph, op: Op) -> Layer:
    """quantize.cc: reference_ops::Requantize between int8 and int16 (or int16 and int16)."""
    src, dst = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    kernel = _REQUANTIZE.get((src.dtype, dst.dtype))
    if kernel is None:
        raise fail(g, op, f"QUANTIZE {src.dtype.value} -> {dst.dtype.value} is not supported")
    (inp,) = require_act(g, op, op.inputs[0], allow=(src.dtype,))
    (out,) = require_act(g, op, op.outputs[0], allow=(dst.dtype,))
    if inp.shape != out.shape:
        raise fail(g, op, f"output shape {out.shape} differs from input shape {inp.shape}")
    real = float(np.float64(np.float32(inp.scale)) / np.float64(np.float32(out.scale)))
    mult, shift = quantize_multiplier(real)
    if shift > 30:
        raise fail(g, op, f"rescale factor {real:.6g} is too large")
    if shift > 0 and max_abs_offset(inp.zero_point, inp.dtype) << shift > INT32_MAX:
        raise fail(g, op, f"input shifted left by {shift} overflows int32 (rescale factor {real:.6g})")
    lo, hi = dtype_range(out.dtype)
    params = RequantizeS16Params(out.size, inp.zero_point, out.zero_point, mult, shift, ActivationRange16(lo, hi))
    return Layer(op, kernel, params, (*op.inputs, *op.outputs))


# activations.cc's int16 LOGISTIC / TANH Prepare: the input's integer bits (the table spans [-8, 8) at the
# power-of-two scale 2^-12 for LOGISTIC, [-4, 4) at 2^-12 and 2^-11 for TANH) and the output's 15 fraction bits.
_INPUT_INTEGER_BITS = 3
_OUTPUT_FRACTIONAL_BITS = 15


def lower_tanh_logistic16(g: Graph, op: Op) -> Layer:
    """SigmoidPrepare / TanhPrepare for int16 and reference_integer_ops::Logistic / Tanh."""
    inp, out = require_act(g, op, *op.inputs, *op.outputs, allow=(DType.INT16,))
    if inp.shape != out.shape:
        raise fail(g, op, f"output shape {out.shape} differs from input shape {inp.shape}")
    pot_out, log2_out = checked_log2(out.scale)
    if not pot_out or log2_out != -_OUTPUT_FRACTIONAL_BITS:
        raise fail(g, op, f"int16 {op.type_name} needs an output scale of 2^-15 (TFLite checks it); got {out.scale:g}")
    pot_in, log2_in = checked_log2(inp.scale)
    left_shift = (15 - _INPUT_INTEGER_BITS) + log2_in
    pot_shifts = (0, 1) if op.kind == OpKind.TANH else (0,)
    if pot_in and left_shift in pot_shifts:
        multiplier, left_shift = 3 << left_shift, 0  # the kernel's power-of-two case, resolved here
    else:
        m = float(np.float32(inp.scale)) * 4096.0 * 3.0
        left_shift = 0
        while m <= 32767.0 / 2.0 and left_shift <= 30:
            left_shift += 1
            m *= 2.0
        if not m < 2.0**31:
            raise fail(g, op, f"input scale {inp.scale:g} is too large for TFLite's int16 {op.type_name}")
        multiplier = int(m)
        # (x * multiplier + round) must stay in int32 for every int16 x, and a multiplier of 0 would mean the
        # power-of-two case to TFLite's kernel
        limit = 65535 if left_shift == 0 else 32767
        if not 1 <= multiplier <= limit:
            raise fail(g, op, f"input scale {inp.scale:g} is outside what TFLite's int16 {op.type_name} can rescale")
    params = TanhLogisticS16Params(out.size, multiplier, left_shift)
    kernel = TANH_S16 if op.kind == OpKind.TANH else LOGISTIC_S16
    return Layer(op, kernel, params, (*op.inputs, *op.outputs))


def lower_softmax16(g: Graph, op: Op) -> Layer:
    """SoftmaxPrepare for int16 and reference_ops::SoftmaxInt16 over the last axis."""
    attrs = op.attrs
    assert isinstance(attrs, SoftmaxAttrs)
    if len(op.inputs) != 1 or len(op.outputs) != 1:
        raise fail(g, op, "SOFTMAX takes one input and one output")
    x, y = require_act(g, op, op.inputs[0], op.outputs[0], allow=(DType.INT16,))
    if len(x.shape) < 1 or tuple(x.shape) != tuple(y.shape):
        raise fail(g, op, f"input shape {x.shape} and output shape {y.shape} must be equal and of rank >= 1")
    target = np.float32(1.0) / np.float32(32768.0)
    if abs(np.float32(y.scale) - target) > np.float32(0.001) * target:
        raise fail(g, op, f"int16 SOFTMAX output scale must be 1/32768 (TFLite requires it), not {y.scale:g}")
    with np.errstate(over="ignore"):
        real = float(np.float32(np.float32(x.scale) * np.float32(attrs.beta))) / (10.0 / 65535.0)
    if not (np.isfinite(real) and real > 0.0):
        raise fail(g, op, f"beta * input scale = {attrs.beta:g} * {x.scale:g} must be positive and finite")
    mult, shift = quantize_multiplier(real)
    if shift > 15:  # differences reach -65535: a larger left shift overflows int32
        raise fail(g, op, f"beta * input scale = {attrs.beta:g} * {x.scale:g} is too large for int16 SOFTMAX")
    depth = int(x.shape[-1])
    if depth < 1:
        raise fail(g, op, "SOFTMAX over an empty last axis")
    if depth > SOFTMAX_S16_MAX_DEPTH:
        raise fail(g, op, f"int16 SOFTMAX over {depth} > {SOFTMAX_S16_MAX_DEPTH} classes would overflow its int32 sum")
    exp_lut, recip_lut = softmax_luts()
    params = SoftmaxS16Params(x.size // depth, depth, mult, shift, exp_lut, recip_lut)
    return Layer(op, SOFTMAX_S16, params, (op.inputs[0], op.outputs[0]))
