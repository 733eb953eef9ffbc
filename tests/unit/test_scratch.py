"""Kernel scratch: the planner places it in the arena for its layer's step only; codegen passes it in the
layer's mcuq_context. The portable kernels need none, so a kernel entry with a scratch function stands in."""

from __future__ import annotations

import dataclasses

from mcuq import ir
from mcuq.codegen.emit import build_model, render
from mcuq.lower import lower
from mcuq.plan import plan
from tests.util.tiny import tiny_fc_graph


def _with_scratch(layers, index: int, nbytes: int):
    layer = layers[index]
    k = dataclasses.replace(layer.kernel, scratch=lambda p: nbytes)
    return tuple(dataclasses.replace(lay, kernel=k) if i == index else lay for i, lay in enumerate(layers))


def _two_fc_graph() -> ir.Graph:
    """x -> fc -> h -> fc2 -> y: h lives in the arena."""
    g = tiny_fc_graph()
    q = ir.QParams((0.1,), (-128,))
    tensors = dict(g.tensors)
    tensors["h"] = ir.Tensor("h", (1, 4), ir.DType.INT8, q)
    tensors["w2"] = ir.Tensor("w2", (4, 4), ir.DType.INT8, ir.QParams((0.01,), (0,)), g.tensors["w"].data[:, :4].copy())
    tensors["y"] = ir.Tensor("y", (1, 4), ir.DType.INT8, ir.QParams((0.2,), (5,)))
    op1 = dataclasses.replace(g.ops[0], outputs=("h",))
    op2 = ir.Op(ir.OpKind.FULLY_CONNECTED, "fc2", ("h", "w2", ""), ("y",), ir.FullyConnectedAttrs(), 1)
    return dataclasses.replace(g, tensors=tensors, ops=(op1, op2))


def test_scratch_is_planned_for_its_step_and_passed_in_the_context() -> None:
    g = _two_fc_graph()
    base = lower(g)
    assert all(lay.scratch_bytes == 0 for lay in base)
    p0 = plan(g, base)
    assert p0.scratch == {} and p0.arena_size == 4  # h only

    layers = _with_scratch(base, 1, 100)  # fc2 reads h and needs 100 bytes of scratch at the same time
    p = plan(g, layers)
    assert set(p.scratch) == {1}
    lo, hi = p.scratch[1], p.scratch[1] + 100
    h0, h1 = p.offsets["h"], p.offsets["h"] + 4
    assert hi <= h0 or h1 <= lo, "scratch overlaps a tensor live at its step"
    assert p.lower_bound == 104 and p.arena_size >= 104

    m = build_model(g, layers, p, "two")
    c = render(m)["two.c"]
    assert f".buf = &two_arena[{p.scratch[1]}], .size = 100" in c
    assert "mcuq_fully_connected_s8(&l1_ctx, &l1_params" in c
    assert "mcuq_fully_connected_s8(&no_scratch, &l0_params" in c


def test_scratch_of_one_layer_reuses_memory_of_others() -> None:
    """Scratch of layer 0 lives at step 0 only, so it may share bytes with buffers born later."""
    g = _two_fc_graph()
    p = plan(g, _with_scratch(lower(g), 0, 64))
    assert p.lower_bound == 68  # step 0: scratch 64 + h 4
    assert p.arena_size == 68 and p.offsets["h"] == 64  # h right after the scratch, at an aligned offset
