"""Constant folding at import: the shape computations exporters emit (Shape -> Gather -> Unsqueeze -> Concat ->
Reshape, and the like) evaluated with numpy, so that a Reshape's target shape, a Pad's pads or a Clip's bounds
become constants.

``FOLD`` maps an ONNX op type to ``fn(node, values) -> list of arrays``, run when every present input of the
node is a constant (``Shape`` needs only its input's static shape: ``fold_shape``). Results are bounded in size
(``MAX_FOLD_ELEMENTS``) so that a hostile ConstantOfShape or Range cannot exhaust memory.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .onnx_build import Node

MAX_FOLD_ELEMENTS = 1 << 24

FoldFn = Callable[[Node, list], list]
FOLD: dict[str, FoldFn] = {}


def _fold(*names: str):
    def deco(fn: FoldFn) -> FoldFn:
        for n in names:
            FOLD[n] = fn
        return fn

    return deco


def _axes(node: Node, values: list, pos: int, rank: int) -> list[int] | None:
    """Axes from input ``pos`` (opset 13+) or the ``axes`` attribute, non-negative."""
    raw = values[pos] if pos < len(values) and values[pos] is not None else node.ints("axes")
    if raw is None:
        return None
    out = []
    for a in np.asarray(raw).reshape(-1).tolist():
        a = int(a)
        if not -rank <= a < rank:
            raise node.error(f"axis {a} out of range for rank {rank}")
        out.append(a % rank)
    return out


def checked(node: Node, a: np.ndarray) -> np.ndarray:
    if a.size > MAX_FOLD_ELEMENTS:
        raise node.error(f"folds to a constant of {a.size:,} elements (at most {MAX_FOLD_ELEMENTS:,})")
    return a


def fold_shape(node: Node, shape: tuple[int, ...]) -> np.ndarray:
    r = len(shape)
    start = node.int("start", 0)
    end = node.int("end", r)
    start = max(0, min(r, start + r if start < 0 else start))
    end = max(0, min(r, end + r if end < 0 else end))
    return np.array(shape[start:end], dtype=np.int64)


@_fold("Identity", "Dropout")
def _identity(node: Node, v: list) -> list:
    return [v[0]]


@_fold("Gather")
def _gather(node: Node, v: list) -> list:
    data, idx = np.asarray(v[0]), np.asarray(v[1]).astype(np.int64)
    axis = node.int("axis", 0)
    if not -data.ndim <= axis < data.ndim:
        raise node.error(f"axis {axis} out of range for rank {data.ndim}")
    n = data.shape[axis]
    if np.any(idx < -n) or np.any(idx >= n):
        raise node.error(f"index out of range for a dimension of {n}")
    return [checked(node, np.take(data, np.where(idx < 0, idx + n, idx), axis=axis))]


@_fold("Unsqueeze")
def _unsqueeze(node: Node, v: list) -> list:
    x = np.asarray(v[0])
    raw = v[1] if len(v) > 1 and v[1] is not None else (node.ints("axes") or [])
    axes = _axes(node, v, 1, x.ndim + np.asarray(raw).size) or []
    return [x.reshape(unsqueeze_shape(node, x.shape, axes))]


def unsqueeze_shape(node: Node, shape: tuple[int, ...], axes: list[int]) -> tuple[int, ...]:
    out = list(shape)
    if len(set(axes)) != len(axes):
        raise node.error(f"repeated axes {axes}")
    for a in sorted(axes):
        out.insert(a, 1)
    return tuple(out)


def squeeze_shape(node: Node, shape: tuple[int, ...], axes: list[int] | None) -> tuple[int, ...]:
    if axes is None:
        return tuple(d for d in shape if d != 1)
    for a in axes:
        if shape[a] != 1:
            raise node.error(f"cannot squeeze axis {a} of size {shape[a]}")
    return tuple(d for i, d in enumerate(shape) if i not in axes)


@_fold("Squeeze")
def _squeeze(node: Node, v: list) -> list:
    x = np.asarray(v[0])
    return [x.reshape(squeeze_shape(node, x.shape, _axes(node, v, 1, x.ndim)))]


@_fold("Concat")
def _concat(node: Node, v: list) -> list:
    arrays = [np.asarray(a) for a in v if a is not None]
    axis = node.int("axis", 0)
    try:
        return [checked(node, np.concatenate(arrays, axis=axis))]
    except (ValueError, np.exceptions.AxisError) as e:
        raise node.error(f"cannot concatenate: {e}") from None


@_fold("Slice")
def _slice(node: Node, v: list) -> list:
    x = np.asarray(v[0])
    starts, ends = np.asarray(v[1]).reshape(-1), np.asarray(v[2]).reshape(-1)
    axes = _axes(node, v, 3, x.ndim) or list(range(len(starts)))
    steps = np.asarray(v[4]).reshape(-1) if len(v) > 4 and v[4] is not None else np.ones(len(starts), np.int64)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise node.error("starts, ends, axes and steps differ in length")
    index = [slice(None)] * x.ndim
    for s, e, a, st in zip(starts.tolist(), ends.tolist(), axes, steps.tolist()):
        if st == 0:
            raise node.error("slice step 0")
        n = x.shape[a]
        s, e = (max(min(int(b), n), -n - 1) for b in (s, e))  # numpy clamps the rest as ONNX does
        index[a] = slice(s, e, int(st))
    return [x[tuple(index)]]


@_fold("Cast")
def _cast(node: Node, v: list) -> list:
    from onnx import helper

    to = node.int("to", 1)
    try:
        dt = helper.tensor_dtype_to_np_dtype(to)
    except Exception:
        raise node.error(f"cast to type {to} not supported") from None
    if dt.kind not in "biuf":
        raise node.error(f"cast to {dt} not supported")
    return [np.asarray(v[0]).astype(dt)]


@_fold("Reshape")
def _reshape(node: Node, v: list) -> list:
    x = np.asarray(v[0])
    return [x.reshape(reshape_target(node, x.shape, v[1]))]


def reshape_target(node: Node, shape: tuple[int, ...], target: np.ndarray) -> tuple[int, ...]:
    """ONNX Reshape's output shape: 0 copies the input's dimension (unless allowzero), -1 is inferred."""
    t = [int(d) for d in np.asarray(target).reshape(-1)]
    allowzero = node.int("allowzero", 0)
    out = []
    for i, d in enumerate(t):
        if d == 0 and not allowzero:
            if i >= len(shape):
                raise node.error(f"shape {t}: 0 at axis {i} copies no input dimension")
            d = shape[i]
        elif d < -1:
            raise node.error(f"shape {t}: negative dimension {d}")
        out.append(d)
    size = int(np.prod(shape, dtype=np.int64))
    if out.count(-1) > 1:
        raise node.error(f"shape {t}: more than one -1")
    if -1 in out:
        rest = int(np.prod([d for d in out if d != -1], dtype=np.int64))
        if rest == 0 or size % rest:
            raise node.error(f"cannot reshape {list(shape)} to {t}")
        out[out.index(-1)] = size // rest
    if int(np.prod(out, dtype=np.int64)) != size:
        raise node.error(f"cannot reshape {list(shape)} ({size} values) to {out}")
    return tuple(out)


_BINARY = {
    "Add": np.add,
    "Sub": np.subtract,
    "Mul": np.multiply,
    "Equal": np.equal,
    "Less": np.less,
    "Greater": np.greater,
}


@_fold(*_BINARY)
def _binary(node: Node, v: list) -> list:
    try:
        return [checked(node, np.asarray(_BINARY[node.op_type](v[0], v[1])))]
    except ValueError as e:
        raise node.error(f"{e}") from None


@_fold("Div")
def _div(node: Node, v: list) -> list:
    a, b = np.asarray(v[0]), np.asarray(v[1])
    if a.dtype.kind in "iu" and b.dtype.kind in "iu":
        if np.any(b == 0):
            raise node.error("integer division by zero")
        q = np.trunc(a / b).astype(np.result_type(a, b))
        return [q]
    return [np.asarray(a / b).astype(np.result_type(a, b))]


@_fold("Where")
def _where(node: Node, v: list) -> list:
    return [checked(node, np.where(v[0], v[1], v[2]))]


@_fold("ConstantOfShape")
def _constant_of_shape(node: Node, v: list) -> list:
    from onnx import numpy_helper

    shape = [int(d) for d in np.asarray(v[0]).reshape(-1)]
    if any(d < 0 for d in shape) or int(np.prod(shape, dtype=np.float64)) > MAX_FOLD_ELEMENTS:
        raise node.error(f"shape {shape} is negative or too large")
    t = node.attr("value")
    if t is None:
        value = np.zeros(1, np.float32)
    elif not hasattr(t, "dims") or len(t.dims) > 1 or any(int(d) != 1 for d in t.dims):
        raise node.error("value must be a one-element tensor")
    else:
        try:
            value = numpy_helper.to_array(t).reshape(-1)[:1]
        except Exception as e:
            raise node.error(f"unreadable value: {e}") from None
    return [np.full(shape, value[0] if value.size else 0, dtype=value.dtype)]


@_fold("Range")
def _range(node: Node, v: list) -> list:
    start, limit, delta = (np.asarray(a).reshape(()) for a in v[:3])
    if delta == 0:
        raise node.error("range with delta 0")
    n = max(int(np.ceil((limit - start) / delta)), 0)
    if n > MAX_FOLD_ELEMENTS:
        raise node.error(f"range of {n:,} elements")
    return [(start + delta * np.arange(n)).astype(np.result_type(start, limit, delta))]


@_fold("Transpose")
def _transpose(node: Node, v: list) -> list:
    x = np.asarray(v[0])
    perm = node.ints("perm")
    return [np.transpose(x, perm) if perm is not None else x.T]


@_fold("Flatten")
def _flatten(node: Node, v: list) -> list:
    x = np.asarray(v[0])
    axis = node.int("axis", 1) % (x.ndim + 1) if x.ndim else 0
    return [x.reshape(int(np.prod(x.shape[:axis], dtype=np.int64)), -1)]
