"""Band execution (mcuq.lower.bands, runtime_c/src/band): a 1x1 convolution and the convolution reading its
output run row band by row band. Bit-exact with the numpy reference on the host (with ASan), for every stride,
padding and kernel shape the band takes, on the dsp and mve paths; and only where it lowers the arena."""

from __future__ import annotations

import dataclasses
from dataclasses import replace

import numpy as np
import pytest

from mcuq import ir
from mcuq.api import compile_model
from mcuq.codegen.emit import build_model, render
from mcuq.kernels.band import BandConvParams, band_overlap, bands, rows_needed
from mcuq.lower import bands as band_mod
from mcuq.lower import lower
from mcuq.lower.bands import band, candidates
from mcuq.lower.specialize import specialize
from mcuq.plan import plan
from tests.kernels.test_conv import Case, build_graph
from tests.util.harness import random_int8, reference_outputs

C, D = ir.OpKind.CONV2D, ir.OpKind.DEPTHWISE_CONV2D
SAME, VALID = ir.Padding.SAME, ir.Padding.VALID


def chain(first: Case, second: Case) -> ir.Graph:
    """first's graph, then second's op reading first's output (second.in_shape must be first's output shape)."""
    a, b = build_graph(first), build_graph(second)
    ren = {"x": "y", "w": "w2", "b": "b2", "y": "z", "": ""}
    tensors = dict(a.tensors)
    for name, t in b.tensors.items():
        if name != "x":
            tensors[ren[name]] = replace(t, name=ren[name])
    (op_b,) = b.ops
    op_b = replace(op_b, name="second", inputs=tuple(ren[n] for n in op_b.inputs), outputs=("z",))
    return ir.Graph("chain", tensors, (*a.ops, op_b), ("x",), ("z",))


PW = dict(kind=C, kernel=(1, 1))
CASES = [
    ("dw_s1_same", (1, 9, 7, 3), 8, Case("s", D, (1, 9, 7, 8), 8, (3, 3), padding=SAME, in_zp=-5, seed=2)),
    ("dw_s2_same_odd", (1, 11, 9, 4), 6, Case("s", D, (1, 11, 9, 6), 6, (3, 3), (2, 2), padding=SAME, seed=3)),
    ("dw_s2_same_even", (1, 12, 10, 4), 16, Case("s", D, (1, 12, 10, 16), 16, (3, 3), (2, 2), padding=SAME, seed=4)),
    ("dw_s2_valid", (1, 10, 6, 2), 5, Case("s", D, (1, 10, 6, 5), 5, (3, 3), (2, 2), padding=VALID, seed=5)),
    ("dw_5x5", (1, 9, 9, 3), 4, Case("s", D, (1, 9, 9, 4), 4, (5, 5), padding=SAME, in_zp=100, seed=6)),
    ("conv_3x3_s2", (1, 20, 12, 3), 7, Case("s", C, (1, 20, 12, 7), 5, (3, 3), (2, 2), padding=SAME, seed=7)),
    ("conv_2x3_s1", (1, 16, 12, 5), 9, Case("s", C, (1, 16, 12, 9), 3, (2, 3), padding=SAME, seed=8)),
    ("dw_dilated_w", (1, 9, 9, 3), 6, Case("s", D, (1, 9, 9, 6), 6, (3, 3), dilation=(1, 2), padding=SAME, seed=9)),
]


