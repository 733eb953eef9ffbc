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
  * LEAKY_RELU (LeakyReluPrepare, QuantizeLeakyRelu): TFLite's integer formula with its two multipliers, evaluated
    here for all 256 inputs into a table (mcuq_lut_s8). HARD_SIGMOID and CLIP (ONNX ops, no TFLite int8 kernel):
    tables of the float formula on each dequantized input, quantized as a QDQ model does; a CLIP whose bounds are
    RELU's, RELU6's or RELU_N1_TO_1's lowers as that TFLite op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import math
from collections.abc import Callable

import numpy as np

from ..ir import Activation, ClipAttrs, DType, Graph, HardSigmoidAttrs, LeakyReluAttrs, Op, OpKind, Tensor
from ..kernels.elementwise import HARD_SWISH_S8, LUT_S8, REQUANTIZE_S8, HardSwishParams, LutParams, RequantizeParams
from ..kernels.types import ActivationRange
from ..quant.fixedpoint import INT32_MAX, multiply_by_quantized_multiplier, quantize_multiplier
from ..quant.values import affine_quantize, round_half_away
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


# -- LEAKY_RELU, HARD_SIGMOID, CLIP: 256-entry tables computed here, looked up by mcuq_lut_s8 ---------------------

# CLIP bounds that are a TFLite activation op: lowered as that op (a requantization clamped to the bounds), so a
# model written with it (tflite_writer) gives the same bits in tflite-runtime
CLIP_AS_RELU = {(0.0, math.inf): Activation.RELU, (0.0, 6.0): Activation.RELU6, (-1.0, 1.0): Activation.RELU_N1_TO_1}


_ATTRS = {
    OpKind.LEAKY_RELU: (LeakyReluAttrs, ("alpha",)),
    OpKind.HARD_SIGMOID: (HardSigmoidAttrs, ("alpha", "beta")),
    OpKind.CLIP: (ClipAttrs, ("min", "max")),
}


def attrs_problem(op: Op) -> str | None:
    """Why the attributes of a LEAKY_RELU, HARD_SIGMOID or CLIP cannot be computed (None: they can): every value
    must be a finite float32 (CLIP's bounds may be infinite, not NaN)."""
    cls, fields = _ATTRS[op.kind]
    if not isinstance(op.attrs, cls):
        return f"attributes are {type(op.attrs).__name__}, expected {cls.__name__}"
    values = [getattr(op.attrs, f) for f in fields]
    if not all(isinstance(v, (int, float)) for v in values):
        return f"{', '.join(f'{f} {v!r}' for f, v in zip(fields, values))}: numbers expected"
    with np.errstate(over="ignore"):
        f32 = [float(np.float32(v)) for v in values]
    bad = any(math.isnan(v) for v in f32) if op.kind is OpKind.CLIP else not all(math.isfinite(v) for v in f32)
    if bad:
        what = "bounds" if op.kind is OpKind.CLIP else "finite float32 values"
        return f"{', '.join(f'{f} {v:g}' for f, v in zip(fields, values))}: must be {what}" + (
            " (an absent bound is -inf or inf)" if op.kind is OpKind.CLIP else "")  # fmt: skip
    return None


def clip_bounds(op: Op) -> tuple[np.float32, np.float32]:
    """CLIP's bounds as float32 (ONNX holds them as tensors of the input's type)."""
    with np.errstate(over="ignore"):
        return np.float32(op.attrs.min), np.float32(op.attrs.max)


def leaky_relu_table(in_scale: float, in_zp: int, out_scale: float, out_zp: int, alpha: float) -> np.ndarray:
    """TFLite's int8 LEAKY_RELU as a table (activations.cc LeakyReluPrepare, reference_ops::QuantizeLeakyRelu):
    ``s_in * alpha / s_out`` and ``s_in / s_out`` in float32, each through QuantizeMultiplier; an input at or above
    its zero point uses the identity multiplier, one below it the alpha one; plus the output zero point, clamped.
    Returns int8[256] indexed by the input's bit pattern. The lowering checks the shifts first."""
    vals = np.arange(INT8_MIN, INT8_MAX + 1, dtype=np.int64)
    (m_id, s_id), (m_a, s_a) = leaky_relu_multipliers(in_scale, out_scale, alpha)
    d = vals - in_zp
    y = np.where(d >= 0, multiply_by_quantized_multiplier(d, m_id, s_id), multiply_by_quantized_multiplier(d, m_a, s_a))
    table = np.zeros(256, dtype=np.int8)
    table[vals.astype(np.int8).view(np.uint8)] = np.clip(y + out_zp, INT8_MIN, INT8_MAX).astype(np.int8)
    return table


def leaky_relu_multipliers(in_scale: float, out_scale: float, alpha: float) -> tuple[tuple[int, int], tuple[int, int]]:
    """((identity multiplier, shift), (alpha multiplier, shift)) as LeakyReluPrepare computes them (float32)."""
    s_in, s_out = np.float32(in_scale), np.float32(out_scale)
    with np.errstate(over="ignore"):
        alpha_real = float(s_in * np.float32(alpha) / s_out)
    return quantize_multiplier(float(s_in / s_out)), quantize_multiplier(alpha_real)


