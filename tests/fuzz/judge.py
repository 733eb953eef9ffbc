"""Judge one mutant: it must fail cleanly or compile to C that is correct.

Outcomes (``Outcome.kind``):
  * ``clean_error``: ``compile_model`` raised ``McuqError`` (or a subclass) whose message is one printable line of
    at most ``MAX_MESSAGE`` characters (and, when the CLI is checked, ``mcuq compile`` exits 2 with one such
    line on stderr);
  * ``matched``: it compiled, the C built under ASan/UBSan, ran one seeded input without a sanitizer finding,
    and gave the same bits as ``mcuq.reference.run_graph`` (and as the oracle, where tflite-runtime loads the
    mutant; the oracle runs in a subprocess, and its crash, refusal or time-out is not mcuq's failure);
  * ``failure``: anything else; ``cause`` says what (``exception``, ``message``, ``build``, ``sanitizer``, ``run``,
    ``mismatch``, ``oracle-mismatch``, ``cli``; the runner adds ``hang`` and ``worker``).

Runs in a fuzz worker process (``tests.fuzz.worker``): compile, the numpy mirror and the oracle run under an
address-space limit, so a mutant that claims a huge tensor fails with MemoryError instead of exhausting the host.
"""

from __future__ import annotations

import contextlib
import os
import resource
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

import mcuq
from mcuq import ir
from mcuq.errors import McuqError
from mcuq.frontend import load
from mcuq.reference import run_graph
from tests.util import oracle

from .mutate import mutant

MAX_MESSAGE = 1000  # characters: an error message longer than this is not "one line of bounded length"
MEMORY_LIMIT = 6 << 30  # bytes of address space for compiling, the numpy mirror and the oracle
ORACLE_TIMEOUT = 60.0
CLI_TIMEOUT = 120.0
KINDS = ("clean_error", "matched", "failure")


