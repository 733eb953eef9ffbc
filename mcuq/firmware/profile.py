"""Per-layer instruction counts of a model on an emulated board, and its flash/RAM: what `mcuq bench` prints.

The firmware is built with -DMCUQ_LAYER_HOOKS and run in qemu-system-arm with the instruction-counting plugin
(plugin.py), which records the executed-instruction count at the entry of four marker functions of the firmware's
main.c: mcuq_invoke_begin/mcuq_invoke_end (around each ``<prefix>_invoke``) and mcuq_layer_begin/mcuq_layer_end
(around each layer). The counts are exact and repeatable (QEMU executes the same instructions every run).

What the numbers include:
- a layer's instructions run from the entry of mcuq_layer_begin to the entry of mcuq_layer_end: the kernel call
  with its argument set-up and status check, plus a constant hook overhead: the body of mcuq_layer_begin and
  the set-up of the mcuq_layer_end call (8 instructions on the Cortex-M4 with GCC 12 -O2). An alias layer such
  as RESHAPE runs no kernel and shows exactly this overhead;
- an inference's instructions run from the entry of mcuq_invoke_begin to the entry of mcuq_invoke_end: all of
  ``<prefix>_invoke`` (argument checks, every layer) plus the hook calls between layers. ``glue`` is the part
  of it outside the layers' counts (a few instructions per layer).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from ..errors import BuildError, printable
from ..records import normalise_inputs
from . import qemu
from .elfsize import code_by_owner, elf_sizes, format_sizes
from .image import FirmwareImage, ImageLike, as_image
from .plugin import Events, plugin_args, read_events

MARKERS = {"mcuq_invoke_begin": 0, "mcuq_invoke_end": 1, "mcuq_layer_begin": 2, "mcuq_layer_end": 3}
INVOKE_BEGIN, INVOKE_END, LAYER_BEGIN, LAYER_END = 0, 1, 2, 3


@dataclass(frozen=True)
class LayerProfile:
    index: int
    op: str  # OpKind value, e.g. "CONV_2D"
    name: str  # the op's name in the model
    shape: tuple[int, ...]  # output shape
    macs: int
    instructions: int
    kernel: str = ""  # the C kernel the layer calls ("" for an alias layer)

    @property
    def instructions_per_mac(self) -> float | None:
        return self.instructions / self.macs if self.macs else None


@dataclass(frozen=True)
class Profile:
    model: str
    board: str
    layers: tuple[LayerProfile, ...]  # counts of the first inference
    invokes: tuple[int, ...]  # instructions of each inference (entry of invoke_begin to entry of invoke_end)
    sizes: dict[str, int] = field(default_factory=dict)  # elfsize.elf_sizes of the profiled image
    weight_bytes: int = 0  # weights and biases of the model (tensor data), as in <PREFIX>_WEIGHT_BYTES
    stack_used: int | None = None  # measured high-water mark of the stack (painted at boot), bytes
    kernels: str = ""  # the kernel path compiled (portable, dsp, mve), when profiled from a CompiledModel
    # .text bytes of the linked functions per kernel, plus "model" (<prefix>.c) and "other" (elfsize.code_by_owner)
    kernel_code: dict[str, int] = field(default_factory=dict)
    plan: tuple[str, ...] = ()  # the arena plan's summary lines (Plan.describe() without the per-buffer lines)
    plan_numbers: dict[str, int] = field(default_factory=dict)  # the plan's integer fields (arena_size, ...)

    @property
    def macs(self) -> int:
        return sum(r.macs for r in self.layers)

    @property
    def instructions(self) -> int:
        """Instructions per inference (the first one; see ``invokes`` for all)."""
        return self.invokes[0]

    @property
    def layer_instructions(self) -> int:
        return sum(r.instructions for r in self.layers)

    @property
    def glue(self) -> int:
        """Instructions of an inference outside the layers' counts: hook calls, entry checks, return."""
        return self.instructions - self.layer_instructions

    @property
    def macs_per_instruction(self) -> float:
        return self.macs / self.instructions if self.instructions else 0.0

    @property
    def text_without_weights(self) -> int:
        """Read-only flash bytes (.text, .rodata: code, vectors, constants) less the model's weights and params."""
        return self.sizes.get("text", 0) - self.sizes.get("weights", 0)


_BUFFER_LINE = re.compile(r"^\s*\[\s*\d+, \+\s*\d+\)|^\s*caller buffer ")


def plan_summary(plan: Any) -> tuple[tuple[str, ...], dict[str, int]]:
    """The summary lines of ``plan.describe()`` (the arena, the bound, what each lever saved: every line that is
    not one buffer's placement) and the plan's integer fields; empty for None."""
    if plan is None:
        return (), {}
    lines = tuple(line for line in plan.describe() if not _BUFFER_LINE.match(line))
    numbers = {
        f.name: v for f in fields(plan) if isinstance(v := getattr(plan, f.name), int) and not isinstance(v, bool)
    }
    return lines, numbers


