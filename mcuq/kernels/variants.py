"""The table of fast kernel variants (``mcuq.lower.specialize`` applies it): which portable kernel each fast
kernel replaces, on which path, for which params. The modules that define fast kernels register them here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .cstruct import CStruct
from .registry import Kernel

PATHS = ("portable", "dsp", "mve")


@dataclass(frozen=True)
class Variant:
    """A fast kernel that may replace the portable kernel ``replaces`` on ``path``.

    ``supports(params)``: the shapes and values it handles (checked at compile time). ``fold_bias``: the layer's
    args are (input, weights, bias or "", output) and the kernel takes ``bias - input_zp * sum(w)`` per output
    channel (always present), weights laid out as the portable kernel's. ``params(layer)``: new params for the
    kernel (default: the portable params unchanged). ``weights(w, params)``: the weights in the layout the
    kernel reads fastest (default: unchanged)."""

    replaces: str
    path: str
    kernel: Kernel
    supports: Callable[[Any], bool] = lambda params: True
    fold_bias: bool = False
    params: Callable[[Any], CStruct] | None = None  # takes the portable Layer
    weights: Callable[[np.ndarray, Any], np.ndarray] | None = None


VARIANTS: list[Variant] = []


def variant(v: Variant) -> Variant:
    assert v.path in PATHS[1:], v.path
    VARIANTS.append(v)
    return v
