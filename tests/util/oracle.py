"""The reference interpreter: tflite-runtime 2.14 with the BUILTIN_REF op resolver, run in a subprocess.

Each call runs in its own Python process (../shared/models/README.md: some models crash the interpreter and
corrupt the heap of whatever runs next). Tests skip when tflite-runtime is not installed.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

_CHILD = r"""
import pickle, sys
import numpy as np
import tflite_runtime.interpreter as tfl
model_path, req_path, out_path = sys.argv[1:4]
with open(req_path, "rb") as f:
    batches, want_all = pickle.load(f)
it = tfl.Interpreter(model_path=model_path,
                     experimental_op_resolver_type=tfl.OpResolverType.BUILTIN_REF,
                     experimental_preserve_all_tensors=want_all)
it.allocate_tensors()
ins = it.get_input_details()
outs = it.get_output_details()
results = []
for inputs in batches:
    for d, x in zip(ins, inputs):
        it.set_tensor(d["index"], x)
    it.invoke()
    res = {"outputs": [it.get_tensor(d["index"]).copy() for d in outs]}
    if want_all:
        tensors = {}
        for d in it.get_tensor_details():
            try:
                tensors[d["index"]] = it.get_tensor(d["index"]).copy()
            except ValueError:
                pass
        res["tensors"] = tensors
    results.append(res)
with open(out_path, "wb") as f:
    pickle.dump(results, f)
"""


def available() -> bool:
    try:
        import tflite_runtime  # noqa: F401
    except ImportError:
        return False
    return True


def require() -> None:
    if not available():
        pytest.skip("tflite-runtime==2.14.0 (the oracle) is not installed")


def run(
    model: str | os.PathLike | bytes, batches: list[list[np.ndarray]], all_tensors: bool = False, timeout: float = 600
) -> list[dict]:
    """Run ``batches`` (each a list of input arrays, one per model input) through the oracle (``timeout`` seconds at
    most: subprocess.TimeoutExpired beyond).

    Returns one dict per batch entry: ``{"outputs": [arrays]}`` and, with ``all_tensors``, ``"tensors"``:
    {tflite tensor index: array} for every tensor the interpreter kept.
    """
    require()
    with tempfile.TemporaryDirectory(prefix="mcuq-oracle-") as tmp:
        if isinstance(model, (bytes, bytearray)):
            model_path = Path(tmp) / "model.tflite"
            model_path.write_bytes(model)
        else:
            model_path = Path(model)
        req = Path(tmp) / "req.pkl"
        out = Path(tmp) / "out.pkl"
        with open(req, "wb") as f:
            pickle.dump(([list(b) for b in batches], all_tensors), f)
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD, str(model_path), str(req), str(out)],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"oracle failed (rc {proc.returncode}):\n{proc.stderr[-3000:]}")
        with open(out, "rb") as f:
            return pickle.load(f)


def outputs(model, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Outputs for one set of inputs."""
    return run(model, [inputs])[0]["outputs"]
