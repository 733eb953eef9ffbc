"""Lowering of SOFTMAX (int8 in, int8 out) to TFLite 2.14's reference fixed-point softmax.

tflite-runtime 2.14's SoftmaxPrepare with kReference kernels (tensorflow/lite/kernels/activations.cc) requires
an int8 output with zero point -128 and a scale within 0.001 * (1/256) of 1/256 (TF_LITE_ENSURE_NEAR, in float),
then computes, in double (quantization_util.cc):

* PreprocessSoftmaxScaling(beta, input_scale, kScaledDiffIntegerBits=5): the real multiplier
  ``min(beta * input_scale * 2^26, 2^31 - 1)`` goes through QuantizeMultiplierGreaterThanOne (TFLite aborts
  when it is not > 1), giving (input_multiplier, input_left_shift >= 0);
* diff_min = -CalculateInputRadius(5, input_left_shift) = -floor(31 * 2^26 / 2^input_left_shift).

SoftmaxEval then runs reference_ops::Softmax, gemmlowp's fixed point over the last axis (see
runtime_c/src/softmax/mcuq_softmax_s8.c). No lookup table: that is the optimized kernels' path. One quirk is
reproduced on purpose: when a row's sum of exps reaches 2^28 (exps adding up to 512 * exp(0), so only rows of 512
or more elements), TFLite's final shift exceeds 31 and the x86-64 oracle then saturates most outputs to 127.
"""

from __future__ import annotations

import math

import numpy as np

from ..ir import Graph, Op, OpKind, SoftmaxAttrs
from ..kernels.softmax import SOFTMAX_MAX_DEPTH, SOFTMAX_S8, SoftmaxParams
from ..quant.fixedpoint import quantize_multiplier_greater_than_one
from .base import Layer, fail, lowering
from .common import require_int8

SCALED_DIFF_INTEGER_BITS = 5


def preprocess_softmax_scaling(beta: float, input_scale: float, input_integer_bits: int) -> tuple[int, int] | None:
    """TFLite's PreprocessSoftmaxScaling (double rounding build): (multiplier, left_shift), or None where
    TFLite's QuantizeMultiplierGreaterThanOne would abort (real multiplier <= 1)."""
    real = float(
        np.float64(np.float32(beta)) * np.float64(np.float32(input_scale)) * float(1 << (31 - input_integer_bits))
    )
    real = min(real, float((1 << 31) - 1))
    if not real > 1.0:
        return None
    return quantize_multiplier_greater_than_one(real)


def calculate_input_radius(input_integer_bits: int, input_left_shift: int, total_signed_bits: int = 31) -> int:
    """TFLite's CalculateInputRadius: floor of the largest input that does not saturate after rescaling."""
    max_input_rescaled = (
        1.0 * ((1 << input_integer_bits) - 1) * float(1 << (total_signed_bits - input_integer_bits))
    ) / float(1 << input_left_shift)
    return int(math.floor(max_input_rescaled))


@lowering(OpKind.SOFTMAX)
def lower_softmax(g: Graph, op: Op) -> Layer:
    from .elementwise16 import is_int16, lower_softmax16

    if is_int16(g, op):
        return lower_softmax16(g, op)
    attrs = op.attrs
    assert isinstance(attrs, SoftmaxAttrs)
    if len(op.inputs) != 1 or len(op.outputs) != 1:
        raise fail(g, op, "SOFTMAX takes one input and one output")
    require_int8(g, op, op.inputs[0], op.outputs[0])
    x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    if x.qparams.per_channel or y.qparams.per_channel:
        raise fail(g, op, "per-channel quantization is not supported for SOFTMAX")
    if len(x.shape) < 1 or tuple(x.shape) != tuple(y.shape):
        raise fail(g, op, f"input shape {x.shape} and output shape {y.shape} must be equal and of rank >= 1")
    if y.zero_point != -128:
        raise fail(g, op, f"int8 SOFTMAX output zero point must be -128 (TFLite requires it), not {y.zero_point}")
    target = np.float32(1.0) / np.float32(256.0)
    tolerance = np.float32(0.001) * target
    delta = abs(np.float32(y.scale) - target)
    if delta > tolerance:
        raise fail(g, op, f"int8 SOFTMAX output scale must be 1/256 (TFLite requires it), not {y.scale:g}")
    scaling = preprocess_softmax_scaling(attrs.beta, x.scale, SCALED_DIFF_INTEGER_BITS)
    if scaling is None:
        raise fail(
            g,
            op,
            f"beta * input scale = {attrs.beta:g} * {x.scale:g} is too small (TFLite's PreprocessSoftmaxScaling "
            "needs beta * input_scale * 2^26 > 1)",
        )
    multiplier, left_shift = scaling
    diff_min = -calculate_input_radius(SCALED_DIFF_INTEGER_BITS, left_shift)
    depth = int(x.shape[-1])
    if depth < 1:
        raise fail(g, op, "SOFTMAX over an empty last axis")
    if depth > SOFTMAX_MAX_DEPTH:
        raise fail(
            g, op, f"SOFTMAX over {depth} > {SOFTMAX_MAX_DEPTH} classes would overflow TFLite's int32 sum of exps"
        )
    params = SoftmaxParams(
        outer_size=x.size // depth,
        depth=depth,
        input_multiplier=int(multiplier),
        input_left_shift=int(left_shift),
        diff_min=int(diff_min),
    )
    return Layer(op=op, kernel=SOFTMAX_S8, params=params, args=(op.inputs[0], op.outputs[0]))
