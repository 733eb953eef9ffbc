"""The costs of each layer's precision (mcuq.quant.costs) against the compiled models: the knapsack's flash and
weight rows give exactly what the generated C holds, for uniform and mixed precisions; the RAM rows give the
planner's liveness bound."""

from __future__ import annotations

import numpy as np
import pytest

from mcuq.quant import costs
from mcuq.quant.knapsack import Problem
from mcuq.quant.mixed import Planner
from mcuq.quant.precision import LayerPrecision
from tests.util import digits_float as df

pytest.importorskip("sklearn", reason="scikit-learn (the `examples` extra) provides the digits data set")


@pytest.fixture(scope="module")
def planner() -> Planner:
    tr = df.train()
    return Planner(df.float_graph(tr.params), tr.x_train[:64].astype(np.float32)[:, None])


def _values(pl: Planner, choice: dict[str, LayerPrecision]) -> dict[str, float]:
    p: Problem = pl.problem({})
    return p.values(tuple(pl.options.index(choice[n]) for n in pl.names))


def test_uniform_costs_are_exact(planner):
    for opt, cm in planner.compiled.items():
        v = _values(planner, dict.fromkeys(planner.names, opt))
        assert v["flash"] == costs.model_flash(cm), opt
        assert v["weights"] == cm.model.weight_bytes, opt
        if opt.activations == "int8":  # the int8 schedule: the rows are the planner's liveness bound
            assert v["ram"] == cm.plan.lower_bound, opt


def test_mixed_costs_match_the_compiled_choice(planner):
    opts = planner.options
    int8_opts = [o for o in opts if o.activations == "int8"]
    rng = np.random.default_rng(0)
    for pool in (int8_opts, int8_opts, opts, opts):
        recipe = {n: pool[int(rng.integers(len(pool)))] for n in planner.names}
        pred = _values(planner, recipe)
        real = planner.verify(recipe, "test", 0.0, pred)
        assert pred["weights"] == real.weight_bytes, recipe  # packed weights and biases: exact
        if all(p.activations == "int8" for p in recipe.values()):
            assert pred["flash"] == real.flash, recipe
        else:  # the QUANTIZE calls between int8 and int16 layers are not in the rows: within 6 %
            assert abs(pred["flash"] - real.flash) <= 0.06 * real.flash, (recipe, pred["flash"], real.flash)


def test_packed_weight_bytes(planner):
    int8 = planner.compiled[LayerPrecision(8, "int8")]
    for bits in (4, 2, 1):
        cm = planner.compiled.get(LayerPrecision(bits, "int8"))
        if cm is None:
            continue
        for name in planner.names:
            w8 = planner.table.costs[name][LayerPrecision(8, "int8")]
            wb = planner.table.costs[name][LayerPrecision(bits, "int8")]
            assert wb.weight_bytes < w8.weight_bytes
        assert cm.model.weight_bytes < int8.model.weight_bytes


def test_liveness_counts_int16_tensors_twice(planner):
    p = planner.problem({})
    int16 = LayerPrecision(8, "int16")
    if int16 not in planner.options:
        pytest.skip("no int16 activations here")
    cm = planner.compiled[int16]
    v = p.values(tuple(planner.options.index(int16) for _ in planner.names))
    assert v["ram"] >= cm.plan.lower_bound * 0.9
