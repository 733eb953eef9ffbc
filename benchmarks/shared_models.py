"""`make bench`: compile every model in ../shared/models and tabulate ops, MACs, weights and arena vs TFLM; on the
emulated Cortex-M boards, instructions per inference of the reference (portable) and the optimized (auto) kernel
path, against TFLM + CMSIS-NN and the targets of issue 10, with arena, code and weight bytes.

Usage: python benchmarks/shared_models.py [--write docs/benchmarks.md]

With --write, the tables replace the blocks between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->`` markers,
so the prose around them may be edited by hand; a file without every marker gets the default prose from this
script (and keeps its sections listed in KEPT_SECTIONS, e.g. the PTQ section of `make bench-ptq`).
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import mcuq

ROOT = Path(__file__).resolve().parent.parent
MODELS = Path(os.environ.get("MCUQ_MODELS", ROOT.parent / "shared" / "models"))

# (file, TFLM arena bytes on x86-64 with reference kernels, from ../shared/models/README.md)
CASES = [
    ("mlperf_tiny/kws_ref_model.tflite", 24272),
    ("mlperf_tiny/vww_96_int8.tflite", 103680),
    ("mlperf_tiny/pretrainedResnet_quant.tflite", 55984),
    ("mlperf_tiny/ad01_int8.tflite", 3984),
    ("tflm/hello_world_int8.tflite", 1504),
]

M4, M55 = "mps2-an386", "mps3-an547"
QEMU_BOARDS = (M4, M55)


@dataclass(frozen=True)
class Tflm:
    """TFLM + CMSIS-NN, instructions per inference counted the same way in QEMU (issue 10), and its M4 build."""

    instructions: dict[str, int]  # board -> instructions per inference
    arena: int  # M4 arena bytes
    text: int  # M4 .text bytes


TFLM = {
    "kws_ref_model": Tflm({M4: 7_699_895, M55: 1_815_811}, 22_832, 83_968),
    "vww_96_int8": Tflm({M4: 24_101_965, M55: 6_558_339}, 100_720, 83_968),
    "pretrainedResnet_quant": Tflm({M4: 29_863_355, M55: 4_911_698}, 55_008, 78_848),
    "ad01_int8": Tflm({M4: 582_947, M55: 149_998}, 3_024, 31_680),
}

# Targets of issue 10 for the optimized path: MACs per instruction per board, arena bytes (every board), and .text
# without weights on the M4 (kB = 1,024 bytes).
MAC_TARGETS = {
    M4: dict.fromkeys(TFLM, 0.65),
    M55: {"kws_ref_model": 2.3, "vww_96_int8": 1.8, "pretrainedResnet_quant": 4.0, "ad01_int8": 2.8},
}
ARENA_TARGETS = {"kws_ref_model": 9_000, "vww_96_int8": 28_000, "pretrainedResnet_quant": 36_000, "ad01_int8": 256}
TEXT_TARGETS = {
    M4: {"kws_ref_model": 16_384, "vww_96_int8": 16_384, "pretrainedResnet_quant": 16_384, "ad01_int8": 8_192}
}


def row(path: Path, tflm: int) -> list[str]:
    t0 = time.perf_counter()
    cm = mcuq.compile_model(path)
    secs = time.perf_counter() - t0
    ops = collections.Counter(layer.op.type_name for layer in cm.layers)
    ops_s = ", ".join(f"{k} x{v}" if v > 1 else k for k, v in sorted(ops.items(), key=lambda kv: (-kv[1], kv[0])))
    macs = sum(layer.macs for layer in cm.layers)
    weights = sum(t.nbytes for t in cm.graph.tensors.values() if t.is_const)
    arena = cm.plan.arena_size
    io = sum(cm.graph.tensors[n].nbytes for n in (*cm.graph.inputs, *cm.graph.outputs))
    return [
        path.stem,
        ops_s,
        f"{macs:,}",
        f"{weights:,}",
        f"{cm.model.const_bytes:,}",
        f"{arena:,}",
        f"{cm.plan.lower_bound:,}",
        f"{arena + io:,}",
        f"{tflm:,}",
        f"{arena / tflm:.3f}",
        f"{secs:.2f}",
    ]


HEADER = [
    "model",
    "ops",
    "MACs",
    "weight bytes (model)",
    "constants in C",
    "arena",
    "liveness bound",
    "arena + I/O buffers",
    "TFLM arena",
    "arena / TFLM",
    "compile s",
]


@dataclass(frozen=True)
class Measurement:
    """One model on one board with one kernel path: what `mcuq bench` measures."""

    model: str
    board: str
    path: str  # the kernel path compiled: portable, dsp or mve
    macs: int
    instructions: int
    arena: int
    code: int  # executable sections
    text_without_weights: int  # read-only flash (.text + .rodata) less the model's weights and parameters
    weights: int  # the model's constant arrays and parameter structs in flash
    flash: int
    ram: int
    stack_used: int | None = None
    lower_bound: int = 0
    kernel_code: dict[str, int] = field(default_factory=dict)  # per kernel (and "model", "other"), bytes
    plan: tuple[str, ...] = ()  # the plan's summary lines

    @property
    def macs_per_instruction(self) -> float:
        return self.macs / self.instructions if self.instructions else 0.0


def measure(path: Path, board: str, kernels: str) -> Measurement:
    """Compile ``path`` for ``board`` with ``kernels`` and profile one seeded random inference in QEMU."""
    from mcuq.firmware.profile import profile

    cm = mcuq.compile_model(path, board=board, sanitize=False, kernels=kernels)
    p = profile(cm, cm.target)
    s = p.sizes
    return Measurement(
        path.stem,
        board,
        cm.kernels,
        p.macs,
        p.instructions,
        s["arena"],
        s["code"],
        p.text_without_weights,
        s["weights"],
        s["flash"],
        s["ram"],
        p.stack_used,
        cm.plan.lower_bound,
        dict(p.kernel_code),
        p.plan,
    )


def met(value: float, target: float | None, at_least: bool) -> str:
    """ "yes", "**no**" (a missed target, plainly) or "-" (no target)."""
    if target is None:
        return "-"
    return "yes" if (value >= target if at_least else value <= target) else "**no**"


def _n(x: int | None) -> str:
    return "-" if x is None else f"{x:,}"


SPEED_HEADER = [
    "model",
    "board",
    "optimized path",
    "MACs",
    "instructions, portable",
    "instructions, optimized",
    "portable / optimized",
    "MACs / instruction, portable",
    "MACs / instruction, optimized",
    "target",
    "met",
    "TFLM + CMSIS-NN instructions",
    "TFLM + CMSIS-NN / optimized",
]


def speed_row(ref: Measurement, opt: Measurement) -> list[str]:
    """Instructions of the reference and the optimized path, their ratio, MACs per instruction against the target
    and TFLM + CMSIS-NN (a ratio above 1: mcuq executes fewer instructions)."""
    target = MAC_TARGETS.get(opt.board, {}).get(opt.model)
    tflm = TFLM[opt.model].instructions.get(opt.board) if opt.model in TFLM else None
    return [
        opt.model,
        opt.board,
        opt.path,
        f"{opt.macs:,}",
        f"{ref.instructions:,}",
        f"{opt.instructions:,}",
        f"{ref.instructions / opt.instructions:.2f}",
        f"{ref.macs_per_instruction:.3f}",
        f"{opt.macs_per_instruction:.3f}",
        "-" if target is None else f">= {target}",
        met(opt.macs_per_instruction, target, at_least=True),
        _n(tflm),
        "-" if tflm is None else f"{tflm / opt.instructions:.2f}",
    ]


MEMORY_HEADER = [
    "model",
    "board",
    "optimized path",
    "arena, portable",
    "arena, optimized",
    "liveness bound",
    "target",
    "met",
    "TFLM arena (M4)",
    ".text without weights",
    "target",
    "met",
    "TFLM .text (M4)",
    "code (executable)",
    "weights + params",
    "flash total",
    "RAM total (stack 2,048)",
    "stack used",
]


def memory_row(ref: Measurement, opt: Measurement) -> list[str]:
    arena_t = ARENA_TARGETS.get(opt.model)
    text_t = TEXT_TARGETS.get(opt.board, {}).get(opt.model)
    t = TFLM.get(opt.model)
    m4 = opt.board == M4 and t is not None
    return [
        opt.model,
        opt.board,
        opt.path,
        f"{ref.arena:,}",
        f"{opt.arena:,}",
        f"{opt.lower_bound:,}",
        _n(arena_t),
        met(opt.arena, arena_t, at_least=False),
        f"{t.arena:,}" if m4 else "-",
        f"{opt.text_without_weights:,}",
        _n(text_t),
        met(opt.text_without_weights, text_t, at_least=False),
        f"{t.text:,}" if m4 else "-",
        f"{opt.code:,}",
        f"{opt.weights:,}",
        f"{opt.flash:,}",
        f"{opt.ram:,}",
        _n(opt.stack_used),
    ]


def short_kernel(name: str) -> str:
    return name.removeprefix("mcuq_")


def kernel_code_cell(code: dict[str, int]) -> str:
    """Per-kernel .text bytes, largest first, then the model's own functions and the rest."""
    kernels = sorted(((k, n) for k, n in code.items() if k not in ("model", "other")), key=lambda t: (-t[1], t[0]))
    parts = [f"{short_kernel(k)} {n:,}" for k, n in kernels]
    return ", ".join(parts) if parts else "-"


