"""The Python API: compile a model to C, write the project, build and run it on the host or in QEMU."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .boards import HOST, Board, load_board
from .codegen.emit import Model, build_model, render, render_host_main
from .codegen.names import choose_prefix
from .codegen.project import host_project_files, write_tree
from .errors import McuqError
from .firmware.image import FirmwareImage, firmware_image
from .fit import Footprint, check_fit, footprint
from .hostrun import HostProgram, run_host
from .ir import Graph, Tensor, verify
from .layout import inputs_to_ir, outputs_from_ir
from .lower import Layer, lower
from .lower.bands import fuse_bands
from .lower.specialize import board_path, specialize, within_arena
from .passes import PIPELINE, run_passes
from .passes import pack_weights as pack_weights_pass
from .plan import Plan, plan
from .quant.edge import dequantize_outputs, prepare_inputs
from .records import normalise_inputs, shape_outputs

if TYPE_CHECKING:
    from .quant.ptq import QuantizedModel


def _default_sanitize() -> bool:
    return os.environ.get("MCUQ_SANITIZE", "") not in ("", "0")


def load_graph(model: str | os.PathLike | bytes | Graph) -> Graph:
    if isinstance(model, Graph):
        return model
    from .frontend import load

    return load(model)


@dataclass(frozen=True, eq=False)
class CompiledModel:
    """A model lowered to C: the result of ``compile_model``. ``files`` maps file names to contents (the model's
    .c and .h). The methods are thin: project assembly is ``mcuq.codegen.project`` (and ``mcuq.firmware.project``
    for a board), the host run ``mcuq.hostrun``, the QEMU run ``mcuq.firmware.qemu``."""

    graph: Graph
    layers: tuple[Layer, ...]
    plan: Plan
    model: Model
    files: dict[str, str]
    board: str = "host"
    sanitize: bool = False  # build the host runner with -fsanitize=address,undefined
    target: Board | None = None  # the board, when it is not the host (it may come from a user's .toml)
    kernels: str = "portable"  # the kernel path the layers use: portable, dsp or mve (mcuq.lower.specialize)
    notes: tuple[str, ...] = ()  # what compile_model changed from the request (a rewritten prefix), one line each

    @property
    def prefix(self) -> str:
        return self.model.prefix

    @property
    def input_tensors(self) -> tuple[Tensor, ...]:
        return tuple(self.graph.tensors[p.tensor] for p in self.model.inputs)

    @property
    def output_tensors(self) -> tuple[Tensor, ...]:
        return tuple(self.graph.tensors[p.tensor] for p in self.model.outputs)

    def footprint(self) -> Footprint:
        """What the flash/RAM fit check (``mcuq.fit.check_fit``) needs to know of this model."""
        return footprint(self.graph, self.layers, self.plan, self.model)

    def firmware_image(self) -> FirmwareImage:
        """This model as the firmware builders, runners and the profiler (``mcuq.firmware``) take it."""
        return firmware_image(self.graph, self.layers, self.plan, self.model, self.files)

    def project_files(self) -> dict[str, str]:
        """Every file of the output folder by relative path: for the host the model's .c/.h, the runtime sources
        its kernels need and a Makefile for a static library; for a board the firmware project."""
        if self.board == HOST:
            return host_project_files(self.model, self.files)
        from .firmware.project import render_firmware_project

        return render_firmware_project(self.firmware_image(), self.target or self.board)

    def write(self, out_dir: str | os.PathLike, force: bool = False) -> list[Path]:
        """Write the C project into ``out_dir`` (see ``project_files``); returns the paths written.

        Each file goes to a temporary name beside it and is renamed over the old one once all are written, so a
        failure leaves the previous set; ``.mcuq-manifest`` lists what mcuq wrote, and a later write removes only
        listed files it no longer writes. Other files are left alone. A non-empty folder mcuq did not write is
        refused (McuqError) unless ``force``, which still deletes and overwrites nothing of the user's. The
        generated Makefiles and CMake build under ``out_dir/build/`` (``mcuq.codegen.outdir``)."""
        files = self.project_files()
        out = write_tree(files, out_dir, force=force)
        return sorted(out / rel for rel in files)

    def normalise_inputs(self, inputs, labels: list[str] | None = None) -> tuple[list[np.ndarray], int, bool]:
        """Check ``inputs`` against the model: (one array per input with a leading batch axis, batch size,
        whether the caller gave a batch). float32 arrays for a quantized input are quantized first, as TFLite's
        QUANTIZE does (``mcuq.quant.edge``). Wrong count, dtype or shape raise McuqError naming the input
        (``labels``, one per input, name them in the messages of quantization: the CLI passes file paths)."""
        return normalise_inputs(self.input_tensors, prepare_inputs(self.input_tensors, inputs, labels))

    def _execute(self, inputs, want_layers: bool) -> tuple[list[np.ndarray], dict[str, np.ndarray] | None]:
        arrays, n, batched = self.normalise_inputs(inputs)  # float32 inputs quantized here
        if self.board != HOST:
            outs = self._run_in_qemu(arrays, n, want_layers)
            return shape_outputs(outs, batched), None
        program = HostProgram.of(self.prefix, {**self.files, "runner.c": render_host_main(self.model)}, self.sanitize)
        per_layer = tuple(self.graph.tensors[layer.outputs[0]] for layer in self.layers) if want_layers else None
        outs, layer_outs = run_host(program, arrays, n, self.output_tensors, per_layer)
        layers = None
        if layer_outs is not None:
            layers = dict(zip((layer.outputs[0] for layer in self.layers), shape_outputs(layer_outs, batched)))
        return shape_outputs(outs, batched), layers

    def _run_in_qemu(self, arrays: list[np.ndarray], n: int, want_layers: bool) -> list[np.ndarray]:
        if want_layers:
            raise McuqError("run_layers runs on the host only (board 'host'); use `mcuq bench` on a board")
        from .firmware.qemu import run_batch

        b = self.target or load_board(self.board)
        if not b.emulated:
            raise McuqError(
                f"board '{self.board}' is a real board: mcuq compiles and fit-checks for it but cannot run it; "
                "run on an emulated board (mcuq boards) or on the host"
            )
        return run_batch(self.firmware_image(), b, arrays, n)

    def run(self, inputs, float_output: bool = False) -> list[np.ndarray]:
        """Run the generated C (on the host, or in QEMU for an emulated board). ``inputs``: one array per model
        input (or one array for a single-input model), each with the input's shape or a batch of them with one
        extra leading axis. An int8 input takes int8 values as they are, or float32 real values, which are
        quantized with the input's scale and zero point exactly as TFLite's QUANTIZE does. ``float_output``:
        return the outputs as float32 real values (TFLite's DEQUANTIZE) instead of int8. Arrays are in the model's
        own layout (an ONNX model's NCHW); the C's are converted at this edge (``mcuq.layout``)."""
        g = self.graph
        outs = self._execute(inputs_to_ir(g, inputs), False)[0]
        outs = dequantize_outputs(self.output_tensors, outs) if float_output else outs
        return outputs_from_ir(g, [p.tensor for p in self.model.outputs], outs)

    def run_layers(self, inputs) -> dict[str, np.ndarray]:
        """Every layer's output tensor, by tensor name, as computed by the generated C."""
        return self._execute(inputs, True)[1]


_MODEL_TYPES = (str, os.PathLike, bytes, bytearray, memoryview, Graph)


def _quantized_graph(model: object) -> Graph | None:
    """The int8 graph of a ``mcuq.quantize`` result, None for anything else. The quantizer is imported only when
    ``model`` is none of the usual types, so that compiling an int8 file does not load it."""
    if isinstance(model, _MODEL_TYPES):
        return None
    from .quant.ptq import QuantizedModel

    return model.graph if isinstance(model, QuantizedModel) else None


def _default_prefix(model: object, g: Graph) -> str:
    """The model file's stem; for a quantized model, the name of the float model it came from."""
    if isinstance(model, (str, os.PathLike)):
        return Path(str(model)).stem
    qm_float = getattr(model, "float_graph", None)
    return (qm_float.name if isinstance(qm_float, Graph) else "") or g.name or "model"


def _check_arguments(model: object, board: object, prefix: object, sanitize: object, dump_ir: object) -> None:
    """compile_model's arguments by type: a wrong one is a McuqError naming it, not a TypeError deep inside."""
    if _quantized_graph(model) is not None:
        model = model.graph
    wants = (
        (
            "model",
            model,
            _MODEL_TYPES,
            "a .tflite or .onnx path, its bytes, a Graph or a QuantizedModel (mcuq.quantize)",
        ),
        ("board", board, (str, os.PathLike), "a board name or a path to a board .toml"),
        ("prefix", prefix, (str, type(None)), "a string or None"),
        ("sanitize", sanitize, (bool, type(None)), "True, False or None"),
        ("dump_ir", dump_ir, (str, os.PathLike, type(None)), "a folder path or None"),
    )
    for name, value, types, what in wants:
        if not isinstance(value, types):
            raise McuqError(f"compile_model: {name} must be {what}, got {type(value).__name__}")


def _arrange(g: Graph, layers: tuple[Layer, ...]) -> tuple[tuple[Layer, ...], Plan]:
    return fuse_bands(g, layers, plan)


def compile_model(
    model: str | os.PathLike | bytes | Graph | QuantizedModel,
    board: str = "host",
    prefix: str | None = None,
    sanitize: bool | None = None,
    dump_ir: str | os.PathLike | None = None,
    kernels: str = "auto",
    pack_weights: bool = True,
) -> CompiledModel:
    """Load, lower, plan and generate C for ``model`` (a .tflite or .onnx path, its bytes, an IR graph, or what
    ``mcuq.quantize`` returns for a float model) for ``board`` (``mcuq boards`` lists them). A float32 model is
    quantized first: ``compile_model(mcuq.quantize(path, calib))``. For a board other than the host, the model
    must fit its flash and RAM (``FitError`` otherwise, with the numbers). ``dump_ir`` (default ``$MCUQ_DUMP_IR``): a directory that gets
    the IR graph as text before and after each graph pass (``mcuq.passes``). ``prefix`` (default: the model
    file's stem) names the C files and symbols; one that is no C identifier or that clashes with mcuq's runtime or
    project files (``mcuq.codegen.names.choose_prefix``) is rewritten, and ``notes`` of the result says so.
    ``kernels``: "auto" (the fastest path the board's features allow: mve, dsp, else portable; dsp for the
    host), or "portable" (the reference kernels), "dsp" or "mve" (``mcuq.lower.specialize``); every path gives
    the same bits. ``pack_weights``: store int8 conv/depthwise/FC weights whose values all fit 4, 2 or 1 bits
    packed (``mcuq.passes.pack_weights``; same results, less flash); weights the model declares as 4, 2 or 1 bits
    (INT4 tensors, the ``mcuq_weight_bits`` metadata) are packed either way."""
    _check_arguments(model, board, prefix, sanitize, dump_ir)
    if not isinstance(kernels, str):
        raise McuqError(f"compile_model: kernels must be a string, got {type(kernels).__name__}")
    if not isinstance(pack_weights, bool):
        raise McuqError(f"compile_model: pack_weights must be True or False, got {type(pack_weights).__name__}")
    b = load_board(board)
    path = board_path(b.features, b.name == HOST, kernels)
    g = _quantized_graph(model) or load_graph(model)
    verify(g)
    g = run_passes(g, PIPELINE + ((pack_weights_pass,) if pack_weights else ()), dump_dir=dump_ir)
    portable = lower(g)
    p = plan(g, portable)  # the reference path: the kernels and plan as they were
    layers = portable
    if path != "portable":  # fast kernels, bands and overlaps, never in more RAM than the reference path
        layers, p = within_arena(g, portable, specialize(g, portable, path), _arrange, p.arena_size)
    explicit = prefix is not None
    if prefix is None:
        prefix = _default_prefix(model, g)
    chosen = choose_prefix(prefix, explicit=explicit)
    m = build_model(g, layers, p, chosen.name)
    cm = CompiledModel(
        graph=g,
        layers=layers,
        plan=p,
        model=m,
        files=render(m),
        board=b.name,
        sanitize=_default_sanitize() if sanitize is None else sanitize,
        target=None if b.name == HOST else b,
        kernels=path,
        notes=(chosen.note,) if chosen.note else (),
    )
    if b.name != HOST:
        check_fit(b, cm.footprint())
    return cm
