"""`make bench` (benchmarks/shared_models.py) and `mcuq bench`'s pure parts: target checks, table rows, the markdown
blocks the script rewrites (prose and the PTQ section kept), the plan summary. No toolchain needed."""

from __future__ import annotations

from dataclasses import replace

import pytest

import mcuq
from benchmarks import shared_models as sm
from mcuq.firmware.profile import LayerProfile, Profile, format_text, plan_summary, to_dict
from tests.conftest import ROOT


def meas(model: str = "kws_ref_model", board: str = sm.M4, path: str = "dsp", instructions: int = 1_000_000, **kw):
    base = dict(
        macs=2_656_768,
        arena=8_000,
        code=6_000,
        text_without_weights=9_000,
        weights=30_000,
        flash=40_000,
        ram=12_000,
        stack_used=380,
        lower_bound=16_000,
        kernel_code={"mcuq_conv2d_s8_dsp": 900, "mcuq_softmax_s8": 1_460, "model": 700, "other": 1_200},
        plan=("arena 8000 bytes (liveness bound 16000)", "  in place: saves 8000"),
    )
    base.update(kw)
    return sm.Measurement(model, board, path, instructions=instructions, **base)


def test_met() -> None:
    assert sm.met(0.65, 0.65, at_least=True) == "yes"
    assert sm.met(0.649, 0.65, at_least=True) == "**no**"
    assert sm.met(9_000, 9_000, at_least=False) == "yes"
    assert sm.met(9_001, 9_000, at_least=False) == "**no**"
    assert sm.met(1, None, at_least=True) == "-"


def test_speed_row() -> None:
    ref, opt = meas(path="portable", instructions=32_000_000), meas(instructions=4_000_000)
    r = dict(zip(sm.SPEED_HEADER, sm.speed_row(ref, opt)))
    assert r["optimized path"] == "dsp" and r["portable / optimized"] == "8.00"
    assert r["MACs / instruction, optimized"] == "0.664" and r["target"] == ">= 0.65" and r["met"] == "yes"
    assert r["TFLM + CMSIS-NN instructions"] == "7,699,895" and r["TFLM + CMSIS-NN / optimized"] == "1.92"
    slow = dict(zip(sm.SPEED_HEADER, sm.speed_row(ref, replace(opt, board=sm.M55, path="mve"))))
    assert slow["target"] == ">= 2.3" and slow["met"] == "**no**"
    other = dict(zip(sm.SPEED_HEADER, sm.speed_row(ref, replace(opt, board="mps2-an500", model="x"))))
    assert other["target"] == other["met"] == other["TFLM + CMSIS-NN instructions"] == "-"
    assert len(sm.speed_row(ref, opt)) == len(sm.SPEED_HEADER)


def test_memory_row() -> None:
    ref, opt = meas(path="portable", arena=16_000), meas()
    r = sm.memory_row(ref, opt)
    assert len(r) == len(sm.MEMORY_HEADER)
    assert r[3:9] == ["16,000", "8,000", "16,000", "9,000", "yes", "22,832"]  # arena: portable, opt, bound, target
    assert r[9:13] == ["9,000", "16,384", "yes", "83,968"]  # .text without weights, its M4 target, TFLM's
    m55 = sm.memory_row(ref, replace(opt, board=sm.M55, arena=9_001))
    assert m55[7] == "**no**" and m55[8] == "-" and m55[10:12] == ["-", "-"]  # no .text target off the M4
    ad = sm.memory_row(ref, replace(opt, model="ad01_int8", arena=256, text_without_weights=8_193))
    assert ad[6:8] == ["256", "yes"] and ad[10:12] == ["8,192", "**no**"]


def test_kernel_rows_and_plan_lines() -> None:
    m = meas()
    assert sm.kernel_code_cell(m.kernel_code) == "softmax_s8 1,460, conv2d_s8_dsp 900"
    assert sm.kernel_row(m)[3:] == ["softmax_s8 1,460, conv2d_s8_dsp 900", "2,360", "700", "1,200"]
    assert sm.kernel_code_cell({"model": 1, "other": 2}) == "-"
    ref = meas(path="portable", plan=("arena 16000 bytes",))
    assert sm.distinct(ref, m) == (ref, m) and sm.distinct(m, m) == (m,)
    lines = sm.plan_lines([(ref, m), (ref, replace(m, board=sm.M55))])  # one line per model and path
    assert lines == [
        "- **kws_ref_model**, portable: arena 16000 bytes",
        "- **kws_ref_model**, dsp: arena 8000 bytes (liveness bound 16000); in place: saves 8000",
    ]


def test_short_plan_line() -> None:
    long = "  step   3 in place: out/a;b at in/c;d +0 (allowed <= +320), 8000 bytes shared"
    assert sm.short_plan_line(long) == "step 3 in place 8,000 B"
    assert (
        sm.short_plan_line("  levers: no levers 17559, in place 9559 (-8000)")
        == "levers: no levers 17559, in place 9559 (-8000)"
    )
    assert sm.short_plan_line("x" * 200, 20) == "x" * 17 + "..."


