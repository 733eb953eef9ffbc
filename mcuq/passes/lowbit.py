"""Detect weights that fit fewer bits: an int8 CONV2D / DEPTHWISE_CONV2D / FULLY_CONNECTED weight tensor whose
values all lie in a narrow range becomes packed (``DType.INT4`` for [-7, 7], ``INT2`` for {-1, 0, 1}, ``INT1``
for {-1, +1}), so that flash holds it at 4, 2 or 1 bits a value and lowering picks the packed kernel.

The values do not change, so neither do the results: the packed kernels compute what the int8 ones compute.
Only constant, symmetric (zero point 0) weights read by weighted ops alone, with int8 input activations, are
narrowed. ``compile_model(..., pack_weights=False)`` (``--no-pack-weights``) leaves them int8.
"""

from __future__ import annotations

from dataclasses import replace

from ..frontend.weight_bits import DTYPES, WEIGHT_OPS, fits, weight_readers
from ..ir import DType, Graph, Tensor


def pack_weights(g: Graph) -> Graph:
    readers = weight_readers(g.ops)
    narrowed: dict[str, Tensor] = {}
    for name in readers:
        t = g.tensors[name]
        if t.dtype is not DType.INT8 or t.data is None or t.qparams is None:
            continue
        if any(z != 0 for z in t.qparams.zero_point):
            continue
        users = [op for op in g.ops if name in op.inputs]
        if any(op.kind not in WEIGHT_OPS or op.inputs.index(name) != 1 for op in users):
            continue
        if any(g.tensors[op.inputs[0]].dtype is not DType.INT8 for op in users):
            continue
        bits = fits(t.data)
        if bits < 8:
            narrowed[name] = Tensor(t.name, t.shape, DTYPES[bits], t.qparams, t.data)
    if not narrowed:
        return g
    return replace(g, tensors={n: narrowed.get(n, t) for n, t in g.tensors.items()})
