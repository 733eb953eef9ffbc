"""torch.fx tracing of the user's model into a list of stages that mcuq can lower.

Why fx and not module swapping: export needs the data flow (which tensor a Linear reads, whether a flatten of
an NCHW tensor sits before it, the residual adds), and fusion needs to know that a BatchNorm or ReLU is the *only*
reader of a conv's output. Swapping modules in place gives neither.

A stage is one of: "input", "layer" (conv / depthwise / linear with its BatchNorm and ReLU/ReLU6 fused, as mcuq
lowers them), "maxpool", "avgpool", "flatten", "add", "dropout" (training only; a Dropout that a ReLU or BatchNorm
reads is dropped, as are Identity and F.dropout, which fx traces in evaluation mode). Anything else is an
McuqError that names the node and the module.
"""

from __future__ import annotations

import contextlib
import io
import math
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
_IN_PLACE_OPERATORS = {operator.iadd, operator.isub, operator.imul, operator.itruediv, "__iadd__", "__isub__",
                       "__imul__", "__itruediv__"}  # fmt: skip


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
    if isinstance(model, torch.jit.ScriptModule):
        raise McuqError(f"qat: {type(model).__name__} is a TorchScript module, which torch.fx cannot trace; pass the "
                        "eager nn.Module it was scripted from")  # fmt: skip
    try:
        gm = fx.symbolic_trace(model)
    except Exception as e:  # fx refuses data-dependent control flow with its own exception types
        raise McuqError(f"qat: torch.fx cannot trace {type(model).__name__}: {str(e).splitlines()[0]}") from None
    _prune(gm)
    was = gm.training
    gm.eval()
    try:
        # ShapeProp prints the failing node's traceback to stderr before raising: keep it for the message only
        with torch.no_grad(), contextlib.redirect_stderr(io.StringIO()):
            ShapeProp(gm).propagate(example[:1])
    except Exception as e:  # a wrong input shape or dtype: torch's own message, on one line
        e = e.__cause__ or e  # ShapeProp wraps the module's error in a message of its own
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if example.dim() == 4:
            msg += " (is example_input in the model's own layout, NCHW?)"
        raise McuqError(f"qat: the model does not run on example_input of shape {list(example.shape)}: {msg}") from None
    gm.train(was)
    mods = dict(gm.named_modules())
    stages: list[Stage] = []
    by_node: dict[str, str] = {}  # fx node name -> the stage holding its value
    layer_of: dict[str, Stage] = {}
    called: dict[str, str] = {}  # module name -> the fx node that called it first

    def src(node: fx.Node, i: int = 0) -> str:
        arg = node.args[i]
        if not isinstance(arg, fx.Node):
            raise McuqError(f"qat: node '{node.name}' ({_what(node, mods)}) reads a constant; {SUPPORTED} only")
        if arg.name not in by_node:  # e.g. a batch size read with x.size(0) used as a tensor
            raise McuqError(f"qat: node '{node.name}' ({_what(node, mods)}) reads '{arg.name}', which is not a tensor "
                            f"of the model; {SUPPORTED} only")  # fmt: skip
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
        if _is_batch_size(node) or _is_shape(node):
            continue  # x.size(0), x.shape[0]: read only by a flatten-style view/reshape below
        if m is not None and not isinstance(m, (nn.Dropout, nn.Identity, nn.ReLU, nn.ReLU6)):
            if node.target in called and isinstance(m, (nn.Conv2d, nn.Linear, nn.BatchNorm2d)):
                raise McuqError(f"qat: module {type(m).__name__} '{node.target}' is called twice (nodes "
                                f"'{called[node.target]}' and '{node.name}'); each call of a layer is its own layer "
                                "in mcuq: give each call its own module")  # fmt: skip
            called.setdefault(str(node.target), node.name)
        shape = _shape(node)
        if isinstance(m, nn.Dropout) and m.p > 0 and not any(_fuses(u, mods) for u in node.users):
            stages.append(Stage(_name(node), "dropout", [src(node)], shape, attrs={"p": float(m.p)}))
        elif isinstance(m, (nn.Dropout, nn.Identity)) or (node.op == "call_function" and node.target is F.dropout):
            by_node[node.name] = src(node)  # F.dropout was traced in eval mode; a Dropout a ReLU or BN reads: dropped
            continue
        elif isinstance(m, nn.Conv2d):
            stages.append(_conv(node, m, shape, bits_of, src(node)))
        elif isinstance(m, nn.Linear):
            name = str(node.target)
            if len(_shape(node.args[0])) != 2:
                raise McuqError(f"qat: Linear '{name}' reads a {len(_shape(node.args[0]))}-D tensor (one sample "
                                f"{list(_shape(node.args[0])[1:])}); mcuq's fully connected layer takes (N, features): "
                                "flatten before it")  # fmt: skip
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
            if st is not None and st.kind == "add" and st.attrs["act"] == "none":
                st.attrs["act"] = act
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
            end = m.end_dim if isinstance(m, nn.Flatten) else (node.args[2] if len(node.args) > 2 else
                                                               node.kwargs.get("end_dim", -1))  # fmt: skip
            if start != 1 or end not in (-1, len(_shape(node.args[0])) - 1):
                raise McuqError(f"qat: {what} '{_name(node)}' must flatten from dimension 1 to the last")
            stages.append(Stage(_name(node), "flatten", [src(node)], shape))
        elif _is_flat_view(node):  # x.view(x.size(0), -1), x.reshape(n, -1), torch.reshape(x, (n, -1))
            stages.append(Stage(_name(node), "flatten", [src(node)], shape))
        elif node.op in ("call_function", "call_method") and node.target in _ADD | {"add", "__add__"}:
            if len(node.args) != 2 or not all(isinstance(a, fx.Node) for a in node.args) or node.kwargs:
                raise McuqError(f"qat: add '{node.name}' must add two tensors of the model")
            stages.append(Stage(_name(node), "add", [src(node, 0), src(node, 1)], shape, attrs={"act": "none"}))
        else:
            raise McuqError(f"qat: {what} '{_name(node)}' is not supported; supported: {SUPPORTED}")
        if any(s.name == stages[-1].name for s in stages[:-1]):  # a pool or flatten module called twice
            stages[-1].name = node.name
        by_node[node.name] = stages[-1].name
        if stages[-1].kind in ("layer", "add"):
            layer_of[stages[-1].name] = stages[-1]
    raise McuqError("qat: the traced model has no output")


