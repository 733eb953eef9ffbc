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
  inclusive; a step's inputs and outputs are live together, unless the step's kernel lets its output overlap an
  input (``Kernel.overlap``: the output may start at ``input + d`` for any ``d <= D``) and that input's group is
  read by no later step (aliases included), and neither group is a caller buffer.
* ``lower_bound`` is the largest sum of *unaligned* sizes of groups live at one step, as if nothing overlapped;
  placement without overlaps cannot use less. Several deterministic greedy heuristics are tried (TFLM's
  size-descending first-fit among them) and the smallest arena is kept (ties: the first tried); when that misses
  the bound, a bounded depth-first search tries to close the gap. Nothing depends on dict or hash order: the
  result is a function of the step list.

Levers below the bound: an overlapping (input, output) pair is merged into one block with a fixed relative
offset ``d`` (chains merge transitively, e.g. a chain of in-place layers); a block's size is its members' extent,
its lifetime the union of theirs, and the heuristics above place blocks. ``d`` minimises the block's extent.
Merges are chosen greedily, step by step, and kept only where they do not enlarge the arena: a merge lengthens
its input's life into the output's, which may block other buffers. The plan is made three times: without
levers (today's plan), with in-place overlaps (``D >= 0``), then also with line buffers (``D < 0``: the output
trails the input rows still to be read); each lever is kept only when it lowers the arena, and ``Plan`` reports
what each bought. Kernel scratch stays a separate buffer, live at its step only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from .errors import ModelError
from .ir import Graph

if TYPE_CHECKING:
    from .lower.base import Layer

IN_PLACE = "in place"
LINE_BUFFER = "line buffer"


@dataclass(frozen=True)
class Step:
    """One layer as the planner sees it: activation tensors read and written (constants removed). ``overlap``:
    (input, D) pairs, the step's only output ``writes[0]`` may start at ``input + d`` for any ``d <= D``
    (``Kernel.overlap``); inputs not listed must not overlap it."""

    index: int
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    alias: bool = False
    overlap: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class Overlap:
    """One lever used: at ``step``, ``output`` starts at ``input + offset`` (``offset <= limit``, the kernel's
    D rounded down to the alignment), sharing ``saved`` bytes with it."""

    step: int
    input: str
    output: str
    limit: int
    offset: int
    saved: int
    lever: str  # IN_PLACE (D >= 0) or LINE_BUFFER (D < 0)


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
    # the arena with each lever added in turn (a lever that does not lower the arena is not used)
    arena_no_levers: int = 0  # inputs and outputs of every step apart (the plan before levers)
    arena_in_place: int = 0  # + outputs over inputs where the kernel allows D >= 0
    arena_line_buffers: int = 0  # + outputs trailing inputs where the kernel allows D < 0
    arena_patches: int | None = None  # + band execution (mcuq.lower.bands), where a band is used
    overlaps: tuple[Overlap, ...] = ()  # the (input, output) pairs that share memory, by step

    def describe(self) -> list[str]:
        """Human-readable plan: one line per buffer (arena by offset, then caller-owned), after what the levers
        saved when one was used. Tensor names are as they are: C comments take each line through
        ``codegen.names.c_comment``, a terminal through ``errors.printable``."""
        lines = [
            f"arena {self.arena_size} bytes (liveness bound {self.lower_bound}, {self.heuristic}, align {self.align})"
        ]
        if self.overlaps or self.arena_patches is not None:
            steps = (
                ("no levers", self.arena_no_levers, self.arena_no_levers),
                ("in place", self.arena_in_place, self.arena_no_levers),
                ("line buffers", self.arena_line_buffers, self.arena_in_place),
                ("patches", self.arena_patches, self.arena_line_buffers),
            )
            lines.append(
                "  levers: "
                + ", ".join(
                    f"{n} -" if a is None else f"{n} {a}" + ("" if n == "no levers" else f" (-{prev - a})")
                    for n, a, prev in steps
                )
            )
            for o in self.overlaps:
                lines.append(
                    f"  step {o.step:>3} {o.lever}: {o.output} at {o.input} {o.offset:+d} (allowed <= {o.limit:+d}), "
                    f"{o.saved} bytes shared"
                )
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


