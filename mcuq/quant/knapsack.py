"""Choose one precision per layer under budgets: a multiple-choice knapsack with shared costs, solved exactly.

The problem (``Problem``): layers ``li``, each with options ``o`` (a weight width and an activation dtype), a
predicted loss ``loss[li][o]`` (additive: an output noise power increase, or an accuracy drop, never dB, which
do not add), and resources (flash, RAM, instructions). A resource has one or more rows, each a linear
inequality ``const + sum a[li][o] x[li][o] + sum b[f] y[f] <= budget``: flash and instructions have one row, RAM
one row per step of the schedule (the bytes of the tensors live at that step). ``y[f]`` are *features*: costs
that are paid once when any of their triggering choices is made (a kernel's code, linked once however many
layers call it; an activation tensor that is int16 when the layer producing or reading it is).

``solve`` is exact: binary variables ``x[li][o]`` (one-hot per layer) and ``y[f] >= x[li][o]`` for each trigger,
minimise the summed loss with ``scipy.optimize.milp`` (HiGHS branch and bound). ``y`` only costs resources,
so an optimum never sets one without a trigger. ``greedy`` is the baseline that products use (HAWQ-style,
TI's ModelZoo): start from each layer's least-loss option and, while over budget, take the move that removes
the most budget excess per unit of added loss. ``solve_k`` gives the k best distinct
choices (no-good cuts), for a caller that verifies several on data because the additive loss is only a prediction.
``brute_force`` enumerates every choice (tests).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import McuqError


@dataclass(frozen=True)
class Row:
    """One linear inequality: ``const + sum(coef[li][o] for chosen (li, o)) + sum(feature_coef[f] for active f)
    <= budget``. ``coef[li]`` has one entry per option of layer ``li``."""

    coef: tuple[tuple[float, ...], ...]
    const: float = 0.0
    feature_coef: dict[int, float] = field(default_factory=dict)
    label: str = ""


@dataclass(frozen=True)
class Resource:
    """A budgeted quantity: its rows share ``budget`` (None: not constrained, still reported)."""

    name: str
    rows: tuple[Row, ...]
    budget: float | None = None

    def value(self, choice: Sequence[int], active: set[int]) -> float:
        """The largest row under ``choice`` (RAM: the peak over steps)."""
        return max((_row_value(r, choice, active) for r in self.rows), default=0.0)


@dataclass(frozen=True)
class Problem:
    layers: tuple[str, ...]
    loss: tuple[tuple[float, ...], ...]  # loss[li][o]
    resources: tuple[Resource, ...]
    # feature f is active when any (layer, option) in triggers[f] is chosen
    triggers: tuple[tuple[tuple[int, int], ...], ...] = ()

    def __post_init__(self) -> None:
        if len(self.loss) != len(self.layers):
            raise ValueError("one loss row per layer")
        for r in self.resources:
            for row in r.rows:
                if len(row.coef) != len(self.layers) or any(
                    len(c) != len(lo) for c, lo in zip(row.coef, self.loss, strict=True)
                ):
                    raise ValueError(f"{r.name}: a row needs one coefficient per layer option")
                if any(f >= len(self.triggers) for f in row.feature_coef):
                    raise ValueError(f"{r.name}: row names an unknown feature")

    def active(self, choice: Sequence[int]) -> set[int]:
        return {f for f, trig in enumerate(self.triggers) if any(choice[li] == o for li, o in trig)}

    def total_loss(self, choice: Sequence[int]) -> float:
        return float(sum(self.loss[li][o] for li, o in enumerate(choice)))

    def values(self, choice: Sequence[int]) -> dict[str, float]:
        act = self.active(choice)
        return {r.name: r.value(choice, act) for r in self.resources}

    def feasible(self, choice: Sequence[int], slack: float = 1e-9) -> bool:
        act = self.active(choice)
        for r in self.resources:
            if r.budget is not None and r.value(choice, act) > r.budget + slack * max(1.0, abs(r.budget)):
                return False
        return True

    def with_budgets(self, **budgets: float | None) -> Problem:
        """The same problem with some resources' budgets replaced (by name)."""
        unknown = set(budgets) - {r.name for r in self.resources}
        if unknown:
            raise ValueError(f"unknown resources {sorted(unknown)}")
        res = tuple(Resource(r.name, r.rows, budgets[r.name]) if r.name in budgets else r for r in self.resources)
        return Problem(self.layers, self.loss, res, self.triggers)


