"""The command line's post-training quantization: the options (all of `mcuq quantize`, optional on the commands
that compile), `mcuq quantize` itself, and turning a float32 model given with --calib into its int8 version."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from .errors import McuqError, printable
from .ir import DType
from .passes import DUMP_ENV

# The choices of --calib-method and its default: mcuq.quant.ptq's METHODS and DEFAULT_METHOD (a test keeps them
# equal). Repeated here so that building the parser does not import the quantizer.
CALIB_METHODS = ("minmax", "percentile", "mse", "kl", "auto")
DEFAULT_CALIB_METHOD = "kl"
QUANT_OPTIONS = ("calib_method", "per_tensor_fc", "no_bias_correction", "weight_bits", "activations", "rounding")
# mcuq.quant.precision's WEIGHT_BITS, ACTIVATIONS and ROUNDINGS (a test keeps them equal), for the same reason.
WEIGHT_BITS = (8, 4, 2, 1)
ACTIVATIONS = ("int8", "int16")
ROUNDINGS = ("auto", "nearest", "gptq", "adaround")

CALIB_HELP = (
    "calibration samples: a .npy with a leading sample axis (a sample may omit a batch dimension of 1), a .npz "
    "with one such array per model input (by input name or in input order), or a folder of .npy files, one sample "
    "each; float32, finite"
)


def add_quant_options(p: argparse.ArgumentParser, required: bool, native_int4: bool = False) -> None:
    """The options of post-training quantization: all of ``mcuq quantize``, and optional on the commands that
    compile (a float32 model given with --calib is quantized first and then handled as an int8 model).
    ``native_int4``: also --native-int4 (`mcuq quantize`, which writes the model)."""
    g = p.add_argument_group(
        "post-training quantization",
        None
        if required
        else "A float32 model needs --calib: mcuq quantizes it to int8 first (as `mcuq quantize` does), then "
        "continues as for an int8 model. For an int8 model, --calib is ignored (a note says so).",
    )
    g.add_argument("--calib", metavar="DATA", required=required, default=None, help=CALIB_HELP)
    g.add_argument(
        "--calib-method",
        choices=CALIB_METHODS,
        default=None,
        help="how activation ranges are chosen from the calibration data: min/max, a percentile, the least mean "
        "squared error, the least KL divergence, or auto: per tensor, the method with the least error there "
        f"(default: {DEFAULT_CALIB_METHOD})",
    )
    g.add_argument(
        "--per-tensor-fc",
        action="store_true",
        help="one weight scale per fully-connected layer (default: one per output channel)",
    )
    g.add_argument(
        "--no-bias-correction",
        action="store_true",
        help="do not correct the biases for the mean output shift that weight rounding causes",
    )
    g.add_argument(
        "--weight-bits",
        type=int,
        choices=WEIGHT_BITS,
        default=None,
        help="the width of every layer's weights (conv, depthwise, fully connected), per-channel symmetric: 8, 4 "
        "([-7, 7]), 2 (ternary) or 1 (binary); below 8 bits they are packed in flash (default: 8)",
    )
    g.add_argument(
        "--activations",
        choices=ACTIVATIONS,
        default=None,
        help="int8, or int16: TFLite's 16x8 mode (int16 symmetric activations, inputs and outputs, int8 weights, "
        "int64 biases) (default: int8)",
    )
    g.add_argument(
        "--rounding",
        choices=ROUNDINGS,
        default=None,
        help="how weights are rounded: to nearest, or optimised layer by layer on the calibration data (GPTQ, "
        "AdaRound); auto: GPTQ at 4 bits and below, nearest at 8 (default: auto)",
    )
    if native_int4:
        g.add_argument(
            "--native-int4",
            action="store_true",
            help="write 4-bit weights as TFLite INT4 tensors (for LiteRT runtimes that run them; tflite-runtime "
            "2.14 does not) instead of int8 tensors of the narrow range with the bit widths in the metadata",
        )


def quant_option_flags(args) -> list[str]:
    return [f"--{o.replace('_', '-')}" for o in QUANT_OPTIONS if getattr(args, o)]


def _sub_dump(dump_ir: str | None) -> str:
    """Where quantization's IR dumps go when a compiling command also dumps: DIR/quantize/, so that the float
    passes do not overwrite the int8 passes' files ("" turns them off)."""
    d = dump_ir if dump_ir is not None else os.environ.get(DUMP_ENV) or None
    return str(Path(d) / "quantize") if d else ""


