"""Boards (boards/*.toml -> Board) and the flash/RAM fit check."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pytest

from mcuq import board_schema, ir
from mcuq._paths import BOARDS, RUNTIME_C
from mcuq.api import compile_model
from mcuq.boards import (
    DEFAULT_BOARD,
    Board,
    BoardError,
    Region,
    board_names,
    describe_boards,
    list_boards,
    load_board,
    load_board_file,
)
from mcuq.errors import FitError, McuqError
from mcuq.fit import (
    LAYER_CODE_BYTES,
    LIBGCC_BYTES,
    MODEL_BASE_BYTES,
    STARTUP_BYTES,
    STATIC_RAM_BYTES,
    check_fit,
    check_fit_elf,
)
from mcuq.kernels import KERNELS, code_bytes_of
from tests.conftest import have_arm_toolchain
from tests.util.tiny import tiny_fc_bytes

K, M = 1024, 1024 * 1024

# TOOLCHAIN.md's table of the QEMU machines: code (origin, length), RAM (origin, length), gcc flags.
QEMU_BOARDS = {
    "mps2-an385": (0x0, 4 * M, 0x20000000, 4 * M, "-mcpu=cortex-m3 -mthumb -mfloat-abi=soft"),
    "mps2-an386": (0x0, 4 * M, 0x20000000, 4 * M, "-mcpu=cortex-m4 -mthumb -mfpu=fpv4-sp-d16 -mfloat-abi=hard"),
    "mps2-an500": (0x0, 4 * M, 0x20000000, 4 * M, "-mcpu=cortex-m7 -mthumb -mfpu=fpv5-d16 -mfloat-abi=hard"),
    "mps2-an505": (0x10000000, 4 * M, 0x38000000, 4 * M, "-mcpu=cortex-m33 -mthumb -mfpu=fpv5-sp-d16 -mfloat-abi=hard"),
    "mps3-an547": (0x0, 512 * K, 0x20000000, 512 * K, "-mcpu=cortex-m55 -mthumb -mfloat-abi=hard"),
}
# Real boards: cpu, flash bytes, RAM bytes (largest contiguous bank usable for the arena), features.
REAL_BOARDS = {
    "stm32f746g-disco": ("cortex-m7", 1 * M, 320 * K, ("dsp", "fpu")),
    "nucleo-l4r5zi": ("cortex-m4", 2 * M, 640 * K, ("dsp", "fpu")),
    "nrf52840": ("cortex-m4", 1 * M, 256 * K, ("dsp", "fpu")),
    "raspberry-pi-pico": ("cortex-m0plus", 2 * M - 256, 256 * K, ()),
    "nucleo-h743zi": ("cortex-m7", 2 * M, 512 * K, ("dsp", "fpu")),
    "nucleo-u575zi": ("cortex-m33", 2 * M, 768 * K, ("dsp", "fpu")),
    "alif-ensemble-e7": ("cortex-m55", 5632 * K, 4 * M, ("dsp", "fpu", "mve")),
}
MLPERF = ("kws_ref_model", "vww_96_int8", "pretrainedResnet_quant", "ad01_int8")
needs_gcc = pytest.mark.skipif(
    not have_arm_toolchain(), reason="arm-none-eabi-gcc/qemu-system-arm not installed (make setup)"
)


# -- loading -----------------------------------------------------------------------------------------------------
def test_every_board_file_loads_and_is_listed():
    names = board_names()
    assert names == sorted(p.stem for p in BOARDS.glob("*.toml"))
    assert set(QEMU_BOARDS) | set(REAL_BOARDS) | {"host"} <= set(names)
    boards = list_boards()
    assert [b.name for b in boards] == names
    for b in boards:
        assert load_board(b.name) == b and b.path == BOARDS / f"{b.name}.toml"
        assert b.description and (b.is_host or (b.url.startswith("https://") and b.vendor and b.arch))
    assert DEFAULT_BOARD == "mps2-an386" and load_board(DEFAULT_BOARD).emulated


def test_host_board_has_no_sizes():
    host = load_board("host")
    assert host.is_host and not host.emulated
    assert host.flash_size is None and host.ram_size is None and host.qemu_machine is None


@pytest.mark.parametrize("name", sorted(QEMU_BOARDS))
def test_emulated_boards_match_toolchain_md(name):
    b = load_board(name)
    f_org, f_len, r_org, r_len, flags = QEMU_BOARDS[name]
    assert b.emulated and b.qemu_machine == name
    assert " ".join(b.cflags) == flags
    assert b.flash_region == Region(f_org, f_len) and b.ram_region == Region(r_org, r_len)
    assert (b.flash_size, b.ram_size) == (f_len, r_len)
    assert b.has("fpu") == ("-mfloat-abi=hard" in flags)
    assert b.has("dsp") == (name != "mps2-an385") and b.has("mve") == (name == "mps3-an547")
    assert b.icount_step in (31.25, 40.0, 50.0)


@pytest.mark.parametrize("name", sorted(REAL_BOARDS))
def test_real_boards_have_datasheet_sizes(name):
    b = load_board(name)
    cpu, flash, ram, features = REAL_BOARDS[name]
    assert not b.emulated and b.qemu_machine is None
    assert (b.cpu, b.flash_size, b.ram_size, b.features) == (cpu, flash, ram, features)
    assert f"-mcpu={cpu}" in b.cflags


def test_describe_boards_for_the_cli():
    lines = describe_boards()
    assert lines[0].split()[:6] == ["board", "cpu", "features", "flash", "RAM", "runs"]
    assert len(lines) == len(board_names()) + 1
    an386 = next(line for line in lines if line.startswith("mps2-an386 "))
    assert "4096K" in an386 and "QEMU mps2-an386" in an386 and an386.endswith("(default)")
    assert any(line.startswith("nrf52840 ") and "1024K     256K" in line for line in lines)


def test_unknown_board_lists_the_available_ones():
    with pytest.raises(McuqError, match=r"unknown board 'mps2-an999'; available boards: .*mps2-an386.*nrf52840"):
        load_board("mps2-an999")


def test_load_board_accepts_a_path(tmp_path):
    p = tmp_path / "myboard.toml"
    p.write_text(_valid_toml("myboard"))
    b = load_board(str(p))
    assert b.name == "myboard" and b.flash_size == 4 * M and b.path == p
    assert load_board_file(p) == b


def _valid_toml(name: str = "good") -> str:
    return (BOARDS / "mps2-an386.toml").read_text().replace('name = "mps2-an386"', f'name = "{name}"')


BAD = [  # (edit of the valid file, text the error must contain)
    (lambda s: 'colour = "red"\n' + s, "unknown key 'colour'"),
    (lambda s: s.replace('cpu = "cortex-m4"\n', ""), "missing key 'cpu'"),
    (lambda s: s.replace('vendor = "Arm"\n', ""), "missing key 'vendor'"),
    (
        lambda s: s.replace("flash_size = 0x400000", 'flash_size = "4M"'),
        "key 'flash_size' must be an integer, got str '4M'",
    ),
    (
        lambda s: s.replace("ram_size = 0x400000", "ram_size = true"),
        "key 'ram_size' must be an integer, got true/false",
    ),
    (
        lambda s: s.replace("ram_size = 0x400000", "ram_size = 0"),
        "key 'ram_size' must be positive and below 2^32, got 0",
    ),
    (lambda s: s.replace("emulated = true", 'emulated = "yes"'), "key 'emulated' must be true or false, got str 'yes'"),
    (lambda s: s.replace('"-mthumb", ', "-mthumb, "), "not valid TOML"),
    (lambda s: s.replace('["dsp", "fpu"]', '["dsp", "fpu", "neon"]'), "key 'features' has 'neon'"),
    (lambda s: s.replace('["dsp", "fpu"]', '["dsp"]'), "'fpu' exactly when cflags has -mfloat-abi=hard"),
    (lambda s: s.replace('"-mcpu=cortex-m4", ', ""), "key 'cflags' must contain -mcpu=cortex-m4"),
    (lambda s: s.replace('cflags = ["', 'cflags = [1, "'), "key 'cflags' must be an array of strings"),
    (lambda s: s.replace('arch = "armv7e-m"', 'arch = "armv7-m"'), "key 'arch' is 'armv7-m' but cortex-m4 is armv7e-m"),
    (lambda s: s.replace("machine = ", "machin = "), "[qemu]: unknown key 'machin'"),
    (lambda s: s.replace('machine = "mps2-an386"\n', ""), "[qemu]: missing key 'machine'"),
    (lambda s: s[: s.index("[qemu]")] + s[s.index("[memory]") :], "an emulated board needs a [qemu] table"),
    (lambda s: s[: s.index("[memory]")], "missing table [memory]"),
    (lambda s: s.replace("ram = { origin = 0x20000000, length = 0x400000 }", ""), "[memory]: missing key 'ram'"),
    (lambda s: s.replace("length = 0x400000 }\nram", "length = 0x200000 }\nram"), "'flash_size' (4194304) must equal"),
    (
        lambda s: s.replace("origin = 0x20000000", 'origin = "0x20000000"'),
        "[memory.ram]: key 'origin' must be an integer",
    ),
    (lambda s: s.replace("origin = 0x20000000,", "origin = 0x20000000, size = 4,"), "[memory.ram]: unknown key 'size'"),
    (
        lambda s: s.replace("icount_step = 40.0", 'icount_step = "40"'),
        "key 'icount_step' must be a number, got str '40'",
    ),
]


@pytest.mark.parametrize("edit, message", BAD, ids=[m for _, m in BAD])
def test_malformed_board_file_names_the_file_and_key(tmp_path, edit, message):
    good = _valid_toml()
    bad = edit(good)
    assert bad != good
    p = tmp_path / "good.toml"
    p.write_text(bad)
    with pytest.raises(BoardError) as e:
        load_board_file(p)
    assert str(p) in str(e.value) and message in str(e.value)
    assert "\n" not in str(e.value)


def test_board_file_name_must_match_its_name(tmp_path):
    p = tmp_path / "other.toml"
    p.write_text(_valid_toml("good"))
    with pytest.raises(BoardError, match=r"key 'name' is 'good' but the file is other.toml"):
        load_board_file(p)


def test_missing_board_file(tmp_path):
    with pytest.raises(BoardError, match="cannot read the board file"):
        load_board_file(tmp_path / "nothing.toml")


# -- the strict schema: a board file is data, never a command (issue 8) -------------------------------------------
def _flags(*extra: str) -> Callable[[str], str]:
    """An edit that appends ``extra`` to the valid file's cflags."""
    listed = "".join(f", {json.dumps(f)}" for f in extra)
    return lambda s: s.replace('"-mfloat-abi=hard"]', f'"-mfloat-abi=hard"{listed}]')


