"""`make bench-lowbit`: weights below 8 bits, 16x8 activations and mixed precision, against AI Edge Quantizer.

Usage: python benchmarks/lowbit.py [--write docs/benchmarks.md] [--plot FILE.svg] [--models digits,ad,...]
                                   [--no-qemu] [--allow-missing]

The five float models of `make bench-ptq` with their data (benchmarks/ptq_data.py: two digits CNNs, the breast
cancer MLP, AD01 with real windows, hello_world) are quantized by mcuq at each uniform precision (UNIFORM) and, at
several flash budgets (BUDGETS, fractions of the all-int8 model's weight bytes), at the mixed precision that mcuq's
exact solver chooses and at the one a greedy allocator chooses on the same per-layer sensitivities. Every model is
measured the same way: its metric on the held-out data under the oracle (tflite-runtime 2.14, reference kernels,
the int8-container .tflite), the generated C on the host giving the oracle's outputs bit for bit (asserted), its
packed weight bytes and arena, and the instructions of one inference on the Cortex-M4 (mps2-an386) and the
Cortex-M55 (mps3-an547) in QEMU (`mcuq bench`'s counting, cached in build/bench-lowbit by the generated C's
content). AI Edge Quantizer's int4-weight recipes run on the same float models in build/bench-ptq-venv
(benchmarks/lowbit_ref.py) and are measured by TensorFlow 2.21's interpreter, which runs INT4 weights.

A piece that has not landed (an API, a kernel) is named, and the script exits non-zero: no number is made up.
``--allow-missing`` still writes the section, with "-" where a number could not be measured and the reasons listed.
``--write MD`` replaces the section "## Low-bit and mixed precision" of MD (appended when absent) and nothing else.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import os
import platform
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import ptq  # noqa: E402
import ptq_data  # noqa: E402

WORK = ROOT / "build" / "bench-lowbit"
SECTION = "## Low-bit and mixed precision"
M4, M55 = "mps2-an386", "mps3-an547"
BOARDS = (M4, M55)
# (row label, weight bits, activations, rounding): the uniform precisions, every layer alike
UNIFORM = (
    ("w8a8", 8, "int8", "auto"),
    ("w4a8", 4, "int8", "auto"),
    ("w4a8, nearest rounding", 4, "int8", "nearest"),
    ("w2a8", 2, "int8", "auto"),
    ("w1a8", 1, "int8", "auto"),
    ("w8a16", 8, "int16", "auto"),
    ("w4a16", 4, "int16", "auto"),
)
# The ops that issue 11 gives a 16x8 (int16 activation) version, as OpKind names; a model with any other op (digits2's
# HARD_SWISH and RELU6) has no int16 version by design: its a16 rows say so and are not counted as missing.
OPS_16X8 = frozenset(
    {"CONV2D", "DEPTHWISE_CONV2D", "FULLY_CONNECTED", "ADD", "MUL", "AVG_POOL2D", "MAX_POOL2D", "MEAN", "SOFTMAX",
     "SIGMOID", "TANH", "PAD", "CONCAT", "RESHAPE", "COPY", "TRANSPOSE", "QUANTIZE"}
)  # fmt: skip
BUDGETS = (0.40, 0.50, 0.60, 0.75)  # flash budgets for mixed precision: fractions of the w8a8 weight bytes
AIEQ_LABELS = {
    "static_wi4_ai8": "AI Edge Quantizer static int4 weights, int8 activations",
    "static_wi4_ai8_minmax": "AI Edge Quantizer static int4 weights, int8 activations, min-max ranges",
    "dynamic_wi4_afp32": "AI Edge Quantizer dynamic_wi4_afp32 (float activations)",
    "weight_only_wi4_afp32": "AI Edge Quantizer weight_only_wi4_afp32 (float compute)",
    "static_wi8_ai16": "AI Edge Quantizer static_wi8_ai16",
    "static_wi8_ai16_minmax": "AI Edge Quantizer static_wi8_ai16, min-max ranges",
    "static_wi8_ai8": "AI Edge Quantizer static_wi8_ai8",
    "static_wi8_ai8_minmax": "AI Edge Quantizer static_wi8_ai8, min-max ranges",
}


# ---------------------------------------------------------------------------------------------- results
@dataclass(frozen=True)
class Result:
    """One row of a model's table. ``metrics``: column -> value; ``instructions`` and ``arena``: by board."""

    model: str
    label: str
    kind: str  # "float", "uniform", "exact", "greedy", "aieq"
    metrics: dict[str, float] = field(default_factory=dict)
    weight_bytes: int | None = None
    arena: dict[str, int] = field(default_factory=dict)
    instructions: dict[str, int] = field(default_factory=dict)
    precision: str = ""  # per-layer weight bits, "*" marking int16 activations (mixed rows)
    note: str = ""
    error: str = ""  # why the row could not be measured ("" when it was)


