"""Tensor lifetimes -> arena offsets, and the liveness lower bound the arena is measured against.

The planner sees the lowered model as a list of steps, one per layer, each reading and writing activation
tensors (constants are not planned: they live in flash). Step ``i`` is layer ``i``.

* Alias layers (RESHAPE, SQUEEZE: ``layer.alias``) emit no call: the output shares the input's memory. Alias
  edges build groups (the root is the tensor a real layer produced, or a graph input); one group is one buffer.
* Graph inputs and outputs live in caller-owned buffers, not in the arena. A group holding a graph input or
  output lives in that buffer (``Plan.external``). A group holds at most one caller buffer: an alias that would
  join two (a graph input with a graph output, or two graph outputs, e.g. a model that is a single RESHAPE)
  must have been made a COPY by ``passes.reshape_to_copy`` before lowering; meeting one here is an internal
  error (RuntimeError), not a property of the model.
* A group is live from the step that produces it to the last step that reads it (alias steps included), both
  inclusive; a step's inputs and outputs are live together (no in-place reuse).
* ``lower_bound`` is the largest sum of *unaligned* sizes of groups live at one step; no placement can use
  less. Several deterministic greedy heuristics are tried (TFLM's size-descending first-fit among them) and
  the smallest arena is kept (ties: the first tried); when that misses the bound, a bounded depth-first search
  tries to close the gap. Nothing depends on dict or hash order: the result is a function of the step list.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from .errors import ModelError
from .ir import Graph

if TYPE_CHECKING:
    from .lower.base import Layer


@dataclass(frozen=True)
class Step:
    """One layer as the planner sees it: activation tensors read and written (constants removed)."""

    index: int
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    alias: bool = False


@dataclass(frozen=True)
class Plan:
    offsets: dict[str, int]  # arena offset of every tensor placed in the arena (alias members included)
    arena_size: int
    lower_bound: int  # max over steps of the unaligned byte sum of arena groups live at that step
    external: dict[str, str]  # tensor -> graph input/output whose caller-owned buffer holds it
    alias_of: dict[str, str]  # alias layer output -> root tensor of its group
    sizes: dict[str, int] = field(default_factory=dict)  # bytes, every planned tensor
    lifetimes: dict[str, tuple[int, int]] = field(default_factory=dict)  # group's (first, last) step, per tensor
    heuristic: str = ""
    align: int = 16
    scratch: dict[int, int] = field(default_factory=dict)  # layer index -> arena offset of its kernel's scratch

    def describe(self) -> list[str]:
        """Human-readable plan: one line per buffer (arena by offset, then caller-owned). Tensor names are as they
        are: C comments take each line through ``codegen.names.c_comment``, a terminal through ``errors.printable``."""
        lines = [
            f"arena {self.arena_size} bytes (liveness bound {self.lower_bound}, {self.heuristic}, align {self.align})"
        ]
        roots = sorted(
            (n for n in self.offsets if n not in self.alias_of), key=lambda n: (self.offsets[n], self.lifetimes[n], n)
        )
        members = _members(self.alias_of)
        for r in roots:
            first, last = self.lifetimes[r]
            also = f" = {', '.join(members[r])}" if r in members else ""
            lines.append(f"  [{self.offsets[r]:>7}, +{self.sizes[r]:>6}) steps {first:>3}..{last:<3} {r}{also}")
        for name in sorted(self.external, key=lambda n: (self.external[n], n)):
            if name != self.external[name]:
                lines.append(f"  caller buffer '{self.external[name]}' holds {name}")
        return lines


def plan(g: Graph, layers: tuple[Layer, ...], align: int = 16) -> Plan:
    """Arena offsets for the activation tensors of ``layers`` (the lowered ``g``)."""
    steps, sizes = steps_from_layers(g, layers)
    scratch_names = _add_scratch(g, layers, steps, sizes)
    try:
        p = plan_steps(steps, sizes, g.inputs, g.outputs, align)
    except ValueError as e:
        raise ModelError(g.source, f"memory planning: {e}") from None
    if not scratch_names:
        return p
    return replace(p, scratch={i: p.offsets[name] for i, name in scratch_names.items()})


def _add_scratch(g: Graph, layers: tuple[Layer, ...], steps: list[Step], sizes: dict[str, int]) -> dict[int, str]:
    """Kernel scratch as a buffer written and read by its own step only (so it shares the arena with everything
    not live at that step); returns layer index -> the buffer's name."""
    names: dict[int, str] = {}
    for i, layer in enumerate(layers):
        n = layer.scratch_bytes
        if n <= 0:
            continue
        name = f"scratch:{i}"
        while name in g.tensors or name in sizes:
            name += "'"
        sizes[name] = n
        steps[i] = replace(steps[i], writes=(*steps[i].writes, name))
        names[i] = name
    return names