KERNEL_HEADER = ["model", "board", "path", "kernels (.text bytes each)", "kernels total", "model's invoke", "other"]


def kernel_row(m: Measurement) -> list[str]:
    total = sum(n for k, n in m.kernel_code.items() if k not in ("model", "other"))
    return [
        m.model,
        m.board,
        m.path,
        kernel_code_cell(m.kernel_code),
        f"{total:,}",
        f"{m.kernel_code.get('model', 0):,}",
        f"{m.kernel_code.get('other', 0):,}",
    ]


_STEP = re.compile(r"^step\s+(\d+)\s+([^:]+):.*?(\d+) bytes shared$")


def short_plan_line(line: str, width: int = 160) -> str:
    """A plan summary line for the table: a layer's lever without the (long) tensor names ("step 3 in place: <out>
    at <in> ..., 8000 bytes shared" -> "step 3 in place 8,000 B"), any other line as it is, cut to ``width``."""
    line = line.strip()
    m = _STEP.match(line)
    if m:
        return f"step {m.group(1)} {m.group(2).strip()} {int(m.group(3)):,} B"
    return line if len(line) <= width else line[: width - 3] + "..."


def plan_lines(pairs: list[tuple[Measurement, Measurement]]) -> list[str]:
    """Per model and kernel path (once, whatever the board), the plan's summary lines as a markdown list."""
    out: list[str] = []
    seen: set[tuple[str, str]] = set()
    for ref, opt in pairs:
        for m in (ref, opt):
            if (m.model, m.path) in seen or not m.plan:
                continue
            seen.add((m.model, m.path))
            out.append(f"- **{m.model}**, {m.path}: " + "; ".join(short_plan_line(line) for line in m.plan))
    return out