def _leaky_relu_problem(inp: Tensor, out: Tensor, alpha: float) -> str | None:
    s_in, s_out = np.float32(inp.scale), np.float32(out.scale)
    with np.errstate(over="ignore"):
        reals = {"identity": s_in / s_out, "alpha": s_in * np.float32(alpha) / s_out}
    offsets = {"identity": INT8_MAX - inp.zero_point, "alpha": inp.zero_point - INT8_MIN}  # |x - zp| on each side
    for what, real in reals.items():
        if not np.isfinite(real):
            return f"the {what} rescale factor overflows float32 (alpha {alpha}, scales {inp.scale} -> {out.scale})"
        _, shift = quantize_multiplier(float(real))
        if shift > 30 or (shift > 0 and offsets[what] << shift > INT32_MAX):
            return f"the {what} rescale factor {float(real):.6g} is too large (the input shifted left overflows int32)"
    return None


def float_table(inp: Tensor, out: Tensor, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """The table of an op TFLite has no int8 kernel for, as an ONNX QDQ model computes it (DequantizeLinear -> op
    -> QuantizeLinear): ``fn`` in float32 on ``s_in * (x - zp_in)`` (a float32 product), then quantized as mcuq
    quantizes everywhere (TFLite's AffineQuantize: ``y / s_out`` in float32, rounded half away from zero, plus the
    zero point, clamped). ONNX's QuantizeLinear rounds half to even instead: the two differ only on exact ties."""
    vals = np.arange(INT8_MIN, INT8_MAX + 1, dtype=np.int32)
    with np.errstate(over="ignore", invalid="ignore"):
        y = fn(np.float32(inp.scale) * (vals - inp.zero_point).astype(np.float32)).astype(np.float32)
    table = np.zeros(256, dtype=np.int8)
    table[vals.astype(np.int8).view(np.uint8)] = affine_quantize(y, out.scale, out.zero_point, DType.INT8)
    return table


def hard_sigmoid_f32(alpha: float, beta: float) -> Callable[[np.ndarray], np.ndarray]:
    """ONNX HardSigmoid in float32: max(0, min(1, alpha * x + beta)), each step rounded to float32."""
    a, b = np.float32(alpha), np.float32(beta)
    return lambda x: np.minimum(np.maximum(a * x + b, np.float32(0.0)), np.float32(1.0))


def _int8_only(g: Graph, op: Op) -> tuple[Tensor, Tensor]:
    problem = attrs_problem(op)
    if problem is not None:
        raise fail(g, op, problem)
    if DType.INT16 in (g.tensors[n].dtype for n in (*op.inputs, *op.outputs) if n):
        raise fail(g, op, f"{op.type_name} has int16 activations; mcuq has no 16x8 kernel for it (keep the layer "
                   "that feeds it at int8 activations)")  # fmt: skip
    return _unary(g, op)


@lowering(OpKind.LEAKY_RELU)
def lower_leaky_relu(g: Graph, op: Op) -> Layer:
    """TFLite's int8 LEAKY_RELU, bit-exact, as a table (``leaky_relu_table``)."""
    inp, out = _int8_only(g, op)
    problem = _leaky_relu_problem(inp, out, op.attrs.alpha)
    if problem is not None:
        raise fail(g, op, problem)
    table = leaky_relu_table(inp.scale, inp.zero_point, out.scale, out.zero_point, op.attrs.alpha)
    return Layer(op, LUT_S8, LutParams(out.size, table), (*op.inputs, *op.outputs))


@lowering(OpKind.HARD_SIGMOID)
def lower_hard_sigmoid(g: Graph, op: Op) -> Layer:
    """ONNX HardSigmoid: no TFLite kernel; a table of the float formula (``float_table``)."""
    inp, out = _int8_only(g, op)
    table = float_table(inp, out, hard_sigmoid_f32(op.attrs.alpha, op.attrs.beta))
    return Layer(op, LUT_S8, LutParams(out.size, table), (*op.inputs, *op.outputs))


@lowering(OpKind.CLIP)
def lower_clip(g: Graph, op: Op) -> Layer:
    """CLIP with the bounds of RELU, RELU6 or RELU_N1_TO_1: as that TFLite op (ReluPrepare, QuantizedReluX); any
    other bounds: a table of the float clamp (``float_table``)."""
    inp, out = _int8_only(g, op)
    lo, hi = clip_bounds(op)
    act = CLIP_AS_RELU.get((float(lo), float(hi)))
    if act is not None:
        real = float(np.float32(inp.scale) / np.float32(out.scale))
        params = requantize_params(g, op, inp, out, real, activation_range(act, out))
        return Layer(op, REQUANTIZE_S8, params, (*op.inputs, *op.outputs))
    table = float_table(inp, out, lambda x: np.minimum(np.maximum(x, lo), hi))
    return Layer(op, LUT_S8, LutParams(out.size, table), (*op.inputs, *op.outputs))
