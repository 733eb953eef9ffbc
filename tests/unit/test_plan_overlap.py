"""The planner's levers below the liveness bound: outputs over inputs (in place, D >= 0) and trailing them (line
buffers, D < 0), as kernels allow (``Kernel.overlap``). Every plan built through ``G`` is checked by
``test_plan._simulate`` (owner-tagged memory, the allowed D read from the layer's kernel, not from the plan)."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

from mcuq.plan import IN_PLACE, LINE_BUFFER, Step, _chain_offsets, plan_steps
from tests.unit.test_plan import G

S = 256  # a tensor size, a multiple of the alignment


def _chain(n: int, limit: int | None, size: int = S) -> G:
    """in -> t0 -> ... -> t{n-1} -> out; each layer between two arena tensors allows ``limit`` on its input."""
    b = G()
    b.t("in", 16)
    names = [b.t(f"t{k}", size) for k in range(n)]
    b.t("out", 16)
    b.op(("in",), (names[0],), overlap=(limit,))  # caller-owned input: never shared
    for x, y in itertools.pairwise(names):
        b.op((x,), (y,), overlap=(limit,))
    b.op((names[-1],), ("out",), overlap=(limit,))  # caller-owned output: never shared
    return b


def test_chain_in_place_is_one_buffer() -> None:
    _, p = _chain(5, 0).plan(("in",), ("out",))
    assert p.lower_bound == 2 * S == p.arena_no_levers
    assert p.arena_size == S == p.arena_in_place == p.arena_line_buffers
    assert [(o.step, o.input, o.output, o.offset, o.saved, o.lever) for o in p.overlaps] == [
        (k, f"t{k - 1}", f"t{k}", 0, S, IN_PLACE) for k in range(1, 5)
    ]
    assert p.arena_patches is None


def test_chain_line_buffers_shift_accumulates() -> None:
    _, p = _chain(5, -40).plan(("in",), ("out",))  # D = -40 -> d = -48 at alignment 16
    assert p.arena_no_levers == p.arena_in_place == 2 * S
    assert p.arena_size == p.arena_line_buffers == S + 4 * 48
    assert all(o.offset == -48 and o.limit == -48 and o.lever == LINE_BUFFER for o in p.overlaps)
    assert p.offsets["t4"] == p.offsets["t0"] - 4 * 48


def test_positive_limit_keeps_outputs_over_inputs() -> None:
    b = G()
    for n, s in (("in", 8), ("a", 64), ("b", 256), ("c", 64), ("out", 8)):
        b.t(n, s)
    b.op(("in",), ("a",))
    b.op(("a",), ("b",), overlap=(1000,))  # grows: b may start anywhere up to 1000 bytes above a
    b.op(("b",), ("c",), overlap=(1000,))
    b.op(("c",), ("out",))
    _, p = b.plan(("in",), ("out",))
    assert p.arena_size == 256 and p.lower_bound == 320 and len(p.overlaps) == 2


@pytest.mark.parametrize("seed", range(60))
def test_chain_offsets_are_optimal(seed: int) -> None:
    rng = random.Random(seed)
    align = rng.choice([1, 4, 16])
    sizes = [rng.randint(1, 6) * align for _ in range(rng.randint(2, 4))]
    limits = [rng.randint(-4, 4) * align for _ in sizes[1:]]
    xs, extent = _chain_offsets(sizes, limits, align)
    assert min(xs) == 0 and all(x % align == 0 for x in xs)
    assert all(b - a <= d for a, b, d in zip(xs, xs[1:], limits))
    assert extent == max(x + s for x, s in zip(xs, sizes))
    span = range(-30 * align, 31 * align, align)
    brute = min(
        max(x + s for x, s in zip(c, sizes)) - min(c)
        for rest in itertools.product(span, repeat=len(sizes) - 1)
        for c in [(0, *rest)]
        if all(b - a <= d for a, b, d in zip(c, c[1:], limits))
    )
    assert extent == brute


def _residual(add_overlap: tuple[int | None, ...], conv: int | None = -20) -> G:
    """ResNet's block: in -> a; a -> b; b -> c (a line buffer); add(a, c) -> d; d -> out."""
    b = G()
    b.t("in", 16)
    for n in ("a", "b", "c", "d"):
        b.t(n, S)
    b.t("out", 16)
    b.op(("in",), ("a",))
    b.op(("a",), ("b",), overlap=(0,))  # a is read later: never shared here
    b.op(("b",), ("c",), overlap=(conv,))
    b.op(("a", "c"), ("d",), overlap=add_overlap)
    b.op(("d",), ("out",))
    return b


def test_residual_block() -> None:
    _, p = _residual((0, 0)).plan(("in",), ("out",))
    assert p.lower_bound == 3 * S
    assert p.arena_size == 2 * S + 32  # a, and c trailing b by 32 bytes
    assert [(o.step, o.input) for o in p.overlaps][0] == (2, "b")
    assert all(o.input != "a" or o.step == 3 for o in p.overlaps)  # a only at the add, its last read
    assert len({o.step for o in p.overlaps}) == len(p.overlaps)  # one input per output


