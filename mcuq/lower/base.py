"""The lowered form of an op: which C kernel to call, with which integer parameters, on which buffers.

Lowering is where every float is turned into integers (multipliers, shifts, offsets, clamp bounds), at compile
time. Each op family registers one function per OpKind with ``@lowering(OpKind.X)``; it takes the graph and
the op and returns a ``Layer``. ``mcuq.reference`` registers a numpy mirror per kernel name that computes from
the same parameters, so the numpy model is the C runtime's twin.

Conventions the codegen relies on:
  * ``kernel`` is an entry of the kernel registry (``mcuq.kernels``) and ``params`` an instance of its params
    dataclass, which mirrors the C struct field for field; the call is
    ``status = kernel([&ctx,] &params, arg0, arg1, ..., out0, ...)`` where ``args`` lists input tensor names
    then output tensor names. Each arg is passed as a pointer typed from the tensor's dtype
    (``const int8_t *`` for inputs, ``int8_t *`` for outputs, ``const int32_t *`` for an int32 bias).
    ``""`` passes NULL (an absent optional input). A tuple of names passes a ``const int8_t *const[]``
    array of pointers (CONCAT's inputs).
  * A layer without a kernel is an alias (RESHAPE): it emits no call and its output shares the input's memory.
  * ``consts`` holds constant tensors created by lowering (e.g. a repacked weight) that args may name.
  * ``base`` is set by ``mcuq.lower.specialize`` on a layer whose portable kernel was replaced by a fast one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import ModelError
from ..ir import Graph, Op, OpKind, Tensor
from ..kernels import CStruct, Kernel, get
from ..registry import registrar

Arg = str | tuple[str, ...]


@dataclass(frozen=True, eq=False)
class Layer:
    op: Op
    kernel: Kernel | None  # None: an alias layer
    params: CStruct | None
    args: tuple[Arg, ...]
    n_outputs: int = 1
    # multiply-accumulates with weights (CONV2D, DEPTHWISE_CONV2D, FULLY_CONNECTED), the convention of
    # MLPerf Tiny's and ../shared/models' MAC counts; pooling, softmax and elementwise ops count 0
    macs: int = 0
    consts: dict[str, Tensor] = field(default_factory=dict)
    # the portable layer this one replaces (``mcuq.lower.specialize``): same op, same results; the numpy
    # reference computes from it
    base: Layer | None = None
    # the layers a band runs together (``mcuq.lower.bands``), in order; empty for any other layer
    parts: tuple[Layer, ...] = ()

    @property
    def alias(self) -> bool:
        return self.kernel is None

    @property
    def kernel_name(self) -> str:
        return self.kernel.name if self.kernel is not None else ""

    @property
    def base_kernel_name(self) -> str:
        """The portable kernel this layer's kernel stands for (its own name on the portable path)."""
        return self.base.kernel_name if self.base is not None else self.kernel_name

    @property
    def scratch_bytes(self) -> int:
        return self.kernel.scratch_bytes(self.params) if self.kernel is not None and self.params is not None else 0

    @property
    def inputs(self) -> tuple[Arg, ...]:
        return self.args[: len(self.args) - self.n_outputs]

    @property
    def outputs(self) -> tuple[str, ...]:
        outs = self.args[len(self.args) - self.n_outputs :]
        return tuple(str(o) for o in outs)

    def p(self, path: str) -> Any:
        """A parameter by dotted path, e.g. ``layer.p("activation.min")``."""
        assert self.params is not None, f"{self.op.where} is an alias layer"
        return get(self.params, path)


LowerFn = Callable[[Graph, Op], Layer]
LOWERINGS: dict[OpKind, LowerFn] = {}


#: ``@lowering(*kinds)`` registers the decorated function as the lowering of each of ``kinds``.
lowering = registrar(LOWERINGS, "lowerings")


def fail(g: Graph, op: Op, reason: str) -> ModelError:
    """The error to raise when an op's parameters are outside what mcuq (or TFLite) supports."""
    return ModelError(g.source, f"{op.where}: {reason}")
