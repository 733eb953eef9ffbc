"""Kernel paths (mcuq.lower.specialize): which path a board gets, how a variant rewrites a layer (the folded bias),
the board-feature checks, and the overlap helper window kernels declare (mcuq.kernels.overlap)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mcuq import ir
from mcuq.boards import BoardError, load_board
from mcuq.errors import McuqError
from mcuq.kernels import KERNELS
from mcuq.kernels.overlap import NEVER, window_overlap
from mcuq.kernels.types import Dims, Hw, Window
from mcuq.kernels.variants import Variant
from mcuq.lower import lower
from mcuq.lower.specialize import _apply, board_path, specialize
from tests.util.harness import random_int8


@pytest.mark.parametrize(
    "features, host, requested, expected",
    [
        ((), True, "auto", "dsp"),
        (("dsp", "fpu", "mve"), False, "auto", "mve"),
        (("dsp", "fpu"), False, "auto", "dsp"),
        ((), False, "auto", "portable"),
        (("dsp", "fpu", "mve"), False, "portable", "portable"),
        ((), False, "mve", "mve"),  # explicit: every variant compiles (plain C) on every target
    ],
)
def test_board_path(features, host, requested, expected):
    assert board_path(features, host, requested) == expected


def test_board_path_refuses_unknown():
    with pytest.raises(McuqError, match="kernels must be one of"):
        board_path((), True, "neon")


@pytest.mark.parametrize("name, path", [("mps2-an385", "portable"), ("mps2-an386", "dsp"), ("mps3-an547", "mve")])
def test_shipped_boards(name, path):
    b = load_board(name)
    assert board_path(b.features, False) == path


def test_feature_the_cpu_lacks_is_refused(tmp_path):
    text = (Path(__file__).parents[2] / "boards" / "mps2-an385.toml").read_text()
    bad = tmp_path / "m3dsp.toml"
    bad.write_text(text.replace('name = "mps2-an385"', 'name = "m3dsp"').replace("features = []", 'features = ["dsp"]'))
    with pytest.raises(BoardError, match="'dsp', which a cortex-m3 does not have"):
        load_board(str(bad))


def _conv_graph(in_zp: int, bias: bool = True) -> ir.Graph:
    from tests.kernels.test_conv import Case, build_graph

    case = Case("t", ir.OpKind.CONV2D, (1, 5, 6, 3), 4, (3, 3), padding=ir.Padding.SAME, in_zp=in_zp, bias=bias)
    return build_graph(case)


@pytest.mark.parametrize("in_zp, bias", [(-128, True), (127, True), (5, False)])
def test_fold_bias(in_zp, bias):
    g = _conv_graph(in_zp, bias)
    (layer,) = lower(g)
    v = Variant(replaces=layer.kernel_name, path="dsp", kernel=KERNELS[layer.kernel_name], fold_bias=True)
    fast = _apply(g, layer, v)
    assert fast.base is layer and fast.base_kernel_name == layer.kernel_name
    w = np.asarray(g.tensors[layer.args[1]].data).astype(np.int64)
    b0 = np.asarray(g.tensors[layer.args[2]].data).astype(np.int64) if bias else np.zeros(w.shape[0], np.int64)
    folded = fast.consts[fast.args[2]]
    assert folded.dtype == ir.DType.INT32 and folded.shape == (w.shape[0],)
    np.testing.assert_array_equal(folded.data, b0 - in_zp * w.reshape(w.shape[0], -1).sum(axis=1))
    assert fast.args[2] not in g.tensors  # a new constant, the model's bias is untouched


def test_specialize_portable_is_identity():
    g = _conv_graph(3)
    layers = lower(g)
    assert specialize(g, layers, "portable") is layers


def test_fast_path_matches_reference():
    """Whatever variants are registered, the host build of each path gives the reference's bits."""
    from mcuq.api import compile_model
    from tests.util.harness import reference_outputs

    g = _conv_graph(-3)
    x = random_int8((1, 5, 6, 3), 4, 0)
    (ref,) = reference_outputs(g, x).values()
    for path in ("portable", "dsp", "mve"):
        cm = compile_model(g, kernels=path)
        assert cm.kernels == path
        np.testing.assert_array_equal(cm.run(x)[0], ref)


