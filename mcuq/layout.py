"""The user's arrays in the model's own layout, the graph's in mcuq's (NHWC): one place that converts between them.

A frontend that changes the layout at import (ONNX: NCHW -> NHWC, NCW -> [N, 1, W, C]) records in
``graph.meta["io_layout"]`` (JSON) how each graph input and output is stored:
``{"inputs": {name: {"perm": [...], "shape": [...]}}, "outputs": {...}}``, where ``shape`` is the tensor's shape in
the model's layout and the IR tensor is ``x.transpose(perm).reshape(ir_shape)``. Names not listed are stored as
they are. Every place that takes or returns user arrays goes through here: calibration and evaluation data
(``quant.calib``), ``CompiledModel.run`` (``api``), ``mcuq run`` (``cli``), and the generated header's comment
(``codegen.emit``). Arrays may carry one extra leading batch axis. The meta survives the passes and the
quantizer (they copy it), so a quantized or compiled graph converts as its float model did.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from .errors import McuqError
from .ir import Graph

KEY = "io_layout"


def io_layout(g: Graph) -> dict[str, dict[str, dict[str, Any]]]:
    """{"inputs": {...}, "outputs": {...}} of ``g``, each {name: {"perm", "shape"}}; empty for an as-is graph."""
    raw = g.meta.get(KEY)
    if not raw:
        return {"inputs": {}, "outputs": {}}
    try:
        d = json.loads(raw)
        out = {k: {str(n): {"perm": [int(p) for p in e["perm"]], "shape": [int(s) for s in e["shape"]]}
                   for n, e in d.get(k, {}).items()} for k in ("inputs", "outputs")}  # fmt: skip
    except (ValueError, TypeError, KeyError, AttributeError):
        raise McuqError(f"{g.source}: graph meta '{KEY}' is malformed") from None
    return out


def _entry(g: Graph, side: str, name: str) -> dict[str, Any] | None:
    return io_layout(g)[side].get(name)


def user_shape(g: Graph, name: str) -> tuple[int, ...]:
    """The shape the user gives (or gets) tensor ``name`` in: the model's layout."""
    for side in ("inputs", "outputs"):
        e = _entry(g, side, name)
        if e is not None:
            return tuple(e["shape"])
    return tuple(g.tensors[name].shape)


def is_permuted(g: Graph) -> bool:
    lay = io_layout(g)
    return bool(lay["inputs"] or lay["outputs"])


def _convert(x: np.ndarray, src: tuple[int, ...], dst: tuple[int, ...], fn) -> np.ndarray:
    """``fn`` (one array of shape ``src`` -> shape ``dst``) applied to ``x`` of shape ``src``, a batch of them, or,
    when ``src[0] == 1``, the same without that leading 1 (the forms ``CompiledModel.run`` accepts)."""
    if x.shape == src:
        return fn(x)
    if x.ndim == len(src) + 1 and x.shape[1:] == src:
        return np.stack([fn(s) for s in x]) if len(x) else x.reshape((0, *dst))
    if src and src[0] == 1 and dst and dst[0] == 1:
        if x.shape == src[1:]:
            return fn(x.reshape(src)).reshape(dst[1:])
        if x.ndim == len(src) and x.shape[1:] == src[1:]:
            return np.stack([fn(s.reshape(src)).reshape(dst[1:]) for s in x]) if len(x) else x.reshape((0, *dst[1:]))
    return x


def to_ir(g: Graph, name: str, x: np.ndarray) -> np.ndarray:
    """A user array for input ``name`` (model layout; one sample, a batch, either without a leading 1) in the
    graph's layout. Arrays of another shape are returned as they are (the caller's checks name the problem)."""
    e = _entry(g, "inputs", name)
    if e is None:
        return x
    shape, perm = tuple(e["shape"]), e["perm"]
    ir_shape = tuple(g.tensors[name].shape)
    x = np.asarray(x)
    if x.ndim == len(shape) + 1 and x.shape[1:] == shape:  # a batch (calibration sets): one transpose, one copy
        return np.ascontiguousarray(x.transpose(0, *[p + 1 for p in perm]).reshape((x.shape[0], *ir_shape)))
    return _convert(x, shape, ir_shape, lambda a: np.ascontiguousarray(a.transpose(perm).reshape(ir_shape)))