def qemu_pairs() -> list[tuple[Measurement, Measurement]]:
    """(portable, auto) measurements per MLPerf model and emulated board."""
    pairs = []
    for f, _ in CASES[:4]:
        path = MODELS / f
        if not path.exists():
            continue
        for board in QEMU_BOARDS:
            ref = measure(path, board, "portable")
            opt = measure(path, board, "auto")
            pairs.append((ref, opt))
            print(
                f"bench: {ref.model} on {board}: portable {ref.instructions:,}, {opt.path} {opt.instructions:,} "
                "instructions",
                file=sys.stderr,
            )
    return pairs


def md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]


def commit_label(root: Path = ROOT) -> str:
    """The commit the numbers were measured at (read-only git), marked when the working tree had changes."""
    try:
        rev = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, timeout=30
        )
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown (no git)"
    if rev.returncode != 0:
        return "unknown (not a git checkout)"
    return describe_commit(rev.stdout.strip(), bool(dirty.stdout.strip()))


def describe_commit(rev: str, dirty: bool) -> str:
    return f"`{rev}`" + (" with uncommitted changes" if dirty else "")


# Sections of the same file that other benchmarks write (benchmarks/ptq.py, `make bench-ptq`; benchmarks/lowbit.py,
# `make bench-lowbit`): kept, from the first of them with all that follows, when this script rewrites the file.
KEPT_SECTIONS = ("## Post-training quantization", "## Low-bit and mixed precision")


