"""Kernel paths: replace portable kernel calls by the fast variants a board can run, at compile time.

``lower`` produces portable layers (the reference path). ``specialize`` then walks one table of variants,
(portable kernel, path, predicate on the params) -> fast kernel, and rewrites each layer that matches: the
kernel, its params, and compile-time folded constants (the conv family's bias with the input zero point folded
in, ``bias - input_zp * sum(w)``, so the inner loops multiply raw int8 values). Nothing is dispatched at run
time: the generated C calls only the kernels chosen here, and links only their sources.

Paths: ``portable`` (the reference kernels), ``dsp`` (SXTB16/SMLAD; plain C where the target has no DSP
extension), ``mve`` (Helium; the same algorithm in plain C elsewhere). Every variant compiles and gives the same
bits on every target, so a board file that claims a feature its CPU lacks gets slow code, never wrong code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from ..errors import McuqError
from ..ir import DType, Graph, Tensor, fresh_name
from ..kernels.variants import PATHS, VARIANTS, Variant
from .base import Layer

CHOICES = ("auto", *PATHS)


def board_path(features: tuple[str, ...] | list[str], host: bool, requested: str = "auto") -> str:
    """The kernel path for a board: ``requested`` unless "auto", else mve, then dsp, then portable by the board's
    features. The host builds the dsp path (in plain C) so that host runs use the same algorithms and memory
    plan as a Cortex-M4."""
    if requested not in CHOICES:
        raise McuqError(f"kernels must be one of {', '.join(CHOICES)}, got '{requested}'")
    if requested != "auto":
        return requested
    if host:
        return "dsp"
    if "mve" in features:
        return "mve"
    if "dsp" in features:
        return "dsp"
    return "portable"


def _table(path: str) -> dict[str, list[Variant]]:
    table: dict[str, list[Variant]] = {}
    order = {"mve": ("mve", "dsp"), "dsp": ("dsp",)}[path]
    for p in order:  # an mve board falls back to a dsp variant where no mve one applies
        for v in VARIANTS:
            if v.path == p:
                table.setdefault(v.replaces, []).append(v)
    return table


def specialize(g: Graph, layers: tuple[Layer, ...], path: str) -> tuple[Layer, ...]:
    """``layers`` with every kernel that has a variant on ``path`` replaced (the first whose predicate holds)."""
    if path == "portable":
        return layers
    table = _table(path)
    out = []
    used: set[str] = set()  # names of the consts made so far: unique across layers (a band merges two layers' consts)
    made: dict[tuple, tuple[str, Tensor]] = {}  # identical derived constants (shared weights) are made once
    choice = []
    for layer in layers:
        chosen = None
        for v in table.get(layer.kernel_name, ()):
            if v.supports(layer.params):
                chosen = v
                break
        choice.append(chosen)
    # A fast kernel is bigger code than the portable one: link it only where its layers do a fair share of the
    # model's multiply-accumulates (KWS's and VWW's last FULLY_CONNECTED: under 0.1 %, 1.7 kB of code for ~2,000
    # instructions); layers without MACs (pooling, ADD) keep their variant.
    total = sum(la.macs for la in layers)
    share: dict[str, int] = {}
    for layer, v in zip(layers, choice, strict=True):
        if v is not None:
            share[v.kernel.name] = share.get(v.kernel.name, 0) + layer.macs
    for layer, v in zip(layers, choice, strict=True):
        small = v is not None and layer.macs > 0 and share[v.kernel.name] * MIN_MAC_SHARE < total
        out.append(layer if v is None or small else _apply(g, layer, v, used, made))
    return tuple(out)


MIN_MAC_SHARE = 64  # a fast kernel with MACs is linked when its layers do at least 1/64 of the model's MACs


def _apply(
    g: Graph,
    layer: Layer,
    v: Variant,
    used: set[str] | None = None,
    made: dict[tuple, tuple[str, Tensor]] | None = None,
) -> Layer:
    params = v.params(layer) if v.params is not None else layer.params
    args = list(layer.args)
    consts = dict(layer.consts)
    taken = set() if used is None else used  # grows with the names made here
    taken.update(consts)
    made = {} if made is None else made

    def derived(base: str, label: str, data: np.ndarray, dtype: DType, qparams=None) -> str:
        """A new constant (or the same one another layer already made from the same values), in ``consts``."""
        key = (dtype, data.shape, data.tobytes())
        if key not in made:
            name = fresh_name(base, g.tensors, taken)
            taken.add(name)
            # keyed by a fresh name, named after the model's tensor (messages name what the user knows)
            made[key] = (name, Tensor(label, tuple(data.shape), dtype, data=data, qparams=qparams))
        name, t = made[key]
        consts[name] = t
        return name

    if v.weights is not None or v.fold_bias:
        w_name = str(args[1])
        w = _const(g, layer, w_name)
        w_int = np.asarray(w.data).astype(np.int64)
    if v.weights is not None:
        data = np.ascontiguousarray(v.weights(np.asarray(w.data), params)).astype(np.int8)
        # packed weights stay packed (the same bytes, their values reordered)
        args[1] = derived(f"{w_name}_{v.path}", w.name, data, w.dtype if w.dtype.packed else DType.INT8, w.qparams)
    if v.fold_bias:
        b_name = str(args[2])
        channels = _channels(layer, w_int)
        bias = np.zeros(channels, dtype=np.int64)
        if b_name:
            bias += np.asarray(_const(g, layer, b_name).data).reshape(-1).astype(np.int64)
        folded = bias - int(layer.p("input_zp")) * _weight_sums(layer, w_int, channels)
        # The kernels accumulate modulo 2^32; the final sum is TFLite's exact int32 (checked by lowering).
        wrapped = ((folded + 2**31) % 2**32 - 2**31).astype(np.int32)
        base_name = f"{b_name or layer.outputs[0]}_folded"
        args[2] = derived(base_name, b_name or base_name, wrapped, DType.INT32)
    return replace(layer, kernel=v.kernel, params=params, args=tuple(args), consts=consts, base=layer)


def _const(g: Graph, layer: Layer, name: str) -> Tensor:
    t = layer.consts.get(name) or g.tensors[name]
    assert t.data is not None, name
    return t


def _channels(layer: Layer, w: np.ndarray) -> int:
    kind = layer.base_kernel_name
    if kind == "mcuq_depthwise_conv2d_s8":
        return int(w.shape[-1])
    return int(w.shape[0])


def _weight_sums(layer: Layer, w: np.ndarray, channels: int) -> np.ndarray:
    """Per output channel, the sum of the weights that multiply a (possibly padded) input value. The per-tensor
    FC's weights_zp is part of the weight: (w - weights_zp)."""
    kind = layer.base_kernel_name
    if kind == "mcuq_depthwise_conv2d_s8":
        return w.reshape(-1, channels).sum(axis=0)
    if kind == "mcuq_fully_connected_s8":
        return (w - int(layer.p("weights_zp"))).reshape(channels, -1).sum(axis=1)
    return w.reshape(channels, -1).sum(axis=1)