def _prune(gm: fx.GraphModule) -> None:
    """Remove the nodes whose value nothing reads (a layer computed and not used is not exported, nor trained); an
    in-place op whose result is not read is refused: fx records it as a value of its own, so the readers of the
    tensor it changed would not see the change."""
    mods = dict(gm.named_modules())
    changed = True
    while changed:
        changed = False
        for node in reversed(list(gm.graph.nodes)):
            if node.op in ("placeholder", "output") or node.users:
                continue
            if _in_place(node, mods):
                raise McuqError(f"qat: {_what(node, mods)} '{_name(node)}' changes a tensor in place and its result "
                                "is not used; use the result (h = torch.relu(h)), as fx traces values, not "
                                "memory")  # fmt: skip
            gm.graph.erase_node(node)
            changed = True
    gm.recompile()


def _in_place(node: fx.Node, mods: dict[str, nn.Module]) -> bool:
    if node.op == "call_module":
        return bool(getattr(mods.get(node.target), "inplace", False))
    if node.op not in ("call_function", "call_method"):
        return False
    if node.target in _IN_PLACE_OPERATORS:
        return True
    name = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", "")
    if name.endswith("_") and not name.startswith("_"):  # relu_, add_, torch.relu_, ...
        return True
    return bool(node.kwargs.get("inplace")) or (node.target in (F.relu, F.relu6) and node.args[1:2] == (True,))


