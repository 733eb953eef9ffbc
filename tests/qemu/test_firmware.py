"""Firmware projects run in QEMU: bit-exact with the host run and the oracle; standalone make and CMake builds;
real-board library folders; faults, hangs, bad exits and missing tools give clear errors quickly.

Measured decision (VWW, 27 KB input, mps2-an386): one boot over 100 records streamed through semihosting reads
takes 0.042 s with the invoke removed against 0.031 s for one record, i.e. ~0.1 ms of I/O per record, while one
VWW inference takes ~75 ms in QEMU. Per-record semihosting I/O is therefore kept (no inputs linked into the
image, no rebuild or reboot per record).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import struct
import subprocess
import time

import numpy as np
import pytest
from elftools.elf.elffile import ELFFile

import mcuq
from mcuq import ir
from mcuq.boards import Region, list_boards, load_board
from mcuq.codegen.project import runtime_files
from mcuq.errors import FitError
from mcuq.firmware import qemu
from mcuq.firmware.project import board_info, render_firmware_project, write_firmware_project
from tests.conftest import ROOT, have_arm_toolchain
from tests.util import oracle

needs_toolchain = pytest.mark.skipif(
    not have_arm_toolchain(), reason="arm-none-eabi-gcc or qemu-system-arm not installed (`make setup` installs them)"
)
pytestmark = pytest.mark.qemu

SHARED = [
    "mlperf_tiny/kws_ref_model.tflite",
    "mlperf_tiny/vww_96_int8.tflite",
    "mlperf_tiny/pretrainedResnet_quant.tflite",
    "mlperf_tiny/ad01_int8.tflite",
    "tflm/hello_world_int8.tflite",
]
DIGITS = ROOT / "examples" / "digits_cnn.tflite"
N = 4  # records per model, run in one boot


def random_inputs(cm, n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(-128, 128, size=(n, *cm.graph.tensors[t].shape), dtype=np.int8) for t in cm.graph.inputs]


def expected(cm, model, xs: list[np.ndarray]) -> list[np.ndarray]:
    """The host run of the generated C, checked against the oracle when it is installed."""
    host = cm.run(xs)
    if oracle.available():
        want = oracle.run(model, [[x[i] for x in xs] for i in range(len(xs[0]))])
        for k, h in enumerate(host):
            np.testing.assert_array_equal(h, np.stack([w["outputs"][k].reshape(h.shape[1:]) for w in want]))
    return host


@pytest.fixture(scope="module")
def shared_cases(shared_models):
    """Each shared model compiled once, with its inputs and expected outputs (host run == oracle)."""
    cases = {}
    for i, rel in enumerate(SHARED):
        path = shared_models / rel
        cm = mcuq.compile_model(path, sanitize=False)
        xs = random_inputs(cm, N, seed=1000 + i)
        cases[rel] = (cm, xs, expected(cm, path, xs))
    return cases


@pytest.fixture(scope="module")
def digits():
    cm = mcuq.compile_model(DIGITS, sanitize=False)
    x = np.load(ROOT / "examples" / "digits_test.npz")["x"][:5, None]
    return cm, [x], expected(cm, DIGITS, [x])


def assert_outputs_equal(got: list[np.ndarray], want: list[np.ndarray]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


@needs_toolchain
@pytest.mark.models
@pytest.mark.parametrize("board", ["mps2-an386", "mps3-an547"])
@pytest.mark.parametrize("rel", SHARED, ids=lambda r: r.split("/")[-1].removesuffix(".tflite"))
def test_shared_model_bit_exact_in_qemu(shared_cases, rel, board):
    cm, xs, want = shared_cases[rel]
    run = qemu.run_batch_info(cm, board, xs, N)
    assert_outputs_equal(run.outputs, want)
    assert run.stack_used is not None and 0 < run.stack_used <= load_board(board).stack_size


@needs_toolchain
@pytest.mark.parametrize("board", ["mps2-an385", "mps2-an500", "mps2-an505"])
def test_digits_bit_exact_on_other_boards(digits, board):
    cm, xs, want = digits
    assert_outputs_equal(qemu.run_batch(cm, board, xs, len(xs[0])), want)


def two_in_two_out() -> ir.Graph:
    """x1 [1,3,4,5], x2 [1,1,4,5] -> ADD (broadcast) and MUL: two inputs of different sizes, two outputs."""

    def t(name, shape, scale, zp):
        return ir.Tensor(name, shape, ir.DType.INT8, ir.QParams((scale,), (zp,)))

    ts = [t("x1", (1, 3, 4, 5), 0.05, 3), t("x2", (1, 1, 4, 5), 0.04, -7), t("y_add", (1, 3, 4, 5), 0.09, 1),
          t("y_mul", (1, 3, 4, 5), 0.01, -2)]  # fmt: skip
    attrs = ir.BinaryAttrs(ir.Activation.NONE)
    ops = (ir.Op(ir.OpKind.ADD, "add", ("x1", "x2"), ("y_add",), attrs, 0),
           ir.Op(ir.OpKind.MUL, "mul", ("x1", "x2"), ("y_mul",), attrs, 1))  # fmt: skip
    return ir.Graph("two_io", {x.name: x for x in ts}, ops, ("x1", "x2"), ("y_add", "y_mul"))


@needs_toolchain
def test_record_layout_with_two_inputs_and_two_outputs():
    cm = mcuq.compile_model(two_in_two_out(), sanitize=False)
    xs = random_inputs(cm, 3, seed=5)
    assert_outputs_equal(qemu.run_batch(cm, "mps2-an386", xs, 3), cm.run(xs))


@needs_toolchain
def test_make_builds_standalone_and_the_elf_runs(digits, tmp_path):
    """`make -C DIR` with a bare environment (no mcuq, no venv on PATH); the ELF has the profiling markers."""
    cm, xs, want = digits
    out = write_firmware_project(cm, "mps2-an386", tmp_path / "fw")
    assert {"startup.c", "linker.ld", "main.c", "Makefile", "CMakeLists.txt", "README.md"} <= {
        p.name for p in out.iterdir()
    }
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C"}
    proc = subprocess.run(["make", "-C", str(out)], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    elf = out / "build" / f"{cm.prefix}.elf"
    with open(elf, "rb") as f:
        syms = {s.name: s for s in ELFFile(f).get_section_by_name(".symtab").iter_symbols()}
        for name in ("mcuq_invoke_begin", "mcuq_invoke_end", "mcuq_layer_begin", "mcuq_layer_end"):
            assert syms[name]["st_info"]["type"] == "STT_FUNC" and syms[name]["st_size"] > 2, name
    run = tmp_path / "run"
    run.mkdir()
    n = len(xs[0])
    (run / "mcuq_in.bin").write_bytes(struct.pack("<I", n) + xs[0].tobytes())
    stdout, stderr, rc = qemu.run_qemu("mps2-an386", elf, run, timeout=60)
    qemu.check_guest("standalone", stdout, stderr, rc, n)
    got = np.frombuffer((run / "mcuq_out.bin").read_bytes(), np.int8).reshape(want[0].shape)
    np.testing.assert_array_equal(got, want[0])


@needs_toolchain
@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake not installed")
def test_cmake_builds_the_same_firmware(digits, tmp_path):
    cm, xs, want = digits
    out = write_firmware_project(cm, "mps3-an547", tmp_path / "fw")
    build = tmp_path / "build"
    for cmd in (["cmake", "-S", str(out), "-B", str(build)], ["cmake", "--build", str(build)]):
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    (tmp_path / "mcuq_in.bin").write_bytes(struct.pack("<I", len(xs[0])) + xs[0].tobytes())
    stdout, stderr, rc = qemu.run_qemu("mps3-an547", build / f"{cm.prefix}.elf", tmp_path, timeout=60)
    qemu.check_guest("cmake", stdout, stderr, rc, len(xs[0]))
    got = np.frombuffer((tmp_path / "mcuq_out.bin").read_bytes(), np.int8).reshape(want[0].shape)
    np.testing.assert_array_equal(got, want[0])


REAL_BOARDS = [b.name for b in list_boards() if not b.emulated and not b.is_host]


@needs_toolchain
@pytest.mark.parametrize("board", REAL_BOARDS)
def test_real_board_folder_is_a_library(digits, board, tmp_path):
    """No startup or linker script; the library (with the DWT profiling hooks) compiles with -Werror."""
    cm = digits[0]
    out = write_firmware_project(cm, board, tmp_path / "fw")
    names = {p.name for p in out.iterdir()}
    assert {"mcuq_profile_dwt.c", "README.md", "Makefile", "CMakeLists.txt", f"{cm.prefix}.c"} <= names
    assert not names & {"startup.c", "linker.ld", "main.c"}
    assert f"{cm.prefix}_invoke(" in (out / "README.md").read_text()
    proc = subprocess.run(["make", "-C", str(out), "HOOKS=1"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (out / "build" / f"lib{cm.prefix}.a").stat().st_size > 0
    assert f"-mcpu={load_board(board).cpu}" in proc.stdout


@needs_toolchain
def test_guest_fault_is_a_clear_error(digits):
    cm, xs, _ = digits
    t0 = time.monotonic()
    with pytest.raises(qemu.RunError, match=r"the guest faulted: MCUQ_FAULT HardFault .*CFSR=0x") as e:
        qemu.run_batch_info(cm, "mps2-an386", xs, 1, extra_cflags=["-DMCUQ_TEST_FAULT"], timeout=30)
    assert "BFAR=0xf0000000" in e.value.output
    assert time.monotonic() - t0 < 30


@needs_toolchain
def test_guest_hang_times_out_quickly(digits):
    cm, xs, _ = digits
    t0 = time.monotonic()
    with pytest.raises(qemu.RunError, match=r"QEMU timed out after 2 s"):
        qemu.run_batch_info(cm, "mps2-an386", xs, 1, extra_cflags=["-DMCUQ_TEST_HANG"], timeout=2)
    assert time.monotonic() - t0 < 20


@needs_toolchain
def test_short_input_file_gives_the_exit_status_and_guest_message(digits, tmp_path):
    cm, xs, _ = digits
    elf = qemu.build_firmware(cm, "mps2-an386", tmp_path / "fw")
    (tmp_path / "mcuq_in.bin").write_bytes(struct.pack("<I", 3) + xs[0][0].tobytes())  # 3 announced, 1 present
    stdout, stderr, rc = qemu.run_qemu("mps2-an386", elf, tmp_path)
    assert rc == 10
    with pytest.raises(qemu.RunError, match=r"exited with status 10: MCUQ_ERROR short read .*record 1"):
        qemu.check_guest("x", stdout, stderr, rc, 3)


def test_missing_pass_token_or_wrong_count_is_an_error():
    with pytest.raises(qemu.RunError, match="without printing its pass token"):
        qemu.check_guest("x", "hello\n", "", 0, 1)
    with pytest.raises(qemu.RunError, match="ran 1 records, 2 were sent"):
        qemu.check_guest("x", "MCUQ_DONE n=1\n", "", 0, 2)
    qemu.check_guest("x", "MCUQ_STACK_USED 300 of 2048\nMCUQ_DONE n=2\n", "", 0, 2)


@needs_toolchain
def test_too_small_flash_fails_with_the_numbers(digits, tmp_path):
    cm = digits[0]
    small = dataclasses.replace(load_board("mps2-an386"), flash_size=4096, flash_region=Region(0, 4096))
    with pytest.raises(FitError, match=r"does not fit mps2-an386: needs [\d,]+ B of flash, has 4,096 B"):
        qemu.build_firmware(cm, small, tmp_path / "a")
    # Past the estimate, the linker's verdict is turned into the same kind of error.
    info = dataclasses.replace(board_info("mps2-an386"), flash_length=4096)
    with pytest.raises(FitError, match=r"does not fit mps2-an386 \(linker\): needs [\d,]+ B of flash, has 4,096 B"):
        qemu.build_firmware(cm, info, tmp_path / "b")


def test_missing_toolchain_says_how_to_install(digits, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(qemu.ToolchainError, match=r"make setup"):
        qemu.build_firmware(digits[0], "mps2-an386", tmp_path / "fw")


def test_project_is_deterministic_and_selects_runtime_files(digits):
    cm = digits[0]
    a, b = render_firmware_project(cm, "mps2-an386"), render_firmware_project(cm, "mps2-an386")
    assert a == b
    srcs = {k.rsplit("/", 1)[-1] for k in a if k.startswith("mcuq_runtime/src/")}
    assert {f"{getattr(layer.kernel, 'name', layer.kernel)}.c" for layer in cm.layers if layer.kernel} <= srcs
    assert "mcuq_transpose_s8.c" not in srcs
    # the registry names every runtime source: all kernels together need exactly all .c files
    from mcuq.kernels import KERNELS

    assert sorted(runtime_files(set(KERNELS))) == sorted((ROOT / "runtime_c" / "src").glob("*/*.c"))


def test_refuses_to_overwrite_a_foreign_directory(digits, tmp_path):
    (tmp_path / "mine.txt").write_text("user data")
    with pytest.raises(mcuq.errors.McuqError, match="refusing to write into it"):
        write_firmware_project(digits[0], "mps2-an386", tmp_path)
    assert os.path.exists(tmp_path / "mine.txt")


@needs_toolchain
@pytest.mark.parametrize(
    "board,match",
    # ARMv7-M: the paint finds it after the batch, unless the overflow into .bss crashed the guest first
    [("mps2-an386", r"status 13: MCUQ_ERROR the stack overflowed|the guest faulted: MCUQ_FAULT"),
     ("mps2-an505", r"faulted: MCUQ_FAULT HardFault .*\(STKOF stack overflow\)")],  # MSPLIM on ARMv8-M
)  # fmt: skip
def test_stack_overflow_is_reported(digits, board, match):
    cm, xs, _ = digits
    with pytest.raises(qemu.RunError, match=match):
        qemu.run_batch_info(cm, board, xs, 1, stack_size=128, timeout=30)
