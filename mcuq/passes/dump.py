"""A readable, deterministic text form of a graph, for ``--dump-ir`` (weights are shown by shape only).

Ops are listed in order; tensors in order of first use (graph inputs, then each op's inputs and outputs), then
any unused ones by name; meta entries by key. Floats print as Python's shortest round-trip repr, so two dumps
of the same graph are byte-identical and two different graphs differ in the text.
"""

from __future__ import annotations

import dataclasses
import enum

from ..ir import Graph, Op, QParams, Tensor

_MAX_LIST = 8  # per-channel scales and zero points shown in full up to this many


def format_graph(g: Graph, title: str = "") -> str:
    lines = [f"# {title}" if title else "#", f"graph '{g.name}'" + (f" from {g.source}" if g.source else "")]
    lines.append(f"inputs: {', '.join(g.inputs)}")
    lines.append(f"outputs: {', '.join(g.outputs)}")
    lines.append(f"\nops ({len(g.ops)}):")
    lines += [f"  {i:>3}  {format_op(op)}" for i, op in enumerate(g.ops)]
    order = list(dict.fromkeys([*g.inputs, *(n for op in g.ops for n in (*op.inputs, *op.outputs) if n), *g.outputs]))
    order += sorted(set(g.tensors) - set(order))
    lines.append(f"\ntensors ({len(g.tensors)}):")
    lines += [f"  {format_tensor(g.tensors[n]) if n in g.tensors else f'{n}: MISSING'}" for n in order]
    if g.meta:
        lines.append(f"\nmeta ({len(g.meta)}):")
        lines += [f"  {k} = {_short(v)}" for k, v in sorted(g.meta.items())]
    return "\n".join(lines) + "\n"


def format_op(op: Op) -> str:
    ins = ", ".join(n or "-" for n in op.inputs)
    outs = ", ".join(op.outputs)
    origin = f" [{op.origin}]" if op.origin else ""
    attrs = " ".join(f"{f.name}={_value(getattr(op.attrs, f.name))}" for f in dataclasses.fields(op.attrs))
    return f"{op.kind.value}{origin} '{op.name}' #{op.index} ({ins}) -> ({outs})" + (f" {attrs}" if attrs else "")


def format_tensor(t: Tensor) -> str:
    s = f"{t.name}: {t.dtype.value} {list(t.shape)}"
    if t.is_const:
        s += " const"
    if t.qparams is not None:
        s += " " + format_qparams(t.qparams)
    return s


def format_qparams(q: QParams) -> str:
    if not q.per_channel:
        return f"scale={q.scale[0]!r} zp={q.zero_point[0]}"
    return f"per-channel[{len(q.scale)}] axis={q.axis} scale={_seq(q.scale)} zp={_seq(q.zero_point)}"


def _seq(values: tuple) -> str:
    if len(values) <= _MAX_LIST:
        return "[" + ", ".join(repr(v) for v in values) + "]"
    return f"[{min(values)!r}..{max(values)!r}]"


def _value(v: object) -> str:
    if isinstance(v, enum.Enum):
        return str(v.value)
    if isinstance(v, tuple):
        return "(" + ", ".join(_value(x) for x in v) + ")"
    return repr(v)


def _short(v: str, limit: int = 100) -> str:
    r = repr(v)
    return r if len(r) <= limit else r[: limit - 3] + "..."
