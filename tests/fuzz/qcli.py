"""The quantizer fuzzer's command-line check: ``mcuq quantize MODEL --calib DATA -o OUT`` with the case's options
must agree with ``mcuq.quantize``: exit 2 with one printable line on stderr where the API raised McuqError, exit 0
and the very same .tflite bytes where it gave a model (the data reaches the CLI as the case's own file or folder,
or its arrays saved as a .npy/.npz)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from .judge import CLI_TIMEOUT, message_problem, one_line
from .qmutate import QuantCase


class Failed(Exception):
    """A check failed: ``cause`` and a one-line ``detail``."""

    def __init__(self, cause: str, detail: str) -> None:
        super().__init__(detail)
        self.cause, self.detail = cause, detail


def cli_flags(opts: dict) -> list[str]:
    """The command line's spelling of ``mcuq.quantize``'s options."""
    flags = ["--calib-method", opts["method"]]
    for key in ("weight_bits", "activations", "rounding"):
        if key in opts:
            flags += [f"--{key.replace('_', '-')}", str(opts[key])]
    return (
        flags
        + ["--per-tensor-fc"] * (not opts["per_channel_fc"])
        + ["--no-bias-correction"] * (not opts["bias_correction"])
    )


def _cli_calib(case: QuantCase, tmp: Path) -> str | None:
    """The path the CLI gets: the case's own file or folder, its arrays saved, or None (a Python object)."""
    if case.path is not None:
        return case.path
    if case.arrays is None:
        return None
    try:
        if len(case.arrays) == 1:
            p = tmp / "cli-calib.npy"
            a = next(iter(case.arrays.values()))
            np.save(p, a, allow_pickle=a.dtype.hasobject)
        else:
            p = tmp / "cli-calib.npz"
            np.savez(p, **case.arrays)
    except Exception:  # noqa: BLE001 - data numpy cannot save (a key it refuses): no CLI check
        return None
    return str(p)


def check_cli(case: QuantCase, opts: dict, tmp: Path, api_error: bool, api_bytes: bytes | None) -> str:
    """Runs ``mcuq quantize``; returns the cli field ("" when not checked), raises ``Failed``."""
    calib = _cli_calib(case, tmp)
    if calib is None:
        return ""
    model = tmp / "model.tflite"  # the name mcuq gives a model read from bytes, which the API was given
    model.write_bytes(case.model)
    out = tmp / "cli-out.tflite"
    exe = Path(sys.executable).with_name("mcuq")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "mcuq.cli"]
    argv = [*cmd, "quantize", str(model), "--calib", calib, "-o", str(out), *cli_flags(opts)]
    try:
        proc = subprocess.run(argv, capture_output=True, timeout=CLI_TIMEOUT, cwd=tmp, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise Failed("cli", f"mcuq quantize did not finish in {CLI_TIMEOUT:.0f} s") from None
    field = f"exit {proc.returncode}"
    lines = proc.stderr.decode("utf-8", "replace").splitlines()
    if proc.returncode == 2:
        if len(lines) != 1 or message_problem(lines[0]):
            raise Failed("cli", f"exit 2 with stderr {one_line(' | '.join(lines))}")
        if not api_error:
            raise Failed("cli", f"exit 2 where mcuq.quantize succeeded: {one_line(lines[0])}")
        return field
    if proc.returncode == 0 and not api_error:
        if out.read_bytes() != api_bytes:
            raise Failed("nondeterministic", "mcuq quantize wrote other bytes than mcuq.quantize")
        return field
    raise Failed("cli", f"{field} (mcuq.quantize {'raised' if api_error else 'succeeded'}): "
                 + one_line(" | ".join(lines[-3:])))  # fmt: skip