@dataclass(frozen=True)
class Choice:
    """The exact solver and the greedy allocator at one budget, on the same sensitivities."""

    model: str
    fraction: float
    budget: int
    exact_loss: float | None
    greedy_loss: float | None
    exact: Result
    greedy: Result


def precision_string(names: Sequence[str], precision: dict) -> str:
    """Per-layer precision in layer order: weight bits, with "*" after a layer whose activations are int16."""
    cells = []
    for n in names:
        p = precision[n]
        cells.append(f"{p.weight_bits}{'*' if p.activations == 'int16' else ''}")
    return " ".join(cells)


# ---------------------------------------------------------------------------------------------- rendering
def fmt_metric(v: float | None) -> str:
    if v is None:
        return "-"
    if v == float("inf"):
        return "exact"
    return f"{v:.2f}"


def fmt_int(v: int | None) -> str:
    return "-" if v is None else f"{v:,}"


def fmt_arena(arena: dict[str, int]) -> str:
    vals = [arena[b] for b in BOARDS if b in arena]
    if not vals:
        return "-"
    return f"{vals[0]:,}" if len(set(vals)) == 1 else " / ".join(f"{v:,}" for v in vals)


def model_table(results: Sequence[Result], columns: Sequence[str], int8_bytes: int | None) -> list[str]:
    """The markdown table of one model: a row per result, in order; '-' where a value was not measured."""
    header = ["configuration", *columns, "weight bytes", "of w8a8", "arena (M4 / M55)", "M4 instructions",
              "M55 instructions", "weight bits per layer (* int16 activations)"]  # fmt: skip
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 2) + "---|"]
    for r in results:
        frac = "-"
        if r.weight_bytes is not None and int8_bytes:
            frac = f"{100.0 * r.weight_bytes / int8_bytes:.1f} %"
        cells = [
            r.label,
            *(fmt_metric(r.metrics.get(c)) for c in columns),
            fmt_int(r.weight_bytes),
            frac,
            fmt_arena(r.arena),
            fmt_int(r.instructions.get(M4)),
            fmt_int(r.instructions.get(M55)),
            "; ".join(x for x in (r.precision, r.note) if x)
            or ("not measured (see the list below)" if r.error else ""),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def choice_table(choices: Sequence[Choice], metric: Callable[[str], str]) -> list[str]:
    """Exact solver against the greedy allocator: per model and budget, predicted loss and measured metric."""
    header = ["model", "budget (of w8a8 weights)", "budget bytes", "metric", "exact: predicted loss",
              "exact: measured", "greedy: predicted loss", "greedy: measured", "exact - greedy (measured)"]  # fmt: skip
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    for c in choices:
        col = metric(c.model)
        e, g = c.exact.metrics.get(col), c.greedy.metrics.get(col)
        gain = "-" if e is None or g is None or float("inf") in (e, g) else f"{e - g:+.2f}"
        lines.append(
            "| "
            + " | ".join(
                [
                    c.model,
                    f"{100 * c.fraction:.0f} %",
                    f"{c.budget:,}",
                    col,
                    _loss(c.exact_loss),
                    fmt_metric(e),
                    _loss(c.greedy_loss),
                    fmt_metric(g),
                    gain,
                ]
            )  # fmt: skip
            + " |"
        )
    return lines


def _loss(v: float | None) -> str:
    return "-" if v is None else f"{v:.3g}"


def write_section(md: Path, text: str, section: str = SECTION) -> None:
    """Replace ``section`` of ``md`` (its heading line up to the next "## " heading) with ``text``, or append it;
    the rest of the file is kept byte for byte."""
    old = md.read_text() if md.exists() else "# Benchmarks\n"
    lines = old.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == section), None)
    if start is None:
        new = old.rstrip("\n") + "\n\n" + text
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        rest = "".join(lines[end:])
        new = "".join(lines[:start]) + text + ("\n" + rest if rest else "")
    md.write_text(new)