@pytest.mark.parametrize("case_id, in_shape, mid_c, second", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("path", ["dsp", "mve"])
def test_band_bit_exact(case_id, in_shape, mid_c, second, path):
    g = chain(Case("p", in_shape=in_shape, out_c=mid_c, in_zp=-3, out_zp=second.in_zp, seed=1, **PW), second)
    cm = compile_model(g, kernels=path, sanitize=True)
    bands = [la for la in cm.layers if la.parts]
    assert len(bands) == 1, "the band must be chosen: it lowers the arena of this two-layer model"
    assert cm.plan.arena_size < g.tensors["y"].nbytes
    x = random_int8(in_shape, 3, 11)
    (ref,) = reference_outputs(g, x).values()
    np.testing.assert_array_equal(cm.run(x)[0], ref)


def test_band_rows_and_overlap():
    g = chain(
        Case("p", in_shape=(1, 12, 10, 4), out_c=16, **PW),
        Case("s", D, (1, 12, 10, 16), 16, (3, 3), (2, 2), padding=SAME),
    )
    a, b = lower(g)
    fused = band(a, b)
    p = fused.params
    assert isinstance(p, BandConvParams) and p.ring_rows == 3
    assert [rows_needed(p, r) for r in range(3)] == [(0, 3), (2, 5), (4, 7)]  # SAME, stride 2: no top padding
    # output row r (10 * 16 / 2 = 80 bytes) lands behind input row hi(r) (10 * 4 = 40 bytes per row)
    assert band_overlap(p)[0] == min(rows_needed(p, r)[1] * 40 - (r + 1) * 80 for r in range(5))
    assert fused.macs == a.macs + b.macs and fused.parts == (a, b)


def test_no_band_when_the_middle_tensor_is_read_twice():
    g = chain(Case("p", in_shape=(1, 8, 8, 3), out_c=8, **PW), Case("s", D, (1, 8, 8, 8), 8, (3, 3), padding=SAME))
    g = replace(g, outputs=("z", "y"))  # y, the 1x1 output, is also a model output
    assert candidates(g, lower(g)) == []


def test_portable_path_has_no_bands():
    g = chain(Case("p", in_shape=(1, 8, 8, 3), out_c=8, **PW), Case("s", D, (1, 8, 8, 8), 8, (3, 3), padding=SAME))
    cm = compile_model(g, kernels="portable")
    assert not any(la.parts for la in cm.layers)


@pytest.mark.parametrize("rows", [2, 5])
@pytest.mark.parametrize("case_id, in_shape, mid_c, second", CASES[:6], ids=[c[0] for c in CASES[:6]])
def test_band_rows_bit_exact(case_id, in_shape, mid_c, second, rows):
    """Several output rows per call of the second kernel (the last band shorter when rows does not divide the
    height): the same bits, a ring of (rows - 1) * stride + filter rows, and an overlap limit the C keeps."""
    g = chain(Case("p", in_shape=in_shape, out_c=mid_c, in_zp=-3, out_zp=second.in_zp, seed=1, **PW), second)
    a, b = specialize(g, lower(g), "dsp")
    one, tall = band(a, b), band(a, b, rows)
    p = tall.params
    rows = min(rows, p.second.output.h)  # no taller than the output
    assert p.band_rows == rows and p.ring_rows <= (rows - 1) * second.stride[0] + second.kernel[0]
    assert [r0 for r0, *_ in bands(p)] == list(range(0, p.second.output.h, rows))
    assert band_overlap(p)[0] >= band_overlap(one.params)[0]  # later writes: at least as much overlap
    cm = compile_model(g, kernels="dsp", sanitize=True)
    (i,) = [k for k, la in enumerate(cm.layers) if la.parts]
    layers = (*cm.layers[:i], tall, *cm.layers[i + 1 :])
    cm = dataclasses.replace(cm, layers=layers, plan=plan(g, layers))
    cm = dataclasses.replace(cm, model=build_model(g, layers, cm.plan, "chain"))
    cm = dataclasses.replace(cm, files=render(cm.model))
    x = random_int8(in_shape, 3, 11)
    (ref,) = reference_outputs(g, x).values()
    np.testing.assert_array_equal(cm.run(x)[0], ref)


def test_band_rows_chosen_within_the_arena(monkeypatch):
    """fuse_bands gives a band the most rows per call that keep the planned arena: one more row would raise it
    (VWW's two bands get 2 and 3 rows: tests/unit/test_plan_overlap.py)."""
    g = chain(
        Case("p", in_shape=(1, 24, 10, 4), out_c=16, **PW),
        Case("s", D, (1, 24, 10, 16), 16, (3, 3), (2, 2), padding=SAME),
    )
    cm = compile_model(g, kernels="dsp")
    (fused,) = [la for la in cm.layers if la.parts]
    rows = fused.params.band_rows
    assert rows < fused.params.second.output.h
    taller = band(*fused.parts, rows + 1)
    k = cm.layers.index(fused)
    assert plan(g, (*cm.layers[:k], taller, *cm.layers[k + 1 :])).arena_size > cm.plan.arena_size
    monkeypatch.setattr(band_mod, "_taller", lambda g, layers, arena, plan_fn: list(layers))
    assert compile_model(g, kernels="dsp").plan.arena_size >= cm.plan.arena_size