def from_ir(g: Graph, name: str, y: np.ndarray) -> np.ndarray:
    """An output array of ``g`` (graph layout, in any of ``to_ir``'s forms) in the model's layout."""
    e = _entry(g, "outputs", name)
    if e is None:
        return y
    shape, perm = tuple(e["shape"]), e["perm"]
    inv = [perm.index(i) for i in range(len(perm))]
    mid = tuple(shape[p] for p in perm)
    ir_shape = tuple(g.tensors[name].shape)
    return _convert(np.asarray(y), ir_shape, shape, lambda a: np.ascontiguousarray(a.reshape(mid).transpose(inv)))


def _user_to_ir(g: Graph, name: str, x: Any) -> np.ndarray:
    """``to_ir`` for an array the user gives to run: one in none of the model-layout forms (an NHWC array for an
    NCHW model, say) is an error naming the forms, not passed on to be read in another order."""
    e = _entry(g, "inputs", name)
    x = np.asarray(x)
    if e is not None:
        src = tuple(e["shape"])
        forms = [src, (-1, *src)] + ([src[1:], (-1, *src[1:])] if src and src[0] == 1 else [])
        if not any(len(f) == x.ndim and all(d in (-1, s) for d, s in zip(f, x.shape)) for f in forms):
            batch = f", [N, {', '.join(map(str, src[1:]))}]" if src and src[0] == 1 else ""
            one = f" or {list(src[1:])} (one sample)" if src and src[0] == 1 else ""
            c_shape = list(g.tensors[name].shape)
            raise McuqError(f"input '{name}': shape {list(x.shape)}; the model takes arrays in its own layout "
                            f"{list(src)}, [N, {', '.join(map(str, src))}]{batch}{one} (the C array, in mcuq's "
                            f"NHWC order, is {c_shape}; convert to the model's layout)")  # fmt: skip
    return to_ir(g, name, x)


def inputs_to_ir(g: Graph, inputs: Any) -> Any:
    """``inputs`` as ``CompiledModel.run`` takes them (an array, a list, a dict by name) converted per input; an
    array of a permuted input in none of the model-layout forms is a McuqError."""
    if not is_permuted(g):
        return inputs
    if isinstance(inputs, dict):
        return {k: _user_to_ir(g, k, v) if k in g.inputs else v for k, v in inputs.items()}
    if isinstance(inputs, (list, tuple)):
        return [_user_to_ir(g, n, x) for n, x in zip(g.inputs, inputs)] + list(inputs[len(g.inputs) :])
    if len(g.inputs) == 1:
        return _user_to_ir(g, g.inputs[0], inputs)
    return inputs


def outputs_from_ir(g: Graph, names: list[str] | tuple[str, ...], outs: list[np.ndarray]) -> list[np.ndarray]:
    return [from_ir(g, n, y) for n, y in zip(names, outs)]


def describe(g: Graph) -> list[str]:
    """One line per permuted input/output, for the generated header: which layout the C arrays are in."""
    lines = []
    lay = io_layout(g)
    for side, what in (("inputs", "input"), ("outputs", "output")):
        for name, e in sorted(lay[side].items()):
            if name not in g.tensors:
                continue
            ir_shape = list(g.tensors[name].shape)
            kind = {(0, 2, 3, 1): "NHWC", (0, 2, 1): "NWC (as [N, 1, W, C])"}.get(tuple(e["perm"]), "permuted")
            lines.append(f"{what} '{name}': the C array is {kind} {ir_shape}; the model's layout is {e['shape']} "
                         f"(element order: model array transposed by {e['perm']})")  # fmt: skip
    return lines
