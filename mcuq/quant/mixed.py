"""Mixed precision under budgets: measure each layer's sensitivity and each option's costs, choose exactly, and
verify the choice end to end.

``Planner`` holds what one model needs for any number of budgets: the float graph, the cached quantizations
(``sensitivity.Quantizations``), the evaluation data, the sensitivity, and the cost table from models compiled
uniformly at each option. ``choose(budgets)`` builds the multiple-choice knapsack (``knapsack``) and solves it
exactly. The knapsack's loss is a prediction (per-layer noise increases measured one layer at a time, added), and
quantization noise does not add exactly: layers interact (a later layer's GPTQ rounding absorbs an earlier
layer's error; int16 activations change the scales the next layer sees). So ``choose`` verifies a set of
candidates, all within the predicted budgets, and returns the best *measured* one:

- the exact solver's ``K_BEST`` best distinct choices (``knapsack.solve_k``), the greedy choice, and every uniform
  precision that fits;
- then the loss model is re-measured *in context*: around the best measured candidate ``c``, each layer alone moved
  to each other option (``N(c with l at o) - N(c)``), which is exact at ``c`` and at every single-layer change
  of it; the exact solver's ``K_BEST`` best under that model join the set (``refine`` rounds, default ``REFINE``,
  while that finds better).

Every candidate is quantized (cached) and measured end to end on the *calibration* data (never ``--eval``); the
best measured (least output noise) is compiled and checked against the budgets: the real flash
(``costs.model_flash``), arena (the planner's) and instruction estimate. When it is over (the arena's alignment,
or kernels linked differently in the mixed model), the next best measured one is tried; when all are over, the
budget of that resource is tightened by the excess and the problem solved again, up to ``MAX_TIGHTEN`` times.
``method="greedy"`` is the baseline: the greedy choice alone, verified the same way.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from ..errors import McuqError, printable
from . import costs as C
from .knapsack import Infeasible, Problem, Resource, Row, greedy, solve_k
from .precision import LayerPrecision
from .sensitivity import INT8, Evaluator, Quantizations, Sensitivity, measure

log = logging.getLogger(__name__)

ALL_OPTIONS = tuple(LayerPrecision(b, a) for a in ("int8", "int16") for b in (8, 4, 2, 1))
RESOURCES = ("flash", "ram", "instructions", "weights")
MAX_TIGHTEN = 6
K_BEST = 6  # the exact solver's best distinct choices verified per loss model
REFINE = 1  # rounds of the in-context loss model (each measures layers x (options - 1) recipes)


@dataclass(frozen=True)
class Candidate:
    """One choice considered by ``Planner.choose``: predicted by the additive loss model, measured on the
    calibration data."""

    choice: tuple[int, ...]  # option index per layer
    recipe: dict[str, LayerPrecision]
    sources: tuple[str, ...]  # "exact #1", "greedy", "uniform w4a8", "in context #2", ...
    predicted_loss: float  # from the all-int8 sensitivities (additive)
    predicted_noise: float  # all-int8 noise on the calibration data + predicted_loss (N/S)
    predicted: dict[str, float]  # each resource's predicted value
    noise: float  # measured end to end on the calibration data (N/S), see Planner.compared_on

    @property
    def predicted_db(self) -> float:
        return _db(self.predicted_noise)

    @property
    def measured_db(self) -> float:
        return _db(self.noise)

    def label(self) -> str:
        return recipe_string(self.recipe.values())

    def to_dict(self) -> dict:
        return {
            "recipe": self.label(),
            "sources": list(self.sources),
            "predicted": {"loss": self.predicted_loss, "sqnr_db": _finite(self.predicted_db), **self.predicted},
            "measured_on_calibration": {"noise": self.noise, "sqnr_db": _finite(self.measured_db)},
        }


@dataclass(frozen=True)
class Verified:
    """A choice quantized, measured on the data and compiled: the numbers are real, not predicted."""

    recipe: dict[str, LayerPrecision]
    predicted_loss: float
    predicted: dict[str, float]
    sqnr_db: float
    accuracy: float | None
    flash: int  # costs.model_flash of the compiled model
    ram: int  # the planned arena
    instructions: int  # estimated from the kernel table
    weight_bytes: int  # packed weights and biases
    method: str
    qm: object = field(repr=False, default=None)
    cm: object = field(repr=False, default=None)
    candidates: tuple[Candidate, ...] = ()  # measured on the calibration data, best first
    reason: str = ""  # why this candidate won

    def value(self, name: str) -> float:
        return {"flash": self.flash, "ram": self.ram, "instructions": self.instructions, "weights": self.weight_bytes}[
            name
        ]

    def to_dict(self) -> dict:
        return {
            "recipe": {n: {"weight_bits": p.weight_bits, "activations": p.activations} for n, p in self.recipe.items()},
            "method": self.method,
            "predicted": {"loss": self.predicted_loss, **self.predicted},
            "verified": {
                "sqnr_db": self.sqnr_db,
                "accuracy": self.accuracy,
                "flash": self.flash,
                "ram": self.ram,
                "instructions": self.instructions,
                "weight_bytes": self.weight_bytes,
            },
            "candidates": [c.to_dict() for c in self.candidates],
            "reason": self.reason,
        }


class Planner:
    def __init__(
        self,
        model,
        calib,
        *,
        eval_data=None,
        labels=None,
        board: str = "host",
        options: tuple[LayerPrecision, ...] = ALL_OPTIONS,
        progress: Callable[[str], None] | None = None,
        refine: int = REFINE,
        **quant_options,
    ) -> None:
        from .calib import load_calibration

        self.board = board
        self.refine = refine
        self.progress = progress or (lambda s: None)
        self.quants = Quantizations(model, calib, **quant_options)
        g = self.quants.float_graph
        self.names = self.quants.names
        if not self.names:
            raise McuqError("mixed precision: the model has no conv, depthwise or fully-connected layer to choose for")
        calib_arrays = load_calibration(calib, g, what="calibration data").arrays
        if eval_data is None:
            arrays, on = calib_arrays, "calibration data"
        else:
            arrays, on = load_calibration(eval_data, g, what="--eval data").arrays, "evaluation data"
        self.evaluator = Evaluator(g, [a for a in arrays], labels)
        self.notes: list[str] = []
        # candidates are compared on the calibration data only, never on --eval
        self.calib_evaluator = self.evaluator if eval_data is None else Evaluator(g, [a for a in calib_arrays])
        self.compared_on = f"the {int(calib_arrays[0].shape[0])} calibration samples"
        self._noise: dict[tuple[int, ...], float] = {}
        self.on = on
        self.options = self._available(options)
        self._sens: Sensitivity | None = None
        self._table: C.CostTable | None = None

    # -- measured inputs of the knapsack ---------------------------------------------------------------------
    def _available(self, options) -> tuple[LayerPrecision, ...]:
        """The options that quantize and compile here, each measured on a uniform model."""
        from ..api import compile_model

        self.compiled = {}
        out = []
        for p in options:
            self.progress(f"uniform {p.weight_bits}-bit weights, {p.activations} activations")
            try:
                cm = compile_model(self.quants.uniform(p), kernels=self._kernels())
            except McuqError as e:
                if p == INT8:
                    raise
                self.notes.append(f"{p.weight_bits}-bit weights with {p.activations} activations left out: {e}")
                continue
            self.compiled[p] = cm
            out.append(p)
        return tuple(out)

    def _kernels(self) -> str:
        from ..boards import HOST, load_board
        from ..lower.specialize import board_path

        b = load_board(self.board)
        return board_path(b.features, b.name == HOST)

    @property
    def sensitivity(self) -> Sensitivity:
        if self._sens is None:
            bits = tuple(sorted({p.weight_bits for p in self.options if p.weight_bits != 8}, reverse=True))
            int16 = any(p.activations == "int16" for p in self.options)
            self._sens = measure(self.quants, self.evaluator, bits, int16, self.on, self.progress)
        return self._sens

    @property
    def table(self) -> C.CostTable:
        if self._table is None:
            self._table = C.table(self.compiled, self.names, self.quants.float_graph, self.board)
        return self._table

    def problem(self, budgets: dict[str, float | None]) -> Problem:
        sens = {s.name: s for s in self.sensitivity.layers}
        base = self.sensitivity.base.noise
        opts = [self.options for _ in self.names]
        loss = tuple(tuple(sens[n].loss(p, base) for p in self.options) for n in self.names)
        resources, triggers = C.problem_rows(self.table, opts)
        weights = Row(
            tuple(tuple(float(self.table.costs[n][p].weight_bytes) for p in self.options) for n in self.names),
            float(self.table.base_weight_bytes),
            label="weights",
        )
        resources = (*resources, Resource("weights", (weights,)))
        res = tuple(Resource(r.name, r.rows, budgets.get(r.name)) for r in resources)
        return Problem(tuple(self.names), loss, res, triggers)

    # -- choice and verification -----------------------------------------------------------------------------------
    def verify(self, recipe: dict[str, LayerPrecision], method: str, predicted_loss: float, predicted) -> Verified:
        from ..api import compile_model

        qm = self.quants.get(recipe)
        m = self.evaluator.measure(qm.graph)
        cm = compile_model(qm, kernels=self._kernels())
        cpu = C.cpu_of(self.board)
        instr = sum(C.layer_instructions(la, cm.graph, cpu) for la in cm.layers)
        return Verified(
            recipe=recipe,
            predicted_loss=predicted_loss,
            predicted=predicted,
            sqnr_db=m.sqnr_db,
            accuracy=m.accuracy,
            flash=C.model_flash(cm),
            ram=cm.plan.arena_size,
            instructions=int(round(instr)),
            weight_bytes=C.model_weight_bytes(cm),
            method=method,
            qm=qm,
            cm=cm,
        )

    def measured_noise(self, choice: tuple[int, ...]) -> float:
        """End-to-end output noise (N/S) of the recipe ``choice`` (option index per layer) on the calibration
        data; each choice quantized and measured once."""
        if choice not in self._noise:
            qm = self.quants.get(self._recipe(choice))
            self._noise[choice] = self.calib_evaluator.measure(qm.graph).noise
        return self._noise[choice]

    def _recipe(self, choice) -> dict[str, LayerPrecision]:
        return {n: self.options[o] for n, o in zip(self.names, choice)}

    def candidates(self, p: Problem, method: str = "milp") -> list[Candidate]:
        """The choices ``choose`` verifies for the problem ``p``, measured, best measured first (ties: least
        predicted loss). "milp": the exact solver's best, the greedy choice, every fitting uniform precision, and
        the exact solver's best under the in-context loss model; "greedy": the greedy choice alone."""
        found: dict[tuple[int, ...], list[str]] = {}

        def add(choice, source):
            found.setdefault(tuple(choice), []).append(source)

        if method == "greedy":
            add(greedy(p).choice, "greedy")
        else:
            for i, sol in enumerate(solve_k(p, K_BEST)):  # Infeasible when nothing fits
                add(sol.choice, f"exact #{i + 1}")
            try:
                add(greedy(p).choice, "greedy")
            except Infeasible:
                pass
            for o, opt in enumerate(self.options):
                u = (o,) * len(self.names)
                if p.feasible(u):
                    add(u, "uniform " + recipe_string([opt]))
            for r in range(self.refine):
                best = min(found, key=lambda c: (self.measured_noise(c), p.total_loss(c)))
                ctx = self._in_context(p, best)
                new = [sol.choice for sol in solve_k(ctx, K_BEST)]
                fresh = [c for c in new if c not in found]
                for i, c in enumerate(new):
                    add(c, f"in context{'' if r == 0 else f' {r + 1}'} #{i + 1}")
                if not fresh or min(self.measured_noise(c) for c in fresh) >= self.measured_noise(best):
                    break  # the in-context model found nothing better: stop
        base = self.measured_noise((self.options.index(INT8),) * len(self.names))  # all-int8, calibration data
        out = [
            Candidate(
                choice=c,
                recipe=self._recipe(c),
                sources=tuple(src),
                predicted_loss=p.total_loss(c),
                predicted_noise=base + p.total_loss(c),
                predicted=p.values(c),
                noise=self.measured_noise(c),
            )
            for c, src in found.items()
        ]
        return sorted(out, key=lambda c: (c.noise, c.predicted_loss, c.choice))

    def _in_context(self, p: Problem, at: tuple[int, ...]) -> Problem:
        """``p`` with its loss re-measured around the choice ``at``: layer ``l`` at option ``o`` costs
        ``N(at with l at o) - N(at)``, measured on the calibration data (exact for ``at`` and every single-layer
        change of it)."""
        n0 = self.measured_noise(at)
        loss = []
        for li in range(len(self.names)):
            row = []
            for o in range(len(self.options)):
                c = at[:li] + (o,) + at[li + 1 :]
                row.append(0.0 if o == at[li] else self.measured_noise(c) - n0)
            loss.append(tuple(row))
        return Problem(p.layers, tuple(loss), p.resources, p.triggers)

    def choose(self, budgets: dict[str, float | None], method: str = "milp") -> Verified:
        """The best measured recipe within ``budgets`` (by resource name), verified (see the module's docstring);
        ``method`` "milp" (exact, several candidates verified) or "greedy" (the baseline). Raises ``Infeasible``
        with the smallest achievable values."""
        unknown = set(budgets) - set(RESOURCES)
        if unknown:
            raise McuqError(f"unknown budget {sorted(unknown)[0]!r}; budgets: {', '.join(RESOURCES)}")
        current = dict(budgets)
        for _ in range(MAX_TIGHTEN + 1):
            p = self.problem(current)
            cands = self.candidates(p, method)
            first: tuple[Candidate, Verified, dict[str, float]] | None = None
            for c in cands:
                v = self.verify(c.recipe, _method(c, method), c.predicted_loss, c.predicted)
                over = {
                    r: v.value(r) - b for r, b in budgets.items() if b is not None and v.value(r) > b
                }  # against the user's budgets
                if not over:
                    return replace(v, candidates=tuple(cands), reason=_reason(c, cands, method))
                first = first or (c, v, over)
            assert first is not None
            c, v, over = first
            for r, excess in over.items():
                current[r] = min(current[r], c.predicted[r]) - excess
            log.info("verified choices over budget (%s): tightening and solving again", over)
        raise Infeasible(
            "the chosen recipes stay over budget when compiled ("
            + ", ".join(f"{r} {v.value(r):,} > {budgets[r]:,.0f}" for r in over)
            + "); give a little more room"
        )

    def uniform(self, p: LayerPrecision) -> Verified:
        recipe = dict.fromkeys(self.names, p)
        return self.verify(recipe, "uniform", 0.0, {})


