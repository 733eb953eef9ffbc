"""The CLI contract: compile/run/inspect, reproducible output, and clear errors (exit 2, no traceback)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mcuq import ir
from mcuq.cli import main
from tests.util import oracle
from tests.util.tiny import tiny_fc_bytes


@pytest.fixture()
def tiny(tmp_path) -> Path:
    p = tmp_path / "tiny_fc.tflite"
    p.write_bytes(tiny_fc_bytes())
    return p


def mcuq_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the real console entry point in a subprocess (exit status, stdout, stderr as a user sees them)."""
    return subprocess.run(
        [sys.executable, "-m", "mcuq.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2])),
    )


def test_compile_writes_project_and_is_reproducible(tiny, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["compile", str(tiny), "-o", str(a)]) == 0
    assert main(["compile", str(tiny), "-o", str(b)]) == 0
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert files_a == files_b
    assert Path("tiny_fc.c") in files_a and Path("tiny_fc.h") in files_a and Path("Makefile") in files_a
    for f in files_a:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f"{f} differs between two compiles"
    # the written project builds on its own with the strict flags
    subprocess.run(["make", "-s", "-C", str(a)], check=True, capture_output=True)
    assert (a / "build" / "libtiny_fc.a").exists()
    # recompiling into the same directory replaces it
    assert main(["compile", str(tiny), "-o", str(a), "--prefix", "net"]) == 0
    assert (a / "net.c").exists() and not (a / "tiny_fc.c").exists()


def test_header_states_arena_bound_and_io_quantization(tiny, tmp_path):
    assert main(["compile", str(tiny), "-o", str(tmp_path / "o")]) == 0
    h = (tmp_path / "o" / "tiny_fc.h").read_text()
    for macro in (
        "TINY_FC_ARENA_SIZE",
        "TINY_FC_ARENA_LOWER_BOUND",
        "TINY_FC_INPUT0_SCALE 0.0500000007f",
        "TINY_FC_INPUT0_ZERO_POINT (-3)",
        "TINY_FC_OUTPUT0_DIMS { 1, 4 }",
        "TINY_FC_OUTPUT0_SCALE",
    ):
        assert macro in h
    assert "mcuq_status tiny_fc_invoke(const int8_t *in_x, int8_t *out_y);" in h


@pytest.mark.oracle
def test_run_single_and_batch(tiny, tmp_path):
    oracle.require()
    rng = np.random.default_rng(5)
    batch = rng.integers(-128, 128, size=(7, 1, 8), dtype=np.int8)
    np.save(tmp_path / "in.npy", batch)
    np.save(tmp_path / "one.npy", batch[3])
    r = mcuq_cli("run", str(tiny), "--input", str(tmp_path / "in.npy"), "--output", str(tmp_path / "out.npy"))
    assert r.returncode == 0, r.stderr
    r1 = mcuq_cli("run", str(tiny), "--input", str(tmp_path / "one.npy"), "--output", str(tmp_path / "o1.npy"))
    assert r1.returncode == 0, r1.stderr
    out, one = np.load(tmp_path / "out.npy"), np.load(tmp_path / "o1.npy")
    assert out.shape == (7, 1, 4) and one.shape == (1, 4)
    want = np.stack([o["outputs"][0] for o in oracle.run(tiny, [[x] for x in batch])])
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(one, want[3])


def test_inspect(tiny):
    r = mcuq_cli("inspect", str(tiny))
    assert r.returncode == 0, r.stderr
    assert "FULLY_CONNECTED" in r.stdout and "MACs: 32" in r.stdout and "arena:" in r.stdout
    assert "liveness lower bound" in r.stdout


def unsupported_op_model(monkeypatch) -> bytes:
    """A valid .tflite whose single op is EXP (builtin 47), which mcuq does not support."""
    from mcuq.frontend import tflite_writer

    real = tflite_writer._Writer.op_spec

    def as_exp(self, op):
        spec = real(self, op)
        spec.code, spec.options_type, spec.options = 47, 0, None
        return spec

    monkeypatch.setattr(tflite_writer._Writer, "op_spec", as_exp)
    t = {n: ir.Tensor(n, (1, 4), ir.DType.INT8, ir.QParams((0.1,), (0,))) for n in ("x", "y")}
    g = ir.Graph("exp", t, (ir.Op(ir.OpKind.TANH, "my_exp", ("x",), ("y",), ir.NoAttrs(), 0),), ("x",), ("y",))
    data = tflite_writer.write(g)
    monkeypatch.undo()
    return data


BAD_CASES = ["missing", "empty", "truncated", "random", "float", "unsupported"]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_clear_error_exit_2(case, tiny, tmp_path, monkeypatch):
    path = tmp_path / f"{case}.tflite"
    expect = {
        "missing": "no such file",
        "empty": "not a valid TFLite",
        "truncated": "not a valid TFLite",
        "random": "not a valid TFLite",
        "float": "float32",
        "unsupported": "EXP",
    }[case]
    if case == "empty":
        path.write_bytes(b"")
    elif case == "truncated":
        path.write_bytes(tiny.read_bytes()[: len(tiny.read_bytes()) // 2])
    elif case == "random":
        path.write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    elif case == "float":
        path.write_bytes(tiny_fc_bytes(dtype=ir.DType.FLOAT32))
    elif case == "unsupported":
        path.write_bytes(unsupported_op_model(monkeypatch))
    out_dir = tmp_path / "out"
    r = mcuq_cli("compile", str(path), "-o", str(out_dir))
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert str(path) in lines[0] and expect.lower() in lines[0].lower(), lines[0]
    if case in ("float", "unsupported"):
        assert "op 0" in lines[0]
    if case == "unsupported":
        assert "supported ops:" in lines[0] and "CONV_2D" in lines[0]
    assert not out_dir.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]  # no staging leftovers


def test_run_rejects_wrong_input_shape(tiny, tmp_path):
    np.save(tmp_path / "bad.npy", np.zeros((3, 5), dtype=np.int8))
    r = mcuq_cli("run", str(tiny), "--input", str(tmp_path / "bad.npy"), "--output", str(tmp_path / "o.npy"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "shape [3, 5]" in r.stderr and "[1, 8]" in r.stderr


def test_refuses_to_replace_foreign_directory(tiny, tmp_path):
    d = tmp_path / "mine"
    d.mkdir()
    (d / "notes.txt").write_text("keep me")
    r = mcuq_cli("compile", str(tiny), "-o", str(d))
    assert r.returncode == 2 and (d / "notes.txt").read_text() == "keep me"