@dataclass(frozen=True)
class Solution:
    choice: tuple[int, ...]  # option index per layer
    loss: float
    values: dict[str, float]  # each resource's value (its largest row)
    method: str  # "milp", "greedy" or "brute force"


class Infeasible(McuqError):
    """No choice fits the budgets; the message gives the smallest value each budgeted resource can reach."""


def _row_value(row: Row, choice: Sequence[int], active: set[int]) -> float:
    return (
        row.const
        + sum(row.coef[li][o] for li, o in enumerate(choice))
        + sum(c for f, c in row.feature_coef.items() if f in active)
    )


def _variables(p: Problem) -> tuple[list[tuple[int, int]], int]:
    xs = [(li, o) for li in range(len(p.layers)) for o in range(len(p.loss[li]))]
    return xs, len(xs) + len(p.triggers)


def _milp(p: Problem, objective: np.ndarray, extra_rows=()):
    """scipy's milp on the one-hot model; ``objective`` over x then y; ``extra_rows``: (coefs, ub) more rows."""
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import lil_matrix

    xs, n = _variables(p)
    index = {lo: i for i, lo in enumerate(xs)}
    nx = len(xs)
    rows: list[tuple[dict[int, float], float, float]] = []
    for li in range(len(p.layers)):  # one option per layer
        rows.append(({index[(li, o)]: 1.0 for o in range(len(p.loss[li]))}, 1.0, 1.0))
    for f, trig in enumerate(p.triggers):  # x[li][o] - y[f] <= 0
        for lo in trig:
            rows.append(({index[lo]: 1.0, nx + f: -1.0}, -np.inf, 0.0))
    for r in p.resources:
        if r.budget is None:
            continue
        for row in r.rows:
            coefs = {index[(li, o)]: float(c) for li, cs in enumerate(row.coef) for o, c in enumerate(cs) if c}
            for f, c in row.feature_coef.items():
                coefs[nx + f] = coefs.get(nx + f, 0.0) + float(c)
            rows.append((coefs, -np.inf, float(r.budget) - row.const))
    for coefs, ub in extra_rows:
        rows.append((coefs, -np.inf, ub))
    ncols = max(n, len(objective))
    a = lil_matrix((len(rows), ncols))
    lb, ub = np.empty(len(rows)), np.empty(len(rows))
    for i, (coefs, lo, hi) in enumerate(rows):
        for j, c in coefs.items():
            a[i, j] = c
        lb[i], ub[i] = lo, hi
    integrality = np.ones(ncols)
    lower, upper = np.zeros(ncols), np.ones(ncols)
    if ncols > n:  # continuous extras (the peak variable of min_value)
        integrality[n:] = 0
        upper[n:] = np.inf
    cons = LinearConstraint(a.tocsr(), lb, ub)
    return milp(objective, constraints=cons, integrality=integrality, bounds=Bounds(lower, upper)), xs


def solve(p: Problem) -> Solution:
    """The least-loss choice within every budget, exactly (``scipy.optimize.milp``). Raises ``Infeasible``."""
    sol = _solve_excluding(p, ())
    if sol is None:
        raise Infeasible(_infeasible_message(p))
    return sol


def solve_k(p: Problem, k: int) -> list[Solution]:
    """The ``k`` least-loss distinct choices within every budget, best first (fewer when fewer fit): each found
    by the exact solver with a no-good cut ``sum_li x[li][c_li] <= layers - 1`` for every choice found before.
    Raises ``Infeasible`` when none fits."""
    out = [solve(p)]
    while len(out) < k:
        sol = _solve_excluding(p, tuple(s.choice for s in out))
        if sol is None:
            break
        out.append(sol)
    return out


def _solve_excluding(p: Problem, excluded: tuple[tuple[int, ...], ...]) -> Solution | None:
    """The least-loss feasible choice other than ``excluded``; None when there is none."""
    xs, n = _variables(p)
    # scale the objective so that HiGHS's tolerances see comparable numbers whatever the loss unit
    loss = np.array([p.loss[li][o] for li, o in xs], dtype=np.float64)
    scale = float(np.max(np.abs(loss))) if loss.size and np.max(np.abs(loss)) > 0 else 1.0
    obj = np.concatenate([loss / scale, np.zeros(n - len(xs))])
    index = {lo: i for i, lo in enumerate(xs)}
    cuts = [({index[(li, o)]: 1.0 for li, o in enumerate(c)}, float(len(c) - 1)) for c in excluded]
    res, xs = _milp(p, obj, cuts)
    if res.status == 2:
        return None
    if res.status != 0 or res.x is None:
        raise McuqError(f"precision choice: the solver stopped: {res.message}")
    choice = [0] * len(p.layers)
    for i, (li, o) in enumerate(xs):
        if res.x[i] > 0.5:
            choice[li] = o
    choice_t = tuple(choice)
    return Solution(choice_t, p.total_loss(choice_t), p.values(choice_t), "milp")


