"""Ordinary mistakes and hostile files end in one printable line and exit 2 (McuqError in Python), never in a
traceback, an internal error, a command run from a board file, or C that does not build (issue 8)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from numpy.lib import format as npy_format

import mcuq
from mcuq import ir
from mcuq._paths import BOARDS
from mcuq.cli import main
from mcuq.errors import McuqError, ModelError
from mcuq.frontend.tflite_writer import write
from tests.util.tiny import tiny_fc_bytes, tiny_fc_graph

ROOT = Path(__file__).resolve().parents[2]


def one_line_error(capsys, argv: list[str], *expect: str) -> str:
    """Run the CLI in this process; assert exit 2 and exactly one printable stderr line holding ``expect``."""
    status = main(argv)
    err = capsys.readouterr().err
    assert status == 2, err
    lines = err.splitlines()
    assert len(lines) == 1 and err.endswith("\n"), err
    line = lines[0]
    assert line.startswith("mcuq: error: ") and line.isprintable() and len(line) < 600, line
    for text in expect:
        assert text in line, line
    return line


@pytest.fixture()
def tiny(tmp_path) -> Path:
    p = tmp_path / "tiny.tflite"
    p.write_bytes(tiny_fc_bytes())
    return p


def with_qparams(g: ir.Graph, name: str, **change) -> ir.Graph:
    t = g.tensors[name]
    assert t.qparams is not None
    tensors = {**g.tensors, name: dataclasses.replace(t, qparams=dataclasses.replace(t.qparams, **change))}
    return dataclasses.replace(g, tensors=tensors)


# -- board files are data ---------------------------------------------------------------------------------------
def board_file(tmp_path: Path, edit=lambda s: s, name: str = "myboard") -> Path:
    text = (BOARDS / "mps2-an386.toml").read_text().replace('name = "mps2-an386"', f'name = "{name}"')
    p = tmp_path / f"{name}.toml"
    p.write_text(edit(text))
    return p


@pytest.mark.parametrize(
    "edit, expect",
    [
        (lambda s: s.replace('"-mthumb"', '"-mthumb", "$(shell touch PWNED)"'), "key 'cflags' flag '$(shell touch"),
        (lambda s: s.replace('"-mthumb"', '"-mthumb", "-DX=`touch PWNED`"'), "not a plain compiler flag"),
        (
            lambda s: s.replace('machine = "mps2-an386"', 'machine = "mps2-an386 -version; touch PWNED; true"'),
            "[qemu]: key 'machine' is 'mps2-an386 -version; touch PWNED; true', not a QEMU machine",
        ),
        (lambda s: s.replace('cpu = "cortex-m4"', 'cpu = "pentium"'), "key 'cpu' is 'pentium'"),
        (lambda s: s.replace("icount_step = 40.0", "icount_step = nan"), "key 'icount_step' must be a finite"),
        (
            lambda s: s.replace("0x400000", str(2**64)),
            "key 'flash_size' must be positive and below 2^32, got 18446744073709551616",
        ),
    ],
    ids=["make-shell", "backticks", "qemu-machine", "pentium", "nan", "2^64"],
)
def test_board_file_that_would_run_a_command_or_is_impossible_is_refused(capsys, tmp_path, tiny, edit, expect):
    board = board_file(tmp_path, edit)
    out = tmp_path / "out"
    for argv in (["compile", str(tiny), "--board", str(board), "-o", str(out)], ["boards"]):
        if argv[0] == "boards":
            assert main(argv) == 0  # the shipped boards still list
            capsys.readouterr()
            continue
        one_line_error(capsys, argv, str(board), expect)
    assert not out.exists() and not (tmp_path / "PWNED").exists() and not Path("PWNED").exists()


@pytest.mark.parametrize(
    "content",
    [b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)), b"\xff\xfen\x00a\x00m\x00e\x00", b'name = "x"\x00'],
    ids=["elf", "utf16", "nul"],
)
def test_binary_board_file_is_one_line_and_exit_2(capsys, tmp_path, tiny, content):
    board = tmp_path / "bin.toml"
    board.write_bytes(content)
    one_line_error(capsys, ["compile", str(tiny), "--board", str(board)], str(board), "not a board file")


# -- quantization parameters, tensor sizes and missing tensors --------------------------------------------------------
QPARAM_CASES = [  # (tensor, change, text the error must hold)
    ("x", {"zero_point": (2**31,)}, "tensor 0 'x': zero point 2147483648 does not fit TFLite's int32 field"),
    ("x", {"zero_point": (300,)}, "tensor 0 'x': zero point 300 is outside int8's range [-128, 127]"),
    ("x", {"zero_point": (-1000,)}, "tensor 0 'x': zero point -1000 is outside int8's range [-128, 127]"),
    ("y", {"zero_point": (70_000_000_000_000,)}, "tensor 3 'y': zero point 70000000000000 does not fit"),
    ("w", {"zero_point": (200,)}, "tensor 1 'w': zero point 200 is outside int8's range [-128, 127]"),
    ("b", {"zero_point": (5,)}, "tensor 2 'b': zero point 5 of an int32 tensor must be 0"),
    ("x", {"scale": (float("nan"),)}, "tensor 0 'x': scale nan is not a finite positive number"),
    ("x", {"scale": (-0.5,)}, "tensor 0 'x': scale -0.5 is not a finite positive number"),
    ("y", {"scale": (0.0,)}, "tensor 3 'y': scale 0.0 is not a finite positive number"),
    ("w", {"scale": (0.1, 0.2, 0.3), "zero_point": (0, 0, 0)}, "tensor 1 'w': 3 per-channel scales do not match"),
    ("w", {"scale": (0.1,) * 4, "zero_point": (0,) * 4, "axis": 5}, "quantized_dimension 5 is out of range"),
    ("w", {"scale": (0.1,) * 4, "zero_point": (0, 0, 300, 0)}, "tensor 1 'w': zero point[2] 300 is outside int8's"),
    ("w", {"scale": (0.1,) * 4, "zero_point": (0, 0)}, "tensor 1 'w': 4 scales but 2 zero points"),
]


@pytest.mark.parametrize("name, change, expect", QPARAM_CASES, ids=[e.split(": ")[-1][:40] for *_, e in QPARAM_CASES])
def test_quantization_outside_tflite_spec_is_refused_at_import(capsys, tmp_path, name, change, expect):
    """Zero points in the dtype's range (int32 zero), finite positive scales, per-channel counts matching the
    quantized dimension: one line naming the file, the tensor and the value, before anything reaches C."""
    model = tmp_path / "bad.tflite"
    model.write_bytes(write(with_qparams(tiny_fc_graph(), name, **change)))
    with pytest.raises(ModelError) as e:
        mcuq.compile_model(model)
    assert str(e.value).startswith(f"{model}: ") and expect in str(e.value)
    one_line_error(capsys, ["compile", str(model), "-o", str(tmp_path / "out")], str(model), expect)
    assert not (tmp_path / "out").exists()


def test_zero_points_out_of_range_in_an_ir_graph_are_refused_by_lowering():
    """A Graph given to the Python API skips the importer; lowering's C field ranges still refuse the values."""
    for name, zp, field in (("x", 2**31, "accumulator"), ("x", 300, "input_zp 300"), ("w", 200, "weights_zp 200")):
        with pytest.raises(ModelError, match=field):
            mcuq.compile_model(with_qparams(tiny_fc_graph(), name, zero_point=(zp,)))


