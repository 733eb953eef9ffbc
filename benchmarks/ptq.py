"""`make bench-ptq`: mcuq's post-training quantization against TensorFlow's TFLite converter and AI Edge Quantizer.

Usage: python benchmarks/ptq.py [--write docs/benchmarks.md] [--reuse-ref]

Five float models with real data (benchmarks/ptq_data.py): two digits CNNs of different styles and a breast
cancer MLP, all trained here, MLPerf Tiny's AD01 autoencoder and TFLM's hello_world. Each is quantized by mcuq with
every calibration method, with and without bias correction, by the TFLite converter (full int8) and by AI Edge
Quantizer (static_wi8_ai8), all on the same calibration samples. Every int8 model is then measured by one
interpreter, tflite-runtime 2.14 with its reference kernels (the oracle of the test suite), so the tools are judged
alike; mcuq's models also run through mcuq's generated C on the host, which must give the oracle's outputs bit for
bit.

TensorFlow and AI Edge Quantizer live in their own environment, build/bench-ptq-venv, which this script makes on
first use (python -m venv + pip install, REF_REQUIREMENTS) and never in mcuq's .venv: benchmarks/ptq_ref.py runs
there and only writes .tflite files into build/bench-ptq/. ``--reuse-ref`` keeps the files of an earlier run.
``--write MD`` replaces the section "## Post-training quantization" of MD (appended when absent) and nothing else.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import ptq_data  # noqa: E402

import mcuq  # noqa: E402
from mcuq.frontend import load  # noqa: E402
from mcuq.ir import OpKind  # noqa: E402
from tests.util import oracle  # noqa: E402

MODELS = Path(os.environ.get("MCUQ_MODELS", ROOT.parent / "shared" / "models"))
WORK = ROOT / "build" / "bench-ptq"
REF_VENV = ROOT / "build" / "bench-ptq-venv"
REF_REQUIREMENTS = ("tensorflow-cpu==2.21.0", "ai-edge-quantizer==0.10.0", "scikit-learn")
SECTION = "## Post-training quantization"
# The float models: what mcuq quantizes and what the float metric (and the SQNR reference) is measured on.
FLOAT_MODELS = {
    "digits": WORK / "digits_float.tflite",
    "digits2": WORK / "digits2_float.tflite",
    "ad": MODELS / "mlperf_tiny/ad01_fp32.tflite",
    "hello": MODELS / "tflm/hello_world_float.tflite",
    "cancer": WORK / "cancer_float.tflite",
}


# ---------------------------------------------------------------------------------------------- the other env
def ensure_ref_env() -> Path:
    """The python of build/bench-ptq-venv, made (venv + pip install REF_REQUIREMENTS) when missing or outdated."""
    py = REF_VENV / "bin" / "python"
    stamp = REF_VENV / ".mcuq-bench-ptq"
    want = "\n".join(REF_REQUIREMENTS) + "\n"
    if py.exists() and stamp.exists() and stamp.read_text() == want:
        return py
    print(f"bench-ptq: installing {' '.join(REF_REQUIREMENTS)} into {REF_VENV.relative_to(ROOT)} (once)", flush=True)
    if not py.exists():
        _quiet([sys.executable, "-m", "venv", str(REF_VENV)], "python -m venv")
    _quiet([str(py), "-m", "pip", "install", "-q", *REF_REQUIREMENTS], "pip install")
    stamp.write_text(want)
    return py


def _quiet(cmd: list[str], what: str) -> str:
    """Run ``cmd``; its output is shown only when it fails (then the benchmark stops)."""
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"bench-ptq: {what} failed (status {proc.returncode})")
    return proc.stdout


def fc_weights(path: Path) -> dict[str, np.ndarray]:
    """A float FULLY_CONNECTED stack's weights ([out, in]), biases and fused activations, for ptq_ref's Keras copy."""
    g = load(path)
    out: dict[str, np.ndarray] = {"activations": np.array([op.attrs.activation.value for op in g.ops])}
    for i, op in enumerate(g.ops):
        if op.kind is not OpKind.FULLY_CONNECTED:
            raise SystemExit(f"bench-ptq: {path.name}: {op.where} is {op.kind.name}, not a fully connected layer")
        out[f"w{i}"] = np.asarray(g.tensors[op.inputs[1]].data, np.float32)
        out[f"b{i}"] = np.asarray(g.tensors[op.inputs[2]].data, np.float32)
    return out


def prepare(data: dict[str, np.ndarray]) -> None:
    """What ptq_ref.py reads: the data sets, the FC stacks' weights, a copy of hello_world_float.tflite."""
    ptq_data.save(WORK / "data.npz", data)
    ptq_data.save(WORK / "ad_fc.npz", fc_weights(MODELS / "mlperf_tiny/ad01_fp32.tflite"))
    ptq_data.save(WORK / "hello_fc.npz", fc_weights(MODELS / "tflm/hello_world_float.tflite"))
    (WORK / "hello_float.tflite").write_bytes((MODELS / "tflm/hello_world_float.tflite").read_bytes())