def render(
    tables: dict[str, list[str]],
    choices: list[str],
    missing: Sequence[str],
    versions: str,
    plot: str | None,
    notes: Sequence[str] = (),
) -> str:
    """The whole section: the preamble, a table per model, the solver comparison, the plot, what is missing."""
    parts = [PREAMBLE.rstrip("\n"), ""]
    for model, lines in tables.items():
        parts += [f"### {model}", "", *lines, ""]
    if any(NO_ORACLE in line for lines in tables.values() for line in lines):
        parts += [NO_ORACLE_NOTE, ""]
    parts += ["### Exact solver against greedy allocation (same sensitivities)", ""]
    parts += [*choices, ""] if choices else ["Not measured (see below).", ""]
    if plot:
        parts += [f"![weight bytes against metric, per model]({plot})", ""]
    if notes:
        parts += ["Not available by design:", ""]
        parts += [f"- {n}" for n in dict.fromkeys(notes)]
        parts += [""]
    if missing:
        parts += ["**Not measured** (pieces missing when this ran):", ""]
        parts += [f"- {m}" for m in missing]
        parts += [""]
    parts += [f"Versions: {versions}.", ""]
    return "\n".join(parts)


PREAMBLE = """## Low-bit and mixed precision

Generated by `make bench-lowbit` (`benchmarks/lowbit.py`) on the five float models of `make bench-ptq` (same data,
calibration samples and held-out sets; see "Post-training quantization"). mcuq quantizes each one (`mcuq.quantize`,
calibration method kl, bias correction on) at each uniform precision: `wBaA` is B-bit weights (per-channel
symmetric: [-7, 7] at 4 bits, ternary at 2, binary at 1, packed in flash) and A-bit activations (a16: TFLite's 16x8
mode), weight rounding GPTQ at 4 bits and below (`rounding="auto"`) unless the row says nearest. Mixed rows: the
per-layer weight bits and activations that mcuq's exact solver (multiple-choice knapsack, `scipy.optimize.milp`)
chooses under a flash budget, a fraction of the w8a8 model's weight bytes, from measured per-layer sensitivities;
greedy rows: the allocation that products use (lower the layer with the best loss per byte first) on the same
sensitivities and budget. **Every mcuq model is measured by tflite-runtime 2.14 with reference kernels** (the
int8-container .tflite, the test suite's oracle), and its generated C, run on the host, gives the oracle's outputs
bit for bit (asserted). Weight bytes: the weights and biases as the generated C stores them (packed). Arena and
instructions: `mcuq bench` (the firmware in QEMU, default kernels: dsp on the Cortex-M4 mps2-an386, mve on the
Cortex-M55 mps3-an547; executed instructions of one inference, exact and repeatable, not cycles).

AI Edge Quantizer rows: its int4-weight recipes on the same float models (the copies bench-ptq gives it), same
calibration samples, **measured by TensorFlow 2.21's interpreter** (`tf.lite.Interpreter`, BUILTIN_REF), since
tflite-runtime 2.14 rejects INT4 filters; its 16x8 and int8 recipes are measured there too, for comparison. The
static int4 recipe is its `static_wi4_ai8` policy: int4 weights on CONV_2D and FULLY_CONNECTED (the ops the policy
allows), int8 on the others (depthwise), int8 activations. The dynamic and weight-only recipes keep float
activations (no MCU integer kernel runs them). Its weight bytes are not given: "-" (its file sizes are in the notes).
"""