def kernel_code(elf_path: str | os.PathLike, image: FirmwareImage) -> dict[str, int]:
    """``elfsize.code_by_owner`` for the kernels the image's layers call (their sources from the registry)."""
    from ..kernels import KERNELS

    used = sorted({layer.kernel for layer in image.layers if layer.kernel})
    return code_by_owner(elf_path, {k: KERNELS[k].sources if k in KERNELS else () for k in used}, image.prefix)


def marker_addresses(elf_path: str | os.PathLike) -> dict[int, int]:
    """Marker id -> address of the marker function (Thumb bit cleared), from the ELF's symbol table."""
    with open(elf_path, "rb") as f:
        tab = ELFFile(f).get_section_by_name(".symtab")
        found = {}
        if isinstance(tab, SymbolTableSection):
            for s in tab.iter_symbols():
                if s.name in MARKERS and s["st_info"]["type"] == "STT_FUNC" and s["st_shndx"] != "SHN_UNDEF":
                    found[MARKERS[s.name]] = s["st_value"] & ~1
    missing = sorted(set(MARKERS) - {n for n, i in MARKERS.items() if i in found})
    if missing:
        raise BuildError(f"{elf_path}: no marker function {', '.join(missing)}; build the firmware with layer hooks")
    return found


def split_events(events: Events, n_layers: int) -> list[tuple[int, list[int]]]:
    """Per inference: (its instructions, each layer's instructions), from the plugin's events in order."""
    out: list[tuple[int, list[int]]] = []
    start = None
    layers: list[int] = []
    begin = None
    for mark, count in events.events:
        if mark == INVOKE_BEGIN:
            start, layers, begin = count, [], None
        elif mark == LAYER_BEGIN and start is not None:
            begin = count
        elif mark == LAYER_END and begin is not None:
            layers.append(count - begin)
            begin = None
        elif mark == INVOKE_END and start is not None:
            if len(layers) != n_layers:
                raise BuildError(
                    f"the firmware reported {len(layers)} layers in an inference, the model has {n_layers}"
                )
            out.append((count - start, layers))
            start = None
    if not out:
        raise BuildError("the firmware ran no complete inference (no invoke_begin/invoke_end markers were hit)")
    return out


def random_inputs(image: FirmwareImage, seed: int = 0) -> list[np.ndarray]:
    """One seeded random record: an array per model input, of its shape and dtype."""
    rng = np.random.default_rng(seed)
    arrays = []
    for t in image.inputs:
        info = np.iinfo(t.dtype.np)
        arrays.append(rng.integers(info.min, info.max + 1, size=t.shape).astype(t.dtype.np))
    return arrays


def profile(
    image: ImageLike,
    board: qemu.BoardLike = "mps2-an386",
    inputs: Any = None,
    timeout: float | None = None,
    keep_dir: str | os.PathLike | None = None,
) -> Profile:
    """Build ``image`` (a FirmwareImage or a CompiledModel) for ``board`` with layer hooks, run it in QEMU with the
    counting plugin on ``inputs`` (one seeded random record if None; a batch runs in one boot) and return the
    per-layer profile.

    A CompiledModel also gives the profile its kernel path and its plan's summary.

    Faults, hangs (``timeout`` seconds) and non-zero exits raise ``qemu.RunError`` with the guest's output."""
    compiled = None if isinstance(image, FirmwareImage) else image
    path = getattr(compiled, "kernels", "")
    plan_lines, plan_numbers = plan_summary(getattr(compiled, "plan", None))
    image = as_image(image)
    arrays, n, _ = normalise_inputs(image.inputs, random_inputs(image) if inputs is None else inputs)
    name = qemu.board_info(board).name
    with tempfile.TemporaryDirectory(prefix=f"mcuq-bench-{image.prefix}-") as tmp:
        base = Path(keep_dir) if keep_dir is not None else Path(tmp)
        base.mkdir(parents=True, exist_ok=True)
        # The build is cached by content: run_batch_info below links the same image again from the cache.
        elf = qemu.build_firmware(image, board, base / "probe", hooks=True)
        marks = marker_addresses(elf)
        # Sizes are those of the firmware as deployed, without the per-layer hooks (their calls and the layer-name
        # strings they pass are bench-only); the instructions are counted on the hooked build.
        plain = qemu.build_firmware(image, board, base / "sizes", hooks=False)
        sizes = elf_sizes(plain, image.prefix)
        code = kernel_code(plain, image)
        events_file = base / "mcuq_insn_events.txt"
        events_file.unlink(missing_ok=True)
        plugin = plugin_args(events_file, marks)
        run = qemu.run_batch_info(
            image, board, arrays, n, timeout=timeout, hooks=True, keep_dir=base, extra_args=plugin
        )
        events = read_events(events_file)
    runs = split_events(events, len(image.layers))
    if len(runs) != n:
        raise BuildError(f"{image.prefix} on {name}: {n} records sent, the counting plugin saw {len(runs)} inferences")
    rows = tuple(
        LayerProfile(i, layer.op, layer.name, layer.shape, layer.macs, count, layer.kernel)
        for i, (layer, count) in enumerate(zip(image.layers, runs[0][1]))
    )
    return Profile(
        image.prefix,
        name,
        rows,
        tuple(r[0] for r in runs),
        sizes,
        int(image.model.weight_bytes),
        run.stack_used,
        path if isinstance(path, str) else "",
        code,
        plan_lines,
        plan_numbers,
    )


