"""16x8 models end to end: several int16 CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED layers, with int8 and
packed (int4, ternary, binary) weights, then a QUANTIZE to int8; compiled, run on the host (ASan/UBSan)
and in QEMU on a Cortex-M4 board, bit-exact with the oracle, layer by layer."""

from __future__ import annotations

import math

import numpy as np
import pytest

import mcuq
from mcuq import ir
from mcuq.firmware import qemu
from mcuq.frontend.tflite_writer import write
from tests.conftest import have_arm_toolchain
from tests.util import oracle
from tests.util.harness import three_way

A = ir.Activation
I16, I8 = ir.DType.INT16, ir.DType.INT8
WEIGHTED = (ir.OpKind.CONV2D, ir.OpKind.DEPTHWISE_CONV2D, ir.OpKind.FULLY_CONNECTED)
W_DTYPE = {8: ir.DType.INT8, 4: ir.DType.INT4, 2: ir.DType.INT2, 1: ir.DType.INT1}


def _f32(x: float) -> float:
    return float(np.float32(x))


class _Chain:
    """Builds a chain of ops, each layer's output scale set for a spread of a few thousand int16 steps."""

    def __init__(self, rng: np.random.Generator, x: ir.Tensor):
        self.rng = rng
        self.tensors: dict[str, ir.Tensor] = {x.name: x}
        self.ops: list[ir.Op] = []
        self.last = x

    def _add(self, t: ir.Tensor) -> ir.Tensor:
        self.tensors[t.name] = t
        return t

    def quantize(self, name: str, dtype: ir.DType, scale: float) -> None:
        y = self._add(ir.Tensor(name, self.last.shape, dtype, ir.QParams((_f32(scale),), (0,))))
        self.ops.append(ir.Op(ir.OpKind.QUANTIZE, name, (self.last.name,), (name,), ir.NoAttrs(), len(self.ops)))
        self.last = y

    def weighted(self, kind: ir.OpKind, name: str, out_c: int, k: int = 3, stride: int = 1, bits: int = 8,
                 act: ir.Activation = A.NONE, spread: float = 4000.0) -> None:  # fmt: skip
        x = self.last
        rng = self.rng
        hi = {8: 127, 4: 7, 2: 1, 1: 1}[bits]
        if kind == ir.OpKind.FULLY_CONNECTED:
            depth = int(np.prod(x.shape[1:]))
            w_shape, axis, volume = (out_c, depth), 0, depth
            y_shape: tuple[int, ...] = (x.shape[0], out_c)
            attrs: ir.Attrs = ir.FullyConnectedAttrs(act)
        else:
            n, h, wd, cin = x.shape
            oh, ow = -(-h // stride), -(-wd // stride)
            y_shape = (n, oh, ow, out_c)
            common = dict(padding=ir.Padding.SAME, stride_h=stride, stride_w=stride, activation=act)
            if kind == ir.OpKind.CONV2D:
                w_shape, axis, volume = (out_c, k, k, cin), 0, k * k * cin
                attrs = ir.Conv2DAttrs(**common)
            else:
                w_shape, axis, volume = (1, k, k, out_c), 3, k * k
                attrs = ir.DepthwiseConv2DAttrs(depth_multiplier=out_c // cin, **common)
        if bits == 1:
            w = rng.choice(np.array([-1, 1], dtype=np.int8), size=w_shape)
        else:
            w = rng.integers(-hi, hi + 1, size=w_shape, dtype=np.int64).astype(np.int8)
        s_w = tuple(_f32(s) for s in rng.uniform(0.002, 0.03, size=out_c))
        rms_w = math.sqrt(float(np.mean(w.astype(np.float64) ** 2)))
        rms_x = 3000.0 if x.name != "x16" else 18900.0  # typical |input| in int16 steps
        s_out = _f32(x.scale * float(np.mean(s_w)) * math.sqrt(volume) * rms_w * rms_x / spread)
        lim = int(math.sqrt(volume) * rms_w * rms_x)
        bias = rng.integers(-lim, lim + 1, size=out_c).astype(np.int64)
        wt = self._add(ir.Tensor(f"{name}/w", w_shape, W_DTYPE[bits], ir.QParams(s_w, (0,) * out_c, axis), w))
        bt = self._add(
            ir.Tensor(f"{name}/b", (out_c,), ir.DType.INT64, ir.QParams(tuple(_f32(x.scale * s) for s in s_w),
                                                                        (0,) * out_c), bias)
        )  # fmt: skip
        y = self._add(ir.Tensor(name, y_shape, I16, ir.QParams((s_out,), (0,))))
        self.ops.append(ir.Op(kind, name, (x.name, wt.name, bt.name), (name,), attrs, len(self.ops)))
        self.last = y

    def graph(self, name: str, first: str) -> ir.Graph:
        return ir.Graph(name, self.tensors, tuple(self.ops), (first,), (self.last.name,))


def mixed_model(seed: int = 0) -> ir.Graph:
    """int16 [1, 12, 10, 3] -> conv 3x3 (relu) -> depthwise 3x3 s2, int4 -> conv 1x1, ternary -> depthwise x2,
    binary -> FC 10 -> QUANTIZE int8 (tflite-runtime 2.14 quantizes int8 to int8 only, so the input is int16)."""
    rng = np.random.default_rng(seed)
    c = _Chain(rng, ir.Tensor("x16", (1, 12, 10, 3), I16, ir.QParams((_f32(1e-4),), (0,))))
    c.weighted(ir.OpKind.CONV2D, "conv1", 8, act=A.RELU)
    c.weighted(ir.OpKind.DEPTHWISE_CONV2D, "dw1", 8, stride=2, bits=4)
    c.weighted(ir.OpKind.CONV2D, "pw1", 12, k=1, bits=2)
    c.weighted(ir.OpKind.DEPTHWISE_CONV2D, "dw2", 24, bits=1)
    c.weighted(ir.OpKind.FULLY_CONNECTED, "fc", 10)
    c.quantize("y8", I8, c.last.scale * 40)
    return c.graph("mixed16x8", "x16")


def _inputs(g: ir.Graph, n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(-32768, 32768, size=(n, *g.tensors["x16"].shape), dtype=np.int64).astype(np.int16)]


@pytest.mark.oracle
def test_mixed_16x8_model_bit_exact_layer_by_layer() -> None:
    g = mixed_model()
    (out,) = three_way(g, _inputs(g, 4, 1), layers=True)
    assert np.unique(out).size > 10, "degenerate model: outputs almost constant"


def test_mixed_16x8_model_layers_and_flash() -> None:
    """Each weighted layer runs its s16 kernel at its width; packed weights take ceil(n * bits / 8) bytes."""
    cm = mcuq.compile_model(write(mixed_model()), sanitize=False, kernels="portable")  # the dsp path: conv16_fast
    kernels = {la.op.name: (la.kernel_name, la.p("weight_bits")) for la in cm.layers if la.op.kind in WEIGHTED}
    assert kernels == {
        "conv1": ("mcuq_conv2d_s16", 8),
        "dw1": ("mcuq_depthwise_conv2d_s16", 4),
        "pw1": ("mcuq_conv2d_s16", 2),
        "dw2": ("mcuq_depthwise_conv2d_s16", 1),
        "fc": ("mcuq_fully_connected_s16", 8),
    }
    c_text = "\n".join(cm.project_files().values())
    assert "mcuq_depthwise_conv2d_s16(" in c_text and "const int64_t" in c_text


@pytest.mark.qemu
@pytest.mark.skipif(not have_arm_toolchain(), reason="arm-none-eabi-gcc or qemu-system-arm not installed")
def test_mixed_16x8_model_in_qemu() -> None:
    """The same model on mps2-an386 (Cortex-M4): bit-exact with the host run (and the oracle when installed)."""
    model = write(mixed_model())
    xs = _inputs(mixed_model(), 3, 2)
    host = mcuq.compile_model(model, sanitize=False).run(xs)
    if oracle.available():
        want = oracle.run(model, [[x[i] for x in xs] for i in range(3)])
        np.testing.assert_array_equal(host[0], np.stack([w["outputs"][0] for w in want]).reshape(host[0].shape))
    cm = mcuq.compile_model(model, board="mps2-an386")
    got = qemu.run_batch(cm, "mps2-an386", xs, 3)
    np.testing.assert_array_equal(got[0], host[0])
