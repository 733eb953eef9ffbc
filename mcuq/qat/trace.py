"""torch.fx tracing of the user's model into a list of stages that mcuq can lower.

Why fx and not module swapping: export needs the data flow (which tensor a Linear reads, whether a flatten of
an NCHW tensor sits before it, the residual adds), and fusion needs to know that a BatchNorm or ReLU is the *only*
reader of a conv's output. Swapping modules in place gives neither.

A stage is one of: "input", "layer" (conv / depthwise / linear with its BatchNorm and ReLU/ReLU6 fused, as mcuq
lowers them), "maxpool", "avgpool", "flatten", "add". Dropout and Identity are dropped. Anything else is an
McuqError that names the node and the module.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from ..errors import McuqError
from .layers import LayerSpec

SUPPORTED = (
    "Conv2d (groups 1 or depthwise), Linear, BatchNorm2d after a conv, ReLU, ReLU6, MaxPool2d, AvgPool2d, "
    "AdaptiveAvgPool2d(1), Flatten, Dropout, Identity, residual add"
)
_RELU = {F.relu, torch.relu}
_ADD = {operator.add, torch.add}
_FLATTEN = {torch.flatten}


@dataclass
class Stage:
    name: str
    kind: str
    inputs: list[str]
    shape: tuple[int, ...]  # torch's shape of the output (batch first)
    spec: LayerSpec | None = None
    module: str = ""  # the layer's torch module (qualified name)
    bn: str = ""  # its BatchNorm's module, if folded
    attrs: dict = field(default_factory=dict)


def _pair(v) -> tuple[int, int]:
    return (int(v[0]), int(v[1])) if isinstance(v, (tuple, list)) else (int(v), int(v))


def _shape(node: fx.Node) -> tuple[int, ...]:
    meta = node.meta.get("tensor_meta")
    if meta is None or not hasattr(meta, "shape"):
        raise McuqError(f"qat: node '{node.name}' does not produce one tensor; supported: {SUPPORTED}")
    return tuple(int(d) for d in meta.shape)


def trace(model: nn.Module, example: torch.Tensor, bits_of) -> list[Stage]:
    """The stages of ``model`` on inputs shaped like ``example``; ``bits_of(layer name)`` gives a layer's width."""
    try:
        gm = fx.symbolic_trace(model)
    except Exception as e:  # fx refuses data-dependent control flow with its own exception types
        raise McuqError(f"qat: torch.fx cannot trace {type(model).__name__}: {str(e).splitlines()[0]}") from None
    was = gm.training
    gm.eval()
    try:
        with torch.no_grad():
            ShapeProp(gm).propagate(example[:1])
    except Exception as e:  # a wrong input shape or dtype: torch's own message, on one line
        e = e.__cause__ or e  # ShapeProp wraps the module's error in a message of its own
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise McuqError(f"qat: the model does not run on example_input of shape {list(example.shape)}: {msg}") from None
    gm.train(was)
    mods = dict(gm.named_modules())
    stages: list[Stage] = []
    by_node: dict[str, str] = {}  # fx node name -> the stage holding its value
    layer_of: dict[str, Stage] = {}

    def src(node: fx.Node, i: int = 0) -> str:
        arg = node.args[i]
        if not isinstance(arg, fx.Node):
            raise McuqError(f"qat: node '{node.name}' ({_what(node, mods)}) reads a constant; {SUPPORTED} only")
        return by_node[arg.name]

    def sole_reader(node: fx.Node) -> Stage | None:
        """The layer stage of ``node``'s input when ``node`` is the only reader of it (so it can fuse)."""
        arg = node.args[0]
        if isinstance(arg, fx.Node) and len(arg.users) == 1:
            st = layer_of.get(by_node[arg.name])
            if st is not None and st.name == by_node[arg.name]:
                return st
        return None

    for node in gm.graph.nodes:
        what = _what(node, mods)
        if node.op == "placeholder":
            if any(s.kind == "input" for s in stages):
                raise McuqError(f"qat: input '{node.name}': models with more than one input are not supported")
            stages.append(Stage("input", "input", [], _shape(node)))
            by_node[node.name] = "input"
            continue
        if node.op == "output":
            out = node.args[0]
            if not isinstance(out, fx.Node):
                raise McuqError("qat: the model must return one tensor (not a tuple, list or dict)")
            return _finish(stages, by_node[out.name])
        if node.op == "get_attr":
            raise McuqError(f"qat: node '{node.name}' reads the parameter '{node.target}' directly; {SUPPORTED} only")
        m = mods.get(node.target) if node.op == "call_module" else None
        if node.op == "call_method" and node.target == "size" and node.args[1:] in ((0,), ()) and not node.kwargs:
            continue  # x.size(0): read only by a flatten-style view/reshape below
        shape = _shape(node)
        if isinstance(m, (nn.Dropout, nn.Identity)) or (node.op == "call_function" and node.target is F.dropout):
            by_node[node.name] = src(node)
            continue
        if isinstance(m, nn.Conv2d):
            stages.append(_conv(node, m, shape, bits_of, src(node)))
        elif isinstance(m, nn.Linear):
            name = str(node.target)
            stages.append(Stage(name, "layer", [src(node)], shape, LayerSpec(name, "fc", bits_of(name), "none"),
                                module=name))  # fmt: skip
        elif isinstance(m, nn.BatchNorm2d):
            st = sole_reader(node)
            if st is None or st.bn or st.spec.kind == "fc" or st.spec.act != "none":
                raise McuqError(f"qat: BatchNorm2d '{node.target}' does not directly follow a Conv2d that only it "
                                "reads; mcuq folds a BatchNorm into the conv before it")  # fmt: skip
            st.bn = str(node.target)
            by_node[node.name] = st.name
            continue
        elif isinstance(m, (nn.ReLU, nn.ReLU6)) or (node.op in ("call_function", "call_method") and _is_relu(node)):
            act = "relu6" if isinstance(m, nn.ReLU6) or node.target in (F.relu6, "relu6") else "relu"
            st = sole_reader(node)
            if st is not None and st.kind == "layer" and st.spec.act == "none":
                st.spec = LayerSpec(**{**st.spec.__dict__, "act": act})
                by_node[node.name] = st.name
                continue
            if st is not None and st.kind == "add" and not st.attrs.get("relu") and act == "relu":
                st.attrs["relu"] = True
                by_node[node.name] = st.name
                continue
            raise McuqError(f"qat: {what} '{_name(node)}' does not follow a conv, linear or add that only it reads; "
                            "mcuq fuses ReLU/ReLU6 into the layer before it")  # fmt: skip
        elif isinstance(m, nn.MaxPool2d):
            stages.append(_pool(node, m, "maxpool", shape, src(node)))
        elif isinstance(m, nn.AvgPool2d):
            stages.append(_pool(node, m, "avgpool", shape, src(node)))
        elif isinstance(m, nn.AdaptiveAvgPool2d):  # to 1x1 only: a global average pool
            if _pair(m.output_size if m.output_size is not None else 1) != (1, 1):
                raise McuqError(f"qat: AdaptiveAvgPool2d '{_name(node)}' must pool to 1x1 (a global average)")
            hw = _shape(node.args[0])[2:]
            stages.append(Stage(_name(node), "avgpool", [src(node)], shape, attrs={"kernel": hw, "stride": hw}))
        elif (
            isinstance(m, nn.Flatten)
            or (node.op == "call_function" and node.target in _FLATTEN)
            or (node.op == "call_method" and node.target == "flatten")
        ):
            start = m.start_dim if isinstance(m, nn.Flatten) else (node.args[1] if len(node.args) > 1 else
                                                                   node.kwargs.get("start_dim", 0))  # fmt: skip
            end = m.end_dim if isinstance(m, nn.Flatten) else node.kwargs.get("end_dim", -1)
            if start != 1 or end not in (-1, len(_shape(node.args[0])) - 1):
                raise McuqError(f"qat: {what} '{_name(node)}' must flatten from dimension 1 to the last")
            stages.append(Stage(_name(node), "flatten", [src(node)], shape))
        elif _is_flat_view(node):  # x.view(x.size(0), -1), x.reshape(n, -1), torch.reshape(x, (n, -1))
            stages.append(Stage(_name(node), "flatten", [src(node)], shape))
        elif node.op in ("call_function", "call_method") and node.target in _ADD | {"add", "__add__"}:
            if len(node.args) != 2 or not all(isinstance(a, fx.Node) for a in node.args) or node.kwargs:
                raise McuqError(f"qat: add '{node.name}' must add two tensors of the model")
            stages.append(Stage(_name(node), "add", [src(node, 0), src(node, 1)], shape, attrs={"relu": False}))
        else:
            raise McuqError(f"qat: {what} '{_name(node)}' is not supported; supported: {SUPPORTED}")
        by_node[node.name] = stages[-1].name
        if stages[-1].kind in ("layer", "add"):
            layer_of[stages[-1].name] = stages[-1]
    raise McuqError("qat: the traced model has no output")


