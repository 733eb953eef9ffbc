"""A 16x8 model of the pooling and data-movement ops end to end: int16 in, PAD, AVERAGE_POOL_2D (RELU),
MAX_POOL_2D, CONCATENATION, TRANSPOSE, RESHAPE, MEAN, int16 out. Compiled C on the host (ASan/UBSan, every layer
against the numpy mirror) and in QEMU on mps2-an386, bit-exact with the oracle's int16 reference kernels; the arena
counts two bytes per int16 element.
"""

from __future__ import annotations

import numpy as np
import pytest

import mcuq
from mcuq import ir
from mcuq.frontend.tflite_writer import write
from tests.conftest import have_arm_toolchain
from tests.util.harness import oracle_outputs, three_way

I16 = ir.DType.INT16


def _t(name: str, shape: tuple[int, ...], scale: float) -> ir.Tensor:
    return ir.Tensor(name, shape, I16, ir.QParams((float(np.float32(scale)),), (0,)))


def model() -> ir.Graph:
    s = 2.5e-4
    tensors = [
        _t("x", (1, 9, 9, 4), s),
        _t("p", (1, 11, 11, 4), s),
        _t("a", (1, 9, 9, 4), s),
        _t("m", (1, 9, 9, 4), s),
        _t("c", (1, 9, 9, 8), s),
        _t("t", (1, 8, 9, 9), s),
        _t("r", (1, 8, 81), s),
        _t("mean", (1, 8), 1.7e-4),
        _t("pooled", (1, 4, 4, 8), s),
    ]
    K = ir.OpKind
    ops = [
        ir.Op(K.PAD, "pad", ("x",), ("p",), ir.PadAttrs(((0, 0), (1, 1), (1, 1), (0, 0)))),
        ir.Op(K.AVG_POOL2D, "avg", ("p",), ("a",), ir.Pool2DAttrs(ir.Padding.VALID, 1, 1, 3, 3, ir.Activation.RELU)),
        ir.Op(K.MAX_POOL2D, "max", ("x",), ("m",), ir.Pool2DAttrs(ir.Padding.SAME, 1, 1, 3, 3)),
        ir.Op(K.CONCAT, "concat", ("a", "m"), ("c",), ir.ConcatAttrs(3)),
        ir.Op(K.TRANSPOSE, "nchw", ("c",), ("t",), ir.TransposeAttrs((0, 3, 1, 2))),
        ir.Op(K.RESHAPE, "flat", ("t",), ("r",), ir.ReshapeAttrs()),
        ir.Op(K.MEAN, "mean", ("r",), ("mean",), ir.MeanAttrs((2,), False)),
        ir.Op(K.MAX_POOL2D, "pool", ("c",), ("pooled",), ir.Pool2DAttrs(ir.Padding.VALID, 2, 2, 2, 2)),
    ]
    return ir.Graph("pool_shape_16x8", {t.name: t for t in tensors}, tuple(ops), ("x",), ("mean", "pooled"))


def inputs(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.integers(-32768, 32768, size=(n, 1, 9, 9, 4))
    x[0] = -32768
    x[1] = 32767
    return x.astype(np.int16)


@pytest.mark.oracle
def test_16x8_pool_shape_model_bit_exact_on_host() -> None:
    three_way(model(), [inputs(6, 1)], layers=True)


def test_int16_tensors_take_two_bytes_in_the_arena() -> None:
    cm = mcuq.compile_model(model(), sanitize=False)
    g = cm.graph
    assert all(g.tensors[n].dtype is I16 for n in ("p", "a", "m", "c", "t"))
    # the largest step keeps 'c' (648 elements) and its transpose 't' live together: at least 2 x 1296 bytes
    assert cm.plan.arena_size >= 2 * 2 * 648
    assert "int16_t" in cm.files[f"{cm.prefix}.c"]
    assert {la.kernel_name for la in cm.layers if la.kernel is not None} == {
        "mcuq_pad_s16",
        "mcuq_average_pool2d_s16",
        "mcuq_max_pool2d_s16",
        "mcuq_concatenation_s16",
        "mcuq_transpose_s16",
        "mcuq_mean_s16",
    }


@pytest.mark.qemu
@pytest.mark.skipif(not have_arm_toolchain(), reason="arm-none-eabi-gcc or qemu-system-arm not installed")
def test_16x8_pool_shape_model_in_qemu() -> None:
    from mcuq.firmware import qemu

    g = model()
    cm = mcuq.compile_model(write(g), sanitize=False)
    x = inputs(4, 2)
    got = qemu.run_batch(cm.firmware_image(), "mps2-an386", [x], len(x))
    host = cm.run([x])
    for a, b in zip(got, host, strict=True):
        np.testing.assert_array_equal(a, b)
    from tests.util import oracle

    if oracle.available():
        for a, b in zip(got, oracle_outputs(g, [x]), strict=True):
            np.testing.assert_array_equal(a, b.reshape(a.shape))
