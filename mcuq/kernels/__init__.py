"""The kernel registry (``registry.py``) and the params dataclasses that mirror runtime_c's C structs, one
module per op family, like runtime_c/include/mcuq_<family>.h."""

from __future__ import annotations

# the portable kernels, their fast variants (each registers its Variant rows) and the band kernel
from . import (  # noqa: F401
    band,
    conv,
    conv16,
    conv16_fast,
    conv_dsp,
    depthwise_dsp,
    depthwise_mve,
    elementwise,
    elementwise16,
    elementwise_fast,
    lowbit,
    lowbit_fast,
    nn_mve,
    pool,
    pool16,
    pool_fast,
    shape,
    softmax,
)
from .cstruct import CStruct, c_fields, get, initializer, out_of_range
from .registry import C_DEFINES, KERNELS, Kernel, c_define, code_bytes_of, register, sources_of

__all__ = [
    "C_DEFINES",
    "KERNELS",
    "c_define",
    "CStruct",
    "Kernel",
    "c_fields",
    "code_bytes_of",
    "get",
    "initializer",
    "out_of_range",
    "register",
    "sources_of",
]
