"""A fuzz worker process: reads one JSON task per line on stdin, writes one JSON result per line.

Tasks: ``{"id": N, "task": "mutant", "model": NAME, "path": PATH, "seed": S, "oracle": bool, "cli": bool}`` (see
``judge.judge``), ``{"id": N, "task": "ops", "seed": S, "start": I, "count": K, "oracle": bool}`` (see
``opcheck.check_range``) and ``{"id": N, "task": "quant", "model": NAME, "family": F, "seed": S, "oracle": bool,
"cli": bool, "det": bool}`` (see ``qjudge.judge_quant``); ``sleep``, ``exit`` and ``echo`` test the pool. The
result line is ``{"id": N, "result": ...}``.

``MCUQ_FUZZ_KERNELS`` (set by ``run --kernels``): the kernel path (portable, dsp, mve, auto) every
``compile_model`` call of the worker uses, and the ``--kernels`` of the CLI runs; unset: compile_model's default.

The protocol uses a private copy of the original stdout; fd 1 is pointed at stderr, so that anything mcuq, a
compiler or a C program prints cannot corrupt it. Started by ``pool.Pool`` (``python -m tests.fuzz.worker``).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

KERNELS_ENV = "MCUQ_FUZZ_KERNELS"


def use_kernels(path: str | None = None) -> str | None:
    """Make ``mcuq.compile_model`` (as the fuzz modules and the test harness call it) default to ``kernels=path``
    (default: ``$MCUQ_FUZZ_KERNELS``); returns the path, None when unset."""
    import functools

    import mcuq
    import mcuq.api

    path = path or os.environ.get(KERNELS_ENV) or None
    if path:
        mcuq.compile_model = functools.partial(mcuq.api.compile_model, kernels=path)
    return path


def main() -> None:
    use_kernels()
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    models: dict[str, bytes] = {}
    for line in sys.stdin:
        task = json.loads(line)
        t0 = time.monotonic()
        if task["task"] == "mutant":
            from . import judge

            path = task["path"]
            if path not in models:
                models[path] = Path(path).read_bytes()
            res = judge.judge(
                task["model"], models[path], task["seed"], use_oracle=task["oracle"], check_cli=task["cli"]
            ).as_dict()
        elif task["task"] == "quant":
            from . import qjudge

            res = qjudge.judge_quant(
                task["model"], task["family"], task["seed"], use_oracle=task["oracle"], cli=task["cli"],
                determinism=task["det"],
            ).as_dict()  # fmt: skip
        elif task["task"] == "ops":
            from . import opcheck

            res = [r.as_dict() for r in opcheck.check_range(task["seed"], task["start"], task["count"], task["oracle"])]
        elif task["task"] == "sleep":  # for the pool's own tests: a hang, a crash, an echo
            time.sleep(task["seconds"])
            res = {"slept": task["seconds"]}
        elif task["task"] == "exit":
            os._exit(task["status"])
        else:
            res = {"echo": task.get("value")}
        if isinstance(res, dict):
            res["seconds"] = round(time.monotonic() - t0, 2)
        proto.write(json.dumps({"id": task["id"], "result": res}) + "\n")


if __name__ == "__main__":
    main()
