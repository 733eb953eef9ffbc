"""One numpy executor for any IR graph, int8 and float32: ``run_graph(graph, inputs) -> {tensor: array}``.

Each op runs on one of two paths, chosen by the dtype of its first activation (non-constant) input:
  * float32: the float kernel of ``float_ops.FLOAT_OPS`` (float models, and a float -> int8 QUANTIZE);
  * anything else: the op is lowered exactly as for code generation and run by the bit-exact numpy mirror of
    its C kernel (``run_layer``), so an int8 graph gives the generated C's bits, tensor by tensor.
Mixed graphs (a float input quantized by a QUANTIZE that feeds int8 ops) take both paths.

``prepare(graph)`` lowers once; ``Executor.run`` then runs one sample at a time, which is what a calibration
loop over many samples wants. ``run_graph`` is the two in one call.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import McuqError, ModelError
from ..ir import DType, Graph, Op, OpKind
from ..lower import Layer, lower_op
from .float_ops import FLOAT_OPS

__all__ = ["Executor", "prepare", "run_graph"]

Keep = str | Collection[str]


@dataclass(frozen=True, eq=False)
class _Step:
    op: Op
    layer: Layer | None  # the lowered op (integer path), or None (float path)
    reads: tuple[str, ...]  # non-constant tensors the step reads


@dataclass(frozen=True, eq=False)
class Executor:
    """A graph with its integer ops lowered once. ``last_read[t]`` is the index of the last step reading ``t``."""

    graph: Graph
    steps: tuple[_Step, ...]
    last_read: Mapping[str, int]

    def run(self, inputs: Any, *, keep: Keep = "all") -> dict[str, np.ndarray]:
        """Run one sample. ``inputs``: one array per graph input (a list in ``graph.inputs`` order, a dict by
        name, or one array for a one-input graph), each with the input's exact shape and dtype.

        ``keep="all"`` returns the inputs and every op output; ``keep="outputs"`` only the graph outputs, and
        frees each tensor after its last reader; a collection of names returns those and the graph outputs.
        Constants are never returned (they are in ``graph.tensors``)."""
        g = self.graph
        kept = self._kept(keep)
        env = bind_inputs(g, inputs)
        for i, step in enumerate(self.steps):
            outs = _run_float(g, step.op, env) if step.layer is None else _run_layer(g, step.layer, env)
            env.update(outs)
            if kept is not None:
                for name in step.reads:
                    if self.last_read[name] == i and name not in kept:
                        env.pop(name, None)
        if kept is None:
            return env
        return {name: env[name] for name in dict.fromkeys([*g.outputs, *kept]) if name in env}

    def _kept(self, keep: Keep) -> set[str] | None:
        """None for everything, else the names to keep."""
        if isinstance(keep, str):
            if keep == "all":
                return None
            if keep == "outputs":
                return set(self.graph.outputs)
            raise McuqError(f"keep must be 'all', 'outputs' or a collection of tensor names, not {keep!r}")
        unknown = [n for n in keep if n not in self.graph.tensors]
        if unknown:
            raise McuqError(f"keep: no tensor named {unknown[0]!r} in graph '{self.graph.name}'")
        return set(keep) | set(self.graph.outputs)


def run_graph(graph: Graph, inputs: Any, *, keep: Keep = "all") -> dict[str, np.ndarray]:
    """Run ``graph`` on one sample with numpy; returns {tensor name: array} (see ``Executor.run``)."""
    return prepare(graph).run(inputs, keep=keep)


def prepare(graph: Graph) -> Executor:
    """Choose each op's path and lower the integer ops (lowering errors are raised here, naming the op)."""
    steps, last_read = [], {}
    for i, op in enumerate(graph.ops):
        layer = None if _is_float(graph, op) else lower_op(graph, op)
        if layer is None and op.kind not in FLOAT_OPS:
            raise ModelError(graph.source, f"{op.where}: no float32 kernel for {op.kind.name}")
        if layer is None and op.kind is not OpKind.QUANTIZE:
            for o in op.outputs:
                if graph.tensors[o].dtype is not DType.FLOAT32:
                    raise ModelError(graph.source, f"{op.where}: float32 op with {graph.tensors[o].dtype.value} output")
        names = list(op.inputs) + ([] if layer is None else [n for a in layer.inputs for n in _names(a)])
        reads = tuple(dict.fromkeys(n for n in names if n and n in graph.tensors and not graph.tensors[n].is_const))
        for n in reads:
            last_read[n] = i
        steps.append(_Step(op, layer, reads))
    return Executor(graph, tuple(steps), last_read)