def within_arena(
    g: Graph, portable: tuple[Layer, ...], fast: tuple[Layer, ...], arrange: Callable, limit: int
) -> tuple[tuple[Layer, ...], object]:
    """``arrange(g, layers) -> (layers, plan)`` (bands and planning) of ``fast``, such that the arena stays within
    ``limit`` (the portable path's): a fast kernel's scratch must not cost RAM the reference path does not need.
    While the arena is larger, the fast layer with the most scratch goes back to its portable kernel. A model
    whose activations all live in caller-owned buffers (``limit`` 0: one layer) keeps its fast kernels: there
    the scratch is the only RAM in the arena."""
    layers = list(fast)
    out, p = arrange(g, tuple(layers))
    tries = 0
    while limit > 0 and p.arena_size > limit:
        scratchy = [i for i, la in enumerate(layers) if la.base is not None and la.scratch_bytes > 0]
        if not scratchy:
            break
        tries += 1
        if tries > MAX_REVERTS:  # a bounded compile time: then every layer with scratch goes back at once
            worst = scratchy
        else:
            worst = [max(scratchy, key=lambda i: (layers[i].scratch_bytes, -i))]
        for i in worst:
            layers[i] = portable[i]
        out, p = arrange(g, tuple(layers))
    return out, p


MAX_REVERTS = 8  # layers within_arena sends back one by one before it sends back the rest together