def test_describe_commit() -> None:
    assert sm.describe_commit("abc123", False) == "`abc123`"
    assert sm.describe_commit("abc123", True) == "`abc123` with uncommitted changes"
    assert sm.commit_label(ROOT).startswith(("`", "unknown"))


PTQ = "## Post-training quantization\n\nPTQ prose.\n\n| a |\n|---|\n"


def test_render_default_document_keeps_ptq() -> None:
    blocks = {"commit": "Measured at commit `abc`.", "compile": "| t |", "qemu": "| q |"}
    old = "# Benchmarks\n\nold prose\n\n| old |\n\n" + PTQ
    new = sm.render(old, blocks)
    assert new.startswith(sm.PREAMBLE) and new.endswith(PTQ) and "old prose" not in new
    for name, body in blocks.items():
        assert f"<!-- bench:{name} -->\n{body}\n<!-- /bench:{name} -->" in new
    assert sm.render("", blocks) == sm.default_document(blocks)


def test_render_replaces_blocks_and_keeps_prose() -> None:
    blocks = {"commit": "Measured at commit `abc`.", "compile": "| t |", "qemu": "| q |"}
    doc = sm.render("", blocks).replace("# Benchmarks\n", "# Benchmarks\n\nHand-written prose.\n") + "\n" + PTQ
    again = sm.render(doc, {"commit": "Measured at commit `def`.", "compile": "| t2 |"})  # qemu: not re-measured
    assert "Hand-written prose." in again and again.endswith(PTQ)
    assert "`def`" in again and "`abc`" not in again and "| t2 |" in again and "| q |" in again
    assert sm.replace_blocks(doc, {"missing": "x"}) is None
    twice = doc.replace("<!-- /bench:qemu -->", "<!-- /bench:qemu -->\n<!-- bench:qemu -->\nx\n<!-- /bench:qemu -->")
    assert sm.replace_blocks(twice, {"qemu": "y"}) is None  # ambiguous: the default document instead
    assert sm.replace_blocks(doc, {"compile": "a\\1 $b"}).count("a\\1 $b") == 1  # bodies are not regex templates


def test_targets_cover_the_tflm_models() -> None:
    assert set(sm.ARENA_TARGETS) == set(sm.TFLM) == set(sm.MAC_TARGETS[sm.M4]) == set(sm.MAC_TARGETS[sm.M55])
    stems = {f.split("/")[1].removesuffix(".tflite") for f, _ in sm.CASES[:4]}
    assert stems == set(sm.TFLM)


def test_plan_summary_drops_buffer_lines() -> None:
    cm = mcuq.compile_model(ROOT / "examples" / "digits_cnn.tflite", sanitize=False)
    lines, numbers = plan_summary(cm.plan)
    full = cm.plan.describe()
    assert lines[0] == full[0] and len(lines) < len(full)
    assert not any("steps" in line or "caller buffer" in line for line in lines)
    assert numbers["arena_size"] == cm.plan.arena_size and numbers["lower_bound"] == cm.plan.lower_bound
    assert plan_summary(None) == ((), {})


SIZES = dict(
    text=5_000,
    data=0,
    bss=3_000,
    dec=8_000,
    flash=5_000,
    code=3_000,
    rodata=2_000,
    weights=1_500,
    ram=3_000,
    arena=64,
    stack=2_048,
    ram_other=888,
)


def test_profile_text_and_dict_show_path_kernels_and_plan() -> None:
    layers = (
        LayerProfile(0, "CONV_2D", "c", (1, 4, 4, 8), 1_000, 2_000, "mcuq_conv2d_s8_dsp"),
        LayerProfile(1, "RESHAPE", "r", (1, 128), 0, 8),
    )
    p = Profile(
        "m",
        "mps2-an386",
        layers,
        (2_020,),
        SIZES,
        kernels="dsp",
        kernel_code={"mcuq_conv2d_s8_dsp": 800, "model": 100, "other": 900},
        plan=("arena 64 bytes (liveness bound 128)",),
        plan_numbers={"arena_size": 64},
    )
    text = format_text(p)
    assert "(kernels dsp)" in text and "mcuq_conv2d_s8_dsp" in text and "3,500" in text  # 5,000 - 1,500
    assert "arena 64 bytes (liveness bound 128)" in text and "code (.text) by kernel" in text
    d = to_dict(p)
    assert d["kernels"] == "dsp" and d["layers"][0]["kernel"] == "mcuq_conv2d_s8_dsp" and d["layers"][1]["kernel"] == ""
    assert d["sizes"]["text_without_weights"] == 3_500 and d["kernel_code"]["model"] == 100
    assert d["plan"] == {"summary": ["arena 64 bytes (liveness bound 128)"], "arena_size": 64}


@pytest.mark.parametrize("value,ok", [(2.3, "yes"), (2.2999, "**no**")])
def test_m55_kws_target_boundary(value: float, ok: str) -> None:
    assert sm.met(value, sm.MAC_TARGETS[sm.M55]["kws_ref_model"], at_least=True) == ok
