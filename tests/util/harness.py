"""The three-way check every kernel family's tests share: oracle vs numpy mirror vs generated C, bit for bit.

``three_way(graph, inputs)`` writes the IR graph as a .tflite model and runs the same batch of inputs through
  1. the oracle: tflite-runtime 2.14 with BUILTIN_REF (tests/util/oracle.py), sample by sample;
  2. the numpy mirror of the C kernels: ``mcuq.reference.run_graph``, sample by sample;
  3. the generated C: ``mcuq.compile_model(model, sanitize=True).run`` on the whole batch, built with ASan/UBSan;
and asserts that all three give the same bits for every graph output (integer tolerance 0). A failure names the
case, the output and, when the C is wrong, the first layer whose C output differs from the numpy mirror.

``inputs`` always carry a leading batch axis: one array per graph input, shaped ``(n, *input shape)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

import mcuq
from mcuq import ir
from mcuq.frontend.tflite_writer import write
from mcuq.reference.graph import prepare

from . import oracle

__all__ = ["oracle_outputs", "random_int8", "random_inputs", "reference_outputs", "three_way"]

Batch = Sequence[np.ndarray]


def random_int8(shape: Sequence[int], n: int, seed: int | np.random.Generator) -> np.ndarray:
    """``n`` uniformly random int8 tensors of ``shape``, stacked on a leading batch axis.

    Drawn as int64 and cast, so a batch of ``n`` equals ``n`` successive draws of one tensor from the same
    generator (a case's inputs do not depend on how they are batched)."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    return rng.integers(-128, 128, size=(n, *shape), dtype=np.int64).astype(np.int8)


def random_inputs(graph: ir.Graph, n: int, seed: int | np.random.Generator) -> list[np.ndarray]:
    """``random_int8`` batches for every graph input, in ``graph.inputs`` order, from one generator."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    return [random_int8(graph.tensors[name].shape, n, rng) for name in graph.inputs]


def _batch(inputs: Batch | np.ndarray) -> list[np.ndarray]:
    xs = [np.asarray(inputs)] if isinstance(inputs, np.ndarray) else [np.asarray(x) for x in inputs]
    assert xs and len({x.shape[0] for x in xs}) == 1, "inputs: one array per graph input, same batch size"
    return xs


def _samples(xs: list[np.ndarray]) -> list[list[np.ndarray]]:
    return [[x[i] for x in xs] for i in range(xs[0].shape[0])]


def reference_outputs(graph: ir.Graph, inputs: Batch | np.ndarray, *, every_tensor: bool = False) -> dict:
    """``run_graph`` on each sample, stacked: {tensor name: array with the batch axis}. The graph outputs only,
    or with ``every_tensor`` the inputs and every op's output as well."""
    executor = prepare(graph)
    keep = "all" if every_tensor else "outputs"
    runs = [executor.run(sample, keep=keep) for sample in _samples(_batch(inputs))]
    return {name: np.stack([r[name] for r in runs]) for name in runs[0]}


def oracle_outputs(model: ir.Graph | bytes, inputs: Batch | np.ndarray) -> list[np.ndarray]:
    """The oracle's outputs (one array per model output, with the batch axis); skips when it is not installed."""
    oracle.require()
    res = oracle.run(write(model) if isinstance(model, ir.Graph) else model, _samples(_batch(inputs)))
    return [np.stack([r["outputs"][k] for r in res]) for k in range(len(res[0]["outputs"]))]


def three_way(
    graph: ir.Graph,
    inputs: Batch | np.ndarray,
    *,
    name: str | None = None,
    oracle_ok: bool = True,
    layers: bool = False,
    compile_c: bool = True,
) -> list[np.ndarray]:
    """Assert oracle == numpy mirror == generated C on ``inputs``; returns the agreed outputs (with the batch axis).

    ``oracle_ok=False`` where tflite-runtime 2.14 cannot serve as the oracle (the case says why): the C is then
    compared with the numpy mirror alone, and the test runs without tflite-runtime. ``layers``: every layer's C
    output is compared with the mirror's tensor of the same name too. ``compile_c=False``: oracle vs mirror only
    (for sweeps over many models where the C path is already covered)."""
    name = name or graph.name
    xs = _batch(inputs)
    model = write(graph)
    ref = reference_outputs(graph, xs, every_tensor=True)
    want = [ref[o] for o in graph.outputs]
    if oracle_ok:
        theirs = oracle_outputs(model, xs)
        for out, ours, t in zip(graph.outputs, want, theirs, strict=True):
            assert ours.shape == t.shape, f"{name}: output '{out}' shape {ours.shape}, the oracle's {t.shape}"
            np.testing.assert_array_equal(ours, t, err_msg=f"{name}: numpy reference != oracle, output '{out}'")
    if not compile_c:
        return want
    compiled = mcuq.compile_model(model, prefix=name, sanitize=True)
    got = compiled.run(xs)
    against = "oracle" if oracle_ok else "numpy reference"
    for out, g, w in zip(graph.outputs, got, want, strict=True):
        if not np.array_equal(g, w.reshape(g.shape)):
            where = _first_bad_layer(compiled, xs, ref) or "every layer agrees with the numpy reference"
            raise AssertionError(f"{name}: C != {against}, output '{out}'; {where}")
    if layers:
        msg = _first_bad_layer(compiled, xs, ref)
        assert not msg, f"{name}: {msg}"
    return want


def _first_bad_layer(compiled, xs: list[np.ndarray], ref: dict[str, np.ndarray]) -> str:
    """The first layer whose C output differs from the numpy mirror's tensor of the same name, described; "" when
    every layer agrees."""
    got = compiled.run_layers(xs)
    for i, layer in enumerate(compiled.layers):
        t = layer.outputs[0]
        where = f"layer {i} ({layer.op.type_name} '{layer.op.name}'), tensor '{t}'"
        if t not in ref:
            return f"{where}: no numpy reference tensor of that name"
        if not np.array_equal(got[t], ref[t].reshape(got[t].shape)):
            bad = got[t].astype(np.int32) != ref[t].reshape(got[t].shape).astype(np.int32)
            return f"{where}: C != numpy reference in {int(bad.sum())} of {bad.size} values"
    return ""
