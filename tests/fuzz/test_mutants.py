"""A bounded, seeded run of byte-level mutants of real models through the whole pipeline (``make fuzz`` runs
thousands): each mutant either fails with one clean line, or compiles to C that builds under ASan/UBSan, runs
without a finding and matches ``mcuq.reference.run_graph`` (and the oracle, where it loads the mutant)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from .run import fuzz_models, run_mutants, save_mutants
from .summary import mutant_summary

N_MUTANTS = 300  # about 40-80 s on 2 cores with digits, KWS, ResNet and the 16x8 and packed models
SEED = 0


def test_mutants_fail_cleanly_or_compile_to_correct_c(tmp_path: Path) -> None:
    models = fuzz_models()
    res = run_mutants(N_MUTANTS, SEED, models=models, log_dir=tmp_path / "logs")
    assert [r["seed"] for r in res] == list(range(SEED, SEED + N_MUTANTS))
    failures = [r for r in res if r["kind"] == "failure"]
    if failures:
        saved = save_mutants(failures, tmp_path / "mutants", models)
        lines = mutant_summary(res, list(models), 0)
        pytest.fail("\n".join([*lines, f"failing mutants saved in {saved}"]), pytrace=False)
    kinds = Counter(r["kind"] for r in res)
    # the mutants reach both outcomes, on every model: neither all rejected at load nor all harmless
    assert kinds["clean_error"] >= N_MUTANTS // 5 and kinds["matched"] >= N_MUTANTS // 10, kinds
    for m in models:
        assert {r["kind"] for r in res if r["model"] == m} == {"clean_error", "matched"}, m
    cli = [r for r in res if r.get("cli")]
    assert len(cli) >= N_MUTANTS // 10 and {r["cli"] for r in cli} == {"exit 0", "exit 2"}