def plan(g: Graph, layers: tuple[Layer, ...], align: int = 16, quick: bool = False) -> Plan:
    """Arena offsets for the activation tensors of ``layers`` (the lowered ``g``). ``quick``: a smaller search
    budget, for trial plans (``mcuq.lower.bands`` compares many)."""
    steps, sizes = steps_from_layers(g, layers)
    scratch_names = _add_scratch(g, layers, steps, sizes)
    try:
        p = plan_steps(steps, sizes, g.inputs, g.outputs, align, quick)
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
        steps.append(replace(step, overlap=_layer_overlap(layer, step)))
    for name in g.inputs + g.outputs:
        sizes.setdefault(name, g.tensors[name].nbytes)
    return steps, sizes


def _layer_overlap(layer: Layer, step: Step) -> tuple[tuple[str, int], ...]:
    """(input, D) for each activation input the kernel lets its one output overlap: an input passed in several
    argument positions (or inside a tuple, CONCAT's) gets the smallest D, or none if one position has none."""
    if layer.kernel is None or layer.params is None or len(step.writes) != 1 or len(layer.outputs) != 1:
        return ()
    limits: dict[str, int | None] = {}
    for arg, d in zip(layer.inputs, layer.kernel.overlaps(layer.params, len(layer.inputs))):
        names = (arg,) if isinstance(arg, str) else arg
        for name in names:
            if name not in step.reads:
                continue
            if d is None or not isinstance(arg, str) or (name in limits and limits[name] is None):
                limits[name] = None
            else:
                prev = limits.get(name)
                limits[name] = int(d) if prev is None else min(prev, int(d))
    return tuple((n, d) for n in step.reads if (d := limits.get(n)) is not None)


def plan_steps(
    steps: list[Step],
    sizes: dict[str, int],
    inputs: tuple[str, ...],
    outputs: tuple[str, ...],
    align: int = 16,
    quick: bool = False,
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
        if s.overlap and (s.alias or not s.writes or any(n not in s.reads for n, _ in s.overlap)):
            raise ValueError(f"step {s.index}: an overlap needs an output and names one of the step's inputs")
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

    bound = max((sum(b.size for b in bufs if b.first <= s.index <= b.last) for s in steps), default=0)
    cands = _candidates(steps, parent, {b.name: b for b in bufs}, align)
    layout = _Layout(bufs, steps, align)
    chosen: dict[int, _Pair] = {}
    best = layout.final(chosen, _SEARCH_WORK_LEVERS if quick else _SEARCH_WORK)
    arenas = [best[2]]
    for lever in (IN_PLACE, LINE_BUFFER):
        allowed = {i: [c for c in cs if c.lever == IN_PLACE or lever == LINE_BUFFER] for i, cs in cands.items()}
        sel = _choose(allowed, chosen, layout)
        if sel != chosen:
            got = layout.final(sel, _SEARCH_WORK_LEVERS)
            if got[2] < best[2]:
                chosen, best = sel, got
        arenas.append(best[2])
    best_name, offs, best_size = best
    pairs = [chosen[i] for i in sorted(chosen)]
    _check(bufs, offs, align, pairs)

    tensors = set(sizes) | set(parent)
    offsets = {t: offs[_root(parent, t)] for t in sorted(tensors) if _root(parent, t) in offs}
    external = {t: ext[_root(parent, t)] for t in sorted(tensors) if _root(parent, t) in ext}
    lifetimes = {t: (first.get(r, -1), last.get(r, -1)) for t in sorted(tensors) for r in [_root(parent, t)]}
    overlaps = tuple(
        Overlap(
            p.step,
            p.input,
            p.output,
            p.limit,
            offs[p.dst] - offs[p.src],
            max(
                0, min(offs[p.src] + group_size[p.src], offs[p.dst] + group_size[p.dst]) - max(offs[p.src], offs[p.dst])
            ),
            p.lever,
        )
        for p in pairs
    )
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
        arena_no_levers=arenas[0],
        arena_in_place=arenas[1],
        arena_line_buffers=arenas[2],
        overlaps=overlaps,
    )