@dataclass(frozen=True)
class Outcome:
    model: str
    seed: int
    kind: str
    cause: str = ""  # why it failed (empty unless kind == "failure")
    detail: str = ""  # one line: the message, the mismatch, the exception
    oracle: str = ""  # "matched", "refused" (crash, error or time-out), "skipped" (known oracle bug), "off"
    cli: str = ""  # "exit N" when the CLI was checked
    edits: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def one_line(text: str, limit: int = 300) -> str:
    """``text`` made printable on one line (for reports, not for judging)."""
    flat = " ".join(repr(text)[1:-1].split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def message_problem(msg: str) -> str:
    """Why ``msg`` is not one printable line of bounded length; "" when it is."""
    if not msg.strip():
        return "empty message"
    if "\n" in msg or "\r" in msg:
        return f"{msg.count(chr(10)) + 1}-line message"
    if not msg.isprintable():
        return "unprintable characters in the message"
    if len(msg) > MAX_MESSAGE:
        return f"message of {len(msg)} characters"
    return ""


@contextlib.contextmanager
def limited_memory(limit: int = MEMORY_LIMIT) -> Iterator[None]:
    """Lower this process's soft address-space limit (children inherit it), restore it after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    new = limit if hard == resource.RLIM_INFINITY else min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (new, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _where(e: BaseException) -> str:
    frames = traceback.extract_tb(e.__traceback__)
    mine = [f for f in frames if "/mcuq/" in f.filename] or frames
    return f"{Path(mine[-1].filename).name}:{mine[-1].lineno}" if mine else "?"


def seeded_inputs(tensors, seed: int) -> list[np.ndarray]:
    """One input per tensor (no batch axis), drawn over the whole range of its dtype."""
    rng = np.random.default_rng([seed, 1])
    xs = []
    for t in tensors:
        if t.dtype.np.kind == "f":
            xs.append(rng.standard_normal(t.shape).astype(t.dtype.np))
        elif t.dtype.np.kind == "b":
            xs.append(rng.integers(0, 2, t.shape).astype(bool))
        else:
            lo, hi = t.dtype.int_range
            xs.append(rng.integers(lo, hi + 1, size=t.shape, dtype=np.int64).astype(t.dtype.np))
    return xs


def _build_failure(msg: str) -> tuple[str, str]:
    if "runtime error:" in msg or "Sanitizer" in msg:
        lines = [ln for ln in msg.splitlines() if "runtime error:" in ln or "ERROR: AddressSanitizer" in ln]
        return "sanitizer", one_line(lines[0] if lines else msg)
    if "host run" in msg:
        return "run", one_line(msg)
    errors = [ln for ln in msg.splitlines() if "error:" in ln]
    return "build", one_line(errors[0] if errors else msg)


def _cli_kernels() -> list[str]:
    """``--kernels PATH`` when the run picks a kernel path (``worker.KERNELS_ENV``), else nothing."""
    path = os.environ.get("MCUQ_FUZZ_KERNELS")
    return ["--kernels", path] if path else []


def _cli(data: bytes, tmp: Path) -> tuple[int, list[str]]:
    """``mcuq compile`` on the mutant: (exit status, stderr lines)."""
    model = tmp / "mutant.tflite"
    model.write_bytes(data)
    exe = Path(sys.executable).with_name("mcuq")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "mcuq.cli"]
    env = dict(os.environ, MCUQ_SANITIZE="0")
    proc = subprocess.run(
        [*cmd, "compile", str(model), "-o", str(tmp / "out"), *_cli_kernels()],
        capture_output=True,
        timeout=CLI_TIMEOUT,
        cwd=tmp,
        env=env,
    )
    return proc.returncode, proc.stderr.decode("utf-8", "replace").splitlines()


def _check_cli(data: bytes, api_error: bool) -> tuple[str, str]:
    """(cli field, problem or "") for the CLI run of the mutant, given whether the API raised McuqError."""
    with tempfile.TemporaryDirectory(prefix="mcuq-fuzz-cli-") as tmp:
        try:
            rc, lines = _cli(data, Path(tmp))
        except subprocess.TimeoutExpired:
            return "timeout", f"mcuq compile did not finish in {CLI_TIMEOUT:.0f} s"
    field = f"exit {rc}"
    if rc == 2:
        if len(lines) != 1:
            return field, f"exit 2 with {len(lines)} stderr lines: {one_line(' | '.join(lines))}"
        problem = message_problem(lines[0])
        if problem:
            return field, f"{problem}: {one_line(lines[0])}"
        return field, "" if api_error else f"exit 2 where compile_model succeeded: {one_line(lines[0])}"
    if rc == 0 and not api_error:
        return field, ""
    return field, f"exit {rc} (compile_model {'raised McuqError' if api_error else 'succeeded'}): " + one_line(
        " | ".join(lines[-3:])
    )


def _oracle_known_wrong(graph) -> bool:
    """tflite-runtime 2.14 is wrong for a per-channel FULLY_CONNECTED with a 3-D output (../shared/models)."""
    for op in graph.ops:
        if op.kind is ir.OpKind.FULLY_CONNECTED and len(op.inputs) > 1:
            w = graph.tensors.get(op.inputs[1])
            if w is not None and w.qparams is not None and w.qparams.per_channel:
                if len(graph.tensors[op.outputs[0]].shape) > 2:
                    return True
    return False


def _compare_oracle(data: bytes, cm, xs: dict[str, np.ndarray], outs: list[np.ndarray]) -> tuple[str, str]:
    if _oracle_known_wrong(cm.graph):
        return "skipped", ""
    try:
        with limited_memory():
            inputs = [xs[name] for name in load(data).inputs]
            (res,) = oracle.run(data, [inputs], timeout=ORACLE_TIMEOUT)
    except (RuntimeError, subprocess.TimeoutExpired, OSError, KeyError, MemoryError, McuqError):
        return "refused", ""
    theirs = res["outputs"]
    if len(theirs) != len(outs):
        return "matched", ""  # an interface mcuq reads differently (e.g. a repeated output): nothing to compare
    for k, (ours, t) in enumerate(zip(outs, theirs)):
        if ours.size != t.size or ours.dtype != t.dtype:
            return "mismatch", f"output {k}: C {ours.dtype}{list(ours.shape)}, oracle {t.dtype}{list(t.shape)}"
        if not np.array_equal(ours, t.reshape(ours.shape)):
            bad = int(np.sum(ours != t.reshape(ours.shape)))
            return "mismatch", f"output {k}: C != oracle in {bad} of {ours.size} values"
    return "matched", ""


def judge(name: str, model: bytes, seed: int, *, use_oracle: bool = True, check_cli: bool = False) -> Outcome:
    """Compile the mutant ``seed`` of ``model`` (called ``name`` in reports) and judge the result."""
    data, edits = mutant(model, seed)

    def out(kind: str, cause: str = "", detail: str = "", **kw) -> Outcome:
        return Outcome(name, seed, kind, cause, detail, edits=edits, **kw)

    try:
        with limited_memory():
            cm = mcuq.compile_model(data, sanitize=True)
    except McuqError as e:
        problem = message_problem(str(e))
        if problem:
            return out("failure", "message", f"{type(e).__name__}, {problem}: {one_line(str(e))}")
        cli, cli_problem = _check_cli(data, True) if check_cli else ("", "")
        if cli_problem:
            return out("failure", "cli", cli_problem, cli=cli)
        return out("clean_error", detail=one_line(str(e), 200), cli=cli)
    except Exception as e:  # noqa: BLE001 - any other exception is what we look for
        return out("failure", "exception", f"{type(e).__name__} at {_where(e)}: {one_line(str(e), 200)}")
    cli, cli_problem = _check_cli(data, False) if check_cli else ("", "")
    if cli_problem:
        return out("failure", "cli", cli_problem, cli=cli)
    xs = dict(zip((t.name for t in cm.input_tensors), seeded_inputs(cm.input_tensors, seed)))
    try:
        outs = cm.run([xs[t.name] for t in cm.input_tensors])
    except McuqError as e:
        cause, detail = _build_failure(str(e))
        return out("failure", cause, detail, cli=cli)
    except Exception as e:  # noqa: BLE001
        return out("failure", "exception", f"run: {type(e).__name__} at {_where(e)}: {one_line(str(e), 200)}")
    try:
        with limited_memory():
            ref = run_graph(cm.graph, xs, keep="outputs")
    except Exception as e:  # noqa: BLE001
        return out("failure", "exception", f"run_graph: {type(e).__name__} at {_where(e)}: {one_line(str(e), 200)}")
    for t, got in zip(cm.output_tensors, outs):
        want = ref[t.name]
        if want.size != got.size or not np.array_equal(got, want.reshape(got.shape)):
            return out("failure", "mismatch", f"output '{one_line(t.name, 60)}': C != run_graph", cli=cli)
    verdict = "off"
    if use_oracle and oracle.available():
        verdict, problem = _compare_oracle(data, cm, xs, outs)
        if verdict == "mismatch":
            return out("failure", "oracle-mismatch", problem, oracle=verdict, cli=cli)
    return out("matched", oracle=verdict, cli=cli)
