"""`make bench`: compile every model in ../shared/models and tabulate ops, MACs, weights and arena vs TFLM.

Usage: python benchmarks/shared_models.py [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import sys
import time
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


QEMU_BOARDS = ("mps2-an386", "mps3-an547")
QEMU_HEADER = [
    "model",
    "board",
    "MACs",
    "instructions / inference",
    "MACs / instruction",
    "arena",
    "flash: code (.text)",
    "flash: weights + params",
    "flash total",
    "RAM total (stack 2,048)",
    "stack used",
]


def qemu_rows() -> list[list[str]]:
    """Exact executed-instruction counts in QEMU (one seeded random input) and ELF sizes, per MLPerf model."""
    from mcuq.firmware.profile import profile

    rows = []
    for f, _ in CASES[:4]:
        path = MODELS / f
        if not path.exists():
            continue
        for board in QEMU_BOARDS:
            cm = mcuq.compile_model(path, board=board, sanitize=False)
            p = profile(cm, cm.target)
            s = p.sizes
            rows.append(
                [
                    path.stem,
                    board,
                    f"{p.macs:,}",
                    f"{p.instructions:,}",
                    f"{p.macs_per_instruction:.3f}",
                    f"{s['arena']:,}",
                    f"{s['code']:,}",
                    f"{s['weights']:,}",
                    f"{s['flash']:,}",
                    f"{s['ram']:,}",
                    f"{p.stack_used:,}" if p.stack_used is not None else "-",
                ]
            )
    return rows


def md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]


# Sections of the same file that other benchmarks write (benchmarks/ptq.py, `make bench-ptq`): kept, with all that
# follows them, when this script rewrites the file.
KEPT_SECTIONS = ("## Post-training quantization",)


def kept_sections(md: Path) -> str:
    lines = md.read_text().splitlines(keepends=True) if md.exists() else []
    start = next((i for i, line in enumerate(lines) if line.rstrip() in KEPT_SECTIONS), len(lines))
    return "\n" + "".join(lines[start:]) if start < len(lines) else ""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--write", metavar="MD", help="also write the table into this markdown file")
    args = ap.parse_args()
    if not MODELS.is_dir():
        print(f"bench: no models at {MODELS} (set MCUQ_MODELS)", file=sys.stderr)
        return 2
    rows = [row(MODELS / f, tflm) for f, tflm in CASES if (MODELS / f).exists()]
    table = md_table(HEADER, rows)
    print("\n".join(table))
    text = PREAMBLE + "\n".join(table) + "\n"
    if shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm"):
        qtable = md_table(QEMU_HEADER, qemu_rows())
        print("\n".join(qtable))
        text += QEMU_PREAMBLE + "\n".join(qtable) + "\n"
    else:
        print("bench: arm-none-eabi-gcc or qemu-system-arm missing (make setup): skipped the QEMU table")
    if args.write:
        md = Path(args.write)
        md.parent.mkdir(parents=True, exist_ok=True)
        md.write_text(text + kept_sections(md))
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
lowering, planning and rendering the C (not the C compiler).

"""
QEMU_PREAMBLE = """
## On Cortex-M in QEMU

`mcuq bench MODEL --board B` for the four MLPerf Tiny int8 models on mps2-an386 (Cortex-M4F) and mps3-an547
(Cortex-M55): executed instructions of one inference (exact and repeatable: a QEMU TCG plugin counts every
instruction, see `mcuq/firmware/plugin/`; QEMU is not cycle-accurate, so these are instructions, not cycles), on
one seeded random input, with the portable C kernels (no DSP or MVE paths yet). Sizes are read from the ELF with
pyelftools and agree with `arm-none-eabi-size`: flash = .text + .data (code, weights, parameters), RAM = .data +
.bss (arena, the 2,048-byte stack reserve, other statics). "Stack used" is the measured high-water mark (the stack
is painted at boot).

"""

if __name__ == "__main__":
    sys.exit(main())
