"""Python mirrors of the runtime's C parameter structs.

A kernel's parameters are a frozen dataclass that subclasses ``CStruct`` and names its C typedef::

    @dataclass(frozen=True)
    class Dims(CStruct, c_name="mcuq_dims"):
        n: int = i32(lo=0)
        ...

Each field says its C type through its metadata (``i32`` for ``int32_t`` scalars with their allowed range,
``array`` for a ``const T *`` to a constant array, or a nested ``CStruct``), so that

* codegen writes a designated initializer from the values (``initializer``),
* lowering checks every value against the range the C kernel documents, in one place (``out_of_range``),
* tests/unit/test_kernel_registry.py checks that the C header declares the same fields, in the same order,
  with the same types (``c_fields``).
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import numpy as np

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT8_MIN, INT8_MAX = -128, 127
SHIFT_MIN, SHIFT_MAX = -31, 31  # the C fixed-point helpers' shift range (mcuq_fixedpoint.h)


class CStruct:
    """Base of every params dataclass; ``C_NAME`` is the C typedef it mirrors."""

    C_NAME: ClassVar[str] = ""

    def __init_subclass__(cls, c_name: str = "", **kw: Any) -> None:
        super().__init_subclass__(**kw)
        cls.C_NAME = c_name


RESCALE_HINT = "the quantization scales of this op are too far apart for fixed-point rescaling"


def i32(lo: int = INT32_MIN, hi: int = INT32_MAX, hint: str = "") -> Any:
    """An ``int32_t`` field whose value must lie in [lo, hi]; ``hint`` says what a value outside means."""
    return dataclasses.field(metadata={"ctype": "int32_t", "range": (lo, hi), "hint": hint})


def shift_i32(lo: int = SHIFT_MIN, hi: int = SHIFT_MAX) -> Any:
    """An ``int32_t`` rescaling shift for the fixed-point helpers."""
    return i32(lo, hi, RESCALE_HINT)


def array(ctype: str, lo: int | None = None, hi: int | None = None, hint: str = "") -> Any:
    """A ``const <ctype> *`` field: the value is a numpy array emitted as its own ``static const`` array.
    ``lo``/``hi``: the range every element must lie in (None: the C type's range)."""
    return dataclasses.field(metadata={"ctype": f"const {ctype} *", "elem": ctype, "range": (lo, hi), "hint": hint})


def function(ctype: str) -> Any:
    """A function-pointer field of C type ``ctype``: the value is the name of a registered kernel (never text from
    a model), emitted as that function's name; the kernel's sources are linked with the caller's."""
    return dataclasses.field(metadata={"ctype": ctype, "function": True, "range": (None, None), "hint": ""})


def functions(s: CStruct) -> list[str]:
    """The kernel names that the function-pointer fields of ``s`` hold."""
    return [v for _, f, v in walk(s) if f.metadata.get("function")]


def zero_point() -> Any:
    """An int8 zero point (kernels compute ``x - zp`` and ``acc + zp`` in int32)."""
    return i32(INT8_MIN, INT8_MAX)


def c_fields(cls: type[CStruct]) -> list[tuple[str, str]]:
    """(C type, field name) per field, as the C typedef declares them."""
    out = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        t = hints[f.name]
        if isinstance(t, type) and issubclass(t, CStruct):
            out.append((t.C_NAME, f.name))
        else:
            out.append((f.metadata["ctype"], f.name))
    return out


def walk(s: CStruct, prefix: str = "") -> Iterator[tuple[str, dataclasses.Field, Any]]:
    """(dotted path, field, value) for every leaf field of ``s``, depth first in declaration order."""
    for f in dataclasses.fields(s):  # type: ignore[arg-type]
        v = getattr(s, f.name)
        if isinstance(v, CStruct):
            yield from walk(v, f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}", f, v


def out_of_range(s: CStruct) -> list[str]:
    """Human-readable violations of the declared field ranges, each with its field's hint (empty when every value
    fits)."""
    bad = []
    for path, f, v in walk(s):
        if f.metadata.get("function"):  # a kernel's name, set by mcuq itself (mcuq.lower.bands), never by a model
            if not (isinstance(v, str) and v.isidentifier()):
                bad.append(f"{path} {v!r} is not a C function name")
            continue
        lo, hi = f.metadata["range"]
        hint = f"; {f.metadata['hint']}" if f.metadata.get("hint") else ""
        if isinstance(v, np.ndarray):
            if v.size == 0:
                continue
            info = np.iinfo(np.dtype(_NP[f.metadata["elem"]]))
            lo = info.min if lo is None else lo
            hi = info.max if hi is None else hi
            vmin, vmax = int(v.min()), int(v.max())
            if vmin < lo or vmax > hi:
                bad.append(f"{path} {vmin}..{vmax} is outside [{lo}, {hi}]{hint}")
        elif not lo <= int(v) <= hi:
            bad.append(f"{path} {int(v)} is outside [{lo}, {hi}]{hint}")
    return bad


_NP = {"int8_t": "int8", "int16_t": "int16", "int32_t": "int32", "uint8_t": "uint8", "uint32_t": "uint32"}


def int_literal(v: int) -> str:
    """A C literal for an int32 value (INT32_MIN has no literal of type int32_t)."""
    v = int(v)
    return f"({v + 1} - 1)" if v == INT32_MIN else str(v)


def initializer(s: CStruct, array_ref: Callable[[str, np.ndarray], str], indent: str = "    ") -> list[str]:
    """Lines of a designated initializer body for ``s`` (without the outer braces): ``.field = value,`` with
    nested structs as ``.field = { ... },``. ``array_ref(path, values)`` emits an array and returns its C name."""
    lines = []
    for f in dataclasses.fields(s):  # type: ignore[arg-type]
        v = getattr(s, f.name)
        if isinstance(v, CStruct):
            inner = initializer(v, lambda p, a, n=f.name: array_ref(f"{n}.{p}", a), indent)
            lines.append(f".{f.name} = {{")
            lines.extend(indent + line for line in inner)
            lines.append("},")
        elif isinstance(v, np.ndarray):
            lines.append(f".{f.name} = {array_ref(f.name, v)},")
        elif f.metadata.get("function"):
            assert isinstance(v, str) and v.isidentifier(), v  # a registry name (checked by out_of_range)
            lines.append(f".{f.name} = {v},")
        else:
            lines.append(f".{f.name} = {int_literal(v)},")
    return lines


def get(s: CStruct, path: str) -> Any:
    """The value at a dotted path, e.g. ``get(p, "activation.min")``."""
    v: Any = s
    for part in path.split("."):
        v = getattr(v, part)
    return v
