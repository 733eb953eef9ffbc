"""Exact instruction counts (QEMU TCG plugin) and the flash/RAM report.

- the plugin against QEMU's own single-step trace on a hand-written bare-metal program: every marker event's
  count equals the number of instructions the trace shows before that marker's entry, and the total matches;
- a model's per-layer counts are identical across two runs and add up to the inference total up to the hook
  calls between layers (a few instructions per layer);
- a single CONV_2D layer at three sizes: instructions grow linearly with MACs (a fixed overhead plus a constant
  cost per MAC), predicted within 2 %;
- the size report equals arm-none-eabi-size, and its parts add up.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

import mcuq
from mcuq import ir
from mcuq.firmware.elfsize import arm_size, elf_sizes
from mcuq.firmware.plugin import plugin_args, read_events
from mcuq.firmware.profile import MARKERS, format_text, marker_addresses, profile, to_json
from tests.conftest import ROOT, have_arm_toolchain

pytestmark = [
    pytest.mark.qemu,
    pytest.mark.skipif(
        not have_arm_toolchain(),
        reason="arm-none-eabi-gcc or qemu-system-arm not installed (`make setup` installs them)",
    ),
]

BOARD = "mps2-an386"
TIMEOUT = 120

# A bare-metal program whose markers surround a loop of known length: work(n) runs 3 n + 1 instructions.
PROGRAM = r"""
#include <stdint.h>
extern uint32_t _estack;
void Reset_Handler(void);
static int semi(int op, const void *arg) {
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}
static void sys_exit(int code) {
    uint32_t blk[2] = {0x20026u, (uint32_t)code};
    semi(0x20, blk);
    for (;;) {}
}
__attribute__((section(".isr_vector"), used)) const void *vectors[4] = {&_estack, (void *)Reset_Handler, 0, 0};
volatile int32_t marker;
__attribute__((noipa, used)) void mcuq_invoke_begin(void) { marker = -1; }
__attribute__((noipa, used)) void mcuq_invoke_end(void) { marker = -2; }
__attribute__((noipa, used)) void mcuq_layer_begin(int32_t i, const char *n) { (void)n; marker = i; }
__attribute__((noipa, used)) void mcuq_layer_end(int32_t i, const char *n, const void *o, int32_t b) {
    (void)n; (void)o; (void)b; marker = i + 100;
}
__attribute__((noipa, naked)) void work(uint32_t n) {
    __asm__ volatile("1: subs r0, r0, #1\n nop\n bne 1b\n bx lr\n");
}
volatile uint32_t iters;
int main(void) {
    iters = 1000;
    mcuq_invoke_begin();
    for (int32_t l = 0; l < 3; l++) {
        mcuq_layer_begin(l, "x");
        work(iters * (uint32_t)(l + 1));
        mcuq_layer_end(l, "x", 0, 0);
    }
    mcuq_invoke_end();
    return 0;
}
void Reset_Handler(void) { sys_exit(main()); }
"""

LINKER = """
MEMORY { FLASH (rx) : ORIGIN = 0x00000000, LENGTH = 4M
         RAM (rwx) : ORIGIN = 0x20000000, LENGTH = 4M }
