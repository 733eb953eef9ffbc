"""Packed weights end to end: an int8-container model with 4- and 1-bit weights through `mcuq compile --json`,
`mcuq inspect` and the generated header, detection of int8 weights that fit, `--no-pack-weights`, and the
compiled C against the oracle."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mcuq import ir
from mcuq.cli import main
from mcuq.frontend.tflite_writer import write
from tests.unit.test_packed_weights import _conv_fc
from tests.util.harness import random_int8, three_way

# _conv_fc: CONV_2D weights 3x3x3x2 = 54 int4 values (27 B), FC weights 5x12 = 60 int1 values (8 B)
PACKED_BYTES = 27 + 8


@pytest.fixture()
def model(tmp_path) -> Path:
    p = tmp_path / "convfc.tflite"
    p.write_bytes(write(_conv_fc()))
    return p


def _as_int8(g: ir.Graph) -> ir.Graph:
    tensors = {
        n: ir.Tensor(n, t.shape, ir.DType.INT8, t.qparams, t.data) if t.dtype.packed else t
        for n, t in g.tensors.items()
    }
    return ir.Graph(g.name, tensors, g.ops, g.inputs, g.outputs)


def test_compile_json_reports_packed_bytes_and_precisions(model, tmp_path, capsys) -> None:
    assert main(["compile", str(model), "-o", str(tmp_path / "out"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["packed_weight_bytes"] == PACKED_BYTES
    layers = doc["weighted_layers"]
    assert [(la["kind"], la["weights"], la["weight_bits"], la["activations"]) for la in layers] == [
        ("CONV_2D", "int4", 4, "int8"),
        ("FULLY_CONNECTED", "int1", 1, "int8"),
    ]
    conv, fc = layers
    assert (conv["weight_bytes"], conv["bias_bytes"], conv["rescale_bytes"], conv["flash_bytes"]) == (27, 12, 24, 63)
    assert (fc["weight_bytes"], fc["bias_bytes"], fc["rescale_bytes"], fc["flash_bytes"]) == (8, 20, 40, 68)
    header = (tmp_path / "out" / "convfc.h").read_text()
    assert "weights int4, activations int8, 63 B (weights 27)" in header
    assert "weights int1, activations int8, 68 B (weights 8)" in header
    source = (tmp_path / "out" / "convfc.c").read_text()
    assert "static const uint8_t w_cw[27]" in source and "int4, packed 2 a byte" in source


def test_inspect_shows_each_layers_precision(model, capsys) -> None:
    assert main(["inspect", str(model)]) == 0
    out = capsys.readouterr().out
    assert "layer precision" in out
    assert f"packed sub-8-bit: {PACKED_BYTES}" in out and "all int8 would be 114" in out
    table = out[out.index("layer precision") :].splitlines()
    rows = [line for line in table if line.strip().startswith(("0  CONV_2D", "1  FULLY_CONNECTED"))]
    assert len(rows) == 2 and " int4 " in rows[0] and " int1 " in rows[1]
    assert "conv2d_s8_lowbit" in out and "fully_connected_s8_lowbit" in out  # the kernel column


def test_detection_and_no_pack_weights(tmp_path, capsys) -> None:
    p = tmp_path / "narrow_int8.tflite"
    p.write_bytes(write(_as_int8(_conv_fc())))
    assert main(["compile", str(p), "-o", str(tmp_path / "a"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["packed_weight_bytes"] == PACKED_BYTES
    assert main(["compile", str(p), "-o", str(tmp_path / "b"), "--json", "--no-pack-weights"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["packed_weight_bytes"] == 0 and {la["weights"] for la in doc["weighted_layers"]} == {"int8"}


def test_help_names_the_options(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["compile", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--no-pack-weights" in text and "--json" in text and "ternary or binary" in text


@pytest.mark.oracle
def test_packed_model_matches_the_oracle_on_every_path() -> None:
    """The int8-container model through tflite-runtime against the compiled C (portable and dsp paths)."""
    import mcuq

    g = _conv_fc()
    xs = [random_int8((1, 4, 4, 2), 8, 5)]
    (want,) = three_way(g, xs, layers=True)
    got = mcuq.compile_model(write(g), kernels="portable").run(xs)[0]
    np.testing.assert_array_equal(got, want.reshape(got.shape))
