"""The CLI's --kernels as a user meets it: a bad value is refused before any work (exit 2, no traceback, the error
names the flag and the choices), inspect names each layer's kernel and the path, and compiling the same model
twice, in processes with different hash seeds, writes byte-identical projects on every path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "examples" / "digits_cnn.tflite"


def mcuq_cli(*args: str, hash_seed: str = "0") -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONHASHSEED=hash_seed, MCUQ_PROGRESS="0")
    return subprocess.run([sys.executable, "-m", "mcuq.cli", *args], capture_output=True, text=True, env=env)


@pytest.mark.parametrize("command", ["compile", "run", "inspect", "bench"])
def test_bad_kernels_value_is_refused_before_any_work(command, tmp_path):
    extra = {
        "compile": ["-o", str(tmp_path / "out")],
        "run": ["--input", str(tmp_path / "in.npy"), "--output", str(tmp_path / "out.npy")],
    }.get(command, [])
    r = mcuq_cli(command, str(DIGITS), "--kernels", "helium", *extra)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr and r.stdout == ""
    last = r.stderr.strip().splitlines()[-1]  # argparse: usage lines, then the one error line
    assert "--kernels" in last and "'helium'" in last and "mve" in last, last
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    "path, conv, dw",
    [
        ("portable", "conv2d_s8 ", "depthwise_conv2d_s8 "),
        ("dsp", "conv2d_s8_dsp", "depthwise_conv2d_s8_dsp"),
        ("mve", "conv2d_s8_mve", "depthwise_conv2d_s8_mve"),
    ],
)
def test_inspect_names_the_path_and_each_layers_kernel(path, conv, dw):
    r = mcuq_cli("inspect", str(DIGITS), "--kernels", path)
    assert r.returncode == 0, r.stderr
    assert f"kernels: {path} path" in r.stdout
    assert conv in r.stdout and dw in r.stdout


def test_inspect_auto_on_the_host_is_dsp():
    r = mcuq_cli("inspect", str(DIGITS))
    assert r.returncode == 0, r.stderr
    assert "kernels: dsp path" in r.stdout and "conv2d_s8_dsp" in r.stdout


@pytest.mark.parametrize("path", ["portable", "dsp", "mve"])
def test_compile_is_byte_identical_across_processes(path, tmp_path):
    outs = []
    for seed in ("1", "2"):
        out = tmp_path / f"o{seed}"
        r = mcuq_cli("compile", str(DIGITS), "-o", str(out), "--kernels", path, hash_seed=seed)
        assert r.returncode == 0, r.stderr
        # the runtime sources are copies of runtime_c (and its manifest lines their hashes): the generated files
        outs.append(
            {
                p.relative_to(out): p.read_bytes()
                for p in sorted(out.rglob("*"))
                if p.is_file() and p.name != ".mcuq-manifest" and "mcuq_runtime" not in p.relative_to(out).parts
            }
        )
    assert outs[0].keys() == outs[1].keys()
    for name in outs[0]:
        assert outs[0][name] == outs[1][name], f"{name} differs between two compiles ({path})"
    c_text = outs[0][Path("digits_cnn.c")].decode()
    if path != "portable":
        assert f"_s8_{path}(" in c_text
    else:
        assert "_s8_dsp(" not in c_text and "_s8_mve(" not in c_text