@dataclass(frozen=True)
class _Buf:
    name: str
    size: int
    first: int
    last: int
    order: int  # production order: the deterministic tie-breaker


@dataclass(frozen=True)
class _Pair:
    """A possible overlap: at ``step``, group ``dst`` (the output ``output``) at group ``src`` (read as
    ``input``) + d, d <= ``limit`` (the kernel's D rounded down to the alignment)."""

    step: int
    src: str
    dst: str
    input: str
    output: str
    limit: int
    lever: str


def _candidates(steps: list[Step], parent: dict[str, str], bufs: dict[str, _Buf], align: int) -> dict[int, list[_Pair]]:
    """Per step, the overlaps the planner may use: the input group's last read is this step, and both groups are
    in the arena (a caller buffer is never shared) and not empty. Every group read through several names (alias
    members) must allow the overlap through each of them."""
    out: dict[int, list[_Pair]] = {}
    for s in steps:
        if not s.overlap:
            continue
        dst = _root(parent, s.writes[0])
        given = dict(s.overlap)
        limits: dict[str, int | None] = {}
        names: dict[str, str] = {}
        for name in s.reads:
            r = _root(parent, name)
            d = given.get(name)
            names.setdefault(r, name)
            limits[r] = None if d is None or (r in limits and limits[r] is None) else min(d, limits.get(r, d))
        for r, d in limits.items():
            a, b = bufs.get(r), bufs.get(dst)
            if d is None or a is None or b is None or r == dst or a.last != s.index or b.first != s.index:
                continue
            if a.size and b.size:
                lever = IN_PLACE if d >= 0 else LINE_BUFFER
                out.setdefault(s.index, []).append(
                    _Pair(s.index, r, dst, names[r], s.writes[0], d // align * align, lever)
                )
    return out


@dataclass(frozen=True)
class _Block:
    """What the heuristics place: one group, or a chain of merged groups that move together. ``parts``: per
    member (offset in the block, size, first step, last step); ``size`` the extent, ``first``..``last`` the union
    of the members' lives; a member holds its own bytes during its own life only."""

    name: str
    size: int
    first: int
    last: int
    order: int
    parts: tuple[tuple[int, int, int, int], ...]
    area: int  # bytes x steps held, summed over the members


def _block(b: _Buf) -> _Block:
    return _Block(
        b.name, b.size, b.first, b.last, b.order, ((0, b.size, b.first, b.last),), b.size * (b.last - b.first + 1)
    )


class _Layout:
    """Places groups with a set of merged pairs (one per step at most): each chain of merged groups becomes one
    block whose members keep fixed relative offsets, each holding its bytes during its own life only. ``cost``
    is the cheap measure the greedy choice compares (cached by selection), ``final`` the placement."""

    def __init__(self, bufs: list[_Buf], steps: list[Step], align: int) -> None:
        self.bufs, self.align = bufs, align
        self.by_name = {b.name: b for b in bufs}
        self.steps = [s.index for s in steps]
        self.cache: dict[tuple[tuple[int, str], ...], tuple[int, int]] = {}

    def blocks(self, sel: dict[int, _Pair]) -> tuple[list[_Block], dict[str, tuple[str, int]]]:
        nxt = {p.src: p for p in sel.values()}
        has_prev = {p.dst for p in sel.values()}
        blocks: list[_Block] = []
        where: dict[str, tuple[str, int]] = {}  # group -> (block, offset in it)
        for b in self.bufs:
            if b.name in has_prev:
                continue
            chain, limits = [b], []
            while chain[-1].name in nxt:
                p = nxt[chain[-1].name]
                chain.append(self.by_name[p.dst])
                limits.append(p.limit)
            if len(chain) == 1:
                blocks.append(_block(b))
                where[b.name] = (b.name, 0)
                continue
            xs, extent = _chain_offsets([c.size for c in chain], limits, self.align)
            parts = tuple((x, c.size, c.first, c.last) for c, x in zip(chain, xs) if c.size)
            area = sum(c.size * (c.last - c.first + 1) for c in chain)
            blocks.append(
                _Block(b.name, extent, min(c.first for c in chain), max(c.last for c in chain), b.order, parts, area)
            )
            where.update({c.name: (b.name, x) for c, x in zip(chain, xs)})
        return blocks, where

    def _live(self, blocks: list[_Block]) -> list[int]:
        """Per step, a bound no placement of the blocks can beat: the aligned bound of the bytes their live members
        cover, and the top of each live member in its block (a block starts at offset 0 or above)."""
        held: dict[int, list[int]] = {i: [] for i in self.steps}
        tops: dict[int, int] = dict.fromkeys(self.steps, 0)
        for b in blocks:
            if len(b.parts) == 1:
                for i in range(b.first, b.last + 1):
                    if i in held:
                        held[i].append(b.size)
                continue
            for i in range(b.first, b.last + 1):
                spans = sorted((x, x + n) for x, n, f, la in b.parts if f <= i <= la)
                covered, end = 0, 0
                for lo, hi in spans:
                    lo = max(lo, end)
                    if hi > lo:
                        covered, end = covered + hi - lo, hi
                if covered and i in held:
                    held[i].append(covered)
                    tops[i] = max(tops[i], end)
        return [max(_aligned_bound(held[i], self.align), tops[i]) for i in self.steps]

    def cost(self, sel: dict[int, _Pair]) -> tuple[int, int]:
        """(the blocks' liveness bound, its sum over the steps): what the arena would be if the placement met the
        bound, then how much memory is held over time (less leaves more room to place the peak)."""
        key = tuple((i, sel[i].src) for i in sorted(sel))
        if key not in self.cache:
            live = self._live(self.blocks(sel)[0])
            self.cache[key] = (max(live, default=0), sum(live))
        return self.cache[key]

    def final(self, sel: dict[int, _Pair], work: int) -> tuple[str, dict[str, int], int]:
        """The placement: heuristics, then a search of at most ``work`` candidates if they miss the bound."""
        blocks, where = self.blocks(sel)
        name, offs, size = _arrange(blocks, self.align, max(self._live(blocks), default=0), work)
        return name, {g: offs[blk] + x for g, (blk, x) in where.items()}, size


def _chain_offsets(sizes: list[int], limits: list[int], align: int) -> tuple[list[int], int]:
    """Offsets x (aligned, min 0) of a chain of buffers with x[i+1] - x[i] <= limits[i] (aligned) that minimise
    the extent max(x + size); returns (x, extent). For a given extent F, taking each x as high as it may go
    (below F - size, and below the previous x + limit) is feasible whenever any choice is; binary search on F."""

    def fit(extent: int) -> list[int] | None:
        top = [(extent - s) // align * align for s in sizes]
        xs = [top[0]]
        for t, d in zip(top[1:], limits):
            xs.append(min(t, xs[-1] + d))
        return xs if min(xs) >= 0 else None

    walk = [0]
    for d in limits:
        walk.append(walk[-1] + min(d, 0))
    lo, hi = max(sizes), max(x + s for x, s in zip(walk, sizes)) - min(walk)
    while lo < hi:
        mid = (lo + hi) // 2
        if fit(mid) is None:
            lo = mid + 1
        else:
            hi = mid
    xs = fit(lo)
    assert xs is not None
    low = min(xs)
    xs = [x - low for x in xs]
    return xs, max(x + s for x, s in zip(xs, sizes))


def _choose(cands: dict[int, list[_Pair]], start: dict[int, _Pair], layout: _Layout) -> dict[int, _Pair]:
    """Greedy, in step order, on ``layout.cost`` (placing every trial would cost too much: the band fusion plans
    the model once per candidate): add or switch a step's merge when the peak does not grow and the memory held
    over time does not either; failing that, the merge with the chain of merges that follows it (each link of a
    line-buffered chain may raise the peak, which only the whole chain lowers). Then drop each merge whose removal
    does not raise the cost; twice at most."""
    by_src: dict[str, _Pair] = {}
    for i in sorted(cands):
        for c in cands[i]:
            by_src.setdefault(c.src, c)
    sel, cur = dict(start), layout.cost(start)
    for _ in range(2):
        before = dict(sel)
        for i in sorted(cands):
            for c in cands[i]:
                if sel.get(i) is c:
                    continue
                trial = {**sel, i: c}
                cost = layout.cost(trial)
                if cost > cur:
                    nxt = by_src.get(c.dst)
                    while nxt is not None and nxt.step not in trial:
                        trial[nxt.step] = nxt
                        nxt = by_src.get(nxt.dst)
                    cost = layout.cost(trial) if len(trial) > len(sel) + 1 else cost
                if cost <= cur:
                    sel, cur = trial, cost
        for i in sorted(sel):
            trial = {k: v for k, v in sel.items() if k != i}
            cost = layout.cost(trial)
            if cost <= cur:
                sel, cur = trial, cost
        if sel == before:
            break
    return sel


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


def _first_fit(gaps: list[tuple[int, int]]) -> int:
    return gaps[0][0]


def _best_fit(gaps: list[tuple[int, int]]) -> int:
    return min((end - start, start) for start, end in gaps)[1]


def _bases(b: _Block, placed: list[tuple[int, int, int, int]], align: int) -> list[tuple[int, int]]:
    """The free ranges [start, end) of ``b``'s offset among ``placed`` members (offset, size, first, last): at
    offset o every member (x, n) of b lies at [o + x, o + x + n), apart from any placed member live with it. Every
    start is aligned (offsets and members' offsets are); the last range is unbounded. A range's length is the
    slack a lone buffer has in its gap, so best-fit means the same for blocks as for buffers."""
    banned = sorted(
        (po - x - n + 1, _align_up(po + pn, align) - x)
        for x, n, f, la in b.parts
        for po, pn, pf, pl in placed
        if pf <= la and f <= pl
    )
    gaps: list[tuple[int, int]] = []
    cursor = 0
    for lo, hi in banned:
        if lo > cursor:
            gaps.append((cursor, lo))
        cursor = max(cursor, hi)
    gaps.append((cursor, 1 << 62))
    return gaps


def _place(order: list[_Block], align: int, fit: Callable[[list[tuple[int, int]]], int]) -> dict[str, int]:
    """Greedy placement in ``order``: each block goes where its members fit among the placed members live with
    them (for a lone buffer: into a gap among the placed, time-overlapping ones)."""
    placed: list[tuple[int, int, int, int]] = []
    offsets: dict[str, int] = {}
    for b in order:
        if b.size == 0:
            offsets[b.name] = 0
            continue
        o = offsets[b.name] = fit(_bases(b, placed, align))
        placed.extend((o + x, n, f, la) for x, n, f, la in b.parts)
    return offsets


_Key = Callable[[_Block], tuple]
_HEURISTICS: tuple[tuple[str, _Key, Callable[[list[tuple[int, int]]], int]], ...] = tuple(
    (f"{oname}/{fname}", okey, fit)
    for oname, okey in (
        ("size", lambda b: (-b.size, b.first, b.order)),  # TFLM's GreedyMemoryPlanner order
        ("start", lambda b: (b.first, -b.size, b.order)),
        ("area", lambda b: (-b.area, b.order)),
        ("duration", lambda b: (b.first - b.last, -b.size, b.order)),
    )
    for fname, fit in (("first-fit", _first_fit), ("best-fit", _best_fit))
)


def _aligned_bound(live: list[int], align: int) -> int:
    """No aligned placement of buffers of sizes ``live`` (all live at once) fits in fewer bytes: all but the top
    one are padded."""
    if not live:
        return 0
    return sum(_align_up(n, align) for n in live) - max(_align_up(n, align) - n for n in live)


def _arrange(blocks: list[_Block], align: int, target: int, work: int) -> tuple[str, dict[str, int], int]:
    """The smallest arena among the greedy heuristics, then a search of at most ``work`` candidates if that
    misses ``target``."""
    best: tuple[str, dict[str, int], int] = ("", {}, -1)
    for name, order, fit in _HEURISTICS:
        offs = _place(sorted(blocks, key=order), align, fit)
        size = max((offs[b.name] + b.size for b in blocks), default=0)
        if best[2] < 0 or size < best[2]:
            best = (name, offs, size)
    if work and best[2] > target and len(blocks) <= _SEARCH_MAX_BUFFERS:
        found = _search(sorted(blocks, key=_HEURISTICS[0][1]), align, best[2], target, work)
        if found is not None:
            best = ("search", found, max(found[b.name] + b.size for b in blocks))
    return best


_SEARCH_MAX_BUFFERS = 400
_SEARCH_WORK = 300_000  # candidate offsets examined: about half a second at most
_SEARCH_WORK_LEVERS = 20_000  # with a lever: the band fusion plans each model many times


def _search(order: list[_Block], align: int, limit: int, target: int, work: int) -> dict[str, int] | None:
    """Depth-first search over placements smaller than ``limit``, in ``order``, at most ``work`` candidates.

    Each block tries, lowest first, offset 0 and every offset that rests one of its members on the aligned end
    of a member placed so far (not only the time-overlapping ones: resting on a buffer that ends elsewhere in
    time is what fixes parity problems, such as a small buffer between two large ones in a chain). Returns the
    best placement found, or None.
    """
    n = len(order)
    # per block: (its member, an earlier block, that block's member) pairs live at one step
    conflicts = [
        [
            (x, m, j, y, k)
            for j in range(i)
            if order[j].first <= b.last and b.first <= order[j].last
            for x, m, f, la in b.parts
            for y, k, g, lb in order[j].parts
            if g <= la and f <= lb and m and k
        ]
        for i, b in enumerate(order)
    ]
    offs = [-1] * n
    state = {"limit": limit, "work": 0, "best": None}

    def visit(i: int, top: int) -> bool:  # True: stop (target reached or budget spent)
        if i == n:
            state["limit"], state["best"] = top, dict(zip((b.name for b in order), offs, strict=True))
            return top <= target
        b = order[i]
        busy = [(offs[j] + y - x - m, offs[j] + y + k - x) for x, m, j, y, k in conflicts[i] if offs[j] >= 0]
        ends = {0}
        for j in range(i):
            for y, k, _, _ in order[j].parts:
                e = _align_up(offs[j] + y + k, align)
                ends.update(e - x for x, _, _, _ in b.parts if e >= x)
        state["work"] += i + len(busy) + 1
        for off in sorted(ends):
            if off + b.size >= state["limit"] and b.size:
                break
            if any(lo < off < hi for lo, hi in busy):
                continue
            offs[i] = off
            if visit(i + 1, max(top, off + b.size)) or state["work"] >= work:
                offs[i] = -1
                return True
        offs[i] = -1
        return False

    visit(0, 0)
    return state["best"]


def _check(bufs: list[_Buf], offsets: dict[str, int], align: int, pairs: list[_Pair]) -> None:
    """Every group aligned; no two groups live at one step share a byte, unless they are a merged pair at the
    step that ends the input's life and starts the output's, with the output at input + d, d <= the limit."""
    allowed = {(p.src, p.dst): p for p in pairs}
    for i, a in enumerate(bufs):
        if offsets[a.name] % align:
            raise AssertionError(f"planner: '{a.name}' at unaligned offset {offsets[a.name]}")
        for b in bufs[i + 1 :]:
            if not (a.first <= b.last and b.first <= a.last and a.size and b.size):
                continue
            oa, ob = offsets[a.name], offsets[b.name]
            if oa + a.size <= ob or ob + b.size <= oa:
                continue
            p = allowed.get((a.name, b.name)) or allowed.get((b.name, a.name))
            src, dst = (a, b) if p is not None and p.src == a.name else (b, a)
            if (
                p is None
                or src.last != p.step
                or dst.first != p.step
                or offsets[dst.name] - offsets[src.name] > p.limit
            ):
                raise AssertionError(f"planner overlap: {a.name} and {b.name}")
