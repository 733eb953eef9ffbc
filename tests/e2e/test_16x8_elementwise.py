"""A 16x8 model of the int16 elementwise ops end to end: int16 input -> ADD (constant, broadcast) -> MUL (itself)
-> SUB -> TANH -> LOGISTIC -> QUANTIZE (int16 -> int16) -> SOFTMAX, and an int8 output through QUANTIZE int16 -> int8.
The compiled C equals the oracle layer by layer on the host, and in QEMU on mps2-an386."""

from __future__ import annotations

import numpy as np
import pytest

import mcuq
from mcuq import ir
from mcuq.frontend.tflite_writer import write
from tests.conftest import have_arm_toolchain
from tests.util.harness import oracle_outputs, three_way

I16, I8 = ir.DType.INT16, ir.DType.INT8
K, A = ir.OpKind, ir.Activation
SHAPE = (1, 4, 5, 6)


def _t(name: str, shape, scale: float, dtype: ir.DType = I16, zp: int = 0, data=None) -> ir.Tensor:
    return ir.Tensor(name, tuple(shape), dtype, ir.QParams((float(np.float32(scale)),), (zp,)), data)


def model() -> ir.Graph:
    bias = np.random.default_rng(3).integers(-20000, 20000, (SHAPE[-1],)).astype(np.int16)
    bias.setflags(write=False)
    q15 = 2.0**-15
    tensors = [
        _t("x", SHAPE, 4e-4),
        _t("c", (SHAPE[-1],), 2e-4, data=bias),
        _t("s", SHAPE, 5e-4),
        _t("m", SHAPE, 1e-3),
        _t("d", SHAPE, 1.2e-3),
        _t("h", SHAPE, q15),
        _t("g", SHAPE, q15),
        _t("r", SHAPE, 1e-4),
        _t("p", SHAPE, 1 / 32768),
        _t("y8", SHAPE, 1 / 256, I8, -128),
    ]
    ops = [
        ir.Op(K.ADD, "add", ("x", "c"), ("s",), ir.BinaryAttrs(A.RELU6), 0),
        ir.Op(K.MUL, "mul", ("s", "s"), ("m",), ir.BinaryAttrs(), 1),
        ir.Op(K.SUB, "sub", ("m", "x"), ("d",), ir.BinaryAttrs(), 2),
        ir.Op(K.TANH, "tanh", ("d",), ("h",), ir.NoAttrs(), 3),
        ir.Op(K.SIGMOID, "logistic", ("h",), ("g",), ir.NoAttrs(), 4, origin="LOGISTIC"),
        ir.Op(K.QUANTIZE, "requant", ("g",), ("r",), ir.NoAttrs(), 5),
        ir.Op(K.SOFTMAX, "softmax", ("r",), ("p",), ir.SoftmaxAttrs(1.0), 6),
        ir.Op(K.QUANTIZE, "to_int8", ("p",), ("y8",), ir.NoAttrs(), 7),
    ]
    return ir.Graph("elementwise16", {t.name: t for t in tensors}, tuple(ops), ("x",), ("p", "y8"))


def inputs(n: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).integers(-32768, 32768, size=(n, *SHAPE))
    x[0, 0, 0, 0, :2] = (-32768, 32767)
    return x.astype(np.int16)


@pytest.mark.oracle
def test_16x8_elementwise_model_bit_exact_on_host() -> None:
    three_way(model(), [inputs(6, 1)], layers=True)


def test_kernels_and_arena() -> None:
    cm = mcuq.compile_model(model(), sanitize=False)
    assert [la.kernel_name for la in cm.layers] == [
        "mcuq_add_s16",
        "mcuq_mul_s16",
        "mcuq_sub_s16",
        "mcuq_tanh_s16",
        "mcuq_logistic_s16",
        "mcuq_requantize_s16",
        "mcuq_softmax_s16",
        "mcuq_requantize_s16_s8",
    ]
    assert cm.plan.arena_size >= 2 * 2 * int(np.prod(SHAPE))  # two int16 tensors live at once, 2 bytes each


@pytest.mark.qemu
@pytest.mark.skipif(not have_arm_toolchain(), reason="arm-none-eabi-gcc or qemu-system-arm not installed")
def test_16x8_elementwise_model_in_qemu() -> None:
    from mcuq.firmware import qemu
    from tests.util import oracle

    g = model()
    cm = mcuq.compile_model(write(g), sanitize=False)
    x = inputs(4, 2)
    got = qemu.run_batch(cm.firmware_image(), "mps2-an386", [x], len(x))
    for a, b in zip(got, cm.run([x]), strict=True):
        np.testing.assert_array_equal(a, b)
    if oracle.available():
        for a, b in zip(got, oracle_outputs(g, [x]), strict=True):
            np.testing.assert_array_equal(a, b.reshape(a.shape))
