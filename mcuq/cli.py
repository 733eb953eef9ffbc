"""mcuq's command line: argument parsing and wiring only."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from . import __version__
from .boards import DEFAULT_BOARD
from .cli_mixed import (
    add_mixed_options,
    add_sensitivity_parser,
    mixed_quantize_command,
    sensitivity_command,
    wants_mixed,
)
from .cli_quant import add_quant_options, model_for, quantize_command, sqnr_note
from .errors import McuqError, OneLineWarnings, printable
from .kernels.variants import PATHS

EPILOG = """\
examples:
  mcuq compile model.tflite -o out/          write out/<model>.c, .h, the runtime and a Makefile
  mcuq run model.tflite --input x.npy --output y.npy
  mcuq inspect model.tflite                  ops, shapes, quantization, MACs, weights, arena plan
  mcuq compile model.tflite --board mps2-an386 -o fw/ && make -C fw     firmware for a QEMU board
  mcuq run model.tflite --board mps3-an547 --input x.npy --output y.npy  run it in QEMU
  mcuq bench model.tflite --board mps2-an386  per-layer instructions, flash and RAM
  mcuq boards                                the boards mcuq knows

  a float32 model and calibration samples (a .npy, a .npz or a folder of .npy):
  mcuq quantize float.tflite --calib samples.npy -o model_int8.tflite   int8 .tflite, per-layer accuracy report
  mcuq compile float.tflite --calib samples.npy -o out/                  quantize, then compile
  mcuq run float.tflite --calib samples.npy --input x.npy --output y.npy --float-output
                                             float32 inputs (quantized as TFLite does) and outputs

