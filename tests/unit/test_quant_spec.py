"""TFLite's quantization spec as mcuq checks it at import (mcuq.frontend.quant_spec)."""

from __future__ import annotations

import pytest

from mcuq.frontend.quant_spec import qparams_problem
from mcuq.ir import DType

I8, U8, I16, I32, I4, F32 = DType.INT8, DType.UINT8, DType.INT16, DType.INT32, DType.INT4, DType.FLOAT32


@pytest.mark.parametrize(
    "dtype, shape, scales, zps, axis",
    [
        (I8, (1, 8), (0.05,), (-128,), 0),
        (I8, (1, 8), (0.05,), (127,), 1),
        (U8, (4,), (0.1,), (255,), 0),
        (I16, (1, 4), (0.001,), (0,), 0),
        (I32, (4,), (1e-4,) * 4, (0,) * 4, 0),
        (I4, (2, 3), (0.5, 0.25), (-8, 7), 0),
        (I8, (), (0.1,), (3,), 0),  # a scalar
        (F32, (4,), (float("nan"),), (0,), 0),  # float tensors: the parameters are unused
    ],
)
def test_parameters_within_the_spec_pass(dtype, shape, scales, zps, axis):
    assert qparams_problem(dtype, shape, scales, zps, axis) is None


@pytest.mark.parametrize(
    "dtype, shape, scales, zps, axis, expect",
    [
        (U8, (4,), (0.1,), (-1,), 0, "zero point -1 is outside uint8's range [0, 255]"),
        (U8, (4,), (0.1,), (256,), 0, "zero point 256 is outside uint8's range"),
        (I4, (4,), (0.1,), (8,), 0, "zero point 8 is outside int4's range [-8, 7]"),
        (I16, (4,), (0.1,), (3,), 0, "zero point 3 of an int16 tensor must be 0 (TFLite quantizes int16 tensors"),
        (I32, (4,), (0.1,), (-1,), 0, "zero point -1 of an int32 tensor must be 0"),
        (F32, (4,), (0.1,), (2**40,), 0, "zero point 1099511627776 does not fit TFLite's int32 field"),
        (I8, (1, 8), (float("inf"),), (0,), 0, "scale inf is not a finite positive number"),
        (I8, (2, 8), (0.1, -0.1), (0, 0), 0, "scale[1] -0.1 is not a finite positive number"),
        (I8, (2, 8), (0.1,), (0,), -1, "quantized_dimension -1 is out of range for a tensor of rank 2"),
        (I8, (2, 8), (0.1,) * 8, (0,) * 8, 0, "8 per-channel scales do not match dimension 0 of shape [2, 8]"),
        (I8, (), (0.1, 0.2), (0, 0), 0, "2 per-channel scales do not match dimension 0 of shape []"),
    ],
)
def test_parameters_outside_the_spec_say_why(dtype, shape, scales, zps, axis, expect):
    problem = qparams_problem(dtype, shape, scales, zps, axis)
    assert problem is not None and expect in problem