def four_gib_graph() -> ir.Graph:
    q = ir.QParams((0.1,), (0,))
    shape = (1, 65536, 65536)  # 4 GiB of int8
    tensors = {"x": ir.Tensor("x", shape, ir.DType.INT8, q), "y": ir.Tensor("y", shape, ir.DType.INT8, q)}
    op = ir.Op(ir.OpKind.RELU, "relu", ("x",), ("y",), ir.NoAttrs(), 0, "RELU")
    return ir.Graph("huge", tensors, (op,), ("x",), ("y",))


def test_tensor_of_4_gib_on_the_host_is_refused(capsys, tmp_path):
    model = tmp_path / "huge.tflite"
    model.write_bytes(write(four_gib_graph()))
    one_line_error(
        capsys, ["compile", str(model), "-o", str(tmp_path / "o")], str(model), "tensor 'x'", "4,294,967,296 bytes"
    )


def test_missing_weight_tensor_names_the_op(capsys, tmp_path):
    g = tiny_fc_graph()
    g = dataclasses.replace(g, ops=(dataclasses.replace(g.ops[0], inputs=("x", "", "b")),))
    model = tmp_path / "noweights.tflite"
    model.write_bytes(write(g))  # the weights' tensor index is written as -1
    one_line_error(
        capsys, ["compile", str(model)], str(model), "op 0 (FULLY_CONNECTED)", "weights (input 1) is missing"
    )
    with pytest.raises(ModelError, match=r"op 0 \(FULLY_CONNECTED 'fc'\): input 1 is missing"):
        mcuq.compile_model(g)  # an IR graph: lowering says the same
    no_bias = dataclasses.replace(g, ops=(dataclasses.replace(g.ops[0], inputs=("x", "w", "")),))
    assert mcuq.compile_model(write(no_bias), sanitize=False).layers  # only the bias may be absent


# -- .npy inputs and outputs ----------------------------------------------------------------------------------------
def run_argv(model: Path, inp: Path, out: Path) -> list[str]:
    return ["run", str(model), "--input", str(inp), "--output", str(out)]


def npy_header_only(path: Path, shape: tuple[int, ...], descr: str = "|i1") -> Path:
    with open(path, "wb") as f:
        npy_format.write_array_header_1_0(f, {"descr": descr, "fortran_order": False, "shape": shape})
    return path