def _no_memory(s: str) -> str:
    """The valid file as a compile-only board: no [qemu], no [memory], so the sizes stand alone."""
    return s[: s.index("[qemu]")].replace("emulated = true", "emulated = false")


HOSTILE = [  # (edit of the valid file, text the error must contain)
    (lambda s: s.replace('cpu = "cortex-m4"', 'cpu = "pentium"'), "key 'cpu' is 'pentium', not a Cortex-M CPU"),
    (lambda s: _no_memory(s).replace("flash_size = 0x400000", f"flash_size = {2**64}"), "key 'flash_size' must be positive and below 2^32, got 18446744073709551616"),
    (lambda s: _no_memory(s).replace("ram_size = 0x400000", f"ram_size = {2**32}"), "key 'ram_size' must be positive and below 2^32"),
    (lambda s: s.replace("\nemulated", f"\nstack_size = {2**40}\nemulated"), "key 'stack_size' must be positive and below 2^32"),
    (lambda s: s.replace("icount_step = 40.0", "icount_step = nan"), "key 'icount_step' must be a finite positive number below 2^32, got nan"),
    (lambda s: s.replace("icount_step = 40.0", "icount_step = inf"), "key 'icount_step' must be a finite positive number"),
    (lambda s: s.replace("icount_step = 40.0", "icount_step = -40.0"), "key 'icount_step' must be a finite positive number"),
    (lambda s: s.replace("icount_step = 40.0", "icount_step = 0"), "key 'icount_step' must be a finite positive number"),
    (_flags("$(shell touch FILE)"), "key 'cflags' flag '$(shell touch FILE)' is not a plain compiler flag"),
    (_flags("-DX=`id`"), "key 'cflags' flag '-DX=`id`' is not a plain compiler flag"),
    (_flags("-O2; rm -rf ~"), "is not a plain compiler flag"),
    (_flags("-O2\n"), "key 'cflags' flag '-O2\\n' is not a plain compiler flag"),
    (_flags('-DX="a"'), "is not a plain compiler flag"),
    (_flags("-I/etc"), "is not a plain compiler flag"),
    (_flags("-Wl,--just-symbols=x"), "key 'cflags' flag '-Wl,--just-symbols=x' is not an allowed flag; allowed: -mcpu="),
    (_flags("-save-temps"), "flag '-save-temps' is not an allowed flag"),
    (_flags("-fplugin=evil"), "flag '-fplugin=evil' is not allowed: -fplugin loads code into the compiler"),
    (_flags("-fdump-tree-all"), "flag '-fdump-tree-all' is not allowed"),
    (_flags("-DFOO=bar"), "flag '-DFOO=bar' is not an allowed flag"),
    (_flags("-D1X"), "flag '-D1X' is not an allowed flag"),
    (_flags("-Ox"), "flag '-Ox' is not an allowed flag"),
    (_flags("-mfpu=neon"), "flag '-mfpu=neon' has an FPU mcuq does not know"),
    (_flags("-mfloat-abi=weird"), "flag '-mfloat-abi=weird' has an unknown float ABI"),
    (_flags("-mthumb"), "key 'cflags' lists a flag twice: '-mthumb'"),
    (_flags("-mcpu=cortex-m7"), "key 'cflags' has more than one -mcpu= flag"),
    (lambda s: s.replace("-mcpu=cortex-m4", "-mcpu=cortex-m7"), "key 'cflags' must contain -mcpu=cortex-m4"),
    (_flags(*[f"-DX{i}" for i in range(40)]), "key 'cflags' has 44 flags; at most 32"),
    (lambda s: s.replace('machine = "mps2-an386"', 'machine = "mps2-an386 -version; touch FILE; true"'), "[qemu]: key 'machine' is 'mps2-an386 -version; touch FILE; true', not a QEMU machine mcuq supports"),
    (lambda s: s.replace('machine = "mps2-an386"', 'machine = "virt"'), "key 'machine' is 'virt', not a QEMU machine mcuq supports; one of: mps2-an385"),
    (lambda s: s.replace('machine = "mps2-an386"', 'machine = "mps2-an385"'), "[qemu]: key 'machine' mps2-an385 emulates a cortex-m3, the board's cpu is cortex-m4"),
    (lambda s: s.replace('description = "', 'description = "two\\nlines '), "key 'description' has a line break or unprintable character ('\\n')"),
    (lambda s: s.replace('description = "', 'description = "\\u001b[31mred '), "key 'description' has a line break or unprintable character ('\\x1b')"),
    (lambda s: s.replace('description = "', 'description = "\\u0000'), "key 'description' has a line break or unprintable character ('\\x00')"),
    (lambda s: s.replace('description = "', f'description = "{"x" * 200}'), "key 'description' is 233 characters long; at most 200"),
    (lambda s: s.replace('description = "Arm MPS2 AN386, Cortex-M4F (QEMU)"', 'description = "  "'), "key 'description' must not be empty"),
    (lambda s: s.replace('vendor = "Arm"', 'vendor = "Arm\\r"'), "key 'vendor' has a line break"),
    (lambda s: s.replace("\nemulated", '\nnotes = "ok\\n\\u001b]0;title\\u0007"\nemulated'), "key 'notes' has a control or unprintable character ('\\x1b')"),
    (lambda s: s.replace('name = "good"', 'name = "$(id)"'), "key 'name' is '$(id)'; use 1-64 letters, digits"),
    (lambda s: s.replace('cpu = "cortex-m4"', "cpu = 4"), "key 'cpu' must be a string, got int 4"),
    (lambda s: s.replace("[qemu]", "[[qemu]]"), "key 'qemu' must be a table, got list"),
    (lambda s: s.replace("origin = 0x20000000", "origin = -4"), "[memory.ram]: key 'origin' must not be negative"),
    (lambda s: s.replace("origin = 0x20000000", "origin = 0xFFFFF000"), "[memory.ram]: origin + length (0x1003ff000) must not exceed 2^32"),
    (lambda s: s.replace("origin = 0x20000000", "origin = 0x00100000"), "[memory]: the flash and ram regions overlap"),
    (lambda s: s.replace('"Arm"', '"Arm"\n"evil key" = 1'), "unknown key 'evil key'"),
]  # fmt: skip


