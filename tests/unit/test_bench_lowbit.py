"""`make bench-lowbit` (benchmarks/lowbit.py): its pure parts. The tables (formatting, '-' for what was not
measured), the solver comparison, the section it writes into docs/benchmarks.md (only that section, byte for byte
elsewhere), the per-layer precision string, the QEMU cache key. No quantization, no toolchain, no numbers."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from benchmarks import lowbit as lb
from benchmarks import shared_models as sm
from mcuq.quant.precision import LayerPrecision

COLUMNS = ["accuracy %", "SQNR dB"]


def res(label: str, kind: str = "uniform", **kw) -> lb.Result:
    return lb.Result("digits", label, kind, **kw)


def test_model_table_rows_and_missing_values() -> None:
    rows = [
        res("float model", "float", metrics={"accuracy %": 98.333, "SQNR dB": float("inf")}),
        res("w8a8", metrics={"accuracy %": 98.0, "SQNR dB": 30.123}, weight_bytes=3184,
            arena={lb.M4: 1280, lb.M55: 1280}, instructions={lb.M4: 123456, lb.M55: 45678}),
        res("w4a8", metrics={"accuracy %": 97.5}, weight_bytes=1584, arena={lb.M4: 1536, lb.M55: 1280}),
        res("exact solver, weights <= 50 %", "exact", error="digits ...: KeyError: 'x'"),
        res("AI Edge Quantizer static_wi8_ai8", "aieq", metrics={"accuracy %": 98.33, "SQNR dB": 29.39},
            note="TensorFlow 2.21; file 8,072 B"),
    ]  # fmt: skip
    lines = lb.model_table(rows, COLUMNS, int8_bytes=3184)
    assert lines[0].startswith("| configuration | accuracy % | SQNR dB | weight bytes | of w8a8 |")
    assert lines[1].count("|") == lines[0].count("|")
    assert all(line.count("|") == lines[0].count("|") for line in lines)
    assert lines[2] == "| float model | 98.33 | exact | - | - | - | - | - |  |"
    assert lines[3] == "| w8a8 | 98.00 | 30.12 | 3,184 | 100.0 % | 1,280 | 123,456 | 45,678 |  |"
    # a value not measured is "-", never a number; arenas that differ by board are both shown
    assert lines[4] == "| w4a8 | 97.50 | - | 1,584 | 49.7 % | 1,536 / 1,280 | - | - |  |"
    assert lines[5].endswith("| - | - | - | - | - | - | - | not measured (see the list below) |")
    assert lines[6].endswith("| TensorFlow 2.21; file 8,072 B |")


def test_choice_table_gain_only_when_both_measured() -> None:
    ex = res("exact", "exact", metrics={"accuracy %": 97.25})
    gr = res("greedy", "greedy", metrics={"accuracy %": 95.0})
    missing = res("greedy", "greedy", error="boom")
    choices = [
        lb.Choice("digits", 0.5, 1592, 0.0123, 0.0456, ex, gr),
        lb.Choice("digits", 0.4, 1273, 0.02, None, ex, missing),
    ]
    lines = lb.choice_table(choices, lambda model: "accuracy %")
    assert lines[2] == "| digits | 50 % | 1,592 | accuracy % | 0.0123 | 97.25 | 0.0456 | 95.00 | +2.25 |"
    assert lines[3] == "| digits | 40 % | 1,273 | accuracy % | 0.02 | 97.25 | - | - | - |"


def test_precision_string_marks_int16() -> None:
    p = {"a": LayerPrecision(8, "int8"), "b": LayerPrecision(4, "int16"), "c": LayerPrecision(1, "int8")}
    assert lb.precision_string(["a", "b", "c"], p) == "8 4* 1"


def test_short_and_primary_metric() -> None:
    assert lb.short("digits accuracy %") == "accuracy %"
    assert lb.short("hello_world SQNR dB") == "SQNR dB"
    case = SimpleNamespace(metrics={"digits accuracy %": None, "digits SQNR dB": None})
    assert lb.primary_metric(case) == "accuracy %"
    assert lb.primary_metric(SimpleNamespace(metrics={"AD SQNR dB": None})) == "SQNR dB"


def test_render_is_deterministic_and_lists_missing() -> None:
    tables = {"hello": ["| configuration |", "|---|"]}
    a = lb.render(tables, [], ["hello exact: KeyError"], "mcuq 0.1.0", "lowbit_pareto.svg")
    b = lb.render(tables, [], ["hello exact: KeyError"], "mcuq 0.1.0", "lowbit_pareto.svg")
    assert a == b
    assert a.startswith(lb.SECTION + "\n")
    assert "\n## " not in a  # one section: sub-headings only, so the next "## " ends it
    assert "### hello" in a and "![" in a and "- hello exact: KeyError" in a
    assert "**Not measured**" not in lb.render(tables, ["| x |"], [], "v", None)


def test_write_section_replaces_only_its_section(tmp_path: Path) -> None:
    md = tmp_path / "benchmarks.md"
    before = "# Benchmarks\n\nintro\n\n## Post-training quantization\n\nPTQ table\n"
    md.write_text(before)
    lb.write_section(md, lb.SECTION + "\n\nfirst\n")
    assert md.read_text() == before + "\n" + lb.SECTION + "\n\nfirst\n"
    after = "\n## Later section\n\nkept\n"
    md.write_text(md.read_text() + after)
    lb.write_section(md, lb.SECTION + "\n\nsecond\n")
    assert md.read_text() == before + "\n" + lb.SECTION + "\n\nsecond\n" + after
    lb.write_section(md, lb.SECTION + "\n\nsecond\n")  # idempotent
    assert md.read_text() == before + "\n" + lb.SECTION + "\n\nsecond\n" + after


def test_write_section_new_file(tmp_path: Path) -> None:
    md = tmp_path / "new.md"
    lb.write_section(md, lb.SECTION + "\n\nx\n")
    assert md.read_text() == "# Benchmarks\n\n" + lb.SECTION + "\n\nx\n"


def test_make_bench_keeps_the_section() -> None:
    """`make bench` rewriting docs/benchmarks.md from scratch keeps this section (and what follows it)."""
    text = "# old\n\n" + lb.SECTION + "\n\nlow-bit table\n"
    assert sm.kept_sections(text) == "\n" + lb.SECTION + "\n\nlow-bit table\n"


def test_files_key_depends_on_content_and_board() -> None:
    cm = SimpleNamespace(kernels="dsp", files={"m.c": "int a;", "m.h": "x"})
    k = lb.files_key(cm, lb.M4)
    assert k == lb.files_key(SimpleNamespace(kernels="dsp", files={"m.h": "x", "m.c": "int a;"}), lb.M4)
    assert k != lb.files_key(cm, lb.M55)
    assert k != lb.files_key(SimpleNamespace(kernels="dsp", files={"m.c": "int b;", "m.h": "x"}), lb.M4)


def test_qemu_cache_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "qemu.json"
    path.write_text('{"abc": {"arena": 256, "instructions": 1000}}\n')
    assert lb.QemuCache(path).data == {"abc": {"arena": 256, "instructions": 1000}}


def test_footnote_only_when_a_row_was_not_run_by_the_oracle() -> None:
    plain = {"ad": ["| w8a8 | 1 |"]}
    marked = {"ad": [f"| exact | 1 | 8 4* {lb.NO_ORACLE} |"]}
    assert lb.NO_ORACLE_NOTE not in lb.render(plain, [], [], "v", None)
    assert lb.NO_ORACLE_NOTE in lb.render(marked, [], [], "v", None)


def test_widening_quantize() -> None:
    from mcuq.ir import DType, OpKind

    def graph(src: DType, dst: DType) -> SimpleNamespace:
        op = SimpleNamespace(kind=OpKind.QUANTIZE, inputs=("a",), outputs=("b",))
        tensors = {"a": SimpleNamespace(dtype=src), "b": SimpleNamespace(dtype=dst)}
        return SimpleNamespace(ops=[op], tensors=tensors)

    assert lb.widening_quantize(graph(DType.INT8, DType.INT16))
    assert not lb.widening_quantize(graph(DType.INT16, DType.INT8))
    assert not lb.widening_quantize(graph(DType.INT8, DType.INT8))


def test_no_16x8_names_ops_outside_the_issue_list() -> None:
    from mcuq.ir import OpKind

    g = SimpleNamespace(ops=[SimpleNamespace(kind=k) for k in (OpKind.CONV2D, OpKind.HARD_SWISH, OpKind.RELU6)])
    assert lb.no_16x8(g) == ["HARD_SWISH", "RELU6"]
    assert lb.no_16x8(SimpleNamespace(ops=[SimpleNamespace(kind=OpKind.FULLY_CONNECTED)])) == []
    text = lb.render({}, [], [], "v", None, ["digits2: HARD_SWISH", "digits2: HARD_SWISH"])
    assert text.count("- digits2: HARD_SWISH") == 1 and "Not available by design" in text


def test_pareto_plot_is_reproducible(tmp_path: Path) -> None:
    import pytest

    pytest.importorskip("matplotlib")
    rows = [
        res("w8a8", metrics={"accuracy %": 98.0}, weight_bytes=3184),
        res("w4a8", metrics={"accuracy %": 97.0}, weight_bytes=1584),
        res("exact", "exact", metrics={"accuracy %": 97.5}, weight_bytes=1500),
        res("greedy", "greedy", metrics={"accuracy %": 96.5}, weight_bytes=1400),
        res("missing", "exact", error="x"),
    ]
    a, b = tmp_path / "a.svg", tmp_path / "b.svg"
    assert lb.draw_pareto({"digits": rows}, {"digits": "accuracy %"}, a)
    assert lb.draw_pareto({"digits": rows}, {"digits": "accuracy %"}, b)
    assert a.read_bytes() == b.read_bytes()
    assert b"<dc:date>" not in a.read_bytes()