def kept_sections(text: str) -> str:
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() in KEPT_SECTIONS), len(lines))
    return "\n" + "".join(lines[start:]) if start < len(lines) else ""


def block(name: str, body: str) -> str:
    return f"<!-- bench:{name} -->\n{body.rstrip()}\n<!-- /bench:{name} -->"


def replace_blocks(text: str, blocks: dict[str, str]) -> str | None:
    """``text`` with each ``<!-- bench:NAME -->...<!-- /bench:NAME -->`` block's body replaced by ``blocks[NAME]``;
    None when one of the blocks is missing (the caller then writes the default document)."""
    for name, body in blocks.items():
        pattern = re.compile(rf"<!-- bench:{re.escape(name)} -->\n.*?<!-- /bench:{re.escape(name)} -->", re.S)
        if len(pattern.findall(text)) != 1:
            return None
        text = pattern.sub(lambda _m, n=name, b=body: block(n, b), text)
    return text


def default_document(blocks: dict[str, str]) -> str:
    text = PREAMBLE + block("commit", blocks["commit"]) + "\n\n" + block("compile", blocks["compile"]) + "\n"
    if "qemu" in blocks:
        text += QEMU_PREAMBLE + block("qemu", blocks["qemu"]) + "\n"
    return text


def render(old: str, blocks: dict[str, str]) -> str:
    """The new markdown: the old one with its blocks replaced, else the default document plus the kept sections."""
    new = replace_blocks(old, blocks)
    return new if new is not None else default_document(blocks) + kept_sections(old)


def distinct(ref: Measurement, opt: Measurement) -> tuple[Measurement, ...]:
    """Both measurements, or the optimized one alone when it is the portable path too."""
    return (opt,) if ref.path == opt.path else (ref, opt)


def qemu_block(pairs: list[tuple[Measurement, Measurement]]) -> str:
    parts = [
        "### Instructions per inference",
        "",
        *md_table(SPEED_HEADER, [speed_row(r, o) for r, o in pairs]),
        "",
        "### Memory",
        "",
        *md_table(MEMORY_HEADER, [memory_row(r, o) for r, o in pairs]),
        "",
        "### Code per kernel (only the kernels a model uses are linked)",
        "",
        *md_table(KERNEL_HEADER, [kernel_row(m) for ref, opt in pairs for m in distinct(ref, opt)]),
    ]
    levers = plan_lines(pairs)
    if levers:
        parts += ["", "### Arena plans", "", *levers]
    return "\n".join(parts)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write", metavar="MD", help="also write the tables into this markdown file")
    args = ap.parse_args()
    if not MODELS.is_dir():
        print(f"bench: no models at {MODELS} (set MCUQ_MODELS)", file=sys.stderr)
        return 2
    rows = [row(MODELS / f, tflm) for f, tflm in CASES if (MODELS / f).exists()]
    blocks = {"commit": f"Measured at commit {commit_label()}.", "compile": "\n".join(md_table(HEADER, rows))}
    print(blocks["compile"])
    if shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm"):
        blocks["qemu"] = qemu_block(qemu_pairs())
        print(blocks["qemu"])
    else:
        print("bench: arm-none-eabi-gcc or qemu-system-arm missing (make setup): skipped the QEMU tables")
    if args.write:
        md = Path(args.write)
        md.parent.mkdir(parents=True, exist_ok=True)
        old = md.read_text() if md.exists() else ""
        if "qemu" not in blocks and replace_blocks(old, {"qemu": ""}) is not None:
            print(f"bench: kept the QEMU tables of {md} as they were (not re-measured)")
        md.write_text(render(old, blocks))
        print(f"wrote {md}")
    return 0