def min_value(p: Problem, name: str) -> float:
    """The smallest value the resource ``name`` (its largest row) can reach by any choice, other budgets
    ignored."""
    free = Problem(p.layers, p.loss, tuple(Resource(r.name, r.rows, None) for r in p.resources), p.triggers)
    xs, n = _variables(free)
    index = {lo: i for i, lo in enumerate(xs)}
    (res_,) = [r for r in p.resources if r.name == name]
    peak = n  # one continuous variable t >= every row: minimise t
    extra = []
    for row in res_.rows:
        coefs = {index[(li, o)]: float(c) for li, cs in enumerate(row.coef) for o, c in enumerate(cs) if c}
        for f, c in row.feature_coef.items():
            coefs[len(xs) + f] = coefs.get(len(xs) + f, 0.0) + float(c)
        coefs[peak] = -1.0
        extra.append((coefs, -row.const))
    obj = np.zeros(n + 1)
    obj[peak] = 1.0
    res, xs = _milp(free, obj, extra)
    if res.x is None:
        raise McuqError(f"precision choice: the solver stopped: {res.message}")
    choice = [0] * len(p.layers)
    for i, (li, o) in enumerate(xs):
        if res.x[i] > 0.5:
            choice[li] = o
    return res_.value(choice, free.active(choice))


def _infeasible_message(p: Problem) -> str:
    parts = []
    for r in p.resources:
        if r.budget is not None:
            best = min_value(p, r.name)
            parts.append(f"{r.name} budget {_fmt(r.budget)}, smallest achievable {_fmt(best)}")
    return "no per-layer precision fits the budgets together: " + "; ".join(parts)


def _fmt(v: float) -> str:
    return f"{int(math.ceil(v - 1e-9)):,}"


def greedy(p: Problem) -> Solution:
    """The greedy baseline: from each layer's least-loss option, repeatedly take the single-layer change that
    removes the most relative budget excess per unit of added loss, until every budget holds. Raises
    ``Infeasible`` when it gets stuck (the exact solver may still find a choice)."""
    choice = [min(range(len(lo)), key=lambda o, lo=lo: (lo[o], o)) for lo in p.loss]

    def over(c: Sequence[int]) -> list[tuple[float, float]]:
        """(value, budget) of every budgeted row."""
        act = p.active(c)
        return [(_row_value(row, c, act), r.budget) for r in p.resources if r.budget is not None for row in r.rows]

    def excess(rows: list[tuple[float, float]]) -> float:
        return sum(max(0.0, v - b) / max(abs(b), 1.0) for v, b in rows)

    rows = over(choice)
    while excess(rows) > 1e-12:
        best: tuple[float, int, int] | None = None
        for li in range(len(p.layers)):
            for o in range(len(p.loss[li])):
                if o == choice[li]:
                    continue
                trial = list(choice)
                trial[li] = o
                after = over(trial)
                # bytes saved on the rows that are over budget, relative to their budgets
                saved = sum((v - w) / max(abs(b), 1.0) for (v, b), (w, _) in zip(rows, after) if v > b)
                if saved <= 1e-12 or excess(after) >= excess(rows) - 1e-12:
                    continue
                dloss = p.loss[li][o] - p.loss[li][choice[li]]
                score = max(dloss, 1e-12) / saved  # loss per byte saved: lower is better
                if best is None or score < best[0]:
                    best = (score, li, o)
        if best is None:
            raise Infeasible("greedy choice: stuck over budget (no single-layer change reduces the excess)")
        choice[best[1]] = best[2]
        rows = over(choice)
    c = tuple(choice)
    return Solution(c, p.total_loss(c), p.values(c), "greedy")


def brute_force(p: Problem) -> Solution | None:
    """Every choice tried (small problems only); None when none is feasible."""
    best: tuple[float, tuple[int, ...]] | None = None
    for c in itertools.product(*(range(len(lo)) for lo in p.loss)):
        if p.feasible(c):
            v = p.total_loss(c)
            if best is None or v < best[0] - 1e-12:
                best = (v, c)
    if best is None:
        return None
    return Solution(best[1], best[0], p.values(best[1]), "brute force")
