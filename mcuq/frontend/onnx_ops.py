"""ONNX op converters: one function per op type in ``CONVERTERS``, ``fn(builder, node) -> [Val per output]``.
This module has the windows (Conv, pools), Gemm / MatMul, the elementwise ops and BatchNormalization;
``onnx_order`` the ops that move or reduce axes.

A converter reads its inputs as ``Val`` (``onnx_layout``), asks the builder for the layout it needs (convolutions
and pools work on NHWC / NWC, order-dependent ops on the model's own order unless they can map their axes), and
emits IR ops. Shapes are computed here, in ONNX terms, and checked against ONNX's shape inference by the caller.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .. import ir
from ..ir import OpKind
from .onnx_build import CONVERTERS, Builder, Node, converter, out_val
from .onnx_layout import PLAIN, Val, flat_perm, ir_shape


def _ints(n: Node, key: str, default: list[int], count: int) -> list[int]:
    v = n.ints(key) or [int(x) for x in default]
    if len(v) != count:
        raise n.error(f"{key} {v} has {len(v)} values, expected {count}")
    return v


# -- windows: convolutions and pools ------------------------------------------------------------------------


def _auto_pad(n: Node) -> str:
    return n.string("auto_pad", "NOTSET")


def _window(n: Node, x: Val, kernel: list[int]) -> tuple[list[int], list[int], list[int], list[tuple[int, int]]]:
    """(kernel, strides, dilations, (before, after) pads) over the spatial axes, as 2-D (H, W): a 1-D window gets
    height 1."""
    spatial = x.rank - 2
    strides = _ints(n, "strides", [1] * spatial, spatial)
    dil = _ints(n, "dilations", [1] * spatial, spatial)
    ins = list(x.shape[2:])
    if min(kernel + strides + dil) < 1:
        raise n.error(f"kernel {kernel}, strides {strides} and dilations {dil} must be >= 1")
    ap = _auto_pad(n)
    if ap == "NOTSET":
        p = _ints(n, "pads", [0] * 2 * spatial, 2 * spatial)
        if min(p) < 0:
            raise n.error(f"negative pads {p}")
        pads = list(zip(p[:spatial], p[spatial:]))
    elif ap == "VALID":
        pads = [(0, 0)] * spatial
    elif ap in ("SAME_UPPER", "SAME_LOWER"):
        pads = []
        for i, k, s, d in zip(ins, kernel, strides, dil):
            total = max((math.ceil(i / s) - 1) * s + (k - 1) * d + 1 - i, 0)
            small = total // 2
            pads.append((small, total - small) if ap == "SAME_UPPER" else (total - small, small))
    else:
        raise n.error(f"auto_pad {ap!r} not supported")
    if spatial == 1:
        return [1, *kernel], [1, *strides], [1, *dil], [(0, 0), *pads]
    if spatial != 2:
        raise n.error(f"{spatial}-D windows not supported (1-D and 2-D are)")
    return kernel, strides, dil, pads


def _out_sizes(n: Node, hw: list[int], k, s, d, pads, ceil: bool = False) -> list[int]:
    out = []
    for i, kk, ss, dd, (a, b) in zip(hw, k, s, d, pads):
        span = i + a + b - (kk - 1) * dd - 1
        if span < 0:
            raise n.error(f"window of {kk} (dilation {dd}) is larger than the padded input of {i + a + b}")
        o = span // ss + 1
        if ceil:  # refused wherever rounding up could matter (runtimes differ on a last window in the padding)
            oc = -(-span // ss) + 1
            if oc != o:
                raise n.error("ceil_mode=1 gives another output size than TFLite's floor; not supported")
        out.append(o)
    return out


def _tflite_padding(hw, k, s, d, pads) -> ir.Padding | None:
    """VALID or SAME when ``pads`` are what TFLite computes for it, else None."""
    if all(p == (0, 0) for p in pads):
        return ir.Padding.VALID
    same = []
    for i, kk, ss, dd in zip(hw, k, s, d):
        out = -(-i // ss)
        total = max((out - 1) * ss + (kk - 1) * dd + 1 - i, 0)
        same.append((total // 2, total - total // 2))
    return ir.Padding.SAME if list(pads) == same else None


def _hw(x: Val) -> list[int]:
    return [1, x.shape[2]] if x.rank == 3 else list(x.shape[2:])


def _spatial_shape(x: Val, channels: int, out_hw: list[int]) -> tuple[int, ...]:
    return (x.shape[0], channels, out_hw[1]) if x.rank == 3 else (x.shape[0], channels, *out_hw)


def _padded(b: Builder, x: Val, pads) -> str:
    """An explicit PAD (zeros) before a window op whose padding TFLite cannot express."""
    (t, bt), (left, r) = pads
    n, h, w, c = ir_shape(x.shape, x.layout)
    return b.emit(
        OpKind.PAD, (x.ir,), (n, h + t + bt, w + left + r, c), ir.PadAttrs(((0, 0), (t, bt), (left, r), (0, 0)))
    )


@converter("Conv")
def conv(b: Builder, n: Node) -> list:
    x = b.channels_last(n.act(0))
    wv = n.input(1, "weight")
    w = n.const(1, "weight")
    bias = n.const(2, "bias", optional=True)
    if w.ndim != x.rank:
        raise n.error(f"weight of shape {list(w.shape)} for an input of rank {x.rank}")
    group = n.int("group", 1)
    cin, cout = x.shape[1], w.shape[0]
    kernel = _ints(n, "kernel_shape", list(w.shape[2:]), x.rank - 2)
    if kernel != list(w.shape[2:]):
        raise n.error(f"kernel_shape {kernel} does not match the weight's {list(w.shape[2:])}")
    k, s, d, pads = _window(n, x, kernel)
    hw = _hw(x)
    out_hw = _out_sizes(n, hw, k, s, d, pads)
    padding = _tflite_padding(hw, k, s, d, pads)
    xin = x.ir
    if padding is None:
        xin, padding = _padded(b, x, pads), ir.Padding.VALID
    w4 = (lambda a: a.reshape(a.shape[0], a.shape[1], 1, a.shape[2])) if w.ndim == 3 else (lambda a: a)
    if group == 1 and w.shape[1] == cin:
        kind = OpKind.CONV2D
        wname = b.weight(wv, lambda a: w4(a).transpose(0, 2, 3, 1), f"{n.name}/weights", 0)
        attrs: ir.Attrs = ir.Conv2DAttrs(padding, s[0], s[1], d[0], d[1])
    elif group == cin and w.shape[1] == 1 and cout % cin == 0:
        kind = OpKind.DEPTHWISE_CONV2D
        wname = b.weight(wv, lambda a: w4(a).transpose(1, 2, 3, 0), f"{n.name}/weights", 3)
        attrs = ir.DepthwiseConv2DAttrs(padding, s[0], s[1], d[0], d[1], depth_multiplier=cout // cin)
    else:
        raise n.error(
            f"group={group} with {cin} input channels and weight {list(w.shape)}: only group 1 and depthwise "
            "(group = input channels) are supported"
        )
    bname = ""
    if bias is not None:
        if bias.shape != (cout,):
            raise n.error(f"bias of shape {list(bias.shape)}, expected [{cout}]")
        bname = b.bias(n.inputs[2], f"{n.name}/bias")
    return [out_val(b, n, kind, (xin, wname, bname), _spatial_shape(x, cout, out_hw), attrs, x.layout)]


def _pool(b: Builder, n: Node, kind: OpKind) -> list:
    x = b.channels_last(n.act(0))
    if len([o for o in n.outputs if o]) > 1:
        raise n.error("the Indices output is not supported")
    kernel = _ints(n, "kernel_shape", [], x.rank - 2)
    if n.int("storage_order", 0) != 0:
        raise n.error("storage_order=1 not supported")
    k, s, d, pads = _window(n, x, kernel)
    if d != [1, 1]:
        raise n.error(f"dilations {d[2 - (x.rank - 2) :]} not supported for pools")
    hw = _hw(x)
    out_hw = _out_sizes(n, hw, k, s, d, pads, ceil=bool(n.int("ceil_mode", 0)))
    padding = _tflite_padding(hw, k, s, d, pads)
    xin = x.ir
    if kind is OpKind.AVG_POOL2D and padding is ir.Padding.SAME and n.int("count_include_pad", 0):
        padding = None  # TFLite's SAME average leaves the padding out of the count; ONNX counts it here
    if padding is None:
        if kind is OpKind.MAX_POOL2D or not n.int("count_include_pad", 0):
            raise n.error(f"pads {pads} are neither TFLite's SAME nor VALID for this window; not supported")
        xin, padding = _padded(b, x, pads), ir.Padding.VALID  # zeros counted in the average, as ONNX counts them
    attrs = ir.Pool2DAttrs(padding, s[0], s[1], k[0], k[1])
    return [out_val(b, n, kind, (xin,), _spatial_shape(x, x.shape[1], out_hw), attrs, x.layout)]


@converter("MaxPool")
def max_pool(b: Builder, n: Node) -> list:
    return _pool(b, n, OpKind.MAX_POOL2D)


@converter("AveragePool")
def avg_pool(b: Builder, n: Node) -> list:
    return _pool(b, n, OpKind.AVG_POOL2D)


@converter("GlobalAveragePool")
def global_avg_pool(b: Builder, n: Node) -> list:
    x = b.channels_last(n.act(0))
    shape = (*x.shape[:2], *[1] * (x.rank - 2))
    axes = (1, 2) if x.rank == 4 else (2,)
    return [out_val(b, n, OpKind.MEAN, (x.ir,), shape, ir.MeanAttrs(axes, True), x.layout)]


# -- fully connected ----------------------------------------------------------------------------------------


def _fc(b: Builder, n: Node, a: Val, wv: Val, to_w: Callable[[np.ndarray], np.ndarray], bias_v: Val | None,
        to_b: Callable[[np.ndarray], np.ndarray] | None, alpha: float = 1.0, beta: float = 1.0) -> list:  # fmt: skip
    """FULLY_CONNECTED of ``a`` with [out, in] weights ``to_w(wv) * alpha`` (in the model's column order; permuted
    here when ``a`` is a flattened NHWC value) and bias ``to_b(bias_v) * beta`` (a QDQ weight keeps its integers,
    ``alpha`` going into its scales; a QDQ bias scaled by ``alpha`` or ``beta`` is requantized from its value)."""
    if not (math.isfinite(alpha) and math.isfinite(beta)):
        raise n.error(f"alpha {alpha} and beta {beta} must be finite")
    if a.layout.kind in ("nhwc", "nwc"):
        a = b.plain(a)
    perm = flat_perm(a.layout) if a.layout.kind == "flat" else None
    w = to_w(wv.const)
    if w.ndim != 2 or w.shape[1] != a.shape[-1]:
        raise n.error(f"weight of shape {list(w.shape)} (as [out, in]) for an input of shape {list(a.shape)}")
    wname = b.weight(wv, (lambda x: to_w(x)[:, perm]) if perm is not None else to_w, f"{n.name}/weights", 0, alpha)
    bname = ""
    if bias_v is not None:
        scaled = (lambda c: np.asarray(to_b(c)) * beta) if to_b is not None and beta != 1.0 else to_b
        bname = b.bias(bias_v, f"{n.name}/bias", scaled, given=alpha == 1.0 and beta == 1.0)
        if b.tensors[bname].shape != (w.shape[0],):
            raise n.error(f"bias of shape {list(b.tensors[bname].shape)}, expected [{w.shape[0]}]")
    shape = (*a.shape[:-1], w.shape[0])
    attrs = ir.FullyConnectedAttrs(keep_num_dims=a.rank > 2)
    return [out_val(b, n, OpKind.FULLY_CONNECTED, (a.ir, wname, bname), shape, attrs, PLAIN)]


@converter("Gemm")
def gemm(b: Builder, n: Node) -> list:
    a = n.act(0)
    if a.rank != 2:
        raise n.error(f"input of shape {list(a.shape)}; Gemm takes a matrix")
    if n.int("transA", 0):
        raise n.error("transA=1 not supported")
    n.const(1, "weight B")
    trans_b = n.int("transB", 0)
    alpha, beta = n.float("alpha", 1.0), n.float("beta", 1.0)
    out = n.inputs[1].const.shape[0 if trans_b else 1]

    def to_w(w: np.ndarray) -> np.ndarray:
        w = np.asarray(w)
        if w.ndim != 2:
            raise n.error(f"weight B of shape {list(w.shape)}; expected a matrix")
        return w if trans_b else w.T

    def to_b(c: np.ndarray) -> np.ndarray:
        c = np.asarray(c)
        if c.size not in (1, out) or (c.ndim == 2 and c.shape[0] != 1) or c.ndim > 2:
            raise n.error(f"bias C of shape {list(c.shape)}; mcuq takes one value per output ({out})")
        return np.broadcast_to(c.reshape(-1), (out,))

    if len(n.inputs) > 2 and n.inputs[2] is not None:
        n.const(2, "bias C")
    bias = n.inputs[2] if len(n.inputs) > 2 else None
    return _fc(b, n, a, n.inputs[1], to_w, bias, to_b, alpha, beta)


@converter("MatMul")
def matmul(b: Builder, n: Node) -> list:
    a = n.act(0)
    w = n.const(1, "weight (the second input)")
    if w.ndim != 2 or a.rank < 2:
        raise n.error(f"MatMul of {list(a.shape)} by {list(w.shape)}: mcuq takes a constant matrix as the second input")
    return _fc(b, n, a, n.inputs[1], lambda x: np.asarray(x).T, None, None)


# -- elementwise ----------------------------------------------------------------------------------------------


def _broadcast_shape(n: Node, *shapes) -> tuple[int, ...]:
    try:
        return tuple(int(d) for d in np.broadcast_shapes(*shapes))
    except ValueError:
        raise n.error(f"input shapes {[list(s) for s in shapes]} do not broadcast") from None


def _binary(b: Builder, n: Node, kind: OpKind, x: Val, y: Val) -> list:
    shape = _broadcast_shape(n, x.shape, y.shape)
    acts = [v for v in (x, y) if v.const is None]
    if not acts:
        raise n.error("both inputs are constants")
    lay = acts[0].layout
    if any(v.rank != len(shape) for v in acts) or lay.kind == "flat" or any(v.layout != lay for v in acts):
        lay = PLAIN if any(v.rank != len(shape) for v in acts) or lay.kind == "flat" else lay
    if lay.kind in ("nhwc", "nwc") and any(v.const is not None and v.rank > len(shape) for v in (x, y)):
        lay = PLAIN
    ins = tuple(b.ir_name(b.like(v, lay)) for v in (x, y))
    return [out_val(b, n, kind, ins, shape, ir.BinaryAttrs(), lay)]


@converter("Add")
def add(b: Builder, n: Node) -> list:
    return _binary(b, n, OpKind.ADD, n.input(0, "A"), n.input(1, "B"))


@converter("Sub")
def sub(b: Builder, n: Node) -> list:
    return _binary(b, n, OpKind.SUB, n.input(0, "A"), n.input(1, "B"))


@converter("Mul")
def mul(b: Builder, n: Node) -> list:
    return _binary(b, n, OpKind.MUL, n.input(0, "A"), n.input(1, "B"))


@converter("Div")
def div(b: Builder, n: Node) -> list:
    c = n.const(1, "divisor")
    if not np.all(np.isfinite(c)) or np.any(c == 0):
        raise n.error("division by a constant holding zero, NaN or inf")
    with np.errstate(all="ignore"):
        recip = (1.0 / c.astype(np.float64)).astype(np.float32)
    if not np.all(np.isfinite(recip)):
        raise n.error("division by a constant whose reciprocal is not a finite float32")
    return _binary(b, n, OpKind.MUL, n.act(0), Val(c.shape, const=recip))


def _unary(b: Builder, n: Node, kind: OpKind, attrs: ir.Attrs) -> list:
    x = n.act(0)
    return [out_val(b, n, kind, (x.ir,), x.shape, attrs, x.layout)]


_SIMPLE = {"Relu": OpKind.RELU, "Sigmoid": OpKind.SIGMOID, "Tanh": OpKind.TANH, "HardSwish": OpKind.HARD_SWISH}


@converter(*_SIMPLE)
def simple(b: Builder, n: Node) -> list:
    return _unary(b, n, _SIMPLE[n.op_type], ir.NoAttrs())


@converter("LeakyRelu")
def leaky_relu(b: Builder, n: Node) -> list:
    return _unary(b, n, OpKind.LEAKY_RELU, ir.LeakyReluAttrs(n.float("alpha", 0.01)))


@converter("HardSigmoid")
def hard_sigmoid(b: Builder, n: Node) -> list:
    return _unary(b, n, OpKind.HARD_SIGMOID, ir.HardSigmoidAttrs(n.float("alpha", 0.2), n.float("beta", 0.5)))


@converter("Clip")
def clip(b: Builder, n: Node) -> list:
    bounds = []
    for pos, what, default in ((1, "min", -np.inf), (2, "max", np.inf)):
        c = n.const(pos, what, optional=True)
        if c is not None and c.size != 1:
            raise n.error(f"{what} of shape {list(c.shape)}; expected a scalar")
        bounds.append(float(c.reshape(())) if c is not None else default)
    lo, hi = bounds
    if math.isnan(lo) or math.isnan(hi) or lo > hi:
        raise n.error(f"bounds ({lo}, {hi}) are not an interval")
    if (lo, hi) == (0.0, math.inf):
        return _unary(b, n, OpKind.RELU, ir.NoAttrs())
    if (lo, hi) == (0.0, 6.0):
        return _unary(b, n, OpKind.RELU6, ir.NoAttrs())
    return _unary(b, n, OpKind.CLIP, ir.ClipAttrs(lo, hi))


@converter("Cast")
def cast(b: Builder, n: Node) -> list:
    """A Cast of a computed value to float32 is the value itself (exporters leave some in); others are refused."""
    if n.int("to", 0) != 1:
        raise n.error(f"cast of a computed value to type {n.int('to', 0)}: mcuq computes float32 (type 1) only")
    return [n.act(0)]


@converter("Identity", "Dropout")
def identity(b: Builder, n: Node) -> list:
    if n.op_type == "Dropout" and len([o for o in n.outputs if o]) > 1:
        raise n.error("the mask output is not supported")
    return [n.input(0, "input")]


@converter("BatchNormalization")
def batch_norm(b: Builder, n: Node) -> list:
    x = n.act(0)
    if n.int("training_mode", 0) or len([o for o in n.outputs if o]) > 1:
        raise n.error("training mode (running statistics outputs) not supported")
    c = x.shape[1] if x.rank >= 2 else 0
    params = [n.const(i, what).astype(np.float64) for i, what in enumerate(("", "scale", "B", "mean", "var")) if i]
    if any(p.shape != (c,) for p in params):
        raise n.error(f"scale, B, mean and var must have shape [{c}]: got {[list(p.shape) for p in params]}")
    scale, bias, mean, var = params
    eps = n.float("epsilon", 1e-5)
    if not all(np.isfinite(p).all() for p in (*params, eps)):
        raise n.error("scale, B, mean, var and epsilon must be finite")
    if np.any(var + eps <= 0):
        raise n.error("var + epsilon is not positive")
    with np.errstate(all="ignore"):
        a = scale / np.sqrt(var + eps)
        d = bias - mean * a
    if not (np.isfinite(a).all() and np.isfinite(d).all()):
        raise n.error("the folded scale and offset are not finite")
    cshape = (1, c, *[1] * (x.rank - 2))
    given = b.acts.get(x.ir)  # a QDQ model's quantization of the input (onnx_qdq.ActQ), if any
    made = next((op for op in reversed(b.ops) if x.ir in op.outputs), None)
    if given is not None and made is not None and len(made.inputs) > 1 and made.inputs[1] in b.qweights:
        raise n.error(f"batch norm after the quantized {made.origin or made.kind.value} '{made.name}': mcuq cannot "
                      "fold it into the given integer weights; fold batch norms before quantizing (onnxruntime's "
                      "quant_pre_process, or a torch export in eval mode)")  # fmt: skip
    if x.rank in (3, 4):
        x = b.channels_last(x)
    lay = x.layout if x.layout.kind != "flat" else PLAIN
    x = b.like(x, lay)
    if given is not None and lay.kind in ("nhwc", "nwc"):  # QDQ: one rounding, as a 1x1 depthwise conv (a MUL
        w = b.const(a.astype(np.float32).reshape(1, 1, 1, c), f"{n.name}/weights")  # and an ADD round twice)
        bias_name = b.const(d.astype(np.float32), f"{n.name}/bias")
        attrs = ir.DepthwiseConv2DAttrs(ir.Padding.VALID, 1, 1, 1, 1, depth_multiplier=1)
        return [out_val(b, n, OpKind.DEPTHWISE_CONV2D, (x.ir, w, bias_name), x.shape, attrs, lay)]
    ain = b.ir_name(b.like(Val(cshape, const=a.astype(np.float32).reshape(cshape)), lay))
    din = b.ir_name(b.like(Val(cshape, const=d.astype(np.float32).reshape(cshape)), lay))
    mid = b.emit(OpKind.MUL, (x.ir, ain), ir_shape(x.shape, lay), ir.BinaryAttrs())
    if given is not None:  # QDQ: the product x * a has no Q/DQ of its own; quantize it over x's range times a
        lo, hi = given.scale * (-128 - given.zero_point), given.scale * (127 - given.zero_point)
        ends = np.concatenate([a * lo, a * hi, [0.0]])
        b.acts[mid] = type(given)(*_int8_range(float(ends.min()), float(ends.max())))
    return [out_val(b, n, OpKind.ADD, (mid, din), x.shape, ir.BinaryAttrs(), lay)]


def _int8_range(lo: float, hi: float) -> tuple[float, int]:
    """(scale, zero point) of asymmetric int8 over [lo, hi] (which holds 0), as a calibrating quantizer picks."""
    scale = max((hi - lo) / 255.0, 1e-12)
    return scale, int(np.clip(round(-128 - lo / scale), -128, 127))


def supported_ops() -> list[str]:
    return sorted(CONVERTERS)


from . import onnx_order  # noqa: E402,F401  (registers the shape and order converters in CONVERTERS)
