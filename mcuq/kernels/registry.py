"""The kernel registry: one entry per C kernel, the single contract between Python and runtime_c.

Lowering picks an entry and fills its params dataclass; codegen writes the call from the entry (name, whether it
takes an ``mcuq_context``); the planner reserves its scratch bytes in the arena; project assembly copies its C
sources; the fit check adds its code bytes; the tests check each entry against the C headers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .cstruct import CStruct


def no_scratch(params: Any) -> int:
    return 0


@dataclass(frozen=True)
class Kernel:
    """One C kernel.

    ``name`` is the C function, called as ``name([ctx,] &params, inputs..., outputs...)``; ``sources`` its .c
    files relative to runtime_c/src (with those of kernels it calls); ``params`` the dataclass mirroring its C
    params struct. ``dtype`` names the operand types (s8: int8 activations and weights; s16, s4 later) and
    ``variant`` the instruction set it is written for (portable C, dsp, mve). A kernel with ``context`` takes a
    ``const mcuq_context *`` first and needs ``scratch(params)`` bytes of it, mirrored by the C function
    ``<name>_scratch_size``. ``in_place``: the output may share input 0's buffer. ``code_bytes``: .text bytes of
    its sources, the largest over the Cortex-M cores (measured with arm-none-eabi-gcc 12.2 -O2
    -ffunction-sections; tests/unit/test_boards.py checks the figures still hold).

    ``overlap(params)``, when given, says where the output buffer may lie relative to each input, one entry per
    input argument: None (the output must not overlap that input), or D, an offset in bytes such that the kernel
    computes exactly the same bits with ``output == input + d`` for every ``d <= D`` (d may be negative: the
    output starts before the input), as long as the output's bytes outside the input are free. D = 0 is "in
    place"; a negative D is a line buffer (the output trails the rows still to be read); a positive D means the
    output may even start after the input's start. ``in_place`` alone means ``overlap = (0, None, ...)``. The
    planner (``mcuq.plan``) uses it only when that input is no longer needed after the kernel.
    """

    name: str
    params: type[CStruct]
    sources: tuple[str, ...]
    code_bytes: int
    dtype: str = "s8"
    variant: str = "portable"
    context: bool = False
    scratch: Callable[[Any], int] = no_scratch
    in_place: bool = False
    overlap: Callable[[Any], tuple[int | None, ...]] | None = None

    @property
    def params_type(self) -> str:
        return self.params.C_NAME

    @property
    def scratch_function(self) -> str:
        return f"{self.name}_scratch_size"

    def scratch_bytes(self, params: CStruct) -> int:
        return int(self.scratch(params)) if self.context else 0

    def overlaps(self, params: CStruct, n_inputs: int) -> tuple[int | None, ...]:
        """``overlap(params)`` padded to ``n_inputs`` entries (see the class docstring)."""
        if self.overlap is not None:
            got = tuple(self.overlap(params))
        else:
            got = (0,) if self.in_place else ()
        return (got + (None,) * n_inputs)[:n_inputs]


KERNELS: dict[str, Kernel] = {}
# C preprocessor constants that Python relies on (dimension limits): name -> value. The header that defines each
# is checked against this by tests/unit/test_kernel_registry.py, so the two cannot drift apart.
C_DEFINES: dict[str, int] = {}


def c_define(name: str, value: int) -> int:
    """Declare that a runtime header ``#define``s ``name`` as ``value``; returns ``value``."""
    assert C_DEFINES.get(name, value) == value, name
    C_DEFINES[name] = value
    return value


def register(k: Kernel) -> Kernel:
    assert k.name not in KERNELS, f"kernel {k.name} registered twice"
    assert isinstance(k.params, type) and issubclass(k.params, CStruct) and k.params.C_NAME, k.name
    KERNELS[k.name] = k
    return k


def sources_of(kernels: set[str] | list[str]) -> list[str]:
    """The runtime .c files (relative to runtime_c/src) that the named kernels need, sorted, each once."""
    return sorted({s for name in kernels for s in KERNELS[name].sources})


def code_bytes_of(kernels: set[str] | list[str]) -> int:
    """Code bytes of every source the named kernels need, each counted once: a source's bytes are those of the
    kernel it defines (its first source), also when another kernel lists it as a callee."""
    owner = {k.sources[0]: k.code_bytes for k in KERNELS.values()}
    return sum(owner[s] for s in sources_of(kernels))