def bind_inputs(g: Graph, inputs: Any) -> dict[str, np.ndarray]:
    """{input name: array} after checking the count, dtype and exact shape; McuqError names the input."""
    if isinstance(inputs, np.ndarray):
        inputs = [inputs]
    if isinstance(inputs, Mapping):
        unknown = [k for k in inputs if k not in g.inputs]
        if unknown:
            raise McuqError(f"'{unknown[0]}' is not an input of graph '{g.name}' (inputs: {', '.join(g.inputs)})")
        missing = [n for n in g.inputs if n not in inputs]
        if missing:
            raise McuqError(f"input '{missing[0]}' of graph '{g.name}' is not given")
        pairs = [(n, inputs[n]) for n in g.inputs]
    elif isinstance(inputs, Sequence):
        if len(inputs) != len(g.inputs):
            raise McuqError(f"graph '{g.name}' has {len(g.inputs)} input(s); {len(inputs)} given")
        pairs = list(zip(g.inputs, inputs, strict=True))
    else:
        raise McuqError(f"inputs must be a list of arrays or a dict by input name, not {type(inputs).__name__}")
    env: dict[str, np.ndarray] = {}
    for name, x in pairs:
        x = np.asarray(x)
        t = g.tensors[name]
        if x.dtype != t.dtype.np:
            raise McuqError(f"input '{name}': dtype {x.dtype}, the graph wants {t.dtype.value}")
        if tuple(x.shape) != tuple(t.shape):
            raise McuqError(f"input '{name}': shape {list(x.shape)}, the graph wants {list(t.shape)}")
        env[name] = x
    return env


def _is_float(g: Graph, op: Op) -> bool:
    """The op's path: its first non-constant input's dtype (the first input if all are constant). DEQUANTIZE
    (integer or float16 in, float32 out) has a float kernel only: it always takes the float path."""
    if op.kind is OpKind.DEQUANTIZE:
        return True
    names = [n for n in op.inputs if n]
    first = next((n for n in names if not g.tensors[n].is_const), names[0] if names else None)
    return first is not None and g.tensors[first].dtype is DType.FLOAT32


def _names(arg: str | tuple[str, ...]) -> tuple[str, ...]:
    return arg if isinstance(arg, tuple) else (arg,)


def _value(g: Graph, layer: Layer, env: dict[str, np.ndarray], name: str) -> np.ndarray | None:
    if not name:
        return None
    if name in env:
        return env[name]
    t = layer.consts[name] if name in layer.consts else g.tensors.get(name)
    if t is None or t.data is None:
        raise ModelError(g.source, f"{layer.op.where}: tensor '{name}' is read before it is computed")
    return t.data


def _float_value(g: Graph, op: Op, env: dict[str, np.ndarray], name: str) -> np.ndarray | None:
    if not name or name in env:
        return env.get(name)
    if g.tensors[name].data is None:
        raise ModelError(g.source, f"{op.where}: tensor '{name}' is read before it is computed")
    return g.tensors[name].data


def _run_layer(g: Graph, layer: Layer, env: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    from . import run_layer  # here: the package imports this module before it defines run_layer

    args = [
        [_value(g, layer, env, n) for n in a] if isinstance(a, tuple) else _value(g, layer, env, a)
        for a in layer.inputs
    ]
    shapes = [g.tensors[o].shape for o in layer.outputs]
    outs = run_layer(layer, args, shapes)
    return {o: np.asarray(y).reshape(s) for o, y, s in zip(layer.outputs, outs, shapes, strict=True)}


def _run_float(g: Graph, op: Op, env: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    ins = [_float_value(g, op, env, n) for n in op.inputs]
    return {op.outputs[0]: FLOAT_OPS[op.kind](g, op, ins)}