def _short(name: str, width: int = 48) -> str:
    name = printable(name, len(name) * 10)  # escaped (terminal-safe, one line) before it is cut
    return name if len(name) <= width else "..." + name[-(width - 3) :]


def _ipm(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def format_kernel_code(p: Profile) -> list[str]:
    """One line per kernel (largest first), then the model's own functions and the rest of the code."""
    if not p.kernel_code:
        return []
    kernels = sorted(
        ((k, n) for k, n in p.kernel_code.items() if k not in ("model", "other")), key=lambda t: (-t[1], t[0])
    )
    width = max([len(k) for k, _ in kernels] + [len(p.model) + 8, 29])
    lines = [f"code (.text) by kernel, bytes of the linked functions (kernels {sum(n for _, n in kernels):,} B):"]
    lines += [f"  {k:<{width}} {n:>8,}" for k, n in kernels]
    lines.append(f"  {'model (' + p.model + '.c)':<{width}} {p.kernel_code.get('model', 0):>8,}")
    lines.append(f"  {'other (startup, main, libgcc)':<{width}} {p.kernel_code.get('other', 0):>8,}")
    return lines


def format_text(p: Profile) -> str:
    """The per-layer table, the totals, then flash and RAM, code per kernel and the arena plan."""
    kw = max([len(r.kernel) for r in p.layers] + [6])
    head = (
        f"{'#':>3}  {'op':<20} {'output shape':<18} {'MACs':>12} {'instructions':>14} {'instr/MAC':>9}  "
        f"{'kernel':<{kw}}  name"
    )
    path = f" (kernels {p.kernels})" if p.kernels else ""
    lines = [
        f"{p.model} on {p.board}{path}: executed instructions per layer (exact, QEMU TCG plugin)",
        "",
        head,
        "-" * len(head),
    ]
    for r in p.layers:
        lines.append(
            f"{r.index:>3}  {r.op:<20} {str(list(r.shape)):<18} {r.macs:>12,} {r.instructions:>14,} "
            f"{_ipm(r.instructions_per_mac):>9}  {r.kernel or '-':<{kw}}  {_short(r.name)}"
        )
    lines.append("-" * len(head))
    ipm = p.instructions / p.macs if p.macs else None
    lines += [
        f"{'':>3}  {'total (inference)':<20} {'':<18} {p.macs:>12,} {p.instructions:>14,} {_ipm(ipm):>9}",
        "",
        f"instructions per inference: {p.instructions:,} (layers {p.layer_instructions:,}, hooks and glue "
        f"{p.glue:,}); MACs per instruction: {p.macs_per_instruction:.3f}",
    ]
    if len(set(p.invokes)) > 1:
        lines.append(f"inferences: {len(p.invokes)}, instructions min {min(p.invokes):,} max {max(p.invokes):,}")
    if p.sizes:
        lines += ["", format_sizes(p.sizes), f"weights and biases (tensor data): {p.weight_bytes:,} B"]
        lines.append(f".text without the model's weights and parameters: {p.text_without_weights:,} B")
        if p.stack_used is not None:
            lines.append(f"stack measured in use: {p.stack_used:,} B of {p.sizes.get('stack', 0):,} B reserved")
    code = format_kernel_code(p)
    if code:
        lines += ["", *code]
    if p.plan:
        lines += ["", "arena plan:", *("  " + printable(line, 1000) for line in p.plan)]
    return "\n".join(lines)


def to_dict(p: Profile) -> dict[str, Any]:
    layers = []
    for r in p.layers:
        d = asdict(r)
        d["shape"] = list(r.shape)
        d["instructions_per_mac"] = r.instructions_per_mac
        layers.append(d)
    return {
        "model": p.model,
        "board": p.board,
        "kernels": p.kernels,
        "layers": layers,
        "totals": {
            "macs": p.macs,
            "instructions": p.instructions,
            "layer_instructions": p.layer_instructions,
            "glue_instructions": p.glue,
            "macs_per_instruction": p.macs_per_instruction,
            "inferences": list(p.invokes),
            "weight_bytes": p.weight_bytes,
            "stack_used": p.stack_used,
        },
        "sizes": {**p.sizes, "text_without_weights": p.text_without_weights} if p.sizes else {},
        "kernel_code": dict(p.kernel_code),
        "plan": {"summary": list(p.plan), **p.plan_numbers},
    }


def to_json(p: Profile) -> str:
    return json.dumps(to_dict(p), indent=2)
