"""Band execution: run a 1x1 convolution and the convolution that reads its output row band by row band (one
``mcuq_band_conv_s8`` call, ``mcuq.kernels.band``), so the tensor between them never exists whole.

This is MCUNetV2's patch-based inference for the first, largest layers, streamed: the rows of the 1x1 output that
the next layer's window still needs stay in a small ring, and each row is computed once, so it costs no extra
MACs (only the ring's row moves). A pair is fused only where that lowers the planned arena: ``fuse_bands`` tries
the candidates, largest intermediate tensor first, and keeps each fusion that makes the plan smaller.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from ..ir import Graph
from ..kernels import KERNELS
from ..kernels.band import BAND_CONV_S8, BandConvParams, bands, rows_needed
from ..kernels.conv import Conv2DParams
from ..kernels.variants import VARIANTS
from .base import Layer

CONV = "mcuq_conv2d_s8"
DEPTHWISE = "mcuq_depthwise_conv2d_s8"


def _pointwise(p: Conv2DParams) -> bool:
    w = p.window
    return (
        p.input.n == 1
        and (w.filter.h, w.filter.w, w.stride.h, w.stride.w, w.pad.h, w.pad.w) == (1, 1, 1, 1, 0, 0)
        and (p.input.h, p.input.w) == (p.output.h, p.output.w)
    )


def _band_shapes(
    pa: Conv2DParams, pb: Conv2DParams, ring: int, rows: int
) -> tuple[list[Conv2DParams], list[Conv2DParams]]:
    """Every params struct the band passes to its two kernels (the C builds them the same way)."""
    probe = BandConvParams(pa, pb, CONV, CONV, ring, 0, rows)
    firsts, seconds = {}, {}
    ring_lo = ring_hi = 0
    for r0, r1, lo, hi in bands(probe):
        top = r0 * pb.window.stride.h - pb.window.pad.h
        if lo >= ring_hi:
            ring_lo = ring_hi = lo
        elif lo > ring_lo:
            ring_lo = lo
        if hi > ring_hi:
            n = hi - ring_hi
            firsts[n] = replace(pa, input=replace(pa.input, h=n), output=replace(pa.output, h=n))
            ring_hi = hi
        key = (hi - lo, lo - top, r1 - r0)
        seconds[key] = replace(
            pb,
            input=replace(pb.input, h=hi - lo),
            output=replace(pb.output, h=r1 - r0),
            window=replace(pb.window, pad=replace(pb.window.pad, h=lo - top)),
        )
    return list(firsts.values()), list(seconds.values())


def _supported(layer: Layer, shapes: list[Conv2DParams]) -> bool:
    """Whether the layer's (possibly fast) kernel takes every band shape; portable kernels take any."""
    if layer.base is None:
        return True
    for v in VARIANTS:
        if v.kernel.name == layer.kernel_name:
            return all(v.supports(p) for p in shapes)
    return False


def band(a: Layer, b: Layer, rows: int = 1) -> Layer | None:
    """The band layer running ``a`` (a 1x1 convolution) then ``b`` (reading a's output), ``rows`` output rows of
    ``b`` per call of its kernel, or None if they do not fit the band kernel (mcuq_band.h)."""
    if a.base_kernel_name != CONV or b.base_kernel_name not in (CONV, DEPTHWISE):
        return None
    pa, pb = a.params, b.params
    assert isinstance(pa, Conv2DParams) and isinstance(pb, Conv2DParams)
    if not _pointwise(pa) or pb.input.n != 1 or pb.window.dilation.h != 1 or b.args[0] != a.outputs[0]:
        return None
    probe = BandConvParams(pa, pb, CONV, CONV, 1, 0, 1)
    if any(hi <= lo for lo, hi in (rows_needed(probe, r) for r in range(pb.output.h))):
        return None
    rows = max(1, min(rows, pb.output.h))
    ring = max(hi - lo for _, _, lo, hi in bands(replace(probe, band_rows=rows)))
    firsts, seconds = _band_shapes(pa, pb, ring, rows)
    parts = []
    for layer, shapes in ((a, firsts), (b, seconds)):
        if not _supported(layer, shapes):
            layer = layer.base  # its portable kernel handles any band
        parts.append((layer, shapes))
    (la, sa), (lb, sb) = parts
    scratch = max(
        [KERNELS[la.kernel_name].scratch_bytes(p) for p in sa] + [KERNELS[lb.kernel_name].scratch_bytes(p) for p in sb]
    )
    params = BandConvParams(pa, pb, la.kernel_name, lb.kernel_name, ring, scratch, rows)
    args = (la.args[0], la.args[1], la.args[2], lb.args[1], lb.args[2], lb.outputs[0])
    return Layer(
        op=b.op,
        kernel=BAND_CONV_S8,
        params=params,
        args=args,
        macs=a.macs + b.macs,
        consts={**la.consts, **lb.consts},
        parts=(la, lb),
    )


