"""Review of post-training quantization (issue 9) as a careless user and an attacker would use it.

Each test is a reproducer of a problem found in review (all fixed), written as the behaviour the issue asks for. The models are built in code and quantize in well under a second.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import mcuq
from mcuq import ir
from mcuq.cli import main
from mcuq.errors import McuqError
from mcuq.frontend.tflite_writer import write
from mcuq.quant.ptq import quantize
from tests.util.float_models import Builder

ROOT = Path(__file__).resolve().parents[2]
F32 = ir.DType.FLOAT32
A, K = ir.Activation, ir.OpKind


def _const(name: str, data) -> ir.Tensor:
    a = np.ascontiguousarray(data, dtype=np.float32)
    a.flags.writeable = False
    return ir.Tensor(name, a.shape, F32, None, a)


def _fc_graph(x_name: str = "x", y_name: str = "y") -> ir.Graph:
    """x [1, 8] float32 -> FULLY_CONNECTED(4, ReLU) -> y [1, 4], with the tensor names given."""
    rng = np.random.default_rng(0)
    tensors = {
        x_name: ir.Tensor(x_name, (1, 8), F32),
        "w": _const("w", rng.normal(0, 0.5, (4, 8))),
        "b": _const("b", rng.normal(0, 0.1, (4,))),
        y_name: ir.Tensor(y_name, (1, 4), F32),
    }
    op = ir.Op(K.FULLY_CONNECTED, y_name, (x_name, "w", "b"), (y_name,), ir.FullyConnectedAttrs(A.RELU), 0)
    g = ir.Graph("fc", tensors, (op,), (x_name,), (y_name,))
    ir.verify(g)
    return g


def _calib(n: int = 16, shape: tuple[int, ...] = (8,), seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 1, (n, *shape)).astype(np.float32)


@pytest.fixture()
def float_fc(tmp_path) -> Path:
    p = tmp_path / "fc_float.tflite"
    p.write_bytes(write(_fc_graph()))
    return p


@pytest.fixture()
def calib(tmp_path) -> Path:
    p = tmp_path / "calib.npy"
    np.save(p, _calib())
    return p


# -- writing outputs --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("option", ["-o", "--report"])
def test_an_output_that_links_to_a_device_is_not_replaced(tmp_path, float_fc, calib, option, capsys):
    link = tmp_path / "devnull"
    os.symlink(os.devnull, link)
    others = {"-o": ["--report", str(tmp_path / "r.json")], "--report": ["-o", str(tmp_path / "q.tflite")]}[option]
    status = main(["quantize", str(float_fc), "--calib", str(calib), option, str(link), *others])
    capsys.readouterr()
    assert status in (0, 2)  # written through the link, or refused in one line: never replaced
    assert link.is_symlink() and os.readlink(link) == os.devnull


# -- quantizing models that the op set allows -------------------------------------------------------------


def test_concat_with_a_constant_input_quantizes():
    b = Builder("concat_const", 0)
    x = b.input((1, 4, 4, 3))
    g = b.graph(b.concat((x, b.const("k", np.full((1, 4, 4, 2), 0.5))), 3))
    qm = quantize(g, _calib(8, (4, 4, 3)))
    assert [op.kind for op in qm.graph.ops] == [K.CONCAT]


@pytest.mark.parametrize("bias_correction", [False, True])
def test_a_bias_shared_by_two_layers_is_quantized_for_each(bias_correction):
    rng = np.random.default_rng(0)
    tensors = {
        "x": ir.Tensor("x", (1, 8), F32),
        "w1": _const("w1", rng.normal(0, 0.5, (8, 8))),
        "w2": _const("w2", rng.normal(0, 0.05, (8, 8))),
        "b": _const("b", np.full(8, 0.25)),  # one bias tensor read by both layers (MLIR merges equal constants)
        "h": ir.Tensor("h", (1, 8), F32),
        "y": ir.Tensor("y", (1, 8), F32),
    }
    ops = (
        ir.Op(K.FULLY_CONNECTED, "fc1", ("x", "w1", "b"), ("h",), ir.FullyConnectedAttrs(A.RELU), 0),
        ir.Op(K.FULLY_CONNECTED, "fc2", ("h", "w2", "b"), ("y",), ir.FullyConnectedAttrs(A.NONE), 1),
    )
    g = ir.Graph("shared_bias", tensors, ops, ("x",), ("y",))
    ir.verify(g)
    q = quantize(g, _calib(32), bias_correction=bias_correction).graph
    for op in q.ops:
        x, w, bias = (q.tensors[n] for n in op.inputs)
        want = np.float32(x.scale) * np.asarray(w.qparams.scale, np.float32)
        np.testing.assert_allclose(bias.qparams.scale, np.broadcast_to(want, (8,)), rtol=1e-6, err_msg=op.name)


def test_an_output_scale_out_of_reach_is_a_model_error():
    b = Builder("unreachable", 0)
    h = b.fc(b.input((1, 1)), 2, w=np.ones((2, 1)), b=np.array([1e37, 0.0]))
    g = b.graph(b.fc(h, 1, w=np.array([[0.0, 1e37]]), b=np.zeros(1)))
    with np.errstate(all="ignore"), pytest.raises(McuqError):
        quantize(g, _calib(8, (1,)))


def test_the_working_memory_limit_holds(monkeypatch):
    b = Builder("conv_dw", 0)
    g = b.graph(b.dwconv(b.conv(b.input((1, 16, 16, 8)), 16), act=A.RELU))
    data = _calib(32, (16, 16, 8))
    tracemalloc.start()
    try:
        quantize(g, data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    monkeypatch.setenv("MCUQ_CALIB_MEMORY", str(peak // 2))  # half of what it takes: must be refused
    with pytest.raises(McuqError, match="MCUQ_CALIB_MEMORY"):
        quantize(g, data)


def test_a_memory_limit_that_is_not_a_number_is_a_one_line_error(monkeypatch, capsys, tmp_path, float_fc, calib):
    monkeypatch.setenv("MCUQ_CALIB_MEMORY", "lots")
    assert main(["quantize", str(float_fc), "--calib", str(calib), "-o", str(tmp_path / "q.tflite")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "MCUQ_CALIB_MEMORY" in err[0]


def test_a_quantized_model_object_given_again_is_a_clear_error():
    qm = quantize(_fc_graph(), _calib())
    with pytest.raises(McuqError):
        quantize(qm, _calib())


def test_a_per_tensor_layer_has_a_per_tensor_bias():
    q = quantize(_fc_graph(), _calib(), per_channel_fc=False).graph
    w, bias = (q.tensors[n] for n in q.ops[0].inputs[1:3])
    assert len(w.qparams.scale) == 1
    assert len(bias.qparams.scale) == 1


# -- one line on stderr ------------------------------------------------------------------------------------------


def test_a_float_model_that_overflows_gives_only_the_error_line(tmp_path):
    b = Builder("huge", 0)
    model = tmp_path / "huge.tflite"
    model.write_bytes(write(b.graph(b.fc(b.input((1, 8)), 4, w=np.full((4, 8), 1e38)))))
    data = tmp_path / "x.npy"
    np.save(data, _calib())
    proc = subprocess.run(
        [sys.executable, "-m", "mcuq.cli", "quantize", str(model), "--calib", str(data), "-o", str(tmp_path / "q")],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mcuq: error: ") and "inf or NaN" in lines[0], proc.stderr


def test_the_hint_to_add_calib_survives_long_tensor_names(capsys, tmp_path):
    g = _fc_graph(
        "serving_default_dense_input:0", "sequential/dense/MatMul;sequential/dense/Relu;sequential/dense/BiasAdd"
    )
    model = tmp_path / "hello_world_float.tflite"
    model.write_bytes(write(g))
    assert main(["inspect", str(model)]) == 2
    assert "add --calib" in capsys.readouterr().err


# -- the same arrays for --calib and mcuq run ---------------------------------------------------------------------


def test_run_takes_a_calibration_sample_file_as_input(capsys, tmp_path, float_fc, calib):
    folder = tmp_path / "samples"
    folder.mkdir()
    for i, x in enumerate(np.load(calib)):
        np.save(folder / f"s{i:03d}.npy", x)  # shape [8]: one sample without its batch dimension
    assert main(["quantize", str(float_fc), "--calib", str(folder), "-o", str(tmp_path / "q.tflite")]) == 0
    out = tmp_path / "y.npy"
    assert main(["run", str(tmp_path / "q.tflite"), "--input", str(folder / "s000.npy"), "--output", str(out)]) == 0
    capsys.readouterr()
    cm = mcuq.compile_model(tmp_path / "q.tflite")
    want = cm.run(np.load(folder / "s000.npy")[None])[0]
    np.testing.assert_array_equal(np.load(out).reshape(want.shape), want)