@pytest.mark.parametrize(
    "make, expect",
    [
        (lambda p: p.write_bytes(b""), "not a readable .npy file"),
        (lambda p: p.write_bytes(b"\x93NUMPY\x01\x00garbage"), "not a readable .npy file"),
        (lambda p: np.save(p, np.zeros((0, 1, 8), np.int8)), "a batch of 0 records"),
        (lambda p: np.save(p, np.array([], np.int8)), "shape [0], the model wants [1, 8]"),
        (
            lambda p: npy_header_only(p, (2**40,)),
            "the header says shape [1099511627776] (1,099,511,627,776 elements of int8, 1,099,511,627,776 bytes) "
            "but the file holds 0 bytes of data",
        ),
        (lambda p: npy_header_only(p, (1, 8), "|O"), "holds Python objects (dtype object)"),
        (lambda p: p.mkdir(), "is a folder, not a .npy file"),
    ],
    ids=["empty-file", "garbage", "batch-0", "empty-array", "2^40-header", "pickle", "folder"],
)
def test_bad_npy_input_is_one_line(capsys, tmp_path, tiny, make, expect):
    inp = tmp_path / "in.npy"
    make(inp)
    one_line_error(capsys, run_argv(tiny, inp, tmp_path / "out.npy"), expect)
    assert not (tmp_path / "out.npy").exists()


def test_output_in_a_missing_folder_or_onto_a_folder_is_refused_before_any_work(capsys, tmp_path, tiny):
    inp = tmp_path / "in.npy"
    np.save(inp, np.zeros((1, 8), np.int8))
    missing = tmp_path / "nowhere" / "y.npy"
    one_line_error(capsys, run_argv(tiny, inp, missing), str(missing), f"the folder {missing.parent} does not exist")
    one_line_error(capsys, run_argv(tiny, inp, tmp_path), str(tmp_path), "is a folder; give a file name")
    # the model is not even read: a missing output folder is found first
    one_line_error(capsys, run_argv(tmp_path / "no-model.tflite", inp, missing), "does not exist")


def test_run_writes_exactly_the_output_path_given(capsys, tmp_path, tiny):
    inp = tmp_path / "in.npy"
    np.save(inp, np.zeros((2, 1, 8), np.int8))
    out = tmp_path / "result.bin"  # no .npy appended, no temporary file left behind
    assert main(run_argv(tiny, inp, out)) == 0, capsys.readouterr().err
    assert np.load(out).shape == (2, 1, 4) and sorted(p.name for p in tmp_path.iterdir()) == [
        "in.npy",
        "result.bin",
        "tiny.tflite",
    ]


def test_console_script_gives_one_line_for_a_header_claiming_2_40_elements(tmp_path, tiny):
    """The real entry point, in a subprocess: no MemoryError, no traceback, exit 2."""
    inp = npy_header_only(tmp_path / "big.npy", (2**40,))
    exe = ROOT / ".venv" / "bin" / "mcuq"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "mcuq.cli"]
    r = subprocess.run(
        [*cmd, *run_argv(tiny, inp, tmp_path / "o.npy")],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    assert r.returncode == 2 and r.stdout == "", r.stderr
    assert len(r.stderr.splitlines()) == 1 and "1,099,511,627,776 elements" in r.stderr


# -- the Python API -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, expect",
    [
        (
            {"model": None},
            "compile_model: model must be a .tflite or .onnx path, its bytes, a Graph or a QuantizedModel",
        ),
        (
            {"model": 42},
            "model must be a .tflite or .onnx path, its bytes, a Graph or a QuantizedModel (mcuq.quantize), got int",
        ),
        ({"board": None}, "board must be a board name or a path to a board .toml, got NoneType"),
        ({"prefix": 7}, "prefix must be a string or None, got int"),
        ({"sanitize": "yes"}, "sanitize must be True, False or None, got str"),
        ({"dump_ir": 3}, "dump_ir must be a folder path or None, got int"),
    ],
    ids=["model-None", "model-int", "board-None", "prefix-int", "sanitize-str", "dump_ir-int"],
)
def test_compile_model_with_wrong_argument_types_raises_mcuq_error(kwargs, expect):
    args = {"model": tiny_fc_bytes(), **kwargs}
    with pytest.raises(McuqError) as e:
        mcuq.compile_model(**args)
    assert expect in str(e.value) and not isinstance(e.value, TypeError)


@pytest.fixture(scope="module")
def compiled():
    return mcuq.compile_model(tiny_fc_bytes(), sanitize=False)


@pytest.mark.parametrize(
    "inputs, expect",
    [
        (None, "inputs must be a numpy array or a list of arrays, one per model input (1); got NoneType"),
        ("x.npy", "got str"),
        (5, "got int"),
        ({"x": np.zeros((1, 8), np.int8)}, "got dict"),
        ([None], "input 'x': expected an array of int8, got NoneType"),
        ([[1, [2, 3]]], "input 'x': not an array"),
        ([[object()] * 8], "input 'x': expected an array of int8, got an array of Python objects"),
        (np.zeros((0, 1, 8), np.int8), "input 'x': a batch of 0 records (shape [0, 1, 8])"),
    ],
    ids=["None", "str", "int", "dict", "[None]", "ragged", "objects", "batch-0"],
)
def test_run_with_wrong_inputs_raises_mcuq_error(compiled, inputs, expect):
    for method in (compiled.run, compiled.run_layers):
        with pytest.raises(McuqError) as e:
            method(inputs)
        assert expect in str(e.value)
