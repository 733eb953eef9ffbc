"""Issue 11 attacked as a hostile and as a careless user: each test is a finding (fixed) or a check that held.

Findings: `mcuq sensitivity --json` and `mcuq quantize --budget-*/--pareto` wrote over their own inputs (the
calibration data, the float model) and over each other; labels outside the model's classes gave a silent 0 %
accuracy; a weight of a very wide layer at 4 bits built a [k, k] float64 Hessian (65,536 inputs: 32 GiB,
MemoryError); a metadata JSON with a repeated key was read as its last value."""

from __future__ import annotations

import json
from unittest import mock

import numpy as np
import pytest

import mcuq
from mcuq import ir
from mcuq.cli import main
from mcuq.errors import McuqError, ModelError
from mcuq.frontend import weight_bits
from mcuq.frontend.tflite_writer import write
from mcuq.quant import weights as wmod
from mcuq.quant.sensitivity import Evaluator
from tests.unit.test_packed_weights import _conv_fc
from tests.util.float_models import float_model
from tests.util.harness import random_int8, three_way


@pytest.fixture()
def files(tmp_path):
    fm = float_model("fc")
    (tmp_path / "m.tflite").write_bytes(write(fm.graph))
    np.save(tmp_path / "c.npy", fm.samples(8, 0)[0])
    return tmp_path


@pytest.mark.parametrize(
    "args, message",
    [
        (["sensitivity", "m.tflite", "--calib", "c.npy", "--json", "c.npy"], "--json names the same file as --calib"),
        (["sensitivity", "m.tflite", "--calib", "c.npy", "--eval", "c.npy", "--json", "./c.npy"], "as --calib"),
        (["quantize", "m.tflite", "--calib", "c.npy", "--budget-weights", "1KiB", "-o", "m.tflite"],
         "-o names the same file as the model"),
        (["quantize", "m.tflite", "--calib", "c.npy", "--budget-weights", "1KiB", "--report", "c.npy"],
         "--report names the same file as --calib"),
        (["quantize", "m.tflite", "--calib", "c.npy", "--pareto", "p.svg", "-o", "p.svg"],
         "--pareto names the same file as -o"),
    ],
)  # fmt: skip
def test_mixed_commands_never_write_over_their_inputs(files, monkeypatch, capsys, args, message) -> None:
    monkeypatch.chdir(files)
    before = {p.name: p.read_bytes() for p in files.iterdir()}
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert {p.name: p.read_bytes() for p in files.iterdir()} == before


def test_labels_outside_the_classes_are_refused() -> None:
    fm = float_model("fc")  # 10 outputs
    x = fm.samples(6, 0)
    Evaluator(fm.graph, x, np.arange(6) % 10)
    for bad, shown in (
        (np.array([0, 1, 2, 3, 4, -1]), "label -1 of sample 5"),
        (np.full(6, 10), "label 10 of sample 0"),
    ):
        with pytest.raises(McuqError, match=f"{shown} is not a class.*0 to 9"):
            Evaluator(fm.graph, x, bad)


def test_wide_layer_below_8_bits_builds_no_square_hessian() -> None:
    k = wmod.MAX_HESSIAN_K + 1
    rng = np.random.default_rng(0)
    op = ir.Op(ir.OpKind.FULLY_CONNECTED, "fc", ("x", "w", "b"), ("y",), ir.FullyConnectedAttrs())
    rows = rng.standard_normal((3, k))
    inputs = wmod.LayerInputs(op, rng.standard_normal((16, k)), (3, k), centered=True)
    with mock.patch.object(wmod.LayerInputs, "_compute_hessian", side_effect=AssertionError("[k, k] Hessian")):
        for rounding in ("gptq", "adaround", "nearest"):
            q, s = wmod.quantize_rows(rows, 4, rounding, inputs, per_channel=True)
            assert q.shape == (3, k) and np.abs(q).max() <= 7 and np.all(s > 0)
    # still the narrow range and the diagonal-weighted choice of scales, as at 8 bits
    q8, _ = wmod.quantize_rows(rows, 8, "nearest", inputs, per_channel=True)
    assert np.abs(q8).max() == 127


def _with_metadata(raw: bytes) -> bytes:
    with mock.patch.object(weight_bits, "encode", lambda d: raw):
        return write(_conv_fc())


@pytest.mark.parametrize(
    "raw, message",
    [
        (b'{"version":1,"tensors":{"1":4,"1":2}}', "key '1' appears twice"),
        (b'{"version":1,"version":1,"tensors":{"1":4}}', "key 'version' appears twice"),
        (b'{"version":1,"tensors":{"99999999999":4}}', "is not a tensor index"),
        (b'{"version":1,"tensors":{"-1":4}}', "is not a tensor index"),
        (b'{"version":1,"tensors":{"2":4}}', "tensor 'cb' is not the weights"),  # a bias
        (b'{"version":1,"tensors":{"3":4}}', "tensor 'c' is not the weights"),  # an activation
        (b"\xff\xfe{}", "not valid UTF-8 JSON"),
        (b"[" * 100000 + b"]" * 100000, "not valid UTF-8 JSON"),
        (b'{"version":1,"tensors":{"1":' + b"9" * 5000 + b"}}", "not valid UTF-8 JSON"),
        (b'{"version":1,"tensors":{"1":NaN}}', "is not 4, 2 or 1"),
    ],
)  # fmt: skip
def test_hostile_weight_bits_metadata(raw: bytes, message: str) -> None:
    with pytest.raises(ModelError, match=message) as e:
        mcuq.compile_model(_with_metadata(raw), sanitize=False)
    assert "\n" not in str(e.value) and str(e.value).isprintable()


def test_one_packed_weight_shared_by_two_layers() -> None:
    """An int4 tensor read as the weights of two FULLY_CONNECTED ops: packed once, both bit-exact."""
    g = _conv_fc()
    fw = g.tensors["fw"]
    y2 = ir.Tensor("y2", (1, 5), ir.DType.INT8, ir.QParams((0.2,), (3,)))
    fc2 = ir.Op(ir.OpKind.FULLY_CONNECTED, "fc2", ("c", "fw", "fb"), ("y2",), ir.FullyConnectedAttrs())
    g = ir.Graph("shared", {**g.tensors, "fw": fw, "y2": y2}, (*g.ops, fc2), g.inputs, ("y", "y2"))
    assert json.loads(weight_bits.encode({4: 1})) == {"version": 1, "tensors": {"4": 1}}
    three_way(g, [random_int8((1, 4, 4, 2), 3, 0)])
    cm = mcuq.compile_model(write(g), sanitize=False)
    assert "\n".join(cm.project_files().values()).count("static const uint8_t w_fw[") == 1


def test_wide_layer_reports_nearest_rounding() -> None:
    """A layer past MAX_HESSIAN_K is rounded to nearest whatever --rounding asks: the report says so."""
    from tests.util.float_models import A, Builder, FloatModel

    b = Builder("wide_fc", 5)
    x = b.input((1, wmod.MAX_HESSIAN_K + 8))
    fm = FloatModel(b.graph(b.fc(b.fc(x, 4, act=A.RELU), 3)))
    qm = mcuq.quantize(fm.graph, fm.samples(4, 0)[0], weight_bits=4)
    layers = [r for r in qm.report.layers if r.weight_bits is not None]
    assert [(r.weight_bits, r.rounding) for r in layers] == [(4, "nearest"), (4, "gptq")]
