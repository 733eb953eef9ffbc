"""What the firmware side needs from a compiled model, as one typed value: ``FirmwareImage``.

Building, running and profiling firmware (project.py, qemu.py, profile.py) read only this, never the API's
``CompiledModel``. They also take any object with a ``firmware_image()`` method (``CompiledModel`` has one), so
``profile(compile_model(...), board)`` reads as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from ..fit import Footprint, footprint

if TYPE_CHECKING:
    from ..codegen.emit import Model
    from ..ir import Graph, Tensor
    from ..lower import Layer
    from ..plan import Plan


@dataclass(frozen=True)
class LayerInfo:
    """One layer as the profile reports it."""

    op: str  # the op's type name, e.g. "CONV_2D"
    name: str  # the op's name in the model
    shape: tuple[int, ...]  # output shape
    macs: int
    kernel: str = ""  # the C kernel it calls ("" for an alias layer, which calls none)


@dataclass(frozen=True, eq=False)
class FirmwareImage:
    """A compiled model as firmware sees it: the generated C and the facts its builders and runners need."""

    model: Model  # the generated C's description: prefix, ports, calls, constant arrays, sizes
    files: Mapping[str, str]  # the model's own files: <prefix>.c, <prefix>.h
    inputs: tuple[Tensor, ...]  # the input tensors, in record order
    outputs: tuple[Tensor, ...]  # the output tensors, in record order
    layers: tuple[LayerInfo, ...]
    footprint: Footprint  # what the fit check needs

    @property
    def prefix(self) -> str:
        return self.model.prefix

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)


class HasFirmwareImage(Protocol):
    def firmware_image(self) -> FirmwareImage: ...


ImageLike = FirmwareImage | HasFirmwareImage


def as_image(x: ImageLike) -> FirmwareImage:
    return x if isinstance(x, FirmwareImage) else x.firmware_image()


def firmware_image(
    graph: Graph, layers: tuple[Layer, ...], plan: Plan, model: Model, files: Mapping[str, str]
) -> FirmwareImage:
    """The firmware's view of a compiled model (its graph, layers, arena plan, generated model and files)."""
    return FirmwareImage(
        model=model,
        files=files,
        inputs=tuple(graph.tensors[p.tensor] for p in model.inputs),
        outputs=tuple(graph.tensors[p.tensor] for p in model.outputs),
        layers=tuple(
            LayerInfo(la.op.type_name, la.op.name, tuple(graph.tensors[la.outputs[0]].shape), la.macs, la.kernel_name)
            for la in layers
        ),
        footprint=footprint(graph, layers, plan, model),
    )
