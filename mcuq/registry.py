"""Decorators that fill a lookup table: ``@lowering(OpKind.ADD)``, ``@reference("mcuq_add_s8")``, ``@float_op(...)``.

Invariant: each key is registered at most once; a second registration is a programming error, caught by an
assertion when the registering module is imported.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TypeVar

K = TypeVar("K", bound=Hashable)
F = TypeVar("F", bound=Callable[..., object])


def registrar(table: dict[K, F], what: str) -> Callable[..., Callable[[F], F]]:
    """A decorator factory over ``table``: ``@register(k1, k2)`` stores the function under each key and returns
    it unchanged. ``what`` names the entries in the error, e.g. ``"lowerings"`` -> "two lowerings for ADD"."""

    def register(*keys: K) -> Callable[[F], F]:
        def deco(fn: F) -> F:
            for k in keys:
                assert k not in table, f"two {what} for {k}"
                table[k] = fn
            return fn

        return deco

    return register
