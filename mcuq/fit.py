"""The flash/RAM fit check of a compiled model on a board.

``check_fit`` runs before anything is built, from the compiled model's ``Footprint`` (what ``footprint``
measures) and the measured constants below; ``check_fit_elf`` repeats it exactly from a linked ELF's section
sizes. A model that does not fit raises ``FitError`` with one line: needed, available, by how many bytes, and
the largest weight array (flash) or the largest layer (RAM).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .boards import Board
from .codegen.project import kernel_names
from .errors import FitError
from .kernels import code_bytes_of

if TYPE_CHECKING:
    from .codegen.emit import Model
    from .ir import Graph
    from .lower import Layer
    from .plan import Plan

LIBGCC_BYTES = 512  # __aeabi_lmul and friends on cores without SMULL (measured: < 100 B)
# The generated <prefix>.c beyond its constant arrays: invoke prologue + per layer a params struct, a call and
# a status check. Measured (cortex-m4): 78-110 B per layer on the MLPerf Tiny models, ~50 B fixed.
MODEL_BASE_BYTES = 64
LAYER_CODE_BYTES = 128
HOOK_CALL_BYTES = 40  # with -DMCUQ_LAYER_HOOKS: two calls per layer (measured 28-31 B) + the op name string
# Vector table, reset/fault handlers, semihosting I/O and main: a minimal version measured 1,026 B (M4).
STARTUP_BYTES = 2048
STATIC_RAM_BYTES = 256  # main's and startup's own .bss/.data besides the model's buffers (measured 88 B)


# -- fit check -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FitReport:
    """What a model needs on a board: flash and RAM as named parts, and what the board has (None: unchecked)."""

    board: str
    flash: tuple[tuple[str, int], ...]
    ram: tuple[tuple[str, int], ...]
    flash_available: int | None
    ram_available: int | None
    exact: bool = False  # True: section sizes of a linked ELF; False: estimated before building

    @property
    def flash_needed(self) -> int:
        return sum(n for _, n in self.flash)

    @property
    def ram_needed(self) -> int:
        return sum(n for _, n in self.ram)

    @property
    def flash_over(self) -> int:
        return 0 if self.flash_available is None else max(0, self.flash_needed - self.flash_available)

    @property
    def ram_over(self) -> int:
        return 0 if self.ram_available is None else max(0, self.ram_needed - self.ram_available)

    @property
    def fits(self) -> bool:
        return self.flash_over == 0 and self.ram_over == 0

    def lines(self) -> list[str]:
        """Two human-readable lines: flash and RAM, needed of available, and the parts."""
        kind = "" if self.exact else " (estimate)"
        out = []
        for what, parts, have in (("flash", self.flash, self.flash_available), ("RAM", self.ram, self.ram_available)):
            need = sum(n for _, n in parts)
            of = f" of {have:,} B ({100.0 * need / have:.1f} %)" if have else ""
            out.append(f"{what}{kind}: {need:,} B{of}: " + ", ".join(f"{k} {n:,}" for k, n in parts))
        return out


@dataclass(frozen=True)
class Footprint:
    """What the fit check needs to know of a compiled model (:func:`footprint` measures it)."""

    source: str  # the model file as the user named it (or the prefix), like every other error
    kernels: tuple[str, ...]  # the kernels the generated C calls, sorted
    kernel_calls: int  # layers that call a kernel
    op_names: tuple[str, ...]  # each layer's op name, as the layer hooks print it
    const_bytes: int  # every constant array of the generated C
    arena_bytes: int
    input_bytes: int
    output_bytes: int
    largest_weight: str  # named in a flash error
    largest_layer: str  # named in a RAM error


def footprint(graph: Graph, layers: tuple[Layer, ...], plan: Plan, model: Model) -> Footprint:
    """Measure what ``check_fit`` needs from a compiled model: the graph, its layers, the arena plan and the
    generated C's model description."""
    return Footprint(
        source=graph.source or model.prefix,
        kernels=tuple(sorted(kernel_names(model))),
        kernel_calls=sum(1 for c in model.calls if c.kernel),
        op_names=tuple(c.op_name for c in model.calls),
        const_bytes=model.const_bytes,
        arena_bytes=plan.arena_size,
        input_bytes=sum(graph.tensors[n].nbytes for n in graph.inputs),
        output_bytes=sum(graph.tensors[n].nbytes for n in graph.outputs),
        largest_weight=_largest_weight(graph, layers),
        largest_layer=_largest_layer(graph, layers),
    )


def _names(arg: str | tuple[str, ...]) -> tuple[str, ...]:
    return (arg,) if isinstance(arg, str) else arg


