"""Fast same-shape ADD and SUB for the dsp and mve paths (runtime_c/src/elementwise/mcuq_add_s8_{dsp,mve}.c).

Each input's rescaling to the common scale, ``MultiplyByQuantizedMultiplierSmallerThanOneExp((x - zp) << 20, m, s)``,
depends on the int8 value alone, so it is folded at compile time into a 256-entry int32 table per input (twice the
value, so that SMMLAR / VRMULH compute gemmlowp's doubling high multiply; SUB negates input2's table, which is exact:
TFLite's SubFunc subtracts the rescaled input2). Only the output rescale runs per element. Flash: 2 KB of tables per
layer, for ~11 instructions per element on a Cortex-M4 (portable: ~110) and ~3.5 on a Cortex-M55.
Broadcasting ADD and SUB keep the portable kernels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..quant.fixedpoint import multiply_by_quantized_multiplier_smaller_than_one_exp, rounding_divide_by_pot
from .cstruct import INT32_MAX, CStruct, array, i32, shift_i32, zero_point
from .elementwise import ADD_S8, SUB_S8, AddParams
from .registry import Kernel, c_define, register
from .types import ActivationRange
from .variants import Variant, variant

TABLE_MAX = c_define("MCUQ_ADD_FAST_TABLE_MAX", 2**29)


@dataclass(frozen=True, eq=False)
class AddFastParams(CStruct, c_name="mcuq_add_fast_params"):
    """Same-shape ADD/SUB with the input rescaling folded into tables indexed by the int8 bit pattern."""

    size: int = i32(0)
    output_zp: int = zero_point()
    output_multiplier: int = i32(0, INT32_MAX)
    output_shift: int = shift_i32(-31, 0)
    activation: ActivationRange
    input1_table: np.ndarray = array("int32_t", -TABLE_MAX, TABLE_MAX)  # [256], table[(uint8_t)x]
    input2_table: np.ndarray = array("int32_t", -TABLE_MAX, TABLE_MAX)  # [256]; negated for SUB


def same_shape(p: AddParams) -> bool:
    """True when the portable walk is one flat loop over both inputs (no broadcast)."""
    b = p.broadcast
    n = int(b.out_dims[-1])
    flat = all(int(d) == 1 for d in b.out_dims[:-1])
    return flat and (n <= 1 or (int(b.input1_strides[-1]) == 1 and int(b.input2_strides[-1]) == 1))


def input_table(zp: int, left_shift: int, multiplier: int, shift: int) -> np.ndarray:
    """Twice mcuq_arithmetic_input(x, ...) for every int8 x, indexed by the bit pattern (uint8) of x."""
    x = np.arange(256, dtype=np.int64).astype(np.uint8).view(np.int8).astype(np.int64)
    scaled = multiply_by_quantized_multiplier_smaller_than_one_exp((x - zp) << left_shift, multiplier, shift)
    return (2 * scaled).astype(np.int32)


def fast_params(p: AddParams, negate2: bool = False) -> AddFastParams:
    t1 = input_table(p.input1_zp, p.left_shift, p.input1_multiplier, p.input1_shift)
    t2 = input_table(p.input2_zp, p.left_shift, p.input2_multiplier, p.input2_shift)
    return AddFastParams(
        size=int(p.broadcast.out_dims[-1]) if same_shape(p) else 0,
        output_zp=p.output_zp,
        output_multiplier=p.output_multiplier,
        output_shift=p.output_shift,
        activation=p.activation,
        input1_table=t1,
        input2_table=-t2 if negate2 else t2,
    )


def add_fast(p: AddFastParams, x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
    """numpy mirror of mcuq_add_s8_dsp / _mve: int8 outputs of the flat int8 inputs ``x1``, ``x2``."""
    i1 = np.asarray(x1, dtype=np.int8).reshape(-1)[: p.size].view(np.uint8)
    i2 = np.asarray(x2, dtype=np.int8).reshape(-1)[: p.size].view(np.uint8)
    s = p.input1_table.astype(np.int64)[i1] + p.input2_table.astype(np.int64)[i2]
    h = (s * p.output_multiplier + (1 << 31)) >> 32  # SaturatingRoundingDoublingHighMul(s / 2, m)
    raw = rounding_divide_by_pot(h, -p.output_shift) + p.output_zp
    return np.clip(raw, p.activation.min, p.activation.max).astype(np.int8)


def _kernel(name: str, path: str, code_bytes: int) -> Kernel:
    return register(
        Kernel(
            name,
            AddFastParams,
            (f"elementwise/{name}.c",),
            code_bytes=code_bytes,
            variant=path,
            in_place=True,
            overlap=lambda params: (0, 0),  # blocks of 4: both inputs read before the block's output is written
        )
    )


ADD_S8_DSP = _kernel("mcuq_add_s8_dsp", "dsp", 2232)
ADD_S8_MVE = _kernel("mcuq_add_s8_mve", "mve", 1128)

for _k in (ADD_S8_DSP, ADD_S8_MVE):
    variant(Variant(ADD_S8.name, _k.variant, _k, supports=same_shape, params=lambda layer: fast_params(layer.params)))
    variant(
        Variant(
            SUB_S8.name,
            _k.variant,
            _k,
            supports=same_shape,
            params=lambda layer: fast_params(layer.params, negate2=True),
        )
    )