def run_ref(py: Path) -> None:
    t0 = time.perf_counter()
    out = _quiet([str(py), str(ROOT / "benchmarks" / "ptq_ref.py"), str(WORK)], "benchmarks/ptq_ref.py")
    n = sum(1 for line in out.splitlines() if line.startswith("ptq_ref: wrote"))
    print(f"bench-ptq: TFLite converter and AI Edge Quantizer: {n} models in {time.perf_counter() - t0:.0f} s")


# ---------------------------------------------------------------------------------------------- measuring
@dataclass(frozen=True)
class Case:
    """One float model with its data and metrics (name -> function of its float outputs)."""

    key: str
    float_model: Path  # what mcuq quantizes and what the float metric is measured on
    calib: np.ndarray
    test: np.ndarray
    metrics: dict[str, Callable[[np.ndarray], float]]
    rebuilt: Path | None = None  # the TensorFlow-made float copy that the other tools quantize, checked equal
    shipped_int8: Path | None = None


def round_half_away(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


@dataclass(frozen=True)
class Outputs:
    """A model's outputs on float samples under the oracle."""

    raw: np.ndarray  # as the model gives them (int8 for an int8 model), one per sample
    real: np.ndarray  # dequantized with the output's parameters (float64)
    int8_inputs: np.ndarray | None  # the quantized inputs given (None for a float input)


def run_model(model: bytes | Path, xs: np.ndarray) -> Outputs:
    """Run ``model`` on the float samples ``xs`` under the oracle; an int8 input is quantized with the model's own
    parameters (round half away from zero, as TFLite's QUANTIZE) and an int8 output dequantized."""
    g = load(model)
    tin, tout = g.tensors[g.inputs[0]], g.tensors[g.outputs[0]]
    xq = None
    if tin.dtype.name == "INT8":
        v = xs.astype(np.float32) / np.float32(tin.scale)
        xq = np.clip(round_half_away(v) + tin.zero_point, -128, 127).astype(np.int8)
    res = oracle.run(model, [[x] for x in (xs if xq is None else xq)])
    raw = np.stack([r["outputs"][0] for r in res])
    real = raw.astype(np.float64)
    if tout.dtype.name == "INT8":
        real = (real - tout.zero_point) * tout.scale
    return Outputs(raw, real, xq)


def measure(case: Case, model: bytes | Path) -> dict[str, float]:
    out = run_model(model, case.test).real
    return {name: f(out) for name, f in case.metrics.items()}


def mcuq_row(case: Case, method: str, bias_correction: bool) -> tuple[dict[str, float], float]:
    """mcuq's metrics for one configuration (and the seconds quantization took); asserts that the generated C
    gives the oracle's int8 outputs bit for bit."""
    t0 = time.perf_counter()
    qm = mcuq.quantize(case.float_model, case.calib, method=method, bias_correction=bias_correction)
    secs = time.perf_counter() - t0
    out = run_model(qm.tflite_bytes(), case.test)
    cm = mcuq.compile_model(qm.graph, prefix=f"{case.key}_{method}")
    c_out = cm.run(out.int8_inputs)[0]
    np.testing.assert_array_equal(
        c_out.reshape(out.raw.shape), out.raw, err_msg=f"{case.key} {method}: the generated C differs from the oracle"
    )
    return {name: f(out.real) for name, f in case.metrics.items()}, secs


def cases(data: dict[str, np.ndarray], float_out: dict[str, np.ndarray]) -> list[Case]:
    """The benchmark's models. ``float_out`` holds (by the time a metric runs) each float model's outputs on its test
    set, keyed by case: the SQNR reference."""

    def sqnr(key: str) -> Callable[[np.ndarray], float]:
        return lambda out: ptq_data.sqnr_db(float_out[key], out)

    def acc(labels: str) -> Callable[[np.ndarray], float]:
        return lambda out: ptq_data.accuracy(out, data[labels])

    return [
        Case("digits", FLOAT_MODELS["digits"], data["digits_calib"], data["digits_test"],
             {"digits accuracy %": acc("digits_labels"), "digits SQNR dB": sqnr("digits")}),
        Case("digits2", FLOAT_MODELS["digits2"], data["digits_calib"], data["digits_test"],
             {"digits2 accuracy %": acc("digits_labels"), "digits2 SQNR dB": sqnr("digits2")}),
        Case("ad", FLOAT_MODELS["ad"], data["ad_calib"], data["ad_test"],
             {"AD SQNR dB": sqnr("ad")}, WORK / "ad_float_tf.tflite", MODELS / "mlperf_tiny/ad01_int8.tflite"),
        Case("hello", FLOAT_MODELS["hello"], data["hello_calib"], data["hello_test"],
             {"hello_world SQNR dB": sqnr("hello")}, WORK / "hello_float_tf.tflite",
             MODELS / "tflm/hello_world_int8.tflite"),
        Case("cancer", FLOAT_MODELS["cancer"], data["cancer_calib"], data["cancer_test"],
             {"cancer accuracy %": acc("cancer_labels"), "cancer SQNR dB": sqnr("cancer")}),
    ]  # fmt: skip


def check_rebuilt(case: Case) -> float:
    """The largest difference between the float outputs of the TensorFlow-made copy and the original, on all of the
    case's samples; the benchmark stops when the copy is not the same function."""
    xs = np.concatenate([case.calib, case.test])
    a = run_model(case.float_model, xs).real
    b = run_model(case.rebuilt, xs).real
    diff = float(np.max(np.abs(a - b)))
    if diff > 1e-4 * max(1.0, float(np.max(np.abs(a)))):
        raise SystemExit(f"bench-ptq: {case.rebuilt.name} differs from {case.float_model.name} by {diff}")
    return diff


# ---------------------------------------------------------------------------------------------- the table
@dataclass(frozen=True)
class Row:
    label: str
    kind: str  # "float", "shipped", "mcuq", "tool"
    values: dict[str, float]
    method: str = ""
    bias_correction: bool = False


def rank(rows: list[Row], columns: list[str]) -> dict[str, float]:
    """Mean rank (1 = best, ties share the mean of their places) of each row over ``columns``; values compared at
    the precision the table shows."""
    ranks: dict[str, list[float]] = {r.label: [] for r in rows}
    for c in columns:
        vals = [round(r.values[c], 2) for r in rows]
        for r, v in zip(rows, vals):
            better = sum(1 for w in vals if w > v)
            equal = sum(1 for w in vals if w == v)
            ranks[r.label].append(better + (equal + 1) / 2)
    return {k: float(np.mean(v)) for k, v in ranks.items()}


def mark(v: float, ref: float, letter: str) -> str:
    a, b = round(v, 2), round(ref, 2)
    return (">" if a > b else "=" if a == b else "<") + letter


def table(rows: list[Row], columns: list[str]) -> tuple[list[str], str]:
    """The markdown table and a sentence naming the best mcuq configuration overall."""
    mq = [r for r in rows if r.kind == "mcuq"]
    ranks = rank(mq, columns)
    tfc = next(r for r in rows if r.label.startswith("TFLite converter"))
    aieq = [r for r in rows if r.label.startswith("AI Edge Quantizer")]
    best_tool = {c: max(r.values[c] for r in aieq) for c in columns}
    best = min(mq, key=lambda r: (ranks[r.label], r.label))
    best_bc = min((r for r in mq if r.bias_correction), key=lambda r: (ranks[r.label], r.label))
    top = {c: max(round(r.values[c], 2) for r in rows if r.kind != "float" and c in r.values) for c in columns}
    header = ["quantizer", *columns, "mean rank (mcuq)"]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    for r in rows:
        cells = []
        for c in columns:
            v = r.values.get(c)
            if v is None or v == float("inf"):
                cells.append("-" if v is None else "reference")
                continue
            s = f"{v:.2f}"
            if r.kind != "float" and round(v, 2) == top[c]:
                s = f"**{s}**"
            if r.kind == "mcuq":
                s += f" {mark(v, tfc.values[c], 'T')} {mark(v, best_tool[c], 'A')}"
            cells.append(s)
        label = f"**{r.label}**" if r is best else r.label
        cells.append(f"{ranks[r.label]:.2f}" if r.kind == "mcuq" else "")
        lines.append("| " + " | ".join([label, *cells]) + " |")
    summary = (
        f"Best mcuq configuration overall (lowest mean rank over the {len(columns)} metric columns): "
        f"{best.label}; with bias correction (the default): {best_bc.label}."
    )
    return lines, summary


def write_section(md: Path, text: str) -> None:
    """Replace the section SECTION of ``md`` (up to the next "## " heading) with ``text``, or append it."""
    old = md.read_text() if md.exists() else "# Benchmarks\n"
    lines = old.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == SECTION), None)
    if start is None:
        new = old.rstrip("\n") + "\n\n" + text
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        rest = "".join(lines[end:])
        new = "".join(lines[:start]) + text + ("\n" + rest if rest else "")
    md.write_text(new)


