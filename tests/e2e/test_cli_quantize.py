"""Post-training quantization from the command line and from Python: `mcuq quantize`, --calib on the commands that
compile, float32 inputs and --float-output on `mcuq run`, and the one-line errors around them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import mcuq
from mcuq import ir
from mcuq.api import compile_model
from mcuq.cli import main
from mcuq.cli_quant import CALIB_METHODS, DEFAULT_CALIB_METHOD
from mcuq.frontend import load
from mcuq.quant.edge import dequantize_output, quantize_input
from tests.util import oracle
from tests.util.tiny import tiny_fc_bytes, tiny_fc_graph


@pytest.fixture()
def float_fc(tmp_path) -> Path:
    """x [1, 8] float32 -> FULLY_CONNECTED(4, ReLU) -> y [1, 4]."""
    p = tmp_path / "tiny_float.tflite"
    p.write_bytes(tiny_fc_bytes(dtype=ir.DType.FLOAT32))
    return p


@pytest.fixture()
def calib(tmp_path) -> Path:
    """16 samples for x, without its batch dimension of 1."""
    p = tmp_path / "calib.npy"
    np.save(p, np.random.default_rng(1).normal(0, 1, (16, 8)).astype(np.float32))
    return p


def _float_reference(x: np.ndarray) -> np.ndarray:
    g = tiny_fc_graph(dtype=ir.DType.FLOAT32)
    w, b = g.tensors["w"].data.astype(np.float64), g.tensors["b"].data.astype(np.float64)
    return np.maximum(x.astype(np.float64) @ w.T + b, 0)


def _one_error_line(capsys) -> str:
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and out == "", (out, err)
    assert lines[0].startswith("mcuq: error: ") and "Traceback" not in err
    return lines[0]


# -- mcuq quantize ---------------------------------------------------------------------------------------------


@pytest.mark.oracle
def test_quantize_writes_an_int8_model_that_the_oracle_runs(capsys, tmp_path, float_fc, calib):
    oracle.require()
    out, report = tmp_path / "q.tflite", tmp_path / "r.json"
    assert main(["quantize", str(float_fc), "--calib", str(calib), "-o", str(out), "--report", str(report)]) == 0
    stdout = capsys.readouterr().out
    assert f"wrote {out}" in stdout and "SQNR" in stdout
    g = load(out)
    for name in (*g.inputs, *g.outputs):
        assert g.tensors[name].dtype is ir.DType.INT8
    x = np.random.default_rng(2).normal(0, 1, (5, 1, 8)).astype(np.float32)
    xq = quantize_input(g.tensors[g.inputs[0]], x)
    want = np.stack([r["outputs"][0] for r in oracle.run(out, [[s] for s in xq])])
    np.testing.assert_array_equal(compile_model(out).run(xq)[0], want)  # the C is bit-exact with the oracle
    # and the int8 model is close to the float one: within a few output steps
    y = dequantize_output(g.tensors[g.outputs[0]], want)
    step = g.tensors[g.outputs[0]].scale
    assert np.abs(y - _float_reference(x)).max() < 4 * step + 0.05 * np.abs(_float_reference(x)).max()


def test_quantize_report_json_has_a_row_per_layer(capsys, tmp_path, float_fc, calib):
    report = tmp_path / "r.json"
    out = tmp_path / "q.tflite"
    assert main(["quantize", str(float_fc), "--calib", str(calib), "-o", str(out), "--report", str(report)]) == 0
    data = json.loads(report.read_text())
    g = load(out)
    rows = {r["tensor"]: r for r in data["layers"]}
    assert len(rows) == len(data["layers"]) and set(rows) == {*g.inputs, *(t for op in g.ops for t in op.outputs)}
    for name, row in rows.items():
        assert row["scale"] == pytest.approx(g.tensors[name].scale, rel=1e-6)
        assert row["zero_point"] == g.tensors[name].zero_point
    assert rows["y"]["sqnr_db"] == data["sqnr_db"] and data["samples"] == 16
    table = capsys.readouterr().out
    assert "y" in table and "FULLY_CONNECTED" in table.upper()


def test_quantize_is_deterministic_and_defaults_to_the_current_folder(capsys, tmp_path, float_fc, calib, monkeypatch):
    monkeypatch.chdir(tmp_path)
    a, c = tmp_path / "a.tflite", tmp_path / "c.tflite"
    ra, rc = tmp_path / "a.json", tmp_path / "c.json"
    assert main(["quantize", str(float_fc), "--calib", str(calib), "-o", str(a), "--report", str(ra)]) == 0
    assert main(["quantize", str(float_fc), "--calib", str(calib)]) == 0  # -o: ./<stem>_int8.tflite
    b = tmp_path / "tiny_float_int8.tflite"
    # and a fresh process (nothing cached, another hash seed), as a user's second run is
    argv = ["quantize", str(float_fc), "--calib", str(calib), "-o", str(c), "--report", str(rc)]
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]), PYTHONHASHSEED="123")
    r = subprocess.run([sys.executable, "-m", "mcuq.cli", *argv], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert a.read_bytes() == b.read_bytes() == c.read_bytes()
    assert ra.read_bytes() == rc.read_bytes()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize(
    "flags",
    [["--calib-method", m] for m in CALIB_METHODS] + [["--per-tensor-fc"], ["--no-bias-correction"]],
    ids=lambda f: "_".join(f).lstrip("-"),
)
def test_quantize_options_reach_the_quantizer(capsys, tmp_path, float_fc, calib, flags):
    out = tmp_path / "q.tflite"
    assert main(["quantize", str(float_fc), "--calib", str(calib), "-o", str(out), *flags]) == 0
    g = load(out)
    w = g.tensors[g.ops[0].inputs[1]]
    assert (len(w.qparams.scale) == 1) == ("--per-tensor-fc" in flags)
    if "--calib-method" in flags and flags[1] != "auto":
        assert flags[1] in capsys.readouterr().out


def test_cli_choices_are_the_quantizers():
    from mcuq.quant.ptq import DEFAULT_METHOD, METHODS

    assert tuple(CALIB_METHODS) == tuple(METHODS) and DEFAULT_CALIB_METHOD == DEFAULT_METHOD


def test_output_in_a_missing_folder_or_onto_a_folder_is_refused_before_any_work(capsys, tmp_path, float_fc):
    missing_calib = str(tmp_path / "no-such-calib.npy")  # reading it would be the first work; it must not happen
    assert main(["quantize", str(float_fc), "--calib", missing_calib, "-o", str(tmp_path / "nope" / "q.tflite")]) == 2
    line = _one_error_line(capsys)
    assert "q.tflite: the folder" in line and "nope does not exist" in line
    assert main(["quantize", str(float_fc), "--calib", missing_calib, "-o", str(tmp_path)]) == 2
    assert "is a folder" in _one_error_line(capsys)
    rep = str(tmp_path / "nope" / "r.json")
    assert (
        main(["quantize", str(float_fc), "--calib", missing_calib, "-o", str(tmp_path / "q.tflite"), "--report", rep])
        == 2
    )
    line = _one_error_line(capsys)
    assert "r.json" in line and "does not exist" in line
    assert main(["quantize", str(float_fc), "--calib", missing_calib, "-o", str(float_fc)]) == 2
    assert "names the same file as the model" in _one_error_line(capsys)
    calib = tmp_path / "calib.npy"
    assert (
        main(
            ["quantize", str(float_fc), "--calib", str(calib), "-o", str(tmp_path / "q.tflite"), "--report", str(calib)]
        )
        == 2
    )
    assert "--report names the same file as --calib" in _one_error_line(capsys)
    assert not (tmp_path / "q.tflite").exists()


@pytest.mark.parametrize(
    "make, expect",
    [
        (lambda p: None, "no such file"),
        (lambda p: np.save(p, np.zeros((4, 9), dtype=np.float32)), "shape"),
        (lambda p: np.save(p, np.full((4, 8), np.nan, dtype=np.float32)), "nan"),
        (lambda p: np.save(p, np.zeros((0, 8), dtype=np.float32)), "no samples"),
    ],
    ids=["missing", "wrong_shape", "nan", "empty"],
)
def test_bad_calibration_data_is_one_line_and_exit_2(capsys, tmp_path, float_fc, make, expect):
    data = tmp_path / "bad.npy"
    make(data)
    out = tmp_path / "q.tflite"
    assert main(["quantize", str(float_fc), "--calib", str(data), "-o", str(out)]) == 2
    line = _one_error_line(capsys)
    assert "bad.npy" in line and expect in line.lower(), line
    assert not out.exists()


# -- compile, run, inspect with --calib --------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["compile", "run", "inspect"])
def test_float_model_without_calib_says_what_to_add(capsys, tmp_path, float_fc, command):
    args = {
        "compile": ["-o", str(tmp_path / "out")],
        "run": ["--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy")],
        "inspect": [],
    }[command]
    np.save(tmp_path / "x.npy", np.zeros((1, 8), dtype=np.float32))
    assert main([command, str(float_fc), *args]) == 2
    line = _one_error_line(capsys)
    assert str(float_fc) in line and "float32" in line and "add --calib DATA" in line and "mcuq quantize" in line
    assert not (tmp_path / "out").exists() and not (tmp_path / "y.npy").exists()


def test_quantization_options_need_calib(capsys, tmp_path, float_fc):
    assert main(["compile", str(float_fc), "--per-tensor-fc", "-o", str(tmp_path / "o")]) == 2
    assert "--per-tensor-fc needs --calib DATA" in _one_error_line(capsys)


def test_compile_with_calib_quantizes_then_compiles(capsys, tmp_path, float_fc, calib):
    out = tmp_path / "out"
    assert main(["compile", str(float_fc), "--calib", str(calib), "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert "wrote" in captured.out and "end-to-end SQNR" in captured.err and "mcuq: note:" in captured.err
    h = (out / "tiny_float.h").read_text()  # the prefix comes from the float model's file name
    assert "TINY_FLOAT_INPUT0_SCALE" in h and "const int8_t *in_x" in h
    # the C is that of the model `mcuq quantize` writes with the same data and options
    q = tmp_path / "q.tflite"
    assert main(["quantize", str(float_fc), "--calib", str(calib), "-o", str(q)]) == 0
    ref = tmp_path / "ref"
    assert main(["compile", str(q), "-o", str(ref), "--prefix", "tiny_float"]) == 0
    for name in ("tiny_float.c", "tiny_float.h"):  # all but the first line, which names the source file
        ours, theirs = ((d / name).read_text().splitlines() for d in (out, ref))
        assert "from tiny_float.tflite" in ours[0] and "from q.tflite" in theirs[0]
        assert ours[1:] == theirs[1:]


def test_calib_for_an_int8_model_is_ignored_with_a_note(capsys, tmp_path, calib):
    model = tmp_path / "tiny_fc.tflite"
    model.write_bytes(tiny_fc_bytes())
    assert main(["compile", str(model), "--calib", str(calib), "-o", str(tmp_path / "a")]) == 0
    err = capsys.readouterr().err
    assert "mcuq: note:" in err and "already quantized (int8 inputs); --calib is ignored" in err
    assert main(["compile", str(model), "-o", str(tmp_path / "b")]) == 0
    assert (tmp_path / "a" / "tiny_fc.c").read_bytes() == (tmp_path / "b" / "tiny_fc.c").read_bytes()


def test_run_with_float_inputs_equals_run_with_inputs_quantized_by_hand(capsys, tmp_path, float_fc, calib):
    q = tmp_path / "q.tflite"
    assert main(["quantize", str(float_fc), "--calib", str(calib), "-o", str(q)]) == 0
    g = load(q)
    x = np.random.default_rng(4).normal(0, 2, (6, 1, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "xq.npy", quantize_input(g.tensors["x"], x))
    runs = {
        "float_in": ["run", str(float_fc), "--calib", str(calib), "--input", str(tmp_path / "x.npy")],
        "int8_in": ["run", str(q), "--input", str(tmp_path / "xq.npy")],
        "float_out": ["run", str(q), "--input", str(tmp_path / "x.npy"), "--float-output"],
    }
    for name, argv in runs.items():
        assert main([*argv, "--output", str(tmp_path / f"{name}.npy")]) == 0, capsys.readouterr().err
    a, b, f = (np.load(tmp_path / f"{n}.npy") for n in runs)
    assert a.dtype == np.int8 and a.shape == (6, 1, 4)
    np.testing.assert_array_equal(a, b)
    assert f.dtype == np.float32
    np.testing.assert_array_equal(f, dequantize_output(g.tensors["y"], b))


def test_run_takes_the_calibration_arrays_forms_and_dtype(capsys, tmp_path, float_fc, calib):
    """One array serves both: float64 values (numpy's default, accepted as calibration data) and a single sample
    without the batch dimension run as they calibrate, and equal the same values given as float32 [1, 8]."""
    x = np.random.default_rng(5).normal(size=(8,))
    np.save(tmp_path / "x64.npy", x)  # float64, shape [8] for the input [1, 8]
    np.save(tmp_path / "x32.npy", x.astype(np.float32).reshape(1, 8))
    outs = {}
    for name in ("x64", "x32"):
        argv = ["run", str(float_fc), "--calib", str(calib), "--input", str(tmp_path / f"{name}.npy")]
        assert main([*argv, "--output", str(tmp_path / f"y_{name}.npy")]) == 0
        outs[name] = np.load(tmp_path / f"y_{name}.npy")
    capsys.readouterr()
    assert outs["x64"].shape == (4,) and outs["x32"].shape == (1, 4)  # the output drops its leading 1 as well
    np.testing.assert_array_equal(outs["x64"], outs["x32"][0])


def test_run_refuses_integer_inputs_of_another_type_naming_the_file(capsys, tmp_path, float_fc, calib):
    np.save(tmp_path / "x16.npy", np.zeros((1, 8), dtype=np.int16))
    argv = ["run", str(float_fc), "--calib", str(calib), "--input", str(tmp_path / "x16.npy")]
    assert main([*argv, "--output", str(tmp_path / "y.npy")]) == 2
    line = _one_error_line(capsys)
    assert "x16.npy (input 'x'): dtype int16; give float32" in line


def test_inspect_with_calib_prints_the_quantization_report(capsys, float_fc, calib):
    assert main(["inspect", str(float_fc), "--calib", str(calib)]) == 0
    out = capsys.readouterr().out
    assert "FULLY_CONNECTED" in out and "int8 s=" in out and f"quantization with --calib {calib}" in out


# -- Python -----------------------------------------------------------------------------------------------------


def test_python_quantize_then_compile_model_and_run_on_floats(tmp_path, float_fc, calib):
    qm = mcuq.quantize(str(float_fc), str(calib))
    assert isinstance(qm, mcuq.QuantizedModel) and "quantize" in mcuq.__all__
    cm = mcuq.compile_model(qm)
    assert cm.prefix == "tiny_float"
    x = np.random.default_rng(6).normal(0, 1, (3, 1, 8)).astype(np.float32)
    xq = quantize_input(cm.input_tensors[0], x)
    (a,) = cm.run(x)
    (b,) = cm.run(xq)
    np.testing.assert_array_equal(a, b)
    (f,) = cm.run(x, float_output=True)
    np.testing.assert_array_equal(f, dequantize_output(cm.output_tensors[0], b))
    qm.save(tmp_path / "py.tflite")
    assert main(["quantize", str(float_fc), "--calib", str(calib), "-o", str(tmp_path / "cli.tflite")]) == 0
    assert (tmp_path / "py.tflite").read_bytes() == (tmp_path / "cli.tflite").read_bytes()


def test_compile_model_refuses_a_float_graph_with_the_hint():
    with pytest.raises(mcuq.errors.McuqError, match="add --calib DATA .*mcuq.quantize"):
        compile_model(tiny_fc_graph(dtype=ir.DType.FLOAT32))


def test_help_describes_quantization(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "mcuq quantize float.tflite --calib" in out and "quantize" in out
    for command in ("compile", "run", "inspect", "bench"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert "--calib DATA" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    assert "--float-output" in capsys.readouterr().out


def test_float_output_needs_quantized_outputs():
    from mcuq.cli import _check_float_output

    _check_float_output("m.tflite", [ir.Tensor("y", (1, 4), ir.DType.INT8, ir.QParams((0.5,), (0,)))])
    with pytest.raises(mcuq.errors.McuqError, match="--float-output: output 'idx' is int32 without one scale"):
        _check_float_output("m.tflite", [ir.Tensor("idx", (1,), ir.DType.INT32)])
