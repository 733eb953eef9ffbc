"""A prepared model -> mcuq's float ``ir.Graph`` + the learned integer parameters -> ``quantize_fixed`` -> .tflite.

Layouts: torch is NCHW, mcuq NHWC. Conv weights OIHW -> OHWI, depthwise (C, 1, kh, kw) -> 1HWC, Linear stays
[out, in]; a flatten of an NCHW tensor (C, H, W) before a Linear becomes a RESHAPE of the NHWC tensor (H, W, C),
and the Linear's weight columns are permuted to match, so the logits are the same numbers. The exported model's
input is NHWC (batch 1): an NCHW batch ``x`` goes in as ``x.permute(0, 2, 3, 1)`` (``nhwc_input``). The graph
records the NCHW layout of its 4-D input and outputs in ``meta["io_layout"]`` (``mcuq.layout``), for the parts of
mcuq that convert user arrays by it.

torch's padding is explicit; TFLite's is SAME or VALID. A conv whose padding gives the windows of either is
exported with it; any other padding is an McuqError naming the layer.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .. import ir
from ..errors import McuqError
from ..lower.window import out_size, pad_before
from ..quant.fixed import ActQuant, WeightQuant, quantize_fixed
from .model import QatModel

F32 = ir.DType.FLOAT32
_ACT = {"none": ir.Activation.NONE, "relu": ir.Activation.RELU, "relu6": ir.Activation.RELU6}


@dataclass(frozen=True, eq=False)
class Export:
    """The float graph (folded weights) and what ``quantize_fixed`` takes."""

    graph: ir.Graph
    activations: dict[str, ActQuant]
    weights: dict[str, WeightQuant]
    biases: dict[str, np.ndarray]


def _padding(name: str, hw: tuple[int, int], k, s, d, p, out_hw) -> ir.Padding:
    """The TFLite padding whose windows are torch's in both dimensions (VALID when both are: a 1x1 kernel)."""
    fits = {ir.Padding.VALID, ir.Padding.SAME}
    for i in range(2):
        ok = set()
        if p[i] == 0 and out_size(ir.Padding.VALID, hw[i], k[i], s[i], d[i]) == out_hw[i]:
            ok.add(ir.Padding.VALID)
        same = out_size(ir.Padding.SAME, hw[i], k[i], s[i], d[i])
        if same == out_hw[i] and p[i] == pad_before(hw[i], k[i], s[i], d[i], same):
            ok.add(ir.Padding.SAME)
        fits &= ok
    if fits:
        return ir.Padding.VALID if ir.Padding.VALID in fits else ir.Padding.SAME
    raise McuqError(f"qat: Conv2d '{name}': padding {tuple(p)} on a {hw[0]}x{hw[1]} input (kernel {tuple(k)}, stride "
                    f"{tuple(s)}) gives windows TFLite's SAME or VALID padding does not; use padding 0 or (k-1)//2 "
                    "with stride 1")  # fmt: skip


