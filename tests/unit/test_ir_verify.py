"""ir.verify refuses tensors that int32 indexing cannot address, before anything is lowered or allocated."""

from __future__ import annotations

import pytest

import mcuq
from mcuq import ir
from mcuq.errors import ModelError


def _add(shape: tuple[int, ...]) -> ir.Graph:
    q = ir.QParams((0.1,), (0,))
    tensors = {n: ir.Tensor(n, shape, ir.DType.INT8, q) for n in ("a", "b", "y")}
    op = ir.Op(ir.OpKind.ADD, "y", ("a", "b"), ("y",), ir.BinaryAttrs(), 0)
    return ir.Graph("big", tensors, (op,), ("a", "b"), ("y",), source="big.tflite")


@pytest.mark.parametrize("shape", [(1, 65537, 65537, 1), (1, 46341, 46341, 1), (2**31,)])
def test_tensors_beyond_int32_indexing_are_refused(shape) -> None:
    with pytest.raises(ModelError, match=r"big.tflite: tensor 'a' of shape .* bytes; mcuq's kernels index with int32"):
        mcuq.compile_model(_add(shape))


def test_largest_indexable_tensor_passes_verify() -> None:
    ir.verify(_add((2**31 - 1,)))  # no data is allocated: activations have none


def test_negative_dimension_is_refused() -> None:
    with pytest.raises(ModelError, match="negative dimension"):
        ir.verify(_add((1, -4)))


def test_infinite_scale_is_a_clear_error() -> None:
    g = _add((1, 4))
    q = ir.QParams((float("inf"),), (0,))
    g.tensors["a"] = ir.Tensor("a", (1, 4), ir.DType.INT8, q)
    with pytest.raises(ModelError, match="scale inf; scales must be positive and finite"):
        mcuq.compile_model(g)