def steps_from_layers(g: Graph, layers: tuple[Layer, ...]) -> tuple[list[Step], dict[str, int]]:
    """The planner's view of ``layers``: activation tensors per step, and every activation tensor's size."""
    sizes: dict[str, int] = {}

    def activations(args: tuple, layer: Layer) -> tuple[str, ...]:
        out: list[str] = []
        for a in args:
            for name in (a,) if isinstance(a, str) else a:
                if not name or name in layer.consts:
                    continue
                t = g.tensors.get(name)
                if t is None:
                    raise ModelError(g.source, f"{layer.op.where}: tensor '{name}' does not exist")
                if t.is_const:
                    continue
                sizes[name] = t.nbytes
                if name not in out:
                    out.append(name)
        return tuple(out)

    steps = []
    for i, layer in enumerate(layers):
        step = Step(i, activations(layer.inputs, layer), activations(layer.outputs, layer), layer.alias)
        if layer.alias and (len(step.reads) != 1 or len(step.writes) != 1):
            raise ModelError(
                g.source, f"{layer.op.where}: an alias layer needs one activation input and one output (not a constant)"
            )
        steps.append(step)
    for name in g.inputs + g.outputs:
        sizes.setdefault(name, g.tensors[name].nbytes)
    return steps, sizes


def plan_steps(
    steps: list[Step], sizes: dict[str, int], inputs: tuple[str, ...], outputs: tuple[str, ...], align: int = 16
) -> Plan:
    """Plan from a step list; raises ValueError for graphs the planner cannot place, RuntimeError for an alias
    step joining two caller buffers (the step list was not made from a graph that ``reshape_to_copy`` ran on)."""
    if align < 1:
        raise ValueError(f"alignment must be positive, got {align}")
    caller = _caller_buffers(inputs, outputs)
    parent: dict[str, str] = {}  # alias member -> its group's root (roots are absent)
    ext = {name: caller[name] for name in inputs}  # group root -> caller buffer name
    produced: set[str] = set(inputs)
    for s in steps:
        for name in s.reads:
            if name not in produced:
                raise ValueError(f"step {s.index}: tensor '{name}' is read before it is produced")
        for name in s.writes:
            if name in produced:
                raise ValueError(f"step {s.index}: tensor '{name}' is written twice")
            produced.add(name)
            if name in caller:
                ext[name] = caller[name]
        if not s.alias:
            continue
        if len(s.reads) != 1 or len(s.writes) != 1:
            raise ValueError(f"step {s.index}: an alias step needs one activation input and one output")
        dst = s.writes[0]
        root = _root(parent, s.reads[0])
        if root in ext and dst in ext:
            raise RuntimeError(
                f"step {s.index}: alias '{dst}' would join caller buffers '{ext[root]}' and '{dst}'; "
                "passes.reshape_to_copy must run before lowering (mcuq bug)"
            )
        parent[dst] = root
        if dst in ext:
            ext[root] = ext.pop(dst)

    alias_of = {m: _root(parent, m) for m in parent}
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for s in steps:  # alias steps too: a layer's output stays intact through its step (run_layers reads it)
        for name in s.writes:
            first.setdefault(_root(parent, name), s.index)
        for name in s.reads + s.writes:
            last[_root(parent, name)] = s.index
    roots = [r for r in first if r not in ext]  # arena groups, in order of production
    group_size = {r: sizes[r] for r in roots}
    for m, r in alias_of.items():
        if r in group_size:
            group_size[r] = max(group_size[r], sizes[m])
    bufs = [_Buf(r, group_size[r], first[r], last[r], k) for k, r in enumerate(roots)]

    live = [[b for b in bufs if b.first <= s.index <= b.last] for s in steps]
    bound = max((sum(b.size for b in group) for group in live), default=0)
    best_name, best, best_size = _arrange(bufs, align, max((_aligned_bound(group, align) for group in live), default=0))
    _check(bufs, best, align)

    tensors = set(sizes) | set(parent)
    offsets = {t: best[_root(parent, t)] for t in sorted(tensors) if _root(parent, t) in best}
    external = {t: ext[_root(parent, t)] for t in sorted(tensors) if _root(parent, t) in ext}
    lifetimes = {t: (first.get(r, -1), last.get(r, -1)) for t in sorted(tensors) for r in [_root(parent, t)]}
    return Plan(
        offsets=offsets,
        arena_size=best_size,
        lower_bound=bound,
        external=external,
        alias_of=alias_of,
        sizes={t: sizes[t] for t in sorted(sizes)},
        lifetimes=lifetimes,
        heuristic=best_name,
        align=align,
    )