def build(model: QatModel, name: str = "qat_model") -> Export:
    """The export of ``model`` as it computes in evaluation mode (frozen statistics, current scales)."""
    if not isinstance(model, QatModel):
        raise McuqError(f"qat: expected a model from mcuq.qat.prepare, got {type(model).__name__}")
    tensors: dict[str, ir.Tensor] = {}
    ops: list[ir.Op] = []
    acts: dict[str, ActQuant] = {}
    weights: dict[str, WeightQuant] = {}
    biases: dict[str, np.ndarray] = {}
    order: dict[str, tuple[int, int, int]] = {}  # flattened tensors: the NCHW (C, H, W) their elements came from
    qp: dict[str, tuple[float, int]] = {}
    outputs: tuple[str, ...] = ()

    def nhwc(shape: tuple[int, ...]) -> tuple[int, ...]:
        return (1, *shape[2:], shape[1]) if len(shape) == 4 else (1, *shape[1:])

    def act_tensor(t: str, shape: tuple[int, ...], q: tuple[float, int]) -> None:
        tensors[t] = ir.Tensor(t, nhwc(shape), F32)
        qp[t] = q
        acts[t] = ActQuant(q[0], q[1])

    def const(t: str, data: np.ndarray) -> str:
        a = np.ascontiguousarray(data, dtype=np.float32)
        a.setflags(write=False)
        tensors[t] = ir.Tensor(t, tuple(a.shape), F32, None, a)
        return t

    def op(kind: ir.OpKind, out: str, inputs: tuple[str, ...], attrs) -> None:
        ops.append(ir.Op(kind, out, inputs, (out,), attrs, index=len(ops)))

    for st in _without_dropout(model.stages):
        if st.kind == "input":
            if len(st.shape) not in (2, 4):
                raise McuqError(f"qat: the input has shape {list(st.shape)}; mcuq takes (N, C, H, W) or (N, F)")
            act_tensor("input", st.shape, model.input_obs.frozen_qparams())
        elif st.kind == "output":
            src = st.inputs[0]
            if src in order:
                raise McuqError("qat: the model returns a flattened NCHW tensor, whose element order the NHWC "
                                "model cannot keep; return it before the flatten or through a Linear")  # fmt: skip
            outputs = (src,)
        elif st.kind == "layer":
            _layer(model, st, tensors, qp, order, act_tensor, const, op, weights, biases)
        elif st.kind in ("maxpool", "avgpool"):
            x = st.inputs[0]
            (kh, kw), (sh, sw) = st.attrs["kernel"], st.attrs["stride"]
            kind = ir.OpKind.MAX_POOL2D if st.kind == "maxpool" else ir.OpKind.AVG_POOL2D
            act_tensor(st.name, st.shape, qp[x])
            op(kind, st.name, (x,), ir.Pool2DAttrs(ir.Padding.VALID, sh, sw, kh, kw))
        elif st.kind == "flatten":
            x = st.inputs[0]
            src_shape = tensors[x].shape
            act_tensor(st.name, st.shape, qp[x])
            if len(src_shape) == 4 and src_shape[3] > 1 and src_shape[1] * src_shape[2] > 1:
                order[st.name] = (src_shape[3], src_shape[1], src_shape[2])
            elif x in order:
                order[st.name] = order[x]
            op(ir.OpKind.RESHAPE, st.name, (x,), ir.ReshapeAttrs())
        elif st.kind == "add":
            a, b = st.inputs
            if tensors[a].shape != tensors[b].shape:
                raise McuqError(f"qat: add '{st.name}': its inputs must have the same shape (no broadcasting), got "
                                f"{list(tensors[a].shape)} and {list(tensors[b].shape)}")  # fmt: skip
            if order.get(a) != order.get(b):  # both flattened from NCHW tensors of one shape is fine
                raise McuqError(f"qat: add '{st.name}' adds a flattened NCHW tensor to a tensor of another element "
                                "order, which the NHWC model cannot keep; add before the flatten")  # fmt: skip
            act_tensor(st.name, st.shape, model.add(st.name).out.frozen_qparams())
            if a in order:
                order[st.name] = order[a]
            op(ir.OpKind.ADD, st.name, (a, b), ir.BinaryAttrs(_ACT[st.attrs["act"]]))
    g = ir.Graph(name, tensors, tuple(ops), ("input",), outputs, meta=_io_layout(model, tensors, outputs))
    ir.verify(g)
    return Export(g, acts, weights, biases)


def _without_dropout(stages: list) -> list:
    """The stages with the Dropouts taken out (their readers read what they read): the evaluation-mode model."""
    from dataclasses import replace

    alias: dict[str, str] = {}
    out = []
    for st in stages:
        ins = [alias.get(i, i) for i in st.inputs]
        if st.kind == "dropout":
            alias[st.name] = ins[0]
        else:
            out.append(replace(st, inputs=ins))
    return out


def _io_layout(model: QatModel, tensors: dict[str, ir.Tensor], outputs: tuple[str, ...]) -> dict[str, str]:
    """``graph.meta["io_layout"]`` (``mcuq.layout``): the 4-D input and outputs are NCHW in the user's model."""
    shapes = {st.name: st.shape for st in model.stages}
    lay: dict[str, dict] = {"inputs": {}, "outputs": {}}
    for side, names in (("inputs", ("input",)), ("outputs", outputs)):
        for n in names:
            if len(tensors[n].shape) == 4:
                lay[side][n] = {"perm": [0, 2, 3, 1], "shape": [1, *shapes[n][1:]]}
    return {"io_layout": json.dumps(lay, sort_keys=True)} if lay["inputs"] or lay["outputs"] else {}