def recipe_lines(v: Verified) -> list[str]:
    w = max(len(printable(n, 48)) for n in v.recipe)
    return [
        f"  {printable(n, 48):<{w}}  {p.weight_bits}-bit weights, {p.activations} activations"
        for n, p in v.recipe.items()
    ]


def recipe_string(precisions) -> str:
    """``w8a8 w8a16 w2a8``-style text, one word per layer (or per option)."""
    return " ".join(f"w{p.weight_bits}a{16 if p.activations == 'int16' else 8}" for p in precisions)


def _method(c: Candidate, method: str) -> str:
    if method == "greedy":
        return "greedy"
    return "milp" if "exact #1" in c.sources else "milp, verified best of candidates"


def _reason(c: Candidate, cands: list[Candidate], method: str) -> str:
    if method == "greedy":
        return "greedy choice (the baseline)"
    exact1 = next(x for x in cands if "exact #1" in x.sources)
    why = f"least output noise measured (calibration data) among {len(cands)} candidates ({', '.join(c.sources)})"
    if c is exact1:
        return why + "; it is also the exact solver's first choice"
    if cands[0] is not c:
        why = f"the best measured candidate that fits the compiled budgets ({', '.join(c.sources)})"
    return why + (
        f"; {c.measured_db - exact1.measured_db:.2f} dB above the exact solver's first choice "
        f"(predicted {exact1.predicted_db:.2f} dB, measured {exact1.measured_db:.2f} dB)"
    )


def candidate_table(
    cands: tuple[Candidate, ...], chosen: dict[str, LayerPrecision] | None = None, limit: int = 8
) -> str:
    """The candidates, best measured first: recipe, predicted and measured SQNR, where each came from; the first
    ``limit`` and the exact solver's and greedy's first choices, the rest counted."""
    shown = [c for i, c in enumerate(cands) if i < limit or {"exact #1", "greedy"} & set(c.sources)]
    w = max((len(c.label()) for c in shown), default=6)
    lines = [f"  {'recipe':<{w}}  {'predicted dB':>12}  {'measured dB':>11}  from"]
    for c in shown:
        mark = "*" if chosen is not None and c.recipe == chosen else " "
        lines.append(
            f"{mark} {c.label():<{w}}  {c.predicted_db:>12.2f}  {c.measured_db:>11.2f}  {', '.join(c.sources)}"
        )
    if len(shown) < len(cands):
        lines.append(f"  ... {len(cands) - len(shown)} more, measured worse (the report JSON lists every one)")
    return "\n".join(lines)


def _db(noise: float) -> float:
    return math.inf if noise <= 0 else -10.0 * math.log10(noise)


def _finite(v: float) -> float | None:
    return v if math.isfinite(v) else None