def _win(k, s, p):
    return Window(Hw(k, k), Hw(s, s), Hw(1, 1), Hw(p, p))


def test_window_overlap_pointwise():
    # 1x1 conv: a block's outputs land behind the next block's inputs when cout <= cin
    assert window_overlap(Dims(1, 4, 4, 8), Dims(1, 4, 4, 8), _win(1, 1, 0), 2) == 0
    assert window_overlap(Dims(1, 4, 4, 8), Dims(1, 4, 4, 4), _win(1, 1, 0), 2) == 2 * 4
    assert window_overlap(Dims(1, 4, 4, 4), Dims(1, 4, 4, 8), _win(1, 1, 0), 2) == -14 * 4


def test_window_overlap_3x3_line_buffer():
    w, c = 6, 5
    assert window_overlap(Dims(1, 5, w, c), Dims(1, 5, w, c), _win(3, 1, 1), 2) == -(w + 1) * c
    assert window_overlap(Dims(1, 1, 1, 3), Dims(1, 1, 1, 3), _win(1, 1, 0), 2) == NEVER  # one block only


def test_fast_kernels_do_not_raise_the_arena():
    """The demo CNN's dsp im2col scratch would raise its arena above the portable path's: the layer with the most
    scratch goes back to its portable kernel, and the arena is the portable one's or less."""
    from mcuq.api import compile_model

    model = Path(__file__).parents[2] / "examples" / "digits_cnn.tflite"
    portable = compile_model(model, kernels="portable")
    fast = compile_model(model, kernels="dsp")
    assert fast.plan.arena_size <= portable.plan.arena_size
    assert any(la.base is not None for la in fast.layers), "some layers keep their fast kernel"
    kept = [la.kernel_name for la in fast.layers if la.kernel is not None and la.kernel.variant == "portable"]
    assert "mcuq_conv2d_s8" in kept  # the conv whose im2col scratch did not fit went back


def test_within_arena_bounds_its_work():
    """Past MAX_REVERTS single steps, every layer with scratch goes back at once (bounded compile time)."""
    from mcuq.lower import specialize as sp

    g = _conv_graph(3)
    portable = lower(g)
    fast = specialize(g, portable, "dsp")
    calls = []

    class P:
        def __init__(self, n):
            self.arena_size = n

    def arrange(g, layers):
        calls.append(layers)
        return layers, P(10**9 if any(la.base is not None and la.scratch_bytes for la in layers) else 1)

    out, p = sp.within_arena(g, portable, fast, arrange, limit=100)
    assert p.arena_size == 1 and len(calls) <= sp.MAX_REVERTS + 2


def test_a_fast_kernel_with_a_tiny_share_of_the_macs_is_not_linked(shared_models):
    """KWS's last FULLY_CONNECTED does 768 of 2.66 M MACs: its 2 kB dsp kernel would buy ~2,000 instructions, so
    the portable FC (0.5 kB) runs it; AD, all FC, gets the dsp FC."""
    from mcuq.api import compile_model
    from mcuq.lower.specialize import MIN_MAC_SHARE

    kws = compile_model(shared_models / "mlperf_tiny" / "kws_ref_model.tflite", kernels="dsp")
    fc = [la for la in kws.layers if la.base_kernel_name == "mcuq_fully_connected_s8"]
    assert [la.kernel_name for la in fc] == ["mcuq_fully_connected_s8"]
    assert fc[0].macs * MIN_MAC_SHARE < sum(la.macs for la in kws.layers)
    ad = compile_model(shared_models / "mlperf_tiny" / "ad01_int8.tflite", kernels="dsp")
    assert {la.kernel_name for la in ad.layers} == {"mcuq_fully_connected_s8_dsp"}
