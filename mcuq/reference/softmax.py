"""numpy mirror of runtime_c/src/softmax/mcuq_softmax_s8.c (TFLite's reference_ops::Softmax for int8)."""

from __future__ import annotations

import numpy as np

from ..quant import fixedpoint as fp
from .base import reference

SCALED_DIFF_INTEGER_BITS = 5
ACCUMULATION_INTEGER_BITS = 12


def softmax_s8(x: np.ndarray, multiplier: int, left_shift: int, diff_min: int) -> np.ndarray:
    """Softmax over the last axis of an int8 array; output scale 1/256, zero point -128.

    When a row's sum of exps reaches 2^28 (512 or more elements at the row's maximum), TFLite's final
    RoundingDivideByPOT gets an exponent of 32..34, outside gemmlowp's [0, 31]: the oracle (x86-64) then
    computes ``(x >> (exponent & 31)) + (x >= 0)`` (an all-ones mask, the shift count masked by the CPU), which
    saturates most outputs to 127. We reproduce that, bit for bit, as documented in mcuq_softmax_s8.c."""
    shape = x.shape
    depth = shape[-1]
    rows = np.asarray(x, dtype=np.int64).reshape(-1, depth)
    diff = rows - rows.max(axis=1, keepdims=True)
    live = diff >= diff_min
    rescaled = fp.multiply_by_quantized_multiplier_greater_than_one(np.where(live, diff, 0), multiplier, left_shift)
    exps = fp.exp_on_negative_values(rescaled, SCALED_DIFF_INTEGER_BITS)
    terms = np.where(live, fp.rounding_divide_by_pot(exps, ACCUMULATION_INTEGER_BITS), 0)
    sum_of_exps = terms.sum(axis=1, keepdims=True)
    if np.any(sum_of_exps > fp.INT32_MAX):
        raise ValueError("softmax: sum of exps overflows int32")
    scale, num_bits_over_unit = fp.get_reciprocal(sum_of_exps, ACCUMULATION_INTEGER_BITS)
    exponent = np.broadcast_to(num_bits_over_unit + 31 - 8, exps.shape)
    prod = fp.saturating_rounding_doubling_high_mul(scale, exps)
    unsat = np.where(
        exponent <= 31,
        fp.rounding_divide_by_pot(prod, np.minimum(exponent, 31)),
        (prod >> (exponent - 32)) + (prod >= 0),
    )
    out = np.where(live, np.clip(unsat - 128, -128, 127), -128)
    return out.astype(np.int8).reshape(shape)


@reference("mcuq_softmax_s8")
def ref_softmax_s8(layer, inputs: list, out_shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
    p = layer.params
    x = np.asarray(inputs[0], dtype=np.int8).reshape(p.outer_size, p.depth)
    y = softmax_s8(x, p.input_multiplier, p.input_left_shift, p.diff_min)
    return [y.reshape(out_shapes[0])]
