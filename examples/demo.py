"""`make demo`: compile the bundled digits CNN to C, build it, run it on the held-out digits, print the report."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

import mcuq
from mcuq.report import inspect_lines

HERE = Path(__file__).resolve().parent


def main() -> int:
    model = HERE / "digits_cnn.tflite"
    data = np.load(HERE / "digits_test.npz")
    x, y = data["x"], data["y"]
    t0 = time.perf_counter()
    cm = mcuq.compile_model(model, board="host")
    out_dir = Path("digits_cnn_mcuq")
    cm.write(out_dir)
    t1 = time.perf_counter()
    print("\n".join(inspect_lines(cm)))
    print(f"\ncompiled {model.name} in {t1 - t0:.2f} s -> {out_dir}/ (digits_cnn.c, digits_cnn.h, runtime, Makefile)")
    (scores,) = cm.run([x[:, None]])  # a batch of [1, 8, 8, 1] inputs: the generated C, built with the host cc
    acc = float(np.mean(np.argmax(scores.reshape(len(x), -1), axis=1) == y))
    print(f"ran the generated C on the host: {len(x)} held-out digits, accuracy {acc:.2%}")
    return 0 if acc > 0.9 else 1


if __name__ == "__main__":
    sys.exit(main())