def _largest_weight(graph: Graph, layers: tuple[Layer, ...]) -> str:
    best: tuple[int, str, str] | None = None
    for layer in layers:
        for a in layer.inputs:
            for n in _names(a):
                t = layer.consts[n] if n in layer.consts else graph.tensors.get(n)
                if t is not None and t.data is not None and (best is None or t.data.nbytes > best[0]):
                    best = (t.data.nbytes, t.name, f"op {layer.op.index} {layer.op.type_name}")
    return "none" if best is None else f"'{best[1]}' {best[0]:,} B ({best[2]})"


def _largest_layer(graph: Graph, layers: tuple[Layer, ...]) -> str:
    best: tuple[int, str] | None = None
    for layer in layers:
        names = {n for a in (*layer.inputs, *layer.outputs) for n in _names(a) if n}
        live = sum(graph.tensors[n].nbytes for n in names if n in graph.tensors and n not in layer.consts
                   and not graph.tensors[n].is_const)  # fmt: skip
        if best is None or live > best[0]:
            op = layer.op
            name = op.name if len(op.name) <= 60 else op.name[:57] + "..."
            best = (live, f"op {op.index} {op.type_name} '{name}'")
    return "none" if best is None else f"{best[1]}, {best[0]:,} B of inputs and outputs"


def _check(board: Board, report: FitReport, source: str, fp: Footprint | None) -> FitReport:
    problems = []
    if report.flash_over:
        p = f"needs {report.flash_needed:,} B of flash, has {report.flash_available:,} B ({report.flash_over:,} B over)"
        problems.append(p + (f"; largest weight array: {fp.largest_weight}" if fp is not None else ""))
    if report.ram_over:
        p = f"needs {report.ram_needed:,} B of RAM, has {report.ram_available:,} B ({report.ram_over:,} B over)"
        problems.append(p + (f"; largest layer: {fp.largest_layer}" if fp is not None else ""))
    if problems:
        raise FitError(
            f"{source}: does not fit {board.name}: {'; '.join(problems)}. "
            "Choose a board with more memory (`mcuq boards`) or a smaller model."
        )
    return report


def check_fit(board: Board, fp: Footprint, hooks: bool = False) -> FitReport:
    """Estimate flash and RAM before building (``hooks``: built with -DMCUQ_LAYER_HOOKS) and raise ``FitError``
    with the numbers when the model does not fit. Boards without sizes (the host) are never refused."""
    model_code = MODEL_BASE_BYTES + LAYER_CODE_BYTES * fp.kernel_calls
    if hooks:
        model_code += sum(HOOK_CALL_BYTES + len(name.encode()) + 1 for name in fp.op_names)
    flash = (
        ("constants", fp.const_bytes),
        ("model code", model_code),
        ("kernels", code_bytes_of(fp.kernels) + LIBGCC_BYTES),
        ("startup and main", STARTUP_BYTES),
    )
    ram = (
        ("arena", fp.arena_bytes),
        ("inputs", fp.input_bytes),
        ("outputs", fp.output_bytes),
        ("stack", board.stack_size),
        ("other static data", STATIC_RAM_BYTES),
    )
    report = FitReport(board.name, flash, ram, board.flash_size, board.ram_size)
    return _check(board, report, fp.source, fp)


def check_fit_elf(
    board: Board, sizes: dict[str, int], fp: Footprint | None = None, source: str | None = None
) -> FitReport:
    """The exact check after linking, from section sizes as ``arm-none-eabi-size`` counts them (and as
    ``mcuq.firmware.elfsize.elf_sizes`` returns them): ``text`` = every allocated read-only section (code and
    read-only data, the weights among it), ``data`` = initialised RAM (its initial values also sit in flash),
    ``bss`` = zeroed RAM (arena, buffers and the NOLOAD stack). flash = text + data, RAM = data + bss. Optional
    ``code``/``rodata`` (text = code + rodata) and ``arena``/``stack`` (parts of bss) only refine the breakdown;
    other keys are ignored. ``fp`` (the model's footprint) names the largest weight array or layer in the error."""
    for key in ("text", "data", "bss"):
        if not isinstance(sizes.get(key), int) or sizes[key] < 0:
            raise ValueError(f"check_fit_elf: sizes['{key}'] must be a non-negative int, got {sizes.get(key)!r}")
    text, data, bss = sizes["text"], sizes["data"], sizes["bss"]
    code, arena, stack = sizes.get("code"), sizes.get("arena", 0), sizes.get("stack", 0)
    if isinstance(code, int) and 0 <= code <= text:
        flash: tuple[tuple[str, int], ...] = (("code", code), ("rodata", text - code), ("data", data))
    else:
        flash = (("text", text), ("data", data))
    if 0 <= arena + stack <= bss:
        ram = (("data", data), ("arena", arena), ("stack", stack), ("other bss", bss - arena - stack))
        ram = tuple(part for part in ram if part[1] or part[0] in ("data", "other bss"))
    else:
        ram = (("data", data), ("bss", bss))
    report = FitReport(board.name, flash, ram, board.flash_size, board.ram_size, exact=True)
    return _check(board, report, source or (fp.source if fp is not None else "firmware"), fp)
