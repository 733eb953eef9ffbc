"""A tiny int8 model built in code (no files needed): input [1, 8] -> FULLY_CONNECTED(4, ReLU) -> [1, 4]."""

from __future__ import annotations

import numpy as np

from mcuq import ir
from mcuq.frontend.tflite_writer import write


def tiny_fc_graph(seed: int = 0, dtype: ir.DType = ir.DType.INT8) -> ir.Graph:
    rng = np.random.default_rng(seed)
    q = (lambda s, z: ir.QParams((s,), (z,))) if dtype == ir.DType.INT8 else (lambda s, z: None)
    w = rng.integers(-127, 128, size=(4, 8)).astype(np.int8 if dtype == ir.DType.INT8 else np.float32)
    b = rng.integers(-500, 500, size=(4,)).astype(np.int32 if dtype == ir.DType.INT8 else np.float32)
    bdt = ir.DType.INT32 if dtype == ir.DType.INT8 else ir.DType.FLOAT32
    tensors = {
        "x": ir.Tensor("x", (1, 8), dtype, q(0.05, -3)),
        "w": ir.Tensor("w", (4, 8), dtype, q(0.01, 0), w),
        "b": ir.Tensor("b", (4,), bdt, q(0.0005, 0), b),
        "y": ir.Tensor("y", (1, 4), dtype, q(0.1, -128)),
    }
    op = ir.Op(ir.OpKind.FULLY_CONNECTED, "fc", ("x", "w", "b"), ("y",), ir.FullyConnectedAttrs(ir.Activation.RELU), 0)
    return ir.Graph("tiny", tensors, (op,), ("x",), ("y",))


def tiny_fc_bytes(seed: int = 0, dtype: ir.DType = ir.DType.INT8) -> bytes:
    return write(tiny_fc_graph(seed, dtype))
