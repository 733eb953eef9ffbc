"""A bounded, seeded run of the quantizer fuzzer (``make fuzz-quant`` runs thousands): hostile float models
(byte-level mutants, NaN/inf/huge/tiny/denormal weights and operands, hostile shapes) and hostile calibration data
(extreme values, dtypes, shapes, forms, files) through ``mcuq.quantize``. Each case either fails with one clean
line (exit 2 and one line through ``mcuq quantize``) or gives an int8 model with finite positive scales that mcuq
compiles, whose C (ASan/UBSan) equals ``run_graph`` and the oracle bit for bit; plus the fuzzer's own parts."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from mcuq import ir

from .qjudge import FAMILIES, Failed, check_qparams, judge_quant, make_case
from .qrun import quant_tasks, run_quant, save_quant
from .qsources import sources
from .summary import quant_summary

N_CASES = 240  # about 40 s on 2 cores: every family on every source model, the CLI on a quarter
SEED = 0


def test_quant_cases_fail_cleanly_or_quantize_to_correct_c(tmp_path: Path) -> None:
    models, families = list(sources()), list(FAMILIES)
    res = run_quant(N_CASES, SEED, jobs=os.cpu_count() or 2, models=models, families=families,
                    log_dir=tmp_path / "logs")  # fmt: skip
    assert [r["seed"] for r in res] == list(range(SEED, SEED + N_CASES))
    failures = [r for r in res if r["kind"] == "failure"]
    if failures:
        saved = save_quant(failures, tmp_path / "quant")
        lines = quant_summary(res, models, families, 0)
        pytest.fail("\n".join([*lines, f"failing cases saved in {saved}"]), pytrace=False)
    kinds = Counter(r["kind"] for r in res)
    assert kinds["clean_error"] >= N_CASES // 4 and kinds["matched"] >= N_CASES // 5, kinds
    for f in families:  # each family reaches the quantizer's refusals; all but hostile files reach a model too
        got = {r["kind"] for r in res if r["family"] == f}
        assert "clean_error" in got and ("matched" in got or f == "files"), (f, got)
    cli = [r for r in res if r.get("cli")]
    assert len(cli) >= N_CASES // 10 and {r["cli"] for r in cli} == {"exit 0", "exit 2"}


# -- the fuzzer's own parts --------------------------------------------------------------------------------------


def _fingerprint(case) -> tuple:
    calib = case.calib()
    arrays = case.arrays or {}
    return case.model, case.edits, type(calib).__name__, tuple((k, np.asarray(v).tobytes()) for k, v in arrays.items())


@pytest.mark.parametrize("family", [f for f in FAMILIES if f != "files"])
def test_cases_are_deterministic_and_varied(family: str, tmp_path: Path) -> None:
    src = sources()["digits"]
    first = [_fingerprint(make_case(src, family, s, tmp_path)) for s in range(20)]
    assert first == [_fingerprint(make_case(src, family, s, tmp_path)) for s in range(20)]
    assert len({f[:2] for f in first}) >= 15


def _written(path: Path) -> object:
    """What a files case left at ``path``: a file's bytes, a folder's entry names, or what else it is."""
    if path.is_symlink() or not path.exists():
        return "missing or a link"
    if path.is_dir():
        return sorted(p.name for p in path.iterdir())
    return path.read_bytes() if path.is_file() else "special"


def test_files_cases_write_the_same_files(tmp_path: Path) -> None:
    src = sources()["digits"]
    runs = []
    for k in range(2):
        cases = []
        for s in range(12):
            d = tmp_path / f"{k}-{s}"
            d.mkdir()
            c = make_case(src, "files", s, d)
            cases.append((c.edits, _written(Path(c.path)) if Path(c.path).is_relative_to(d) else c.path))
        runs.append(cases)
    assert runs[0] == runs[1]
    assert len({e for e, _ in runs[0]}) >= 8


def test_tasks_spread_families_over_models_and_the_cli() -> None:
    tasks = quant_tasks(32, 5, ["a", "b"], list(FAMILIES), True, 4)
    assert [t["seed"] for t in tasks] == list(range(5, 37))
    assert {(t["family"], t["model"]) for t in tasks} == {(f, m) for f in FAMILIES for m in ("a", "b")}
    assert {t["family"] for t in tasks if t["cli"]} == set(FAMILIES)
    assert {t["family"] for t in tasks if t["det"]} == set(FAMILIES)


def test_zero_and_nan_scales_are_failures() -> None:
    def graph(scale: float) -> ir.Graph:
        q = ir.QParams((scale,), (0,))
        ts = {"x": ir.Tensor("x", (1, 4), ir.DType.INT8, q), "y": ir.Tensor("y", (1, 4), ir.DType.INT8, q)}
        op = ir.Op(ir.OpKind.RELU, "r", ("x",), ("y",), ir.NoAttrs(), 0)
        return ir.Graph("g", ts, (op,), ("x",), ("y",))

    check_qparams(graph(0.5))
    for bad in (0.0, float("nan"), float("inf"), -1.0):
        with pytest.raises(Failed, match="scale"):
            check_qparams(graph(bad))


def test_judge_reaches_both_outcomes_and_is_deterministic() -> None:
    seen: dict[str, int] = {}
    for seed in range(30):
        r = judge_quant("digits", "calib", seed, use_oracle=False)
        assert r.kind != "failure", r
        seen.setdefault(r.kind, seed)
        if len(seen) == 2:
            break
    assert set(seen) == {"clean_error", "matched"}
    for seed in seen.values():
        assert judge_quant("digits", "calib", seed, use_oracle=False) == judge_quant(
            "digits", "calib", seed, use_oracle=False
        )


def test_failing_cases_are_saved_for_reproduction(tmp_path: Path) -> None:
    failures = [
        {"model": "digits", "family": "content", "seed": 3, "kind": "failure", "cause": "x", "detail": "d"},
        {"model": "digits", "family": "files", "seed": 4, "kind": "failure", "cause": "x", "detail": "d"},
    ]
    saved = save_quant(failures, tmp_path)
    content = saved / "content-digits-3"
    assert (content / "model.tflite").read_bytes() == make_case(sources()["digits"], "content", 3, tmp_path).model
    assert (content / "calib.npy").is_file() and "--family content" in (content / "case.txt").read_text()
    assert (saved / "files-digits-4" / "model.tflite").is_file()
    assert '"seed": 4' in (saved / "failures.json").read_text()
