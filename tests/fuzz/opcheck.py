"""Differential check of random one-op configurations (``opgen``): generated C vs oracle vs numpy mirror.

To keep thousands of configurations affordable, a range of them is first checked as ONE model: the disjoint
union of the one-op graphs (tensors renamed per configuration, each op reading its own graph inputs and writing
its own graph output), so that one oracle process, one C build and one run serve them all. The ops are
independent, so each configuration's output is compared on its own. When the union cannot be checked as a
whole (mcuq or the oracle refuses one of its ops, or anything fails), or an output differs, the configurations
concerned are checked one by one with ``tests.util.harness.three_way``, which names the reason.

Verdicts: ``exact`` (C == mirror == oracle, bit for bit), ``exact_mirror`` (C == mirror where the oracle cannot
serve: ``OpConfig.oracle_ok``), ``oracle_refused`` (tflite-runtime refuses the model; the C still equals the
mirror), ``mcuq_refused`` (mcuq raises McuqError where the oracle runs the model), ``both_refused``, and
``failure`` (any difference, a build failure, a sanitizer finding, another exception).
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass

import numpy as np

import mcuq
from mcuq import ir
from mcuq.errors import McuqError
from mcuq.frontend.tflite_writer import write
from tests.util import oracle
from tests.util.harness import random_inputs, reference_outputs, three_way

from .judge import one_line
from .opgen import OpConfig, draw

N_SAMPLES = 3  # random inputs per configuration
VERDICTS = ("exact", "exact_mirror", "oracle_refused", "mcuq_refused", "both_refused", "failure")
BIT_EXACT = ("exact", "exact_mirror")


@dataclass(frozen=True)
class OpOutcome:
    seed: int
    index: int
    kind: str
    verdict: str
    detail: str = ""
    desc: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def config_inputs(seed: int, cfg: OpConfig) -> list[np.ndarray]:
    """``N_SAMPLES`` random inputs over the whole range of each input's dtype (int8 or int16)."""
    rng = np.random.default_rng([seed, cfg.index, 1])
    if all(cfg.graph.tensors[n].dtype is ir.DType.INT8 for n in cfg.graph.inputs):
        return random_inputs(cfg.graph, N_SAMPLES, rng)  # the int8 configurations draw what they always drew
    out = []
    for n in cfg.graph.inputs:
        t = cfg.graph.tensors[n]
        lo, hi = t.dtype.int_range
        out.append(rng.integers(lo, hi + 1, size=(N_SAMPLES, *t.shape), dtype=np.int64).astype(t.dtype.np))
    return out


def _renamed(cfg: OpConfig) -> ir.Graph:
    pre = f"c{cfg.index}_"
    g = cfg.graph

    def ren(n: str) -> str:
        return pre + n if n else n

    tensors = {ren(n): dataclasses.replace(t, name=ren(n)) for n, t in g.tensors.items()}
    ops = tuple(
        dataclasses.replace(
            op, name=ren(op.name), inputs=tuple(map(ren, op.inputs)), outputs=tuple(map(ren, op.outputs))
        )
        for op in g.ops
    )
    return ir.Graph(pre + g.name, tensors, ops, tuple(map(ren, g.inputs)), tuple(map(ren, g.outputs)))


def union(configs: list[OpConfig]) -> ir.Graph:
    """The disjoint union of the configurations' graphs, in order (inputs, ops and outputs concatenated)."""
    parts = [_renamed(c) for c in configs]
    tensors = {n: t for p in parts for n, t in p.tensors.items()}
    ops = tuple(dataclasses.replace(op, index=i) for i, op in enumerate(op for p in parts for op in p.ops))
    return ir.Graph(
        "fuzz_ops", tensors, ops, tuple(n for p in parts for n in p.inputs), tuple(n for p in parts for n in p.outputs)
    )


def _oracle_refusal(model: bytes, xs: list[np.ndarray]) -> tuple[list[np.ndarray] | None, str]:
    """The oracle's outputs, or None and its first error line."""
    try:
        res = oracle.run(model, [[x[i] for x in xs] for i in range(xs[0].shape[0])], timeout=120)
    except RuntimeError as e:
        lines = [ln for ln in str(e).splitlines() if ln.strip()]
        return None, one_line(lines[-1] if lines else str(e), 200)
    return [np.stack([r["outputs"][k] for r in res]) for k in range(len(res[0]["outputs"]))], ""


def check_one(seed: int, cfg: OpConfig, use_oracle: bool) -> OpOutcome:
    """One configuration on its own: who refuses it, and whether C, mirror and oracle agree."""
    xs = config_inputs(seed, cfg)
    name = f"c{cfg.index}"

    def out(verdict: str, detail: str = "") -> OpOutcome:
        return OpOutcome(seed, cfg.index, cfg.kind, verdict, detail, cfg.desc)

    with_oracle = use_oracle and cfg.oracle_ok
    try:
        model = write(cfg.graph)
        theirs, refusal = _oracle_refusal(model, xs) if with_oracle else (None, "")
        try:
            mcuq.compile_model(model, prefix=name, sanitize=True)
        except McuqError as e:
            if refusal:
                return out("both_refused", f"mcuq: {one_line(str(e), 150)}; oracle: {refusal}")
            return out("mcuq_refused", one_line(str(e), 200))
        three_way(cfg.graph, xs, name=name, oracle_ok=with_oracle and not refusal)
    except Exception as e:  # noqa: BLE001 - every problem here is a finding
        return out("failure", f"{type(e).__name__}: {one_line(str(e), 300)}")
    if refusal:
        return out("oracle_refused", refusal)
    return out("exact" if with_oracle else "exact_mirror")


def _check_union(seed: int, configs: list[OpConfig], with_oracle: bool) -> dict[int, OpOutcome] | None:
    """Every configuration checked as one model; None when the union as a whole cannot be checked. Configurations
    whose output differs are left out (the caller checks them alone)."""
    g = union(configs)
    xs = [x for c in configs for x in config_inputs(seed, c)]
    try:
        model = write(g)
        ref = reference_outputs(g, xs)
        theirs, refusal = _oracle_refusal(model, xs) if with_oracle else (None, "")
        if refusal:
            return None
        got = mcuq.compile_model(model, prefix="fuzz_ops", sanitize=True).run(xs)
    except Exception:  # noqa: BLE001 - the configurations are then checked one by one
        return None
    results: dict[int, OpOutcome] = {}
    for k, (cfg, out) in enumerate(zip(configs, g.outputs, strict=True)):
        want = ref[out]
        ok = got[k].shape == want.shape and np.array_equal(got[k], want)
        if theirs is not None:
            ok = ok and theirs[k].size == want.size and np.array_equal(theirs[k].reshape(want.shape), want)
        if ok:
            verdict = "exact" if with_oracle else "exact_mirror"
            results[cfg.index] = OpOutcome(seed, cfg.index, cfg.kind, verdict, "", cfg.desc)
    return results


def check_range(seed: int, start: int, count: int, use_oracle: bool = True) -> list[OpOutcome]:
    """Configurations ``start .. start + count - 1`` of the run ``seed``, checked (see the module docstring)."""
    use_oracle = use_oracle and oracle.available()
    configs = [draw(seed, i) for i in range(start, start + count)]
    results: dict[int, OpOutcome] = {}
    for with_oracle in (True, False):
        group = [c for c in configs if (use_oracle and c.oracle_ok) == with_oracle]
        if group:
            results.update(_check_union(seed, group, with_oracle) or {})
    for cfg in configs:
        if cfg.index not in results:
            results[cfg.index] = check_one(seed, cfg, use_oracle)
    return [results[c.index] for c in configs]
