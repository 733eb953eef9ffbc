"""Generated C that must build with -Werror in corner cases of the plan."""

from __future__ import annotations

import subprocess

import numpy as np

import mcuq
from mcuq import ir


def test_reshape_nobody_reads_builds_without_hooks(tmp_path) -> None:
    """A RESHAPE whose output no layer reads gets an arena view used only by the (empty) layer-end hook: the C must
    still build with -Wall -Werror (no unused-variable warning) and run."""
    rng = np.random.default_rng(0)

    def q(s: float) -> ir.QParams:
        return ir.QParams((s,), (0,))

    def w(shape):
        a = rng.integers(-127, 128, size=shape).astype(np.int8)
        a.flags.writeable = False
        return a

    t = {
        "x": ir.Tensor("x", (1, 8), ir.DType.INT8, q(0.05)),
        "w1": ir.Tensor("w1", (8, 8), ir.DType.INT8, q(0.01), w((8, 8))),
        "h": ir.Tensor("h", (1, 8), ir.DType.INT8, q(0.1)),
        "r": ir.Tensor("r", (2, 4), ir.DType.INT8, q(0.1)),
        "w2": ir.Tensor("w2", (4, 8), ir.DType.INT8, q(0.01), w((4, 8))),
        "y": ir.Tensor("y", (1, 4), ir.DType.INT8, q(0.1)),
    }
    fc = ir.FullyConnectedAttrs()
    ops = (
        ir.Op(ir.OpKind.FULLY_CONNECTED, "h", ("x", "w1", ""), ("h",), fc, 0),
        ir.Op(ir.OpKind.RESHAPE, "r", ("h",), ("r",), ir.ReshapeAttrs(), 1),
        ir.Op(ir.OpKind.FULLY_CONNECTED, "y", ("h", "w2", ""), ("y",), fc, 2),
    )
    cm = mcuq.compile_model(ir.Graph("dead", t, ops, ("x",), ("y",)), sanitize=False)
    assert "a_r" in cm.files["dead.c"]
    cm.write(tmp_path / "out")  # the user's build: the project's Makefile, -Wall -Wextra -Werror, no layer hooks
    proc = subprocess.run(["make", "-C", str(tmp_path / "out")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    x = rng.integers(-128, 128, size=(1, 8)).astype(np.int8)
    (y,) = cm.run([x])
    assert y.shape == (1, 4)
    np.testing.assert_array_equal(cm.run_layers([x])["r"], cm.run_layers([x])["h"].reshape(2, 4))
