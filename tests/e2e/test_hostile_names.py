"""Names from a model file are data, never C or terminal control: tensor and op names holding NUL, newlines,
comment delimiters, trigraphs, quotes, backslashes, ESC sequences, unicode or 300 characters give C that builds
with the strictest flags and runs bit-exact, and output that stays one printable line per message. Prefixes
(from a file name or --prefix) that would clash with the runtime's or the project's files are rewritten, said so,
and the project builds."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import mcuq
from mcuq import ir
from mcuq.cli import main
from mcuq.frontend.tflite_writer import write
from mcuq.reference import run_graph

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = (
    "nul\x00byte",
    "new\nline",
    "end*/comment",
    "open/*comment",
    "tri??/graph??=",
    'quote"d',
    "back\\slash\\",
    "esc\x1b[2J\x1b[31m",
    "unicodé ☃ 😀\u202e",
    "L" * 300,
)
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-Wtrigraphs", "-Wcomment", "-pedantic"]
HAVE_ARM = shutil.which("arm-none-eabi-gcc") is not None
HAVE_QEMU = HAVE_ARM and shutil.which("qemu-system-arm") is not None


def hostile_graph(seed: int = 0) -> ir.Graph:
    """x [1, 8] -> FC -> FC -> FC -> FC -> y [1, 4]: every HOSTILE string names an activation, a weight, a bias and
    an op (the activations carry the ones a .tflite file keeps as op names too)."""
    rng = np.random.default_rng(seed)

    def const(a: np.ndarray) -> np.ndarray:
        a.flags.writeable = False
        return a

    h = HOSTILE
    acts = [f"x{h[7]}", f"h1{h[0]}", f"h2{h[1]}", f"h3{h[4]}", h[9] + "y"]
    widths = (8, 8, 8, 8, 4)
    s_act = (0.05, 0.04, 0.03, 0.035, 0.1)
    tensors = {acts[0]: ir.Tensor(acts[0], (1, 8), ir.DType.INT8, ir.QParams((s_act[0],), (-3,)))}
    ops = []
    for li in range(4):
        x, y = acts[li], acts[li + 1]
        w, b = f"w{li}{h[(2 * li + 2) % 10]}", f"b{li}{h[(2 * li + 3) % 10]}"
        n_in, n_out, s_w = widths[li], widths[li + 1], 0.01
        weights = const(rng.integers(-127, 128, (n_out, n_in)).astype(np.int8))
        bias = const(rng.integers(-900, 900, n_out).astype(np.int32))
        tensors[w] = ir.Tensor(w, (n_out, n_in), ir.DType.INT8, ir.QParams((s_w,), (0,)), weights)
        tensors[b] = ir.Tensor(b, (n_out,), ir.DType.INT32, ir.QParams((s_act[li] * s_w,), (0,)), bias)
        tensors[y] = ir.Tensor(y, (1, n_out), ir.DType.INT8, ir.QParams((s_act[li + 1],), (li - 2,)))
        attrs = ir.FullyConnectedAttrs(ir.Activation.RELU if li % 2 else ir.Activation.NONE)
        ops.append(ir.Op(ir.OpKind.FULLY_CONNECTED, f"op{li}{h[li + 5]}", (x, w, b), (y,), attrs, li))
    return ir.Graph(
        "hostile\x1b*/??/", tensors, tuple(ops), (acts[0],), (acts[-1],), source="d/we*/ird??/\n\x1bn.tflite"
    )


@pytest.fixture(scope="module")
def compiled() -> mcuq.CompiledModel:
    return mcuq.compile_model(hostile_graph())


def _inputs(cm: mcuq.CompiledModel, n: int = 5) -> np.ndarray:
    t = cm.input_tensors[0]
    return np.random.default_rng(1).integers(-128, 128, size=(n, *t.shape), dtype=np.int8)


def test_hostile_names_reach_the_c_only_escaped(compiled) -> None:
    for fname, text in compiled.files.items():
        assert text.isascii(), fname
        assert "??" not in text, fname  # no trigraph anywhere
        assert all(line.isprintable() for line in text.splitlines()), fname  # no NUL, ESC, stray newline
    c = compiled.files[f"{compiled.prefix}.c"]
    assert "tri?\\?/graph" in c and "end*\\/comment" in c and "esc\\x1b[2J" in c  # shown, escaped, in comments
    assert 'MCUQ_BEGIN(2, "op2esc\\033[2J\\033[31m");' in c  # the hook's name literal holds the real bytes
    assert 'MCUQ_BEGIN(0, "op0quote\\"d");' in c and 'MCUQ_BEGIN(1, "op1back\\\\slash\\\\");' in c


def _compile_c(cc: list[str], files: dict[str, str], d: Path, extra: list[str]) -> None:
    d.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (d / name).write_text(text)
    for src in (n for n in files if n.endswith(".c")):
        for hooks in ([], ["-DMCUQ_LAYER_HOOKS"]):
            cmd = [*cc, *STRICT, *extra, *hooks, f"-I{ROOT / 'runtime_c' / 'include'}", "-c", src, "-o", "/dev/null"]
            proc = subprocess.run(cmd, cwd=d, capture_output=True, text=True, timeout=120)
            assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stderr[-3000:]}"


def test_hostile_names_build_with_strict_flags_on_the_host(compiled, tmp_path) -> None:
    """-std=c99 -Wall -Wextra -Werror -Wtrigraphs -pedantic, with and without the layer hooks (which pass each
    layer's name as a string literal)."""
    files = {k: v for k, v in compiled.files.items() if k.endswith((".c", ".h"))}
    _compile_c([os.environ.get("CC", "cc")], files, tmp_path, [])


@pytest.mark.skipif(not HAVE_ARM, reason="arm-none-eabi-gcc not installed")
def test_hostile_names_build_with_strict_flags_for_cortex_m(compiled, tmp_path) -> None:
    files = {k: v for k, v in compiled.files.items() if k.endswith((".c", ".h"))}
    _compile_c(["arm-none-eabi-gcc"], files, tmp_path, ["-mcpu=cortex-m4", "-mthumb", "-O2"])


def test_hostile_names_run_bit_exact_with_the_reference(compiled) -> None:
    g = compiled.graph
    xs = _inputs(compiled)
    got = compiled.run([xs])[0]
    want = np.stack([run_graph(g, [x], keep="outputs")[g.outputs[0]] for x in xs])
    np.testing.assert_array_equal(got, want)
    layers = compiled.run_layers([xs[0]])  # the hooks run, with every layer's name literal
    ref = run_graph(g, [xs[0]])
    assert set(layers) == {op.outputs[0] for op in g.ops}
    for name, a in layers.items():
        np.testing.assert_array_equal(a, ref[name], err_msg=repr(name))


@pytest.mark.skipif(not HAVE_QEMU, reason="arm-none-eabi-gcc or qemu-system-arm not installed")
def test_hostile_names_firmware_builds_and_runs_bit_exact_in_qemu(tmp_path) -> None:
    """The whole firmware project (main.c, startup.c, the board's name in comments) built by its Makefile."""
    cm = mcuq.compile_model(hostile_graph(), board="mps2-an386")
    cm.write(tmp_path / "fw")
    proc = subprocess.run(["make", "-C", str(tmp_path / "fw")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    xs = _inputs(cm, 3)
    g = cm.graph
    want = np.stack([run_graph(g, [x], keep="outputs")[g.outputs[0]] for x in xs])
    np.testing.assert_array_equal(cm.run([xs])[0], want)


# -- the terminal -------------------------------------------------------------------------------------------------
def _one_printable_line(text: str) -> str:
    lines = text.splitlines()
    assert len(lines) == 1, text
    assert lines[0].isprintable() and "\x1b" not in lines[0] and len(lines[0]) <= 340, lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def hostile_file(tmp_path_factory) -> Path:
    """The hostile graph as a .tflite file whose own name has ESC, a newline and a comment end in it."""
    d = tmp_path_factory.mktemp("hostile")
    p = d / "bad\x1b[31m\nname*_??_.tflite"
    p.write_bytes(write(hostile_graph()))
    return p


def test_inspect_prints_hostile_names_escaped(hostile_file, capsys) -> None:
    assert main(["inspect", str(hostile_file)]) == 0
    out, err = capsys.readouterr()
    assert "\x1b" not in out + err and "\x00" not in out + err
    assert all(line.isprintable() for line in out.splitlines())
    assert "esc\\x1b[2J" in out and "\\x00byte" in out
    assert max(map(len, out.splitlines())) < 400  # the 300-character name is cut in the table


def test_compile_writes_hostile_file_name_only_escaped(hostile_file, tmp_path, capsys) -> None:
    out_dir = tmp_path / "o"
    assert main(["compile", str(hostile_file), "-o", str(out_dir)]) == 0
    out, err = capsys.readouterr()
    assert "\x1b" not in out + err and err == ""  # '-' and ESC -> '_' in a prefix from a file name is no news
    c = next(out_dir.glob("*.c")).read_text()
    assert "bad\\x1b[31m\\nname*_?\\?_.tflite" in c.splitlines()[0]
    proc = subprocess.run(["make", "-C", str(out_dir)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_error_with_hostile_text_is_one_printable_line(tmp_path, capsys) -> None:
    bad = tmp_path / ("x\x1b]0;pwned\x07\n" + "y" * 200 + ".tflite")
    bad.write_bytes(b"\x00\x1b[2J" * 50)
    assert main(["inspect", str(bad)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    line = _one_printable_line(err)
    assert line.startswith("mcuq: error: ") and "\\x1b]0;pwned\\x07\\n" in line


def test_lowering_warning_is_one_line_and_the_error_line_is_alone(tmp_path) -> None:
    """A pooling op whose input and output quantization differ logs a warning naming the op: it prints as one
    escaped line after the command's output; when the command then fails, only the error line is printed."""
    q_in, q_out = ir.QParams((0.05,), (0,)), ir.QParams((0.07,), (1,))
    t = {
        "x": ir.Tensor("x", (1, 4, 4, 2), ir.DType.INT8, q_in),
        "p\x1b[2J\nq": ir.Tensor("p\x1b[2J\nq", (1, 2, 2, 2), ir.DType.INT8, q_out),
    }
    attrs = ir.Pool2DAttrs(ir.Padding.VALID, 2, 2, 2, 2)
    op = ir.Op(ir.OpKind.AVG_POOL2D, "p\x1b[2J\nq", ("x",), ("p\x1b[2J\nq",), attrs, 0)
    model = tmp_path / "pool.tflite"
    model.write_bytes(write(ir.Graph("pool", t, (op,), ("x",), ("p\x1b[2J\nq",))))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    ok = subprocess.run(
        [sys.executable, "-m", "mcuq.cli", "inspect", str(model)], capture_output=True, text=True, env=env
    )
    assert ok.returncode == 0, ok.stderr
    warning = _one_printable_line(ok.stderr)
    assert warning.startswith("mcuq: warning: ") and "p\\x1b[2J\\nq" in warning
    np.save(tmp_path / "wrong.npy", np.zeros((3, 3), np.int8))
    cmd = ["run", str(model), "--input", str(tmp_path / "wrong.npy"), "--output", str(tmp_path / "o.npy")]
    bad = subprocess.run([sys.executable, "-m", "mcuq.cli", *cmd], capture_output=True, text=True, env=env)
    assert bad.returncode == 2
    assert _one_printable_line(bad.stderr).startswith("mcuq: error: ")


# -- prefixes ---------------------------------------------------------------------------------------------------
CLASHING = ("runner", "mcuq", "mcuq_conv", "mcuq_fixedpoint", "startup", "mcuq_firmware", "mcuq_profile_dwt")
CLASHING += ("mcuq_types", "MCUQ_CONV")


def _make(d: Path, *args: str) -> None:
    proc = subprocess.run(["make", "-j4", "-C", str(d), *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]


@pytest.mark.parametrize("name", CLASHING)
def test_clashing_prefix_or_file_name_is_rewritten_noted_and_builds(name, tmp_path, capsys) -> None:
    model = tmp_path / f"{name}.tflite"
    model.write_bytes(write(hostile_graph()))
    builds = [(["compile", str(model)], "from-file"), (["compile", str(model), "--prefix", name], "from-prefix")]
    if HAVE_ARM:
        builds.append((["compile", str(model), "--prefix", name, "--board", "mps2-an386"], "emulated"))
        builds.append((["compile", str(model), "--prefix", name, "--board", "nrf52840"], "real"))
    for args, out in builds:
        assert main([*args, "-o", str(tmp_path / out)]) == 0
        _, err = capsys.readouterr()
        want = f"mcuq: note: prefix '{name}' is not usable ("
        assert err.startswith(want) and err.rstrip().endswith(f"; using 'model_{name}'"), err
        _one_printable_line(err)
        assert (tmp_path / out / f"model_{name}.c").exists()
        _make(tmp_path / out, *(["HOOKS=1"] if out == "real" else []))  # the real board's build with the DWT file


def test_rewritten_prefix_is_reported_in_python_and_on_the_command_line(tmp_path, capsys) -> None:
    cm = mcuq.compile_model(write(hostile_graph()), prefix="1abc")
    assert cm.prefix == "t_1abc" and cm.notes == (
        "prefix '1abc' is not usable (a C identifier cannot start with a digit); using 't_1abc'",
    )
    assert mcuq.compile_model(write(hostile_graph()), prefix="net").notes == ()
    model = tmp_path / "m.tflite"
    model.write_bytes(write(hostile_graph()))
    assert main(["compile", str(model), "--prefix", "1abc", "-o", str(tmp_path / "o")]) == 0
    assert capsys.readouterr().err == f"mcuq: note: {cm.notes[0]}\n"


def test_header_guard_cannot_clash_with_the_runtimes(compiled) -> None:
    guards = set()
    for h in (ROOT / "runtime_c").rglob("*.h"):
        guards |= {line.split()[1] for line in h.read_text().splitlines() if line.startswith("#ifndef ")}
    for name in (*CLASHING, "mcuq_types_h", "fixedpoint"):
        cm = mcuq.compile_model(hostile_graph(), prefix=name)
        guard = cm.files[f"{cm.prefix}.h"].split("#ifndef ", 1)[1].split()[0]
        assert guard == f"{cm.prefix.upper()}_MODEL_H" and guard not in guards and not guard.startswith("MCUQ")
