"""Reshapes that cannot be aliases become copies.

A RESHAPE lowers to an alias: no call, the output shares the input's memory (``plan.py``: alias edges join
tensors into groups, one buffer each). Graph inputs and outputs live in caller-owned buffers, so a group may
hold at most one of them. A RESHAPE whose input's group already holds a caller buffer (a graph input, or a
graph output produced so far) and whose output is a graph output would join two caller buffers, e.g. a model
that is a single RESHAPE, or one tensor reshaped into two graph outputs. ``reshape_to_copy`` turns exactly
those RESHAPEs into COPY ops (lowered to ``mcuq_copy_s8``); every other RESHAPE stays an alias.

The groups are followed in op order, as the planner walks its steps, so the second of two reshapes of one
tensor into graph outputs is the copy (its input's group already lives in the first output's buffer).
"""

from __future__ import annotations

from dataclasses import replace

from ..ir import Graph, NoAttrs, Op, OpKind


def reshape_to_copy(g: Graph) -> Graph:
    """``g`` with each RESHAPE that would join two caller-owned buffers replaced by a COPY (same name, index,
    inputs and outputs; ``origin`` keeps the source op type, e.g. "SQUEEZE"). Returns ``g`` itself when no
    RESHAPE needs it."""
    caller = {n for n in g.inputs + g.outputs if n}
    parent: dict[str, str] = {}  # alias group member -> the tensor it aliases (group roots are absent)
    external: set[str] = set(g.inputs)  # group roots held in a caller buffer
    ops: list[Op] = []
    changed = False
    for op in g.ops:
        for name in op.outputs:
            if name in caller:
                external.add(name)
        if op.kind is OpKind.RESHAPE and _is_alias(g, op):
            src, dst = op.inputs[0], op.outputs[0]
            root = _root(parent, src)
            if root in external and dst in external:
                op = replace(op, kind=OpKind.COPY, attrs=NoAttrs(), origin=op.type_name)
                changed = True
            else:
                parent[dst] = root
                if dst in external:  # the group now lives in the output's buffer
                    external.discard(dst)
                    external.add(root)
        ops.append(op)
    return replace(g, ops=tuple(ops)) if changed else g


def _is_alias(g: Graph, op: Op) -> bool:
    """The RESHAPE reads one activation (not a constant) and writes one tensor: what lowering makes an alias.
    Anything else is left for lowering and planning to reject with their own messages."""
    if len(op.outputs) != 1 or not op.outputs[0] or not op.inputs or not op.inputs[0]:
        return False
    t = g.tensors.get(op.inputs[0])
    return t is not None and not t.is_const


def _root(parent: dict[str, str], name: str) -> str:
    while name in parent:
        name = parent[name]
    return name
