"""`make bench-qat`: quantization-aware training (mcuq.qat) against post-training quantization on digits.

Usage: python benchmarks/qat.py [--write docs/benchmarks.md] [--epochs N] [--float-epochs N]

The digits CNN of tests/qat/digits.py (tests/util/digits_float.py's network in torch, with two BatchNorms) is trained
in float, then at each precision (weights 8, 4, 2 and 1 bit, uniform, and 2 and 1 bit with the first and last layers
at 8) it is
  * quantized after training by ``mcuq.quantize`` (calibration on 512 training images, its default GPTQ rounding
    below 8 bits) from the float graph with BatchNorm folded, and
  * fine-tuned with ``mcuq.qat`` (``--epochs``, Adam at 1e-3, cosine), with fixed scales and with LSQ scales,
and every model is compiled to C and run on the host over the 360 test images: the accuracies are the compiled C's.
For QAT the script also checks that the C's logits are the QAT model's own evaluation (the number of logits that
differ is printed in the table: 0 means the accuracy in training is the accuracy on the device). Weight bytes are
the compiled model's (packed below 8 bits); training time is the fine-tune's wall time on one CPU thread.
``--write MD`` replaces the section "## QAT" of MD (appended when absent) and nothing else.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

import mcuq  # noqa: E402
from mcuq import qat  # noqa: E402
from mcuq.qat.export import build  # noqa: E402
from tests.qat import digits as D  # noqa: E402

SECTION = "## QAT"
EDGE8 = {"conv1": 8, "fc": 8}
PRECISIONS = (  # (label, weight_bits)
    ("w8", 8),
    ("w4", 4),
    ("w2 (ternary)", 2),
    ("w1 (binary)", 1),
    ("w2, conv1 and fc at 8", {"dw": 2, "pw": 2, **EDGE8}),
    ("w1, conv1 and fc at 8", {"dw": 1, "pw": 1, **EDGE8}),
)
FREEZE = {"freeze_bn_after": 150, "freeze_observers_after": 200}


def compiled_logits(model, x: np.ndarray) -> tuple[np.ndarray, int]:
    cm = mcuq.compile_model(model, sanitize=False)
    out = cm.run(x, float_output=True)[0].reshape(len(x), -1)
    return out, cm.model.weight_bytes


def accuracy(logits: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.argmax(logits, axis=1) == y))


def run(epochs: int, float_epochs: int) -> tuple[list[str], dict]:
    torch.set_num_threads(1)
    data = D.load()
    y = data.y_test.numpy()
    x_test = data.x_test.numpy()  # NCHW: the graph records its layout (mcuq.layout), compiled models convert
    net, float_secs = D.train_float(data, float_epochs)
    acc_float = D.accuracy(net, data)
    float_graph = build(qat.prepare(net, data.x_train[:256])).graph  # BatchNorm folded, NHWC
    calib = data.x_train[:512].numpy()
    rows = []
    for label, bits in PRECISIONS:
        t0 = time.perf_counter()
        ptq_model = mcuq.quantize(float_graph, calib, weight_bits=bits)
        ptq_secs = time.perf_counter() - t0
        ptq_logits, ptq_bytes = compiled_logits(ptq_model, x_test)
        row = {"label": label, "ptq": accuracy(ptq_logits, y), "ptq_s": ptq_secs}
        for variant, lsq in (("qat", False), ("lsq", True)):
            qm = qat.prepare(net, data.x_train[:256], weight_bits=bits, lsq=lsq, **FREEZE)
            secs = D.fit(qm, data, epochs, 0.001)
            c_logits, w_bytes = compiled_logits(qat.to_quantized(qm), x_test)
            own = D.logits(qm, data.x_test)
            step = qm.layer("fc").out.frozen_qparams()[0]
            differ = int(np.count_nonzero(np.abs(c_logits - own) / step > 0.5))
            row.update({variant: accuracy(c_logits, y), f"{variant}_own": D.accuracy(qm, data),
                        f"{variant}_s": secs, f"{variant}_differ": differ, "bytes": w_bytes})  # fmt: skip
        row["ptq_bytes"] = ptq_bytes
        rows.append(row)
        print(f"{label}: PTQ {row['ptq']:.4f} QAT {row['qat']:.4f} LSQ {row['lsq']:.4f} ({row['qat_s']:.1f} s, "
              f"{row['lsq_s']:.1f} s) weights {row['bytes']} B, differing logits {row['qat_differ']}, "
              f"{row['lsq_differ']}", flush=True)  # fmt: skip
    meta = {"float": acc_float, "float_s": float_secs, "epochs": epochs, "float_epochs": float_epochs,
            "steps": epochs * -(-len(data.x_train) // D.BATCH)}  # fmt: skip
    return render(rows, meta), meta


def render(rows: list[dict], meta: dict) -> list[str]:
    out = [
        SECTION,
        "",
        "`make bench-qat` (benchmarks/qat.py): the digits CNN of tests/qat/digits.py (3x3 conv + BatchNorm, 3x3 "
        "depthwise, 1x1 conv + BatchNorm, average pool, fully connected; 1,437 training and 360 test images) trained "
        f"in float for {meta['float_epochs']} epochs ({meta['float_s']:.1f} s), then at each precision quantized by "
        "`mcuq.quantize` (PTQ: 512 calibration images, GPTQ below 8 bits) and fine-tuned by `mcuq.qat` for "
        f"{meta['epochs']} epochs ({meta['steps']} steps; BatchNorm frozen after 150, observers after 200), with "
        "fixed scales (QAT) and with learned LSQ scales. Every accuracy is the compiled C's on the host over the "
        f"360 test images; float (torch) is {100 * meta['float']:.1f} %. *Logits differing* counts the C's logits "
        "(of 3,600) that differ from the QAT model's own evaluation in PyTorch: 0 means the accuracy seen in "
        "training is the device's. Training time: one CPU thread, "
        f"{platform.machine()}, torch {torch.__version__}.",
        "",
        "| weights | weight bytes | PTQ | QAT | QAT + LSQ | QAT training (s) | LSQ training (s) | logits differing (QAT, LSQ) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        out.append(
            f"| {r['label']} | {r['bytes']:,} | {100 * r['ptq']:.1f} % | {100 * r['qat']:.1f} % | "
            f"{100 * r['lsq']:.1f} % | {r['qat_s']:.1f} | {r['lsq_s']:.1f} | {r['qat_differ']}, {r['lsq_differ']} |"
        )
    out.append("")
    return out


def write_section(md: Path, lines: list[str]) -> None:
    """Replace the section ``SECTION`` of ``md`` (its heading up to the next "## " heading), or append it."""
    text = "\n".join(lines)
    old = md.read_text() if md.exists() else "# Benchmarks\n"
    ls = old.splitlines(keepends=True)
    start = next((i for i, line in enumerate(ls) if line.rstrip() == SECTION), None)
    if start is None:
        new = old.rstrip("\n") + "\n\n" + text
    else:
        end = next((i for i in range(start + 1, len(ls)) if ls[i].startswith("## ")), len(ls))
        rest = "".join(ls[end:])
        new = "".join(ls[:start]) + text + ("\n" + rest if rest else "")
    md.write_text(new)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", metavar="MD", type=Path, help="replace the '## QAT' section of this markdown file")
    ap.add_argument("--epochs", type=int, default=10, help="QAT fine-tune epochs (default 10)")
    ap.add_argument("--float-epochs", type=int, default=40, help="float training epochs (default 40)")
    args = ap.parse_args(argv)
    lines, _ = run(args.epochs, args.float_epochs)
    print("\n".join(lines))
    if args.write:
        write_section(args.write, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
