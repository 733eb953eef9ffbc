"""Hostile float models and calibration data for the quantizer fuzzer: ``quant_case(source, family, seed)``.

Families (each a pure function of the source and the seed):
  * ``bytes``: a byte-level mutant of the float .tflite (``mutate.mutant``), sometimes with float32 specials (NaN,
    infinities, 3.4e38, denormals, -0) written over whole weight elements; calibrated with the source's data, or,
    when the mutant's inputs changed shape, with seeded data of the new shapes (a zero-copy broadcast array where
    the shapes are too big to hold, so that the size checks, not the host, meet them);
  * ``content``: the source's graph with structured edits, then written with mcuq's TFLite writer: specials put
    into weights, biases and constant operands of MUL/ADD, whole tensors or one channel scaled by 0, 1e-45 ...
    1e38 or filled with one value, softmax's beta made 0, negative, tiny, huge or NaN; or one of a few tiny models
    whose shapes are hostile (a zero dimension, a scalar, rank 5, 9e8 elements);
  * ``calib``: the source model with hostile calibration data: extreme or equal values, 1 or 0 samples, one
    NaN/inf/huge/denormal element, other dtypes, wrong or missing dimensions, other Python forms (lists,
    generators, dicts keyed wrongly, ragged lists, None).
The fourth family, ``files`` (hostile calibration files), is ``calibfiles``.

A ``QuantCase`` gives the model bytes, a factory for the calibration object (a generator can be consumed once,
the judge quantizes twice) and, where the data is plain numeric arrays, the arrays to save for the CLI.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from mcuq import ir
from mcuq.errors import McuqError
from mcuq.frontend import load
from mcuq.frontend.tflite_writer import write

from .mutate import mutant, spans_of
from .qsources import Source

F32 = ir.DType.FLOAT32
SPECIALS = (float("nan"), float("inf"), float("-inf"), 3.4028235e38, -3.4028235e38, 1e38, 1e30, -1e30, 1e-30,
            1e-38, 1e-40, 1.4e-45, -1.4e-45, 0.0, -0.0)  # fmt: skip
FACTORS = (0.0, 1.4e-45, 1e-40, 1e-38, 1e-30, 1e-20, 1e-8, 1e8, 1e20, 1e30, 1e38, -1.0)
BETAS = (0.0, -1.0, 1e-30, 1e-8, 1e8, 1e30, float("nan"), float("inf"))
SYNTH_SAMPLES = 4
SYNTH_MAX_BYTES = 64 << 20  # larger synthesized calibration sets are zero-copy broadcasts


@dataclass(frozen=True, eq=False)
class QuantCase:
    model: bytes
    calib: Callable[[], object]  # a fresh calibration object on each call
    edits: str
    arrays: dict[str, np.ndarray] | None = None  # the same data as plain arrays (for a file the CLI reads), if any
    path: str | None = None  # the calibration file or folder itself (the ``files`` family)
    user_text: bool = False  # the calibration names a path of the user's choosing (hostile characters included)


def _rng(family: str, seed: int) -> np.random.Generator:
    return np.random.default_rng([0x71756E74, sum(map(ord, family)), seed])


def _keyed(names: tuple[str, ...], arrays: tuple[np.ndarray, ...]) -> dict[str, np.ndarray]:
    return dict(zip(names, arrays))


def _calib_form(arrays: dict[str, np.ndarray]) -> object:
    """A single input's array as it is, several inputs as a dict keyed by name."""
    return next(iter(arrays.values())) if len(arrays) == 1 else dict(arrays)


def _plain(arrays: dict[str, np.ndarray], edits: str, model: bytes) -> QuantCase:
    return QuantCase(model, lambda: _calib_form(arrays), edits, arrays)


