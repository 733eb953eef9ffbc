"""The ``calib`` family of the quantizer fuzzer: a source model unchanged, its calibration data made hostile.

One to three recipes, drawn from the seed, applied in turn to the source's arrays (keyed by input name): values
scaled to 1e38 or 1e-45, all equal, one NaN/inf/huge/denormal element, an outlier, half the samples huge and half
tiny, 1 or 0 samples, many samples, other dtypes (float64 beyond float32's range, float16, integers, bool,
complex, objects, strings, dates, records), missing, extra or swapped dimensions, a broadcast of 10^7 samples, and
other Python forms (a list of samples, a generator, a generator function, None items, ragged lists, dicts keyed
wrongly or by integers, inputs swapped, a string, None). Whatever comes out must quantize or fail in one line.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator

import numpy as np

from mcuq.frontend import load

from .qmutate import QuantCase, _rng
from .qsources import Source

Arrays = dict[str, np.ndarray]
SCALES = (1e38, 3.4e38, 1e30, 1e20, 1e10, 1e-10, 1e-30, 1e-38, 1e-45, 0.0, -1.0)
EQUAL = (0.0, -0.0, 1.0, -1.0, 1e-30, 1e30, 3e38, -3e38, 1.4e-45)
MAX_RECIPE_BYTES = 64 << 20  # recipes leave larger (broadcast) arrays alone
MAX_LISTED = 1000  # samples in a list (a generator yields them all, and the size limit must stop it)
ELEMENT = (float("nan"), float("inf"), float("-inf"), 1e38, -3.4e38, 1e30, 1.4e-45, -0.0)


def _each(arrays: Arrays, fn: Callable[[np.ndarray], np.ndarray]) -> Arrays:
    return {k: fn(np.asarray(v)) for k, v in arrays.items()}


def _apply(recipe, rng: np.random.Generator, arrays: Arrays) -> tuple[Arrays, str]:
    """``recipe`` on ``arrays``; a recipe that does not apply to what earlier ones made (a string array scaled, a
    scalar halved) leaves them as they are."""
    skip = arrays, f"({recipe.__name__[1:]} does not apply)"
    if any(np.asarray(v).nbytes > MAX_RECIPE_BYTES for v in arrays.values()):
        return skip  # a broadcast of 10^7 samples stays one
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            return recipe(rng, arrays)
        except (TypeError, ValueError, IndexError):
            return skip


def _scale(rng, a: Arrays) -> tuple[Arrays, str]:
    f = SCALES[int(rng.integers(len(SCALES)))]
    return _each(a, lambda x: (x.astype(np.float64) * f).astype(np.float32)), f"x{f:g}"


def _equal(rng, a: Arrays) -> tuple[Arrays, str]:
    v = EQUAL[int(rng.integers(len(EQUAL)))]
    return _each(a, lambda x: np.full(x.shape, v, np.float32)), f"all {v:g}"


def _element(rng, a: Arrays) -> tuple[Arrays, str]:
    v = ELEMENT[int(rng.integers(len(ELEMENT)))]
    key = list(a)[int(rng.integers(len(a)))]
    x = np.array(a[key], dtype=np.float32)
    if x.size:
        x.reshape(-1)[int(rng.integers(x.size))] = v
    return {**a, key: x}, f"one element of '{key}' {v:g}"


def _outlier(rng, a: Arrays) -> tuple[Arrays, str]:
    f = (1e3, 1e6, 1e20, -1e20)[int(rng.integers(4))]
    key = list(a)[int(rng.integers(len(a)))]
    x = np.array(a[key], dtype=np.float32)
    if x.size:
        x.reshape(-1)[int(rng.integers(x.size))] *= f
    return {**a, key: x}, f"one element of '{key}' x{f:g}"


def _halves(rng, a: Arrays) -> tuple[Arrays, str]:
    def fn(x: np.ndarray) -> np.ndarray:
        y = x.astype(np.float64)
        y[: len(y) // 2] *= 1e30
        y[len(y) // 2 :] *= 1e-30
        return y.astype(np.float32)

    return _each(a, fn), "half the samples x1e30, half x1e-30"


def _count(rng, a: Arrays) -> tuple[Arrays, str]:
    n = (1, 1, 0, 2, 64)[int(rng.integers(5))]
    return _each(a, lambda x: np.resize(x, (n, *x.shape[1:])) if n > len(x) else x[:n]), f"{n} samples"


def _dtype(rng, a: Arrays) -> tuple[Arrays, str]:
    kinds = {
        "float64 x1e300": lambda x: x.astype(np.float64) * 1e300,
        "float64 x1e-300": lambda x: x.astype(np.float64) * 1e-300,
        "float16": lambda x: x.astype(np.float16),
        "int8": lambda x: (x * 100).astype(np.int8),
        "uint8": lambda x: (np.abs(x) * 100).astype(np.uint8),
        "int64 huge": lambda x: np.full(x.shape, 2**62, np.int64),
        "uint64 max": lambda x: np.full(x.shape, 2**64 - 1, np.uint64),
        "bool": lambda x: x > 0,
        "complex64": lambda x: x.astype(np.complex64),
        "object": lambda x: x.astype(object),
        "str": lambda x: x.astype(str),
        "datetime": lambda x: np.zeros(x.shape, "datetime64[s]"),
        "record": lambda x: np.zeros(x.shape, [("a", "<f4")]),
        "big-endian": lambda x: x.astype(">f4"),
        "fortran": lambda x: np.asfortranarray(x),
    }
    key = list(kinds)[int(rng.integers(len(kinds)))]
    return _each(a, kinds[key]), key


def _shape(rng, a: Arrays) -> tuple[Arrays, str]:
    kinds = {
        "no batch dim": lambda x: x.reshape(x.shape[0], *x.shape[2:]) if x.ndim > 1 and x.shape[1] == 1 else x,
        "extra leading dim": lambda x: x[None],
        "extra trailing dim": lambda x: x[..., None],
        "reversed": lambda x: np.ascontiguousarray(x.T),
        "flat": lambda x: x.reshape(-1),
        "scalar": lambda x: np.float32(x.reshape(-1)[0] if x.size else 0),
        "one element short": lambda x: x.reshape(x.shape[0], -1)[:, :-1],
        "10^7 samples (broadcast)": lambda x: np.broadcast_to(x[:1], (10**7, *x.shape[1:])),
    }
    key = list(kinds)[int(rng.integers(len(kinds)))]
    return _each(a, kinds[key]), key


RECIPES = (_scale, _scale, _equal, _element, _element, _outlier, _halves, _count, _dtype, _dtype, _shape, _shape)


def _samples(a: Arrays, limit: int | None = MAX_LISTED) -> Iterator[list[np.ndarray]]:
    """The samples (a 0-d array repeats in each), at most ``limit`` of them."""
    xs = list(a.values())
    n = min((len(x) for x in xs if np.ndim(x)), default=1)
    for i in range(n if limit is None else min(n, limit)):
        yield [x[i] if np.ndim(x) else x for x in xs]


def _form(rng, a: Arrays) -> tuple[Callable[[], object], str, bool]:
    """(calibration factory, description, whether the arrays stand for it unchanged)."""
    names = list(a)
    single = len(names) == 1

    def per_sample(s: list[np.ndarray]) -> object:
        return s[0] if single else list(s)

    forms: dict[str, Callable[[], object]] = {
        "arrays": lambda: next(iter(a.values())) if single else dict(a),
        "list of samples": lambda: [per_sample(s) for s in _samples(a)],
        "generator": lambda: (per_sample(s) for s in _samples(a, None)),
        "generator function": lambda: lambda: (per_sample(s) for s in _samples(a, None)),
        "dicts per sample": lambda: [dict(zip(names, s)) for s in _samples(a)],
        "None item": lambda: [*[per_sample(s) for s in _samples(a)], None],
        "ragged list": lambda: [np.atleast_1d(x)[:MAX_LISTED].tolist()[: max(1, np.size(x) - 1)] for x in a.values()],
        "wrong key": lambda: {f"{k}_typo": v for k, v in a.items()},
        "int keys": lambda: {i: v for i, v in enumerate(a.values())},
        "swapped inputs": lambda: dict(zip(names, reversed(list(a.values())))),
        "extra input": lambda: {**a, "extra": next(iter(a.values()))},
        "positional": lambda: {f"arr_{i}": v for i, v in enumerate(a.values())},
        "a string": lambda: "not a path\x00",
        "None": lambda: None,
        "a set": lambda: {1, 2},
    }
    key = list(forms)[int(rng.integers(len(forms)))] if rng.random() < 0.35 else "arrays"
    return forms[key], key, key == "arrays"


def calib_case(src: Source, seed: int) -> QuantCase:
    """The source model with one to three calibration recipes applied, in a form drawn from the seed."""
    rng = _rng("calib", seed)
    names = load(src.model).inputs
    arrays: Arrays = dict(zip(names, src.calib))
    edits = []
    for _ in range(int(rng.integers(1, 3)) if rng.random() < 0.9 else 3):
        recipe = RECIPES[int(rng.integers(len(RECIPES)))]
        arrays, desc = _apply(recipe, rng, arrays)
        edits.append(desc)
    factory, form, plain = _form(rng, arrays)
    edits.append(form)
    user_text = form == "a string"
    saveable = plain and all(isinstance(v, np.ndarray) for v in arrays.values())
    small = all(np.asarray(v).nbytes <= 64 << 20 for v in arrays.values())
    return QuantCase(src.model, factory, "; ".join(edits), arrays if saveable and small else None, user_text=user_text)