@pytest.mark.parametrize("edit, message", HOSTILE, ids=[m[:60] for _, m in HOSTILE])
def test_board_schema_refuses_hostile_or_impossible_values(tmp_path, edit, message):
    """Every field is checked: known CPUs and QEMU machines, flags of a strict syntax from an allow-list, sizes
    below 2^32, finite numbers, printable one-line text. The error is one printable line naming file and key."""
    bad = edit(_valid_toml())
    p = tmp_path / "good.toml"
    p.write_text(bad)
    with pytest.raises(BoardError) as e:
        load_board_file(p)
    msg = str(e.value)
    assert msg.startswith(str(p)) and message in msg, msg
    assert msg.isprintable() and len(msg) < 400


ALLOWED_FLAGS = ("-O2", "-Os", "-DHSE_VALUE=25000000", "-DARM_MATH_CM4", "-DX=0x10u", "-ffunction-sections",
                 "-fno-common", "-mno-unaligned-access", "-march=armv7e-m", "-fstack-usage")  # fmt: skip


def test_board_schema_accepts_ordinary_flags_and_other_cortex_m_machines(tmp_path):
    p = tmp_path / "good.toml"
    p.write_text(_flags(*ALLOWED_FLAGS)(_valid_toml()))
    assert load_board_file(p).cflags[-len(ALLOWED_FLAGS) :] == ALLOWED_FLAGS
    m3 = (
        (BOARDS / "mps2-an385.toml")
        .read_text()
        .replace('"mps2-an385"', '"lm3s"', 1)
        .replace('machine = "mps2-an385"', 'machine = "lm3s6965evb"')
    )
    (tmp_path / "lm3s.toml").write_text(m3)
    assert load_board_file(tmp_path / "lm3s.toml").qemu_machine == "lm3s6965evb"


