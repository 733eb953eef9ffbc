"""The lowered form of an op: which C kernel to call, with which integer parameters, on which buffers.

Lowering is where every float is turned into integers (multipliers, shifts, offsets, clamp bounds), at compile
time. Each op family registers one function per OpKind with ``@lowering(OpKind.X)``; it takes the graph and
the op and returns a ``Layer``. ``mcuq.reference`` registers a numpy mirror per kernel name with the same
parameters, so the numpy model is the C runtime's twin.

Conventions the codegen relies on:
  * ``kernel`` is the C function; it is called as
    ``status = kernel(&params, arg0, arg1, ..., out0, ...)`` where ``args`` lists input tensor names then
    output tensor names. Each arg is passed as a pointer typed from the tensor's dtype
    (``const int8_t *`` for inputs, ``int8_t *`` for outputs, ``const int32_t *`` for an int32 bias).
    ``""`` passes NULL (an absent optional input). A tuple of names passes a ``const int8_t *const[]``
    array of pointers (CONCATENATION's inputs).
  * ``params`` fills a ``static const <params_type>`` with designated initializers, in insertion order.
    An ``int`` value is an ``int32_t`` field. A numpy array value is emitted as its own
    ``static const <ctype> name[]`` array (C type from the array's dtype) and the field holds a pointer to it
    (declare it ``const int32_t *`` / ``const int8_t *`` ... in the struct).
  * ``alias`` layers (RESHAPE, SQUEEZE) emit no call: the output shares the input's memory.
  * ``consts`` holds constant tensors created by lowering (e.g. a repacked weight) that args may name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..errors import ModelError
from ..ir import Graph, Op, OpKind, Tensor

ParamValue = int | np.ndarray
Arg = str | tuple[str, ...]


@dataclass(frozen=True, eq=False)
class Layer:
    op: Op
    kernel: str
    params_type: str
    params: dict[str, ParamValue]
    args: tuple[Arg, ...]
    n_outputs: int = 1
    # multiply-accumulates with weights (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED), the convention of
    # MLPerf Tiny's and ../shared/models' MAC counts; pooling, softmax and elementwise ops count 0
    macs: int = 0
    alias: bool = False
    consts: dict[str, Tensor] = field(default_factory=dict)

    @property
    def inputs(self) -> tuple[Arg, ...]:
        return self.args[: len(self.args) - self.n_outputs]

    @property
    def outputs(self) -> tuple[str, ...]:
        outs = self.args[len(self.args) - self.n_outputs :]
        return tuple(str(o) for o in outs)

    def p(self, name: str) -> ParamValue:
        return self.params[name]


LowerFn = Callable[[Graph, Op], Layer]
LOWERINGS: dict[OpKind, LowerFn] = {}


def lowering(*kinds: OpKind) -> Callable[[LowerFn], LowerFn]:
    """Register ``fn`` as the lowering of each of ``kinds``."""

    def deco(fn: LowerFn) -> LowerFn:
        for k in kinds:
            assert k not in LOWERINGS, f"two lowerings for {k}"
            LOWERINGS[k] = fn
        return fn

    return deco


def fail(g: Graph, op: Op, reason: str) -> ModelError:
    """The error to raise when an op's parameters are outside what mcuq (or TFLite) supports."""
    return ModelError(g.source, f"{op.where}: {reason}")
