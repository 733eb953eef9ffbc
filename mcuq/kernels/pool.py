"""Pooling family (runtime_c/include/mcuq_pool.h): AVG_POOL2D, MAX_POOL2D, MEAN, int8."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cstruct import INT32_MAX, CStruct, array, i32, shift_i32, zero_point
from .registry import Kernel, c_define, register
from .types import ActivationRange, Dims, Window

MEAN_MAX_DIMS = c_define("MCUQ_MEAN_MAX_DIMS", 8)


@dataclass(frozen=True)
class Pool2DParams(CStruct, c_name="mcuq_pool2d_params"):
    """Shared by average and max pooling; output.n == input.n, output.c == input.c, window.dilation is 1."""

    input: Dims
    output: Dims
    window: Window
    activation: ActivationRange


@dataclass(frozen=True, eq=False)
class MeanParams(CStruct, c_name="mcuq_mean_params"):
    """MEAN as a walk over kept and reduced axis groups; (multiplier, shift) already divide by num_reduced."""

    num_outputs: int = i32(1)
    num_reduced: int = i32(1)
    kept_rank: int = i32(1, MEAN_MAX_DIMS)
    kept_dims: np.ndarray = array("int32_t", 1)
    kept_strides: np.ndarray = array("int32_t", 0)
    reduced_rank: int = i32(1, MEAN_MAX_DIMS)
    reduced_dims: np.ndarray = array("int32_t", 1)
    reduced_strides: np.ndarray = array("int32_t", 0)
    input_zp_sum: int = i32()
    multiplier: int = i32(0, INT32_MAX)
    shift: int = shift_i32(-31, 30)
    output_zp: int = zero_point()


AVERAGE_POOL2D_S8 = register(
    Kernel(
        "mcuq_average_pool2d_s8",
        Pool2DParams,
        ("pool/mcuq_average_pool2d_s8.c",),
        code_bytes=696,
        context=True,
    )
)
MAX_POOL2D_S8 = register(Kernel("mcuq_max_pool2d_s8", Pool2DParams, ("pool/mcuq_max_pool2d_s8.c",), code_bytes=648))
MEAN_S8 = register(Kernel("mcuq_mean_s8", MeanParams, ("pool/mcuq_mean_s8.c",), code_bytes=628))
