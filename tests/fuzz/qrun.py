"""Runs of the quantizer fuzzer over the worker pool (``python -m tests.fuzz.run quant``, ``make fuzz-quant``).

Case ``i`` of a run is seed ``seed + i`` of family ``FAMILIES[i mod F]`` on source model
``models[(i div F) mod M]``, so that every family meets every model. The CLI is checked on every ``cli_every``-th
round of families and a second quantization (determinism) on the round after; ``save_quant`` writes what is needed
to reproduce each failure.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .pool import Pool, collect

QUANT_TIMEOUT = 300.0  # seconds per case (quantize, compile, build, run, oracle, CLI)


def quant_tasks(n: int, seed: int, models: list[str], families: list[str], oracle: bool, cli_every: int) -> list[dict]:
    tasks = []
    for i in range(n):
        family = families[i % len(families)]
        rnd = i // len(families)
        model = models[rnd % len(models)]
        cli = bool(cli_every) and rnd % cli_every == 0
        det = bool(cli_every) and rnd % cli_every == 1
        tasks.append({"id": i, "task": "quant", "model": model, "family": family, "seed": seed + i, "oracle": oracle,
                      "cli": cli, "det": det})  # fmt: skip
    return tasks


def run_quant(
    n: int,
    seed: int = 0,
    *,
    jobs: int,
    models: list[str],
    families: list[str],
    oracle: bool = True,
    cli_every: int = 4,
    log_dir: Path | None = None,
    progress: Callable[[list[dict]], None] | None = None,
) -> list[dict]:
    """Judge cases ``seed .. seed + n - 1`` (``qjudge.QOutcome`` dicts, by seed)."""
    tasks = quant_tasks(n, seed, models, families, oracle, cli_every)
    return collect(Pool(jobs, QUANT_TIMEOUT, log_dir).run(tasks), ("model", "family", "seed"), progress)


def save_quant(failures: list[dict], out_dir: Path) -> Path:
    """One folder per failing case, ``<family>-<model>-<seed>/``: the model (``model.tflite``), its calibration
    data (``calib.npy``/``calib.npz``, or for the ``files`` family the hostile file or folder itself) where it can be
    saved, and ``case.txt`` (the edits and the command that reruns the case); failures.json lists them."""
    import tempfile

    from .qjudge import make_case
    from .qsources import sources

    out_dir.mkdir(parents=True, exist_ok=True)
    for f in failures:
        d = out_dir / f"{f['family']}-{f['model']}-{f['seed']}"
        d.mkdir(exist_ok=True)
        src = sources()[f["model"]]
        with tempfile.TemporaryDirectory() as tmp:
            case = make_case(src, f["family"], f["seed"], d if f["family"] == "files" else Path(tmp))
        (d / "model.tflite").write_bytes(case.model)
        saved = _save_calib(case, d)
        (d / "case.txt").write_text(
            f"{f.get('cause')}: {f.get('detail')}\nedits and options: {f.get('edits', case.edits)}\n"
            f"calibration: {saved}\n"
            f"rerun: python -m tests.fuzz.run quant --seed {f['seed']} --n 1 --model {f['model']} "
            f"--family {f['family']}\n"
        )
    (out_dir / "failures.json").write_text(json.dumps(failures, indent=1))
    return out_dir


def _save_calib(case, d: Path) -> str:
    if case.path is not None:
        return case.path
    if case.arrays is None:
        return "a Python object (not saved: rerun the case)"
    try:
        if len(case.arrays) == 1:
            a = next(iter(case.arrays.values()))
            np.save(d / "calib.npy", a, allow_pickle=a.dtype.hasobject)
            return str(d / "calib.npy")
        np.savez(d / "calib.npz", **case.arrays)
        return str(d / "calib.npz")
    except Exception as e:  # noqa: BLE001 - a key numpy refuses
        return f"not saved ({type(e).__name__}: rerun the case)"
