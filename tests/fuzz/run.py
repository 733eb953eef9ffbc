"""Long fuzz runs: ``make fuzz`` (mutants of real models), ``make fuzz-ops`` (random one-op configurations) and
``make fuzz-quant`` (hostile float models and calibration data through the quantizer).

    python -m tests.fuzz.run mutants [--n 10000] [--seed 0] [--jobs J] [--model digits] [--out build/fuzz]
    python -m tests.fuzz.run ops [--n 3000] [--seed 0] [--jobs J] [--out build/fuzz] [--kernels mve]
    python -m tests.fuzz.run quant [--n 2000] [--seed 0] [--jobs J] [--model digits] [--family calib]

Mutant ``i`` of a run is seed ``seed + i`` of model ``i mod (number of models)``: digits (examples/), and KWS
and ResNet from the shared models folder when present. A run prints the counts by outcome and every failing seed
with its cause, saves each failing mutant (or one-op model) under ``--out`` for reproduction, and exits 1 if
anything failed. ``--seed S --n 1 --model M`` reruns one mutant. Quant case ``i`` is seed ``seed + i`` of one
family and one float model (``tests.fuzz.qrun``); ``--seed S --n 1 --model M --family F`` reruns one.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.conftest import models_dir

from .pool import ROOT, Pool, collect
from .summary import mutant_summary, ops_summary, quant_summary

MUTANT_TIMEOUT = 300.0  # seconds per mutant (compile, build, run, oracle, CLI)
OPS_CHUNK = 21  # configurations per task: one of each op kind
OPS_TIMEOUT = 900.0  # seconds per chunk


def _built_models() -> dict[str, Path]:
    """Issue 11's models, built by the tests and written under build/fuzz/models: ``mixed16x8`` (int16 activations,
    int8, int4, ternary and binary weights, int64 biases, a QUANTIZE to int8) and ``packed`` (int8 activations,
    int4 and binary weights in the int8-container file with its ``mcuq_weight_bits`` metadata)."""
    from mcuq.frontend.tflite_writer import write
    from tests.e2e.test_16x8_conv import mixed_model
    from tests.unit.test_packed_weights import _conv_fc

    folder = ROOT / "build" / "fuzz" / "models"
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, graph in (("mixed16x8", mixed_model()), ("packed", _conv_fc())):
        path, data = folder / f"{name}.tflite", write(graph)
        if not path.is_file() or path.read_bytes() != data:
            tmp = path.with_name(f".{name}.{os.getpid()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        out[name] = path
    return out


def fuzz_models() -> dict[str, Path]:
    """The models to mutate, by short name: digits always, KWS and ResNet when ../shared/models has them, and the
    16x8 and packed-weight models of ``_built_models``."""
    models = {"digits": ROOT / "examples" / "digits_cnn.tflite"}
    shared = models_dir() / "mlperf_tiny"
    for name, file in (("kws", "kws_ref_model.tflite"), ("resnet", "pretrainedResnet_quant.tflite")):
        if (shared / file).is_file():
            models[name] = shared / file
    models.update(_built_models())
    return models


def _jobs(jobs: int | None) -> int:
    return jobs or os.cpu_count() or 2


def run_mutants(
    n: int,
    seed: int = 0,
    *,
    jobs: int | None = None,
    models: dict[str, Path] | None = None,
    oracle: bool = True,
    cli_every: int = 8,
    log_dir: Path | None = None,
    progress: Callable[[list[dict]], None] | None = None,
) -> list[dict]:
    """Judge mutants ``seed .. seed + n - 1`` (``judge.Outcome`` dicts, by seed). Every ``cli_every``-th mutant is
    also compiled with the CLI."""
    models = models or fuzz_models()
    names = list(models)
    tasks = []
    for i in range(n):
        name = names[i % len(names)]
        cli = bool(cli_every) and i % cli_every == 0
        s = seed + i
        tasks.append({"id": i, "task": "mutant", "model": name, "path": str(models[name]), "seed": s, "oracle": oracle,
                      "cli": cli})  # fmt: skip
    return collect(Pool(_jobs(jobs), MUTANT_TIMEOUT, log_dir).run(tasks), ("model", "seed"), progress)


def run_ops(
    n: int,
    seed: int = 0,
    *,
    start: int = 0,
    jobs: int | None = None,
    oracle: bool = True,
    log_dir: Path | None = None,
    progress: Callable[[list[dict]], None] | None = None,
) -> list[dict]:
    """Check configurations ``start .. start + n - 1`` of the run ``seed`` (``opcheck.OpOutcome`` dicts)."""
    from .opgen import KINDS

    tasks = []
    for k, first in enumerate(range(start, start + n, OPS_CHUNK)):
        count = min(OPS_CHUNK, start + n - first)
        tasks.append({"id": k, "task": "ops", "seed": seed, "start": first, "count": count, "oracle": oracle})
    out: list[dict] = []
    for done in Pool(_jobs(jobs), OPS_TIMEOUT, log_dir).run(tasks):
        t = done.task
        if done.error:
            for i in range(t["start"], t["start"] + t["count"]):
                kind = KINDS[i % len(KINDS)]
                out.append({"seed": seed, "index": i, "kind": kind, "verdict": "failure", "detail": done.error})
        else:
            out.extend(done.result)
        if progress:
            progress(out)
    return sorted(out, key=lambda r: r["index"])


def save_mutants(failures: list[dict], out_dir: Path, models: dict[str, Path] | None = None) -> Path:
    """Write each failing mutant as ``<model>-<seed>.tflite`` and the list as failures.json; returns the folder."""
    from .mutate import mutant

    models = models or fuzz_models()
    out_dir.mkdir(parents=True, exist_ok=True)
    for f in failures:
        data, _ = mutant(models[f["model"]].read_bytes(), f["seed"])
        (out_dir / f"{f['model']}-{f['seed']}.tflite").write_bytes(data)
    (out_dir / "failures.json").write_text(json.dumps(failures, indent=1))
    return out_dir


def save_ops(failures: list[dict], out_dir: Path) -> Path:
    """Write each failing configuration as ``op-<seed>-<index>-<kind>.tflite`` and the list as failures.json."""
    from mcuq.frontend.tflite_writer import write

    from .opgen import draw

    out_dir.mkdir(parents=True, exist_ok=True)
    for f in failures:
        (out_dir / f"op-{f['seed']}-{f['index']}-{f['kind']}.tflite").write_bytes(
            write(draw(f["seed"], f["index"]).graph)
        )
    (out_dir / "failures.json").write_text(json.dumps(failures, indent=1))
    return out_dir


def _progress(every: int, total: int, what: str, t0: float) -> Callable[[list[dict]], None]:
    """A progress line on stderr each time another ``every`` results are in."""
    shown = [0]

    def report(done: list[dict]) -> None:
        if len(done) >= shown[0] + every or len(done) == total:
            shown[0] = len(done)
            bad = sum(1 for d in done if d.get("kind", d.get("verdict")) == "failure")
            print(f"  {len(done)}/{total} {what}, {bad} failing, {time.time() - t0:.0f} s", file=sys.stderr, flush=True)

    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.fuzz.run", description=__doc__.split("\n\n")[0])
    p.add_argument("what", choices=("mutants", "ops", "quant"))
    p.add_argument(
        "--n",
        type=int,
        default=None,
        help="mutants (default 10000), configurations (default 3000) or quant cases (default 2000)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--start", type=int, default=0, help="ops: the first configuration index")
    p.add_argument("--jobs", type=int, default=None, help="worker processes (default: the number of CPUs)")
    p.add_argument(
        "--model",
        action="append",
        help="mutants: only these models (digits, kws, resnet, mixed16x8, packed); quant: (digits, mix, hello, ad, resnet, vww)",
    )
    p.add_argument("--family", action="append", help="quant: only these families (bytes, content, calib, files)")
    p.add_argument(
        "--kernels",
        choices=("auto", "portable", "dsp", "mve"),
        default=None,
        help="mutants, ops: the kernel path compile_model and the CLI use (default: compile_model's, auto)",
    )
    p.add_argument("--no-oracle", action="store_true", help="do not compare with tflite-runtime")
    p.add_argument("--out", type=Path, default=ROOT / "build" / "fuzz", help="failing inputs and worker logs")
    args = p.parse_args(argv)
    t0 = time.time()
    if args.kernels:  # the workers inherit it (worker.use_kernels)
        os.environ["MCUQ_FUZZ_KERNELS"] = args.kernels
    if args.what == "quant":
        return _quant_main(args, t0)
    if args.what == "mutants":
        models = fuzz_models()
        if args.model:
            models = {m: models[m] for m in args.model}
        n = 10000 if args.n is None else args.n
        every = max(1, min(1000, n // 10))
        res = run_mutants(
            n, args.seed, jobs=args.jobs, models=models, oracle=not args.no_oracle, log_dir=args.out / "logs",
            progress=_progress(every, n, "mutants", t0),
        )  # fmt: skip
        failures = [r for r in res if r["kind"] == "failure"]
        print("\n".join(mutant_summary(res, sorted(models), time.time() - t0)))
        if failures:
            print(f"failing mutants saved in {save_mutants(failures, args.out / 'mutants', models)}")
    else:
        n = 3000 if args.n is None else args.n
        res = run_ops(
            n, args.seed, start=args.start, jobs=args.jobs, oracle=not args.no_oracle, log_dir=args.out / "logs",
            progress=_progress(max(1, min(500, n // 10)), n, "configurations", t0),
        )  # fmt: skip
        failures = [r for r in res if r["verdict"] == "failure"]
        print("\n".join(ops_summary(res, time.time() - t0)))
        if failures:
            print(f"failing configurations saved in {save_ops(failures, args.out / 'ops')}")
    return 1 if failures else 0


def _quant_main(args: argparse.Namespace, t0: float) -> int:
    from .qjudge import FAMILIES
    from .qrun import run_quant, save_quant
    from .qsources import sources

    models = args.model or list(sources())
    families = args.family or list(FAMILIES)
    unknown = sorted(set(models) - set(sources())) + sorted(set(families) - set(FAMILIES))
    if unknown:
        print(f"unknown model or family: {', '.join(unknown)}", file=sys.stderr)
        return 2
    n = 2000 if args.n is None else args.n
    res = run_quant(
        n, args.seed, jobs=_jobs(args.jobs), models=models, families=families, oracle=not args.no_oracle,
        log_dir=args.out / "logs", progress=_progress(max(1, min(500, n // 10)), n, "quant cases", t0),
    )  # fmt: skip
    failures = [r for r in res if r["kind"] == "failure"]
    print("\n".join(quant_summary(res, models, families, time.time() - t0)))
    if failures:
        print(f"failing cases saved in {save_quant(failures, args.out / 'quant')}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
