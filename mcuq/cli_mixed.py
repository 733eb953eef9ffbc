"""The command line's mixed precision: `mcuq sensitivity`, and the budget and Pareto options of `mcuq quantize`
(the per-layer precision chosen exactly under flash, RAM and instruction budgets, then verified)."""

from __future__ import annotations

import argparse
import json
import re
import sys

from .errors import McuqError, printable

BUDGETS = ("flash", "ram", "instructions", "weights")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KiB|MiB|kB|KB)?\s*$")
_UNITS = {None: 1, "B": 1, "KiB": 1024, "KB": 1024, "kB": 1000, "MiB": 1 << 20}


def parse_size(text: str, what: str) -> int:
    """Bytes from ``123``, ``40KiB``, ``1.5MiB``; McuqError (one line) for anything else."""
    m = _SIZE.match(text or "")
    if not m:
        raise McuqError(f"{what}: {printable(text, 40)!s} is no size; give bytes, optionally with KiB or MiB (40KiB)")
    value = float(m.group(1)) * _UNITS[m.group(2)]
    if value < 1 or value > 1 << 40:
        raise McuqError(f"{what}: {printable(text, 40)} is out of range (1 B to 1 TiB)")
    return int(value)


def parse_count(text: str, what: str) -> int:
    m = re.fullmatch(r"\s*(\d+)\s*([kKM])?\s*", text or "")
    if not m:
        raise McuqError(f"{what}: {printable(text, 40)} is no count; give a whole number, optionally with k or M")
    return int(m.group(1)) * {None: 1, "k": 1000, "K": 1000, "M": 1000000}[m.group(2)]


def add_mixed_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "mixed precision under budgets",
        "With a budget, mcuq measures each layer's sensitivity (`mcuq sensitivity`) and what each precision costs "
        "in the generated C, chooses every layer's weight width (8, 4, 2, 1) and activation type (int8, int16) "
        "exactly (a multiple-choice knapsack, scipy's milp) to lose the least, and verifies the choice: it "
        "quantizes, measures and compiles it.",
    )
    g.add_argument("--budget-flash", metavar="SIZE", help="flash for the model: constants, kernels and model code "
                   "(bytes, or with KiB / MiB)")  # fmt: skip
    g.add_argument("--budget-ram", metavar="SIZE", help="the planned arena (bytes, or with KiB / MiB)")
    g.add_argument("--budget-instructions", metavar="N", help="instructions per inference, estimated per kernel")
    g.add_argument("--budget-weights", metavar="SIZE", help="packed weight and bias bytes")
    g.add_argument("--board", default="host", help="the board whose kernels the costs count (default: host)")
    g.add_argument("--eval", metavar="X.npy", default=None, help="data to measure on (default: --calib)")
    g.add_argument("--labels", metavar="Y.npy", default=None, help="labels of --eval: measure accuracy")
    g.add_argument("--pareto", nargs="?", const="", metavar="FILE.png|.svg", default=None,
                   help="sweep budgets, print the front of flash (or --pareto-axis) against the metric, plot it")  # fmt: skip
    g.add_argument("--pareto-axis", choices=("flash", "ram", "weights"), default="flash")
    g.add_argument("--greedy", action="store_true", help="choose greedily (the baseline) instead of exactly")


def wants_mixed(args) -> bool:
    return any(getattr(args, f"budget_{b}", None) is not None for b in BUDGETS) or args.pareto is not None


def budgets_of(args) -> dict[str, float]:
    out: dict[str, float] = {}
    for b in BUDGETS:
        v = getattr(args, f"budget_{b}", None)
        if v is not None:
            out[b] = float(
                parse_count(v, "--budget-instructions") if b == "instructions" else parse_size(v, f"--budget-{b}")
            )
    return out


def add_sensitivity_parser(sub, add_quant_options) -> None:
    s = sub.add_parser(
        "sensitivity",
        help="per layer, what each lower weight width and int16 activations do to the end-to-end accuracy",
        description="For each layer (conv, depthwise, fully connected): the drop in end-to-end output SQNR when "
        "only that layer's weights go to 4, 2 or 1 bit, and the gain when only its activations go to int16; with "
        "--labels, the drop in accuracy on --eval instead. Also splits each layer's int8 error into its weight "
        "part and its activation part.",
    )
    s.add_argument("model", help="a float32 .tflite file")
    s.add_argument("--eval", metavar="X.npy", default=None, help="data to measure on (default: --calib)")
    s.add_argument("--labels", metavar="Y.npy", default=None, help="labels of --eval (integers): measure accuracy")
    s.add_argument("--json", metavar="FILE", default=None, help="also write the results as JSON")
    s.add_argument("--board", default="host", help="the board whose kernels to compile for (default: host)")
    add_quant_options(s, required=True)


