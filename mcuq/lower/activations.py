"""Lowering of the int8 unary elementwise ops QUANTIZE, RELU, RELU6, LOGISTIC, TANH and HARD_SWISH, as TFLite
2.14's Prepare computes their parameters (tensorflow/lite/kernels/quantize.cc, activations.cc).

  * QUANTIZE (int8 -> int8): reference_ops::Requantize with ``double(s_in) / double(s_out)``. Its only special
    case (an XOR with 0x80 when int8 <-> uint8 differ by a zero point of 128 at equal scale) does not apply to
    int8 -> int8.
  * RELU / RELU6 (ReluPrepare, QuantizedReluX): ``in_scale / out_scale`` in float32 -> QuantizeMultiplier; the
    clamp bounds are ``max(-128, zp + roundf(0 / s))`` and ``min(127, zp + roundf(6 / s))`` in float32.
  * LOGISTIC / TANH: TFLite's int8 reference path (kReference) does not compute in fixed point: Prepare fills a
    256-entry table with float32 math (LUTPopulate / PopulateLookupTable) and Eval looks values up. mcuq fills
    the same table here, step by step in float32, calling the C library's ``expf`` / ``tanhf`` as TFLite does
    (glibc's ``tanhf`` is not correctly rounded, and one ulp can move an entry across a rounding boundary).
    LOGISTIC requires an output scale of exactly 1/256 (any zero point); TANH accepts any output quantization.
  * HARD_SWISH (HardSwishPrepare): float32 multipliers quantized to 32 bits, then narrowed to 16 bits with
    DownScaleInt32ToInt16Multiplier.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable

import numpy as np

from ..ir import Activation, DType, Graph, Op, OpKind, Tensor
from ..kernels.elementwise import HARD_SWISH_S8, LUT_S8, REQUANTIZE_S8, HardSwishParams, LutParams, RequantizeParams
from ..kernels.types import ActivationRange
from ..quant.fixedpoint import INT32_MAX, quantize_multiplier
from ..quant.values import round_half_away
from .base import Layer, fail, lowering
from .common import INT8_MAX, INT8_MIN, activation_range, max_abs_offset, require_int8

INT16_MAX = 2**15 - 1
HARD_SWISH_MAX_RELUISH_EXPONENT = 16  # HARD_SWISH's 16-bit arithmetic: larger input scales are rejected


@functools.lru_cache(maxsize=1)
def _libm() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("m")
    try:
        lib = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    if lib is None:
        return None
    for fn in ("expf", "tanhf"):
        f = getattr(lib, fn, None)
        if f is None:
            return None
        f.restype = ctypes.c_float
        f.argtypes = [ctypes.c_float]
    return lib


def _float_fn(name: str) -> Callable[[np.ndarray], np.ndarray]:
    """The C library's float function ``name`` (expf, tanhf) over a float32 array; without a C library, the
    correctly rounded float32 value (computed in double)."""
    lib = _libm()
    if lib is not None:
        f = getattr(lib, name)
        return lambda xs: np.array([f(float(x)) for x in xs], dtype=np.float32)
    g = {"expf": np.exp, "tanhf": np.tanh}[name]
    return lambda xs: g(xs.astype(np.float64)).astype(np.float32)


def _sigmoid_f32(x: np.ndarray) -> np.ndarray:
    """``1.0f / (1.0f + std::exp(-value))`` in float32."""
    one = np.float32(1.0)
    return one / (one + _float_fn("expf")(-x))


def _tanh_f32(x: np.ndarray) -> np.ndarray:
    return _float_fn("tanhf")(x)


def lut_table(
    in_scale: float, in_zp: int, out_scale: float, out_zp: int, fn: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """TFLite's LUTPopulate<int8_t> / PopulateLookupTable: table[(uint8)x] = clamp(round(fn(s_in * (x - zp_in))
    / s_out) + zp_out), every step in float32. Returns int8[256] indexed by the input's bit pattern."""
    vals = np.arange(INT8_MIN, INT8_MAX + 1, dtype=np.int32)
    with np.errstate(over="ignore", invalid="ignore"):  # huge scales saturate to +-inf, clamped below as in TFLite
        inverse_scale = np.float32(1.0) / np.float32(out_scale)
        dequantized = np.float32(in_scale) * (vals - in_zp).astype(np.float32)
        transformed = fn(dequantized).astype(np.float32)
        rescaled = round_half_away(transformed * inverse_scale)  # float32 product, rounded
    quantized = np.clip(rescaled + out_zp, INT8_MIN, INT8_MAX).astype(np.int32)  # exact: small integers
    table = np.zeros(256, dtype=np.int8)
    table[vals.astype(np.int8).view(np.uint8)] = quantized.astype(np.int8)
    return table


def _unary(g: Graph, op: Op) -> tuple[Tensor, Tensor]:
    """The int8 input and output of a unary op, which must have the same shape."""
    inp, out = require_int8(g, op, *op.inputs, *op.outputs)
    if inp.shape != out.shape:
        raise fail(g, op, f"output shape {out.shape} differs from input shape {inp.shape}")
    return inp, out


