"""The memory planner: placements are checked by simulating the model byte by byte, not by trusting the planner.

``_simulate`` gives every byte of the arena and of each caller buffer an owner (the value a layer wrote there),
runs the layers in order, and asserts that every layer finds its inputs intact, before and after writing its
outputs (no in-place reuse), and that every graph output holds its value at the end.
"""

from __future__ import annotations

import dataclasses
import itertools
import random

import numpy as np
import pytest

from mcuq import ir
from mcuq.errors import ModelError
from mcuq.lower.base import Layer
from mcuq.lower.shape import copy_layer
from mcuq.passes import reshape_to_copy
from mcuq.plan import Plan, Step, plan, plan_steps

MLPERF_TFLM_ARENA = {
    "kws_ref_model": 24272,
    "vww_96_int8": 103680,
    "pretrainedResnet_quant": 55984,
    "ad01_int8": 3984,
}


# ----------------------------------------------------------------------------------------------- hand-built graphs
class G:
    """A tiny graph builder: activations by byte size (int8, shape (n,)), layers in order (an alias layer is a
    RESHAPE op, any other an ADD). ``plan`` runs ``passes.reshape_to_copy`` first, as ``compile_model`` does,
    and turns the alias layers of the RESHAPEs it made COPYs into ``mcuq_copy_s8`` layers."""

    def __init__(self) -> None:
        self.tensors: dict[str, ir.Tensor] = {}
        self.layers: list[Layer] = []

    @classmethod
    def chain(cls, *tensors: tuple[str, int], aliases: tuple[str, ...] = ()) -> G:
        """A straight line through ``tensors`` (name, bytes): the first is read by one layer producing the second,
        and so on. The layers producing ``aliases`` are alias layers."""
        b = cls()
        for name, size in tensors:
            b.t(name, size)
        for (src, _), (dst, _) in itertools.pairwise(tensors):
            b.op((src,), (dst,), alias=dst in aliases)
        return b

    def t(self, name: str, size: int, const: bool = False) -> str:
        data = np.zeros(size, np.int8) if const else None
        self.tensors[name] = ir.Tensor(name, (size,), ir.DType.INT8, data=data)
        return name

    def op(
        self,
        ins: tuple,
        outs: tuple[str, ...],
        alias: bool = False,
        consts: dict | None = None,
        overlap: tuple[int | None, ...] = (),
    ) -> None:
        """A layer reading ``ins`` and writing ``outs``; its kernel lets the output overlap input k at
        ``input + d``, ``d <= overlap[k]`` (``Kernel.overlap``; none by default)."""
        kind, attrs = (ir.OpKind.RESHAPE, ir.ReshapeAttrs()) if alias else (ir.OpKind.ADD, ir.BinaryAttrs())
        op_ins = tuple(n for n in _names(ins) if n not in (consts or {}))
        op = ir.Op(kind, f"op{len(self.layers)}", op_ins, outs, attrs, len(self.layers))
        args = tuple(ins) + tuple(outs)
        self.layers.append(_layer(op, args, len(outs), alias, consts or {}, overlap))

    def graph(self, inputs: tuple[str, ...], outputs: tuple[str, ...]) -> ir.Graph:
        return ir.Graph("g", dict(self.tensors), tuple(lay.op for lay in self.layers), inputs, outputs)

    def passed(self, inputs: tuple[str, ...], outputs: tuple[str, ...]) -> tuple[ir.Graph, tuple[Layer, ...]]:
        """The graph after ``reshape_to_copy``, and the layers with its COPYs as copy layers."""
        g = reshape_to_copy(self.graph(inputs, outputs))
        layers = tuple(
            copy_layer(op, op.inputs[0], op.outputs[0], self.tensors[op.outputs[0]].size)
            if op.kind is ir.OpKind.COPY
            else layer
            for op, layer in zip(g.ops, self.layers, strict=True)
        )
        return g, layers

    def plan(self, inputs: tuple[str, ...], outputs: tuple[str, ...], align: int = 16) -> tuple[ir.Graph, Plan]:
        g, layers = self.passed(inputs, outputs)
        p = plan(g, layers, align)
        _simulate(g, layers, p, align)
        return g, p

    def copies(self, g: ir.Graph) -> list[str]:
        """Names of the ops ``reshape_to_copy`` made COPYs."""
        return [op.name for op in g.ops if op.kind is ir.OpKind.COPY]


