"""An installed mcuq (a wheel, no checkout) carries its templates, runtime and boards and compiles a model."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from tests.util.tiny import tiny_fc_bytes

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_ships_data_and_works_without_checkout(tmp_path):
    whl_dir = tmp_path / "whl"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(whl_dir),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    (whl,) = whl_dir.glob("mcuq-*.whl")
    names = zipfile.ZipFile(whl).namelist()
    for must in (
        "mcuq/templates/model.c.j2",
        "mcuq/runtime_c/include/mcuq.h",
        "mcuq/boards/host.toml",
        "mcuq/runtime_c/src/conv/mcuq_conv2d_s8.c",
        "mcuq/templates/firmware/startup.c.j2",
        "mcuq/templates/host/Makefile.j2",
        "mcuq/firmware/plugin/mcuq_insn_count.c",
        "mcuq/firmware/qemu.py",
        "mcuq/passes/__init__.py",
        "mcuq/kernels/__init__.py",
        "mcuq/hostrun.py",
        "mcuq/boards/mps2-an386.toml",
    ):
        assert must in names
    site = tmp_path / "site"
    zipfile.ZipFile(whl).extractall(site)
    model = tmp_path / "m.tflite"
    model.write_bytes(tiny_fc_bytes())
    code = (
        "import mcuq, mcuq._paths as p, sys; "
        f"assert str(p.RUNTIME_C).startswith({str(site)!r}), p.RUNTIME_C; "
        f"cm = mcuq.compile_model({str(model)!r}); cm.write({str(tmp_path / 'out')!r}); "
        f"mcuq.compile_model({str(model)!r}, board='mps2-an386').write({str(tmp_path / 'fw')!r}); "
        "import numpy as np; print(cm.run([np.zeros((1, 8), np.int8)])[0].shape)"
    )
    # run from an empty directory with only the unpacked wheel (and the venv's dependencies) on the path
    r = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(site)!r}); " + code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "(1, 4)"
    assert (tmp_path / "out" / "mcuq_runtime" / "src" / "conv" / "mcuq_fully_connected_s8_dsp.c").exists()
    assert (tmp_path / "fw" / "linker.ld").exists() and (tmp_path / "fw" / "startup.c").exists()
