"""Issue 11's variants of the one-op configurations of ``opgen``: 16x8 (int16 activations, int8 or packed weights,
int64 / int32 / no bias) for every op kind TFLite's 16x8 spec covers, and packed 4/2/1-bit weights under int8
activations for CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED.

``variant(seed, index, kind, graph)`` is a pure function: None (keep the int8 configuration ``graph``) or
(graph, description, oracle_ok). It draws from its own generator, so that the int8 configurations of a run stay
what they were. Draws stay where tflite-runtime 2.14 and mcuq both run the model (a refusal by one side only is
a finding): int16 tensors symmetric, softmax / logistic / tanh outputs at TFLite's fixed scales, requantization
ratios inside what both accept.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from mcuq import ir
from tests.kernels import test_conv16 as conv16
from tests.kernels import test_elementwise16 as ew16
from tests.kernels import test_pool16 as pool16

A, K = ir.Activation, ir.OpKind
I8, I16, I32, I64 = ir.DType.INT8, ir.DType.INT16, ir.DType.INT32, ir.DType.INT64
P_16X8 = 0.25  # of every configuration of a kind 16x8 covers
P_PACKED = 0.25  # of the int8 CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED ones
PACKED = {4: ir.DType.INT4, 2: ir.DType.INT2, 1: ir.DType.INT1}
ACTS = (A.NONE, A.NONE, A.RELU, A.RELU6, A.RELU_N1_TO_1)
WEIGHTED = {"CONV_2D": K.CONV2D, "DEPTHWISE_CONV_2D": K.DEPTHWISE_CONV2D, "FULLY_CONNECTED": K.FULLY_CONNECTED}
MOVES = ("PAD", "CONCATENATION", "TRANSPOSE", "RESHAPE", "SQUEEZE")


def f32(x: float) -> float:
    return float(np.float32(x))


def _logu(rng: np.random.Generator, lo: float, hi: float) -> float:
    return f32(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def _pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def _shape(rng: np.random.Generator, rank: int, hi: int, cap: int = 512) -> tuple[int, ...]:
    while True:
        s = tuple(int(d) for d in rng.integers(1, hi + 1, size=rank))
        if math.prod(s) <= cap:
            return s


def narrow(rng: np.random.Generator, shape: tuple[int, ...], bits: int) -> np.ndarray:
    if bits == 1:
        return rng.choice(np.array([-1, 1], np.int8), size=shape)
    hi = 7 if bits == 4 else 1
    return rng.integers(-hi, hi + 1, size=shape, dtype=np.int64).astype(np.int8)


def packed(rng: np.random.Generator, g: ir.Graph) -> tuple[ir.Graph, str]:
    """``g`` (a one-op int8 conv / depthwise / FC graph) with its weights ``w`` at 4, 2 or 1 bits; the output
    scale follows the smaller weights, so that the outputs still spread."""
    bits = int(_pick(rng, (4, 4, 2, 1)))
    w, y = g.tensors["w"], g.tensors["y"]
    assert w.data is not None and w.qparams is not None and y.qparams is not None
    data = narrow(rng, w.shape, bits)
    rms = math.sqrt(float(np.mean(data.astype(np.float64) ** 2)) + 0.25)
    rms_old = math.sqrt(float(np.mean(np.asarray(w.data, np.float64) ** 2)) + 0.25)
    tensors = dict(g.tensors)
    zp0 = dataclasses.replace(w.qparams, zero_point=(0,) * len(w.qparams.zero_point))
    tensors["w"] = ir.Tensor("w", w.shape, PACKED[bits], zp0, data)
    s_out = f32(y.scale * rms / rms_old)
    tensors["y"] = dataclasses.replace(y, qparams=ir.QParams((s_out,), (y.zero_point,)))
    return dataclasses.replace(g, tensors=tensors), f"packed w{bits}"


def _weighted16(rng: np.random.Generator, name: str, kind: ir.OpKind) -> tuple[ir.Graph, str, bool]:
    fc = kind is K.FULLY_CONNECTED
    bias = _pick(rng, (I64, I64, I64, I64, I32, None))
    bits = int(_pick(rng, (8, 8, 8, 4, 2, 1)))
    per_channel = rng.random() < 0.75
    if fc:
        rank = int(_pick(rng, (2, 2, 3, 4)))
        in_shape = (*_shape(rng, rank - 1, 4, 16), int(rng.integers(1, 65)))
        keep = rank > 2 and not per_channel and rng.random() < 0.5  # per-channel 3-D FC: the oracle is wrong
        w_zp = int(rng.integers(-20, 21)) if bits == 8 and not per_channel and rng.random() < 0.3 else 0
        case = conv16.Case(name, kind, in_shape, int(rng.integers(1, 17)), act=_pick(rng, ACTS),
                           per_channel=per_channel, bias=bias, bits=bits, w_zp=w_zp, keep_num_dims=keep,
                           bias_scale=float(_pick(rng, (1.0, 1.0, 1.0, 30.0, 1000.0))),
                           seed=int(rng.integers(2**31)))  # fmt: skip
        return conv16.build_graph(case), f"16x8 {case}", True
    padding = _pick(rng, (ir.Padding.SAME, ir.Padding.VALID))
    kernel = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
    stride = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    dilation = (1, 1) if rng.random() < 0.7 else (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    eff = [(k - 1) * d + 1 for k, d in zip(kernel, dilation)]
    lo = eff if padding is ir.Padding.VALID else [1, 1]
    hw = [int(rng.integers(lo[i], lo[i] + 8)) for i in range(2)]
    cin = int(rng.integers(1, 9))
    out_c = int(rng.integers(1, 9)) if kind is K.CONV2D else cin * int(_pick(rng, (1, 1, 2, 3)))
    case = conv16.Case(name, kind, (1 if rng.random() < 0.8 else 2, hw[0], hw[1], cin), out_c, kernel, stride,
                       dilation, padding, _pick(rng, ACTS), per_channel=per_channel, bias=bias, bits=bits,
                       bias_scale=float(_pick(rng, (1.0, 1.0, 1.0, 30.0, 1000.0))), seed=int(rng.integers(2**31)))  # fmt: skip
    # tflite-runtime 2.14's CONV_2D refuses a missing bias: compared with the mirror only
    return conv16.build_graph(case), f"16x8 {case}", not (kind is K.CONV2D and bias is None)


def _pool16(rng: np.random.Generator, name: str, kind: ir.OpKind) -> ir.Graph:
    padding = _pick(rng, (ir.Padding.SAME, ir.Padding.VALID))
    filt = (int(rng.integers(1, 6)), int(rng.integers(1, 6)))
    lo = filt if padding is ir.Padding.VALID else (1, 1)
    hw = (int(rng.integers(lo[0], lo[0] + 8)), int(rng.integers(lo[1], lo[1] + 8)))
    case = pool16.PoolCase(name, kind, (1 if rng.random() < 0.8 else 2, *hw, int(rng.integers(1, 9))), filt,
                           (int(rng.integers(1, 4)), int(rng.integers(1, 4))), padding, _pick(rng, ACTS),
                           _logu(rng, 5e-5, 2e-3))  # fmt: skip
    return pool16.pool_graph(case)


def _mean16(rng: np.random.Generator, name: str) -> ir.Graph:
    rank = int(rng.integers(1, 5))
    s = _shape(rng, rank, 7)
    axes = tuple(sorted(int(a) for a in rng.choice(rank, size=int(rng.integers(1, rank + 1)), replace=False)))
    keep = rng.random() < 0.5 or len(axes) == rank
    s_in = _logu(rng, 1e-4, 2e-3)
    s_out = s_in if rng.random() < 0.3 else f32(s_in * math.exp(rng.uniform(-2.5, 2.5)))
    return pool16.mean_graph(pool16.MeanCase(name, s, axes, keep, s_in, s_out))


def _binary16(rng: np.random.Generator, kind: ir.OpKind) -> ir.Graph:
    from .opgen import _broadcast_pair

    s1 = _logu(rng, 1e-4, 2e-3)
    s2 = f32(s1 * math.exp(rng.uniform(-2.0, 2.0)))
    if kind is K.MUL:
        so = f32(s1 * s2 * math.exp(rng.uniform(1.5, 8.5)))
    else:
        so = f32(max(s1, s2) * math.exp(rng.uniform(-0.5, 1.5)))
    a, b = _broadcast_pair(rng, {K.ADD: 6, K.SUB: 5, K.MUL: 4}[kind])
    const2 = int(rng.integers(2**31)) if rng.random() < 0.15 else None
    return ew16.binary(kind, a, b, s1, s2, so, _pick(rng, ACTS), const2=const2)


def _unary16(rng: np.random.Generator, kind: ir.OpKind) -> ir.Graph:
    shp = _shape(rng, int(rng.integers(1, 5)), 8)
    if kind is K.QUANTIZE:
        si = _logu(rng, 1e-4, 2e-3)
        if rng.random() < 0.4:  # int16 -> int8
            return ew16.unary(kind, shp, si, _logu(rng, 5e-3, 0.1), dout=I8, zpo=int(rng.integers(-128, 128)))
        return ew16.unary(kind, shp, si, f32(si * math.exp(rng.uniform(-2.5, 2.5))))
    if kind is K.SOFTMAX:
        shp = (*_shape(rng, int(rng.integers(0, 3)), 4, 16), int(rng.integers(1, 200)))
        beta = 1.0 if rng.random() < 0.7 else f32(rng.uniform(0.2, 3.0))
        return ew16.softmax(shp, _logu(rng, 1e-6, 0.1), beta)
    si = 2.0 ** -int(rng.integers(9, 14)) if rng.random() < 0.3 else _logu(rng, 1e-5, 0.05)
    return ew16.unary(kind, shp, si, 2.0**-15)


def as_int16(g: ir.Graph) -> ir.Graph:
    """A data-movement graph (PAD, CONCATENATION, TRANSPOSE, RESHAPE) in int16: every activation tensor int16,
    symmetric, at one scale (TFLite moves int16 values unchanged)."""
    scale = next(t.scale for t in g.tensors.values() if t.qparams is not None)
    q = ir.QParams((scale,), (0,))
    tensors = {
        n: dataclasses.replace(t, dtype=I16, qparams=q) if t.dtype is I8 and t.data is None else t
        for n, t in g.tensors.items()
    }
    return dataclasses.replace(g, tensors=tensors)


UNARY16 = {"QUANTIZE": K.QUANTIZE, "LOGISTIC": K.SIGMOID, "TANH": K.TANH, "SOFTMAX": K.SOFTMAX}
BINARY16 = {"ADD": K.ADD, "SUB": K.SUB, "MUL": K.MUL}
POOL16 = {"AVERAGE_POOL_2D": K.AVG_POOL2D, "MAX_POOL_2D": K.MAX_POOL2D}


def variant(seed: int, index: int, kind: str, graph: ir.Graph, oracle_ok: bool) -> tuple[ir.Graph, str, bool] | None:
    """The 16x8 or packed-weight variant of configuration ``index`` (op kind ``kind``, int8 graph ``graph`` that
    the oracle serves when ``oracle_ok``), or None to keep the int8 one."""
    rng = np.random.default_rng([0x3136, seed, index])
    name = f"c{index}"
    if rng.random() < P_16X8:
        if kind in WEIGHTED:
            return _weighted16(rng, name, WEIGHTED[kind])
        if kind in POOL16:
            return _pool16(rng, name, POOL16[kind]), "16x8 pool", True
        if kind == "MEAN":
            return _mean16(rng, name), "16x8 mean", True
        if kind in BINARY16:
            return _binary16(rng, BINARY16[kind]), "16x8 binary", True
        if kind in UNARY16:
            return _unary16(rng, UNARY16[kind]), "16x8 unary", True
        if kind in MOVES:
            return as_int16(graph), "16x8 move", oracle_ok
        return None
    if kind in WEIGHTED and rng.random() < P_PACKED / (1 - P_16X8):
        g, desc = packed(rng, graph)
        return g, desc, oracle_ok
    return None
