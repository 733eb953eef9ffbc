"""Registry of numpy mirrors of the C kernels, keyed by C kernel name.

A mirror has the signature ``fn(layer, inputs, out_shapes) -> list[np.ndarray]``: ``inputs`` are numpy arrays
(or None for ""; a list of arrays for a tuple arg) in ``layer.inputs`` order, with their tensor shapes;
``out_shapes`` the output tensors' shapes. It must compute exactly what the C kernel computes, from the same
``layer.params``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..registry import registrar

RefFn = Callable[..., list[np.ndarray]]
REFERENCES: dict[str, RefFn] = {}


#: ``@reference(*kernel_names)`` registers the decorated function as the numpy mirror of each C kernel.
reference = registrar(REFERENCES, "references")