def test_board_schema_knows_the_usual_cortex_m_cpus():
    for cpu in ("cortex-m0", "cortex-m0plus", "cortex-m3", "cortex-m4", "cortex-m7", "cortex-m23", "cortex-m33",
                "cortex-m35p", "cortex-m55", "cortex-m85"):  # fmt: skip
        assert cpu in board_schema.CPU_ARCH
    assert {b.cpu for b in list_boards()} <= set(board_schema.CPU_ARCH) | {"host"}
    assert {b.qemu_machine for b in list_boards() if b.emulated} <= set(board_schema.QEMU_MACHINES)


def test_host_board_file_has_no_compiler_flags(tmp_path):
    p = tmp_path / "myhost.toml"
    p.write_text('name = "myhost"\ndescription = "h"\ncpu = "host"\nemulated = false\ncflags = ["-O2"]\n')
    with pytest.raises(BoardError, match=r"myhost.toml: key 'cflags' is for Cortex-M boards; the host board builds"):
        load_board_file(p)


@pytest.mark.parametrize(
    "content, message",
    [
        (
            b"\x7fELF\x02\x01\x01\x00\xff\xfe" + bytes(range(256)),
            "not a board file: not UTF-8 text (byte 0xff at offset 8)",
        ),
        (b'name = "good"\x00\n', "not a board file: it holds a NUL byte"),
        (b"\xff\xfename", "not UTF-8 text (byte 0xff at offset 0)"),
        (b"x = 1\n" * 20000, "not a board file (larger than 65,536 bytes)"),
        (b"[[[", "not valid TOML"),
    ],
    ids=["elf", "nul", "utf16-bom", "huge", "garbage"],
)
def test_binary_or_non_utf8_board_file_is_a_one_line_error(tmp_path, content, message):
    p = tmp_path / "good.toml"
    p.write_bytes(content)
    with pytest.raises(BoardError) as e:
        load_board_file(p)
    msg = str(e.value)
    assert msg.startswith(f"{p}: ") and message in msg and msg.isprintable(), msg