exit status: 0 success, 2 bad input (a one-line message names the file, the op and the reason),
1 internal error (rerun with --debug for a traceback)."""


DUMP_IR_HELP = (
    "write the IR graph as text to DIR (created if missing) before the graph passes (00-input.txt) and after each "
    "one (01-<pass>.txt, ...), for debugging (default: $MCUQ_DUMP_IR if set)"
)


def _add_dump_ir(p: argparse.ArgumentParser, help: str | None = None) -> None:
    default = DUMP_IR_HELP + "; with --calib, quantization's own dumps go to DIR/quantize/"
    p.add_argument("--dump-ir", metavar="DIR", default=None, help=help or default)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mcuq",
        description="Compile trained int8 TFLite models to integer-only C for microcontrollers, "
        "bit-exact with TFLite's reference kernels; quantize float32 models to int8 with calibration data.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"mcuq {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks and debug logging")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    q = sub.add_parser(
        "quantize",
        help="quantize a float32 model to a standard int8 .tflite, with a per-layer accuracy report",
        description="Post-training quantization: int8 activations (asymmetric) and weights (symmetric, per "
        "channel), int32 biases, int8 inputs and outputs, ranges from the calibration data. Prints, per layer, the "
        "output scale and zero point, the calibration method, the fraction of values clipped and the SQNR "
        "against the float model; then the end-to-end SQNR.",
    )
    q.add_argument("model", help="a float32 .tflite file")
    q.add_argument(
        "-o",
        "--output",
        metavar="MODEL_INT8.tflite",
        default=None,
        help="the int8 model to write (default: ./<model>_int8.tflite, in the current folder)",
    )
    q.add_argument("--report", metavar="REPORT.json", default=None, help="also write the report as JSON")
    add_quant_options(q, required=True, native_int4=True)
    add_mixed_options(q)
    _add_dump_ir(
        q,
        "write the float graph as text to DIR (created if missing) before and after each folding pass, and the "
        "int8 graph to DIR/quantized/, for debugging",
    )

    c = sub.add_parser("compile", help="generate the C project for a model")
    c.add_argument("model", help="a .tflite or .onnx file (int8 or QDQ, or float32 with --calib)")
    c.add_argument("--board", default="host", help="target board (default: host)")
    c.add_argument("-o", "--output-dir", default=None, help="output directory (default: ./<prefix>_mcuq)")
    c.add_argument("--prefix", default=None, help="C name prefix (default: from the model file name)")
    c.add_argument(
        "--force",
        action="store_true",
        help="write into a non-empty folder that mcuq did not write (its files are left alone; a file where mcuq "
        "writes one of its own is still refused)",
    )
    c.add_argument(
        "--json",
        action="store_true",
        help="print a JSON summary instead of the text: sizes, kernels, and each weighted layer's precision and "
        "flash bytes (packed weights, bias, multipliers, shifts)",
    )
    _add_kernels(c)
    add_quant_options(c, required=False)
    _add_dump_ir(c)

    r = sub.add_parser("run", help="compile, build and run the generated C on inputs from .npy files")
    r.add_argument("model", help="a .tflite or .onnx file (int8 or QDQ, or float32 with --calib)")
    r.add_argument(
        "--input",
        action="append",
        required=True,
        metavar="IN.npy",
        help="one per model input: an array of the input's shape, or a batch of them with one extra leading axis "
        "(a sample may omit a batch dimension of 1); int8 values as they are, or float32 real values, which are "
        "quantized with the input's scale and zero point as TFLite's QUANTIZE does",
    )
    r.add_argument(
        "--output",
        action="append",
        required=True,
        metavar="OUT.npy",
        help="one per model output; gets the matching leading batch axis",
    )
    r.add_argument("--board", default="host", help="where to run (default: host)")
    r.add_argument(
        "--float-output",
        action="store_true",
        help="write the outputs as float32 real values ((q - zero_point) * scale, TFLite's DEQUANTIZE) instead of int8",
    )
    _add_kernels(r)
    add_quant_options(r, required=False)
    _add_dump_ir(r)

    i = sub.add_parser("inspect", help="print ops, shapes, quantization, MACs, weight bytes and the arena plan")
    i.add_argument("model", help="a .tflite or .onnx file (int8 or QDQ, or float32 with --calib)")
    i.add_argument("--board", default="host", help="the board whose kernels and plan to show (default: host)")
    _add_kernels(i)
    add_quant_options(i, required=False)
    _add_dump_ir(i)

    b = sub.add_parser(
        "bench",
        help="run one inference in QEMU and report per-layer instructions, flash and RAM",
        description="Builds the firmware with per-layer hooks, runs one inference in QEMU with an instruction-"
        "counting plugin (exact and repeatable counts, not cycles) and reads flash and RAM from the ELF.",
    )
    b.add_argument("model", help="a .tflite or .onnx file (int8 or QDQ, or float32 with --calib)")
    b.add_argument("--board", default=DEFAULT_BOARD, help=f"an emulated board (default: {DEFAULT_BOARD})")
    b.add_argument(
        "--input",
        metavar="IN.npy",
        action="append",
        help="one per model input, int8 or float32 as for `mcuq run` (default: a seeded random input)",
    )
    b.add_argument("--json", action="store_true", help="machine-readable output")
    _add_kernels(b)
    add_quant_options(b, required=False)
    _add_dump_ir(b)

    add_sensitivity_parser(sub, add_quant_options)
    sub.add_parser("boards", help="list the boards: CPU, flash, RAM, emulated or compile-only")
    return p


def _add_kernels(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--kernels",
        choices=("auto", *PATHS),
        default="auto",
        help="kernel path: auto (default: the fastest the board allows, mve > dsp > portable; dsp on the host), "
        "portable (the reference kernels), dsp (SXTB16/SMLAD) or mve (Helium); all give the same bits",
    )
    p.add_argument(
        "--no-pack-weights",
        action="store_true",
        help="keep int8 conv/depthwise/FC weights whose values all fit 4 bits ([-7, 7]), ternary or binary as int8 "
        "(default: store them packed, 2, 4 or 8 a byte, with the same results); weights the model declares as 4, 2 "
        "or 1 bits (INT4 tensors, mcuq_weight_bits metadata) are packed either way",
    )


def _compile(args) -> int:
    from .api import compile_model

    model, qm = model_for(args)
    cm = compile_model(
        model,
        board=args.board,
        prefix=args.prefix,
        dump_ir=args.dump_ir,
        kernels=args.kernels,
        pack_weights=not args.no_pack_weights,
    )
    out = Path(args.output_dir or f"{cm.prefix}_mcuq")
    files = cm.write(out, force=args.force)
    for note in cm.notes:  # after the write: an error stays the only line
        print(f"mcuq: note: {printable(note)}", file=sys.stderr)
    if qm is not None:
        sqnr_note(args, qm)
    if args.json:
        from .report import compile_json

        print(compile_json(cm, str(out), [str(f) for f in files]))
        return 0
    print(
        f"{printable(args.model)}: {len(cm.layers)} layers, weights {cm.model.weight_bytes} B, "
        f"arena {cm.plan.arena_size} B (liveness bound {cm.plan.lower_bound} B), board {cm.board}, "
        f"kernels {cm.kernels}"
    )
    if cm.target is None:
        what = f"`make -C {out}` builds build/lib{cm.prefix}.a with the host compiler"
    elif cm.target.emulated:
        what = f"`make -C {out}` builds build/{cm.prefix}.elf, `make -C {out} run` runs it in QEMU"
    else:
        what = (
            f"`make -C {out}` builds build/lib{cm.prefix}.a with arm-none-eabi-gcc; {out}/README.md says how to use it"
        )
    print(printable(f"wrote {len(files)} files to {out}/: {what}", 2000))
    return 0


def _load_inputs(cm, paths: list[str]) -> list:
    """The .npy files of --input, float32 ones quantized for the model's int8 inputs (``mcuq.quant.edge``)."""
    from .npyio import load_npy
    from .quant.edge import prepare_inputs

    return prepare_inputs(cm.input_tensors, [load_npy(p) for p in paths], labels=paths)