@dataclass(frozen=True)
class _Buf:
    name: str
    size: int
    first: int
    last: int
    order: int  # production order: the deterministic tie-breaker


def _caller_buffers(inputs: tuple[str, ...], outputs: tuple[str, ...]) -> dict[str, str]:
    for name in inputs:
        if name in outputs:
            raise ValueError(f"tensor '{name}' is both a graph input and a graph output")
    for group in (inputs, outputs):
        if len(set(group)) != len(group):
            raise ValueError(f"a tensor is listed twice among graph inputs/outputs {group}")
    return {n: n for n in inputs + outputs}


def _root(parent: dict[str, str], name: str) -> str:
    while name in parent:
        name = parent[name]
    return name


def _members(alias_of: dict[str, str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for m in sorted(alias_of):
        out.setdefault(alias_of[m], []).append(m)
    return out


def _align_up(x: int, align: int) -> int:
    return (x + align - 1) // align * align


def _first_fit(gaps: list[tuple[int, int]], size: int) -> int:
    return next(start for start, end in gaps if end - start >= size)


def _best_fit(gaps: list[tuple[int, int]], size: int) -> int:
    return min((end - start, start) for start, end in gaps if end - start >= size)[1]


def _place(order: list[_Buf], align: int, fit: Callable[[list[tuple[int, int]], int], int]) -> dict[str, int]:
    """Greedy placement in ``order``: each buffer goes into a gap among already placed, time-overlapping ones."""
    placed: list[tuple[_Buf, int]] = []
    offsets: dict[str, int] = {}
    for b in order:
        if b.size == 0:
            offsets[b.name] = 0
            continue
        busy = sorted((o, o + p.size) for p, o in placed if p.first <= b.last and b.first <= p.last)
        gaps: list[tuple[int, int]] = []
        cursor = 0
        for start, end in busy:
            if start > cursor:
                gaps.append((cursor, start))
            cursor = max(cursor, _align_up(end, align))
        gaps.append((cursor, 1 << 62))
        offsets[b.name] = fit(gaps, b.size)
        placed.append((b, offsets[b.name]))
    return offsets


_Key = Callable[[_Buf], tuple]
_HEURISTICS: tuple[tuple[str, _Key, Callable[[list[tuple[int, int]], int], int]], ...] = tuple(
    (f"{oname}/{fname}", okey, fit)
    for oname, okey in (
        ("size", lambda b: (-b.size, b.first, b.order)),  # TFLM's GreedyMemoryPlanner order
        ("start", lambda b: (b.first, -b.size, b.order)),
        ("area", lambda b: (-b.size * (b.last - b.first + 1), b.order)),
        ("duration", lambda b: (b.first - b.last, -b.size, b.order)),
    )
    for fname, fit in (("first-fit", _first_fit), ("best-fit", _best_fit))
)


def _aligned_bound(live: list[_Buf], align: int) -> int:
    """No aligned placement of ``live`` (all live at once) fits in fewer bytes: all but the top one are padded."""
    if not live:
        return 0
    return sum(_align_up(b.size, align) for b in live) - max(_align_up(b.size, align) - b.size for b in live)


def _arrange(bufs: list[_Buf], align: int, target: int) -> tuple[str, dict[str, int], int]:
    """The smallest arena among the greedy heuristics, then a bounded search if that misses ``target``."""
    best: tuple[str, dict[str, int], int] = ("", {}, -1)
    for name, order, fit in _HEURISTICS:
        offs = _place(sorted(bufs, key=order), align, fit)
        size = max((offs[b.name] + b.size for b in bufs), default=0)
        if best[2] < 0 or size < best[2]:
            best = (name, offs, size)
    if best[2] > target and len(bufs) <= _SEARCH_MAX_BUFFERS:
        found = _search(sorted(bufs, key=_HEURISTICS[0][1]), align, best[2], target)
        if found is not None:
            best = ("search", found, max(found[b.name] + b.size for b in bufs))
    return best


_SEARCH_MAX_BUFFERS = 400
_SEARCH_WORK = 300_000  # candidate offsets examined: about half a second at most


def _search(order: list[_Buf], align: int, limit: int, target: int) -> dict[str, int] | None:
    """Depth-first search over placements smaller than ``limit``, in ``order``, at most _SEARCH_WORK candidates.

    Each buffer tries, lowest first, offset 0 and the aligned end of every buffer placed so far (not only the
    time-overlapping ones: resting on a buffer that ends elsewhere in time is what fixes parity problems, such
    as a small buffer between two large ones in a chain). Returns the best placement found, or None.
    """
    n = len(order)
    conflicts = [
        [j for j in range(n) if j != i and order[j].first <= b.last and b.first <= order[j].last]
        for i, b in enumerate(order)
    ]
    offs = [-1] * n
    state = {"limit": limit, "work": 0, "best": None}

    def visit(i: int, top: int) -> bool:  # True: stop (target reached or budget spent)
        if i == n:
            state["limit"], state["best"] = top, dict(zip((b.name for b in order), offs, strict=True))
            return top <= target
        b = order[i]
        busy = [(offs[j], offs[j] + order[j].size) for j in conflicts[i] if offs[j] >= 0 and order[j].size]
        ends = {0} | {_align_up(offs[j] + order[j].size, align) for j in range(i)}
        state["work"] += i + len(busy) + 1
        for off in sorted(ends):
            if off + b.size >= state["limit"] and b.size:
                break
            if b.size and any(off < e and s < off + b.size for s, e in busy):
                continue
            offs[i] = off
            if visit(i + 1, max(top, off + b.size)) or state["work"] >= _SEARCH_WORK:
                offs[i] = -1
                return True
        offs[i] = -1
        return False

    visit(0, 0)
    return state["best"]


def _check(bufs: list[_Buf], offsets: dict[str, int], align: int) -> None:
    for i, a in enumerate(bufs):
        assert offsets[a.name] % align == 0, a.name
        for b in bufs[i + 1 :]:
            if a.first <= b.last and b.first <= a.last and a.size and b.size:
                oa, ob = offsets[a.name], offsets[b.name]
                assert oa + a.size <= ob or ob + b.size <= oa, f"planner overlap: {a.name} and {b.name}"
