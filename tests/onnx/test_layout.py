"""mcuq.layout: the user's arrays (model layout) <-> the graph's (NHWC), in every form CompiledModel.run accepts."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mcuq import ir
from mcuq.errors import McuqError
from mcuq.layout import describe, from_ir, inputs_to_ir, to_ir, user_shape


def graph(meta: dict[str, str]) -> ir.Graph:
    t = {
        "x": ir.Tensor("x", (1, 4, 5, 3), ir.DType.FLOAT32),
        "y": ir.Tensor("y", (1, 1, 6, 2), ir.DType.FLOAT32),
    }
    op = ir.Op(ir.OpKind.RESHAPE, "y", ("x",), ("y",), ir.ReshapeAttrs())
    return ir.Graph("g", t, (op,), ("x",), ("y",), meta=meta)


IO = {"inputs": {"x": {"perm": [0, 2, 3, 1], "shape": [1, 3, 4, 5]}},
      "outputs": {"y": {"perm": [0, 2, 1], "shape": [1, 2, 6]}}}  # fmt: skip


def test_round_trip_in_every_form():
    g = graph({"io_layout": json.dumps(IO)})
    x = np.arange(60, dtype=np.float32).reshape(1, 3, 4, 5)
    assert user_shape(g, "x") == (1, 3, 4, 5) and user_shape(g, "y") == (1, 2, 6)
    want = x.transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(to_ir(g, "x", x), want)
    batch = np.stack([x, x + 1])
    np.testing.assert_array_equal(to_ir(g, "x", batch), np.stack([want, want + 1]))
    np.testing.assert_array_equal(to_ir(g, "x", x[0]), want[0])  # one sample without the leading 1
    np.testing.assert_array_equal(to_ir(g, "x", batch[:, 0]), np.stack([want, want + 1])[:, 0])
    np.testing.assert_array_equal(inputs_to_ir(g, [x])[0], want)
    y = np.arange(12, dtype=np.float32).reshape(1, 2, 6)
    y_ir = y.transpose(0, 2, 1).reshape(1, 1, 6, 2)
    np.testing.assert_array_equal(from_ir(g, "y", y_ir), y)
    np.testing.assert_array_equal(from_ir(g, "y", np.stack([y_ir, y_ir])), np.stack([y, y]))
    odd = np.zeros((2, 2))
    assert to_ir(g, "x", odd) is odd  # another shape: left for the caller's checks to name
    assert any("NHWC [1, 4, 5, 3]" in line for line in describe(g))


def test_graph_without_layout_is_unchanged():
    g = graph({})
    x = np.zeros((1, 4, 5, 3), np.float32)
    assert to_ir(g, "x", x) is x and describe(g) == []


def test_malformed_meta_is_one_line():
    with pytest.raises(McuqError, match="io_layout"):
        to_ir(graph({"io_layout": "{not json"}), "x", np.zeros(3))
