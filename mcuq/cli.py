"""mcuq's command line: argument parsing and wiring only."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

from . import __version__
from .boards import DEFAULT_BOARD
from .errors import McuqError, OneLineWarnings, printable

EPILOG = """\
examples:
  mcuq compile model.tflite -o out/          write out/<model>.c, .h, the runtime and a Makefile
  mcuq run model.tflite --input x.npy --output y.npy
  mcuq inspect model.tflite                  ops, shapes, quantization, MACs, weights, arena plan
  mcuq compile model.tflite --board mps2-an386 -o fw/ && make -C fw     firmware for a QEMU board
  mcuq run model.tflite --board mps3-an547 --input x.npy --output y.npy  run it in QEMU
  mcuq bench model.tflite --board mps2-an386  per-layer instructions, flash and RAM
  mcuq boards                                the boards mcuq knows

exit status: 0 success, 2 bad input (a one-line message names the file, the op and the reason),
1 internal error (rerun with --debug for a traceback)."""


def _add_dump_ir(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dump-ir",
        metavar="DIR",
        default=None,
        help="write the IR graph as text to DIR (created if missing) before the graph passes (00-input.txt) and "
        "after each one (01-<pass>.txt, ...), for debugging (default: $MCUQ_DUMP_IR if set)",
    )


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mcuq",
        description="Compile trained int8 TFLite models to integer-only C for microcontrollers, "
        "bit-exact with TFLite's reference kernels.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"mcuq {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks and debug logging")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    c = sub.add_parser("compile", help="generate the C project for a model")
    c.add_argument("model", help="a .tflite file (int8)")
    c.add_argument("--board", default="host", help="target board (default: host)")
    c.add_argument("-o", "--output-dir", default=None, help="output directory (default: ./<prefix>_mcuq)")
    c.add_argument("--prefix", default=None, help="C name prefix (default: from the model file name)")
    c.add_argument(
        "--force",
        action="store_true",
        help="write into a non-empty folder that mcuq did not write (its files are left alone; a file where mcuq "
        "writes one of its own is still refused)",
    )
    _add_dump_ir(c)

    r = sub.add_parser("run", help="compile, build and run the generated C on inputs from .npy files")
    r.add_argument("model")
    r.add_argument(
        "--input",
        action="append",
        required=True,
        metavar="IN.npy",
        help="one per model input: an array of the input's shape and dtype, or a batch of them "
        "with one extra leading axis",
    )
    r.add_argument(
        "--output",
        action="append",
        required=True,
        metavar="OUT.npy",
        help="one per model output; gets the matching leading batch axis",
    )
    r.add_argument("--board", default="host", help="where to run (default: host)")
    _add_dump_ir(r)

    i = sub.add_parser("inspect", help="print ops, shapes, quantization, MACs, weight bytes and the arena plan")
    i.add_argument("model")
    _add_dump_ir(i)

    b = sub.add_parser(
        "bench",
        help="run one inference in QEMU and report per-layer instructions, flash and RAM",
        description="Builds the firmware with per-layer hooks, runs one inference in QEMU with an instruction-"
        "counting plugin (exact and repeatable counts, not cycles) and reads flash and RAM from the ELF.",
    )
    b.add_argument("model")
    b.add_argument("--board", default=DEFAULT_BOARD, help=f"an emulated board (default: {DEFAULT_BOARD})")
    b.add_argument(
        "--input", metavar="IN.npy", action="append", help="one per model input (default: a seeded random input)"
    )
    b.add_argument("--json", action="store_true", help="machine-readable output")
    _add_dump_ir(b)

    sub.add_parser("boards", help="list the boards: CPU, flash, RAM, emulated or compile-only")
    return p


def _compile(args) -> int:
    from .api import compile_model

    cm = compile_model(args.model, board=args.board, prefix=args.prefix, dump_ir=args.dump_ir)
    out = Path(args.output_dir or f"{cm.prefix}_mcuq")
    files = cm.write(out, force=args.force)
    for note in cm.notes:  # after the write: an error stays the only line
        print(f"mcuq: note: {printable(note)}", file=sys.stderr)
    print(
        f"{printable(args.model)}: {len(cm.layers)} layers, weights {cm.model.weight_bytes} B, "
        f"arena {cm.plan.arena_size} B (liveness bound {cm.plan.lower_bound} B), board {cm.board}"
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


def _load_npy(path: str) -> np.ndarray:
    from .npyio import load_npy

    return load_npy(path)


def _run(args) -> int:
    from .api import compile_model
    from .npyio import check_output, save_npy

    for path in args.output:  # before any work: a missing folder is found in a second, not after the run
        check_output(path)
    cm = compile_model(args.model, board=args.board, dump_ir=args.dump_ir)
    if len(args.output) != len(cm.model.outputs):
        raise McuqError(f"{args.model}: the model has {len(cm.model.outputs)} output(s); give --output once per output")
    inputs = [_load_npy(p) for p in args.input]
    outs = cm.run(inputs)
    for path, arr in zip(args.output, outs):
        save_npy(path, arr)
        print(f"wrote {printable(path, 2000)}: {arr.dtype} {list(arr.shape)}")
    return 0


def _inspect(args) -> int:
    from .api import compile_model
    from .report import inspect_lines

    cm = compile_model(args.model, dump_ir=args.dump_ir)
    print("\n".join(inspect_lines(cm)))
    return 0


def _bench(args) -> int:
    from .api import compile_model
    from .firmware.profile import format_text, profile, to_json

    cm = compile_model(args.model, board=args.board, sanitize=False, dump_ir=args.dump_ir)
    inputs = [_load_npy(p) for p in args.input] if args.input else None
    p = profile(cm, cm.target or args.board, inputs=inputs)
    print(to_json(p) if args.json else format_text(p))
    return 0


def _boards(args) -> int:
    from .boards import describe_boards

    print("\n".join(describe_boards()))
    return 0


COMMANDS = {"compile": _compile, "run": _run, "inspect": _inspect, "bench": _bench, "boards": _boards}


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
    try:
        status = COMMANDS[args.command](args)
        warnings.flush_to(sys.stderr)
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