def _is_flat_view(node: fx.Node) -> bool:
    """A view / reshape to (batch, -1) of a tensor whose batch is its first dimension."""
    if not ((node.op == "call_method" and node.target in ("view", "reshape")) or
            (node.op == "call_function" and node.target is torch.reshape)):  # fmt: skip
        return False
    args = list(node.args[1:])
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = list(args[0])
    if len(args) != 2 or args[1] != -1 or not isinstance(node.args[0], fx.Node):
        return False
    n = args[0]
    batch = _shape(node.args[0])[0]
    if isinstance(n, fx.Node):
        return n.op == "call_method" and n.target == "size" and n.args[0] is node.args[0] and n.args[1:] == (0,)
    return n == batch


def _is_relu(node: fx.Node) -> bool:
    return node.target in _RELU or node.target in (F.relu6, "relu", "relu_")


def _what(node: fx.Node, mods: dict[str, nn.Module]) -> str:
    if node.op == "call_module":
        return f"module {type(mods[node.target]).__name__}"
    if node.op == "call_function":
        return f"function {getattr(node.target, '__name__', node.target)}"
    if node.op == "call_method":
        return f"method .{node.target}()"
    return node.op


def _name(node: fx.Node) -> str:
    return str(node.target) if node.op == "call_module" else node.name