def calib_for(model: bytes, src: Source, seed: int) -> dict[str, np.ndarray]:
    """Calibration arrays that fit ``model``'s inputs: the source's where the shapes agree, else seeded normals (a
    broadcast of one value where they would be too big, or the source's data where the model does not load)."""
    try:
        g = load(model)
    except McuqError:
        return _keyed(tuple(f"arr_{i}" for i in range(len(src.calib))), src.calib)
    rng = np.random.default_rng([seed, 2])
    out: dict[str, np.ndarray] = {}
    for k, name in enumerate(g.inputs):
        shape = tuple(g.tensors[name].shape)
        if k < len(src.calib) and src.calib[k].shape[1:] == shape:
            out[name] = src.calib[k]
        elif any(d < 0 for d in shape):
            out[name] = src.calib[min(k, len(src.calib) - 1)]
        elif 4 * SYNTH_SAMPLES * int(np.prod(shape, dtype=np.float64)) <= SYNTH_MAX_BYTES:
            out[name] = rng.standard_normal((SYNTH_SAMPLES, *shape)).astype(np.float32)
        else:
            out[name] = np.broadcast_to(np.float32(0.5), (SYNTH_SAMPLES, *shape))
    return out


# -- bytes ------------------------------------------------------------------------------------------------------


def _float_specials(rng: np.random.Generator, model: bytes, data: bytes) -> tuple[bytes, str]:
    """1-3 whole float32 weight elements of the valid ``model`` overwritten with specials, in ``data`` (a mutant of
    the same length, or the model itself)."""
    spans = [s for s in spans_of(model).get("weights", ()) if s.length >= 4]
    if not spans:
        return data, ""
    buf = bytearray(data)
    edits = []
    for _ in range(int(rng.integers(1, 4))):
        sp = spans[int(rng.integers(len(spans)))]
        pos = sp.start + 4 * int(rng.integers(sp.length // 4))
        v = SPECIALS[int(rng.integers(len(SPECIALS)))]
        buf[pos : pos + 4] = struct.pack("<f", v)
        edits.append(f"f32@{pos}={v:g}")
    return bytes(buf), " ".join(edits)


def bytes_case(src: Source, seed: int) -> QuantCase:
    """A byte-level mutant (most of the time), float32 specials over weights (half the time, or when unmutated)."""
    rng = _rng("bytes", seed)
    data, edits = src.model, ""
    if rng.random() < 0.85:
        data, edits = mutant(src.model, seed)
    if (rng.random() < 0.5 or data == src.model) and len(data) == len(src.model):  # offsets still hold
        data, more = _float_specials(rng, src.model, data)
        edits = f"{edits} {more}".strip()
    return _plain(calib_for(data, src, seed), edits, data)


# -- content ----------------------------------------------------------------------------------------------------


def _hostile_values(rng: np.random.Generator, data: np.ndarray) -> tuple[np.ndarray, str]:
    """``data`` (float32) with one structured edit."""
    a = np.array(data, dtype=np.float64)
    how = ("set", "set", "scale", "fill", "channel", "denormal")[int(rng.integers(6))]
    if how == "set" and a.size:
        k = int(rng.integers(1, 4))
        idx = rng.integers(0, a.size, size=k)
        v = SPECIALS[int(rng.integers(len(SPECIALS)))]
        a.reshape(-1)[idx] = v
        desc = f"set {k} to {v:g}"
    elif how == "scale":
        f = FACTORS[int(rng.integers(len(FACTORS)))]
        a *= f
        desc = f"x{f:g}"
    elif how == "fill":
        v = (0.0, 1e-30, 1e30, -1.0, 1.0, 1e-40)[int(rng.integers(6))]
        a[...] = v
        desc = f"all {v:g}"
    elif how == "channel" and a.ndim and a.shape[0]:
        f = (0.0, 1e-30, 1e30, 1e38)[int(rng.integers(4))]
        axis = 0 if rng.random() < 0.5 else a.ndim - 1
        c = int(rng.integers(a.shape[axis]))
        np.moveaxis(a, axis, 0)[c] *= f
        desc = f"channel {c} of axis {axis} x{f:g}"
    else:
        a *= 1e-40 / max(float(np.abs(a).max(initial=0.0)), 1e-30)
        desc = "all denormal"
    with np.errstate(over="ignore", invalid="ignore"):
        out = a.astype(np.float32)
    out.flags.writeable = False
    return out, desc


def _edit_graph(rng: np.random.Generator, g: ir.Graph) -> tuple[ir.Graph, str]:
    consts = [n for n, t in g.tensors.items() if t.is_const and t.dtype is F32]
    softmax = [i for i, op in enumerate(g.ops) if op.kind is ir.OpKind.SOFTMAX]
    if softmax and rng.random() < 0.15:
        i = softmax[int(rng.integers(len(softmax)))]
        beta = BETAS[int(rng.integers(len(BETAS)))]
        ops = list(g.ops)
        ops[i] = replace(ops[i], attrs=ir.SoftmaxAttrs(beta))
        return replace(g, ops=tuple(ops)), f"softmax {i} beta={beta:g}"
    name = consts[int(rng.integers(len(consts)))]
    data, desc = _hostile_values(rng, g.tensors[name].data)
    tensors = dict(g.tensors)
    tensors[name] = replace(tensors[name], data=data)
    return replace(g, tensors=tensors), f"'{name}': {desc}"


def _unary(name: str, shape: tuple[int, ...], kind: ir.OpKind = ir.OpKind.RELU) -> ir.Graph:
    ts = {"x": ir.Tensor("x", shape, F32), "y": ir.Tensor("y", shape, F32)}
    op = ir.Op(kind, "op", ("x",), ("y",), ir.NoAttrs(), 0)
    return ir.Graph(name, ts, (op,), ("x",), ("y",))


def _fc(name: str, x: tuple[int, ...], units: int, width: int) -> ir.Graph:
    rng = np.random.default_rng(1)
    w = rng.standard_normal((units, width)).astype(np.float32)
    ts = {
        "x": ir.Tensor("x", x, F32),
        "w": ir.Tensor("w", w.shape, F32, None, w),
        "y": ir.Tensor("y", (1, units), F32),
    }
    op = ir.Op(ir.OpKind.FULLY_CONNECTED, "fc", ("x", "w"), ("y",), ir.FullyConnectedAttrs(ir.Activation.NONE), 0)
    return ir.Graph(name, ts, (op,), ("x",), ("y",))


SHAPE_MODELS: dict[str, Callable[[], ir.Graph]] = {
    "zero_dim": lambda: _unary("zero_dim", (1, 0, 4, 3)),
    "scalar": lambda: _unary("scalar", ()),
    "rank5": lambda: _unary("rank5", (1, 2, 2, 2, 2), ir.OpKind.TANH),
    "huge": lambda: _unary("huge", (1, 30000, 30000, 1)),
    "wide_fc": lambda: _fc("wide_fc", (1, 1 << 16), 1, 1 << 16),
    "fc_zero_units": lambda: _fc("fc_zero_units", (1, 8), 0, 8),
    "batch2": lambda: _unary("batch2", (2, 3), ir.OpKind.SIGMOID),
}


def content_case(src: Source, seed: int) -> QuantCase:
    """One to three structured edits of the source's graph (rarely: a model of hostile shapes instead)."""
    rng = _rng("content", seed)
    if rng.random() < 0.06:
        key = list(SHAPE_MODELS)[int(rng.integers(len(SHAPE_MODELS)))]
        data = write(SHAPE_MODELS[key]())
        return _plain(calib_for(data, src, seed), f"shape model {key}", data)
    g = load(src.model)
    edits = []
    for _ in range(1 if rng.random() < 0.7 else int(rng.integers(2, 4))):
        g, desc = _edit_graph(rng, g)
        edits.append(desc)
    data = write(g)
    return _plain(calib_for(data, src, seed), "; ".join(edits), data)