def _layer(
    op: ir.Op, args: tuple, n_outputs: int, alias: bool, consts: dict, overlap: tuple[int | None, ...] = ()
) -> Layer:
    """A layer for the planner, which reads only its op, args, outputs count, consts, its kernel's overlaps and
    whether it is an alias: a copy layer's kernel, made not in place, with ``overlap``, stands in for any kernel;
    an alias has none (``alias`` was a field before the kernel registry, now it is ``kernel is None``)."""
    layer = dataclasses.replace(copy_layer(op, "", "", 0), args=args, n_outputs=n_outputs, consts=consts)
    kernel = dataclasses.replace(layer.kernel, in_place=False, overlap=(lambda params: overlap) if overlap else None)
    layer = dataclasses.replace(layer, kernel=kernel)
    if not alias:
        return layer
    if "alias" in {f.name for f in dataclasses.fields(Layer)}:
        return dataclasses.replace(layer, alias=True)
    return dataclasses.replace(layer, kernel=None, params=None)


def _names(args: tuple) -> list[str]:
    return [n for a in args for n in ((a,) if isinstance(a, str) else a) if n]


def _simulate(g: ir.Graph, layers: tuple[Layer, ...], p: Plan, align: int) -> None:
    """Run the plan on owner-tagged memory; fail on any clobbered input or misplaced alias. An input the plan
    lets a layer's output overlap may be overwritten by that layer (its kernel's D, read here from the layer,
    bounds the offset), and must then never be read again."""

    def is_act(name: str, layer: Layer) -> bool:
        return name not in layer.consts and not g.tensors[name].is_const

    mem = {"": np.full(p.arena_size, -1, np.int64)}
    for name in g.inputs + g.outputs:
        mem[name] = np.full(g.tensors[name].nbytes, -1, np.int64)
    value: dict[str, int] = {}  # tensor -> id of the value it holds (aliases share their input's)

    def where(name: str) -> tuple[str, int]:
        if name in p.external:
            assert name not in p.offsets, name
            return p.external[name], 0
        off = p.offsets[name]
        assert off % align == 0, (name, off)
        assert off + g.tensors[name].nbytes <= p.arena_size, name
        return "", off

    def intact(name: str) -> None:
        buf, off = where(name)
        region = mem[buf][off : off + g.tensors[name].nbytes]
        assert (region == value[name]).all(), f"'{name}' was overwritten before it was read"

    def write(name: str, v: int) -> None:
        buf, off = where(name)
        mem[buf][off : off + g.tensors[name].nbytes] = v
        value[name] = v

    for k, name in enumerate(g.inputs):
        write(name, 1000 + k)
    for i, layer in enumerate(layers):
        ins = [n for n in _names(layer.inputs) if is_act(n, layer)]
        outs = [n for n in layer.outputs if is_act(n, layer)]
        for n in ins:
            intact(n)
        if layer.alias:
            assert where(outs[0]) == where(ins[0]), f"alias '{outs[0]}' is not at its input's address"
            value[outs[0]] = value[ins[0]]
            continue
        shared = {o.input for o in p.overlaps if o.step == i}
        for n in shared:
            assert outs == [layer.outputs[0]] and n not in p.external and outs[0] not in p.external
            limits = [d for a, d in zip(layer.inputs, layer.kernel.overlaps(layer.params, len(layer.inputs))) if a == n]
            assert limits and None not in limits, f"step {i}: '{n}' may not overlap the output"
            assert p.offsets[outs[0]] - p.offsets[n] <= min(limits), f"step {i}: output too far up over '{n}'"
        for n in outs:
            write(n, i)
        for n in ins:
            if n not in shared:
                intact(n)
    for name in g.outputs:
        intact(name)
        assert p.external[name] == name
    assert p.arena_no_levers >= p.lower_bound and p.arena_size >= p.lower_bound or p.overlaps
    final = p.arena_line_buffers if p.arena_patches is None else p.arena_patches
    assert p.arena_size == final and final <= p.arena_line_buffers <= p.arena_in_place <= p.arena_no_levers
    if not p.scratch:  # kernel scratch is no graph tensor
        assert p.lower_bound == _liveness_bound(g, layers)