def test_board_that_is_a_directory_or_not_a_name(tmp_path):
    (tmp_path / "dir.toml").mkdir()
    with pytest.raises(BoardError, match=r"dir.toml: cannot read the board file \(Is a directory\)"):
        load_board(str(tmp_path / "dir.toml"))
    with pytest.raises(BoardError, match=r"cannot read the board file \(embedded null byte\)"):
        load_board("a\x00b.toml")
    for wrong in (None, 3, b"host"):
        with pytest.raises(BoardError, match="board must be a board name or a path to a .toml file"):
            load_board(wrong)


# -- fit check ----------------------------------------------------------------------------------------------------
def big_fc_graph(n_in: int = 700, n_out: int = 400) -> ir.Graph:
    """input [1, n_in] -> FULLY_CONNECTED -> [1, n_out]: n_in * n_out bytes of int8 weights."""
    rng = np.random.default_rng(1)
    q = lambda s, z: ir.QParams((s,), (z,))  # noqa: E731
    tensors = {
        "x": ir.Tensor("x", (1, n_in), ir.DType.INT8, q(0.05, 0)),
        "dense/MatMul": ir.Tensor(
            "dense/MatMul",
            (n_out, n_in),
            ir.DType.INT8,
            q(0.01, 0),
            rng.integers(-127, 128, size=(n_out, n_in)).astype(np.int8),
        ),
        "dense/bias": ir.Tensor("dense/bias", (n_out,), ir.DType.INT32, q(0.0005, 0), np.zeros(n_out, np.int32)),
        "y": ir.Tensor("y", (1, n_out), ir.DType.INT8, q(0.1, 0)),
    }
    op = ir.Op(
        ir.OpKind.FULLY_CONNECTED,
        "dense",
        ("x", "dense/MatMul", "dense/bias"),
        ("y",),
        ir.FullyConnectedAttrs(ir.Activation.NONE),
        0,
    )
    return ir.Graph("big_fc", tensors, (op,), ("x",), ("y",), source="big_fc.tflite")