ENTRY(Reset_Handler)
SECTIONS {
  .text : { KEEP(*(.isr_vector)) *(.text*) } > FLASH
  .rodata : { *(.rodata*) } > FLASH
  .bss (NOLOAD) : { *(.bss*) *(COMMON) } > RAM
  _estack = ORIGIN(RAM) + LENGTH(RAM);
}
"""

QEMU = f"qemu-system-arm -M {BOARD} -display none -serial null -monitor none".split() + [
    "-semihosting-config",
    "enable=on,target=native",
]
CC = "arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -mfloat-abi=soft -O2 -std=gnu99 -Wall -Werror -ffreestanding"


def _run(cmd: list[str], cwd: Path) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stdout}{proc.stderr}"


def test_plugin_matches_single_step_trace(tmp_path: Path) -> None:
    (tmp_path / "t.c").write_text(PROGRAM)
    (tmp_path / "t.ld").write_text(LINKER)
    _run([*CC.split(), "-nostartfiles", "-nostdlib", "-T", "t.ld", "t.c", "-o", "t.elf", "-lgcc"], tmp_path)
    marks = marker_addresses(tmp_path / "t.elf")
    _run([*QEMU, *plugin_args(tmp_path / "events.txt", marks), "-kernel", "t.elf"], tmp_path)
    ev = read_events(tmp_path / "events.txt")
    # One translation block per instruction, each logged as it executes: the trace lists every executed pc.
    _run([*QEMU, "-singlestep", "-d", "exec,nochain", "-D", "trace.log", "-kernel", "t.elf"], tmp_path)
    pcs = [
        int(m.group(1), 16)
        for m in re.finditer(r"^Trace \d+: \S+ \[[0-9a-f]+/([0-9a-f]+)/", (tmp_path / "trace.log").read_text(), re.M)
    ]
    assert ev.total == len(pcs)
    addr_to_mark = {a: m for m, a in marks.items()}
    expected = [(addr_to_mark[pc], i) for i, pc in enumerate(pcs) if pc in addr_to_mark]
    assert list(ev.events) == expected  # the count excludes the marker's own first instruction
    begins = [c for m, c in ev.events if m == MARKERS["mcuq_layer_begin"]]
    ends = [c for m, c in ev.events if m == MARKERS["mcuq_layer_end"]]
    layer = [e - b for b, e in zip(begins, ends)]
    assert [layer[1] - layer[0], layer[2] - layer[1]] == [3000, 3000]  # 3 instructions per extra iteration


@pytest.fixture(scope="module")
def digits() -> mcuq.api.CompiledModel:
    return mcuq.compile_model(ROOT / "examples" / "digits_cnn.tflite", sanitize=False)


@pytest.fixture(scope="module")
def digits_profiles(digits, tmp_path_factory) -> tuple:
    keep = tmp_path_factory.mktemp("digits")
    x = np.random.default_rng(1).integers(-128, 128, size=(3, *digits.graph.tensors[digits.graph.inputs[0]].shape))
    first = profile(digits, BOARD, inputs=x.astype(np.int8), keep_dir=keep)
    second = profile(digits, BOARD, inputs=x.astype(np.int8))
    return first, second, keep


def test_counts_repeatable_and_consistent(digits, digits_profiles) -> None:
    first, second, _ = digits_profiles
    assert first == second
    assert len(first.invokes) == 3 and len(first.layers) == len(digits.layers)
    assert [r.macs for r in first.layers] == [layer.macs for layer in digits.layers]
    for row, layer in zip(first.layers, digits.layers):
        if layer.alias:  # no kernel runs: the count is the hook overhead alone
            assert 0 < row.instructions <= 16, row
        else:
            assert row.instructions > 100, row
    # The inference total is the layers plus the hook calls between them and invoke's own checks.
    assert 0 < first.glue <= 12 * len(first.layers) + 40
    assert first.instructions == first.layer_instructions + first.glue


def test_report_text_and_json(digits, digits_profiles) -> None:
    p = digits_profiles[0]
    text = format_text(p)
    for layer in digits.layers:
        assert layer.op.name in text
    assert f"{p.instructions:,}" in text and "arena" in text
    d = json.loads(to_json(p))
    assert d["totals"]["instructions"] == p.instructions
    assert d["totals"]["macs"] == sum(layer.macs for layer in digits.layers)
    assert [row["instructions"] for row in d["layers"]] == [r.instructions for r in p.layers]
    assert d["sizes"]["arena"] == digits.plan.arena_size


def test_size_report_matches_arm_size(digits, digits_profiles) -> None:
    elf = next((digits_profiles[2] / "sizes").rglob("*.elf"))  # sizes: the build without hooks
    s = elf_sizes(elf, digits.prefix)
    assert {k: s[k] for k in ("text", "data", "bss", "dec")} == arm_size(elf)
    assert s["code"] + s["rodata"] == s["text"] and s["flash"] == s["text"] + s["data"]
    assert s["arena"] == digits.plan.arena_size
    assert s["stack"] > 0 and s["ram_other"] >= 0 and s["arena"] + s["stack"] + s["ram_other"] == s["ram"]
    # The model's own constants: every weight and parameter array, plus the parameter structs.
    assert digits.model.const_bytes <= s["weights"] <= s["rodata"]
    assert digits_profiles[0].sizes == s


def conv_graph(h: int, cout: int, w: int = 8, cin: int = 8, seed: int = 0) -> ir.Graph:
    """One 3x3 VALID CONV_2D, per-channel int8, input [1, h + 2, w + 2, cin] -> output [1, h, w, cout]."""
    rng = np.random.default_rng(seed)
    s_w = tuple(float(np.float32(s)) for s in rng.uniform(0.002, 0.02, size=cout))
    tensors = {
        "x": ir.Tensor("x", (1, h + 2, w + 2, cin), ir.DType.INT8, ir.QParams((0.02,), (-5,))),
        "w": ir.Tensor(
            "w",
            (cout, 3, 3, cin),
            ir.DType.INT8,
            ir.QParams(s_w, (0,) * cout, 0),
            rng.integers(-127, 128, size=(cout, 3, 3, cin)).astype(np.int8),
        ),
        "b": ir.Tensor(
            "b",
            (cout,),
            ir.DType.INT32,
            ir.QParams(tuple(float(np.float32(0.02 * s)) for s in s_w), (0,) * cout),
            rng.integers(-2000, 2000, size=cout).astype(np.int32),
        ),
        "y": ir.Tensor("y", (1, h, w, cout), ir.DType.INT8, ir.QParams((0.05,), (3,))),
    }
    op = ir.Op(ir.OpKind.CONV2D, "conv", ("x", "w", "b"), ("y",), ir.Conv2DAttrs(ir.Padding.VALID), 0)
    return ir.Graph(f"conv_h{h}_c{cout}", tensors, (op,), ("x",), ("y",))


def _conv_instructions(h: int, cout: int) -> tuple[int, int]:
    cm = mcuq.compile_model(
        conv_graph(h, cout), sanitize=False, kernels="portable"
    )  # a fast kernel has per-pixel set-up
    p = profile(cm, BOARD)
    (row,) = p.layers
    return row.macs, row.instructions


@pytest.mark.parametrize(
    "sizes", [((4, 16), (8, 16), (16, 16)), ((4, 8), (4, 16), (4, 32))], ids=["spatial", "channels"]
)
def test_conv_instructions_grow_with_macs(sizes) -> None:
    """instructions = fixed + k * MACs: fit fixed and k on the two smaller layers, predict the largest."""
    (m1, i1), (m2, i2), (m4, i4) = (_conv_instructions(h, c) for h, c in sizes)
    assert m2 == 2 * m1 and m4 == 4 * m1
    k = (i2 - i1) / (m2 - m1)
    fixed = i1 - k * m1
    assert 0 < k < 50 and abs(fixed) < 0.2 * i1, (k, fixed)
    assert abs((fixed + k * m4) - i4) <= 0.02 * i4, (i1, i2, i4)
    # the same statement as a ratio: after the fixed overhead, instructions scale like MACs
    assert (i4 - fixed) / (i1 - fixed) == pytest.approx(m4 / m1, rel=0.02)


def test_shared_model_on_m55(shared_models: Path) -> None:
    """KWS on the Cortex-M55: every layer counted, totals consistent, sizes equal to arm-none-eabi-size."""
    cm = mcuq.compile_model(shared_models / "mlperf_tiny" / "kws_ref_model.tflite", sanitize=False)
    p = profile(cm, "mps3-an547")
    assert p.board == "mps3-an547" and len(p.layers) == len(cm.layers)
    assert p.macs == sum(layer.macs for layer in cm.layers) > 2_000_000
    assert 0 < p.glue <= 12 * len(p.layers) + 40
    assert 0.01 < p.macs_per_instruction < 4  # portable C needs several instructions per MAC; MVE under one
    assert p.sizes["arena"] == cm.plan.arena_size and p.weight_bytes == cm.model.weight_bytes


@pytest.mark.parametrize("board", ["mps2-an385", "mps2-an500", "mps2-an505", "mps3-an547"])
def test_other_emulated_boards(digits, board: str, tmp_path: Path) -> None:
    p = profile(digits, board, keep_dir=tmp_path)
    assert p.board == board and len(p.layers) == len(digits.layers)
    assert all(r.instructions > 0 for r in p.layers) and 0 < p.glue <= 12 * len(p.layers) + 40
    elf = next((tmp_path / "sizes").rglob("*.elf"))
    assert {k: p.sizes[k] for k in ("text", "data", "bss", "dec")} == arm_size(elf)


DIGITS = ROOT / "examples" / "digits_cnn.tflite"


def _nm_sizes(elf: Path) -> dict[str, int]:
    out = subprocess.run(["arm-none-eabi-nm", "-S", str(elf)], capture_output=True, text=True, timeout=TIMEOUT)
    sizes = {}
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2] in "tT":
            sizes[parts[3]] = int(parts[1], 16)
    return sizes


@pytest.mark.parametrize("kernels", ["portable", "dsp"])
def test_kernel_path_and_code_per_kernel(kernels: str, tmp_path: Path) -> None:
    """The profile of a CompiledModel names its kernel path and each layer's kernel, splits the code among the
    linked kernels (each entry point counted in its own kernel) and carries the plan's summary."""
    from mcuq.kernels import KERNELS

    cm = mcuq.compile_model(DIGITS, board=BOARD, sanitize=False, kernels=kernels)
    p = profile(cm, BOARD, keep_dir=tmp_path)
    assert p.kernels == cm.kernels == kernels
    assert [r.kernel for r in p.layers] == [layer.kernel_name for layer in cm.layers]
    assert all(KERNELS[r.kernel].variant in ("portable", kernels) for r in p.layers if r.kernel)
    used = {layer.kernel_name for layer in cm.layers if layer.kernel_name}
    assert set(p.kernel_code) == used | {"model", "other"}
    assert 0.95 * p.sizes["code"] <= sum(p.kernel_code.values()) <= p.sizes["code"]  # all but alignment padding
    nm = _nm_sizes(next((tmp_path / "sizes").rglob("*.elf")))
    for k in used:
        assert p.kernel_code[k] >= nm[k] + nm.get(f"{k}_scratch_size", 0) > 0, k
    assert p.kernel_code["model"] >= nm[f"{cm.prefix}_invoke"] > 0
    assert p.plan and p.plan[0].startswith("arena") and p.plan_numbers["arena_size"] == cm.plan.arena_size
    assert p.text_without_weights == p.sizes["text"] - p.sizes["weights"] > 0


def test_cli_bench_kernels(capsys) -> None:
    """`mcuq bench --kernels portable --json` and the default (auto: dsp on the Cortex-M4) in text."""
    from mcuq.cli import main
    from mcuq.kernels import KERNELS

    assert main(["bench", str(DIGITS), "--board", BOARD, "--kernels", "portable", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["kernels"] == "portable" and d["board"] == BOARD
    assert all(KERNELS[row["kernel"]].variant == "portable" for row in d["layers"] if row["kernel"])
    assert {row["kernel"] for row in d["layers"] if row["kernel"]} <= set(d["kernel_code"])
    assert d["sizes"]["text_without_weights"] > 0 and d["plan"]["summary"][0].startswith("arena")
    assert d["totals"]["macs_per_instruction"] > 0
    assert main(["bench", str(DIGITS), "--board", BOARD]) == 0
    text = capsys.readouterr().out
    assert f"on {BOARD} (kernels dsp)" in text and "instr/MAC" in text and "kernel" in text
    assert "code (.text) by kernel" in text and ".text without the model's weights" in text and "arena plan:" in text
