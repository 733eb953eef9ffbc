"""Human-readable reports: `mcuq inspect`. Every name from the model goes through ``errors.printable`` (one line,
no escape sequences, cut to a sane length)."""

from __future__ import annotations

import json

from .api import CompiledModel
from .errors import printable
from .ir import Tensor
from .layer_bytes import layer_precisions

NAME_WIDTH = 120  # characters of a tensor or op name in a table row


def _quant(t: Tensor) -> str:
    q = t.qparams
    if q is None:
        return t.dtype.value
    if q.per_channel:
        return f"{t.dtype.value} per-channel[{len(q.scale)}] axis {q.axis}"
    return f"{t.dtype.value} s={q.scale[0]:.6g} zp={q.zero_point[0]}"


def inspect_lines(cm: CompiledModel) -> list[str]:
    g = cm.graph
    lines = [f"model: {printable(g.source or g.name)}", ""]
    for kind, names in (("input", g.inputs), ("output", g.outputs)):
        for n in names:
            t = g.tensors[n]
            lines.append(f"{kind:6s} '{printable(n, NAME_WIDTH)}': {list(t.shape)} {_quant(t)}")
    lines.append("")
    header = (
        f"{'#':>3}  {'op':<18} {'output shape':<18} {'output quant':<34} {'MACs':>11} {'weights B':>10}  "
        f"{'kernel':<28} name"
    )
    lines += [header, "-" * len(header)]
    total_macs = 0
    seen: set[int] = set()
    weight_total = 0
    for i, layer in enumerate(cm.layers):
        out = g.tensors[layer.outputs[0]]
        wbytes = 0
        for a in layer.inputs:
            for n in a if isinstance(a, tuple) else (a,):
                t = layer.consts.get(n) or g.tensors.get(n) if n else None
                if t is not None and t.is_const:
                    wbytes += t.nbytes
                    if id(t.data) not in seen:
                        seen.add(id(t.data))
                        weight_total += t.nbytes
        total_macs += layer.macs
        kind = layer.op.type_name + (" (alias)" if layer.alias else "")
        lines.append(
            f"{i:>3}  {kind:<18} {str(list(out.shape)):<18} {_quant(out):<34} {layer.macs:>11,} {wbytes:>10,}  "
            f"{layer.kernel_name.removeprefix('mcuq_') or '-':<28} {printable(layer.op.name, NAME_WIDTH)}"
        )
    lines += [
        "",
        f"layers: {len(cm.layers)}   MACs: {total_macs:,}   weight bytes (tensor data): {weight_total:,}   "
        f"constants in the generated C (incl. multipliers): {cm.model.const_bytes:,}",
        f"kernels: {cm.kernels} path for board {cm.board} (--kernels)",
        f"arena: {cm.plan.arena_size:,} bytes   liveness lower bound: {cm.plan.lower_bound:,} bytes   "
        f"(inputs and outputs are caller-owned)",
        "",
        "arena plan:",
    ]
    lines += [f"  {printable(s)}" for s in cm.plan.describe()]
    return lines + precision_lines(cm)


def precision_lines(cm: CompiledModel) -> list[str]:
    """Each weighted layer's precision and flash bytes as the generated C stores them (weights packed below 8
    bits), then the totals."""
    precisions = layer_precisions(cm.graph, cm.layers)
    if not precisions:
        return []
    header = (
        f"{'#':>3}  {'op':<18} {'weights':<8} {'activations':<12} {'weights B':>10} {'bias B':>8} "
        f"{'mult+shift B':>12} {'flash B':>9}  name"
    )
    lines = ["", "layer precision (flash: weights as stored, bias, per-channel multipliers and shifts):", header]
    lines.append("-" * len(header))
    for p in precisions:
        lines.append(
            f"{p.layer:>3}  {p.kind:<18} {p.weights:<8} {p.activations:<12} {p.weight_bytes:>10,} {p.bias_bytes:>8,} "
            f"{p.rescale_bytes:>12,} {p.flash_bytes:>9,}  {printable(p.op, NAME_WIDTH)}"
        )
    packed = sum(p.weight_bytes for p in precisions if p.weight_bits < 8)
    stored = sum(p.weight_bytes for p in precisions)
    as_int8 = sum(p.weight_values for p in precisions)
    lines.append(
        f"weight bytes as stored: {stored:,} (packed sub-8-bit: {packed:,}; all int8 would be {as_int8:,})   "
        f"flash of these layers: {sum(p.flash_bytes for p in precisions):,}"
    )
    return lines


def compile_json(cm: CompiledModel, out_dir: str, files: list[str]) -> str:
    """`mcuq compile --json`: the sizes, the kernel path and each weighted layer's precision and flash bytes."""
    precisions = layer_precisions(cm.graph, cm.layers)
    doc = {
        "model": cm.graph.source or cm.graph.name,
        "prefix": cm.prefix,
        "board": cm.board,
        "kernels": cm.kernels,
        "output_dir": out_dir,
        "files": files,
        "layers": len(cm.layers),
        "weight_bytes": cm.model.weight_bytes,
        "const_bytes": cm.model.const_bytes,
        "packed_weight_bytes": sum(p.weight_bytes for p in precisions if p.weight_bits < 8),
        "arena_bytes": cm.plan.arena_size,
        "arena_lower_bound": cm.plan.lower_bound,
        "weighted_layers": [p.as_dict() for p in precisions],
    }
    return json.dumps(doc, indent=2)