def _layer(model, st, tensors, qp, order, act_tensor, const, op, weights, biases) -> None:
    spec, x = st.spec, st.inputs[0]
    layer = model.layer(st.name)
    w, q, s_w, b_int = layer.integer_params(qp[x][0])
    _, b_float = layer.folded(None, _eval_phase())
    q = q.reshape(w.shape)
    in_shape = tensors[x].shape
    act_tensor(st.name, st.shape, layer.out.frozen_qparams())
    if spec.kind == "fc":
        if len(in_shape) != 2:
            raise McuqError(f"qat: Linear '{st.name}' reads a {len(in_shape)}-D tensor; flatten it first")
        if x in order:  # columns in NCHW order (c, h, w) -> NHWC order (h, w, c)
            c, h, ww = order[x]
            w = w.reshape(w.shape[0], c, h, ww).transpose(0, 2, 3, 1).reshape(w.shape[0], -1)
            q = q.reshape(q.shape[0], c, h, ww).transpose(0, 2, 3, 1).reshape(q.shape[0], -1)
        attrs = ir.FullyConnectedAttrs(_ACT[spec.act])
        kind = ir.OpKind.FULLY_CONNECTED
    else:
        if len(in_shape) != 4:
            raise McuqError(f"qat: Conv2d '{st.name}' reads a {len(in_shape)}-D tensor")
        k = (w.shape[2], w.shape[3])
        out_hw = (st.shape[2], st.shape[3])
        pad = _padding(st.name, in_shape[1:3], k, spec.stride, spec.dilation, spec.padding, out_hw)
        window = (pad, spec.stride[0], spec.stride[1], spec.dilation[0], spec.dilation[1])
        if spec.kind == "conv":
            w, q = w.transpose(0, 2, 3, 1), q.transpose(0, 2, 3, 1)  # OIHW -> OHWI
            attrs, kind = ir.Conv2DAttrs(*window, activation=_ACT[spec.act]), ir.OpKind.CONV2D
        else:
            w, q = w.transpose(1, 2, 3, 0), q.transpose(1, 2, 3, 0)  # (C*m, 1, kh, kw) -> 1HWC
            mult = w.shape[3] // in_shape[3]
            attrs = ir.DepthwiseConv2DAttrs(*window, depth_multiplier=mult, activation=_ACT[spec.act])
            kind = ir.OpKind.DEPTHWISE_CONV2D
    wn = const(f"{st.name}/weights", w)
    bn = const(f"{st.name}/bias", b_float.detach().numpy())
    weights[wn] = WeightQuant(np.ascontiguousarray(q), s_w, spec.bits)
    biases[bn] = b_int
    op(kind, st.name, (x, wn, bn), attrs)


def _eval_phase():
    from .layers import Phase

    return Phase()


def to_quantized(model: QatModel, name: str = "qat_model"):
    """The integer model (``mcuq.quant.ptq.QuantizedModel``): what ``export`` writes and ``compile_model`` takes."""
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            e = build(model, name)
        return quantize_fixed(e.graph, e.activations, e.weights, e.biases)
    finally:
        model.train(was)


def export(model: QatModel, path: str | os.PathLike, native_int4: bool = False, name: str = "qat_model") -> Path:
    """Write ``model`` as an integer .tflite through mcuq's own writer: int8 containers with each layer's width in
    the ``mcuq_weight_bits`` metadata (tflite-runtime runs it), or with ``native_int4`` 4-bit weights as INT4
    tensors. Its input is NHWC. Returns the path."""
    return to_quantized(model, name).save(path, native_int4=native_int4)


def float_graph(model: QatModel, name: str = "qat_model") -> ir.Graph:
    """The prepared model as mcuq's float32 graph (BatchNorm folded with its running statistics, NHWC, layers named
    as ``model.layer_names``): the input of ``mcuq.quantize``, ``mcuq sensitivity`` and the mixed-precision choice,
    whose per-layer widths ``prepare`` then accepts."""
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            return build(model, name).graph
    finally:
        model.train(was)


def export_float(model: QatModel, path: str | os.PathLike, name: str = "qat_model") -> Path:
    """Write ``float_graph`` as a float32 .tflite (for ``mcuq quantize``, ``mcuq sensitivity``); its input is
    NHWC."""
    from ..frontend.tflite_writer import write
    from ..npyio import save_bytes

    return save_bytes(path, write(float_graph(model, name)))


def nhwc_input(x) -> np.ndarray:
    """A torch NCHW (or (N, F)) batch as the exported model takes it: float32 NHWC."""
    a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    a = a.astype(np.float32)
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1)) if a.ndim == 4 else a


def evaluate_integer(model: QatModel, x, quantized=None) -> np.ndarray:
    """The exported model's output on the batch ``x`` (torch layout), run through mcuq's numpy integer kernels
    (bit-exact with the generated C), dequantized to float32; a 4-D output comes back in NCHW. ``quantized``: a
    ``to_quantized`` result to reuse."""
    from ..quant.evaluate import run_integer

    if not isinstance(model, QatModel):
        raise McuqError(f"qat: expected a model from mcuq.qat.prepare, got {type(model).__name__}")
    model.check_shape(tuple(np.shape(x.detach().cpu() if isinstance(x, torch.Tensor) else x)), "evaluate_integer's x")
    qm = quantized if quantized is not None else to_quantized(model)
    a = nhwc_input(x)
    (out,) = run_integer(qm.graph, [a.reshape(len(a), *qm.graph.tensors[qm.graph.inputs[0]].shape)])
    out = out.reshape(len(a), *qm.graph.tensors[qm.graph.outputs[0]].shape[1:])
    return out.transpose(0, 3, 1, 2) if out.ndim == 4 else out
