"""The board side of the CLI: `mcuq boards`, `--board` on compile/run, `mcuq bench`, fit errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mcuq import ir
from mcuq.frontend.tflite_writer import write
from tests.conftest import have_arm_toolchain
from tests.e2e.test_cli import mcuq_cli
from tests.util.tiny import tiny_fc_bytes

qemu = pytest.mark.skipif(not have_arm_toolchain(), reason="arm-none-eabi-gcc/qemu-system-arm missing (make setup)")


@pytest.fixture()
def tiny(tmp_path):
    p = tmp_path / "tiny_fc.tflite"
    p.write_bytes(tiny_fc_bytes())
    return p


def test_boards_lists_emulated_and_real():
    r = mcuq_cli("boards")
    assert r.returncode == 0, r.stderr
    for name in (
        "mps2-an385",
        "mps2-an386",
        "mps2-an500",
        "mps2-an505",
        "mps3-an547",
        "nrf52840",
        "raspberry-pi-pico",
        "stm32f746g-disco",
    ):
        assert name in r.stdout
    assert "(default)" in r.stdout


def test_unknown_board_is_a_clear_error(tiny, tmp_path):
    r = mcuq_cli("compile", str(tiny), "--board", "no-such-board", "-o", str(tmp_path / "o"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "unknown board 'no-such-board'" in r.stderr and "mps2-an386" in r.stderr
    assert not (tmp_path / "o").exists()


def big_fc_bytes(n_in: int = 1024, n_out: int = 300) -> bytes:
    """An int8 FULLY_CONNECTED with n_in * n_out bytes of weights (307,200 B by default)."""
    rng = np.random.default_rng(0)
    t = {
        "x": ir.Tensor("x", (1, n_in), ir.DType.INT8, ir.QParams((0.05,), (0,))),
        "big/weights": ir.Tensor(
            "big/weights",
            (n_out, n_in),
            ir.DType.INT8,
            ir.QParams((0.01,), (0,)),
            rng.integers(-127, 128, (n_out, n_in)).astype(np.int8),
        ),
        "b": ir.Tensor("b", (n_out,), ir.DType.INT32, ir.QParams((0.0005,), (0,)), np.zeros(n_out, np.int32)),
        "y": ir.Tensor("y", (1, n_out), ir.DType.INT8, ir.QParams((0.5,), (0,))),
    }
    op = ir.Op(ir.OpKind.FULLY_CONNECTED, "big", ("x", "big/weights", "b"), ("y",), ir.FullyConnectedAttrs(), 0)
    return write(ir.Graph("big", t, (op,), ("x",), ("y",)))


def test_model_too_large_for_board_fails_with_numbers(tmp_path):
    model = tmp_path / "big.tflite"
    model.write_bytes(big_fc_bytes())
    r = mcuq_cli("compile", str(model), "--board", "nrf52840", "-o", str(tmp_path / "ok"))
    assert r.returncode == 0, r.stderr  # 300 KB of weights fit 1 MB of flash
    r = mcuq_cli("compile", str(model), "--board", "raspberry-pi-pico", "-o", str(tmp_path / "ok2"))
    assert r.returncode == 0, r.stderr
    # a board of our own with 256 KB of flash, given as a path
    board = tmp_path / "tiny-m4.toml"
    board.write_text(
        'name = "tiny-m4"\ndescription = "a small Cortex-M4F"\nvendor = "test"\nurl = "none"\ncpu = "cortex-m4"\narch = "armv7e-m"\n'
        'cflags = ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"]\n'
        'features = ["dsp", "fpu"]\nflash_size = 0x40000\nram_size = 0x10000\nemulated = false\n'
    )
    r = mcuq_cli("compile", str(model), "--board", str(board), "-o", str(tmp_path / "no"))
    assert r.returncode == 2, (r.returncode, r.stderr)
    line = r.stderr.strip()
    assert len(line.splitlines()) == 1 and "Traceback" not in line
    assert "does not fit tiny-m4" in line and "262,144 B" in line and "over" in line
    assert "'big/weights' 307,200 B" in line and "FULLY_CONNECTED" in line
    assert not (tmp_path / "no").exists()


@qemu
def test_run_in_qemu_matches_host(tiny, tmp_path):
    x = np.random.default_rng(3).integers(-128, 128, (6, 1, 8), dtype=np.int8)
    np.save(tmp_path / "x.npy", x)
    for board in ("host", "mps2-an386"):
        r = mcuq_cli(
            "run",
            str(tiny),
            "--board",
            board,
            "--input",
            str(tmp_path / "x.npy"),
            "--output",
            str(tmp_path / f"{board}.npy"),
        )
        assert r.returncode == 0, r.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "host.npy"), np.load(tmp_path / "mps2-an386.npy"))


@qemu
def test_bench_json(tiny):
    r = mcuq_cli("bench", str(tiny), "--board", "mps3-an547", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["board"] == "mps3-an547" and len(d["layers"]) == 1
    layer = d["layers"][0]
    assert layer["op"] == "FULLY_CONNECTED" and layer["macs"] == 32 and layer["instructions"] > 32
    assert d["totals"]["instructions"] >= layer["instructions"]
    assert d["sizes"]["flash"] == d["sizes"]["text"] + d["sizes"]["data"] and d["sizes"]["arena"] >= 0
    assert 0 < d["totals"]["stack_used"] <= d["sizes"]["stack"]
    text = mcuq_cli("bench", str(tiny), "--board", "mps3-an547")
    assert text.returncode == 0 and "instructions per inference" in text.stdout and "flash" in text.stdout


def test_bench_on_a_real_board_is_refused(tiny):
    r = mcuq_cli("bench", str(tiny), "--board", "nrf52840")
    assert r.returncode == 2 and "not emulated" in r.stderr and "Traceback" not in r.stderr
