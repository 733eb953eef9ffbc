"""The instruction-cost table of the budgeted precision solver (``mcuq.quant.costs.INSTRUCTIONS``), measured.

Usage: python benchmarks/kernel_costs.py [--write] [--boards mps2-an386,mps3-an547] [--json FILE]

Probe models (float ``ir.Graph``s built here with tests/util/float_models.py's Builder: chains of convolutions,
depthwise convolutions and fully-connected layers of several shapes, and models of every other op at a few sizes)
are quantized by mcuq at every precision of issue 11 (weights 8, 4, 2, 1 bits with int8 activations, and with int16
activations, TFLite's 16x8 mode; a mixed model adds the int8 <-> int16 QUANTIZE kernels), compiled for each board
on the kernel path `auto` picks (dsp on the Cortex-M4, mve on the Cortex-M55), on the portable path (which `auto`
keeps for layers of a small MAC share) and, on the M55, on the dsp path (its fallback where no mve kernel applies),
and run once in QEMU with `mcuq bench`'s exact instruction counter
(``mcuq.firmware.profile``). Every layer gives one sample: the kernel it ran (with its weight width where one C
kernel serves several, ``costs.cost_key``), its features (``costs.layer_features``: MACs, output elements, input
elements read: window taps for a windowed kernel) and its instructions. Per CPU and kernel a linear model

    instructions = per_mac * MACs + per_output * outputs + per_input * inputs + per_call

is fit by non-negative least squares on relative errors (each sample weighted by 1 / its count). The largest
relative error over the kernel's samples is kept in the table. ``--write`` replaces the block between the
``# kernel-costs: begin`` and ``# kernel-costs: end`` markers of mcuq/quant/costs.py (sorted, deterministic: the
counts are exact and the models seeded).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mcuq import ir  # noqa: E402
from mcuq.quant import costs  # noqa: E402
from tests.util.float_models import Builder  # noqa: E402

A, K, SAME, VALID = ir.Activation, ir.OpKind, ir.Padding.SAME, ir.Padding.VALID
COSTS_PY = ROOT / "mcuq" / "quant" / "costs.py"
BEGIN, END = "# kernel-costs: begin", "# kernel-costs: end"
BOARDS = ("mps2-an386", "mps3-an547")
WEIGHT_BITS = (8, 4, 2, 1)
ACTIVATIONS = ("int8", "int16")
COMMAND = "python benchmarks/kernel_costs.py --write"


# -- probe models ------------------------------------------------------------------------------------------------
def conv_chain(b: Builder, x: str) -> str:
    """CONV_2D of typical shapes: a first layer on 3 channels, strided, 5x5, VALID, 1x1 last (no band forms)."""
    y = b.conv(x, 8, k=3, act=A.RELU)  # 20x20x3 -> 20x20x8
    y = b.conv(y, 16, k=3, stride=2, act=A.RELU)  # -> 10x10x16
    y = b.conv(y, 24, k=3, act=A.RELU6)  # -> 10x10x24
    y = b.conv(y, 12, k=5, padding=VALID, act=A.RELU)  # -> 6x6x12
    y = b.conv(y, 32, k=3, stride=2, act=A.RELU)  # -> 3x3x32
    y = b.conv(y, 7, k=1)  # -> 3x3x7
    return y


def conv_wide(b: Builder, x: str) -> str:
    """Wider CONV_2D layers: more input channels per window, odd channel counts."""
    y = b.conv(x, 20, k=3, act=A.RELU)  # 10x10x5 -> 10x10x20
    y = b.conv(y, 33, k=3, stride=2, act=A.RELU)  # -> 5x5x33
    y = b.conv(y, 40, k=3, act=A.RELU)  # -> 5x5x40
    y = b.conv(y, 16, k=1)  # -> 5x5x16
    return y


def depthwise_chain(b: Builder, x: str) -> str:
    """DEPTHWISE_CONV_2D of several windows, strides, channel counts and a multiplier, between 1x1 convolutions."""
    y = b.dwconv(x, k=3, act=A.RELU)  # 16x16x8
    y = b.dwconv(y, k=3, stride=2, act=A.RELU)  # -> 8x8x8
    y = b.conv(y, 24, k=1, act=A.RELU)  # -> 8x8x24
    y = b.dwconv(y, k=3, act=A.RELU6)  # -> 8x8x24
    y = b.dwconv(y, k=5, padding=VALID, act=A.RELU)  # -> 4x4x24
    y = b.dwconv(y, k=3, mult=2)  # -> 4x4x48
    y = b.conv(y, 64, k=1, act=A.RELU)  # -> 4x4x64
    y = b.dwconv(y, k=3, stride=2)  # -> 2x2x64
    return y


def fc_chain(b: Builder, x: str) -> str:
    """FULLY_CONNECTED of several sizes (odd ones too), as the head of a small network."""
    y = b.fc(x, 64, act=A.RELU)  # 1x200 -> 64
    y = b.fc(y, 129, act=A.RELU)
    y = b.fc(y, 33, act=A.RELU)
    y = b.fc(y, 96)
    y = b.fc(y, 10)
    return y


def ops_chain(int8_only: bool, classes: int) -> Callable[[Builder, str], str]:
    """Every op without weights that mcuq lowers, after a 1x1 convolution (a layer sets the activation type)."""

    def build(b: Builder, x: str) -> str:
        y = b.conv(x, b.shape(x)[-1], k=1, act=A.RELU)
        m = b.pool(K.MAX_POOL2D, y, k=2, stride=2)
        a = b.pool(K.AVG_POOL2D, y, k=2, stride=2)
        a3 = b.pool(K.AVG_POOL2D, m, k=3, stride=1, padding=SAME)
        s = b.binary(K.ADD, m, a)
        d = b.binary(K.SUB, s, a3)
        p = b.binary(K.MUL, d, m)
        q = b.pad(p, ((0, 0), (1, 1), (1, 1), (0, 0)))
        t = b.transpose(q, (0, 2, 1, 3))
        lg = b.unary(K.SIGMOID, t)
        th = b.unary(K.TANH, t)
        c = b.concat((lg, th), 3)  # fixed output scales differ: a QUANTIZE before the concatenation
        c = b.transpose(c, (0, 1, 2, 3))  # moves nothing: a copy kernel
        if int8_only:
            c = b.unary(K.HARD_SWISH, c)
        mean = b.mean(c, (1, 2), keep_dims=False)
        return b.softmax(b.fc(mean, classes))

    return build


@dataclass(frozen=True)
class Probe:
    name: str
    shape: tuple[int, ...]
    build: Callable[[Builder, str], str]
    weight_bits: tuple[int, ...] = WEIGHT_BITS
    activations: tuple[str | dict, ...] = ACTIVATIONS


def probes() -> list[Probe]:
    out = [
        Probe("conv", (1, 20, 20, 3), conv_chain),
        Probe("conv_wide", (1, 10, 10, 5), conv_wide),
        Probe("depthwise", (1, 16, 16, 8), depthwise_chain),
        Probe("fc", (1, 200), fc_chain),
    ]
    for side, c, classes in ((8, 8, 10), (12, 16, 40), (16, 4, 100)):
        out.append(Probe(f"ops{side}x{c}_int8", (1, side, side, c), ops_chain(True, classes), (8,), ("int8",)))
        out.append(Probe(f"ops{side}x{c}_int16", (1, side, side, c), ops_chain(False, classes), (8,), ("int16",)))
    out.append(Probe("mixed", (1, 12, 12, 8), mixed_chain, (8,), ("mixed",)))
    return out


def mixed_chain(b: Builder, x: str) -> str:
    """int8 and int16 layers in turn: QUANTIZE int8 -> int16 and back between them."""
    y = b.conv(x, 8, k=3, act=A.RELU)
    y = b.conv(y, 16, k=3, act=A.RELU)
    y = b.conv(y, 8, k=1, act=A.RELU)
    y = b.dwconv(y, k=3)
    return y


def mixed_activations(names: list[str]) -> dict[str, str]:
    return {n: ("int16" if i % 2 else "int8") for i, n in enumerate(names)}


def float_graph(p: Probe) -> ir.Graph:
    b = Builder(f"probe_{p.name}", seed=len(p.name))
    return b.graph(p.build(b, b.input(p.shape)))


# -- measuring ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sample:
    cpu: str
    key: str
    macs: int
    outputs: int
    inputs: int
    instructions: int
    where: str  # probe / precision / path / layer


def _compiled_variants(qm, board: str):
    """(path label, CompiledModel) for the auto path and, where they differ, the portable one and (on an mve board)
    the dsp one, whose kernels an mve board runs where no mve kernel applies."""
    import mcuq

    seen = set()
    for path in ("auto", "portable", "dsp"):
        cm = mcuq.compile_model(qm, board=board, sanitize=False, kernels=path)
        if path == "dsp" and "mve" not in (cm.target.features if cm.target else ()):
            continue
        sig = tuple(costs.cost_key(la) for la in cm.layers)
        if sig in seen:
            continue
        seen.add(sig)
        yield cm.kernels, cm


def measure(boards: tuple[str, ...], log=print) -> list[Sample]:
    from mcuq.firmware.profile import profile
    from mcuq.quant.ptq import Quantizer

    samples: list[Sample] = []
    for p in probes():
        g = float_graph(p)
        rng = np.random.default_rng(0)
        calib = rng.uniform(-1.0, 1.0, size=(16, *p.shape)).astype(np.float32)
        q = Quantizer(g, calib)
        for act in p.activations:
            for bits in p.weight_bits:
                acts = mixed_activations(q.layer_names) if act == "mixed" else act
                qm = q.quantize(weight_bits=bits, activations=acts, rounding="nearest")
                for board in boards:
                    cpu = costs.cpu_of(board)
                    for path, cm in _compiled_variants(qm, board):
                        t0 = time.perf_counter()
                        prof = profile(cm, cm.target)
                        by_name = {la.op.name: la for la in cm.layers}
                        n = 0
                        for la, r in zip(cm.layers, prof.layers, strict=True):
                            if la.kernel is None:
                                continue
                            assert r.name == by_name[la.op.name].op.name
                            macs, outs, ins = costs.layer_features(la, cm.graph)
                            where = f"{p.name}/w{bits}{act if isinstance(act, str) else ''}/{path}/{la.op.name}"
                            samples.append(Sample(cpu, costs.cost_key(la), macs, outs, ins, r.instructions, where))
                            n += 1
                        log(f"kernel_costs: {p.name} w{bits} {act} on {board} ({path}): {n} layers, "
                            f"{prof.instructions:,} instructions, {time.perf_counter() - t0:.1f} s")  # fmt: skip
    return samples


# -- fitting ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Fit:
    per_mac: float
    per_output: float
    per_input: float
    per_call: float
    max_err: float  # largest relative error over the samples, percent
    rms_err: float  # root mean square relative error, percent
    n: int  # samples

    def predict(self, macs: int, outputs: int, inputs: int) -> float:
        return self.per_mac * macs + self.per_output * outputs + self.per_input * inputs + self.per_call


def fit(rows: list[Sample]) -> Fit:
    """Non-negative least squares on relative errors; identical samples count once."""
    from scipy.optimize import nnls

    uniq = sorted({(s.macs, s.outputs, s.inputs, s.instructions) for s in rows})
    x = np.array([[m, o, i, 1.0] for m, o, i, _ in uniq], dtype=np.float64)
    y = np.array([u[3] for u in uniq], dtype=np.float64)
    w = 1.0 / np.maximum(y, 1.0)
    scale = np.maximum(np.abs(x).max(axis=0), 1.0)  # columns of similar size for the solver
    coef, _ = nnls(x * w[:, None] / scale, y * w)
    coef = coef / scale
    # rounded as the table stores them, the errors computed from the rounded figures
    coef = [round(float(c), 4 if c < 10 else 2) for c in coef]
    pred = x @ np.array(coef)
    rel = (pred - y) / np.maximum(y, 1.0)
    return Fit(*coef, round(float(np.abs(rel).max()) * 100, 1), round(float(np.sqrt((rel**2).mean())) * 100, 1),
               len(uniq))  # fmt: skip


def fits(samples: list[Sample]) -> dict[str, dict[str, Fit]]:
    groups: dict[tuple[str, str], list[Sample]] = {}
    for s in samples:
        groups.setdefault((s.cpu, s.key), []).append(s)
    out: dict[str, dict[str, Fit]] = {}
    for (cpu, key), rows in sorted(groups.items()):
        out.setdefault(cpu, {})[key] = fit(rows)
    return out


# -- writing ------------------------------------------------------------------------------------------------------
def _num(v: float) -> str:
    return repr(float(v))


def render_block(table: dict[str, dict[str, Fit]], boards: tuple[str, ...]) -> str:
    lines = [
        BEGIN + f" (generated by `{COMMAND}`; do not edit by hand)",
        "# Per CPU and kernel (a packed-weight kernel per width: costs.cost_key): instructions = per MAC * MACs +",
        "# per output * output elements + per input * input elements read (window taps for a windowed kernel) +",
        "# per call (costs.layer_features), fit by non-negative least squares on relative errors to the exact",
        "# per-layer counts of `mcuq bench` (QEMU, instruction-counting plugin) of the probe models of",
        f"# benchmarks/kernel_costs.py on {', '.join(boards)}, kernel paths auto, portable (and dsp on the M55).",
        "# Columns: per MAC, per output, per input, per call, max and RMS relative fit error over the samples (%),",
        "# samples.",
        "INSTRUCTIONS: dict[str, dict[str, KernelCost]] = {",
    ]
    for cpu in sorted(table):
        lines.append(f'    "{cpu}": {{')
        for key in sorted(table[cpu]):
            f = table[cpu][key]
            vals = ", ".join(_num(v) for v in (f.per_mac, f.per_output, f.per_input, f.per_call, f.max_err, f.rms_err))
            lines.append(f'        "{key}": KernelCost({vals}, {f.n}),')
        lines.append("    },")
    lines += ["}", END]
    return "\n".join(lines)


def write_table(block: str, path: Path = COSTS_PY) -> None:
    text = path.read_text()
    pattern = re.compile(rf"^{re.escape(BEGIN)}.*?^{re.escape(END)}$", re.S | re.M)
    if len(pattern.findall(text)) != 1:
        raise SystemExit(f"kernel_costs: {path} has no single '{BEGIN}' ... '{END}' block")
    path.write_text(pattern.sub(lambda _m: block, text))


def summary(table: dict[str, dict[str, Fit]]) -> str:
    out = [
        "| cpu | kernel | per MAC | per output | per input | per call | max err % | RMS err % | samples |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for cpu in sorted(table):
        for key in sorted(table[cpu]):
            f = table[cpu][key]
            out.append(
                f"| {cpu} | {key} | {f.per_mac} | {f.per_output} | {f.per_input} | {f.per_call} | {f.max_err} | "
                f"{f.rms_err} | {f.n} |"
            )
    return "\n".join(out)


def main() -> int:
    import shutil

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write", action="store_true", help=f"write the table into {COSTS_PY.relative_to(ROOT)}")
    ap.add_argument("--boards", default=",".join(BOARDS), help="emulated boards (default: %(default)s)")
    ap.add_argument("--json", metavar="FILE", help="also write every sample as JSON")
    args = ap.parse_args()
    if not (shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm")):
        print("kernel_costs: arm-none-eabi-gcc and qemu-system-arm are needed (make setup)", file=sys.stderr)
        return 2
    boards = tuple(b for b in args.boards.split(",") if b)
    samples = measure(boards, log=lambda m: print(m, file=sys.stderr))
    table = fits(samples)
    print(summary(table))
    if args.json:
        Path(args.json).write_text(json.dumps([s.__dict__ for s in samples], indent=1))
    if args.write:
        write_table(render_block(table, boards))
        print(f"wrote {COSTS_PY.relative_to(ROOT)}", file=sys.stderr)
    worst = max((f.max_err for t in table.values() for f in t.values()), default=0.0)
    print(f"kernel_costs: {sum(len(t) for t in table.values())} kernels, largest fit error {worst:.1f} %",
          file=sys.stderr)  # fmt: skip
    return 0 if not math.isnan(worst) else 1


if __name__ == "__main__":
    sys.exit(main())