def test_add_of_both_inputs_may_use_either() -> None:
    for ov in ((0, None), (None, 0), (0, 0)):
        _, p = _residual(ov, conv=None).plan(("in",), ("out",))
        assert p.arena_size == 3 * S == p.lower_bound  # the peak is at the conv; the add cannot lower it


def test_input_read_later_is_not_shared() -> None:
    b = G.chain(("in", 16), ("a", S), ("b", S), ("out", 16))
    b.layers.pop()
    b.layers.pop()
    b.op(("a",), ("b",), overlap=(0,))
    b.op(("a", "b"), ("out",))  # a read after the layer that could overwrite it
    _, p = b.plan(("in",), ("out",))
    assert p.overlaps == () and p.arena_size == 2 * S


def test_alias_read_later_is_not_shared() -> None:
    b = G()
    for n, s in (("in", 16), ("a", S), ("r", S), ("b", S), ("out", 16)):
        b.t(n, s)
    b.op(("in",), ("a",))
    b.op(("a",), ("r",), alias=True)
    b.op(("a",), ("b",), overlap=(0,))
    b.op(("r", "b"), ("out",))  # the alias of a is read later
    _, p = b.plan(("in",), ("out",))
    assert p.overlaps == () and p.arena_size == 2 * S


def test_alias_input_last_read_is_shared() -> None:
    b = G()
    for n, s in (("in", 16), ("a", S), ("r", S), ("b", S), ("out", 16)):
        b.t(n, s)
    b.op(("in",), ("a",))
    b.op(("a",), ("r",), alias=True)
    b.op(("r",), ("b",), overlap=(0,))
    b.op(("b",), ("out",))
    _, p = b.plan(("in",), ("out",))
    assert [o.input for o in p.overlaps] == ["r"] and p.arena_size == S
    assert p.offsets["a"] == p.offsets["r"] == p.offsets["b"]


def test_caller_buffers_are_never_shared() -> None:
    b = G.chain(("in", S), ("out", S))
    b.layers.pop()
    b.op(("in",), ("out",), overlap=(0,))
    _, p = b.plan(("in",), ("out",))
    assert p.overlaps == () and p.arena_size == 0
    _, p = _chain(1, 0).plan(("in",), ("out",))
    assert p.overlaps == () and p.arena_size == S


def test_merge_that_grows_the_arena_is_refused() -> None:
    """a (big) -> b (small) in place would keep a's bytes until b's last read, beside c and e."""
    b = G()
    for n, s in (("in", 16), ("a", 1024), ("b", 16), ("c", 1024), ("e", 1024), ("out", 16)):
        b.t(n, s)
    b.op(("in",), ("a",))
    b.op(("a",), ("b",), overlap=(0,))
    b.op(("in",), ("c",))
    b.op(("c",), ("e",))
    b.op(("b", "e"), ("out",))
    _, p = b.plan(("in",), ("out",))
    assert p.overlaps == () and p.arena_size == p.lower_bound == 2064


@pytest.mark.parametrize("limits, shared", [((0, None), []), ((0, -32), [-32]), ((None, None), [])])
def test_same_tensor_in_two_positions_needs_both(limits, shared) -> None:
    b = G()
    for n, s in (("in", 16), ("a", S), ("b", S), ("out", 16)):
        b.t(n, s)
    b.op(("in",), ("a",))
    b.op(("a", "a"), ("b",), overlap=limits)
    b.op(("b",), ("out",))
    _, p = b.plan(("in",), ("out",))
    assert [o.limit for o in p.overlaps] == shared


def test_scratch_stays_apart() -> None:
    steps = [Step(0, ("in",), ("a",)), Step(1, ("a",), ("b", "s1"), overlap=(("a", 0),)), Step(2, ("b",), ("out",))]
    p = plan_steps(steps, {"in": 8, "a": S, "b": S, "s1": 64, "out": 8}, ("in",), ("out",))
    assert p.arena_size == S + 64 and [(o.input, o.output) for o in p.overlaps] == [("a", "b")]
    assert p.offsets["s1"] >= p.offsets["a"] + S or p.offsets["s1"] + 64 <= p.offsets["a"]


def test_chain_members_hold_their_own_bytes() -> None:
    """VWW's dw -> band -> 1x1 chain: a (18432) -> b (9216, a band over a, d <= 768, with 4899 bytes of scratch)
    -> c (18432, trailing b, d <= -8448). The chain is one block, but each member holds its bytes during its
    own life only: b's scratch lies below a, where c will be (as one rectangle: 27648)."""
    steps = [
        Step(0, ("in",), ("a",)),
        Step(1, ("a",), ("b", "s1"), overlap=(("a", 768),)),
        Step(2, ("b",), ("c",), overlap=(("b", -8448),)),
        Step(3, ("c",), ("out",)),
    ]
    sizes = {"in": 8, "a": 18432, "b": 9216, "s1": 4899, "c": 18432, "out": 8}
    p = plan_steps(steps, sizes, ("in",), ("out",))
    o = p.offsets
    assert [(v.input, v.output, v.offset) for v in p.overlaps] == [("a", "b", 768), ("b", "c", -8448)]
    assert p.arena_size == o["a"] + 18432 == 7680 + 18432  # b at a + 768, c = b - 8448 at 0
    assert o["s1"] + 4899 <= o["a"] and o["c"] < o["s1"] + 4899  # the scratch where c lies later