def _run(args) -> int:
    from .api import compile_model
    from .npyio import check_output, save_npy

    for path in args.output:  # before any work: a missing folder is found in a second, not after the run
        check_output(path)
    model, qm = model_for(args)
    cm = compile_model(
        model, board=args.board, dump_ir=args.dump_ir, kernels=args.kernels, pack_weights=not args.no_pack_weights
    )
    if len(args.output) != len(cm.model.outputs):
        raise McuqError(f"{args.model}: the model has {len(cm.model.outputs)} output(s); give --output once per output")
    if args.float_output:
        _check_float_output(args.model, cm.output_tensors)
    outs = cm.run(_load_inputs(cm, args.input), float_output=args.float_output)
    if qm is not None:
        sqnr_note(args, qm)
    for path, arr in zip(args.output, outs):
        save_npy(path, arr)
        print(f"wrote {printable(path, 2000)}: {arr.dtype} {list(arr.shape)}")
    return 0


def _check_float_output(model: str, tensors) -> None:
    """--float-output needs outputs with one scale and zero point; say so before the build and the run."""
    from .quant.edge import is_quantized

    for t in tensors:
        if not is_quantized(t):
            raise McuqError(
                f"{model}: --float-output: output '{t.name}' is {t.dtype.value} without one scale and zero point, "
                "so it has no real values to give"
            )


def _inspect(args) -> int:
    from .api import compile_model
    from .report import inspect_lines

    model, qm = model_for(args)
    cm = compile_model(
        model, board=args.board, dump_ir=args.dump_ir, kernels=args.kernels, pack_weights=not args.no_pack_weights
    )
    print("\n".join(inspect_lines(cm)))
    given = cm.graph.meta.get("quant_notes")  # a QDQ model (mcuq.frontend.onnx_qdq): edges its Q/DQ did not cover
    if given:
        print("\nquantization given by the model's QuantizeLinear/DequantizeLinear; resolved by mcuq:")
        for note in json.loads(given):
            print(f"  {printable(note, 2000)}")
    if qm is not None:
        print(f"\nquantization with --calib {printable(args.calib, 2000)}:")
        print(qm.report.table())
    return 0


def _bench(args) -> int:
    from .api import compile_model
    from .firmware.profile import format_text, profile, to_json

    model, qm = model_for(args)
    cm = compile_model(
        model,
        board=args.board,
        sanitize=False,
        dump_ir=args.dump_ir,
        kernels=args.kernels,
        pack_weights=not args.no_pack_weights,
    )
    inputs = _load_inputs(cm, args.input) if args.input else None
    p = profile(cm, cm.target or args.board, inputs=inputs)
    if qm is not None:
        sqnr_note(args, qm)
    print(to_json(p) if args.json else format_text(p))
    return 0


def _boards(args) -> int:
    from .boards import describe_boards

    print("\n".join(describe_boards()))
    return 0


def _quantize(args) -> int:
    return mixed_quantize_command(args) if wants_mixed(args) else quantize_command(args)


COMMANDS = {
    "quantize": _quantize,
    "sensitivity": sensitivity_command,
    "compile": _compile,
    "run": _run,
    "inspect": _inspect,
    "bench": _bench,
    "boards": _boards,
}


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING, format="%(name)s: %(message)s")
    if args.command is None:
        parser.print_help()
        return 2
    warnings = OneLineWarnings()  # one printable line per distinct warning, after the command; none on an error
    log = logging.getLogger("mcuq")
    held = not args.debug
    if held:
        log.addHandler(warnings)
        log.propagate = False
    args.notes = []  # one line each, printed after the command succeeds: an error stays the only line
    try:
        status = COMMANDS[args.command](args)
        warnings.flush_to(sys.stderr)
        for note in args.notes:
            print(f"mcuq: note: {printable(note, 2000)}", file=sys.stderr)
        return status
    except McuqError as e:
        if args.debug:
            raise
        warnings.discard()
        print(f"mcuq: error: {printable(e)}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("mcuq: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # an mcuq bug: say so in one line unless --debug
        if args.debug:
            raise
        warnings.discard()
        print(
            f"mcuq: internal error: {type(e).__name__}: {printable(e)} (rerun with --debug for a traceback, and "
            "please report it)",
            file=sys.stderr,
        )
        return 1
    finally:
        if held:
            log.removeHandler(warnings)
            log.propagate = True


if __name__ == "__main__":
    sys.exit(main())
