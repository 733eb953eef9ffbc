"""Render the generated C (`<prefix>.c`, `<prefix>.h`) from the lowered layers and the arena plan.

All decisions are made here in Python; the templates only lay out what this module computed. Every string
derived from the model (tensor, op and file names) reaches the templates already escaped by ``codegen.names``:
``c_comment`` for comments, ``c_string`` for string literals, ``Namer``/``choose_prefix`` for identifiers.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import jinja2
import numpy as np

from .. import __version__
from .._paths import TEMPLATES
from ..errors import join_within
from ..ir import Graph, Tensor
from ..kernels import initializer
from ..kernels.cstruct import functions
from ..layer_bytes import layer_precisions
from ..layout import describe as layout_describe
from ..lower.base import Layer
from ..plan import Plan
from ..quant.packing import pack
from .arrays import ctype_of, format_values
from .names import Namer, c_comment, c_string, choose_prefix

WEIGHT_ALIGN = 16
NAME_IN_COMMENT = 64  # characters of one tensor or op name in a layer's comment (the middle goes beyond)
LAYER_COMMENT = 300  # characters of a layer's comment


@dataclass
class ConstArray:
    name: str
    ctype: str
    size: int
    body: str
    comment: str  # escaped for a C comment


@dataclass
class IOPort:
    index: int
    name: str  # C parameter name
    tensor: str  # the graph's tensor name, as it is (not for the C: see label)
    ctype: str
    shape: tuple[int, ...]
    size: int
    scale: str
    zero_point: int
    label: str = ""  # the tensor name escaped for a C comment


@dataclass
class CallSite:
    index: int
    comment: str  # escaped for a C comment
    kernel: str  # "" for alias layers
    params_name: str
    params_type: str
    init: list[str]  # designated initializer lines of the params struct
    args: list[str]  # the C arguments after &params: inputs then outputs
    locals: list[str]
    out_ptr: str
    out_bytes: int
    op_name: str  # the op's name as it is; name_literal is its C string literal's contents
    name_literal: str = ""
    context: str = ""  # "&<name>" of the mcuq_context passed first, for kernels that take one
    callees: tuple[str, ...] = ()  # kernels the call's params point to (a band's two convolutions)


@dataclass
class ArenaView:
    """A typed pointer into the arena (``static <ctype> *const name = (<ctype> *)&arena[offset];``)."""

    name: str
    ctype: str
    offset: int
    tensor: str


@dataclass
class Scratch:
    """An mcuq_context constant: ``size`` bytes of scratch at ``offset`` in the arena (none when size is 0)."""

    name: str
    offset: int
    size: int


@dataclass
class Model:
    prefix: str
    guard: str
    source: str  # the model file's name, escaped for a C comment
    version: str
    arrays: list[ConstArray] = field(default_factory=list)
    calls: list[CallSite] = field(default_factory=list)
    views: list[ArenaView] = field(default_factory=list)
    contexts: list[Scratch] = field(default_factory=list)
    inputs: list[IOPort] = field(default_factory=list)
    outputs: list[IOPort] = field(default_factory=list)
    arena_size: int = 0
    lower_bound: int = 0
    plan_lines: list[str] = field(default_factory=list)  # escaped for C comments
    weight_bytes: int = 0  # constant tensors of the model (weights, biases)
    const_bytes: int = 0  # every constant array in the generated C (also per-channel multipliers, shifts, tables)
    precision_lines: list[str] = field(default_factory=list)  # each weighted layer's precision, escaped for comments
    layout_lines: list[str] = field(default_factory=list)  # inputs/outputs stored in another layout (mcuq.layout)


@functools.lru_cache(maxsize=1)  # one environment: templates are compiled once per process
def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _float_literal(x: float) -> str:
    s = format(float(np.float32(x)), ".9g")
    if "e" not in s and "." not in s and "inf" not in s and "nan" not in s:
        s += ".0"
    return s + "f"


def _short(name: str) -> str:
    return join_within(name, NAME_IN_COMMENT)


def build_model(g: Graph, layers: tuple[Layer, ...], plan: Plan, prefix: str) -> Model:
    """The generated C's content. ``prefix`` goes through ``choose_prefix`` (a no-op for the prefix that
    ``compile_model`` chose), so that no caller can name the files after the runtime's."""
    prefix = choose_prefix(prefix).name
    namer = Namer(reserved=(f"{prefix}_invoke", f"{prefix}_arena", "status"))
    m = Model(
        prefix=prefix,
        guard=f"{prefix.upper()}_MODEL_H",  # prefixes never start with MCUQ (any case): no runtime guard clashes
        source=c_comment(g.source.rsplit("/", 1)[-1] if g.source else ""),
        version=__version__,
        arena_size=plan.arena_size,
        lower_bound=plan.lower_bound,
        plan_lines=[c_comment(line) for line in plan.describe()],
        layout_lines=[c_comment(line) for line in layout_describe(g)],
        precision_lines=[
            c_comment(
                f"{p.layer}: {p.kind} '{_short(p.op)}': weights {p.weights}, activations {p.activations}, "
                f"{p.flash_bytes} B (weights {p.weight_bytes})",
                LAYER_COMMENT,
            )
            for p in layer_precisions(g, layers)
        ],
    )

    ptr: dict[str, str] = {}
    for kind, names, ports in (("in", g.inputs, m.inputs), ("out", g.outputs, m.outputs)):
        for i, tname in enumerate(names):
            t = g.tensors[tname]
            pname = namer(f"{kind}_{tname}", 40)
            q = t.qparams
            ports.append(
                IOPort(
                    index=i,
                    name=pname,
                    tensor=tname,
                    ctype=t.dtype.ctype,
                    shape=t.shape,
                    size=t.size,
                    scale=_float_literal(q.scale[0]) if q else "0.0f",
                    zero_point=q.zero_point[0] if q else 0,
                    label=c_comment(tname),
                )
            )
            ptr[tname] = pname

    def tensor_of(name: str, layer: Layer) -> Tensor:
        return layer.consts[name] if name in layer.consts else g.tensors[name]

    views: dict[tuple[str, str], str] = {}  # (tensor, ctype) -> view name

    def activation_ptr(name: str, t: Tensor) -> str:
        if name in ptr:
            return ptr[name]
        root = plan.alias_of.get(name, name)
        if root in plan.external:
            return ptr[plan.external[root]]
        if name in plan.external:
            return ptr[plan.external[name]]
        key = (name, t.dtype.ctype)
        if key not in views:
            views[key] = namer(f"a_{name}", 40)
            m.views.append(ArenaView(views[key], t.dtype.ctype, plan.offsets[root], name))
        return views[key]

    no_scratch = ""

    def context_of(li: int, layer: Layer) -> str:
        nonlocal no_scratch
        size = layer.scratch_bytes
        if size == 0:
            if not no_scratch:
                no_scratch = namer("no_scratch")
                m.contexts.append(Scratch(no_scratch, 0, 0))
            return f"&{no_scratch}"
        name = namer(f"l{li}_ctx")
        m.contexts.append(Scratch(name, plan.scratch[li], size))
        return f"&{name}"

    const_names: dict[int, str] = {}  # id(tensor data) -> C name, so shared weights are emitted once

    def const_ref(name: str, t: Tensor) -> str:
        key = id(t.data)
        if key not in const_names:
            arr = np.ascontiguousarray(t.data)
            packed = ""
            if t.dtype.packed:  # one bit stream, little end first (mcuq.quant.packing, mcuq_packed.h)
                arr = pack(arr, t.dtype.bits)
                packed = f" {t.dtype.value}, packed {8 // t.dtype.bits} a byte"
            cname = namer(f"w_{name}", 40)
            const_names[key] = cname
            comment = c_comment(f"{_short(name)} {list(t.shape)}{packed}")
            m.arrays.append(ConstArray(cname, ctype_of(arr), arr.size, format_values(arr), comment))
            m.weight_bytes += arr.nbytes
            m.const_bytes += arr.nbytes
        return const_names[key]

    for li, layer in enumerate(layers):
        op = layer.op
        base = f"l{li}"

        def array_ref(path: str, val: np.ndarray, li: int = li, base: str = base) -> str:
            leaf = path.rsplit(".", 1)[-1]
            aname = namer(f"{base}_{leaf}")
            arr = np.ascontiguousarray(val)
            m.arrays.append(
                ConstArray(aname, ctype_of(arr), arr.size, format_values(arr), c_comment(f"layer {li} {path}"))
            )
            m.const_bytes += arr.nbytes
            return aname

        init = initializer(layer.params, array_ref) if layer.params is not None else []
        args: list[str] = []
        local_decls: list[str] = []
        for ai, a in enumerate(layer.args):
            if isinstance(a, tuple):
                lname = namer(f"{base}_in{ai}")
                ptrs = ", ".join(_arg(n, layer, tensor_of, const_ref, activation_ptr) for n in a)
                elem = tensor_of(a[0], layer).dtype.ctype  # a list of one dtype's tensors (CONCATENATION)
                local_decls.append(f"const {elem} *const {lname}[{len(a)}] = {{{ptrs}}};")
                args.append(lname)
            else:
                args.append(_arg(a, layer, tensor_of, const_ref, activation_ptr))
        out_name = layer.outputs[0]
        out_t = g.tensors[out_name]
        shapes = ", ".join(
            f"{_short(n)}{list(tensor_of(n, layer).shape)}"
            for a in layer.inputs
            for n in (a if isinstance(a, tuple) else (a,))
            if n
        )
        comment = f"{li}: {op.type_name} '{_short(op.name)}' ({shapes}) -> {list(out_t.shape)}"
        if layer.macs:
            comment += f", {layer.macs} MACs"
        m.calls.append(
            CallSite(
                index=li,
                comment=c_comment(comment, LAYER_COMMENT),
                kernel=layer.kernel_name,
                params_name=namer(f"{base}_params") if layer.kernel is not None else "",
                params_type=layer.kernel.params_type if layer.kernel is not None else "",
                init=init,
                args=args,
                locals=local_decls,
                out_ptr=activation_ptr(out_name, out_t),
                out_bytes=out_t.nbytes,
                op_name=op.name,
                name_literal=c_string(op.name),
                context=context_of(li, layer) if layer.kernel is not None and layer.kernel.context else "",
                callees=tuple(functions(layer.params)) if layer.params is not None else (),
            )
        )
    return m


def _arg(name: str, layer: Layer, tensor_of, const_ref, activation_ptr) -> str:
    if not name:
        return "NULL"
    t = tensor_of(name, layer)
    if t.is_const:
        return const_ref(name, t)
    return activation_ptr(name, t)


def render(m: Model) -> dict[str, str]:
    """{file name: contents} for the model's .c and .h."""
    env = _env()
    return {
        f"{m.prefix}.h": env.get_template("model.h.j2").render(m=m),
        f"{m.prefix}.c": env.get_template("model.c.j2").render(m=m, align=WEIGHT_ALIGN),
    }


def render_host_main(m: Model) -> str:
    return _env().get_template("host_main.c.j2").render(m=m)
