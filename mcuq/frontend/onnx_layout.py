"""Layouts of ONNX values inside the IR: NCHW (and NCW) activations become NHWC once, at import.

Every ONNX value the frontend has converted is a ``Val``: its ONNX shape, the IR tensor holding it and how that
tensor's elements are arranged (``Layout``):

  * ``PLAIN``: the IR tensor is the ONNX value itself (same shape, same order);
  * ``NHWC``: a rank-4 NCHW value stored as NHWC: ``ir = onnx.transpose(0, 2, 3, 1)``;
  * ``NWC``: a rank-3 NCW value (Conv1d models) stored as a 2-D image of height 1:
    ``ir = onnx.transpose(0, 2, 1).reshape(N, 1, W, C)``;
  * ``FLAT``: a rank-2 ``[N, C*H*W]`` value made by flattening an NHWC (or NWC) value, stored in the IR's
    ``H*W*C`` order; a FULLY_CONNECTED reading it takes its weight columns in that order (``flat_perm``).

Ops that do not care (elementwise ops, the activations) keep their input's layout; ops that need the model's own
order ask for ``PLAIN`` and get a TRANSPOSE (and RESHAPE) op inserted, once per value. The graph's inputs and
outputs may stay in NHWC or NWC: ``io_entry`` describes them for ``mcuq.layout``, which converts the user's
arrays at the API.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Layout:
    kind: str  # "plain", "nhwc", "nwc", "flat"
    src: Val | None = None  # for "flat": the channels-last value it was flattened from

    @property
    def perm(self) -> tuple[int, ...] | None:
        """ONNX axes in IR order (before NWC's reshape), or None for plain and flat."""
        return {"nhwc": (0, 2, 3, 1), "nwc": (0, 2, 1)}.get(self.kind)


PLAIN = Layout("plain")
NHWC = Layout("nhwc")
NWC = Layout("nwc")


@dataclass(eq=False)
class Val:
    """One ONNX value as the frontend holds it. ``ir`` is "" for a constant not (yet) stored in the IR."""

    shape: tuple[int, ...]
    layout: Layout = PLAIN
    ir: str = ""
    const: np.ndarray | None = None  # the value, in ONNX layout, when it is known at import
    quant: object | None = None  # QDQ: the quantization a QuantizeLinear gave it (``onnx_qdq``)
    cache: dict[str, Val] = field(default_factory=dict)  # the same value in other layouts, made once

    @property
    def rank(self) -> int:
        return len(self.shape)


def ir_shape(shape: tuple[int, ...], layout: Layout) -> tuple[int, ...]:
    if layout.kind == "nhwc":
        n, c, h, w = shape
        return (n, h, w, c)
    if layout.kind == "nwc":
        n, c, w = shape
        return (n, 1, w, c)
    if layout.kind == "flat":
        return shape
    return shape


def to_ir_array(a: np.ndarray, layout: Layout) -> np.ndarray:
    """An ONNX-layout array of the value's rank (or broadcastable to it, leading 1s added) in ``layout``."""
    if layout.kind == "nhwc":
        a = a.reshape((1,) * (4 - a.ndim) + a.shape)
        return np.ascontiguousarray(a.transpose(0, 2, 3, 1))
    if layout.kind == "nwc":
        a = a.reshape((1,) * (3 - a.ndim) + a.shape)
        t = a.transpose(0, 2, 1)
        return np.ascontiguousarray(t.reshape(t.shape[0], 1, t.shape[1], t.shape[2]))
    if layout.kind == "flat":
        a = a.reshape((1,) * (2 - a.ndim) + a.shape)
        if a.shape[1] == 1:
            return a
        return np.ascontiguousarray(a[:, flat_perm(layout)])
    return a


def ir_axis(layout: Layout, axis: int) -> int:
    """The IR axis holding ONNX axis ``axis`` (non-negative) of a channels-last value."""
    if layout.kind == "nhwc":
        return (0, 3, 1, 2)[axis]
    if layout.kind == "nwc":
        return (0, 3, 2)[axis]
    return axis


def flat_order_kept(v: Val) -> bool:
    """True when the IR tensor's elements are in the ONNX value's order (its non-unit axes keep their order):
    then any reshape of the ONNX value is a RESHAPE of the IR tensor."""
    lay = v.layout
    if lay.kind == "plain":
        return True
    if lay.kind == "flat":
        return lay.src is not None and flat_order_kept(lay.src)
    order = [a for a in lay.perm if v.shape[a] != 1]
    return order == sorted(order)


def flat_perm(layout: Layout) -> np.ndarray:
    """For a FLAT value: IR column j holds ONNX column ``flat_perm[j]``."""
    src = layout.src
    assert src is not None
    n = int(np.prod(src.shape[1:]))
    idx = np.arange(n).reshape((1, *src.shape[1:]))
    return to_ir_array(idx, src.layout).reshape(-1)


def io_entry(v: Val) -> dict | None:
    """How a graph input or output is stored, for ``mcuq.layout``: {"perm", "shape"} (the user's array in the
    model's layout, ``shape``, is ``x.transpose(perm).reshape(ir shape)`` in the IR); None when it is as is."""
    if v.layout.perm is None:
        return None
    return {"perm": list(v.layout.perm), "shape": [int(d) for d in v.shape]}