def _labels(args):
    if args.labels is None:
        return None
    if args.eval is None:
        raise McuqError("--labels needs --eval X.npy (the samples the labels belong to)")
    from .npyio import load_npy

    y = load_npy(args.labels)
    if y.dtype.kind not in "iu":
        raise McuqError(f"{printable(args.labels, 200)}: labels must be integers, not {y.dtype}")
    return y


def _quant_kwargs(args) -> dict:
    kw = {}
    if getattr(args, "calib_method", None):
        kw["method"] = args.calib_method
    if getattr(args, "per_tensor_fc", False):
        kw["per_channel_fc"] = False
    if getattr(args, "no_bias_correction", False):
        kw["bias_correction"] = False
    if getattr(args, "rounding", None):
        kw["rounding"] = args.rounding
    return kw


def _progress(s: str) -> None:
    print(f"mcuq: {s}", file=sys.stderr, flush=True)


def _planner(args):
    from .quant.mixed import Planner

    return Planner(args.model, args.calib, eval_data=args.eval, labels=_labels(args), board=args.board,
                   progress=None, **_quant_kwargs(args))  # fmt: skip


def _refuse_overwriting(args, outputs: list[tuple[str, object]]) -> None:
    """No output may name an input (the model, --calib, --eval, --labels) or another output: one would be lost."""
    import os
    from pathlib import Path

    inputs = [("the model", args.model), ("--calib", args.calib), ("--eval", args.eval), ("--labels", args.labels)]
    named = [(w, Path(p)) for w, p in inputs if p is not None]
    for what, q in [(w, Path(p)) for w, p in outputs if p is not None]:
        for other, p in named:
            if os.path.abspath(p) == os.path.abspath(q) or (p.exists() and q.exists() and os.path.samefile(p, q)):
                raise McuqError(f"{printable(q, 2000)}: {what} names the same file as {other}; give another path")
        named.append((what, q))


def sensitivity_command(args) -> int:
    from .npyio import check_output, save_bytes

    out = check_output(args.json) if args.json else None
    _refuse_overwriting(args, [("--json", out)])
    pl = _planner(args)
    s = pl.sensitivity
    print(s.table())
    for note in pl.notes:
        args.notes.append(note)
    if out is not None:
        save_bytes(out, s.to_json().encode())
        print(f"wrote {printable(out, 2000)}")
    return 0


def mixed_quantize_command(args) -> int:
    """`mcuq quantize` with budgets or --pareto."""
    from pathlib import Path

    from .npyio import check_output, save_bytes
    from .quant.mixed import candidate_table, recipe_lines

    budgets = budgets_of(args)  # bad sizes fail before any work
    out = check_output(args.output or f"{Path(args.model).stem}_mixed.tflite")
    report = check_output(args.report) if args.report else None
    if args.pareto:
        check_output(args.pareto)
    _refuse_overwriting(args, [("-o", out), ("--report", report), ("--pareto", args.pareto or None)])
    pl = _planner(args)
    labels = pl.evaluator.labels is not None
    for note in pl.notes:
        args.notes.append(note)
    if args.pareto is not None:
        from .quant import pareto

        points = pareto.sweep(pl, args.pareto_axis, others=budgets)
        print(pareto.table(points, args.pareto_axis, labels))
        if args.pareto:
            if pareto.plot(points, args.pareto_axis, labels, args.pareto, title=Path(args.model).stem):
                print(f"wrote {printable(args.pareto, 2000)}")
            else:
                print("mcuq: hint: install matplotlib (pip install 'mcuq[plot]') to draw the plot; the table is above")
        if not budgets:
            return 0
    v = pl.choose(budgets, method="greedy" if args.greedy else "milp")
    v.qm.save(out)
    metric = f"accuracy {v.accuracy:.2f} %, " if v.accuracy is not None else ""
    if len(v.candidates) > 1:
        print(f"candidates (predicted: additive loss model; measured: on {pl.compared_on}; * chosen):")
        print(candidate_table(v.candidates, v.recipe))
        print(f"chosen: {v.reason}")
    print(f"chosen per-layer precision ({v.method}, verified on the {pl.on}):")
    print("\n".join(recipe_lines(v)))
    print(
        f"{metric}SQNR {v.sqnr_db:.2f} dB; flash {v.flash:,} B, arena {v.ram:,} B, weights {v.weight_bytes:,} B, "
        f"~{v.instructions:,} instructions" + "".join(f"; {k} budget {b:,.0f}" for k, b in budgets.items())
    )
    if report is not None:
        d = v.qm.report.to_dict()
        d["mixed_precision"] = {**v.to_dict(), "budgets": budgets, "measured_on": pl.on,
                                "candidates_measured_on": pl.compared_on}  # fmt: skip
        save_bytes(report, (json.dumps(d, indent=2, allow_nan=False) + "\n").encode())
    print(f"wrote {printable(out, 2000)}" + (f" and {printable(report, 2000)}" if report is not None else ""))
    return 0
