"""Run a float graph, or a quantized one through the numpy mirrors of its kernels, on N samples at once (batched
where the graph allows it, as calibration does): what ``ptq.Quantizer.evaluate`` and the sensitivity measurements
(``sensitivity.Evaluator``) compare. The quantized model takes the float inputs quantized as TFLite's QUANTIZE does
and gives its outputs dequantized (``edge``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..ir import DType, Graph, Op
from .batch import BatchRunner, last_reads
from .edge import dequantize_output, quantize_input

__all__ = ["quantized_inputs", "run_batch", "run_float", "run_integer"]

Hook = Callable[[Op, str, np.ndarray], np.ndarray]


def run_batch(g: Graph, inputs: Sequence[np.ndarray], hook: Hook | None = None) -> list[np.ndarray]:
    """Every output of ``g`` for N samples at once, each shaped (N, *shape) (``inputs``: one [N, ...] array per graph
    input, float32 for a float input, else its integer type). An op whose activation inputs are float runs its float
    kernel, an integer one the numpy mirror of its C kernel (bit-exact with the generated C). ``hook(op, name,
    value) -> value`` may replace an op's output. Each value is freed after its last reader."""
    n = int(np.asarray(inputs[0]).shape[0])
    runner = BatchRunner(g, n)
    env: dict[str, np.ndarray] = {}
    for name, x in zip(g.inputs, inputs, strict=True):
        t = g.tensors[name]
        env[name] = np.asarray(x).reshape(runner.shape(t) if runner.batched else (n, *t.shape))
    last = last_reads(g)
    for i, op in enumerate(g.ops):
        first = next((x for x in op.inputs if x and not g.tensors[x].is_const), None)
        is_float = first is None or g.tensors[first].dtype is DType.FLOAT32
        out = runner.float_op(op, g.tensors, env) if is_float else runner.int_op(op, g.tensors, env)
        env[op.outputs[0]] = out if hook is None else hook(op, op.outputs[0], out)
        for x in op.inputs:
            if x and last.get(x) == i and x not in g.outputs:
                env.pop(x, None)
    return [env[name].reshape(n, *g.tensors[name].shape) for name in g.outputs]


def quantized_inputs(g: Graph, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Float ``arrays`` as ``g``'s inputs take them: quantized (TFLite's QUANTIZE) where an input is an integer."""
    return [
        a if g.tensors[name].dtype is DType.FLOAT32 else quantize_input(g.tensors[name], a)
        for name, a in zip(g.inputs, arrays, strict=True)
    ]


def run_float(g: Graph, arrays: Sequence[np.ndarray]) -> tuple[np.ndarray, ...]:
    """The float graph's outputs on ``arrays`` (one float32 array (N, *shape) per input)."""
    return tuple(np.asarray(v, dtype=np.float32) for v in run_batch(g, arrays))


def run_integer(g: Graph, arrays: Sequence[np.ndarray]) -> tuple[np.ndarray, ...]:
    """The quantized graph's outputs, dequantized to float32, on float ``arrays`` quantized at its inputs."""
    outs = run_batch(g, quantized_inputs(g, arrays))
    return tuple(dequantize_output(g.tensors[name], v) for name, v in zip(g.outputs, outs))