def candidates(g: Graph, layers: tuple[Layer, ...]) -> list[int]:
    """Indices i where layers i and i + 1 may run as a band: layer i's output is read by layer i + 1 only and is
    not a graph output. Largest intermediate tensor first (ties: model order)."""
    readers: dict[str, int] = {}
    for layer in layers:
        for a in layer.inputs:
            for n in a if isinstance(a, tuple) else (a,):
                if n:
                    readers[n] = readers.get(n, 0) + 1
    out = []
    for i in range(len(layers) - 1):
        a = layers[i]
        if a.alias or len(a.outputs) != 1:
            continue
        mid = a.outputs[0]
        if mid in g.outputs or readers.get(mid, 0) != 1 or band(a, layers[i + 1]) is None:
            continue
        out.append(i)
    return sorted(out, key=lambda i: (-g.tensors[layers[i].outputs[0]].nbytes, i))


def fuse_bands(g: Graph, layers: tuple[Layer, ...], plan_fn: Callable) -> tuple[tuple[Layer, ...], object]:
    """``layers`` with the bands that lower the arena, and their plan (``plan_fn(g, layers)``; the trials with
    ``quick=True``, the result planned in full). Bands are chosen with one output row per call, then each gets
    the most rows per call (fewer calls) that keep the arena and its kernels (``_taller``)."""
    best = plan_fn(g, layers, quick=True)
    current = list(layers)
    for a_layer in [layers[i] for i in candidates(g, layers)]:
        k = next((k for k, la in enumerate(current) if la is a_layer), None)
        if k is None or k + 1 >= len(current):  # already in a band
            continue
        fused = band(current[k], current[k + 1])
        if fused is None:
            continue
        trial = tuple(current[:k] + [fused] + current[k + 2 :])
        p = plan_fn(g, trial, quick=True)
        if p.arena_size < best.arena_size:
            current, best = list(trial), p
    if not any(la.parts for la in current):
        return tuple(layers), plan_fn(g, layers)
    current = _taller(g, current, best.arena_size, plan_fn)
    final = plan_fn(g, tuple(current))
    without = plan_fn(g, layers)
    if final.arena_size >= without.arena_size:  # the quick trial plans were not borne out by the full plans
        return tuple(layers), without
    # The levers in turn: the overlaps on the layers without bands, then the bands ("patches").
    return tuple(current), replace(
        final,
        arena_no_levers=without.arena_no_levers,
        arena_in_place=without.arena_in_place,
        arena_line_buffers=without.arena_line_buffers,
        arena_patches=final.arena_size,
    )


def _taller(g: Graph, current: list[Layer], arena: int, plan_fn: Callable) -> list[Layer]:
    """Each band (in model order) with the most output rows per call, counting up from 2 and stopping at the
    first height that raises the (quick) planned arena above ``arena`` or changes a kernel the band calls."""
    current = list(current)
    for k, layer in enumerate(current):
        if not layer.parts:
            continue
        la, lb = layer.parts
        kernels = (layer.params.first_kernel, layer.params.second_kernel)
        for rows in range(2, layer.params.second.output.h + 1):
            taller = band(la, lb, rows)
            if taller is None or (taller.params.first_kernel, taller.params.second_kernel) != kernels:
                break
            trial = current[:k] + [taller] + current[k + 1 :]
            if plan_fn(g, tuple(trial), quick=True).arena_size > arena:
                break
            current = trial
    return current
