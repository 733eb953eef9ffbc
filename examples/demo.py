"""`make demo`: compile the bundled digits CNN for the default QEMU board, run the held-out digits through the
firmware in QEMU, and print the compiler's and the board's reports.

Without arm-none-eabi-gcc and qemu-system-arm (`make setup` installs them where it may) it runs the same
generated C on the host instead and says so.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import numpy as np

import mcuq
from mcuq.boards import DEFAULT_BOARD
from mcuq.report import inspect_lines

HERE = Path(__file__).resolve().parent


def main() -> int:
    model = HERE / "digits_cnn.tflite"
    data = np.load(HERE / "digits_test.npz")
    x, y = data["x"][:, None], data["y"]  # a batch of [1, 8, 8, 1] int8 images
    emulated = shutil.which("arm-none-eabi-gcc") is not None and shutil.which("qemu-system-arm") is not None
    board = DEFAULT_BOARD if emulated else "host"

    t0 = time.perf_counter()
    cm = mcuq.compile_model(model, board=board)
    out_dir = Path("digits_cnn_mcuq")
    cm.write(out_dir)
    print("\n".join(inspect_lines(cm)))
    print(f"\ncompiled {model.name} for {board} in {time.perf_counter() - t0:.2f} s -> {out_dir}/")

    t0 = time.perf_counter()
    (scores,) = cm.run([x])  # one build, one boot, all 360 images
    where = f"in QEMU ({board})" if emulated else "on the host (no Cortex-M toolchain: `make setup` installs it)"
    acc = float(np.mean(np.argmax(scores.reshape(len(x), -1), axis=1) == y))
    print(
        f"ran the generated C {where}: {len(x)} held-out digits in {time.perf_counter() - t0:.2f} s, accuracy {acc:.2%}"
    )
    host = mcuq.compile_model(model).run([x])[0]
    print(f"outputs identical to the host build: {bool(np.array_equal(host, scores))}")

    if emulated:
        from mcuq.firmware.profile import format_text, profile

        print()
        print(format_text(profile(cm, cm.target, inputs=[x[0]])))
    return 0 if acc > 0.9 else 1


if __name__ == "__main__":
    sys.exit(main())
