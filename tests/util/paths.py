"""The kernel paths side by side in QEMU: portable, DSP (mps2-an386) and MVE (mps3-an547) builds of the same
layers on the same data, compared bit for bit with each other and with the numpy reference.

``merge(branches)`` puts many small graphs into one graph of independent branches (each its own inputs and
outputs), so that one firmware build and one QEMU boot cover a whole table of shapes. ``check_paths(graph,
inputs)`` then compiles that graph once per (board, path), runs every build on the same batch (in QEMU; host
builds under ASan/UBSan), and asserts
  * each build's outputs == ``mcuq.reference`` (the numpy mirror of the portable C), bit for bit;
  * each layer runs the kernel the variant table (``mcuq.kernels.variants``) picks for it on that path, and no
    layer falls back to a slower kernel while a variant for its op is registered on that path, unless one of the
    caller's ``Fallback`` rules (the test's statement of each variant's scope) covers it: a variant predicate that
    silently stops matching fails the test.
Builds and runs go as many at a time as there are cores, at most 4 (threads around make and QEMU).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

import mcuq
from mcuq import ir
from mcuq.errors import McuqError
from mcuq.kernels.variants import VARIANTS
from mcuq.lower import Layer

from .harness import reference_outputs

# The board each fast path is checked on; the portable build runs on the same board.
BOARDS = {"dsp": "mps2-an386", "mve": "mps3-an547"}
# The order in which mcuq.lower.specialize looks for a variant on each path.
SEARCH = {"dsp": ("dsp",), "mve": ("mve", "dsp")}


@dataclass(frozen=True)
class Fallback:
    """Layers of the portable ``kernel`` that may keep a slower kernel on ``path`` although a variant of it is
    registered there: those whose portable params satisfy ``when``. ``reason`` says why (the variant's scope)."""

    kernel: str
    path: str
    when: Callable[[Any], bool]
    reason: str


# -- graphs -----------------------------------------------------------------------------------------------------


def _prefixed(g: ir.Graph, key: str) -> tuple[dict[str, ir.Tensor], list[ir.Op]]:
    def rn(name: str) -> str:
        return f"{key}_{name}" if name else ""

    tensors = {rn(n): dataclasses.replace(t, name=rn(n)) for n, t in g.tensors.items()}
    one = len(g.ops) == 1
    ops = [
        dataclasses.replace(
            op,
            name=key if one else f"{key}_{op.name}",
            inputs=tuple(rn(n) for n in op.inputs),
            outputs=tuple(rn(n) for n in op.outputs),
        )
        for op in g.ops
    ]
    return tensors, ops


def merge(branches: Mapping[str, ir.Graph], name: str) -> ir.Graph:
    """One graph that runs every graph of ``branches`` side by side: tensors are renamed ``<key>_<name>``, a
    one-op branch's op is named ``<key>``; inputs and outputs are concatenated in the order of ``branches``."""
    tensors: dict[str, ir.Tensor] = {}
    ops: list[ir.Op] = []
    inputs: list[str] = []
    outputs: list[str] = []
    for key, g in branches.items():
        ts, os_ = _prefixed(g, key)
        assert not set(ts) & set(tensors), f"branch '{key}': tensor names clash"
        tensors.update(ts)
        ops.extend(dataclasses.replace(op, index=len(ops) + i) for i, op in enumerate(os_))
        inputs.extend(f"{key}_{n}" for n in g.inputs)
        outputs.extend(f"{key}_{n}" for n in g.outputs)
    return ir.Graph(name, tensors, tuple(ops), tuple(inputs), tuple(outputs))


def inputs_for(graph: ir.Graph, n_random: int, seed: int) -> list[np.ndarray]:
    """Per graph input: ``n_random`` uniform int8 samples, then all -128, all 127 (padding and saturation), and
    one sample near zero; int16 inputs the same over the int16 range."""
    rng = np.random.default_rng(seed)
    xs = []
    for name in graph.inputs:
        shape = graph.tensors[name].shape
        wide = graph.tensors[name].dtype == ir.DType.INT16  # 16x8 layers: the same over the int16 range
        lo, hi = (-32768, 32767) if wide else (-128, 127)
        parts = [
            rng.integers(lo, hi + 1, size=(n_random, *shape), dtype=np.int64),
            np.full((1, *shape), lo),
            np.full((1, *shape), hi),
            rng.integers(-3, 4, size=(1, *shape), dtype=np.int64),
        ]
        xs.append(np.concatenate(parts).astype(np.int16 if wide else np.int8))
    return xs


# -- kernel choice ----------------------------------------------------------------------------------------------


def expected_kernel(layer: Layer, path: str) -> str:
    """The kernel the variant table gives the portable ``layer`` on ``path`` (the first variant, in the
    specialize order, whose predicate holds), or the portable kernel."""
    if path == "portable" or layer.kernel is None:
        return layer.kernel_name
    for p in SEARCH[path]:
        for v in VARIANTS:
            if v.path == p and v.replaces == layer.kernel_name and v.supports(layer.params):
                return v.kernel.name
    return layer.kernel_name


def registered(kernel: str, path: str) -> tuple[str, ...]:
    """The variants registered for the portable ``kernel`` on ``path`` itself (not the paths it falls back to)."""
    return tuple(v.kernel.name for v in VARIANTS if v.path == path and v.replaces == kernel)


def allowed(fallbacks: Sequence[Fallback], layer: Layer, path: str) -> bool:
    """Whether a rule of ``fallbacks`` lets the portable ``layer`` keep a slower kernel on ``path``."""
    return any(f.kernel == layer.kernel_name and f.path == path and f.when(layer.params) for f in fallbacks)


def kernel_problems(compiled: mcuq.CompiledModel, group: str, fallbacks: Sequence[Fallback] = ()) -> list[str]:
    """What is wrong with the kernel choice of a compiled model: a layer whose kernel is not the table's choice,
    or that falls back although a variant for its op is registered on the path and no rule of ``fallbacks``
    covers it. Empty when all is well."""
    from mcuq.lower.specialize import MIN_MAC_SHARE

    path = compiled.kernels
    out = []
    # specialize links a fast kernel with MACs only where its layers do >= 1/MIN_MAC_SHARE of the model's MACs
    total = sum(la.macs for la in compiled.layers)
    share: dict[str, int] = {}
    for layer in compiled.layers:
        if layer.kernel is not None:
            k = expected_kernel(layer.base or layer, path)
            share[k] = share.get(k, 0) + layer.macs
    for layer in compiled.layers:
        if layer.kernel is None:
            continue
        base = layer.base or layer
        where = f"{group}:{layer.op.name}"
        want = expected_kernel(base, path)
        small = want != base.kernel_name and base.macs > 0 and share[want] * MIN_MAC_SHARE < total
        if small:
            want = base.kernel_name  # too small a share of the MACs for its code: the portable kernel
        if layer.kernel_name != want:
            out.append(f"{where}: runs {layer.kernel_name}, the variant table gives {want}")
        if path == "portable":
            if layer.base is not None:
                out.append(f"{where}: the portable build runs {layer.kernel_name}")
            continue
        own = registered(base.kernel_name, path)
        if own and layer.kernel_name not in own and not small and not allowed(fallbacks, base, path):
            out.append(
                f"{where}: falls back to {layer.kernel_name} on the {path} path although {', '.join(own)} "
                "is registered (its predicate rejects these params); if that is intended, add a Fallback rule "
                "covering them to the test's FALLBACKS"
            )
    return out


def kernel_summary(compiled: mcuq.CompiledModel) -> dict[str, int]:
    """{kernel name: number of layers} of a compiled model."""
    out: dict[str, int] = {}
    for layer in compiled.layers:
        if layer.kernel is not None:
            out[layer.kernel_name] = out.get(layer.kernel_name, 0) + 1
    return dict(sorted(out.items()))


# -- runs -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Build:
    board: str
    path: str  # the requested kernel path: "portable", "dsp", "mve"

    @property
    def label(self) -> str:
        return f"{self.path} on {self.board}"


def builds(paths: Sequence[str] = ("dsp", "mve"), *, host: bool = True, extra: bool = False) -> list[Build]:
    """For each fast path: the portable and the fast build on that path's board, and with ``host`` the fast path
    built for the host under ASan/UBSan (the kernels' plain C: out-of-bounds reads and UB show up there).
    ``extra`` adds the fast paths where their intrinsics are absent or partial: dsp on Cortex-M3 (no DSP
    extension, plain C), M7 and M33, mve on Cortex-M4 (the MVE kernels' plain C beside SMLAD fallbacks) and dsp
    on M55. Every build is compared with the numpy reference."""
    out = []
    for p in paths:
        out += [Build(BOARDS[p], "portable"), Build(BOARDS[p], p)]
        if host:
            out.append(Build("host", p))
        if extra:
            out += [Build(b, q) for b, q in EXTRA if q == p]
    return out


EXTRA = (
    ("mps2-an385", "dsp"),
    ("mps2-an500", "dsp"),
    ("mps2-an505", "dsp"),
    ("mps2-an386", "mve"),
    ("mps3-an547", "dsp"),
)


@dataclass
class PathReport:
    """What ``check_paths`` ran: the compiled models by build, and the kernels each used."""

    compiled: dict[Build, mcuq.CompiledModel]

    def kernels(self, build: Build) -> dict[str, int]:
        return kernel_summary(self.compiled[build])


def _workers() -> int:
    return max(1, min(4, os.cpu_count() or 2))


def _run(cm: mcuq.CompiledModel, inputs: Sequence[np.ndarray]) -> list[np.ndarray] | str:
    """The outputs of one build, or what went wrong (a fault, an error status, a build failure) as one line, so
    that one broken build does not hide the others' results."""
    try:
        return cm.run(list(inputs))
    except McuqError as e:
        return f"{type(e).__name__}: {getattr(e, 'summary', None) or str(e)[:2000]}"


def check_paths(
    graph: ir.Graph | str | os.PathLike,
    inputs: Sequence[np.ndarray],
    *,
    group: str,
    todo: Sequence[Build] | None = None,
    fallbacks: Sequence[Fallback] = (),
    reference: Mapping[str, np.ndarray] | None = None,
) -> PathReport:
    """Compile ``graph`` (an IR graph or a .tflite path) for each of ``todo`` (default ``builds()``), run them all
    (in QEMU, or on the host under ASan/UBSan) on ``inputs`` (one array per graph input, leading batch axis) and assert every output equals the numpy
    reference bit for bit, and that every build's kernels are the ones expected (``kernel_problems``).
    ``reference``: the expected outputs by graph output name, when the caller has them already."""
    todo = list(todo or builds())
    compiled = {
        b: mcuq.compile_model(graph, board=b.board, kernels=b.path, prefix=group, sanitize=b.board == "host")
        for b in todo
    }
    problems = []
    for b, cm in compiled.items():
        assert cm.kernels == b.path, f"{group}, {b.label}: compiled for the {cm.kernels} path"
        problems += [f"{b.label}: {p}" for p in kernel_problems(cm, group, fallbacks)]
    assert not problems, f"{group}: kernel choice\n  " + "\n  ".join(problems)
    if reference is None:
        g = graph if isinstance(graph, ir.Graph) else mcuq.api.load_graph(graph)
        reference = reference_outputs(g, inputs)
    with ThreadPoolExecutor(_workers()) as pool:
        runs = dict(zip(todo, pool.map(lambda b: _run(compiled[b], inputs), todo)))
    bad = []
    for b, outs in runs.items():
        if isinstance(outs, str):
            bad.append(f"{b.label}: {outs}")
            continue
        cm = compiled[b]
        producer = {t: layer for layer in cm.layers for t in layer.outputs}
        for t, got in zip(cm.model.outputs, outs, strict=True):
            name = t.tensor
            want = np.asarray(reference[name]).reshape(got.shape)
            if not np.array_equal(got, want):
                layer = producer.get(name)
                how = f"{layer.kernel_name} ('{layer.op.name}')" if layer is not None else "?"
                diff = got.astype(np.int32) - want.astype(np.int32)
                bad.append(
                    f"{b.label}: output '{name}' by {how} differs from the numpy reference in "
                    f"{int(np.count_nonzero(diff))} of {diff.size} values (max |diff| {int(np.abs(diff).max())})"
                )
    assert not bad, f"{group}: not bit-exact\n  " + "\n  ".join(bad)
    return PathReport(compiled)
