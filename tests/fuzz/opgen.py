"""Random one-op configurations for every op kind mcuq lowers, built with the one-op graph builders of
tests/kernels/*.py.

``draw(seed, index)`` is a pure function: the same (seed, index) gives the same graph. It draws what TFLite's
int8 spec allows and tflite-runtime 2.14 runs (weights symmetric in [-127, 127], activation zero points in
[-128, 127], bias scale = input scale * weight scale, the broadcast ranks each op supports), over shapes,
strides, padding, dilation, depth multipliers, zero points, scales, per-channel scale ratios, broadcast shapes,
fused activations, axes, permutations and paddings. ``oracle_ok`` is False where tflite-runtime 2.14 cannot be
the oracle (a convolution without bias, a per-channel FULLY_CONNECTED with a 3-D output): such a configuration
is compared with the numpy mirror only.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mcuq import ir
from tests.kernels import test_conv as conv
from tests.kernels import test_elementwise as elementwise
from tests.kernels import test_pool as pool
from tests.kernels import test_shape as shape
from tests.kernels import test_softmax as softmax

from . import opgen16

A, K = ir.Activation, ir.OpKind
ACTS = (A.NONE, A.NONE, A.RELU, A.RELU6, A.RELU_N1_TO_1)
MAX_ELEMS = 2048  # per tensor: keeps builds and runs fast


@dataclass(frozen=True)
class OpConfig:
    index: int
    kind: str  # the op kind as reported (SQUEEZE separately from RESHAPE)
    graph: ir.Graph
    desc: str  # the parameters drawn, for the report
    oracle_ok: bool = True


def f32(x: float) -> float:
    return float(np.float32(x))


def _logu(rng: np.random.Generator, lo: float, hi: float) -> float:
    return f32(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def _scale(rng: np.random.Generator) -> float:
    """A scale: usually in [1e-3, 1], one time in ten anywhere in [1e-6, 1e2]."""
    return _logu(rng, 1e-6, 1e2) if rng.random() < 0.1 else _logu(rng, 1e-3, 1.0)


def _spread(rng: np.random.Generator, usual: float) -> float:
    """exp(U(-usual, usual)), one time in ten exp(U(-3 usual, 3 usual)): a ratio between two scales."""
    a = usual * (3 if rng.random() < 0.1 else 1)
    return math.exp(rng.uniform(-a, a))


def _zp(rng: np.random.Generator) -> int:
    return int(rng.choice([-128, 127, 0])) if rng.random() < 0.25 else int(rng.integers(-128, 128))


def _pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def _shape(rng: np.random.Generator, rank: int, hi: int = 8, cap: int = MAX_ELEMS) -> tuple[int, ...]:
    while True:
        s = tuple(int(d) for d in rng.integers(1, hi + 1, size=rank))
        if math.prod(s) <= cap:
            return s


def _rescale(g: ir.Graph, rng: np.random.Generator) -> tuple[ir.Graph, str]:
    """Spread the weight scales per channel (ratios up to ~1e4) and move the output scale; biases follow."""
    w, y, x = g.tensors["w"], g.tensors["y"], g.tensors["x"]
    assert w.qparams is not None and y.qparams is not None
    spread = float(_pick(rng, (0.0, 0.5, 2.0, 4.6)))
    ratios = np.exp(rng.uniform(-spread, spread, size=len(w.qparams.scale)))
    s_w = tuple(f32(s * r) for s, r in zip(w.qparams.scale, ratios))
    tensors = dict(g.tensors)
    tensors["w"] = dataclasses.replace(w, qparams=dataclasses.replace(w.qparams, scale=s_w))
    s_out = f32(y.scale * _spread(rng, 1.5) * float(np.mean(ratios)))
    tensors["y"] = dataclasses.replace(y, qparams=ir.QParams((s_out,), (y.zero_point,)))
    if "b" in tensors:
        b = tensors["b"]
        b_q = ir.QParams(tuple(f32(x.scale * s) for s in s_w), (0,) * len(s_w))
        tensors["b"] = dataclasses.replace(b, qparams=b_q)
    return dataclasses.replace(g, tensors=tensors), f"w-ratio<=e^{spread} s_out={s_out:.3g}"


def _conv(rng: np.random.Generator, name: str, kind: ir.OpKind) -> tuple[ir.Graph, str, bool]:
    padding = _pick(rng, (ir.Padding.SAME, ir.Padding.VALID))
    kernel = (int(rng.integers(1, 6)), int(rng.integers(1, 6)))
    stride = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    dilation = (1, 1) if rng.random() < 0.6 else (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    eff = [(k - 1) * d + 1 for k, d in zip(kernel, dilation)]
    lo = eff if padding is ir.Padding.VALID else [1, 1]
    hw = [int(rng.integers(lo[i], lo[i] + 10)) for i in range(2)]
    cin = int(rng.integers(1, 9)) if rng.random() < 0.8 else int(rng.integers(9, 33))
    mult = 1 if kind is K.CONV2D or rng.random() < 0.5 else int(rng.integers(2, 5))
    out_c = int(rng.integers(1, 9)) if kind is K.CONV2D else cin * mult
    n = 1 if rng.random() < 0.8 else 2
    bias = rng.random() < 0.9
    case = conv.Case(
        name, kind, (n, hw[0], hw[1], cin), out_c, kernel, stride, dilation, padding, _pick(rng, ACTS),
        _zp(rng), _zp(rng), per_channel=rng.random() < 0.75, bias=bias, seed=int(rng.integers(2**31)),
        oracle_ok=bias,
    )  # fmt: skip
    g, scales = _rescale(conv.build_graph(case), rng)
    return g, f"{_describe(case)} {scales}", bias


def _fc(rng: np.random.Generator, name: str) -> tuple[ir.Graph, str, bool]:
    rank = int(_pick(rng, (2, 2, 2, 3, 4)))
    in_shape = (*_shape(rng, rank - 1, 4), int(rng.integers(1, 65)))
    per_channel = rng.random() < 0.5
    keep = rank > 2 and rng.random() < 0.5
    case = conv.Case(
        name, K.FULLY_CONNECTED, in_shape, int(rng.integers(1, 17)), act=_pick(rng, ACTS), in_zp=_zp(rng),
        out_zp=_zp(rng), per_channel=per_channel, bias=rng.random() < 0.85, keep_num_dims=keep,
        seed=int(rng.integers(2**31)),
    )  # fmt: skip
    g, scales = _rescale(conv.build_graph(case), rng)
    return g, f"{_describe(case)} {scales}", not (per_channel and keep)


def _pool(rng: np.random.Generator, name: str, kind: ir.OpKind) -> tuple[ir.Graph, str, bool]:
    padding = _pick(rng, (ir.Padding.SAME, ir.Padding.VALID))
    filt = (int(rng.integers(1, 7)), int(rng.integers(1, 7)))
    lo = filt if padding is ir.Padding.VALID else (1, 1)
    hw = [int(rng.integers(lo[i], lo[i] + 10)) for i in range(2)]
    n, c = (1 if rng.random() < 0.8 else 2), int(rng.integers(1, 9))
    out_q = (_logu(rng, 1e-3, 1.0), _zp(rng)) if kind is K.AVG_POOL2D and rng.random() < 0.15 else None
    case = pool.PoolCase(
        name, kind, (n, hw[0], hw[1], c), filt, (int(rng.integers(1, 4)), int(rng.integers(1, 4))), padding,
        _pick(rng, ACTS), _zp(rng), _scale(rng), out_q, seed=int(rng.integers(2**31)),
    )  # fmt: skip
    return pool.pool_graph(case), _describe(case), True


def _mean(rng: np.random.Generator, name: str) -> tuple[ir.Graph, str, bool]:
    rank = int(rng.integers(1, 5))
    s = _shape(rng, rank, 8)
    axes = tuple(sorted(int(a) for a in rng.choice(rank, size=int(rng.integers(1, rank + 1)), replace=False)))
    keep = rng.random() < 0.5 or len(axes) == rank
    s_in = _scale(rng)
    case = pool.MeanCase(name, s, axes, keep, (s_in, _zp(rng)), (f32(s_in * _spread(rng, 2.5)), _zp(rng)))
    return pool.mean_graph(case), _describe(case), True


def _broadcast_pair(rng: np.random.Generator, max_rank: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    out = _shape(rng, int(rng.integers(1, max_rank + 1)), 6, 512)
    if rng.random() < 0.35:
        return out, out
    parts = []
    for _ in range(2):
        s = [1 if rng.random() < 0.35 else d for d in out]
        drop = int(rng.integers(0, len(s))) if rng.random() < 0.3 else 0
        parts.append(tuple(s[drop:]))
    return parts[0], parts[1]


def _binary(rng: np.random.Generator, name: str, kind: ir.OpKind) -> tuple[ir.Graph, str, bool]:
    max_rank = {K.ADD: 6, K.SUB: 5, K.MUL: 4}[kind]
    s1 = _scale(rng)
    s2 = f32(s1 * _spread(rng, 3))
    if kind is K.MUL:
        lo, hi = (1.5, 8.5) if rng.random() < 0.9 else (-4.0, 14.0)
        so = f32(s1 * s2 * math.exp(rng.uniform(lo, hi)))
    else:
        lo, hi = (-1.0, 1.5) if rng.random() < 0.9 else (-6.0, 6.0)
        so = f32(max(s1, s2) * math.exp(rng.uniform(lo, hi)))
    q1, q2, qo, act = (s1, _zp(rng)), (s2, _zp(rng)), (so, _zp(rng)), _pick(rng, ACTS)
    if rng.random() < 0.08:
        shp = _shape(rng, int(rng.integers(1, 5)), 6, 512)
        return elementwise.square(kind, shp, q1, qo, act), f"{kind.name} x,x {shp} q={q1} qo={qo} {act.name}", True
    a, b = _broadcast_pair(rng, max_rank)
    const2 = int(rng.integers(2**31)) if rng.random() < 0.15 else None
    g = elementwise.binary(kind, a, b, q1, q2, qo, act, const2=const2)
    return g, f"{kind.name} {a} {b} q1={q1} q2={q2} qo={qo} {act.name} const2={const2 is not None}", True


def _unary(rng: np.random.Generator, name: str, kind: ir.OpKind) -> tuple[ir.Graph, str, bool]:
    shp = _shape(rng, int(rng.integers(1, 5)), 8, 512)
    qi = (_scale(rng), _zp(rng))
    if kind is K.SIGMOID:
        qo = (1 / 256, _pick(rng, (-128, -128, 0)))
    elif kind is K.TANH:
        qo = (1 / 128, 0) if rng.random() < 0.8 else (_logu(rng, 1e-3, 0.1), _zp(rng))
    elif kind is K.HARD_SWISH:
        qo = (f32(qi[0] * _spread(rng, 3)), _zp(rng))
    else:
        qo = (f32(qi[0] * _spread(rng, 2.5)), _zp(rng))
    return elementwise.unary(kind, shp, qi, qo), f"{kind.name} {shp} qi={qi} qo={qo}", True


def _softmax(rng: np.random.Generator, name: str) -> tuple[ir.Graph, str, bool]:
    shp = (*_shape(rng, int(rng.integers(0, 4)), 4), int(rng.integers(1, 300)))
    beta = 1.0 if rng.random() < 0.6 else f32(rng.uniform(0.1, 4.0))
    case = softmax.Case(name, shp, _scale(rng), _zp(rng), beta)
    return softmax.softmax_graph(case), _describe(case), True


def _pad(rng: np.random.Generator, name: str) -> tuple[ir.Graph, str, bool]:
    s = _shape(rng, int(rng.integers(1, 6)), 6, 512)
    pads = [(int(rng.integers(0, 4)) * (rng.random() < 0.6), int(rng.integers(0, 4)) * (rng.random() < 0.6)) for _ in s]
    zin, sin = _zp(rng), _logu(rng, 1e-3, 1.0)
    zout, sout = (zin, sin) if rng.random() < 0.85 else (_zp(rng), _logu(rng, 1e-3, 1.0))
    return shape.pad_graph(s, pads, zin, zout, sin, sout), f"PAD {s} {pads} q=({sin}, {zin}) qo=({sout}, {zout})", True


def _concat(rng: np.random.Generator, name: str) -> tuple[ir.Graph, str, bool]:
    base = list(_shape(rng, int(rng.integers(1, 6)), 5, 256))
    axis = int(rng.integers(len(base)))
    shapes = []
    for _ in range(int(rng.integers(1, 5))):
        base[axis] = int(rng.integers(1, 5))
        shapes.append(tuple(base))
    q = (_zp(rng), _logu(rng, 1e-3, 1.0))
    return shape.concat_graph(shapes, axis, *q), f"CONCATENATION {shapes} axis={axis} zp,s={q}", True


def _transpose(rng: np.random.Generator, name: str) -> tuple[ir.Graph, str, bool]:
    s = _shape(rng, int(rng.integers(1, 7)), 4, 512)
    perm = tuple(int(p) for p in rng.permutation(len(s)))
    zin, sin = _zp(rng), _logu(rng, 1e-3, 1.0)
    zout, sout = (zin, sin) if rng.random() < 0.9 else (_zp(rng), _logu(rng, 1e-3, 1.0))
    return shape.transpose_graph(s, perm, zin, zout, sin, sout), f"TRANSPOSE {s} perm={perm}", True


def _reshape(rng: np.random.Generator, name: str, squeeze: bool) -> tuple[ir.Graph, str, bool]:
    s = _shape(rng, int(rng.integers(1, 5)), 6, 512)
    if squeeze:
        full = list(s)
        for _ in range(int(rng.integers(1, 3))):
            full.insert(int(rng.integers(len(full) + 1)), 1)
        src, dst = tuple(full), tuple(d for d in full if d != 1) or (1,)
        return shape.reshape_graph(K.RESHAPE, src, dst, _zp(rng), origin="SQUEEZE"), f"SQUEEZE {src} -> {dst}", True
    n, out = math.prod(s), []
    for _ in range(int(rng.integers(0, 3))):
        divisors = [d for d in range(1, n + 1) if n % d == 0]
        d = _pick(rng, divisors)
        out.append(d)
        n //= d
    dst = (*out, n)
    return shape.reshape_graph(K.RESHAPE, s, dst, _zp(rng)), f"RESHAPE {s} -> {dst}", True


def _describe(case) -> str:
    fields = dataclasses.asdict(case)
    fields.pop("id", None)
    return f"{type(case).__name__}(" + ", ".join(f"{k}={_short(v)}" for k, v in fields.items()) + ")"


def _short(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return v.name if isinstance(v, (ir.OpKind, ir.Padding, ir.Activation)) else str(v)


Drawer = Callable[[np.random.Generator, str], tuple[ir.Graph, str, bool]]
DRAWERS: dict[str, Drawer] = {
    "CONV_2D": lambda r, n: _conv(r, n, K.CONV2D),
    "DEPTHWISE_CONV_2D": lambda r, n: _conv(r, n, K.DEPTHWISE_CONV2D),
    "FULLY_CONNECTED": _fc,
    "AVERAGE_POOL_2D": lambda r, n: _pool(r, n, K.AVG_POOL2D),
    "MAX_POOL_2D": lambda r, n: _pool(r, n, K.MAX_POOL2D),
    "MEAN": _mean,
    "ADD": lambda r, n: _binary(r, n, K.ADD),
    "SUB": lambda r, n: _binary(r, n, K.SUB),
    "MUL": lambda r, n: _binary(r, n, K.MUL),
    "QUANTIZE": lambda r, n: _unary(r, n, K.QUANTIZE),
    "RELU": lambda r, n: _unary(r, n, K.RELU),
    "RELU6": lambda r, n: _unary(r, n, K.RELU6),
    "LOGISTIC": lambda r, n: _unary(r, n, K.SIGMOID),
    "TANH": lambda r, n: _unary(r, n, K.TANH),
    "HARD_SWISH": lambda r, n: _unary(r, n, K.HARD_SWISH),
    "SOFTMAX": _softmax,
    "PAD": _pad,
    "CONCATENATION": _concat,
    "TRANSPOSE": _transpose,
    "RESHAPE": lambda r, n: _reshape(r, n, False),
    "SQUEEZE": lambda r, n: _reshape(r, n, True),
}
KINDS = tuple(DRAWERS)


def draw(seed: int, index: int) -> OpConfig:
    """Configuration ``index`` of the run ``seed``: the op kind cycles through ``KINDS``, the rest is random."""
    rng = np.random.default_rng([0x6F7073, seed, index])
    kind = KINDS[index % len(KINDS)]
    g, desc, oracle_ok = DRAWERS[kind](rng, f"c{index}")
    other = opgen16.variant(seed, index, kind, g, oracle_ok)  # 16x8 or packed weights, from its own generator
    if other is not None:
        g, how, oracle_ok = other
        desc = f"{how} (from {desc})" if how.startswith(("packed", "16x8 move")) else how
    return OpConfig(index, kind, g, desc, oracle_ok)