# ---------------------------------------------------------------------------------------------- measuring
def missing_pieces() -> list[str]:
    """The APIs this benchmark needs that are not (yet) there, each with who provides it."""
    out = []
    import mcuq

    params = inspect.signature(mcuq.quantize).parameters
    for p in ("weight_bits", "activations", "rounding"):
        if p not in params:
            out.append(f"mcuq.quantize(..., {p}=...) (the quantizer at per-layer precisions)")
    try:
        import mcuq.quant.ptq as qptq

        if not hasattr(qptq, "Quantizer"):
            out.append("mcuq.quant.ptq.Quantizer (cached quantizer for many precisions)")
    except ImportError as e:
        out.append(f"mcuq.quant.ptq: {e}")
    return out


def quantized_io(model: bytes, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(integer inputs, raw outputs, real outputs as float64) of the quantized ``model`` on the float samples ``xs``
    under the oracle; the inputs are quantized with the model's own parameters (TFLite's QUANTIZE)."""
    from mcuq.frontend import load
    from mcuq.quant.edge import quantize_input
    from tests.util import oracle

    g = load(model)
    tin, tout = g.tensors[g.inputs[0]], g.tensors[g.outputs[0]]
    xq = quantize_input(tin, xs)
    res = oracle.run(model, [[x] for x in xq])
    raw = np.stack([r["outputs"][0] for r in res])
    qp = tout.qparams
    real = (raw.astype(np.float64) - int(qp.zero_point[0])) * float(qp.scale[0])
    return xq, raw, real


NO_ORACLE = "†"
NO_ORACLE_NOTE = (
    "† Measured by mcuq's generated C on the host, which gives its numpy mirror's outputs bit for bit (asserted), "
    "not by the oracle: the model converts an int8 tensor to int16 (QUANTIZE int8 -> int16), which no TFLite "
    "interpreter runs (tflite-runtime 2.14 and TensorFlow 2.21 refuse it when preparing the op)."
)


def no_16x8(g) -> list[str]:
    """The op kinds of the float graph ``g`` that have no 16x8 version (outside OPS_16X8), sorted."""
    return sorted({op.kind.name for op in g.ops} - OPS_16X8)


def widening_quantize(g) -> bool:
    """Whether ``g`` has a QUANTIZE from int8 to int16 (a mixed model's int8 tensor feeding an int16 layer). No
    TFLite interpreter runs one: tflite-runtime 2.14 (quantize.cc:136) and TensorFlow 2.21 (quantize.cc:191) both
    refuse an int16 output for an int8 input in Prepare."""
    from mcuq.ir import DType, OpKind

    return any(
        op.kind is OpKind.QUANTIZE
        and g.tensors[op.inputs[0]].dtype is DType.INT8
        and g.tensors[op.outputs[0]].dtype is DType.INT16
        for op in g.ops
    )


def c_against_numpy(cm, g, xs: np.ndarray) -> np.ndarray:
    """The real outputs (float64) of the generated C on the float samples ``xs``, asserted equal to mcuq's numpy
    mirror of its kernels (``mcuq.quant.evaluate.run_integer``): the measurement where no oracle runs the model."""
    from mcuq.quant.edge import dequantize_output, quantize_input
    from mcuq.quant.evaluate import run_integer

    tin, tout = g.tensors[g.inputs[0]], g.tensors[g.outputs[0]]
    raw = np.asarray(cm.run(quantize_input(tin, xs))[0]).reshape(len(xs), *tout.shape)
    ref = run_integer(g, [xs.reshape(len(xs), *tin.shape)])[0]
    c_real = dequantize_output(tout, raw)
    if not np.array_equal(c_real.reshape(ref.shape), ref):
        raise AssertionError("the generated C differs from mcuq's numpy reference")
    qp = tout.qparams
    return (raw.astype(np.float64) - int(qp.zero_point[0])) * float(qp.scale[0])


def files_key(cm, board: str) -> str:
    """The cache key of a QEMU measurement: the board, the kernel path and every generated file's content."""
    h = hashlib.sha256(f"{board}\0{cm.kernels}\0".encode())
    for name in sorted(cm.files):
        h.update(name.encode() + b"\0" + cm.files[name].encode() + b"\0")
    return h.hexdigest()


class QemuCache:
    """Instructions and arena per (generated C, board), kept in build/bench-lowbit/qemu.json across runs."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, dict[str, int]] = json.loads(path.read_text()) if path.exists() else {}

    def measure(self, qm, board: str, prefix: str) -> dict[str, int]:
        import mcuq
        from mcuq.firmware.profile import profile

        cm = mcuq.compile_model(qm, board=board, prefix=prefix, sanitize=False)
        key = files_key(cm, board)
        if key not in self.data:
            p = profile(cm, cm.target)
            self.data[key] = {"instructions": int(p.instructions), "arena": int(p.sizes["arena"])}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(self.data, indent=1, sort_keys=True) + "\n")
        return self.data[key]


@dataclass
class Bench:
    """What every row needs: the cases, the float outputs (SQNR reference), the QEMU cache and switches."""

    cases: dict[str, ptq.Case]
    qemu: QemuCache | None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what is not measured by design (not a missing piece)

    def fail(self, model: str, what: str, e: BaseException) -> str:
        """Record (and print) why ``what`` could not be measured, in one line; returns that line."""
        msg = f"{model} {what}: {type(e).__name__}: {' '.join(str(e).split())[:300]}"
        self.problems.append(msg)
        print(f"bench-lowbit: {msg}", file=sys.stderr, flush=True)
        return msg

    def mcuq_result(self, case: ptq.Case, qm, label: str, kind: str, prefix: str, precision: str = "") -> Result:
        """Measure the quantized model ``qm``: metrics under the oracle, the C against the oracle, bytes, QEMU."""
        import mcuq
        from mcuq.quant.costs import model_weight_bytes

        note = ""
        try:
            cm = mcuq.compile_model(qm, prefix=prefix)
            if widening_quantize(qm.graph):
                real = c_against_numpy(cm, qm.graph, case.test)
                note = NO_ORACLE
            else:
                xq, raw, real = quantized_io(qm.tflite_bytes(), case.test)
                c_out = cm.run(xq)[0]
                if not np.array_equal(np.asarray(c_out).reshape(raw.shape), raw):
                    raise AssertionError("the generated C differs from the oracle")
            metrics = {short(name): f(real) for name, f in case.metrics.items()}
            arena: dict[str, int] = {}
            instr: dict[str, int] = {}
            if self.qemu is not None:
                for b in BOARDS:
                    m = self.qemu.measure(qm, b, prefix)
                    arena[b], instr[b] = m["arena"], m["instructions"]
            r = Result(case.key, label, kind, metrics, model_weight_bytes(cm), arena, instr, precision, note)
        except Exception as e:  # noqa: BLE001 - a missing piece is reported per row, not a traceback
            return Result(case.key, label, kind, error=self.fail(case.key, label, e))
        print(f"bench-lowbit: {case.key} {label}: {metrics} weights {r.weight_bytes} B {instr}", flush=True)
        return r

    def uniform(self, case: ptq.Case, q) -> list[Result]:
        out = []
        for label, bits, act, rounding in UNIFORM:
            try:
                qm = q.quantize(weight_bits=bits, activations=act, rounding=rounding)
            except Exception as e:  # noqa: BLE001
                outside = no_16x8(q.float_graph) if act == "int16" else []
                if outside:
                    out.append(Result(case.key, label, "uniform", note=f"no 16x8 version: {', '.join(outside)}"))
                    self.notes.append(f"{case.key}: {', '.join(outside)} are outside issue 11's 16x8 op list: no "
                                      "int16 rows, and the mixed choice is among int8-activation options")  # fmt: skip
                    continue
                out.append(Result(case.key, label, "uniform", error=self.fail(case.key, f"{label}: quantize", e)))
                continue
            tag = label.split(",")[0] + ("_rtn" if rounding == "nearest" else "")
            out.append(self.mcuq_result(case, qm, label, "uniform", f"lb_{case.key}_{tag}"))
        return out


def aieq_results(case: ptq.Case, outputs: dict[str, np.ndarray], status: dict) -> list[Result]:
    """AI Edge Quantizer's rows of one model, from benchmarks/lowbit_ref.py's outputs."""
    out = []
    for r, label in AIEQ_LABELS.items():
        st = status.get("models", {}).get(case.key, {}).get(r, {})
        key = f"{case.key}__{r}"
        if key not in outputs:
            err = st.get("error") or "not run"
            out.append(Result(case.key, label, "aieq", note=f"failed: {err}", error=err))
            continue
        metrics = {short(name): f(outputs[key]) for name, f in case.metrics.items()}
        out.append(Result(case.key, label, "aieq", metrics, note=f"TensorFlow 2.21; file {st.get('bytes', 0):,} B"))
    return out


def run_aieq(py: Path) -> tuple[dict[str, np.ndarray], dict]:
    t0 = time.perf_counter()
    ptq._quiet([str(py), str(ROOT / "benchmarks" / "lowbit_ref.py"), str(ptq.WORK), str(WORK)], "lowbit_ref.py")
    print(f"bench-lowbit: AI Edge Quantizer int4 recipes in {time.perf_counter() - t0:.0f} s", flush=True)
    return ptq_data.load(WORK / "aieq_outputs.npz"), json.loads((WORK / "aieq_status.json").read_text())


def versions(status: dict) -> str:
    import mcuq

    ref = status.get("versions", {})
    return (
        f"mcuq {mcuq.__version__}; oracle tflite-runtime {version('tflite-runtime')}; "
        f"tensorflow-cpu {ref.get('tensorflow-cpu', '?')} and ai-edge-quantizer {ref.get('ai-edge-quantizer', '?')} "
        f"(build/bench-ptq-venv); numpy {np.__version__}; Python {platform.python_version()}"
    )


def primary_metric(case: ptq.Case) -> str:
    """The column the mixed-precision comparison reads: accuracy where there are labels, else SQNR."""
    names = [short(n) for n in case.metrics]
    return next((n for n in names if "accuracy" in n), names[0])


def short(metric: str) -> str:
    """A bench-ptq metric name without its model: "digits accuracy %" -> "accuracy %"."""
    return metric.split(" ", 1)[1] if " " in metric else metric


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", metavar="MD", help="also write the tables into this markdown file's section")
    ap.add_argument("--plot", metavar="FILE", default=None, help="the Pareto plot (default: docs/lowbit_pareto.svg "
                    "with --write docs/...md, else build/bench-lowbit/lowbit_pareto.svg)")  # fmt: skip
    ap.add_argument("--models", default=",".join(ptq.FLOAT_MODELS), help="comma-separated subset of the models")
    ap.add_argument("--no-qemu", action="store_true", help="skip the QEMU measurements (arena, instructions)")
    ap.add_argument("--allow-missing", action="store_true", help="write the section even when pieces are missing")
    ap.add_argument("--reuse-ref", action="store_true", help="keep the AI Edge Quantizer models of a last run")
    args = ap.parse_args()
    from tests.util import oracle

    if not ptq.MODELS.is_dir():
        print(f"bench-lowbit: no models at {ptq.MODELS} (set MCUQ_MODELS)", file=sys.stderr)
        return 2
    if not oracle.available():
        print("bench-lowbit: tflite-runtime 2.14 (the oracle) is not installed in this Python (make setup)",
              file=sys.stderr)  # fmt: skip
        return 2
    keys = [k for k in args.models.split(",") if k]
    unknown = sorted(set(keys) - set(ptq.FLOAT_MODELS))
    if unknown:
        print(f"bench-lowbit: unknown models {unknown}; choose from {', '.join(ptq.FLOAT_MODELS)}", file=sys.stderr)
        return 2
    missing = missing_pieces()
    if missing:
        print("bench-lowbit: missing: " + "; ".join(missing), file=sys.stderr)
        return 1
    use_qemu = not args.no_qemu and bool(shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm"))
    if not use_qemu and not args.no_qemu:
        missing.append("arm-none-eabi-gcc or qemu-system-arm (make setup): no arena or instruction counts")
    t0 = time.perf_counter()
    data = ptq_data.make_all(ptq.MODELS)
    ptq.WORK.mkdir(parents=True, exist_ok=True)
    WORK.mkdir(parents=True, exist_ok=True)
    py = ptq.ensure_ref_env()
    if not all(ptq.FLOAT_MODELS[k].exists() for k in ptq.FLOAT_MODELS) or not (ptq.WORK / "versions.json").exists():
        ptq.prepare(data)  # the float models that bench-ptq trains (digits, digits2, cancer) and the rebuilt copies
        ptq.run_ref(py)
    if args.reuse_ref and (WORK / "aieq_status.json").exists():
        aieq_out, status = ptq_data.load(WORK / "aieq_outputs.npz"), json.loads((WORK / "aieq_status.json").read_text())
    else:
        aieq_out, status = run_aieq(py)
    float_out: dict[str, np.ndarray] = {}
    all_cases = {c.key: c for c in ptq.cases(data, float_out) if c.key in keys}
    float_out.update({k: ptq.run_model(c.float_model, c.test).real for k, c in all_cases.items()})
    bench = Bench(all_cases, QemuCache(WORK / "qemu.json") if use_qemu else None)
    tables: dict[str, list[str]] = {}
    choices: list[Choice] = []
    fronts: dict[str, list[Result]] = {}
    for key, case in all_cases.items():
        results, model_choices = measure_model(bench, case, aieq_out, status)
        choices += model_choices
        fronts[key] = results
        w8 = next((r.weight_bytes for r in results if r.label == "w8a8"), None)
        tables[key] = model_table(results, [short(c) for c in case.metrics], w8)
    metric_of = {k: primary_metric(c) for k, c in all_cases.items()}
    choice_lines = choice_table(choices, lambda m: metric_of[m]) if choices else []
    plot = args.plot
    if plot is None:
        plot = str(Path(args.write).parent / "lowbit_pareto.svg") if args.write else str(WORK / "lowbit_pareto.svg")
    plotted = draw_pareto(fronts, metric_of, Path(plot))
    problems = missing + bench.problems
    text = render(tables, choice_lines, problems, versions(status), Path(plot).name if plotted else None, bench.notes)
    print(text)
    print(f"bench-lowbit: {time.perf_counter() - t0:.0f} s")
    if args.write and (not problems or args.allow_missing):
        write_section(Path(args.write), text)
        print(f"wrote the low-bit section of {args.write}")
    elif args.write:
        print(f"bench-lowbit: {len(problems)} measurements missing: did not write {args.write} "
              "(--allow-missing writes it anyway)", file=sys.stderr)  # fmt: skip
    return 1 if problems else 0


def measure_model(bench: Bench, case: ptq.Case, aieq_out: dict, status: dict) -> tuple[list[Result], list[Choice]]:
    """Every row of one model's table (float, uniform, mixed exact and greedy, AI Edge Quantizer) and the solver
    comparison at each budget."""
    flt = {short(k): v for k, v in ptq.measure(case, case.float_model).items()}
    results = [Result(case.key, "float model", "float", flt)]
    planner = None
    try:
        from mcuq.quant.mixed import Planner

        planner = Planner(case.float_model, case.calib)  # sensitivities on the calibration data, never the test set
        q = planner.quants.quantizer
        if not no_16x8(planner.quants.float_graph):  # else the int16 options are left out by design
            bench.problems += [f"{case.key}: mixed precision: {n}" for n in planner.notes]
    except Exception as e:  # noqa: BLE001 - the uniform rows are still measured
        bench.fail(case.key, "mixed precision (mcuq.quant.mixed.Planner)", e)
        from mcuq.quant.ptq import Quantizer

        q = Quantizer(case.float_model, case.calib)
    results += bench.uniform(case, q)
    w8 = next((r.weight_bytes for r in results if r.label == "w8a8"), None)
    choices = mixed(bench, case, planner, w8) if w8 and planner is not None else []
    results += [c.exact for c in choices] + [c.greedy for c in choices]
    results += aieq_results(case, aieq_out, status)
    return results, choices


def mixed(bench: Bench, case: ptq.Case, planner, int8_weight_bytes: int) -> list[Choice]:
    """Mixed precision at each budget (packed weight bytes <= a fraction of the w8a8 model's): the exact solver's
    choice and the greedy one on the same sensitivities and costs, each verified, then measured like every row."""
    from mcuq.quant.knapsack import Infeasible

    out = []
    for frac in BUDGETS:
        budget = int(frac * int8_weight_bytes)
        rows: dict[str, tuple[Result, float | None]] = {}
        for method, kind in (("milp", "exact"), ("greedy", "greedy")):
            label = f"{kind} solver, weights <= {100 * frac:.0f} %"
            try:
                v = planner.choose({"weights": budget}, method=method)
            except Infeasible as e:  # a result: no recipe fits this budget
                rows[kind] = (Result(case.key, label, kind, note="infeasible: " + " ".join(str(e).split())), None)
                continue
            except Exception as e:  # noqa: BLE001
                rows[kind] = (Result(case.key, label, kind, error=bench.fail(case.key, label, e)), None)
                continue
            prec = precision_string(planner.names, v.recipe)
            prefix = f"lb_{case.key}_{kind}{round(100 * frac)}"
            rows[kind] = (bench.mcuq_result(case, v.qm, label, kind, prefix, prec), v.predicted_loss)
        (ex, exl), (gr, grl) = rows["exact"], rows["greedy"]
        out.append(Choice(case.key, frac, budget, exl, grl, ex, gr))
    return out


def draw_pareto(fronts: dict[str, list[Result]], metric_of: dict[str, str], path: Path) -> bool:
    """Weight bytes against the metric per model (every measured mcuq row; the exact solver's front as a line);
    False (and a one-line hint) without matplotlib."""
    try:
        import matplotlib
    except ImportError:
        print("bench-lowbit: matplotlib is not installed (pip install 'mcuq[plot]'): no Pareto plot", file=sys.stderr)
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k, rs in fronts.items() if any(r.weight_bytes for r in rs)]
    if not keys:
        return False
    style = {"uniform": ("o", "C0"), "exact": ("s", "C2"), "greedy": ("^", "C3")}
    # fixed ids and glyphs as paths, no date: the same results give the same bytes (as mcuq.quant.pareto.plot)
    with matplotlib.rc_context({"svg.hashsalt": "mcuq", "svg.fonttype": "path"}):
        fig, axes = plt.subplots(1, len(keys), figsize=(4.0 * len(keys), 3.4), squeeze=False)
        for ax, key in zip(axes[0], keys):
            col = metric_of[key]
            for kind, (marker, color) in style.items():
                pts = sorted((r.weight_bytes, r.metrics[col]) for r in fronts[key]
                             if r.kind == kind and r.weight_bytes and np.isfinite(r.metrics.get(col, np.nan)))  # fmt: skip
                if pts:
                    ls = "-" if kind == "exact" else "none"
                    ax.plot(*zip(*pts), marker=marker, color=color, linestyle=ls, label=kind)
            ax.set_title(key)
            ax.set_xlabel("weight bytes")
            ax.set_ylabel(col)
            ax.grid(True, alpha=0.3)
        axes[0][0].legend(fontsize=8)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {"Date": None} if path.suffix == ".svg" else {"Software": None} if path.suffix == ".png" else {}
        fig.savefig(path, metadata=meta)
        plt.close(fig)
    return True


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