def _liveness_bound(g: ir.Graph, layers: tuple[Layer, ...]) -> int:
    """Independent bound: bytes of arena values (alias chains followed) live at each step."""
    root: dict[str, str] = {}
    for layer in layers:
        if layer.alias:
            src = _names(layer.inputs)[0]
            root[layer.outputs[0]] = root.get(src, src)
    external = {root.get(n, n) for n in g.inputs + g.outputs}
    span: dict[str, list[int]] = {}
    for i, layer in enumerate(layers):
        for n in _names(layer.args):
            r = root.get(n, n)
            if n in layer.consts or g.tensors[n].is_const or r in external:
                continue
            span.setdefault(r, [i, i])[1] = i
    live = [sum(g.tensors[r].nbytes for r, (a, b) in span.items() if a <= i <= b) for i in range(len(layers))]
    return max(live, default=0)


# ------------------------------------------------------------------------------------------------------- cases
def test_chain_ping_pongs() -> None:
    b = G()
    prev = b.t("in", 100)
    for k, size in enumerate([64, 200, 48, 300, 32]):
        w = b.t(f"w{k}", 10, const=True)
        cur = b.t(f"a{k}", size)
        b.op((prev, w, ""), (cur,))
        prev = cur
    b.t("out", 10)
    b.op((prev,), ("out",))
    _, p = b.plan(("in",), ("out",))
    assert p.lower_bound == 348 == p.arena_size  # a2 (48 bytes) below a3 (300)
    assert set(p.offsets) == {"a0", "a1", "a2", "a3", "a4"}
    assert p.external == {"in": "in", "out": "out"}


def test_residual_add_keeps_branch_alive() -> None:
    b = G()
    b.t("in", 64)
    for n in ("a", "b", "c"):
        b.t(n, 64)
    b.t("out", 64)
    b.op(("in",), ("a",))
    b.op(("a",), ("b",))
    b.op(("b",), ("c",))
    b.op(("a", "c"), ("out",))
    _, p = b.plan(("in",), ("out",))
    assert p.lifetimes["a"] == (0, 3) and p.lower_bound == 192 == p.arena_size


def test_alias_shares_memory_and_extends_life() -> None:
    b = G.chain(("in", 32), ("a", 96), ("r", 96), ("c", 16), ("out", 8), aliases=("r",))
    _, p = b.plan(("in",), ("out",))
    assert p.alias_of == {"r": "a"} and p.offsets["r"] == p.offsets["a"]
    assert p.lifetimes["a"] == p.lifetimes["r"] == (0, 2)


def test_graph_input_read_twice_and_outputs_read_later() -> None:
    b = G()
    for n in ("in", "a", "b", "out1", "out2"):
        b.t(n, 40)
    b.op(("in",), ("a",))
    b.op(("in",), ("b",))
    b.op(("a", "b"), ("out1",))
    b.op(("out1", "in"), ("out2",))  # a graph output is also read by a later layer
    _, p = b.plan(("in",), ("out1", "out2"))
    assert sorted(p.offsets) == ["a", "b"] and p.arena_size == 88  # 40 -> 48 aligned, + 40


def test_output_through_alias_lives_in_caller_buffer() -> None:
    b = G.chain(("in", 16), ("a", 50), ("r", 50), ("out", 50), aliases=("r", "out"))
    _, p = b.plan(("in",), ("out",))
    assert p.external == {"a": "out", "r": "out", "out": "out", "in": "in"}
    assert p.offsets == {} and p.arena_size == 0


def test_input_aliases_stay_in_input_buffer() -> None:
    b = G.chain(("in", 30), ("r", 30), ("out", 4), aliases=("r",))
    _, p = b.plan(("in",), ("out",))
    assert p.external["r"] == "in" and p.arena_size == 0