def _is_batch_size(node: fx.Node) -> bool:
    """``x.size(0)``, ``x.shape[0]``, ``x.size()[0]``: the batch size of a tensor ``x`` of the model."""
    if node.op == "call_method" and node.target == "size" and node.args[1:] in ((0,), ()) and not node.kwargs:
        return True
    if node.op == "call_function" and node.target is operator.getitem and len(node.args) == 2 and node.args[1] == 0:
        return isinstance(node.args[0], fx.Node) and _is_shape(node.args[0])
    return False


def _is_shape(node: fx.Node) -> bool:
    """``x.shape`` / ``x.size()`` (the whole shape, read only for its batch size)."""
    if node.op == "call_function" and node.target is getattr and node.args[1:] == ("shape",):
        return True
    return node.op == "call_method" and node.target == "size" and node.args[1:] == () and not node.kwargs


def _batch_of(n: fx.Node) -> fx.Node | None:
    """The tensor whose batch size ``n`` reads (``x.size(0)``, ``x.shape[0]``, ``x.size()[0]``), else None."""
    if n.op == "call_method" and n.target == "size" and n.args[1:] == (0,):
        return n.args[0]
    if n.op == "call_function" and n.target is operator.getitem and isinstance(n.args[0], fx.Node) and n.args[1:] == (0,) \
            and _is_shape(n.args[0]):  # fmt: skip
        return n.args[0].args[0]
    return None


def _is_flat_view(node: fx.Node) -> bool:
    """A view / reshape of a tensor to (batch, -1) or (-1, features): a flatten from dimension 1."""
    if not ((node.op == "call_method" and node.target in ("view", "reshape")) or
            (node.op == "call_function" and node.target is torch.reshape)):  # fmt: skip
        return False
    args = list(node.args[1:])
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = list(args[0])
    if len(args) != 2 or not isinstance(node.args[0], fx.Node):
        return False
    n = args[0]
    in_shape = _shape(node.args[0])
    if n == -1 and isinstance(args[1], int) and len(in_shape) > 1:  # x.view(-1, C*H*W)
        return args[1] == math.prod(in_shape[1:])
    if args[1] != -1:
        return False
    if isinstance(n, fx.Node):
        return _batch_of(n) is node.args[0]
    return n == in_shape[0]


def _fuses(node: fx.Node, mods: dict[str, nn.Module]) -> bool:
    """``node`` is a ReLU, ReLU6 or BatchNorm: it would fuse into the layer it reads."""
    m = mods.get(node.target) if node.op == "call_module" else None
    if m is not None:
        return isinstance(m, (nn.ReLU, nn.ReLU6, nn.BatchNorm2d))
    return node.op in ("call_function", "call_method") and _is_relu(node)


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
    padding = m.padding
    if padding == "valid":
        padding = (0, 0)
    elif padding == "same":  # stride 1 (torch requires it): TFLite's SAME when the kernel is odd (symmetric padding)
        k, d = _pair(m.kernel_size), _pair(m.dilation)
        if any((d[i] * (k[i] - 1)) % 2 for i in range(2)):
            raise McuqError(f"qat: Conv2d '{name}' has padding='same' with an even kernel {tuple(k)} (dilation "
                            f"{tuple(d)}), which pads unevenly; give the padding as numbers")  # fmt: skip
        padding = tuple(d[i] * (k[i] - 1) // 2 for i in range(2))
    elif isinstance(padding, str):
        raise McuqError(f"qat: Conv2d '{name}' has padding='{padding}'; give the padding as numbers")
    cin = m.in_channels
    if m.groups == 1:
        kind = "conv"
    elif m.groups == cin:
        kind = "depthwise"
    else:
        raise McuqError(f"qat: Conv2d '{name}' has groups={m.groups}; mcuq has groups 1 and depthwise (groups = "
                        f"in_channels = {cin})")  # fmt: skip
    spec = LayerSpec(name, kind, bits_of(name), "none", _pair(m.stride), _pair(padding), _pair(m.dilation), m.groups)
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
