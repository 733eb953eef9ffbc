"""mcuq.records: the forms ``mcuq run --input`` accepts (one record, a batch, a batch whose records omit the batch
dimension of 1, as calibration data may) and the output shapes that mirror them."""

from __future__ import annotations

import numpy as np
import pytest

from mcuq import compile_model, ir
from mcuq.errors import McuqError
from mcuq.records import Batching, accepted_forms, normalise_inputs, shape_outputs
from tests.util.tiny import tiny_fc_graph

I8 = ir.DType.INT8


def tensor(name: str, shape: tuple[int, ...]) -> ir.Tensor:
    return ir.Tensor(name, shape, I8, ir.QParams((0.1,), (0,)))


X = tensor("x", (1, 4, 4, 1))  # batch dimension of 1
V = tensor("v", (3,))  # none


def rand(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(-128, 128, size=shape).astype(np.int8)


@pytest.mark.parametrize(
    "shape, n, form",
    [
        ((1, 4, 4, 1), 1, Batching.ONE),  # S itself: one record, even though it also reads as N=1 of S[1:]
        ((5, 1, 4, 4, 1), 5, Batching.BATCH),
        ((1, 1, 4, 4, 1), 1, Batching.BATCH),
        ((5, 4, 4, 1), 5, Batching.UNIT_DROPPED),
    ],
)
def test_the_three_forms(shape, n, form):
    x = rand(*shape)
    arrays, got_n, got_form = normalise_inputs([X], x)
    assert (got_n, got_form) == (n, form) and arrays[0].shape == (n, 1, 4, 4, 1)
    np.testing.assert_array_equal(arrays[0].reshape(-1), x.reshape(-1))
    assert bool(got_form) == (form != Batching.ONE)  # falsy exactly for one unbatched record, as the old bool


def test_an_input_without_a_leading_1_has_no_dropped_form():
    assert normalise_inputs([V], rand(3))[1:] == (1, Batching.ONE)
    assert normalise_inputs([V], rand(4, 3))[1:] == (4, Batching.BATCH)
    with pytest.raises(McuqError) as e:
        normalise_inputs([V], rand(4))
    assert str(e.value) == "input 'v': shape [4], the model wants [3] (one record) or [N, 3] (N records)"


def test_a_wrong_shape_lists_every_accepted_form():
    with pytest.raises(McuqError) as e:
        normalise_inputs([X], rand(5, 4, 4))
    assert str(e.value) == (
        "input 'x': shape [5, 4, 4], the model wants [1, 4, 4, 1] (one record) or [N, 1, 4, 4, 1] (N records) or "
        "[N, 4, 4, 1] (N records without the leading 1) or [4, 4, 1] (one record without it)"
    )
    assert accepted_forms((1,)) == (
        "[1] (one record) or [N, 1] (N records) or [N] (N records without the leading 1) or [] (one record without it)"
    )
    with pytest.raises(McuqError, match=r"a batch of 0 records \(shape \[0, 4, 4, 1\]\)"):
        normalise_inputs([X], rand(0, 4, 4, 1))


def test_several_inputs():
    arrays, n, form = normalise_inputs([X, V], [rand(2, 4, 4, 1), rand(2, 3)])  # the two batch forms mix
    assert (n, form) == (2, Batching.UNIT_DROPPED) and [a.shape for a in arrays] == [(2, 1, 4, 4, 1), (2, 3)]
    assert normalise_inputs([X, V], [rand(2, 1, 4, 4, 1), rand(2, 3)])[1:] == (2, Batching.BATCH)
    for mixed in ([rand(2, 4, 4, 1), rand(3, 3)], [rand(1, 4, 4, 1), rand(1, 3)]):  # 2 vs 3; one record vs batch
        with pytest.raises(McuqError, match="all inputs must have the same batch size"):
            normalise_inputs([X, V], mixed)


def test_outputs_mirror_the_input_form():
    outs = [np.zeros((3, 1, 10), np.int8), np.zeros((3, 2, 5), np.int8), np.zeros((3,), np.int8)]
    shapes = {form: [a.shape for a in shape_outputs(outs, form)] for form in Batching}
    assert shapes[Batching.ONE] == [(1, 10), (2, 5), ()]
    assert shapes[Batching.BATCH] == [(3, 1, 10), (3, 2, 5), (3,)]
    assert shapes[Batching.UNIT_DROPPED] == [(3, 10), (3, 2, 5), (3,)]  # only a leading 1 is dropped


def test_compiled_model_runs_the_dropped_form_and_shapes_its_outputs():
    """End to end through the generated C: [N, 8] for an input [1, 8] gives [N, 4] for the output [1, 4], equal to
    the [N, 1, 8] batch's outputs; run_layers follows the same rule."""
    cm = compile_model(tiny_fc_graph(), prefix="tiny", sanitize=False)
    x = rand(3, 8, seed=1)
    (y,) = cm.run(x)
    (y_batch,) = cm.run(x[:, None])
    assert y.shape == (3, 4) and y_batch.shape == (3, 1, 4)
    np.testing.assert_array_equal(y, y_batch[:, 0])
    assert cm.run(x[:1])[0].shape == (1, 4)  # [1, 8] is the input's own shape: one record, the output's own shape
    assert cm.run_layers(x)["y"].shape == (3, 4)


def test_one_record_without_the_leading_1_gives_outputs_without_it():
    """A calibration sample file (S[1:]) runs as one record; its outputs drop their own leading 1 as well."""
    arrays, n, form = normalise_inputs([X], rand(4, 4, 1))
    assert (n, form) == (1, Batching.ONE_UNIT_DROPPED) and arrays[0].shape == (1, 1, 4, 4, 1)
    out = np.arange(10, dtype=np.int8).reshape(1, 1, 10)  # the runner's output: batch 1 of [1, 10]
    assert shape_outputs([out], form)[0].shape == (10,)
    with pytest.raises(McuqError, match="same batch size"):
        normalise_inputs([X, V], [rand(4, 4, 1), rand(2, 3)])  # one record and a batch do not mix