@pytest.fixture(scope="module")
def big_fc():
    return compile_model(big_fc_graph(), prefix="big_fc", sanitize=False)


def small_board(flash: int, ram: int) -> Board:
    return Board(
        name="small-m4",
        description="test board",
        cpu="cortex-m4",
        emulated=False,
        arch="armv7e-m",
        cflags=("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=soft"),
        flash_size=flash,
        ram_size=ram,
    )


def expected_flash(cm) -> int:
    kernels = code_bytes_of({la.kernel.name for la in cm.layers if la.kernel})
    calls = sum(1 for c in cm.model.calls if c.kernel)
    return cm.model.const_bytes + MODEL_BASE_BYTES + LAYER_CODE_BYTES * calls + kernels + LIBGCC_BYTES + STARTUP_BYTES


def test_tiny_model_fits_every_board():
    cm = compile_model(tiny_fc_bytes(), prefix="tiny", sanitize=False)
    for b in list_boards():
        r = check_fit(b, cm.footprint())
        assert r.fits and r.flash_needed == expected_flash(cm)
        assert (r.flash_available, r.ram_available) == (b.flash_size, b.ram_size)
        assert r.ram_needed == cm.plan.arena_size + 8 + 4 + b.stack_size + STATIC_RAM_BYTES
    host = check_fit(load_board("host"), cm.footprint())
    assert host.flash_available is None and host.fits and len(host.lines()) == 2


def test_flash_overflow_gives_the_numbers_and_the_largest_weight_array(big_fc):
    need = expected_flash(big_fc)
    assert big_fc.model.weight_bytes == 700 * 400 + 4 * 400 and need > 256 * K
    with pytest.raises(FitError) as e:
        check_fit(small_board(256 * K, 64 * K), big_fc.footprint())
    msg = str(e.value)
    assert msg.startswith(
        f"big_fc.tflite: does not fit small-m4: needs {need:,} B of flash, has 262,144 B "
        f"({need - 262144:,} B over); largest weight array: 'dense/MatMul' 280,000 B "
        "(op 0 FULLY_CONNECTED). Choose a board with more memory"
    )
    assert "RAM" not in msg and "\n" not in msg


def test_ram_overflow_names_the_largest_layer(big_fc):
    r = check_fit(small_board(1 * M, 64 * K), big_fc.footprint())
    ram = r.ram_needed
    with pytest.raises(FitError) as e:
        check_fit(small_board(1 * M, 2 * K), big_fc.footprint())
    assert str(e.value).startswith(
        f"big_fc.tflite: does not fit small-m4: needs {ram:,} B of RAM, has 2,048 B "
        f"({ram - 2048:,} B over); largest layer: op 0 FULLY_CONNECTED 'dense', "
        "1,100 B of inputs and outputs."
    )


def test_both_overflows_in_one_line(big_fc):
    with pytest.raises(FitError, match=r"B of flash, has 1,024 B .*; needs .* B of RAM, has 1,024 B") as e:
        check_fit(small_board(1024, 1024), big_fc.footprint())
    assert "\n" not in str(e.value)


def test_hooks_cost_flash(big_fc):
    b = load_board(DEFAULT_BOARD)
    plain, hooked = check_fit(b, big_fc.footprint()), check_fit(b, big_fc.footprint(), hooks=True)
    assert hooked.flash_needed > plain.flash_needed and hooked.ram_needed == plain.ram_needed