def test_single_reshape_model_is_a_copy() -> None:
    b = G.chain(("in", 24), ("out", 24), aliases=("out",))
    g, p = b.plan(("in",), ("out",))
    assert b.copies(g) == ["op0"] and p.arena_size == 0 and p.alias_of == {}
    assert p.external == {"in": "in", "out": "out"}


def test_two_outputs_from_one_tensor_copy_the_second() -> None:
    b = G()
    for n in ("in", "a", "out1", "out2"):
        b.t(n, 20)
    b.op(("in",), ("a",))
    b.op(("a",), ("out1",), alias=True)
    b.op(("a",), ("out2",), alias=True)
    g, p = b.plan(("in",), ("out1", "out2"))
    assert b.copies(g) == ["op2"] and p.external["a"] == "out1" and p.arena_size == 0


def test_copied_output_read_later() -> None:
    b = G.chain(("in", 20), ("out1", 20), ("out2", 20), aliases=("out1",))
    g, p = b.plan(("in",), ("out1", "out2"))
    assert b.copies(g) == ["op0"] and p.arena_size == 0


@pytest.mark.parametrize(
    "outputs, alias_outs", [(("out",), [("in", "out")]), (("o1", "o2"), [("a", "o1"), ("a", "o2")])]
)
def test_unpassed_alias_between_caller_buffers_is_an_internal_error(outputs, alias_outs) -> None:
    """Without reshape_to_copy the planner refuses (RuntimeError: a pipeline bug, not a ModelError)."""
    b = G()
    for n in ("in", "a", "out", "o1", "o2"):
        b.t(n, 12)
    if "o1" in outputs:
        b.op(("in",), ("a",))
    for src, dst in alias_outs:
        b.op((src,), (dst,), alias=True)
    with pytest.raises(RuntimeError, match="reshape_to_copy must run"):
        plan(b.graph(("in",), outputs), tuple(b.layers))


def test_input_that_is_also_output_is_an_error() -> None:
    b = G()
    b.t("x", 8)
    with pytest.raises(ModelError, match="both a graph input and a graph output"):
        b.plan(("x",), ("x",))


def test_constants_absent_args_and_concat_tuples() -> None:
    b = G()
    for n, s in (("in", 10), ("a", 33), ("b", 17), ("c", 50), ("out", 5)):
        b.t(n, s)
    b.t("w", 99, const=True)
    repacked = ir.Tensor("w_packed", (99,), ir.DType.INT8, data=np.zeros(99, np.int8))
    b.op(("in", "w", ""), ("a",))
    b.op(("in", "w_packed"), ("b",), consts={"w_packed": repacked})
    b.op((("a", "b"),), ("c",))  # CONCATENATION passes a tuple
    b.op(("c",), ("out",))
    _, p = b.plan(("in",), ("out",))
    assert sorted(p.offsets) == ["a", "b", "c"] and "w" not in p.sizes and "w_packed" not in p.sizes
    assert p.lower_bound == 100


def test_small_buffer_in_a_chain_reaches_bound() -> None:
    """ad01's shape: greedy by size puts the 8-byte bottleneck on top; the search fixes the parity."""
    sizes = [128, 128, 128, 128, 8, 128, 128, 128, 128]
    b = G.chain(("in", 640), *((f"h{k}", s) for k, s in enumerate(sizes)), ("out", 640))
    _, p = b.plan(("in",), ("out",))
    assert p.lower_bound == 256 == p.arena_size and p.heuristic == "search"


@pytest.mark.parametrize("align", [1, 4, 16, 64])
def test_alignment(align: int) -> None:
    b = G()
    for n, s in (("in", 3), ("a", 5), ("b", 7), ("c", 9), ("out", 3)):
        b.t(n, s)
    b.op(("in",), ("a",))
    b.op(("in", "a"), ("b",))
    b.op(("a", "b"), ("c",))
    b.op(("c", "b"), ("out",))
    _, p = b.plan(("in",), ("out",), align)
    assert all(o % align == 0 for o in p.offsets.values()) and p.lower_bound == 21


