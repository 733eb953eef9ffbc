"""Where the interesting bytes of a valid .tflite flatbuffer are: labelled spans for the mutator.

A ``Span`` is a byte range of one kind of content with its element size (4 for an int32 shape vector, 8 for
int64 zero points), so that the mutator can overwrite whole elements with interesting values. Spans are found by
walking the model with the flatc-generated reader (the ``tflite`` package) on the ORIGINAL, valid model; the
mutants themselves are never parsed here.

Labels: ``weights`` (buffer data), ``scale`` (float32 quantization scales), ``zero_point`` (int64),
``shape`` (int32 tensor shapes), ``index`` (int32 tensor indices of ops and of the subgraph's interface),
``fields`` (the inline scalar fields of tensor, quantization, operator, options and opcode tables), ``name``
(tensor name strings), ``metadata`` (the data of a buffer that a model metadata entry names, such as the
``mcuq_weight_bits`` JSON).
"""

from __future__ import annotations

import struct
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import tflite

LABELS = ("weights", "scale", "zero_point", "shape", "index", "fields", "name", "metadata")


@dataclass(frozen=True)
class Span:
    label: str
    start: int
    length: int
    elem: int  # element size in bytes (1 for raw bytes)


def _slot(k: int) -> int:
    """The vtable offset of a table's k-th field."""
    return 4 + 2 * k


def _vector(tab: Any, k: int, label: str, elem: int) -> Span | None:
    o = tab.Offset(_slot(k))
    if not o:
        return None
    n = tab.VectorLen(o)
    return Span(label, tab.Vector(o), n * elem, elem) if n else None


def _inline(buf: bytes, pos: int) -> Span | None:
    """A table's inline fields: after its 4-byte vtable offset, up to the object size its vtable records."""
    (soff,) = struct.unpack_from("<i", buf, pos)
    (obj_size,) = struct.unpack_from("<H", buf, pos - soff + 2)
    return Span("fields", pos + 4, obj_size - 4, 1) if obj_size > 4 else None


def _string(tab: Any, k: int) -> Span | None:
    o = tab.Offset(_slot(k))
    if not o:
        return None
    start = tab.Vector(o)
    n = tab.VectorLen(o)
    return Span("name", start, n, 1) if n else None


def find_spans(buf: bytes) -> dict[str, list[Span]]:
    """Every labelled span of the (valid) model ``buf``, by label; labels without spans are absent."""
    m = tflite.Model.GetRootAs(buf, 0)
    spans: list[Span | None] = []
    meta = {int(m.Metadata(k).Buffer()) for k in range(m.MetadataLength())}
    for i in range(m.BuffersLength()):
        spans.append(_vector(m.Buffers(i)._tab, 0, "metadata" if i in meta else "weights", 1))
    for i in range(m.OperatorCodesLength()):
        spans.append(_inline(buf, m.OperatorCodes(i)._tab.Pos))
    for s in range(m.SubgraphsLength()):
        sub = m.Subgraphs(s)
        spans += [_vector(sub._tab, 1, "index", 4), _vector(sub._tab, 2, "index", 4)]
        for i in range(sub.TensorsLength()):
            t = sub.Tensors(i)
            spans += [_vector(t._tab, 0, "shape", 4), _inline(buf, t._tab.Pos), _string(t._tab, 3)]
            q = t.Quantization()
            if q is not None:
                spans += [_vector(q._tab, 2, "scale", 4), _vector(q._tab, 3, "zero_point", 8)]
                spans.append(_inline(buf, q._tab.Pos))
        for i in range(sub.OperatorsLength()):
            op = sub.Operators(i)
            spans += [_vector(op._tab, 1, "index", 4), _vector(op._tab, 2, "index", 4), _inline(buf, op._tab.Pos)]
            options = op.BuiltinOptions()
            if options is not None:
                spans.append(_inline(buf, options.Pos))
    out: dict[str, list[Span]] = defaultdict(list)
    for sp in spans:
        if sp is not None and sp.length > 0 and sp.start + sp.length <= len(buf):
            out[sp.label].append(sp)
    return dict(out)
