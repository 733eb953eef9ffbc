"""Output folders: written in place through temporary names, a manifest of what mcuq wrote, a user's file never
deleted or overwritten, builds under build/, clear errors for paths that cannot be written, and board values that
reach the Makefile and CMakeLists.txt as data (a board file never runs a command)."""

from __future__ import annotations

import dataclasses
import errno
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import mcuq
from mcuq.cli import main
from mcuq.codegen import outdir
from mcuq.codegen.buildfiles import cmake_items, make_words
from mcuq.codegen.outdir import LEGACY_MARKER, MANIFEST, write_tree
from mcuq.errors import McuqError
from mcuq.firmware.project import board_info, write_firmware_project
from tests.e2e.test_cli import mcuq_cli
from tests.util.tiny import tiny_fc_bytes, tiny_fc_graph

HAVE_ARM_GCC = shutil.which("arm-none-eabi-gcc") is not None
MAKE_ENV = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}


@pytest.fixture()
def tiny(tmp_path) -> Path:
    p = tmp_path / "tiny_fc.tflite"
    p.write_bytes(tiny_fc_bytes())
    return p


def snapshot(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def make(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["make", *args], capture_output=True, text=True, timeout=300, env=MAKE_ENV)
    assert not check or proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def one_line_error(capsys, *needles: str) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err and "internal error" not in err, err
    for n in needles:
        assert n in err, err
    return err


def test_user_file_survives_recompile(tiny, tmp_path):
    out = tmp_path / "out"
    assert main(["compile", str(tiny), "-o", str(out)]) == 0
    (out / "notes.txt").write_text("mine")
    (out / "mcuq_runtime" / "NOTES").write_text("mine too")
    assert main(["compile", str(tiny), "-o", str(out)]) == 0
    assert main(["compile", str(tiny), "-o", str(out), "--prefix", "net"]) == 0
    assert (out / "notes.txt").read_text() == "mine" and (out / "mcuq_runtime" / "NOTES").read_text() == "mine too"
    assert (out / "net.c").exists() and not (out / "tiny_fc.c").exists()


def test_dot_output_in_empty_folder(tiny, tmp_path, monkeypatch):
    work = tmp_path / "here"
    work.mkdir()
    monkeypatch.chdir(work)
    assert main(["compile", str(tiny), "-o", "."]) == 0
    assert (work / "tiny_fc.c").exists() and (work / MANIFEST).exists()
    assert main(["compile", str(tiny), "-o", "."]) == 0  # mcuq's own folder
    assert main(["compile", str(tiny), "-o", "./", "--prefix", "net"]) == 0
    assert (work / "net.c").exists() and not (work / "tiny_fc.c").exists()
    make("-s", "-C", str(work))
    assert (work / "build" / "libnet.a").exists()


@pytest.mark.parametrize("failure", [OSError(errno.ENOSPC, "No space left on device"), KeyboardInterrupt()])
def test_interrupted_write_keeps_previous_set(tmp_path, monkeypatch, failure):
    a = mcuq.compile_model(tiny_fc_graph(0), prefix="net", sanitize=False)
    b = mcuq.compile_model(tiny_fc_graph(1), prefix="other", sanitize=False)
    out = tmp_path / "out"
    a.write(out)
    (out / "notes.txt").write_text("mine")
    before = snapshot(out)
    real, calls = outdir._stage, []

    def failing(final, data, made):
        calls.append(final)
        if len(calls) == 3:  # two files staged, the third fails
            raise failure
        return real(final, data, made)

    monkeypatch.setattr(outdir, "_stage", failing)
    with pytest.raises(McuqError if isinstance(failure, OSError) else KeyboardInterrupt) as e:
        b.write(out)
    assert snapshot(out) == before  # the previous complete set, no temporary file left behind
    if isinstance(failure, OSError):
        assert "No space left on device" in str(e.value) and str(out) in str(e.value)
    calls.clear()
    with pytest.raises(McuqError if isinstance(failure, OSError) else KeyboardInterrupt):
        b.write(tmp_path / "new" / "deep")
    assert not (tmp_path / "new" / "deep").exists()  # a folder made for a write that failed is removed again
    monkeypatch.setattr(outdir, "_stage", real)
    b.write(out)
    assert (out / "other.c").exists() and not (out / "net.c").exists() and (out / "notes.txt").exists()


def test_refuses_foreign_folder_without_force(tiny, tmp_path, capsys):
    mine = tmp_path / "project"
    mine.mkdir()
    (mine / "main.c").write_text("int main(void) { return 0; }\n")
    assert main(["compile", str(tiny), "-o", str(mine)]) == 2
    one_line_error(capsys, str(mine), "did not write", "--force")
    assert snapshot(mine) == {"main.c": b"int main(void) { return 0; }\n"}
    # a build/ of the user's is refused even with --force: the generated Makefile builds there
    (mine / "build").mkdir()
    assert main(["compile", str(tiny), "-o", str(mine), "--force"]) == 2
    one_line_error(capsys, "build")
    assert sorted(p.name for p in mine.iterdir()) == ["build", "main.c"]


def test_force_keeps_user_files(tiny, tmp_path, capsys):
    mine = tmp_path / "project"
    mine.mkdir()
    (mine / "app.c").write_text("app")
    assert main(["compile", str(tiny), "-o", str(mine), "--force"]) == 0
    assert (mine / "app.c").read_text() == "app" and (mine / "tiny_fc.c").exists()
    assert main(["compile", str(tiny), "-o", str(mine), "--prefix", "net"]) == 0  # mcuq's now: no --force needed
    assert (mine / "app.c").read_text() == "app" and not (mine / "tiny_fc.c").exists()
    # a user's file where mcuq writes one of its own is never overwritten, --force or not
    other = tmp_path / "other"
    other.mkdir()
    (other / "Makefile").write_text("all:\n\techo mine\n")
    assert main(["compile", str(tiny), "-o", str(other), "--force"]) == 2
    one_line_error(capsys, str(other / "Makefile"), "not written by mcuq")
    assert snapshot(other) == {"Makefile": b"all:\n\techo mine\n"}


def test_stale_manifest_files_removed(tmp_path):
    out = write_tree({"a.txt": "1", "d/b.txt": "2", "e/c.txt": "3", "keep.txt": "4"}, tmp_path / "o")
    (out / "e" / "c.txt").write_text("edited by the user")  # mcuq wrote it; it is the user's now
    (out / "d" / "user.txt").write_text("mine")
    (out / "build").mkdir()
    (out / "build" / "x.o").write_text("obj")
    write_tree({"keep.txt": "5"}, out)
    assert snapshot(out).keys() == {MANIFEST, "keep.txt", "e/c.txt", "d/user.txt", "build/x.o"}
    assert (out / "keep.txt").read_text() == "5"
    # a manifest entry outside the folder is never followed
    victim = tmp_path / "victim.txt"
    victim.write_text("1")
    text = (out / MANIFEST).read_text() + f"file {outdir._sha(b'1')} ../victim.txt\n"
    (out / MANIFEST).write_text(text)
    write_tree({"keep.txt": "6"}, out)
    assert victim.read_text() == "1"
    # a folder of an earlier mcuq (its marker file) is mcuq's: written without --force, nothing else removed
    old = tmp_path / "old"
    old.mkdir()
    (old / LEGACY_MARKER).write_text("written by mcuq\n")
    (old / "tiny.c").write_text("old")
    (old / "tiny.elf").write_text("old build")
    write_tree({"tiny.c": "new"}, old)
    assert snapshot(old) == {MANIFEST: (old / MANIFEST).read_bytes(), "tiny.c": b"new", "tiny.elf": b"old build"}
    # clearing build/ is for mcuq's folders only
    assert outdir.clear_build(out) and not (out / "build").exists()
    foreign = tmp_path / "foreign"
    (foreign / "build").mkdir(parents=True)
    assert not outdir.clear_build(foreign) and (foreign / "build").exists()


def test_unwritable_paths_exit_2(tiny, tmp_path, capsys, monkeypatch):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    cases = [
        ([str(a_file)], "not a folder"),
        ([str(a_file / "sub")], "Not a directory"),
        (["/proc"], "did not write"),
        (["/proc/mcuq-out"], "/proc/mcuq-out"),
        (["/proc", "--force"], "/proc"),
        (["/sys/mcuq-out"], "/sys/mcuq-out"),
    ]
    for args, needle in cases:
        assert main(["compile", str(tiny), "-o", *args]) == 2, args
        one_line_error(capsys, args[0], needle)
    assert a_file.read_text() == "x"
    readonly = tmp_path / "ro"
    readonly.mkdir(mode=0o555)
    if os.geteuid() != 0:  # root writes anyway; the same error is simulated below
        assert main(["compile", str(tiny), "-o", str(readonly / "out")]) == 2
        one_line_error(capsys, str(readonly / "out"), "Permission denied")

    def denied(final, data, made):
        raise PermissionError(errno.EACCES, "Permission denied", str(final))

    monkeypatch.setattr(outdir, "_stage", denied)
    assert main(["compile", str(tiny), "-o", str(tmp_path / "w")]) == 2
    one_line_error(capsys, str(tmp_path / "w"), "Permission denied")
    r = mcuq_cli("compile", str(tiny), "-o", str(a_file / "sub"))  # the console entry point, as a user runs it
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and str(a_file) in r.stderr


@pytest.mark.parametrize("board", ["host", "mps2-an386"])
def test_compile_make_compile_make(tmp_path, board):
    if board != "host" and not HAVE_ARM_GCC:
        pytest.skip("arm-none-eabi-gcc not installed (`make setup`)")
    model = tmp_path / "m.tflite"
    out = tmp_path / "out"
    built = out / "build" / ("libm.a" if board == "host" else "m.elf")
    model.write_bytes(tiny_fc_bytes(0))
    assert main(["compile", str(model), "--board", board, "-o", str(out)]) == 0
    make("-C", str(out))
    first = built.read_bytes()
    model.write_bytes(tiny_fc_bytes(1))  # other weights, same file names
    second_board = "host" if board == "host" else "mps3-an547"  # other flags: the Makefile changes
    assert main(["compile", str(model), "--board", second_board, "-o", str(out)]) == 0
    log = make("-C", str(out)).stdout
    assert built.read_bytes() != first
    if board != "host":
        assert "-mcpu=cortex-m55" in log and "-mcpu=cortex-m4" not in log  # every object was rebuilt
    assert " -c " not in make("-C", str(out)).stdout  # and a third make has nothing to compile


# -- board values in build files are data ------------------------------------------------------------------------
HOSTILE = ["-O2", "$(shell touch {f})", "`touch {f}`", "$$(touch {f})", "a#b", "q'uote", '"', "%.o", "${{HOME}}"]


def test_build_file_quoting_round_trips(tmp_path):
    """make and CMake see exactly the words given: nothing is expanded or run."""
    flag = tmp_path / "PWNED"
    words = [w.format(f=flag) for w in HOSTILE] + ["x;touch " + str(flag), "a\\#b", "x\\"]
    (tmp_path / "Makefile").write_text(f"V := {make_words(words)}\nW := $(V) end\nall:\n\t@printf '[%s]\\n' $(W)\n")
    got = make("-s", "-C", str(tmp_path)).stdout.splitlines()
    assert got == [f"[{w}]" for w in [*words, "end"]]
    if shutil.which("cmake"):
        cw = [w for w in words if not any(c in w for c in ";\\[]")]
        src = tmp_path / "cm"
        src.mkdir()
        body = f'set(V {cmake_items(cw)})\nforeach(x IN LISTS V)\n  message("[${{x}}]")\nendforeach()\n'
        (src / "CMakeLists.txt").write_text(f"cmake_minimum_required(VERSION 3.13)\nproject(t NONE)\n{body}")
        proc = subprocess.run(["cmake", "-S", str(src), "-B", str(src / "b")], capture_output=True, text=True)
        assert [ln for ln in proc.stderr.splitlines() if ln.startswith("[")] == [f"[{w}]" for w in cw]
    assert not flag.exists()
    for bad in (["-O2\n\ttouch x"], ["a\x00"]):
        with pytest.raises(McuqError, match="one word"):
            make_words(bad)
    with pytest.raises(McuqError, match="one word"):
        cmake_items(["-O2;-DX"])


def test_board_file_cannot_run_commands(tiny, tmp_path):
    """A board .toml with `$(shell ...)` in cflags or a shell command in qemu.machine: refused by the schema, or
    written as quoted data; FILE never appears after `mcuq compile`/`mcuq run`, `make -C DIR`, `make -C DIR run`."""
    flag = tmp_path / "FILE"
    toml = (Path(mcuq.__file__).parent.parent / "boards" / "mps2-an386.toml").read_text()
    toml = toml.replace('name = "mps2-an386"', 'name = "evil"')
    toml = toml.replace('"-mfloat-abi=hard"]', f'"-mfloat-abi=hard", "$(shell touch {flag})"]')
    toml = toml.replace('machine = "mps2-an386"', f'machine = "mps2-an386 -version; touch {flag}; true"')
    board = tmp_path / "evil.toml"
    board.write_text(toml)
    np_in = tmp_path / "x.npy"
    np.save(np_in, np.zeros((1, 8), np.int8))
    r = mcuq_cli("run", str(tiny), "--board", str(board), "--input", str(np_in), "--output", str(tmp_path / "y.npy"))
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    out = tmp_path / "fw"
    if mcuq_cli("compile", str(tiny), "--board", str(board), "-o", str(out)).returncode == 0:
        make("-C", str(out), check=False)
        make("-C", str(out), "run", check=False)
    assert not flag.exists()
    # the templates themselves, with a hand-made board the schema never saw
    cm = mcuq.compile_model(tiny_fc_graph(), prefix="tiny", sanitize=False)
    info = board_info("mps2-an386")
    evil = dataclasses.replace(
        info, cflags=(*info.cflags, *(w.format(f=flag) for w in HOSTILE)), machine=f"mps2-an386; touch {flag}; true"
    )
    write_firmware_project(cm, evil, out, force=True)
    make("-C", str(out), check=False)  # gcc rejects the odd flags; nothing runs
    make("-C", str(out), "-o", "build/tiny.elf", "run", "QEMU=true", check=False)  # QEMU_ARGS reach the shell
    assert not flag.exists()
    if HAVE_ARM_GCC:
        sane = dataclasses.replace(info, machine=evil.machine)
        shutil.rmtree(out / "build", ignore_errors=True)
        write_firmware_project(cm, sane, out)
        make("-C", str(out), "run", check=False)  # builds, then QEMU refuses the machine name
        if shutil.which("cmake"):
            write_firmware_project(cm, evil, out)
            for cmd in (
                ["cmake", "-S", str(out), "-B", str(out / "build" / "cmake")],
                ["cmake", "--build", str(out / "build" / "cmake")],
            ):
                subprocess.run(cmd, capture_output=True, timeout=300)
        assert not flag.exists()
    with pytest.raises(McuqError, match="board 'mps2-an386': cflags"):
        write_firmware_project(cm, dataclasses.replace(info, cflags=("-O2\n\ttouch x",)), tmp_path / "nl")