def _conv(node: fx.Node, m: nn.Conv2d, shape: tuple[int, ...], bits_of, src_name: str) -> Stage:
    name = str(node.target)
    if m.padding_mode != "zeros":
        raise McuqError(f"qat: Conv2d '{name}' has padding_mode '{m.padding_mode}'; only zero padding")
    if isinstance(m.padding, str):
        raise McuqError(f"qat: Conv2d '{name}' has padding='{m.padding}'; give the padding as numbers")
    cin = m.in_channels
    if m.groups == 1:
        kind = "conv"
    elif m.groups == cin:
        kind = "depthwise"
    else:
        raise McuqError(f"qat: Conv2d '{name}' has groups={m.groups}; mcuq has groups 1 and depthwise (groups = "
                        f"in_channels = {cin})")  # fmt: skip
    spec = LayerSpec(name, kind, bits_of(name), "none", _pair(m.stride), _pair(m.padding), _pair(m.dilation), m.groups)
    x = node.args[0]
    return Stage(name, "layer", [src_name], shape, spec, module=name, attrs={"in_shape": _shape(x)})


def _pool(node: fx.Node, m, kind: str, shape, src_name: str) -> Stage:
    name = _name(node)
    k, s, p = _pair(m.kernel_size), _pair(m.stride if m.stride is not None else m.kernel_size), _pair(m.padding)
    if m.ceil_mode or p != (0, 0) or (kind == "maxpool" and _pair(m.dilation) != (1, 1)):
        raise McuqError(f"qat: {type(m).__name__} '{name}' must have padding 0, ceil_mode False and dilation 1")
    if kind == "avgpool" and m.divisor_override is not None:
        raise McuqError(f"qat: AvgPool2d '{name}' has divisor_override; mcuq's average pool divides by the window")
    return Stage(name, kind, [src_name], shape, attrs={"kernel": k, "stride": s})


def _finish(stages: list[Stage], out: str) -> list[Stage]:
    return stages + [Stage("output", "output", [out], ())]
