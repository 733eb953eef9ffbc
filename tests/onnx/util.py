"""Helpers for the ONNX frontend tests: one-node models made with ``onnx.helper``, onnxruntime as the oracle."""

from __future__ import annotations

import contextlib
import logging

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the ONNX frontend needs the onnx extra (pip install 'mcuq[onnx]')")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

OPSET = 17


def tensor_info(name: str, shape, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, list(shape) if shape is not None else None)


def init(name: str, a: np.ndarray):
    return numpy_helper.from_array(np.asarray(a), name)


def model(nodes, inputs, outputs, inits=(), opset: int = OPSET, extra_opsets=()) -> bytes:
    """A model from nodes, [(name, shape)] inputs, [(name, shape or None)] outputs, {name: array} initializers."""
    g = helper.make_graph(
        nodes,
        "g",
        [tensor_info(n, s) for n, s in inputs],
        [tensor_info(n, s) for n, s in outputs],
        [init(k, v) for k, v in dict(inits).items()],
    )
    ops = [helper.make_opsetid("", opset), *[helper.make_opsetid(d, v) for d, v in extra_opsets]]
    m = helper.make_model(g, opset_imports=ops)
    m.ir_version = 8
    return m.SerializeToString()


def ort_run(data: bytes, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is the ONNX oracle (a test extra)")
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.intra_op_num_threads = 1
    s = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
    return s.run(None, feeds)


def mcuq_float(graph, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """mcuq's float reference on the imported graph, arrays in the model's own layout."""
    from mcuq.layout import from_ir, to_ir
    from mcuq.reference.graph import run_graph

    ins = [to_ir(graph, n, feeds[n]) for n in graph.inputs]
    env = run_graph(graph, ins, keep="outputs")
    return [from_ir(graph, n, env[n]) for n in graph.outputs]


@contextlib.contextmanager
def quiet_root_logger():
    """The root logger at ERROR while onnxruntime's quantize_static prints its pre-processing advice, restored after
    (a level left at ERROR would silence every later test's warnings)."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)