def versions() -> str:
    ref = json.loads((WORK / "versions.json").read_text())
    return (
        f"tensorflow-cpu {ref['tensorflow-cpu']}, ai-edge-quantizer {ref['ai-edge-quantizer']}, "
        f"keras {ref['keras']}; oracle tflite-runtime {version('tflite-runtime')} (numpy {np.__version__}); "
        f"mcuq {mcuq.__version__}; Python {platform.python_version()}"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", metavar="MD", help="also write the table into this markdown file's PTQ section")
    ap.add_argument("--reuse-ref", action="store_true", help="keep the TFLite converter / AIEQ models of a last run")
    args = ap.parse_args()
    if not MODELS.is_dir():
        print(f"bench-ptq: no models at {MODELS} (set MCUQ_MODELS)", file=sys.stderr)
        return 2
    if not oracle.available():
        print(
            "bench-ptq: tflite-runtime 2.14 (the oracle) is not installed in this Python (make setup)", file=sys.stderr
        )
        return 2
    t0 = time.perf_counter()
    data = ptq_data.make_all(MODELS)
    WORK.mkdir(parents=True, exist_ok=True)
    if not (args.reuse_ref and (WORK / "versions.json").exists()):
        prepare(data)
        run_ref(ensure_ref_env())
    float_out: dict[str, np.ndarray] = {}
    all_cases = cases(data, float_out)
    float_out.update({case.key: run_model(case.float_model, case.test).real for case in all_cases})
    columns = [c for case in all_cases for c in case.metrics]
    rebuilt = {case.key: check_rebuilt(case) for case in all_cases if case.rebuilt}
    rows = measure_all(all_cases)
    lines, summary = table(rows, columns)
    text = render(lines, summary, rebuilt)
    print("\n".join(lines))
    print(summary)
    print(f"bench-ptq: {time.perf_counter() - t0:.0f} s")
    if args.write:
        write_section(Path(args.write), text)
        print(f"wrote the PTQ section of {args.write}")
    return 0


def measure_all(all_cases: list[Case]) -> list[Row]:
    """Every row of the table, in order: float, shipped int8, mcuq's configurations, the two tools."""

    def per_case(f: Callable[[Case], dict[str, float] | None]) -> dict[str, float]:
        out: dict[str, float] = {}
        for case in all_cases:
            out.update(f(case) or {})
        return out

    rows = [Row("float model", "float", per_case(lambda c: measure(c, c.float_model)))]
    rows.append(
        Row("int8 model shipped with it", "shipped", per_case(lambda c: c.shipped_int8 and measure(c, c.shipped_int8)))
    )
    from mcuq.quant.ptq import METHODS

    methods = [m for m in METHODS if m != "auto"] + ["auto"]
    for m in methods:
        for bc in (True, False):
            vals: dict[str, float] = {}
            for case in all_cases:
                v, secs = mcuq_row(case, m, bc)
                vals.update(v)
                print(f"bench-ptq: mcuq {case.key} {m} bias_correction={bc}: {v} ({secs:.1f} s)", flush=True)
            label = f"mcuq {m}" + ("" if bc else ", no bias correction")
            rows.append(Row(label, "mcuq", vals, m, bc))
    for label, suffix in (
        ("TFLite converter (full int8)", "tfconv"),
        ("AI Edge Quantizer static_wi8_ai8 (moving-average ranges, its default)", "aieq"),
        ("AI Edge Quantizer static_wi8_ai8, min_max_update ranges", "aieq_minmax"),
    ):
        rows.append(Row(label, "tool", per_case(lambda c, s=suffix: measure(c, WORK / f"{c.key}_{s}.tflite"))))
    return rows


def render(lines: list[str], summary: str, rebuilt: dict[str, float]) -> str:
    """The whole section: PREAMBLE (the setup, notes and versions), the table, the summary."""
    notes = ", ".join(f"{k} {v:.1e}" if v else f"{k} 0 (bit-identical)" for k, v in rebuilt.items())
    return PREAMBLE.format(versions=versions(), rebuilt=notes) + "\n".join(lines) + "\n\n" + summary + "\n"


PREAMBLE = """## Post-training quantization

Generated by `make bench-ptq` (`benchmarks/ptq.py`). Five float models with real data, quantized to int8 by mcuq
(`mcuq.quantize`, each `--calib-method`, with and without bias correction), by TensorFlow's TFLite converter (full
integer: `optimizations=[DEFAULT]`, `TFLITE_BUILTINS_INT8`, int8 input and output, `representative_dataset`) and by
AI Edge Quantizer (recipe `static_wi8_ai8`), every tool on the same calibration samples in the same order. **One
interpreter measures every int8 model: tflite-runtime 2.14 with its reference kernels (`BUILTIN_REF`, the test
suite's oracle)**; inputs are quantized and outputs dequantized with each model's own parameters. mcuq's models
also run through mcuq's generated C on the host, which gives the oracle's int8 outputs bit for bit (asserted).

- **digits**: scikit-learn's 8x8 digits; a CNN (3x3 conv 8, depthwise 3x3, 1x1 conv 16, all ReLU; 2x2 average pool;
  dense 10; softmax) trained in Keras with fixed seeds on 1,437 images and converted to float TFLite. Calibration:
  the first 100 training images. Metrics on the 360 held-out images (the split of `examples/train_digits.py`):
  top-1 accuracy, and the SQNR of the 10 probabilities against the float model.
- **digits2**: the same images, split and metrics; a CNN in another style, trained and converted the same way: a
  3x3 convolution (8) and a 5x5 convolution (8) with hard-swish (`HARD_SWISH`) side by side, concatenated
  (`CONCATENATION`), ReLU6 (a `RELU6` op of its own), 2x2 max pool, 3x3 convolution 24 with ReLU6 (fused), global
  average pool (`MEAN`), dense 10, softmax. AI Edge Quantizer leaves that `RELU6` op in float (dequantize, float
  RELU6, quantize); the other tools quantize every op.
- **cancer**: scikit-learn's breast cancer set (569 samples, 30 features, 2 classes), shuffled with seed 0, 169
  held out; features standardised with the 400 training samples' mean and deviation. An MLP, trained in Keras with
  fixed seeds on the 400: dense 16 with tanh (`TANH`), dense 8 with logistic (`LOGISTIC`), dense 2, softmax. The
  first 100 training samples calibrate. Metrics on the 169: accuracy, and the SQNR of the 2 probabilities against
  the float model.
- **AD**: MLPerf Tiny `ad01_fp32.tflite` (10 fully connected layers, 640 -> 128 -> ... -> 8 -> ... -> 640); its test
  clip's 200 frames give 196 windows of 5 frames; calibration on windows 0-99, SQNR of the 640 outputs against the
  float model on windows 100-195. The file stores its opcodes only in the legacy `deprecated_builtin_code` field and
  has no SignatureDef, so AI Edge Quantizer misreads it (as ADD ops) and cannot calibrate it. We rebuilt the
  network in Keras from the file's own weights (read by mcuq's frontend) and converted it back to float TFLite with
  TensorFlow's converter, which writes `builtin_code` and a `serving_default` SignatureDef; that copy is what the
  TFLite converter and AI Edge Quantizer quantize, mcuq quantizes the original. The benchmark checks that each
  rebuilt copy computes what its original does: largest difference of the float outputs on all of the model's
  samples under tflite-runtime: {rebuilt}.
- **hello_world**: TFLM's `hello_world_float.tflite` (3 fully connected layers, x -> sin x). x uniform in
  [0, 2 pi) (seed 0): 100 values calibrate, SQNR against the float model on 1,000 others. The TFLite converter
  quantizes the Keras rebuild; AI Edge Quantizer reads the shipped file (it has a SignatureDef).

Marks after each mcuq value: `>T` / `=T` / `<T` better than / equal to / worse than the TFLite converter, `>A` /
`=A` / `<A` the same against the better of the two AI Edge Quantizer rows (compared at the 2 decimals shown).
Bold: the best int8 value of a column; the bold row is mcuq's best configuration overall (lowest mean rank among
mcuq's rows over all metric columns). The "shipped" row is the int8 model published beside the float one
(ad01_int8: per-tensor weights, the issue's 31.70 dB). AI Edge Quantizer's calibrator keeps a moving average of each
tensor's min and max over the samples (smoothing 0.95): with a batch-1 model that is one sample at a time, so its
ranges follow the last samples; its second row passes the library's own `qsv_utils.min_max_update` to its
`Calibrator` instead (the recipe itself has no range option).

Versions: {versions}.

"""

if __name__ == "__main__":
    sys.exit(main())