def requantize_params(
    g: Graph, op: Op, inp: Tensor, out: Tensor, real: float, activation: ActivationRange
) -> RequantizeParams:
    """Parameters of mcuq_requantize_s8 for y = clamp(zp_out + (x - zp_in) * real, activation)."""
    mult, shift = quantize_multiplier(real)
    if shift > 30:
        raise fail(g, op, f"rescale factor {real:.6g} is too large")
    if shift > 0 and max_abs_offset(inp.zero_point) << shift > INT32_MAX:
        raise fail(g, op, f"input shifted left by {shift} overflows int32 (rescale factor {real:.6g})")
    return RequantizeParams(out.size, inp.zero_point, out.zero_point, mult, shift, activation)


@lowering(OpKind.QUANTIZE)
def lower_quantize(g: Graph, op: Op) -> Layer:
    """QUANTIZE int8 -> int8: reference_ops::Requantize with quantize.cc's double effective scale (int16 on
    either side: elementwise16.py)."""
    src, dst = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    if DType.INT16 in (src.dtype, dst.dtype):
        from .elementwise16 import lower_quantize16

        return lower_quantize16(g, op)
    if src.dtype != DType.INT8 or dst.dtype != DType.INT8:
        raise fail(
            g,
            op,
            f"QUANTIZE {src.dtype.value} -> {dst.dtype.value} is not supported; mcuq compiles int8 -> int8 "
            "requantization (give the model int8 inputs and outputs)",
        )
    inp, out = _unary(g, op)
    real = float(np.float64(np.float32(inp.scale)) / np.float64(np.float32(out.scale)))
    params = requantize_params(g, op, inp, out, real, ActivationRange(INT8_MIN, INT8_MAX))
    return Layer(op, REQUANTIZE_S8, params, (*op.inputs, *op.outputs))


@lowering(OpKind.RELU, OpKind.RELU6)
def lower_relu(g: Graph, op: Op) -> Layer:
    """ReluPrepare + QuantizedReluX: a requantization clamped to the activation's range."""
    inp, out = _unary(g, op)
    real = float(np.float32(inp.scale) / np.float32(out.scale))  # float / float, widened to double
    act = Activation.RELU if op.kind == OpKind.RELU else Activation.RELU6
    params = requantize_params(g, op, inp, out, real, activation_range(act, out))
    return Layer(op, REQUANTIZE_S8, params, (*op.inputs, *op.outputs))


@lowering(OpKind.SIGMOID, OpKind.TANH)
def lower_lut(g: Graph, op: Op) -> Layer:
    """SigmoidPrepare / TanhPrepare (kReference, int8): a 256-entry table (int16: elementwise16.py)."""
    from .elementwise16 import is_int16, lower_tanh_logistic16

    if is_int16(g, op):
        return lower_tanh_logistic16(g, op)
    inp, out = _unary(g, op)
    if op.kind == OpKind.SIGMOID:
        if float(np.float32(out.scale)) != 1.0 / 256:
            raise fail(g, op, f"LOGISTIC needs an output scale of 1/256 (TFLite checks it); got {out.scale}")
        fn = _sigmoid_f32
    else:
        fn = _tanh_f32
    table = lut_table(inp.scale, inp.zero_point, out.scale, out.zero_point, fn)
    return Layer(op, LUT_S8, LutParams(out.size, table), (*op.inputs, *op.outputs))


def downscale_int32_to_int16_multiplier(m: int) -> int:
    """TFLite's DownScaleInt32ToInt16Multiplier: round a Q31 multiplier to Q15, saturating."""
    assert m >= 0
    if m >= INT32_MAX - (1 << 15):
        return INT16_MAX
    return (m + (1 << 15)) >> 16


@lowering(OpKind.HARD_SWISH)
def lower_hard_swish(g: Graph, op: Op) -> Layer:
    """HardSwishPrepare: every scale in float32, multipliers quantized to 32 bits then narrowed to 16."""
    inp, out = _unary(g, op)
    hires_input_scale = np.float32(1.0 / 128.0) * np.float32(inp.scale)
    reluish_scale = np.float32(3.0) / np.float32(32768.0)
    out_m32, out_exp = quantize_multiplier(float(hires_input_scale / np.float32(out.scale)))
    if out_exp > 0:
        raise fail(g, op, "output scale is too small for TFLite's HARD_SWISH (output multiplier exponent > 0)")
    rel_m32, rel_exp = quantize_multiplier(float(hires_input_scale / reluish_scale))
    if rel_exp > HARD_SWISH_MAX_RELUISH_EXPONENT:
        raise fail(g, op, f"input scale {inp.scale} is too large for HARD_SWISH's 16-bit arithmetic")
    params = HardSwishParams(
        size=out.size,
        input_zp=inp.zero_point,
        output_zp=out.zero_point,
        output_multiplier_fixedpoint_int16=downscale_int32_to_int16_multiplier(out_m32),
        output_multiplier_exponent=out_exp,
        reluish_multiplier_fixedpoint_int16=downscale_int32_to_int16_multiplier(rel_m32),
        reluish_multiplier_exponent=rel_exp,
    )
    return Layer(op, HARD_SWISH_S8, params, (*op.inputs, *op.outputs))