def test_check_fit_elf(big_fc):
    sizes = {"text": 288000, "data": 16, "bss": 4000, "dec": 0, "weights": 1}  # arm-none-eabi-size's text
    b = small_board(300 * K, 8 * K)
    r = check_fit_elf(b, sizes, fp=big_fc.footprint())
    assert r.exact and r.flash_needed == 288016 and r.ram_needed == 4016 and "(estimate)" not in r.lines()[0]
    split = check_fit_elf(b, {**sizes, "code": 6000, "rodata": 282000, "arena": 1200, "stack": 2048})
    assert split.flash == (("code", 6000), ("rodata", 282000), ("data", 16))
    assert split.ram == (("data", 16), ("arena", 1200), ("stack", 2048), ("other bss", 752))
    assert (split.flash_needed, split.ram_needed) == (r.flash_needed, r.ram_needed)
    with pytest.raises(
        FitError,
        match=r"^firmware: does not fit small-m4: needs 288,016 B of flash, has 262,144 B \(25,872 B over\)\. ",
    ):
        check_fit_elf(small_board(256 * K, 8 * K), sizes)
    with pytest.raises(FitError, match=r"needs 4,016 B of RAM, has 4,000 B \(16 B over\); largest layer: op 0"):
        check_fit_elf(small_board(1 * M, 4000), sizes, fp=big_fc.footprint())
    with pytest.raises(ValueError, match="sizes\\['bss'\\]"):
        check_fit_elf(b, {"text": 1, "data": 1})


@pytest.mark.models
def test_mlperf_models_fit_the_big_boards_and_ad01_fails_on_256k(shared_models):
    cms = {n: compile_model(shared_models / "mlperf_tiny" / f"{n}.tflite", sanitize=False) for n in MLPERF}
    for name in ("mps2-an386", "mps3-an547", "nucleo-h743zi", "nucleo-u575zi", "nrf52840", "alif-ensemble-e7"):
        for cm in cms.values():
            assert check_fit(load_board(name), cm.footprint(), hooks=True).fits
    tiny_flash = replace(load_board("nrf52840"), name="nrf52832", flash_size=256 * K, ram_size=64 * K)
    with pytest.raises(FitError) as e:
        check_fit(tiny_flash, cms["ad01_int8"].footprint())
    need = expected_flash(cms["ad01_int8"])
    assert re.search(
        rf"ad01_int8\.tflite: does not fit nrf52832: needs {need:,} B of flash, has 262,144 B "
        rf"\({need - 262144:,} B over\); largest weight array: '[^']+' 81,920 B \(op \d+ FULLY_CONNECTED\)",
        str(e.value),
    )


# -- against the real toolchain ------------------------------------------------------------------------------------
@pytest.mark.qemu
@needs_gcc
def test_kernel_code_table_still_holds(tmp_path):
    """Every runtime kernel compiled for each board's flags is no larger than the fit check assumes (25 % slack:
    update the kernel's code_bytes in mcuq/kernels/ when this fails); every source belongs to a registered kernel."""
    srcs = sorted((RUNTIME_C / "src").glob("*/*.c"))
    budgets = {k.sources[0]: k.code_bytes for k in KERNELS.values()}
    assert set(budgets) == {f"{s.parent.name}/{s.name}" for s in srcs}, "a runtime source without a kernel entry"
    by_isa = {(b.arch, b.features): tuple(b.cflags) for b in list_boards() if not b.is_host}  # one per code path
    flag_sets = sorted(set(by_isa.values()))
    procs = []
    for i, flags in enumerate(flag_sets):  # one compiler run per flag set, all at once
        d = tmp_path / str(i)
        d.mkdir()
        cmd = ["arm-none-eabi-gcc", *flags, "-O2", "-std=c99", "-ffunction-sections", f"-I{RUNTIME_C / 'include'}"]
        procs.append((flags, d, subprocess.Popen([*cmd, "-c", *map(str, srcs)], cwd=d)))
    for flags, d, proc in procs:
        assert proc.wait(timeout=300) == 0, f"compiling the runtime with {' '.join(flags)} failed"
        objs = [str(d / f"{src.stem}.o") for src in srcs]
        out = subprocess.run(["arm-none-eabi-size", *objs], capture_output=True, text=True, timeout=60, check=True)
        for src, line in zip(srcs, out.stdout.splitlines()[1:]):
            size, budget = int(line.split()[0]), budgets[f"{src.parent.name}/{src.name}"]
            assert size <= budget * 1.25, f"{src.stem} is {size} B with {' '.join(flags)}; the table says {budget}"