def test_step_overlap_errors() -> None:
    with pytest.raises(ValueError, match="overlap"):
        plan_steps([Step(0, ("in",), ("a",), overlap=(("x", 0),))], {"in": 1, "a": 1}, ("in",), ())


def test_describe_names_levers() -> None:
    _, p = _residual((0, 0)).plan(("in",), ("out",))
    lines = p.describe()
    assert lines[0].startswith(f"arena {p.arena_size} bytes (liveness bound {3 * S}")
    assert (
        lines[1] == f"  levers: no levers {3 * S}, in place {3 * S} (-0), line buffers {2 * S + 32} (-224), patches -"
    )
    assert any("line buffer: c at b -32 (allowed <= -32)" in line for line in lines)
    _, p = _residual((None, None), conv=None).plan(("in",), ("out",))
    assert not any("levers" in line for line in p.describe())


def _random(seed: int) -> tuple[G, tuple[str, ...], tuple[str, ...]]:
    rng = random.Random(seed)
    b = G()
    avail = [b.t(f"in{k}", rng.randint(1, 300)) for k in range(rng.randint(1, 2))]
    inputs = tuple(avail)
    for i in range(rng.randint(3, 25)):
        if rng.random() < 0.15:
            src = rng.choice(avail)
            b.op((src,), (b.t(f"r{i}", b.tensors[src].nbytes),), alias=True)
            avail.append(f"r{i}")
            continue
        ins = tuple(rng.sample(avail, min(len(avail), rng.randint(1, 3))))
        if rng.random() < 0.2:
            ins = (*ins, ins[0])
        n_out = 1 if rng.random() < 0.85 else 2
        outs = tuple(b.t(f"t{i}_{k}", rng.choice([1, 7, 16, 33, 64, 100, 257, 1000])) for k in range(n_out))
        limits = tuple(rng.choice([None, 0, 0, 5, 64, -1, -16, -100, 400]) for _ in ins)
        b.op(ins, outs, overlap=limits if any(d is not None for d in limits) else ())
        avail = avail[-4:] + list(outs)
    produced = [n for n in avail if n not in inputs]
    outputs = tuple(sorted(set(produced[-rng.randint(1, 2) :])))
    return b, inputs, outputs


@pytest.mark.parametrize("seed", range(40))
def test_random_graphs_with_overlaps(seed: int) -> None:
    b, inputs, outputs = _random(seed)
    align = [1, 4, 16][seed % 3]
    _, p = b.plan(inputs, outputs, align)  # simulated
    assert p == b.plan(inputs, outputs, align)[1]  # deterministic
    assert p.arena_size <= p.arena_no_levers


# ------------------------------------------------------------------------------------------ end to end (host)
# arena ceilings with the fast kernels (kernels="dsp"); the portable path keeps its plan at the bound
CEILING = {
    "mlperf_tiny/kws_ref_model": 9_600,
    "mlperf_tiny/pretrainedResnet_quant": 36_000,
    "mlperf_tiny/vww_96_int8": 26_200,  # two bands, several rows per call; chains placed member by member
    "mlperf_tiny/ad01_int8": 256,
    "tflm/hello_world_int8": 32,
}


@pytest.mark.models
@pytest.mark.parametrize("name", sorted(CEILING))
def test_models_below_bound_bit_exact(shared_models, name: str) -> None:
    """The dsp path's plan (with its kernels' overlaps) passes the simulation, and where it shares memory, runs
    the generated C (under ASan: MCUQ_SANITIZE=1) bit-exactly as the portable path's."""
    import mcuq
    from tests.unit.test_plan import _simulate

    path = shared_models / f"{name}.tflite"
    portable = mcuq.compile_model(path, kernels="portable", sanitize=True)
    fast = mcuq.compile_model(path, kernels="dsp", sanitize=True)
    _simulate(fast.graph, fast.layers, fast.plan, fast.plan.align)
    assert fast.plan.arena_size <= CEILING[name]
    if name == "mlperf_tiny/vww_96_int8":
        # two bands (the two stride-2 depthwise layers after a 1x1 conv), each several output rows per call
        assert [la.params.band_rows > 1 for la in fast.layers if la.parts] == [True, True]
    assert portable.plan.arena_size == portable.plan.lower_bound
    if not fast.plan.overlaps:
        return
    assert fast.plan.arena_size < fast.plan.lower_bound
    rng = np.random.default_rng(3)
    x = [rng.integers(-128, 128, (3, *t.shape), dtype=np.int8) for t in portable.input_tensors]
    for a, b in zip(portable.run(x), fast.run(x), strict=True):
        np.testing.assert_array_equal(a, b)
