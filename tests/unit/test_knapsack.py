"""The budgeted precision choice (mcuq.quant.knapsack): exact against brute force, the k best distinct choices
against enumeration, the greedy baseline worse on a crafted instance, infeasible budgets named with the smallest
achievable values."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from mcuq.quant.knapsack import Infeasible, Problem, Resource, Row, brute_force, greedy, min_value, solve, solve_k


def _random_problem(rng: np.random.Generator, ram_rows: bool, features: bool) -> Problem:
    n = int(rng.integers(2, 6))
    opts = [int(rng.integers(1, 5)) for _ in range(n)]
    loss = tuple(tuple(float(v) for v in np.sort(rng.uniform(-1, 10, k))) for k in opts)
    # more loss <-> fewer bytes, as for precisions (not required by the solver)
    flash = tuple(tuple(float(v) for v in np.sort(rng.integers(1, 100, k))[::-1]) for k in opts)
    instr = tuple(tuple(float(v) for v in rng.integers(0, 50, k)) for k in opts)
    triggers: tuple = ()
    fcoef: dict[int, float] = {}
    if features:
        triggers = tuple(
            tuple((li, o) for li in range(n) for o in range(opts[li]) if rng.random() < 0.3) for _ in range(3)
        )
        fcoef = {f: float(rng.integers(5, 40)) for f in range(len(triggers))}
    flash_row = Row(flash, const=float(rng.integers(0, 20)), feature_coef=fcoef)
    total_min = sum(min(f) for f in flash)
    total_max = sum(max(f) for f in flash)
    resources = [
        Resource("flash", (flash_row,), float(rng.uniform(total_min * 0.9, total_max + sum(fcoef.values())))),
        Resource("instructions", (Row(instr),), float(rng.uniform(0, 50 * n))),
    ]
    if ram_rows:
        rows = []
        for _ in range(int(rng.integers(1, 4))):
            coef = tuple(tuple(float(v) * (rng.random() < 0.6) for v in rng.integers(1, 30, k)) for k in opts)
            rows.append(Row(coef, const=float(rng.integers(0, 10))))
        resources.append(Resource("ram", tuple(rows), float(rng.uniform(10, 40 * n))))
    return Problem(tuple(f"l{i}" for i in range(n)), loss, tuple(resources), triggers)


@pytest.mark.parametrize("ram_rows,features", [(False, False), (True, False), (True, True)])
def test_milp_equals_brute_force(ram_rows, features):
    rng = np.random.default_rng(7 + 3 * ram_rows + features)
    infeasible = feasible = 0
    for _ in range(80):
        p = _random_problem(rng, ram_rows, features)
        exact = brute_force(p)
        if exact is None:
            infeasible += 1
            with pytest.raises(Infeasible, match="smallest achievable"):
                solve(p)
            continue
        feasible += 1
        s = solve(p)
        assert p.feasible(s.choice)
        assert s.loss == pytest.approx(exact.loss, abs=1e-9)
    assert infeasible >= 3 and feasible >= 20  # both cases exercised


@pytest.mark.parametrize("features", [False, True])
def test_k_best_are_the_k_least_loss_feasible_choices(features):
    rng = np.random.default_rng(23 + features)
    checked = short = 0
    for _ in range(30):
        p = _random_problem(rng, True, features)
        feasible = sorted(
            p.total_loss(c) for c in itertools.product(*(range(len(lo)) for lo in p.loss)) if p.feasible(c)
        )
        if not feasible:
            continue
        sols = solve_k(p, 5)
        assert len(sols) == min(5, len(feasible))
        short += len(sols) < 5
        assert len({s.choice for s in sols}) == len(sols)  # distinct
        assert all(p.feasible(s.choice) for s in sols)
        assert [s.loss for s in sols] == pytest.approx(feasible[: len(sols)], abs=1e-9)
        checked += 1
    assert checked >= 10 and short >= 1  # also the case of fewer feasible choices than asked for


def test_greedy_never_beats_exact():
    rng = np.random.default_rng(11)
    worse = 0
    for _ in range(40):
        p = _random_problem(rng, True, False)
        try:
            g = greedy(p)
        except Infeasible:
            continue
        s = solve(p)
        assert s.loss <= g.loss + 1e-9
        worse += s.loss < g.loss - 1e-9
    assert worse >= 1


def test_greedy_loses_to_exact_choice():
    # layer a: 8 bit (0 loss, 100 B) or 4 bit (1.0, 50 B); layer b: 8 bit (0, 100 B), 4 bit (0.9, 60 B),
    # 2 bit (1.2, 10 B). Budget 150 B. Greedy's best loss per byte: b -> 2 bit (1.2 / 90) reaches 110 B, done.
    # Exact: a -> 4 bit, b stays 8: 150 B, loss 1.0.
    p = Problem(
        ("a", "b"),
        loss=((0.0, 1.0), (0.0, 0.9, 1.2)),
        resources=(Resource("flash", (Row(((100.0, 50.0), (100.0, 60.0, 10.0))),), 150.0),),
    )
    g, s = greedy(p), solve(p)
    assert s.choice == (1, 0) and s.loss == pytest.approx(1.0)
    assert g.loss > s.loss


def test_features_paid_once():
    # a kernel's code (30 B) is paid once when either layer picks option 1
    p = Problem(
        ("a", "b"),
        loss=((0.0, 1.0), (0.0, 1.0)),
        resources=(Resource("flash", (Row(((50.0, 20.0), (50.0, 20.0)), feature_coef={0: 30.0}),), 70.0),),
        triggers=(((0, 1), (1, 1)),),
    )
    s = solve(p)
    assert s.choice == (1, 1) and s.values["flash"] == 70.0
    assert brute_force(p).loss == s.loss


def test_infeasible_names_smallest_values():
    p = Problem(
        ("a", "b"),
        loss=((0.0, 1.0), (0.0, 1.0)),
        resources=(
            Resource("flash", (Row(((50.0, 20.0), (50.0, 20.0)), const=5.0),), 30.0),
            Resource("ram", (Row(((8.0, 8.0), (0.0, 0.0))), Row(((0.0, 0.0), (16.0, 4.0)))), 2.0),
        ),
    )
    with pytest.raises(Infeasible) as e:
        solve(p)
    msg = str(e.value)
    assert "flash budget 30, smallest achievable 45" in msg
    assert "ram budget 2, smallest achievable 8" in msg
    assert min_value(p, "ram") == 8.0


def test_negative_losses_and_unbudgeted_resources():
    # int16 activations lower the loss: a negative loss is chosen when it fits
    p = Problem(
        ("a",),
        loss=((0.0, -0.5, 2.0),),
        resources=(
            Resource("flash", (Row(((10.0, 12.0, 4.0),)),), 12.0),
            Resource("instructions", (Row(((1.0, 2.0, 1.0),)),)),
        ),
    )
    s = solve(p)
    assert s.choice == (1,) and s.values == {"flash": 12.0, "instructions": 2.0}
