"""``mcuq.registry.registrar``: the decorator behind ``lowering``, ``reference`` and ``float_op``."""

from __future__ import annotations

import pytest

from mcuq.ir import OpKind
from mcuq.lower import LOWERINGS, lowering
from mcuq.reference import REFERENCES, reference
from mcuq.reference.float_ops import FLOAT_OPS, float_op
from mcuq.registry import registrar


def test_registers_under_each_key_and_returns_the_function() -> None:
    table: dict[str, object] = {}
    register = registrar(table, "things")

    @register("a", "b")
    def f() -> int:
        return 1

    assert table == {"a": f, "b": f} and f() == 1


def test_a_key_registered_twice_is_an_error() -> None:
    table: dict[str, object] = {}
    register = registrar(table, "things")
    register("a")(len)
    with pytest.raises(AssertionError, match="two things for a"):
        register("a")(abs)
    assert table == {"a": len}


@pytest.mark.parametrize(
    "deco, table, key",
    [(lowering, LOWERINGS, OpKind.ADD), (reference, REFERENCES, "mcuq_add_s8"), (float_op, FLOAT_OPS, OpKind.ADD)],
)
def test_the_three_registries_refuse_a_second_entry(deco, table, key) -> None:
    before = dict(table)
    with pytest.raises(AssertionError, match="two "):
        deco(key)(lambda *a: None)
    assert table == before