PREAMBLE = """# Benchmarks

Generated by `make bench` (`benchmarks/shared_models.py`) on the models in `../shared/models`. Byte counts are
exact. "weight bytes (model)" is the constant tensor data of the .tflite (weights and biases); "constants in C"
is everything the generated C keeps in flash as arrays (weights, biases and per-channel multipliers/shifts).
The arena holds every intermediate activation; model inputs and outputs are caller-owned buffers and are not
in it. The liveness bound is the largest sum of activation bytes alive at one time, the least any plan can
reach without in-place reuse. TFLM's arena (x86-64, reference kernels) is from `../shared/models/README.md`;
it also holds the input and output tensors and TFLM's own bookkeeping, so "arena + I/O buffers" (our arena plus
the caller-owned input and output buffers) is the like-for-like RAM comparison. Compile seconds include loading,
lowering, planning and rendering the C (not the C compiler). This table compiles for the host with the default
kernels (`auto`: the dsp path, in plain C on the host).

"""
QEMU_PREAMBLE = """
## On Cortex-M in QEMU

`mcuq bench MODEL --board B --kernels portable` (the reference path) and `mcuq bench MODEL --board B` (the
optimized path, `--kernels auto`: mve on the Cortex-M55, dsp on the Cortex-M4) for the four MLPerf Tiny int8
models on mps2-an386 (Cortex-M4F) and mps3-an547 (Cortex-M55): executed instructions of one inference (exact and
repeatable: a QEMU TCG plugin counts every instruction, see `mcuq/firmware/plugin/`; QEMU is not cycle-accurate, so
these are instructions, not cycles), on one seeded random input. TFLM + CMSIS-NN figures are instructions per
inference counted the same way in QEMU (issue 10); "TFLM + CMSIS-NN / optimized" above 1 means mcuq executes fewer
instructions. Targets (issue 10, optimized path): MACs per instruction on the M4 >= 0.65, on the M55 KWS 2.3, VWW
1.8, ResNet 4.0, AD 2.8; arena KWS <= 9,000, VWW <= 28,000, ResNet <= 36,000, AD <= 256 bytes; M4 .text without
weights <= 16 kB (AD <= 8 kB; kB = 1,024 bytes). Sizes are read from the ELF with pyelftools and agree with
`arm-none-eabi-size`: flash = .text + .data (code, weights, parameters), RAM = .data + .bss (arena, the
2,048-byte stack reserve, other statics). ".text without weights" is the read-only flash (code, vectors,
constants) less the model's weight and parameter arrays, of the firmware as deployed: `mcuq bench`'s firmware
(startup, a main loop reading inputs by semihosting) built without the per-layer hooks, whose calls and
layer-name strings only the instruction counting needs; other statics in RAM include the input buffer. Per-kernel code is the size of the linked functions from the ELF's symbols.
"Stack used" is the measured high-water mark (the stack is painted at boot).

"""

if __name__ == "__main__":
    sys.exit(main())
