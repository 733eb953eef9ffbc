"""The fuzzers' own parts: deterministic mutants and configurations, the outcome rules, the worker pool's time
limit, the saved reproductions, and the union check's per-configuration comparison."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from mcuq.frontend.tflite_writer import write

from . import opcheck
from .judge import _build_failure, judge, message_problem
from .mutate import mutant
from .opgen import KINDS, draw
from .pool import Pool
from .regions import LABELS, find_spans
from .run import fuzz_models, save_mutants

DIGITS = fuzz_models()["digits"].read_bytes()


def test_mutants_are_deterministic_per_seed() -> None:
    first = [mutant(DIGITS, s) for s in range(60)]
    assert first == [mutant(DIGITS, s) for s in range(60)]
    assert len({m for m, _ in first}) >= 55
    assert sum(m != DIGITS for m, _ in first) >= 55


def test_spans_cover_every_label_inside_the_file() -> None:
    spans = find_spans(DIGITS)
    assert set(spans) == set(LABELS) - {"metadata"}  # digits has no metadata
    assert all(0 < s.start and s.start + s.length <= len(DIGITS) for v in spans.values() for s in v)
    names = {DIGITS[s.start : s.start + s.length] for s in spans["name"]}
    assert b"conv1/weights" in names
    packed = fuzz_models()["packed"].read_bytes()  # int8-container model: its mcuq_weight_bits JSON
    (meta,) = find_spans(packed)["metadata"]
    assert packed[meta.start : meta.start + meta.length] == b'{"tensors":{"1":4,"4":1},"version":1}'


def test_metadata_edits_stay_inside_the_json_and_vary() -> None:
    import numpy as np

    from .mutate import _json_edit

    packed = fuzz_models()["packed"].read_bytes()
    (meta,) = find_spans(packed)["metadata"]
    texts = set()
    for seed in range(100):
        buf = bytearray(packed)
        _json_edit(np.random.default_rng(seed), buf, meta)
        assert len(buf) == len(packed) and buf[: meta.start] == packed[: meta.start]
        assert buf[meta.start + meta.length :] == packed[meta.start + meta.length :]
        texts.add(bytes(buf[meta.start : meta.start + meta.length]))
    assert len(texts) >= 40, len(texts)
    # and the mutator reaches them: a fair share of the packed model's mutants edit its metadata
    assert sum("meta" in mutant(packed, s)[1] for s in range(100)) >= 10


def test_message_rules() -> None:
    assert message_problem("model.tflite: op 3 (CONV_2D 'c'): tensor index 9 out of range") == ""
    assert "2-line" in message_problem("first\nsecond")
    assert "unprintable" in message_problem("name \x1b[31m red")
    assert "unprintable" in message_problem("nul \x00 byte")
    assert "characters" in message_problem("x" * 5000)
    assert "empty" in message_problem(" ")


def test_build_failures_are_classified() -> None:
    ubsan = "m: the host run failed (exit 1):\nm.c:9:5: runtime error: signed integer overflow: 1 + 2147483647"
    assert _build_failure(ubsan) == ("sanitizer", "m.c:9:5: runtime error: signed integer overflow: 1 + 2147483647")
    cc = "compiling the generated C for 'm' failed:\ncc -c m.c\nm.c:1:1: error: expected ';'"
    assert _build_failure(cc) == ("build", "m.c:1:1: error: expected ';'")
    assert _build_failure("m: the host run failed (exit 3):\ninvoke status 1")[0] == "run"


def test_judge_is_deterministic_and_reaches_both_outcomes() -> None:
    seen: dict[str, int] = {}
    for seed in range(40):
        kind = judge("digits", DIGITS, seed, use_oracle=False).kind
        assert kind != "failure", seed
        seen.setdefault(kind, seed)
        if len(seen) == 2:
            break
    assert set(seen) == {"clean_error", "matched"}
    for seed in seen.values():
        assert judge("digits", DIGITS, seed, use_oracle=False) == judge("digits", DIGITS, seed, use_oracle=False)


def test_failing_mutants_are_saved_for_reproduction(tmp_path: Path) -> None:
    saved = save_mutants([{"model": "digits", "seed": 7, "kind": "failure", "cause": "x"}], tmp_path)
    assert (saved / "digits-7.tflite").read_bytes() == mutant(DIGITS, 7)[0]
    assert '"seed": 7' in (saved / "failures.json").read_text()


def test_pool_kills_a_hang_and_replaces_a_dead_worker() -> None:
    tasks = [
        {"id": 0, "task": "sleep", "seconds": 60},
        {"id": 1, "task": "exit", "status": 3},
        {"id": 2, "task": "echo", "value": "a"},
        {"id": 3, "task": "echo", "value": "b"},
    ]
    done = {d.task["id"]: d for d in Pool(2, timeout=3).run(tasks)}
    assert done[0].error.startswith("hang") and done[1].error.startswith("worker")
    assert done[2].result["echo"] == "a" and done[3].result["echo"] == "b"


def test_op_configurations_are_deterministic() -> None:
    configs = [draw(3, i) for i in range(2 * len(KINDS))]
    assert [c.kind for c in configs] == list(KINDS) * 2
    assert [write(c.graph) for c in configs] == [write(draw(3, i).graph) for i in range(2 * len(KINDS))]


def test_union_check_compares_each_configuration(monkeypatch) -> None:
    """A wrong value in one configuration's expected output leaves that one configuration to be checked alone."""
    configs = [draw(0, i) for i in range(3)]
    real = opcheck.reference_outputs

    def tampered(g, xs, **kw):
        ref = real(g, xs, **kw)
        out = g.outputs[1]
        ref[out] = ref[out].copy()
        ref[out].reshape(-1)[0] ^= np.int8(1)
        return ref

    monkeypatch.setattr(opcheck, "reference_outputs", tampered)
    results = opcheck._check_union(0, configs, with_oracle=False)
    assert results is not None and sorted(results) == [0, 2]
    assert all(dataclasses.asdict(r)["verdict"] == "exact_mirror" for r in results.values())
