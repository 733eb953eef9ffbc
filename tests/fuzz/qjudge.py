"""Judge one quantizer fuzz case: ``mcuq.quantize`` must fail in one clean line or give an int8 model that is right.

Outcomes (``QOutcome.kind``, as for the byte-level mutants of ``judge``):
  * ``clean_error``: ``mcuq.quantize`` raised ``McuqError`` whose message is one printable line of bounded length
    (and, when the CLI is checked, ``mcuq quantize --calib`` exits 2 with one such line on stderr);
  * ``matched``: it quantized, and: every scale of the int8 graph is finite and positive, every zero point in its
    dtype's range, inputs and outputs int8; the report has a finite JSON form; mcuq compiles the .tflite it wrote;
    the C, built under ASan/UBSan, runs seeded int8 inputs and the first calibration sample (quantized at the edge)
    without a sanitizer finding and equals ``mcuq.reference.run_graph`` bit for bit; the oracle (tflite-runtime
    2.14) loads the model and gives the same bits (here its refusal IS a failure: mcuq wrote this model); with the
    CLI checked, ``mcuq quantize`` exits 0 and writes the same bytes; with ``determinism``, a second quantization
    gives the same bytes;
  * ``failure``: anything else; ``cause`` says what (``exception``, ``message``, ``warning`` (a Python warning
    such as numpy's RuntimeWarning escaped ``mcuq.quantize``: the CLI prints it, so its error is no longer one
    line), ``qparams``, ``report``, ``unbuildable``, ``build``, ``sanitizer``, ``run``, ``mismatch``,
    ``oracle-refused``, ``oracle-mismatch``, ``nondeterministic``, ``cli``; the runner adds ``hang`` and
    ``worker``).

Each case quantizes with options drawn from its seed (``options``: a calibration method, per-tensor FC weights, no
bias correction), with mcuq's calibration limits lowered (``LIMITS``) so that the size checks are met in a second.
Where the hostile text is the user's own (a path with newlines, escapes or NUL: ``QuantCase.user_text``), the API's
message is judged as the CLI shows it (``mcuq.errors.printable``: McuqError keeps the user's text as given), and
the CLI's stderr strictly. Text from the model (tensor names) must be one printable line in the exception itself.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

import mcuq
from mcuq import ir
from mcuq.errors import McuqError, printable
from mcuq.quant.edge import quantize_input
from mcuq.quant.ptq import DEFAULT_METHOD, METHODS
from tests.util import oracle
from tests.util.harness import reference_outputs

from .calibfiles import files_case
from .judge import (
    ORACLE_TIMEOUT,
    _build_failure,
    _oracle_known_wrong,
    _where,
    limited_memory,
    message_problem,
    one_line,
)
from .qcalib import calib_case
from .qcli import Failed, check_cli
from .qmutate import QuantCase, bytes_case, content_case
from .qsources import Source, sources

FAMILIES = ("bytes", "content", "calib", "files")
N_RANDOM = 2  # seeded int8 inputs run through the C, besides the first calibration sample
# mcuq's calibration limits, lowered so that cases reach them in a second, not after gigabytes (the CLI inherits them)
LIMITS = {"MCUQ_CALIB_MAX_BYTES": str(64 << 20), "MCUQ_CALIB_MEMORY": str(1 << 30)}


@dataclass(frozen=True)
class QOutcome:
    model: str
    family: str
    seed: int
    kind: str
    cause: str = ""
    detail: str = ""
    oracle: str = ""  # "matched", "skipped" (known oracle bug), "off"
    cli: str = ""  # "exit N" when the CLI was checked
    edits: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def options(seed: int) -> dict:
    """The quantizer's options for case ``seed``: a method (the default half the time), per-tensor fully-connected
    weights and no bias correction now and then."""
    rng = np.random.default_rng([seed, 3])
    method = DEFAULT_METHOD if rng.random() < 0.5 else METHODS[int(rng.integers(len(METHODS)))]
    opts = {"method": method, "per_channel_fc": bool(rng.random() < 0.8), "bias_correction": bool(rng.random() < 0.8)}
    return {**opts, **precision_options(seed)}


def precision_options(seed: int) -> dict:
    """Issue 11's options for case ``seed``, from their own generator (so that the other options stay what they
    were), and only where not the default: weights of 4, 2 or 1 bits in about one case of four (rounded to nearest
    or with the default GPTQ), int16 activations in about one of five."""
    rng = np.random.default_rng([seed, 4])
    opts: dict = {}
    if rng.random() < 0.25:
        opts["weight_bits"] = int((4, 4, 2, 1)[int(rng.integers(4))])
        if rng.random() < 0.5:
            opts["rounding"] = "nearest"
    if rng.random() < 0.2:
        opts["activations"] = "int16"
    return opts


def make_case(src: Source, family: str, seed: int, tmp: Path) -> QuantCase:
    if family == "bytes":
        return bytes_case(src, seed)
    if family == "content":
        return content_case(src, seed)
    if family == "calib":
        return calib_case(src, seed)
    return files_case(src, seed, tmp)


# -- checks on a quantized model ----------------------------------------------------------------------------------


def check_qparams(g: ir.Graph, edge: ir.DType = ir.DType.INT8) -> None:
    """Finite positive scales, zero points in range, ``edge`` (int8, or int16 with int16 activations) at the
    edges."""
    for name in (*g.inputs, *g.outputs):
        if g.tensors[name].dtype is not edge:
            raise Failed("qparams", f"'{one_line(name, 60)}' is {g.tensors[name].dtype.value}, not {edge.value}")
    for t in g.tensors.values():
        q = t.qparams
        if q is None:
            continue
        bad = [s for s in q.scale if not (math.isfinite(s) and s > 0)]
        if bad:
            raise Failed("qparams", f"tensor '{one_line(t.name, 60)}' has scale {bad[0]!r}")
        if t.dtype.np.kind in "iu":
            lo, hi = t.dtype.int_range
            if any(not lo <= z <= hi for z in q.zero_point):
                raise Failed("qparams", f"tensor '{one_line(t.name, 60)}' has a zero point outside {t.dtype.value}")


def check_report(qm) -> None:
    try:
        json.loads(qm.report.to_json())
        qm.report.table()
    except Exception as e:  # noqa: BLE001 - the report must always render
        raise Failed("report", f"{type(e).__name__} at {_where(e)}: {one_line(str(e), 200)}") from None


def c_inputs(cm, case: QuantCase, seed: int) -> list[np.ndarray]:
    """Per input, a batch: N_RANDOM seeded int8 tensors and, where the calibration is plain finite float data of the
    right shape, its first sample quantized at the edge."""
    rng = np.random.default_rng([seed, 1])
    xs = []
    arrays = list(case.arrays.values()) if case.arrays and len(case.arrays) == len(cm.input_tensors) else []
    for k, t in enumerate(cm.input_tensors):
        lo, hi = t.dtype.int_range
        batch = rng.integers(lo, hi + 1, size=(N_RANDOM, *t.shape), dtype=np.int64).astype(t.dtype.np)
        if arrays:
            a = np.asarray(arrays[k])
            if a.dtype == np.float32 and len(a) and a[0].size == t.size and np.isfinite(a[0]).all():
                batch = np.concatenate([quantize_input(t, a[0].reshape(t.shape))[None], batch])
        xs.append(batch)
    n = min(len(x) for x in xs)
    return [x[:n] for x in xs]


def run_checks(qm, case: QuantCase, seed: int, use_oracle: bool, edge: ir.DType = ir.DType.INT8) -> str:
    """Every check on a quantized model (inputs and outputs of dtype ``edge``); returns the oracle verdict, raises
    ``Failed``."""
    check_qparams(qm.graph, edge)
    check_report(qm)
    data = qm.tflite_bytes()
    try:
        with limited_memory(), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            cm = mcuq.compile_model(data, sanitize=True)
    except McuqError as e:
        raise Failed("unbuildable", f"compile_model refused the quantized model: {one_line(str(e), 200)}") from None
    if caught:
        raise Failed("warning", f"{_warned(caught)} (compiling the quantized model)")
    xs = c_inputs(cm, case, seed)
    try:
        outs = cm.run(xs)
    except McuqError as e:
        raise Failed(*_build_failure(str(e))) from None
    with limited_memory():
        ref = reference_outputs(cm.graph, xs)
    for t, got in zip(cm.output_tensors, outs):
        want = ref[t.name]
        if want.size != got.size or not np.array_equal(got, want.reshape(got.shape)):
            raise Failed("mismatch", f"output '{one_line(t.name, 60)}': C != run_graph")
    if not (use_oracle and oracle.available()):
        return "off"
    if _oracle_known_wrong(cm.graph):
        return "skipped"
    samples = [[x[i] for x in xs] for i in range(len(xs[0]))]
    try:
        res = oracle.run(data, samples, timeout=ORACLE_TIMEOUT)
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        last = [ln for ln in str(e).splitlines() if ln.strip()][-1:] or ["?"]
        raise Failed("oracle-refused", one_line(last[0], 200)) from None
    for k, o in enumerate(outs):
        theirs = np.stack([r["outputs"][k] for r in res])
        if theirs.size != o.size or not np.array_equal(o, theirs.reshape(o.shape)):
            raise Failed("oracle-mismatch", f"output {k}: C != oracle")
    return "matched"


# -- the verdict ---------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def small_limits() -> Iterator[None]:
    """The calibration limits lowered (``LIMITS``) while a case runs, and restored after."""
    old = {k: os.environ.get(k) for k in LIMITS}
    os.environ.update(LIMITS)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _warned(caught: list[warnings.WarningMessage]) -> str:
    w = caught[0]
    return f"{w.category.__name__} at {Path(w.filename).name}:{w.lineno}: {one_line(str(w.message), 200)}"


def _refused(e: McuqError, case: QuantCase, opts: dict, tmp: Path, cli: bool, caught) -> tuple[str, str, str, str]:
    """(kind, cause, detail, cli field) for a quantization that raised McuqError."""
    msg = printable(str(e), 10**6) if case.user_text else str(e)
    problem = message_problem(msg)
    if problem:
        return "failure", "message", f"{type(e).__name__}, {problem}: {one_line(str(e))}", ""
    if caught:
        return "failure", "warning", f"{_warned(caught)} (then: {one_line(str(e), 120)})", ""
    try:
        field = check_cli(case, opts, tmp, True, None) if cli else ""
    except Failed as f:
        return "failure", f.cause, f.detail, ""
    return "clean_error", "", one_line(str(e), 200), field


def _accepted(qm, case: QuantCase, opts: dict, tmp: Path, seed: int, flags: dict) -> tuple[str, str, str, str, str]:
    """(kind, cause, detail, oracle verdict, cli field) for a quantization that gave a model."""
    try:
        edge = ir.DType.INT16 if opts.get("activations") == "int16" else ir.DType.INT8
        verdict = run_checks(qm, case, seed, flags["use_oracle"], edge)
        if flags["determinism"]:
            with limited_memory():
                again = mcuq.quantize(case.model, case.calib(), **opts)
            if again.tflite_bytes() != qm.tflite_bytes():
                raise Failed("nondeterministic", "a second mcuq.quantize gave other bytes")
        field = check_cli(case, opts, tmp, False, qm.tflite_bytes()) if flags["cli"] else ""
    except Failed as f:
        return "failure", f.cause, f.detail, "", ""
    except Exception as e:  # noqa: BLE001
        return "failure", "exception", f"checks: {type(e).__name__} at {_where(e)}: {one_line(str(e), 200)}", "", ""
    return "matched", "", "", verdict, field


def judge_quant(
    model: str, family: str, seed: int, *, use_oracle: bool = True, cli: bool = False, determinism: bool = False
) -> QOutcome:
    """Quantize the case ``(model, family, seed)`` and judge the result."""
    src = sources()[model]
    with small_limits(), tempfile.TemporaryDirectory(prefix="mcuq-fuzz-quant-") as tmpdir:
        tmp = Path(tmpdir)
        with limited_memory():  # the fuzzer's own data stays bounded too
            case = make_case(src, family, seed, tmp)
            calib, opts = case.calib(), options(seed)
        edits = one_line(f"{case.edits}; {', '.join(f'{k}={v}' for k, v in opts.items())}", 300)
        caught: list[warnings.WarningMessage] = []
        try:
            with limited_memory(), warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                qm = mcuq.quantize(case.model, calib, **opts)
        except McuqError as e:
            kind, cause, detail, field = _refused(e, case, opts, tmp, cli, caught)
            return QOutcome(model, family, seed, kind, cause, detail, cli=field, edits=edits)
        except Exception as e:  # noqa: BLE001 - what the fuzzer looks for
            detail = f"{type(e).__name__} at {_where(e)}: {one_line(str(e), 200)}"
            return QOutcome(model, family, seed, "failure", "exception", detail, edits=edits)
        if caught:
            detail = f"{_warned(caught)} (mcuq.quantize succeeded)"
            return QOutcome(model, family, seed, "failure", "warning", detail, edits=edits)
        flags = {"use_oracle": use_oracle, "cli": cli, "determinism": determinism}
        kind, cause, detail, verdict, field = _accepted(qm, case, opts, tmp, seed, flags)
        return QOutcome(model, family, seed, kind, cause, detail, oracle=verdict, cli=field, edits=edits)