PROBE_C = r"""
#include <stdint.h>
extern uint32_t __stack_top;
static int sh(int op, void *arg) {
    register int r0 __asm__("r0") = op;
    register void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}
static void sh_exit(int code) { uint32_t blk[2] = {0x20026u, (uint32_t)code}; sh(0x20, blk); for (;;) {} }
void fault(void) { sh(0x04, (void *)"FAULT\n"); sh_exit(3); }
__attribute__((section(".flashend"), used)) const uint32_t flash_last = 0xC0FFEE42u;
void reset(void) {
    volatile uint32_t *first = (volatile uint32_t *)RAM_START, *last = (volatile uint32_t *)(RAM_END - 4u);
    *first = 0x9abcdef0u;
    *last = 0x12345678u;
    int ok = *first == 0x9abcdef0u && *last == 0x12345678u && *(volatile const uint32_t *)(FLASH_END - 4u) == 0xC0FFEE42u;
    sh(0x04, ok ? (void *)"PROBE_OK\n" : (void *)"PROBE_BAD\n");
    sh_exit(ok ? 0 : 1);
}
__attribute__((section(".vectors"), used)) void (*const vectors[4])(void) = {(void (*)(void))&__stack_top, reset, fault, fault};
"""


@pytest.mark.qemu
@needs_gcc
@pytest.mark.parametrize("name", sorted(QEMU_BOARDS))
def test_memory_regions_work_in_qemu(tmp_path, name):
    """A probe ELF linked with the board's regions writes the first and last RAM word and reads the last flash word."""
    b = load_board(name)
    f, r = b.flash_region, b.ram_region
    (tmp_path / "probe.c").write_text(PROBE_C)
    (tmp_path / "probe.ld").write_text(
        f"MEMORY {{ FLASH (rx) : ORIGIN = {f.origin:#x}, LENGTH = {f.length:#x}\n"
        f"         RAM (rwx) : ORIGIN = {r.origin:#x}, LENGTH = {r.length:#x} }}\n"
        "ENTRY(reset)\nSECTIONS {\n .text : { KEEP(*(.vectors)) *(.text*) *(.rodata*) } > FLASH\n"
        " .flashend ORIGIN(FLASH) + LENGTH(FLASH) - 4 : { KEEP(*(.flashend)) } > FLASH\n"
        " __stack_top = ORIGIN(RAM) + LENGTH(RAM);\n}\n"
    )
    elf = tmp_path / "probe.elf"
    defs = [f"-DFLASH_END={f.end:#x}u", f"-DRAM_START={r.origin:#x}u", f"-DRAM_END={r.end:#x}u"]
    cmd = [
        "arm-none-eabi-gcc",
        *b.cflags,
        "-O2",
        "-std=c99",
        "-Wall",
        "-Wextra",
        "-Werror",
        *defs,
        str(tmp_path / "probe.c"),
        "-T",
        str(tmp_path / "probe.ld"),
        "-nostartfiles",
        "-nostdlib",
        "-o",
        str(elf),
    ]
    subprocess.run(cmd, check=True, timeout=120)
    from mcuq.firmware.project import board_info, qemu_machine_args

    qemu = ["qemu-system-arm", *qemu_machine_args(board_info(b)), "-kernel", str(elf)]
    proc = subprocess.run(qemu, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0 and "PROBE_OK" in proc.stdout, proc.stdout + proc.stderr


@pytest.mark.qemu
@needs_gcc
@pytest.mark.parametrize("hooks", [False, True])
def test_estimate_bounds_the_linked_firmware(tmp_path, hooks):
    """check_fit's estimate is an upper bound of the real firmware (within 4 KB), and check_fit_elf agrees with
    arm-none-eabi-size."""
    qemu = pytest.importorskip("mcuq.firmware.qemu")
    elfsize = pytest.importorskip("mcuq.firmware.elfsize")
    cm = compile_model(tiny_fc_bytes(), prefix="tiny", sanitize=False)
    board = load_board(DEFAULT_BOARD)
    elf = qemu.build_firmware(cm, board, tmp_path, hooks)
    exact = check_fit_elf(board, elfsize.elf_sizes(elf, cm.prefix), fp=cm.footprint())
    berkeley = elfsize.arm_size(elf)
    assert exact.flash_needed == berkeley["text"] + berkeley["data"]
    assert exact.ram_needed == berkeley["data"] + berkeley["bss"]
    estimate = check_fit(board, cm.footprint(), hooks)
    assert 0 <= estimate.flash_needed - exact.flash_needed < 4096
    assert 0 <= estimate.ram_needed - exact.ram_needed < 1024