def _random_graph(seed: int) -> tuple[G, tuple[str, ...], tuple[str, ...]]:
    rng = random.Random(seed)
    b = G()
    avail = [b.t(f"in{k}", rng.randint(1, 300)) for k in range(rng.randint(1, 2))]
    inputs = tuple(avail)
    for i in range(rng.randint(3, 25)):
        ins = tuple(rng.sample(avail, min(len(avail), rng.randint(1, 3))))
        if rng.random() < 0.2:
            src = rng.choice(avail)
            b.op((src,), (b.t(f"r{i}", b.tensors[src].nbytes),), alias=True)
            avail.append(f"r{i}")
            continue
        outs = tuple(b.t(f"t{i}_{k}", rng.choice([1, 7, 16, 33, 64, 100, 257, 1000])) for k in range(rng.randint(1, 2)))
        b.op(ins, outs)
        avail = avail[-6:] + list(outs)
    produced = [n for n in avail if n not in inputs]
    outputs = tuple(sorted(set(produced[-rng.randint(1, 2) :])))
    return b, inputs, outputs


@pytest.mark.parametrize("seed", range(40))
def test_random_graphs(seed: int) -> None:
    b, inputs, outputs = _random_graph(seed)
    _, p = b.plan(inputs, outputs, align=[1, 4, 16][seed % 3])
    assert p.arena_size <= sum(-(-p.sizes[n] // 16) * 16 for n in p.offsets)
    assert p == b.plan(inputs, outputs, align=[1, 4, 16][seed % 3])[1]  # deterministic


def test_independent_of_tensor_dict_order() -> None:
    b, inputs, outputs = _random_graph(7)
    g, layers = b.passed(inputs, outputs)
    rev = ir.Graph("g", dict(reversed(list(g.tensors.items()))), g.ops, inputs, outputs)
    p1, p2 = plan(g, layers), plan(rev, layers)
    assert p1 == p2 and p1.describe() == p2.describe()


def test_describe() -> None:
    b = G.chain(("in", 16), ("a", 32), ("r", 32), ("out", 8), aliases=("r",))
    _, p = b.plan(("in",), ("out",))
    lines = p.describe()
    assert lines[0].startswith("arena 32 bytes (liveness bound 32")
    assert any("a = r" in line and "steps   0..2" in line for line in lines)


def test_step_errors() -> None:
    with pytest.raises(ValueError, match="read before it is produced"):
        plan_steps([Step(0, ("x",), ("y",))], {"x": 1, "y": 1}, (), ("y",))
    with pytest.raises(ValueError, match="written twice"):
        plan_steps([Step(0, (), ("y",)), Step(1, (), ("y",))], {"y": 1}, (), ("y",))


# ------------------------------------------------------------------------------------------------ MLPerf Tiny
def _mlperf(shared_models, name: str) -> ir.Graph:
    from mcuq.frontend.tflite import load

    return load(shared_models / "mlperf_tiny" / f"{name}.tflite")


@pytest.mark.models
@pytest.mark.parametrize("name", sorted(MLPERF_TFLM_ARENA))
def test_mlperf_ops(shared_models, name: str) -> None:
    """The planner on the frontend's ops alone (RESHAPE/SQUEEZE alias), independent of lowering."""
    g = reshape_to_copy(_mlperf(shared_models, name))

    def acts(names: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(n for n in names if n and not g.tensors[n].is_const)

    steps = [Step(i, acts(op.inputs), acts(op.outputs), op.kind is ir.OpKind.RESHAPE) for i, op in enumerate(g.ops)]
    sizes = {n: t.nbytes for n, t in g.tensors.items() if not t.is_const}
    p = plan_steps(steps, sizes, g.inputs, g.outputs)
    assert p.arena_size == p.lower_bound <= MLPERF_TFLM_ARENA[name]


@pytest.mark.models
@pytest.mark.parametrize("name", sorted(MLPERF_TFLM_ARENA))
def test_mlperf_layers(shared_models, name: str) -> None:
    from mcuq.lower import lower

    g = reshape_to_copy(_mlperf(shared_models, name))
    try:
        layers = lower(g)
    except ModelError as e:
        if "not supported" in str(e):
            pytest.skip(f"lowering not complete yet: {e}")
        raise
    p = plan(g, layers)
    _simulate(g, layers, p, 16)
    assert p.arena_size == p.lower_bound <= MLPERF_TFLM_ARENA[name]


# ------------------------------------------------------------------------- through the generated C, vs the oracle
def _q(scale: float, zp: int) -> ir.QParams:
    return ir.QParams((scale,), (zp,))


def _fc_graph(case: str) -> ir.Graph:
    """Small FC/ADD/RESHAPE models that hit the planner's corner cases (aliases into caller buffers, copies)."""
    rng = np.random.default_rng(len(case))
    t: dict[str, ir.Tensor] = {"x": ir.Tensor("x", (1, 12), ir.DType.INT8, _q(0.05, -7))}
    ops: list[ir.Op] = []

    def act(name: str, shape: tuple[int, ...], zp: int = 3) -> str:
        t[name] = ir.Tensor(name, shape, ir.DType.INT8, _q(0.08, zp))
        return name

    def fc(x: str, y: str, n: int) -> None:
        k = t[x].shape[-1]
        t[f"w_{y}"] = ir.Tensor(f"w_{y}", (n, k), ir.DType.INT8, _q(0.02, 0), rng.integers(-127, 128, (n, k), np.int8))
        t[f"b_{y}"] = ir.Tensor(f"b_{y}", (n,), ir.DType.INT32, _q(0.001, 0), rng.integers(-900, 900, n, np.int32))
        ops.append(
            ir.Op(
                ir.OpKind.FULLY_CONNECTED,
                y,
                (x, f"w_{y}", f"b_{y}"),
                (act(y, (1, n)),),
                ir.FullyConnectedAttrs(),
                len(ops),
            )
        )

    def reshape(x: str, y: str, shape: tuple[int, ...]) -> None:
        t[y] = ir.Tensor(y, shape, ir.DType.INT8, t[x].qparams)
        ops.append(ir.Op(ir.OpKind.RESHAPE, y, (x,), (y,), ir.ReshapeAttrs(), len(ops)))

    if case == "single_reshape":
        reshape("x", "y", (3, 4))
        return ir.Graph(case, t, tuple(ops), ("x",), ("y",))
    if case == "alias_to_output":  # x -> reshape -> fc a -> fc b -> reshape -> output
        reshape("x", "xr", (1, 12))
        fc("xr", "a", 16)
        fc("a", "b", 6)
        reshape("b", "y", (2, 3))
        return ir.Graph(case, t, tuple(ops), ("x",), ("y",))
    # two outputs from one tensor, a residual ADD, and an output read by a later layer
    fc("x", "a", 16)
    fc("a", "b", 16)
    ops.append(ir.Op(ir.OpKind.ADD, "s", ("a", "b"), (act("s", (1, 16), -2),), ir.BinaryAttrs(), len(ops)))
    reshape("s", "y1", (4, 4))
    reshape("s", "y2", (2, 8))
    fc("s", "y3", 5)
    return ir.Graph(case, t, tuple(ops), ("x",), ("y1", "y2", "y3"))


@pytest.mark.oracle
@pytest.mark.parametrize("case", ["single_reshape", "alias_to_output", "two_outputs_residual"])
def test_generated_c_matches_oracle(case: str) -> None:
    from tests.util import oracle

    oracle.require()
    import mcuq
    from mcuq.frontend.tflite_writer import write
    from tests.util.compare import assert_bit_exact

    model = write(_fc_graph(case))
    cm = mcuq.compile_model(model)
    _simulate(cm.graph, cm.layers, cm.plan, 16)
    x = np.random.default_rng(1).integers(-128, 128, (5, 1, 12), dtype=np.int8)
    assert_bit_exact(cm, model, [x])
    copies = [op.name for op in cm.graph.ops if op.kind is ir.OpKind.COPY]
    if case == "single_reshape":
        assert copies == ["y"] and cm.plan.arena_size == 0
    if case == "alias_to_output":
        assert cm.plan.external["b"] == "y" and cm.plan.external["xr"] == "x" and list(cm.plan.offsets) == ["a"]
        assert copies == []
    if case == "two_outputs_residual":
        assert copies == ["y2"] and cm.plan.external["s"] == "y1"
