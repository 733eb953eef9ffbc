"""numpy mirror of mcuq_hard_swish_s8 (runtime_c/src/elementwise/mcuq_hard_swish_s8.c), with its private 16-bit
fixed-point helpers under the same names. Values are int64 arrays holding int16 results."""

from __future__ import annotations

import numpy as np

from .base import reference

INT16_MIN, INT16_MAX = -(2**15), 2**15 - 1


def _wrap16(x: np.ndarray) -> np.ndarray:
    return ((x + 2**15) & 0xFFFF) - 2**15


def _c_div(a: np.ndarray, b: int) -> np.ndarray:
    """C integer division (truncates toward zero)."""
    q = np.abs(a) // b
    return np.where(a < 0, -q, q)


def saturating_rounding_doubling_high_mul_s16(a: np.ndarray, b: int) -> np.ndarray:
    a = np.asarray(a, dtype=np.int64)
    ab = a * np.int64(b)
    nudge = np.where(ab >= 0, 1 << 14, 1 - (1 << 14))
    out = _wrap16(_c_div(ab + nudge, 1 << 15))
    return np.where((a == INT16_MIN) & (b == INT16_MIN), INT16_MAX, out)


def saturating_doubling_high_mul_s16(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    out = _wrap16(_c_div(a * b, 1 << 15))
    return np.where((a == INT16_MIN) & (b == INT16_MIN), INT16_MAX, out)


def rounding_divide_by_pot_s16(x: np.ndarray, exponent: int) -> np.ndarray:
    """gemmlowp's int16 RoundingDivideByPOT: the mask is truncated to 16 bits (-1 for exponents >= 16)."""
    assert 0 <= exponent <= 31
    x = np.asarray(x, dtype=np.int64)
    mask = -1 if exponent >= 16 else (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0).astype(np.int64)
    return _wrap16((x >> exponent) + (remainder > threshold).astype(np.int64))


def saturating_left_shift_s16(value: np.ndarray, amount: int) -> np.ndarray:
    return np.clip(np.asarray(value, dtype=np.int64) * (1 << amount), INT16_MIN, INT16_MAX)


@reference("mcuq_hard_swish_s8")
def hard_swish_s8(layer, inputs, out_shapes) -> list[np.ndarray]:
    p = layer.params
    x = np.asarray(inputs[0], dtype=np.int64).reshape(-1)[: p.size]
    hires = (x - p.input_zp) * (1 << 7)
    preshift_output = saturating_rounding_doubling_high_mul_s16(hires, p.output_multiplier_fixedpoint_int16)
    rexp = p.reluish_multiplier_exponent
    reluish = hires
    if rexp > 0:
        reluish = saturating_left_shift_s16(reluish, rexp - 1)
    reluish = saturating_rounding_doubling_high_mul_s16(reluish, p.reluish_multiplier_fixedpoint_int16)
    if rexp > 0:
        reluish = saturating_left_shift_s16(reluish, 1)
    if rexp < 0:
        reluish = rounding_divide_by_pot_s16(reluish, -rexp)
    reluish = (reluish + (1 << 15)) >> 1
    preshift = saturating_doubling_high_mul_s16(reluish, preshift_output)
    out = _wrap16(rounding_divide_by_pot_s16(preshift, -p.output_multiplier_exponent) + p.output_zp)
    return [np.clip(out, -128, 127).astype(np.int8).reshape(out_shapes[0])]
