"""Small float32 models for every op of mcuq's int8 set, built in code: the inputs of post-training quantization.

``Builder`` appends ops to a float ``ir.Graph`` and computes each output shape as TFLite does; weights are drawn
from one seeded generator (He-scaled normals, small random biases), so a model is the same on every run.
``FLOAT_MODELS`` maps a case name to a ``FloatModel``: the graph, how to draw its input data (uniform in a range
unless the case says otherwise) and what the quantized model must reach: the least output SQNR against float
(None where the float output is constant, e.g. a RELU that never fires), and whether tflite-runtime 2.14 can be
its oracle (not for a per-channel FULLY_CONNECTED with a 3-D output: ../shared/models/README.md).
Write a graph as a .tflite with ``mcuq.frontend.tflite_writer.write``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mcuq import ir
from mcuq.lower.window import out_size

A, K, SAME, VALID = ir.Activation, ir.OpKind, ir.Padding.SAME, ir.Padding.VALID
F32 = ir.DType.FLOAT32

Draw = Callable[[np.random.Generator, tuple[int, ...]], np.ndarray]


class Builder:
    """Appends float ops to a graph. Every method returns the name of the op's output tensor."""

    def __init__(self, name: str, seed: int) -> None:
        self.name = name
        self.rng = np.random.default_rng(seed)
        self.tensors: dict[str, ir.Tensor] = {}
        self.ops: list[ir.Op] = []
        self.inputs: list[str] = []

    def shape(self, name: str) -> tuple[int, ...]:
        return self.tensors[name].shape

    def input(self, shape: tuple[int, ...], name: str = "x") -> str:
        self.tensors[name] = ir.Tensor(name, shape, F32)
        self.inputs.append(name)
        return name

    def const(self, name: str, data: np.ndarray) -> str:
        data = np.ascontiguousarray(data, dtype=np.float32)
        data.flags.writeable = False
        self.tensors[name] = ir.Tensor(name, tuple(data.shape), F32, None, data)
        return name

    def op(self, kind: ir.OpKind, inputs: tuple[str, ...], shape: tuple[int, ...], attrs: ir.Attrs) -> str:
        name = f"{kind.value}{len(self.ops)}"
        self.tensors[name] = ir.Tensor(name, shape, F32)
        self.ops.append(ir.Op(kind, name, inputs, (name,), attrs, index=len(self.ops)))
        return name

    def _weights(self, shape: tuple[int, ...], fan_in: int, out_c: int) -> tuple[np.ndarray, np.ndarray]:
        """He-initialised weights and a small random bias, as a freshly trained layer might have."""
        w = self.rng.standard_normal(shape) * math.sqrt(2.0 / fan_in)
        return w, 0.1 * self.rng.standard_normal(out_c)

    def _window_shape(self, x: str, k: int, stride: int, dilation: int, padding: ir.Padding, c: int) -> tuple:
        n, h, w, _ = self.shape(x)
        return (n, out_size(padding, h, k, stride, dilation), out_size(padding, w, k, stride, dilation), c)

    def conv(self, x: str, out_c: int, k: int = 3, stride: int = 1, dilation: int = 1, padding=SAME, act=A.NONE,
             w: np.ndarray | None = None, b: np.ndarray | None = None) -> str:  # fmt: skip
        cin = self.shape(x)[-1]
        w0, b0 = self._weights((out_c, k, k, cin), k * k * cin, out_c)
        n = len(self.ops)
        wn, bn = self.const(f"conv{n}/w", w0 if w is None else w), self.const(f"conv{n}/b", b0 if b is None else b)
        attrs = ir.Conv2DAttrs(padding, stride, stride, dilation, dilation, act)
        return self.op(K.CONV2D, (x, wn, bn), self._window_shape(x, k, stride, dilation, padding, out_c), attrs)

    def dwconv(self, x: str, k: int = 3, mult: int = 1, stride: int = 1, padding=SAME, act=A.NONE,
               w: np.ndarray | None = None, b: np.ndarray | None = None) -> str:  # fmt: skip
        c = self.shape(x)[-1] * mult
        w0, b0 = self._weights((1, k, k, c), k * k, c)
        n = len(self.ops)
        wn, bn = self.const(f"dw{n}/w", w0 if w is None else w), self.const(f"dw{n}/b", b0 if b is None else b)
        attrs = ir.DepthwiseConv2DAttrs(padding, stride, stride, 1, 1, mult, act)
        return self.op(K.DEPTHWISE_CONV2D, (x, wn, bn), self._window_shape(x, k, stride, 1, padding, c), attrs)

    def fc(self, x: str, units: int, act=A.NONE, keep_num_dims: bool = False, w: np.ndarray | None = None,
           b: np.ndarray | None = None) -> str:  # fmt: skip
        shape = self.shape(x)
        w0, b0 = self._weights((units, shape[-1]), shape[-1], units)
        n = len(self.ops)
        wn, bn = self.const(f"fc{n}/w", w0 if w is None else w), self.const(f"fc{n}/b", b0 if b is None else b)
        out = (*shape[:-1], units) if keep_num_dims else (math.prod(shape) // shape[-1], units)
        return self.op(K.FULLY_CONNECTED, (x, wn, bn), out, ir.FullyConnectedAttrs(act, keep_num_dims))

    def pool(self, kind: ir.OpKind, x: str, k: int = 2, stride: int = 2, padding=VALID, act=A.NONE) -> str:
        shape = self._window_shape(x, k, stride, 1, padding, self.shape(x)[-1])
        return self.op(kind, (x,), shape, ir.Pool2DAttrs(padding, stride, stride, k, k, act))

    def binary(self, kind: ir.OpKind, a: str, b: str, act=A.NONE) -> str:
        shape = tuple(np.broadcast_shapes(self.shape(a), self.shape(b)))
        return self.op(kind, (a, b), shape, ir.BinaryAttrs(act))

    def reshape(self, x: str, shape: tuple[int, ...]) -> str:
        return self.op(K.RESHAPE, (x,), shape, ir.ReshapeAttrs())

    def softmax(self, x: str, beta: float = 1.0) -> str:
        return self.op(K.SOFTMAX, (x,), self.shape(x), ir.SoftmaxAttrs(beta))

    def mean(self, x: str, axes: tuple[int, ...], keep_dims: bool) -> str:
        s = self.shape(x)
        shape = tuple(1 if i in axes else d for i, d in enumerate(s) if keep_dims or i not in axes)
        return self.op(K.MEAN, (x,), shape, ir.MeanAttrs(axes, keep_dims))

    def pad(self, x: str, paddings: tuple[tuple[int, int], ...]) -> str:
        shape = tuple(d + lo + hi for d, (lo, hi) in zip(self.shape(x), paddings))
        return self.op(K.PAD, (x,), shape, ir.PadAttrs(paddings))

    def concat(self, xs: tuple[str, ...], axis: int) -> str:
        shape = list(self.shape(xs[0]))
        shape[axis] = sum(self.shape(x)[axis] for x in xs)
        return self.op(K.CONCAT, xs, tuple(shape), ir.ConcatAttrs(axis))

    def transpose(self, x: str, perm: tuple[int, ...]) -> str:
        s = self.shape(x)
        return self.op(K.TRANSPOSE, (x,), tuple(s[p] for p in perm), ir.TransposeAttrs(perm))

    def unary(self, kind: ir.OpKind, x: str, attrs: ir.Attrs | None = None) -> str:
        """An elementwise op on one input; ``attrs`` for those that have some (LEAKY_RELU, HARD_SIGMOID, CLIP)."""
        return self.op(kind, (x,), self.shape(x), ir.NoAttrs() if attrs is None else attrs)

    def graph(self, *outputs: str) -> ir.Graph:
        g = ir.Graph(self.name, dict(self.tensors), tuple(self.ops), tuple(self.inputs), outputs)
        ir.verify(g)
        return g


@dataclass(frozen=True)
class FloatModel:
    """A float graph, its input data and the bounds its quantized model must meet."""

    graph: ir.Graph
    low: float = -1.0  # inputs are uniform in [low, high] unless ``draw`` says otherwise
    high: float = 1.0
    min_sqnr_db: float | None = 32.0  # dequantized int8 output vs float output; None: the float output is constant
    per_channel_fc: bool = True
    oracle_ok: bool = True
    tflite_ok: bool = True  # False: an op TFLite does not have (HARD_SIGMOID, a general CLIP); compiled directly
    draw: Draw | None = None  # one sample of one input: (rng, shape) -> float array

    def samples(self, n: int, seed: int) -> list[np.ndarray]:
        """``n`` samples of every input, stacked on a leading axis, float32: [(n, *shape), ...] in input order."""
        rng = np.random.default_rng(seed)
        out = []
        for name in self.graph.inputs:
            shape = self.graph.tensors[name].shape
            if self.draw is not None:
                xs = np.stack([self.draw(rng, shape) for _ in range(n)])
            else:
                xs = rng.uniform(self.low, self.high, size=(n, *shape))
            out.append(np.ascontiguousarray(xs, dtype=np.float32))
        return out


def _one(name: str, shape: tuple[int, ...], fn: Callable[[Builder, str], str], seed: int = 0, **kw) -> FloatModel:
    """A model of one input ``x`` of ``shape`` and the ops ``fn`` appends to it."""
    b = Builder(name, seed)
    return FloatModel(b.graph(fn(b, b.input(shape))), **kw)


def _two(name: str, s1: tuple[int, ...], s2: tuple[int, ...], kind: ir.OpKind, **kw) -> FloatModel:
    b = Builder(name, 0)
    return FloatModel(b.graph(b.binary(kind, b.input(s1, "x1"), b.input(s2, "x2"))), **kw)


def _const_mul(b: Builder, x: str) -> str:
    """x * a per-channel constant of mixed signs, broadcast over the pixels."""
    c = b.shape(x)[-1]
    gamma = b.rng.uniform(0.5, 2.0, size=c) * np.where(np.arange(c) % 2 == 0, 1.0, -1.0)
    return b.binary(K.MUL, x, b.const("gamma", gamma.reshape(1, 1, 1, c)))


def _batchnorm(b: Builder, x: str) -> str:
    """conv -> MUL(per-channel constant) -> ADD(per-channel constant): a batch-norm left unfolded by the exporter."""
    y = b.conv(x, 6)
    c = b.shape(y)[-1]
    return b.binary(K.ADD, b.binary(K.MUL, y, b.const("bn/scale", b.rng.uniform(0.5, 1.5, (c,)))),
                    b.const("bn/shift", b.rng.uniform(-0.3, 0.3, (c,))))  # fmt: skip


def _concat_convs(b: Builder, x: str) -> str:
    """Two convs of very different gains on one input: their float ranges, hence scales, differ before concat."""
    y1 = b.conv(x, 4, k=1)
    y2 = b.conv(x, 3, w=b.rng.standard_normal((3, 3, 3, 3)) * 1.0, b=np.zeros(3))
    return b.concat((y1, y2), 3)


def _small_cnn(b: Builder, x: str) -> str:
    y = b.pool(K.MAX_POOL2D, b.conv(x, 8, act=A.RELU))
    return b.softmax(b.fc(b.reshape(y, (1, math.prod(b.shape(y)))), 10))


def _residual(b: Builder, x: str) -> str:
    y = b.conv(x, 8, act=A.RELU)
    return b.binary(K.ADD, y, b.conv(b.dwconv(y, act=A.RELU6), 8, k=1), act=A.RELU)


def _branches(b: Builder, x: str) -> str:
    y = b.concat((b.conv(x, 4, k=1, act=A.RELU), b.dwconv(b.conv(x, 4, act=A.RELU6), act=A.RELU)), 3)
    return b.mean(b.conv(y, 6, k=1), (1, 2), keep_dims=False)


def _zero_weight_channel(b: Builder, x: str) -> str:
    w = b.rng.standard_normal((5, 3, 3, 3)) * 0.3
    w[2] = 0.0
    return b.conv(x, 5, w=w, b=np.array([0.1, -0.2, 0.0, 0.05, 0.3]))


def _dead_conv(b: Builder, x: str) -> str:
    """A conv+RELU whose pre-activation is always negative (inputs in [0, 1], weights <= 0, bias -1): always 0."""
    w = -np.abs(b.rng.standard_normal((4, 3, 3, 2)))
    return b.pool(K.AVG_POOL2D, b.conv(x, 4, w=w, b=-np.ones(4), act=A.RELU))


def _const_channel(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Images whose channel 1 is the same value 0.5 in every pixel of every sample."""
    x = rng.uniform(0.0, 1.0, size=shape)
    x[..., 1] = 0.5
    return x


IMG = (1, 8, 8, 3)
# Ops that move values or map them one by one lose little more than the input's rounding (int8: ~48 dB on uniform
# data); ops that sum many rounded products or requantize lose more (default bound, 32 dB).
EXACT = {"min_sqnr_db": 40.0}
CASES: dict[str, Callable[[], FloatModel]] = {
    "conv_same_relu": lambda: _one("conv_same_relu", IMG, lambda b, x: b.conv(x, 6, act=A.RELU)),
    "conv_valid_s2": lambda: _one("conv_valid_s2", (1, 9, 9, 3), lambda b, x: b.conv(x, 5, stride=2, padding=VALID)),
    "conv_dilated_relu6": lambda: _one("conv_dilated_relu6", IMG, lambda b, x: b.conv(x, 4, dilation=2, act=A.RELU6),
                                       low=0.0, high=3.0),
    "conv_1x1": lambda: _one("conv_1x1", IMG, lambda b, x: b.conv(x, 8, k=1)),
    "conv_batchnorm": lambda: _one("conv_batchnorm", IMG, _batchnorm),
    "dw_mult1_relu": lambda: _one("dw_mult1_relu", (1, 8, 8, 6), lambda b, x: b.dwconv(x, act=A.RELU)),
    "dw_mult2_s2": lambda: _one("dw_mult2_s2", (1, 9, 9, 3), lambda b, x: b.dwconv(x, mult=2, stride=2)),
    "fc": lambda: _one("fc", (1, 32), lambda b, x: b.fc(x, 10)),
    "fc_relu": lambda: _one("fc_relu", (1, 48), lambda b, x: b.fc(x, 16, act=A.RELU)),
    "fc_3d_per_tensor": lambda: _one("fc_3d_per_tensor", (1, 5, 12), lambda b, x: b.fc(x, 4, keep_num_dims=True),
                                     per_channel_fc=False),
    # tflite-runtime 2.14 computes only part of a per-channel FC's 3-D output: compared with mcuq's numpy mirror
    "fc_3d_per_channel": lambda: _one("fc_3d_per_channel", (1, 5, 12), lambda b, x: b.fc(x, 4, keep_num_dims=True),
                                      oracle_ok=False),
    "avg_pool": lambda: _one("avg_pool", (1, 8, 8, 4), lambda b, x: b.pool(K.AVG_POOL2D, x)),
    "avg_pool_same3": lambda: _one("avg_pool_same3", (1, 7, 7, 4), lambda b, x: b.pool(K.AVG_POOL2D, x, 3, 1, SAME)),
    "max_pool": lambda: _one("max_pool", (1, 8, 8, 4), lambda b, x: b.pool(K.MAX_POOL2D, x), **EXACT),
    "max_pool_same3_s2": lambda: _one("max_pool_same3_s2", (1, 7, 7, 4),
                                      lambda b, x: b.pool(K.MAX_POOL2D, x, 3, 2, SAME), **EXACT),
    "add": lambda: _two("add", (1, 4, 4, 8), (1, 4, 4, 8), K.ADD),
    "add_broadcast": lambda: _two("add_broadcast", (1, 4, 4, 8), (1, 1, 1, 8), K.ADD),
    "sub": lambda: _two("sub", (1, 4, 4, 8), (1, 4, 4, 8), K.SUB),
    "mul": lambda: _two("mul", (1, 4, 4, 8), (1, 4, 4, 8), K.MUL),
    "mul_const_broadcast": lambda: _one("mul_const_broadcast", (1, 4, 4, 5), _const_mul),
    "reshape": lambda: _one("reshape", (1, 4, 4, 2), lambda b, x: b.reshape(x, (1, 32)), **EXACT),
    "softmax": lambda: _one("softmax", (1, 10), lambda b, x: b.softmax(x), low=-4.0, high=4.0),
    "mean": lambda: _one("mean", (1, 4, 4, 32), lambda b, x: b.mean(x, (1, 2), keep_dims=True)),
    "mean_no_keep": lambda: _one("mean_no_keep", (1, 4, 6, 3), lambda b, x: b.mean(x, (2,), keep_dims=False)),
    "pad": lambda: _one("pad", (1, 4, 4, 3), lambda b, x: b.pad(x, ((0, 0), (1, 1), (2, 0), (0, 0))), low=0.2, **EXACT),
    "concat": lambda: _one("concat", IMG, _concat_convs, min_sqnr_db=28.0),
    "transpose": lambda: _one("transpose", (1, 4, 6, 3), lambda b, x: b.transpose(x, (0, 2, 1, 3)), **EXACT),
    "sigmoid": lambda: _one("sigmoid", (1, 64), lambda b, x: b.unary(K.SIGMOID, x), low=-6.0, high=6.0, **EXACT),
    "tanh": lambda: _one("tanh", (1, 64), lambda b, x: b.unary(K.TANH, x), low=-3.0, high=3.0, **EXACT),
    "relu": lambda: _one("relu", (1, 64), lambda b, x: b.unary(K.RELU, x), low=-2.0, high=2.0, **EXACT),
    "relu6": lambda: _one("relu6", (1, 64), lambda b, x: b.unary(K.RELU6, x), low=-3.0, high=9.0, **EXACT),
    "hard_swish": lambda: _one("hard_swish", (1, 64), lambda b, x: b.unary(K.HARD_SWISH, x), low=-5.0, high=5.0,
                               **EXACT),
    "leaky_relu": lambda: _one("leaky_relu", (1, 64), lambda b, x: b.unary(K.LEAKY_RELU, x, ir.LeakyReluAttrs(0.1)),
                               low=-4.0, high=4.0, **EXACT),
    "clip_n1_to_1": lambda: _one("clip_n1_to_1", (1, 64), lambda b, x: b.unary(K.CLIP, x, ir.ClipAttrs(-1.0, 1.0)),
                                 low=-1.5, high=1.5, **EXACT),  # written as RELU_N1_TO_1
    # no TFLite op: compiled from the quantized graph, compared with mcuq's numpy mirror
    "hard_sigmoid": lambda: _one("hard_sigmoid", (1, 64), lambda b, x: b.unary(K.HARD_SIGMOID, x,
                                 ir.HardSigmoidAttrs(0.2, 0.5)), low=-4.0, high=4.0, oracle_ok=False, tflite_ok=False,
                                 **EXACT),
    "clip_upper": lambda: _one("clip_upper", (1, 64), lambda b, x: b.unary(K.CLIP, x, ir.ClipAttrs(-math.inf, 1.5)),
                               low=-3.0, high=3.0, oracle_ok=False, tflite_ok=False, **EXACT),
    "small_cnn": lambda: _one("small_cnn", IMG, _small_cnn, low=0.0),
    "residual": lambda: _one("residual", IMG, _residual),
    "branches": lambda: _one("branches", IMG, _branches),
    # degenerate cases: nothing may get a zero or NaN scale
    "const_input_channel": lambda: _one("const_input_channel", IMG, lambda b, x: b.conv(x, 4, act=A.RELU),
                                        draw=_const_channel),
    "zero_weight_channel": lambda: _one("zero_weight_channel", IMG, _zero_weight_channel),
    "relu_always_zero": lambda: _one("relu_always_zero", (1, 32), lambda b, x: b.unary(K.RELU, x), low=-3.0,
                                     high=-1.0, min_sqnr_db=None),
    "conv_always_zero": lambda: _one("conv_always_zero", (1, 6, 6, 2), _dead_conv, low=0.0, min_sqnr_db=None),
}  # fmt: skip


def float_model(name: str) -> FloatModel:
    return CASES[name]()


def wide_mlp() -> FloatModel:
    """Two FULLY_CONNECTED layers with matrices big enough for OpenBLAS to split the work between threads."""
    b = Builder("wide_mlp", 3)
    return FloatModel(b.graph(b.fc(b.fc(b.input((1, 256)), 256, act=A.RELU), 64)))