def _quantize_model(model, args, dump_ir, precision=None):
    """Quantize with the command line's options. ``precision``: per-layer settings chosen elsewhere (mixed
    precision), {"weight_bits": {layer: bits}, "activations": {layer: "int8"|"int16"}}, either key optional; they
    replace the uniform --weight-bits / --activations."""
    from .quant.ptq import quantize

    kw = {} if args.calib_method is None else {"method": args.calib_method}
    kw.update(_precision_kwargs(args, precision))
    return quantize(
        model,
        args.calib,
        per_channel_fc=not args.per_tensor_fc,
        bias_correction=not args.no_bias_correction,
        dump_ir=dump_ir,
        **kw,
    )


def _precision_kwargs(args, precision=None) -> dict:
    """quantize()'s weight_bits, activations and rounding from the options (only those given)."""
    kw: dict = {}
    for name in ("weight_bits", "activations", "rounding"):
        value = getattr(args, name, None)
        if value is not None:
            kw[name] = value
    for name, value in (precision or {}).items():
        kw[name] = value
    return kw


def model_for(args):
    """(what compile_model gets, the QuantizedModel or None): the model file as it is, or with --calib and a
    float32 model, its int8 version. --calib for an int8 model is ignored with a note; a float model without
    --calib is refused by lowering, whose message says to add --calib."""
    if args.calib is None:
        flags = quant_option_flags(args)
        if flags:
            raise McuqError(f"{flags[0]} needs --calib DATA (calibration samples to quantize a float32 model with)")
        return args.model, None
    from .api import load_graph

    g = load_graph(args.model)
    if not any(g.tensors[n].dtype is DType.FLOAT32 for n in g.inputs):
        dtypes = "/".join(sorted({g.tensors[n].dtype.value for n in g.inputs}))
        args.notes.append(f"{args.model}: the model is already quantized ({dtypes} inputs); --calib is ignored")
        return g, None
    qm = _quantize_model(g, args, _sub_dump(args.dump_ir))
    return qm, qm


def sqnr_note(args, qm) -> None:
    r = qm.report
    sqnr = "exact" if r.sqnr_db is None else f"{r.sqnr_db:.1f} dB"
    args.notes.append(
        f"quantized {args.model} with --calib {args.calib} ({r.samples} samples, method {r.method}): end-to-end "
        f"SQNR {sqnr}; `mcuq inspect` with the same options shows each layer"
    )


def quantize_command(args) -> int:
    """`mcuq quantize`: checks the output paths before any work, quantizes, writes the model and the report."""
    from .npyio import check_output

    out = check_output(args.output or f"{Path(args.model).stem}_int8.tflite")  # before any work
    report = check_output(args.report) if args.report else None
    _refuse_overwriting(args.model, args.calib, out, report)
    qm = _quantize_model(args.model, args, args.dump_ir)
    qm.save(out, native_int4=getattr(args, "native_int4", False))
    if report is not None:
        from .npyio import save_bytes  # temporary file beside it, then rename

        save_bytes(report, qm.report.to_json().encode())
    print(qm.report.table())
    shown = printable(out, 2000) + (f" and {printable(report, 2000)}" if report is not None else "")
    print(f"wrote {shown}: {_precision_summary(qm)}, {len(qm.graph.ops)} ops")
    return 0


def _refuse_overwriting(model: str, calib: str, out: Path, report: Path | None) -> None:
    """-o and --report may not name the float model or the calibration data, nor each other: one would be lost."""
    named = [("the model", Path(model)), ("--calib", Path(calib)), ("-o", out)]
    if report is not None:
        named.append(("--report", report))
    for i, (what, p) in enumerate(named):
        for other, q in named[i + 1 :]:
            if os.path.abspath(p) == os.path.abspath(q) or (p.exists() and q.exists() and os.path.samefile(p, q)):
                raise McuqError(f"{printable(q, 2000)}: {other} names the same file as {what}; give another path")


def _precision_summary(qm) -> str:
    """ "int8", or e.g. "weights 4-bit, activations int16", or "mixed precision (weights 8/4-bit, ...)"."""
    bits = sorted({p.weight_bits for p in qm.precision.values()}, reverse=True) or [8]
    acts = sorted({p.activations for p in qm.precision.values()}) or ["int8"]
    if bits == [8] and acts == ["int8"]:
        return "int8"
    w = "/".join(map(str, bits))
    return f"weights {w}-bit, activations {'/'.join(acts)}"
